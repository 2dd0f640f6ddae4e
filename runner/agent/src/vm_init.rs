//! The agent as a VM's global init (pid 1 of the whole machine). It mounts
//! what a kernel without userspace lacks, then runs the scenarios of
//! /scenarios.json the way the harness does on a host, several at a time
//! (`vm_runs`). Events go out framed (`console_frames`) on the second serial
//! port, or on the one console when told so (ttyS0, or the virtio console
//! hvc0); the console (our fds 0-2) carries diagnostics and the kernel log.
//! Finally it powers the machine off.
//!
//! Nothing here may assume more than the syscall ABI: a missing mount or /proc
//! file is reported, never fatal, because init exiting panics the kernel.

use orphanage_scenario::{VmFrame, VmScenario, VM_SCENARIOS_PATH};
use std::io::Write;

/// The result port unless told otherwise: the second serial port.
const DEFAULT_RESULTS_PORT: &str = "/dev/ttyS1";

/// Powers off at once: the boot floor for benchmarks (same kernel, same
/// initramfs, nothing run).
pub fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // Only reached without CAP_SYS_BOOT (not as a VM's init).
    std::process::exit(1)
}

pub fn main(knobs: Knobs) -> ! {
    for (what, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ] {
        // The knobs stand for a kernel built without the filesystem, which
        // refuses the mount with ENODEV.
        let refused =
            (fstype == "sysfs" && knobs.no_sysfs) || (fstype == "devtmpfs" && knobs.no_devtmpfs);
        let mounted = if refused {
            Err(nix::errno::Errno::ENODEV)
        } else {
            mount_fs(what, target, fstype)
        };
        if let Err(e) = mounted {
            console(&format!("mount {fstype} on {target}: {e}"));
            if fstype == "devtmpfs" {
                // No scenario needs more of /dev than these, and the results
                // port is among them: make them by hand, as a static /dev would.
                make_device_nodes();
            }
        }
    }
    // The links udev or systemd make on any real system. Without /dev/fd,
    // kernels with TOMOYO among their LSMs (Debian's 5.10) fail
    // execveat(fd, "", AT_EMPTY_PATH) with ENOENT: TOMOYO resolves the
    // "/dev/fd/N" name exec gives such a program.
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if let Err(e) = std::os::unix::fs::symlink(target, link) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                console(&format!("symlink {link} -> {target}: {e}"));
            }
        }
    }
    let _ = std::fs::create_dir_all("/tmp");
    let lacks = knobs.lacks();
    if lacks.anything() {
        if let Err(e) = orphanage_agent_io::install_filter(&lacks.program()) {
            console(&format!(
                "cannot install the filter that simulates {lacks:?}: {e}"
            ));
        }
    }
    let port_name = knobs.results_port();
    let mut port = match open_results_port(port_name) {
        Ok(p) => p,
        Err(e) => {
            console(&format!(
                "cannot open {port_name}: {e}; nothing can be reported"
            ));
            power_off()
        }
    };
    let scenarios: Vec<VmScenario> = match std::fs::read(VM_SCENARIOS_PATH)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            console(&format!("cannot read {VM_SCENARIOS_PATH}: {e}"));
            vec![]
        }
    };
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    send(
        &mut port,
        &VmFrame::Booted {
            release,
            scenarios: scenarios.len(),
        },
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lanes = crate::vm_runs::LANES_PER_CPU * cpus;
    let left_behind = crate::vm_runs::run_all(
        &scenarios,
        lanes,
        knobs.force_subreaper_root,
        &mut |s, event| {
            send(
                &mut port,
                &VmFrame::Event {
                    scenario: s.name.clone(),
                    event: event.clone(),
                },
            )
        },
    );
    if !left_behind.is_empty() {
        send(
            &mut port,
            &VmFrame::LeftBehind {
                processes: left_behind,
            },
        );
    }
    send(&mut port, &VmFrame::Done);
    let _ = port.flush();
    if knobs.stay_up {
        loop {
            // SAFETY: pause takes nothing; init waits to be stopped.
            unsafe { libc::pause() };
        }
    }
    power_off()
}

