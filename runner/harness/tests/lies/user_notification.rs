//! Lies that need more than an errno: seccomp user notification (Linux 5.0;
//! letting a call run on since 5.5) hands one syscall of orphanage and all it
//! starts to a supervisor thread in this test, which answers in the kernel's
//! place. It fakes a result where the lie applies to the call, and lets the
//! call run where it does not, so exactly one behaviour is false.
//!
//! Only the agent is lied to (its processes are named `orphanage-agent`):
//! the harness waits and kills through the same syscalls to clean up, and a
//! lie there would test the harness, not the scenarios.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the supervised syscall does instead of the truth.
#[derive(Debug, Clone, Copy)]
pub enum Forgery {
    /// `waitid(P_PIDFD, fd, WEXITED)` answers as `P_ALL` would: for another
    /// child of the caller that has exited (without reaping it: only the
    /// kernel can), when there is one.
    PidfdWaitAnswersForAnotherChild,
    /// `kill(pid, sig)` delivers with `si_pid` the sender's pid as its own
    /// namespace numbers it, untranslated into the receiver's: across a
    /// namespace boundary the receiver sees a pid that is not 0.
    KillLeaksTheSendersOwnPid,
    /// `kill(pid, sig)` delivers naming the sender's parent as the sender,
    /// numbered as the sender's namespace numbers it (so never 0).
    KillNamesTheSendersParent,
}

impl Forgery {
    /// The syscall to supervise, and an argument (index, value) it must have.
    fn syscall(self) -> (libc::c_long, Option<(u32, u32)>) {
        match self {
            Forgery::PidfdWaitAnswersForAnotherChild => {
                (libc::SYS_waitid, Some((0, libc::P_PIDFD)))
            }
            Forgery::KillLeaksTheSendersOwnPid | Forgery::KillNamesTheSendersParent => {
                (libc::SYS_kill, None)
            }
        }
    }
}

/// The BPF program: `action` for the supervised call, everything else allowed.
pub fn filter(
    syscall: libc::c_long,
    arg: Option<(u32, u32, bool)>,
    action: u32,
) -> Vec<libc::sock_filter> {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (its low half first on x86_64).
    // The action is the second-to-last instruction; every jump to "allow" lands on the last.
    let mut program = vec![load(4)];
    let arg_len = if arg.is_some() { 2 } else { 0 };
    program.push(jump(AUDIT_ARCH_X86_64, 0, 3 + arg_len));
    program.push(load(0));
    program.push(jump(syscall as u32, 0, 1 + arg_len));
    if let Some((index, value, equal)) = arg {
        program.push(load(16 + 8 * index));
        program.push(if equal {
            jump(value, 0, 1)
        } else {
            jump(value, 1, 0)
        });
    }
    program.push(stmt(libc::BPF_RET | libc::BPF_K, action));
    program.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    program
}

/// A command that will be supervised once spawned: its filter is installed
/// between fork and exec, and the listener comes back over a socket.
pub struct Pending {
    forgery: Forgery,
    ours: OwnedFd,
    /// The child's end (close-on-exec): closed here once it has been spawned,
    /// so a child that died before sending is an end of file, not a hang.
    theirs: OwnedFd,
}

/// Installs the filter in `cmd`'s child before exec (so it binds orphanage
/// and every agent) and arranges for its listener to reach us.
pub fn prepare(cmd: &mut std::process::Command, forgery: Forgery) -> Pending {
    use std::os::unix::process::CommandExt;
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let (syscall, arg) = forgery.syscall();
    let program = Box::leak(
        filter(
            syscall,
            arg.map(|(i, v)| (i, v, true)),
            libc::SECCOMP_RET_USER_NOTIF,
        )
        .into_boxed_slice(),
    );
    let fprog = Box::leak(Box::new(libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    }));
    let fprog_addr = fprog as *const libc::sock_fprog as usize;
    let theirs_fd = theirs.as_raw_fd();
    // SAFETY: only prctl, seccomp, sendmsg and close between fork and exec,
    // all async-signal-safe, on memory leaked above or on this stack.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let listener = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                fprog_addr,
            ) as RawFd;
            if listener < 0 {
                return Err(std::io::Error::last_os_error());
            }
            send_fd(theirs_fd, listener)?;
            libc::close(listener);
            libc::close(theirs_fd);
            Ok(())
        });
    }
    Pending {
        forgery,
        ours,
        theirs,
    }
}

