//! Signal dispositions the scenario asks for, and the record of what arrived.
//! The handler only touches atomics and a non-blocking pipe: both are
//! async-signal-safe. The pipe lets an `expect_signal` wait in poll(2) for the
//! next arrival instead of sleeping.

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 1024;
/// Each slot packs (signo << 32) | sender pid.
static RECORD: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static RECORDED: AtomicUsize = AtomicUsize::new(0);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static WAKE_READ_FD: AtomicI32 = AtomicI32::new(-1);
static REAPED: AtomicUsize = AtomicUsize::new(0);

/// Starts a fresh record with a fresh wake-up pipe: a new process must not
/// share its parent's (a forked child closed the inherited ones already).
pub fn reset_record() {
    RECORDED.store(0, Ordering::SeqCst);
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills two fds.
    unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    WAKE_READ_FD.store(fds[0], Ordering::SeqCst);
    WAKE_FD.store(fds[1], Ordering::SeqCst);
}

/// The end an `expect_signal` polls to learn that something arrived.
pub fn wake_read_fd() -> RawFd {
    WAKE_READ_FD.load(Ordering::SeqCst)
}

extern "C" fn record(signo: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let pid = unsafe { (*info).si_pid() };
    let slot = RECORDED.fetch_add(1, Ordering::SeqCst);
    if slot < SLOTS {
        RECORD[slot].store(
            ((signo as u64) << 32) | (pid as u32 as u64),
            Ordering::SeqCst,
        );
    }
    wake();
}

fn wake() {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN) already means "woken".
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
}

extern "C" fn reap(_: libc::c_int) {
    let saved = Errno::last_raw();
    // SAFETY: waitpid is async-signal-safe.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) } > 0 {
        REAPED.fetch_add(1, Ordering::SeqCst);
    }
    Errno::set_raw(saved);
}

/// Every (signal, sender pid) recorded so far, in arrival order.
pub fn received() -> Vec<(i32, i32)> {
    let n = RECORDED.load(Ordering::SeqCst).min(SLOTS);
    (0..n)
        .map(|i| {
            let v = RECORD[i].load(Ordering::SeqCst);
            ((v >> 32) as i32, v as u32 as i32)
        })
        .collect()
}

/// How many SIGCHLDs the recording handler has run for.
pub fn sigchld_count() -> u32 {
    received()
        .iter()
        .filter(|(signo, _)| *signo == libc::SIGCHLD)
        .count() as u32
}

pub fn catch(signal: Signal, nocldwait: bool) -> nix::Result<()> {
    let mut flags = SaFlags::SA_SIGINFO | SaFlags::SA_RESTART;
    if nocldwait {
        flags |= SaFlags::SA_NOCLDWAIT;
    }
    let action = SigAction::new(SigHandler::SigAction(record), flags, SigSet::empty());
    // SAFETY: the handler is async-signal-safe.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

pub fn ignore(signal: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN has no handler to be unsafe in.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

/// SIG_IGN for every real-time signal, which nix's `Signal` cannot name.
pub fn ignore_realtime() -> nix::Result<()> {
    for signo in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: a zeroed sigaction with SIG_IGN has no handler to be unsafe in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = libc::SIG_IGN;
        // SAFETY: a valid action; the old one is not wanted.
        if unsafe { libc::sigaction(signo, &action, std::ptr::null_mut()) } != 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

pub fn restore_default(signal: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring the default.
    unsafe { sigaction(signal, &action) }.map(|_| ())
}

pub fn auto_reap() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(reap),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe.
    unsafe { sigaction(Signal::SIGCHLD, &action) }?;
    // Children that exited before the handler existed are waiting too.
    reap(libc::SIGCHLD);
    Ok(())
}

pub fn is_ignored(signal: Signal) -> bool {
    // SAFETY: querying the current action with a null new action.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut old) };
    old.sa_sigaction == libc::SIG_IGN
}

/// After exec: Rust's runtime ignored SIGPIPE and put stack-overflow handlers
/// on SIGSEGV and SIGBUS (only where they were SIG_DFL, as exec left them).
pub fn undo_runtime_startup(sigpipe_was_ignored: bool) {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGSEGV, Signal::SIGBUS] {
        if !is_ignored(signal) {
            // SAFETY: restoring the default.
            let _ = unsafe { sigaction(signal, &dfl) };
        }
    }
    if !sigpipe_was_ignored {
        // SAFETY: restoring the default.
        let _ = unsafe { sigaction(Signal::SIGPIPE, &dfl) };
    }
}

/// Default dispositions and an empty mask: the harness's own (SIGPIPE ignored,
/// SIGINT blocked for its signal thread) must not leak into the target.
pub fn reset_all() {
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring defaults.
        let _ = unsafe { sigaction(signal, &action) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}
