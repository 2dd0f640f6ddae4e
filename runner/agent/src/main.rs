//! orphanage-agent: the in-target half of orphanage. Built statically, so the
//! same file runs on the host, inside a container and as a VM's /init.
//!
//! `orphanage-agent run` reads a scenario (JSON) on stdin and reports events
//! on fd 3 (on stdout with `--events-on-stdout`, in a container);
//! `orphanage-agent run subreaper-root WHY` runs a `namespace: fresh` scenario
//! without a pid namespace, under a subreaper root (WHY says why there is no
//! pid namespace, for the reasons it gives); `orphanage-agent worker NAME FD
//! SIGPIPE` is how a scenario process that ran an `exec` step becomes a worker
//! again. As a VM's `/init` (pid 1) it runs every scenario of the initramfs
//! and powers off, taking its options from the kernel command line after
//! `--`; `/init poweroff` only powers off (the boot floor).

mod controller;
mod fds;
mod global_init;
mod handles;
mod measure;
mod memfd;
mod poll;
mod probe;
mod procfs;
mod protocol;
mod signals;
mod spawn;
mod steps;
mod subreaper_root;
mod vm_init;
mod vm_runs;
mod worker;

fn main() {
    worker::install_panic_hook();
    let args: Vec<String> = std::env::args().collect();
    let global_init = nix::unistd::getpid().as_raw() == 1 && !in_child_pid_namespace();
    match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 2 => controller::main(controller::Start::as_written()),
        Some("run") if args.len() == 3 && args[2] == EVENTS_ON_STDOUT => {
            controller::main(controller::Start::events_on_stdout())
        }
        Some("run") if args.len() == 4 && args[2] == "subreaper-root" => {
            subreaper_root::main(&args[3])
        }
        Some("worker") if args.len() == 5 => match args[3].parse() {
            Ok(fd) => worker::serve_execed(&args[2], fd, args[4] == "sigpipe-ignored"),
            Err(_) => usage(),
        },
        Some("poweroff") if global_init => vm_init::power_off(),
        // Test knobs on the kernel command line (`-- no-pid-namespaces`, ...).
        // An unknown one ends init like any bad usage (the kernel panics, and
        // the harness reports init exiting).
        _ if global_init => match vm_init::Knobs::parse(&args[1..]) {
            Ok(knobs) => vm_init::main(knobs),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

/// Pid 1 of a child pid namespace is not the machine's init. Without /proc
/// (early in a VM) this cannot be read, and then we are the machine's init.
fn in_child_pid_namespace() -> bool {
    crate::procfs::read("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("NSpid:"))
                .map(|l| l.split_whitespace().count() > 2)
        })
        .unwrap_or(false)
}

/// `run --events-on-stdout`: the runtime target's one channel. Every OCI
/// runtime passes the container's stdio through (runsc included, which has
/// no `--preserve-fds`), so the events travel on the container's stdout.
const EVENTS_ON_STDOUT: &str = "--events-on-stdout";

fn usage() -> ! {
    eprintln!("usage: orphanage-agent run [--events-on-stdout | subreaper-root WHY]   (scenario JSON on stdin, events on fd 3 or stdout)\n       orphanage-agent [vm-init] [no-pid-namespaces] [no-subreapers] [subreaper-root] [results=DEVICE] [stay-up] | poweroff   (as a VM's /init)\n       orphanage-agent worker NAME FD sigpipe-ignored|sigpipe-default");
    std::process::exit(2)
}
