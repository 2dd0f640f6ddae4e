//! The agent as a VM's global init (pid 1 of the whole machine). It mounts
//! what a kernel without userspace lacks, then runs each scenario of
//! /scenarios.json the way the harness does on a host: the agent's root as a
//! child (in a fresh pid and mount namespace unless the scenario asks for
//! ours), the scenario on its stdin and its events on fd 3, under the
//! scenario's deadline. Being single-threaded, init forks that root without
//! exec. Events go out framed on the second serial port; the console
//! (ttyS0, our fds 0-2) carries diagnostics and the kernel log. Finally it
//! powers the machine off.
//!
//! Nothing here may assume more than the syscall ABI: a missing mount or /proc
//! file is reported, never fatal, because init exiting panics the kernel.

use crate::poll;
use nix::errno::Errno;
use orphanage_agent_io::{above_std_fds, clone_flag_names, pipe, read_events, reap_within};
use orphanage_scenario::{Event, Namespace, Verdict, VmFrame, VmScenario, VM_SCENARIOS_PATH};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The agent inside the initramfs, named in the reasons of a silent agent.
const AGENT_PATH: &str = "/init";
/// The result port: the second serial port.
const RESULTS_PORT: &str = "/dev/ttyS1";
/// How long an agent that closed its event pipe may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

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

/// `simulate_no_pid_namespaces`: see `pretend_no_pid_namespaces`.
pub fn main(simulate_no_pid_namespaces: bool) -> ! {
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
    if simulate_no_pid_namespaces {
        if let Err(e) = pretend_no_pid_namespaces() {
            console(&format!("cannot install the no-pid-namespaces filter: {e}"));
        }
    }
    let mut port = match open_results_port() {
        Ok(p) => p,
        Err(e) => {
            console(&format!(
                "cannot open {RESULTS_PORT}: {e}; nothing can be reported"
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
    for s in &scenarios {
        let verdict = run_one(s, &mut port);
        send(
            &mut port,
            &VmFrame::Event {
                scenario: s.name.clone(),
                event: Event::Finished {
                    verdict: verdict.0,
                    steps_ms: verdict.1,
                },
            },
        );
        clean_slate();
    }
    send(&mut port, &VmFrame::Done);
    let _ = port.flush();
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
fn open_results_port() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(RESULTS_PORT)?;
    if let Ok(mut t) = nix::sys::termios::tcgetattr(&port) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(&port, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    Ok(port)
}

fn send(port: &mut std::fs::File, frame: &VmFrame) {
    if let Err(e) = port.write_all(&frame.to_line()) {
        console(&format!("writing to {RESULTS_PORT}: {e}"));
    }
}

/// Between scenarios nothing but init may live: kill(-1) reaches every
/// process except init itself, then everything is reaped, so no orphan of one
/// scenario (they all come to us) can disturb the next.
fn clean_slate() {
    // SAFETY: plain syscalls; as init we are exempt from kill(-1).
    unsafe { libc::kill(-1, libc::SIGKILL) };
    let _ = poll::until(EXIT_GRACE, || {
        loop {
            // SAFETY: reaping whatever child is ready.
            let r =
                unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
            if r > 0 {
                continue;
            }
            // ECHILD: nothing left. 0: some are still dying.
            return (r < 0).then_some(());
        }
    });
}

/// Runs one scenario; returns its verdict and the time its steps took. Notes
/// are forwarded as they come; the verdict is sent by the caller.
fn run_one(s: &VmScenario, port: &mut std::fs::File) -> (Verdict, f64) {
    match run_agent(s, port) {
        Ok(v) => v,
        Err(v) => (v, 0.0),
    }
}

fn run_agent(s: &VmScenario, port: &mut std::fs::File) -> Result<(Verdict, f64), Verdict> {
    let broken = |e: std::io::Error| Verdict::broken(format!("making the agent's pipes: {e}"));
    let (stdin_r, stdin_w) = pipe().map_err(broken)?;
    let (events_r, events_w) = pipe().map_err(broken)?;
    let (err_r, err_w) = pipe().map_err(broken)?;
    let high = |fd| above_std_fds(fd).map_err(broken);
    let (stdin_r, events_w, err_w) = (high(stdin_r)?, high(events_w)?, high(err_w)?);
    let mut flags = libc::SIGCHLD as libc::c_ulong;
    if s.scenario.namespace == Namespace::Fresh {
        flags |= (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong;
    }
    let (fd_in, fd_ev, fd_err) = (stdin_r.as_raw_fd(), events_w.as_raw_fd(), err_w.as_raw_fd());
    // SAFETY: init is single-threaded, so the child may go on in Rust without
    // exec: it becomes the agent's root directly. Under TCG that skips
    // loading and relocating the agent and re-translating its code for each
    // scenario. The child never returns here.
    let pid =
        unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid == 0 {
        // SAFETY: plain fd calls on fds prepared above.
        unsafe {
            libc::dup2(fd_in, 0);
            libc::dup2(fd_err, 1);
            libc::dup2(fd_err, 2);
            libc::dup2(fd_ev, 3);
            // Its own session and group, so everything it leaves in our
            // namespace can be killed as a group.
            libc::setsid();
        }
        // Nothing of init's (the results port, the other pipes) stays open in the scenario.
        crate::fds::close_all_except(&[0, 1, 2, 3]);
        crate::controller::main();
    }
    if pid < 0 {
        let e = Errno::last();
        let what = format!("clone({})", clone_flag_names(flags));
        return Err(match e {
            // Asterinas, for one, has no pid namespaces and says EINVAL.
            Errno::EINVAL | Errno::EPERM | Errno::ENOSPC | Errno::EUSERS => {
                Verdict::unsupported(format!(
                    "{what}: {} (needs pid namespaces)",
                    orphanage_scenario::ErrnoName(e)
                ))
            }
            _ => Verdict::broken(format!("{what}: {e}")),
        });
    }
    drop((stdin_r, events_w, err_w));
    let json = serde_json::to_vec(&s.scenario).expect("scenarios serialize");
    let mut stdin = std::fs::File::from(stdin_w);
    let _ = stdin.write_all(&json);
    drop(stdin);
    Ok(collect(s, pid, &events_r, &err_r, port))
}

/// Reads the agent's events until it closes fd 3 or the deadline passes,
/// forwarding notes, and returns the verdict.
fn collect(
    s: &VmScenario,
    pid: i32,
    events: &OwnedFd,
    stderr: &OwnedFd,
    port: &mut std::fs::File,
) -> (Verdict, f64) {
    let deadline = s.scenario.deadline();
    let mut reading = read_events(events, stderr, Instant::now(), deadline, &mut |event| {
        // Only what the report keeps crosses the serial port: notes and the
        // verdict (sent by our caller). Step progress stays here for timeouts.
        if let Event::Note { .. } = event {
            send(
                port,
                &VmFrame::Event {
                    scenario: s.name.clone(),
                    event: event.clone(),
                },
            )
        }
    });
    // SAFETY: SIGKILL to our unreaped child and, for the caller's namespace, its group.
    let kill = || unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(-pid, libc::SIGKILL);
    };
    if reading.timed_out {
        kill();
    }
    let grace = if reading.timed_out {
        Duration::ZERO
    } else {
        EXIT_GRACE
    };
    let status = reap_within(pid, grace, &kill);
    reading.drain_stderr(stderr);
    match reading.finished.take() {
        Some(finished) => finished,
        None => (
            reading.verdict_without_finish(status, deadline, AGENT_PATH),
            0.0,
        ),
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