/// The character devices init and the scenarios use, as a static /dev has
/// them: (path, major, minor, mode), numbers from Documentation/admin-guide/devices.txt.
pub const DEVICE_NODES: &[(&str, u32, u32, u32)] = &[
    ("/dev/null", 1, 3, 0o666),
    ("/dev/zero", 1, 5, 0o666),
    ("/dev/ttyS0", 4, 64, 0o600),
    ("/dev/ttyS1", 4, 65, 0o600),
    ("/dev/hvc0", 229, 0, 0o600),
];

/// Makes `DEVICE_NODES` where devtmpfs could not be mounted; one that
/// cannot be made is reported, and a results port among them then cannot
/// be opened, which is reported too.
fn make_device_nodes() {
    use nix::sys::stat::{makedev, mknod, umask, Mode, SFlag};
    // The modes as the table gives them, not less the kernel's umask (022).
    let previous = umask(Mode::empty());
    let mut made = vec![];
    for &(path, major, minor, mode) in DEVICE_NODES {
        match mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            makedev(major.into(), minor.into()),
        ) {
            Ok(()) => made.push(path),
            Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => console(&format!("mknod {path}: {e}")),
        }
    }
    umask(previous);
    console(&format!("no devtmpfs: made {}", made.join(", ")));
}

fn console(message: &str) {
    eprintln!("orphanage-agent (init): {message}");
}

fn mount_fs(what: &str, target: &str, fstype: &str) -> nix::Result<()> {
    let _ = std::fs::create_dir_all(target);
    nix::mount::mount(
        Some(what),
        target,
        Some(fstype),
        nix::mount::MsFlags::MS_NOSUID,
        None::<&str>,
    )
}

/// The result port in raw mode: no CR added to newlines, no echo, no signals.
fn open_results_port(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?;
    if let Ok(mut t) = nix::sys::termios::tcgetattr(&port) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(&port, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    Ok(port)
}

/// One frame in one write, so a console's log lines interleave between
/// frames rather than inside them where that can be helped (the reader
/// counts the frames they break anyway).
fn send(port: &mut std::fs::File, frame: &VmFrame) {
    if let Err(e) = port.write_all(&orphanage_scenario::encode_frame(frame)) {
        console(&format!("writing a result frame: {e}"));
    }
}

/// Init's options, given after `--` on the kernel command line, which the
/// kernel passes to init as arguments: where results go, and test knobs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `no-pid-namespaces`: a seccomp filter on init, inherited by
    /// everything it starts, makes clone(2) and unshare(2) with CLONE_NEWPID
    /// fail with EINVAL, and clone3(2) (whose flags a filter cannot read)
    /// with ENOSYS, as on a kernel without them (Asterinas) that predates
    /// clone3. The kernel itself then returns those errnos.
    pub no_pid_namespaces: bool,
    /// `no-subreapers`: prctl(PR_SET/GET_CHILD_SUBREAPER) fail with EINVAL.
    pub no_subreapers: bool,
    /// `subreaper-root`: `namespace: fresh` scenarios run under a subreaper
    /// root though the kernel has pid namespaces (`--no-pid-namespace`).
    pub force_subreaper_root: bool,
    /// `results=DEVICE`: where frames go (default ttyS1). A kernel with one
    /// console carries them between its log lines (`results=/dev/ttyS0`, or
    /// `results=/dev/hvc0` on the virtio console).
    pub results_port: Option<String>,
    /// `stay-up`: never power off, as a guest without ACPI or isa-debug-exit
    /// cannot; the harness must stop it once the last frame is in.
    pub stay_up: bool,
    /// `no-devtmpfs`: init acts as on a kernel without devtmpfs, whose
    /// mount fails with ENODEV: it makes the device nodes it needs itself.
    pub no_devtmpfs: bool,
    /// `no-sysfs`: likewise for sysfs, which nothing of orphanage reads.
    pub no_sysfs: bool,
}

