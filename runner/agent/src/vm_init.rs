//! The agent as a VM's global init (pid 1 of the whole machine). It mounts
//! what a kernel without userspace lacks, then runs the scenarios of
//! /scenarios.json the way the harness does on a host, several at a time
//! (`vm_runs`). Events go out framed (`console_frames`) on the second serial
//! port, or on the one console when told so; the console (ttyS0, our fds 0-2)
//! carries diagnostics and the kernel log. Finally it powers the machine off.
//!
//! Nothing here may assume more than the syscall ABI: a missing mount or /proc
//! file is reported, never fatal, because init exiting panics the kernel.

use nix::errno::Errno;
use orphanage_scenario::{VmFrame, VmScenario, VM_SCENARIOS_PATH};
use std::io::Write;

/// The result port unless told otherwise: the second serial port.
const DEFAULT_RESULTS_PORT: &str = "/dev/ttyS1";

/// What init is told on the kernel command line, after `--`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// `no-pid-namespaces`: behave as on a kernel without them (a test knob).
    pub simulate_no_pid_namespaces: bool,
    /// `results=DEVICE`: where frames go. A kernel with one console (ttyS0
    /// or hvc0) carries them between its log lines.
    pub results_port: String,
    /// `stay-up`: never power off, as a guest without ACPI or
    /// isa-debug-exit cannot; the harness must stop it once the last frame
    /// is in (a test knob).
    pub stay_up: bool,
}

impl InitOptions {
    /// An unknown word is refused: init then exits, and a kernel whose
    /// command line is wrong says so by panicking, at once.
    pub fn parse(words: &[String]) -> Result<Self, String> {
        let mut options = InitOptions {
            simulate_no_pid_namespaces: false,
            results_port: DEFAULT_RESULTS_PORT.into(),
            stay_up: false,
        };
        for word in words {
            match word.as_str() {
                "vm-init" => {}
                "no-pid-namespaces" => options.simulate_no_pid_namespaces = true,
                "stay-up" => options.stay_up = true,
                w => match w.strip_prefix("results=") {
                    Some(dev) if dev.starts_with("/dev/") => options.results_port = dev.into(),
                    _ => return Err(format!("unknown init option {w:?}")),
                },
            }
        }
        Ok(options)
    }
}

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

pub fn main(options: &InitOptions) -> ! {
    for (what, target, fstype) in [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
    ] {
        if let Err(e) = mount_fs(what, target, fstype) {
            console(&format!("mount {fstype} on {target}: {e}"));
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
    if options.simulate_no_pid_namespaces {
        if let Err(e) = pretend_no_pid_namespaces() {
            console(&format!("cannot install the no-pid-namespaces filter: {e}"));
        }
    }
    let port_name = options.results_port.as_str();
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
    let left_behind = crate::vm_runs::run_all(&scenarios, lanes, &mut |s, event| {
        send(
            &mut port,
            &VmFrame::Event {
                scenario: s.name.clone(),
                event: event.clone(),
            },
        )
    });
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
    if options.stay_up {
        loop {
            // SAFETY: pause takes nothing; init waits to be stopped.
            unsafe { libc::pause() };
        }
    }
    power_off()
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

/// For testing the harness against a kernel without pid namespaces (as
/// Asterinas is): a seccomp filter on init, inherited by everything it
/// starts, makes clone(2) and unshare(2) with CLONE_NEWPID fail with EINVAL,
/// and clone3(2) (whose flags a filter cannot read) with ENOSYS, as on a
/// kernel that predates it. The kernel itself then returns those errnos.
pub fn pretend_no_pid_namespaces() -> Result<(), Errno> {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |op: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let ret = |k: u32| stmt(libc::BPF_RET | libc::BPF_K, k);
    let program = [
        load(4),                                               // 0: seccomp_data.arch
        jump(libc::BPF_JEQ, AUDIT_ARCH_X86_64, 0, 5),          // 1: another arch: allow
        load(0),                                               // 2: seccomp_data.nr
        jump(libc::BPF_JEQ, libc::SYS_clone3 as u32, 5, 0),    // 3: to ENOSYS
        jump(libc::BPF_JEQ, libc::SYS_clone as u32, 2, 0),     // 4: to the flags
        jump(libc::BPF_JEQ, libc::SYS_unshare as u32, 1, 0),   // 5: to the flags
        ret(libc::SECCOMP_RET_ALLOW),                          // 6
        load(16),                                              // 7: args[0], low half
        jump(libc::BPF_JSET, libc::CLONE_NEWPID as u32, 2, 0), // 8: to EINVAL
        ret(libc::SECCOMP_RET_ALLOW),                          // 9
        ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),    // 10
        ret(libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),    // 11
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the filter is read during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(r).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn init_options_come_from_the_command_line() {
        let o = InitOptions::parse(&[]).unwrap();
        assert_eq!(o.results_port, "/dev/ttyS1");
        assert!(!o.stay_up && !o.simulate_no_pid_namespaces);
        let o = InitOptions::parse(&words(&[
            "stay-up",
            "no-pid-namespaces",
            "results=/dev/ttyS0",
        ]))
        .unwrap();
        assert_eq!(o.results_port, "/dev/ttyS0");
        assert!(o.stay_up && o.simulate_no_pid_namespaces);
        assert!(InitOptions::parse(&words(&["results=ttyS0"])).is_err());
        assert!(InitOptions::parse(&words(&["no-such-mode"])).is_err());
    }
}
