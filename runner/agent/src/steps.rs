//! The steps a scenario process performs itself. Each returns notes worth
//! reporting, or the verdict that ends the scenario. Every expectation reads
//! an effect: the errno a call returns, the status a wait reports, the byte a
//! read finds.

use crate::handles::{self, Handle};
use crate::protocol::Pids;
use crate::{measure, poll, procfs, signals, spawn};
use nix::errno::Errno;
use orphanage_agent_io::pidfd_open;
use orphanage_scenario::{
    describe_expected_status, ErrnoName, ExpectedStatus, SignalName, Step, Verdict, WaitApi,
    WaitFlag, WaitStatus, WaitTarget,
};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub type StepResult = Result<Vec<String>, Verdict>;

/// A global that the clone-isolation checks write in one process and read in
/// another. Its nonzero initial value puts it in .data, a file-backed private
/// page of the executable, like runc's `current_stage`: such pages are what
/// the pre-5.5 F_SEAL_FUTURE_WRITE bug shared between parent and child
/// (seed 004). In .bss (anonymous memory) the check could pass on a buggy kernel.
pub const GLOBAL_INITIAL: u64 = 0x6f72_7068_616e_6167;
static GLOBAL: AtomicU64 = AtomicU64::new(GLOBAL_INITIAL);

const DEFAULT_WITHIN: Duration = Duration::from_secs(2);

/// Compares a call's result with the errno the step expects (none: success).
pub fn expect_errno<T>(
    who: &str,
    what: &str,
    result: Result<T, Errno>,
    expected: Option<ErrnoName>,
) -> Result<Option<T>, Verdict> {
    match (result, expected) {
        (Ok(v), None) => Ok(Some(v)),
        (Err(e), Some(x)) if e == x.0 => Ok(None),
        (Ok(_), Some(x)) => Err(Verdict::fail(format!(
            "{who}: {what}: expected {x}, observed success"
        ))),
        (Err(e), Some(x)) => Err(Verdict::fail(format!(
            "{who}: {what}: expected {x}, observed {}",
            ErrnoName(e)
        ))),
        (Err(e), None) => Err(Verdict::fail(format!(
            "{who}: {what}: expected success, observed {}",
            ErrnoName(e)
        ))),
    }
}

fn pid_of(pids: &Pids, name: &str) -> Result<i32, Verdict> {
    match pids.get(name) {
        Some(&pid) if pid > 0 => Ok(pid),
        Some(_) => Err(Verdict::broken(format!(
            "`{name}` is not visible from this pid namespace"
        ))),
        None => Err(Verdict::broken(format!("`{name}` is not running"))),
    }
}

/// Names a pid as seen by this process, for messages: "sub (pid 3)".
pub fn describe_pid(pids: &Pids, pid: i32) -> String {
    // Pid 0 is no process (invisible ones are 0 in `pids`): never name one for it.
    match pids.iter().find(|(_, &p)| p == pid) {
        _ if pid == 0 => "no process visible here (pid 0)".to_string(),
        Some((name, _)) => format!("{name} (pid {pid})"),
        None => format!("pid {pid}"),
    }
}

fn check(cond: bool, message: impl FnOnce() -> String) -> Result<(), Verdict> {
    if cond {
        Ok(())
    } else {
        Err(Verdict::fail(message()))
    }
}

fn last<T>(ret: T, ok: bool) -> Result<T, Errno> {
    if ok {
        Ok(ret)
    } else {
        Err(Errno::last())
    }
}