/// An argument of init's that is no knob (main answers with the usage).
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("unknown init argument `{0}`")]
pub struct UnknownKnob(pub String);

impl Knobs {
    /// The knobs among init's arguments; `vm-init` (the default) is none.
    pub fn parse(args: &[String]) -> Result<Knobs, UnknownKnob> {
        let mut knobs = Knobs::default();
        for arg in args {
            match arg.as_str() {
                "vm-init" => {}
                "no-pid-namespaces" => knobs.no_pid_namespaces = true,
                "no-subreapers" => knobs.no_subreapers = true,
                "subreaper-root" => knobs.force_subreaper_root = true,
                "stay-up" => knobs.stay_up = true,
                "no-devtmpfs" => knobs.no_devtmpfs = true,
                "no-sysfs" => knobs.no_sysfs = true,
                other => match other.strip_prefix("results=") {
                    Some(dev) if dev.starts_with("/dev/") => knobs.results_port = Some(dev.into()),
                    _ => return Err(UnknownKnob(other.to_string())),
                },
            }
        }
        Ok(knobs)
    }

    fn results_port(&self) -> &str {
        self.results_port.as_deref().unwrap_or(DEFAULT_RESULTS_PORT)
    }

    /// What the simulated kernel lacks.
    fn lacks(&self) -> orphanage_agent_io::Lacks {
        orphanage_agent_io::Lacks {
            pid_namespaces: self.no_pid_namespaces,
            subreapers: self.no_subreapers,
            enosys: if self.no_pid_namespaces {
                vec![libc::SYS_clone3]
            } else {
                vec![]
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn knobs_come_from_inits_arguments() {
        assert_eq!(Knobs::parse(&args(&[])), Ok(Knobs::default()));
        assert_eq!(Knobs::parse(&args(&["vm-init"])), Ok(Knobs::default()));
        assert_eq!(
            Knobs::parse(&args(&["no-pid-namespaces", "no-subreapers"])),
            Ok(Knobs {
                no_pid_namespaces: true,
                no_subreapers: true,
                ..Knobs::default()
            })
        );
        let k = Knobs::parse(&args(&["stay-up", "results=/dev/ttyS0"])).unwrap();
        assert!(k.stay_up);
        assert_eq!(k.results_port(), "/dev/ttyS0");
        let k = Knobs::parse(&args(&["results=/dev/hvc0"])).unwrap();
        assert_eq!(k.results_port(), "/dev/hvc0");
        assert_eq!(Knobs::default().results_port(), "/dev/ttyS1");
        assert!(Knobs::parse(&args(&["results=ttyS0"])).is_err());
        assert_eq!(
            Knobs::parse(&args(&["subreaper-root"])).map(|k| k.force_subreaper_root),
            Ok(true)
        );
        assert_eq!(
            Knobs::parse(&args(&["frobnicate"])),
            Err(UnknownKnob("frobnicate".into()))
        );
        let k = Knobs::parse(&args(&["no-devtmpfs", "no-sysfs"])).unwrap();
        assert!(k.no_devtmpfs && k.no_sysfs);
    }

    #[test]
    fn every_results_port_has_a_node_to_make() {
        for port in [DEFAULT_RESULTS_PORT, "/dev/ttyS0", "/dev/hvc0"] {
            assert!(DEVICE_NODES.iter().any(|n| n.0 == port), "{port}");
        }
    }

    #[test]
    fn no_pid_namespaces_also_hides_clone3() {
        let lacks = Knobs::parse(&args(&["no-pid-namespaces"])).unwrap().lacks();
        assert!(lacks.pid_namespaces && !lacks.subreapers);
        assert_eq!(lacks.enosys, vec![libc::SYS_clone3]);
        assert!(!Knobs::default().lacks().anything());
    }
}