/// sendmsg with SCM_RIGHTS, built on the stack: no allocation after fork.
fn send_fd(socket: RawFd, fd: RawFd) -> std::io::Result<()> {
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    let mut control = Control([0; 64]);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(socket, &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In the parent, where allocating is fine: nix's recvmsg, not send_fd's by hand.
fn receive_fd(socket: RawFd) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let got = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap_or_else(|e| panic!("the child sent no seccomp listener: {e}"));
    let fd = got
        .cmsgs()
        .expect("the control message fits")
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("the child sent no seccomp listener (end of file)");
    // SAFETY: SCM_RIGHTS just gave us this fd; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The supervisor thread, answering until stopped.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Tally>,
}

/// How often the supervised call was answered with the lie, and how often truly.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub lied: usize,
    pub let_run: usize,
}

impl Pending {
    /// Once the command has been spawned: takes its listener and starts answering.
    pub fn start(self) -> Supervisor {
        drop(self.theirs);
        let listener = receive_fd(self.ours.as_raw_fd());
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let forgery = self.forgery;
        let thread = std::thread::spawn(move || supervise(&listener, forgery, &stopping));
        Supervisor { stop, thread }
    }
}

impl Supervisor {
    /// After the command has ended.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn supervise(listener: &OwnedFd, forgery: Forgery, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::SeqCst) {
        let mut p = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // A bounded poll, so a stop is seen even when nothing more comes.
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        if p.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more (Linux 5.8+).
            if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                break;
            }
            continue;
        }
        // SAFETY: the kernel wants a zeroed seccomp_notif to fill.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: a valid seccomp_notif for the RECV ioctl.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notif,
            )
        } < 0
        {
            // The caller was killed while we looked (ENOENT), or a signal came.
            continue;
        }
        let caller = notif.pid as i32;
        let args = notif.data.args;
        let answer = if is_agent(caller) {
            match forgery {
                Forgery::PidfdWaitAnswersForAnotherChild => {
                    forge_pidfd_wait(listener, notif.id, caller, &args)
                }
                Forgery::KillLeaksTheSendersOwnPid | Forgery::KillNamesTheSendersParent => {
                    forge_kill(listener, notif.id, forgery, caller, &args)
                }
            }
        } else {
            None
        };
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match answer {
            Some(()) => tally.lied += 1,
            None => {
                tally.let_run += 1;
                resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            }
        }
        // SAFETY: a valid response; failure means the caller is gone.
        unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        };
    }
    tally
}

fn is_agent(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim() == "orphanage-agent")
}