pub fn perform(who: &str, step: &Step, pids: &Pids, passed_fd: Option<OwnedFd>) -> StepResult {
    let mut notes = Vec::new();
    match step {
        Step::Spawn {
            name,
            how,
            exit_signal,
            errno,
            ..
        } => {
            let sock =
                passed_fd.ok_or_else(|| Verdict::broken("spawn request came without a socket"))?;
            let what = format!("spawn {name} ({how:?})");
            if let Some(Some(note)) = expect_errno(
                who,
                &what,
                spawn::spawn(name.as_str(), *how, exit_signal.map(|s| s.0), sock),
                *errno,
            )? {
                notes.push(note);
            }
        }
        Step::Setsid { .. } => {
            expect_errno(who, "setsid()", nix::unistd::setsid().map(|_| ()), None)?;
        }
        Step::Detach { .. } => crate::worker::detach(),
        Step::SetSubreaper { value, errno, .. } => {
            // SAFETY: prctl with integer arguments.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_CHILD_SUBREAPER,
                    *value as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            expect_errno(
                who,
                &format!("prctl(PR_SET_CHILD_SUBREAPER, {value})"),
                last(r, r == 0),
                *errno,
            )?;
        }
        Step::ExpectSubreaper {
            is,
            bad_pointer,
            errno,
            ..
        } => {
            if *bad_pointer {
                // An address in the never-mapped first page: put_user must fault.
                // SAFETY: the kernel validates the pointer; we never dereference it.
                let r = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, 8usize, 0, 0, 0) };
                expect_errno(
                    who,
                    "prctl(PR_GET_CHILD_SUBREAPER, bad pointer)",
                    last(r, r == 0),
                    *errno,
                )?;
            } else {
                let mut value: libc::c_int = -1;
                // SAFETY: the kernel writes one int to a valid pointer.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_GET_CHILD_SUBREAPER,
                        &mut value as *mut libc::c_int,
                        0,
                        0,
                        0,
                    )
                };
                expect_errno(who, "prctl(PR_GET_CHILD_SUBREAPER)", last(r, r == 0), None)?;
                let want = is.unwrap_or(0);
                check(value as u64 == want, || {
                    format!("{who}: PR_GET_CHILD_SUBREAPER: expected {want}, observed {value}")
                })?;
            }
        }
        Step::SetPdeathsig { signal, .. } => {
            // SAFETY: prctl with integer arguments.
            let r =
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal.0 as libc::c_ulong, 0, 0, 0) };
            expect_errno(
                who,
                &format!("prctl(PR_SET_PDEATHSIG, {signal})"),
                last(r, r == 0),
                None,
            )?;
        }
        Step::ExpectPdeathsig { is, .. } => {
            let mut value: libc::c_int = -1;
            // SAFETY: the kernel writes one int.
            let r = unsafe {
                libc::prctl(
                    libc::PR_GET_PDEATHSIG,
                    &mut value as *mut libc::c_int,
                    0,
                    0,
                    0,
                )
            };
            expect_errno(who, "prctl(PR_GET_PDEATHSIG)", last(r, r == 0), None)?;
            let want = is.0.map_or(0, |s| s.0 as i32);
            let name = |v: i32| {
                if v == 0 {
                    "none".to_string()
                } else {
                    signal_name(v)
                }
            };
            check(value == want, || {
                format!(
                    "{who}: PR_GET_PDEATHSIG: expected {}, observed {}",
                    name(want),
                    name(value)
                )
            })?;
        }
        Step::Catch {
            signals: list,
            nocldwait,
            ..
        } => {
            for s in list {
                expect_errno(
                    who,
                    &format!("sigaction({s})"),
                    signals::catch(s.0, *nocldwait),
                    None,
                )?;
            }
        }
        Step::Ignore { signal, every, .. } => {
            for signal in orphanage_scenario::ignored_signals(*signal, *every) {
                expect_errno(
                    who,
                    &format!("sigaction({signal}, SIG_IGN)"),
                    signals::ignore(signal.0),
                    None,
                )?;
            }
            if *every {
                expect_errno(
                    who,
                    "sigaction(SIGRTMIN..SIGRTMAX, SIG_IGN)",
                    signals::ignore_realtime(),
                    None,
                )?;
            }
        }
        Step::AutoReap { .. } => {
            expect_errno(
                who,
                "sigaction(SIGCHLD, reaper)",
                signals::auto_reap(),
                None,
            )?;
        }
        Step::Kill {
            target,
            signal,
            group,
            errno,
            ..
        } => {
            let pid = pid_of(pids, target.as_str())?;
            let (what, dest) = if *group {
                let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
                    .map_err(|e| Verdict::fail(format!("{who}: getpgid({pid}): {e}")))?;
                (
                    format!("kill(-{pgid} ({target}'s group), {signal})"),
                    -pgid.as_raw(),
                )
            } else {
                (
                    format!("kill({} , {signal})", describe_pid(pids, pid)).replace(" ,", ","),
                    pid,
                )
            };
            // SAFETY: kill(2) with plain integers.
            let r = unsafe { libc::kill(dest, signal.0 as i32) };
            expect_errno(who, &what, last(r, r == 0), *errno)?;
        }
        Step::ExpectSignal {
            signal,
            from,
            count,
            at_most,
            within,
            ..
        } => {
            notes.extend(expect_signal(
                who,
                pids,
                *signal,
                from.as_ref().map(|f| f.as_str()),
                (*count, *at_most),
                within.map(|d| d.0),
            )?);
        }
        Step::Wait {
            target,
            api,
            flags,
            status,
            errno,
            ..
        } => {
            notes.extend(wait(who, pids, target, *api, flags, *status, *errno)?);
        }
        Step::PidfdOpen {
            target,
            handle,
            errno,
            ..
        } => {
            let pid = pid_of(pids, target.as_str())?;
            if let Some(fd) = expect_errno(
                who,
                &format!("pidfd_open({target})"),
                pidfd_open(pid),
                *errno,
            )? {
                handles::insert(handle.as_str(), Handle::Fd(fd.into_raw_fd()));
            }
        }
        Step::ExpectPidfd {
            handle, readable, ..
        } => {
            let fd = handles::fd(handle.as_str())?;
            let observed = poll_readable(fd, 0);
            check(observed == *readable, || {
                format!("{who}: poll({handle}) readable: expected {readable}, observed {observed}")
            })?;
        }
        Step::ExpectExe { memfd, .. } => {
            let exe = std::fs::read_link("/proc/self/exe").map_err(|e| {
                Verdict::unsupported(format!(
                    "readlink(/proc/self/exe): {}",
                    ErrnoName(procfs::io_errno(e))
                ))
            })?;
            let exe = exe.to_string_lossy();
            let is_memfd = exe.starts_with("/memfd:");
            check(is_memfd == *memfd, || {
                format!(
                    "{who}: /proc/self/exe: expected {}, observed {exe}",
                    if *memfd { "a memfd" } else { "a file" }
                )
            })?;
        }
        Step::SetGlobal { value, .. } => GLOBAL.store(*value, Ordering::SeqCst),
        Step::ExpectGlobal { is, .. } => {
            let value = GLOBAL.load(Ordering::SeqCst);
            check(value == *is, || {
                format!("{who}: global variable: expected {is}, observed {value}")
            })?;
        }
        Step::Sysctl {
            name, value, errno, ..
        } => {
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            let r = std::fs::write(&path, value).map_err(procfs::io_errno);
            expect_errno(who, &format!("write {value} to {path}"), r, *errno)?;
        }
        Step::MeasureExitDetection {
            method,
            samples,
            within,
            ..
        } => {
            notes.push(measure::exit_detection(
                *method,
                *samples,
                within.map_or(measure::GIVE_UP, |d| d.0),
            )?);
        }
        Step::MemfdCreate { .. }
        | Step::Pipe { .. }
        | Step::Write { .. }
        | Step::Truncate { .. }
        | Step::AddSeals { .. }
        | Step::ExpectSeals { .. }
        | Step::Mmap { .. }
        | Step::Store { .. }
        | Step::ExpectByte { .. }
        | Step::ExpectSize { .. }
        | Step::ExpectCloexec { .. }
        | Step::Close { .. } => notes.extend(crate::memfd::perform(who, step)?),
        Step::Exit { .. }
        | Step::Exec { .. }
        | Step::ExpectParent { .. }
        | Step::ExpectState { .. }
        | Step::Observe { .. } => {
            return Err(Verdict::broken(format!(
                "step {} is the root's to perform",
                step.keyword()
            )));
        }
        Step::RuntimeKill { .. }
        | Step::RuntimeDelete { .. }
        | Step::ExpectGone { .. }
        | Step::ExpectAlive { .. }
        | Step::ExpectContainerExit { .. } => {
            return Err(Verdict::broken(format!(
                "step {} is the harness's to perform",
                step.keyword()
            )));
        }
    }
    Ok(notes)
}

