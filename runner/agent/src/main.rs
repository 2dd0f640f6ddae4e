//! orphanage-agent: the in-target half of orphanage. Built statically, so the
//! same file runs on the host, inside a container and as a VM's /init.
//!
//! `orphanage-agent run` reads a scenario (JSON) on stdin and reports events
//! on fd 3 (on stdout with `--events-on-stdout`, in a container);
//! `orphanage-agent worker NAME FD SIGPIPE` is how a scenario process that ran
//! an `exec` step becomes a worker again. As a VM's `/init` (pid 1) it runs
//! every scenario of the initramfs and powers off, taking its options from the
//! kernel command line after `--`; `/init poweroff` only powers off (the boot
//! floor).

mod controller;
mod fds;
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
mod vm_init;
mod vm_runs;
mod worker;

fn main() {
    worker::install_panic_hook();
    let args: Vec<String> = std::env::args().collect();
    let global_init = nix::unistd::getpid().as_raw() == 1 && !in_child_pid_namespace();
    match args.get(1).map(String::as_str) {
        Some("run") => controller::main(args.get(2).is_some_and(|a| a == EVENTS_ON_STDOUT)),
        Some("poweroff") if global_init => vm_init::power_off(),
        // The words after `--` on the kernel command line (see vm_init::InitOptions).
        _ if global_init => match vm_init::InitOptions::parse(&args[1..]) {
            Ok(options) => vm_init::main(&options),
            Err(why) => {
                eprintln!("orphanage-agent (init): {why}");
                usage()
            }
        },
        Some("worker") if args.len() == 5 => match args[3].parse() {
            Ok(fd) => worker::serve_execed(&args[2], fd, args[4] == "sigpipe-ignored"),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

/// Pid 1 of a child pid namespace is not the machine's init. Without /proc
/// (early in a VM) this cannot be read, and then we are the machine's init.
fn in_child_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status")
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
    eprintln!("usage: orphanage-agent run [--events-on-stdout]   (scenario JSON on stdin, events on fd 3 or stdout)\n       orphanage-agent [vm-init] [no-pid-namespaces] [results=DEVICE] [stay-up] | poweroff   (as a VM's /init)\n       orphanage-agent worker NAME FD sigpipe-ignored|sigpipe-default");
    std::process::exit(2)
}