fn status_field(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The pid of `pid` in each pid namespace it is in, outermost first.
fn ns_pids(pid: i32) -> Vec<i32> {
    status_field(pid, "NSpid")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `pid`'s pid in the namespace `of` is in (None if it is not there).
fn pid_as_seen_by(pid: i32, of: i32) -> Option<i32> {
    let level = ns_pids(of).len();
    ns_pids(pid).get(level.checked_sub(1)?).copied()
}

/// Fields of /proc/PID/stat after the command, from field 3 (the state) on.
fn stat_fields(pid: i32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    text.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Every child of every thread of `pid`, oldest first within each thread.
fn children_of(pid: i32) -> Vec<i32> {
    let mut children = vec![];
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    children
}

/// A siginfo_t as x86_64 lays it out: signo, errno, code, then the union
/// from byte 16 (si_pid, si_uid, then si_status or si_value).
#[repr(C, align(8))]
struct RawSiginfo([u8; 128]);

impl RawSiginfo {
    fn new(signo: i32, code: i32, pid: i32, status: i32) -> RawSiginfo {
        let mut raw = [0u8; 128];
        raw[0..4].copy_from_slice(&signo.to_ne_bytes());
        raw[8..12].copy_from_slice(&code.to_ne_bytes());
        raw[16..20].copy_from_slice(&pid.to_ne_bytes());
        raw[24..28].copy_from_slice(&status.to_ne_bytes());
        RawSiginfo(raw)
    }
}

/// waitid(P_PIDFD) as P_ALL: reports another exited child of the caller,
/// written into the caller's siginfo as the kernel would, and returns 0.
fn forge_pidfd_wait(listener: &OwnedFd, id: u64, caller: i32, args: &[u64; 6]) -> Option<()> {
    let (fd, infop, options) = (args[1] as i32, args[2], args[3] as i32);
    if options & libc::WEXITED == 0 || infop == 0 {
        return None;
    }
    let fdinfo = std::fs::read_to_string(format!("/proc/{caller}/fdinfo/{fd}")).ok()?;
    let target: i32 = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    let other = children_of(caller)
        .into_iter()
        .find(|&c| c != target && stat_fields(c).first().is_some_and(|s| s == "Z"))?;
    let other_there = pid_as_seen_by(other, caller)?;
    // Field 52, exit_code: the wait status, as waitpid would give it.
    let status: i32 = stat_fields(other).get(49)?.parse().ok()?;
    let (code, value) = if libc::WIFEXITED(status) {
        (libc::CLD_EXITED, libc::WEXITSTATUS(status))
    } else if libc::WCOREDUMP(status) {
        (libc::CLD_DUMPED, libc::WTERMSIG(status))
    } else {
        (libc::CLD_KILLED, libc::WTERMSIG(status))
    };
    let info = RawSiginfo::new(libc::SIGCHLD, code, other_there, value);
    let mut id = id;
    // SAFETY: the ID_VALID ioctl reads one u64: the caller is still in the call.
    if unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id,
        )
    } < 0
    {
        return None;
    }
    let local = libc::iovec {
        iov_base: info.0.as_ptr() as *mut libc::c_void,
        iov_len: info.0.len(),
    };
    let remote = libc::iovec {
        iov_base: infop as *mut libc::c_void,
        iov_len: info.0.len(),
    };
    // SAFETY: one iovec each way; the kernel checks the caller's address.
    let written = unsafe { libc::process_vm_writev(caller, &local, 1, &remote, 1, 0) };
    (written == info.0.len() as isize).then_some(())
}

/// kill(pid, sig) delivered by a helper with a forged sender: returns
/// Some once the signal is queued, None to let the real kill run.
fn forge_kill(
    listener: &OwnedFd,
    id: u64,
    forgery: Forgery,
    caller: i32,
    args: &[u64; 6],
) -> Option<()> {
    let (pid, sig) = (args[0] as i32, args[1] as i32);
    // Only one process, and only signals that can be caught: for SIGKILL and
    // SIGSTOP a sender outside the receiver's namespace is forced on a
    // namespace init where one inside is not, and the helper sends from inside.
    if pid <= 0 || sig <= 0 || sig == libc::SIGKILL || sig == libc::SIGSTOP {
        return None;
    }
    let forged = match forgery {
        Forgery::KillLeaksTheSendersOwnPid => *ns_pids(caller).last()?,
        Forgery::KillNamesTheSendersParent => {
            let parent: i32 = status_field(caller, "PPid")?.parse().ok()?;
            pid_as_seen_by(parent, caller).filter(|&p| p > 0)?
        }
        Forgery::PidfdWaitAnswersForAnotherChild => return None,
    };
    let uid: u32 = status_field(caller, "Uid")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut info = RawSiginfo::new(sig, libc::SI_QUEUE, forged, 0);
    info.0[20..24].copy_from_slice(&uid.to_ne_bytes());
    let sender_ns = std::fs::File::open(format!("/proc/{caller}/ns/pid")).ok()?;
    // All read from /proc by pid: only if the caller is still in the call
    // is that pid still the caller (a killed one's may be another's now).
    let mut id = id;
    // SAFETY: the ID_VALID ioctl reads one u64.
    if unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id,
        )
    } < 0
    {
        return None;
    }
    (send_from_inside(&sender_ns, pid, sig, &info) == 0).then_some(())
}

/// Sends `sig` with `info` to `pid` as numbered in `sender_ns`, from a helper
/// inside the receiver's own namespace: from an ancestor, the kernel would
/// set si_pid to 0 (send_signal_locked()). A chain of three forks: the first
/// joins the sender's namespace, the second opens a pidfd of the receiver and
/// joins its namespace, the third sends. Returns 0 or the errno.
fn send_from_inside(sender_ns: &std::fs::File, pid: i32, sig: i32, info: &RawSiginfo) -> i32 {
    let ns_fd = sender_ns.as_raw_fd();
    let info_addr = info.0.as_ptr() as usize;
    // SAFETY: this test is multithreaded, so the children make only raw
    // syscalls (setns, fork, pidfd_open, pidfd_send_signal, waitpid, _exit)
    // on memory prepared before the fork.
    unsafe {
        let first = libc::fork();
        if first == 0 {
            if libc::setns(ns_fd, libc::CLONE_NEWPID) != 0 {
                libc::_exit(errno());
            }
            libc::_exit(in_child(|| {
                let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
                if pidfd < 0 {
                    return errno();
                }
                if libc::setns(pidfd, libc::CLONE_NEWPID) != 0 {
                    return errno();
                }
                in_child(|| {
                    if libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, info_addr, 0) != 0 {
                        return errno();
                    }
                    0
                })
            }));
        }
        exit_code_of(first)
    }
}

/// Forks; the child runs `body` and exits with what it returns. Returns the
/// child's exit code, or the errno of a failed fork.
///
/// # Safety
/// For a forked child of a multithreaded process: `body` must make only
/// async-signal-safe calls.
unsafe fn in_child(body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: as the caller promises.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            libc::_exit(body());
        }
        exit_code_of(child)
    }
}

/// # Safety
/// `child` is our child (or negative from a failed fork).
unsafe fn exit_code_of(child: i32) -> i32 {
    if child < 0 {
        return errno();
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child, into a local.
    while unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        if errno() != libc::EINTR {
            return errno();
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        libc::EINTR
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