pub use orphanage_scenario::signal_name;

/// poll(2) for readability within `timeout_ms`. poll is never restarted after
/// a signal handler (SA_RESTART notwithstanding), and scenarios install handlers,
/// so EINTR means "poll again for the time left".
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    loop {
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_millis() as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left) };
        if r == -1 && Errno::last() == Errno::EINTR {
            continue;
        }
        return r > 0 && pfd.revents & libc::POLLIN != 0;
    }
}

fn expect_signal(
    who: &str,
    pids: &Pids,
    signal: SignalName,
    from: Option<&str>,
    (count, at_most): (Option<u32>, Option<u32>),
    within: Option<Duration>,
) -> StepResult {
    // A sender with no pid in this namespace (0 in `pids`: it lives in an
    // ancestor namespace) must show as si_pid 0 (pid_namespaces(7)).
    let sender = from
        .map(|f| {
            pids.get(f)
                .copied()
                .ok_or_else(|| Verdict::broken(format!("`{f}` is not running")))
        })
        .transpose()?;
    let matching = || {
        signals::received()
            .into_iter()
            .filter(|&(signo, pid)| signo == signal.0 as i32 && sender.is_none_or(|s| s == pid))
            .count() as u32
    };
    let from_text = match (from, sender) {
        (Some(f), Some(0)) => format!(" from {f} (outside this pid namespace: sender pid 0)"),
        (Some(f), _) => format!(" from {f}"),
        (None, _) => String::new(),
    };
    if count == Some(0) {
        // Signals queued before this request are handled before it is read,
        // so "none so far" is a fact, not a race.
        let n = matching();
        let all: Vec<String> = signals::received()
            .iter()
            .map(|&(s, p)| format!("{} from {}", signal_name(s), describe_pid(pids, p)))
            .collect();
        return check(n == 0, || {
            format!(
                "{who}: expected no {signal}{from_text}, observed {n} (received: {})",
                all.join(", ")
            )
        })
        .map(|_| vec![]);
    }
    let want = count.unwrap_or(1);
    let deadline = within.unwrap_or(DEFAULT_WITHIN);
    let wake = signals::wake_read_fd();
    let start = std::time::Instant::now();
    loop {
        let n = matching();
        if n >= want {
            if let Some(most) = at_most.filter(|&most| n > most) {
                return Err(Verdict::fail(format!(
                    "{who}: expected at most {most} {signal}{from_text}, observed {n}"
                )));
            }
            let took = start.elapsed();
            return Ok(if took > Duration::from_micros(100) {
                vec![format!(
                    "{who} caught {signal}{from_text} {} after asking",
                    poll::micros(took)
                )]
            } else {
                vec![]
            });
        }
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            let all: Vec<String> = signals::received()
                .iter()
                .map(|&(s, p)| format!("{} from {}", signal_name(s), describe_pid(pids, p)))
                .collect();
            let seen = if all.is_empty() {
                "nothing".to_string()
            } else {
                all.join(", ")
            };
            return Err(Verdict::fail(format!(
                "{who}: expected {signal}{from_text} within {}, observed {seen}",
                poll::micros(deadline)
            )));
        }
        // Wait for the handler's wake-up byte, then drain it.
        poll_readable(wake, left.as_millis().max(1) as i32);
        let mut buf = [0u8; 64];
        // SAFETY: non-blocking read into a local buffer.
        while unsafe { libc::read(wake, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

/// What a wait call reported.
/// What a wait reported: a child's status, or (WNOHANG) nothing yet.
#[derive(Debug, PartialEq)]
enum Observed {
    Ended(WaitStatus),
    Running,
    /// A siginfo no child's status has: the kernel's words, as they came.
    Unknown(String),
}

impl Observed {
    fn describe(&self) -> String {
        match self {
            Observed::Ended(status) => status.to_string(),
            Observed::Running => describe_expected_status(ExpectedStatus::Running),
            Observed::Unknown(what) => what.clone(),
        }
    }

    fn matches(&self, expected: ExpectedStatus) -> bool {
        match self {
            Observed::Ended(status) => status.matches(expected),
            Observed::Running => expected == ExpectedStatus::Running,
            Observed::Unknown(_) => false,
        }
    }
}

fn wait(
    who: &str,
    pids: &Pids,
    target: &WaitTarget,
    api: WaitApi,
    flags: &[WaitFlag],
    status: Option<ExpectedStatus>,
    errno: Option<ErrnoName>,
) -> StepResult {
    let bits = flags.iter().fold(0i64, |acc, f| acc | f.raw()) as libc::c_int;
    let (pid, target_text) = match target {
        WaitTarget::Any => (-1, "any".to_string()),
        WaitTarget::Actor(a) => (pid_of(pids, a.as_str())?, a.to_string()),
    };
    let flag_text = if flags.is_empty() {
        String::new()
    } else {
        format!(
            ", {}",
            flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join("|")
        )
    };
    let (what, result): (String, Result<(i32, Observed), Errno>) = match api {
        WaitApi::Waitpid => {
            let mut raw = 0;
            // SAFETY: waitpid writes one int.
            let r = unsafe { libc::waitpid(pid, &mut raw, bits) };
            let decoded = if r == 0 {
                Observed::Running
            } else {
                Observed::Ended(WaitStatus::from_raw(raw))
            };
            (
                format!("waitpid({target_text}{flag_text})"),
                last((r, decoded), r >= 0),
            )
        }
        WaitApi::Waitid | WaitApi::Pidfd => {
            // Held until the waitid is done, closed when dropped.
            let mut pidfd = None;
            let (idtype, id, what) = match (api, pid) {
                (WaitApi::Pidfd, _) => {
                    let fd = match pidfd_open(pid) {
                        Ok(fd) => pidfd.insert(fd).as_raw_fd(),
                        Err(e) => {
                            return expect_errno(
                                who,
                                &format!("pidfd_open({target_text})"),
                                Err::<(), _>(e),
                                errno,
                            )
                            .map(|_| vec![])
                        }
                    };
                    (
                        libc::P_PIDFD,
                        fd as libc::id_t,
                        format!("waitid(P_PIDFD, pidfd({target_text}){flag_text})"),
                    )
                }
                (_, -1) => (libc::P_ALL, 0, format!("waitid(P_ALL{flag_text})")),
                (_, p) => (
                    libc::P_PID,
                    p as libc::id_t,
                    format!("waitid(P_PID, {target_text}{flag_text})"),
                ),
            };
            let bits = if bits & (libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED) == 0 {
                bits | libc::WEXITED
            } else {
                bits
            };
            // SAFETY: a zeroed siginfo_t is valid; waitid fills it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointer to info.
            let r = unsafe { libc::waitid(idtype, id, &mut info, bits) };
            drop(pidfd);
            // SAFETY: reading the union fields waitid filled in.
            let (got, code, st) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
            let decoded = match WaitStatus::from_siginfo(code, st) {
                _ if got == 0 => Observed::Running,
                Some(status) => Observed::Ended(status),
                None => Observed::Unknown(format!("si_code {code}, si_status {st}")),
            };
            (what, last((got, decoded), r == 0))
        }
    };
    let Some((got, observed)) = expect_errno(who, &what, result, errno)? else {
        return Ok(vec![]);
    };
    if observed != Observed::Running && pid > 0 && got != pid {
        return Err(Verdict::fail(format!(
            "{who}: {what}: reaped {} instead",
            describe_pid(pids, got)
        )));
    }
    if let Some(expected) = status {
        check(observed.matches(expected), || {
            format!(
                "{who}: {what}: expected {}, observed {}",
                describe_expected_status(expected),
                observed.describe()
            )
        })?;
    }
    Ok(vec![])
}
