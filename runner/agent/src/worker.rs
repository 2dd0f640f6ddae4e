//! A worker: one scenario process or thread, serving requests from the root
//! over its socket until told to exit or until the root goes away.

use crate::protocol::{self, Reply, Request};
use crate::{fds, handles, procfs, signals, steps};
use nix::errno::Errno;
use orphanage_scenario::Step;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Argument vector that turns an exec'd agent back into worker `name` on `fd`.
fn exec_argv(name: &str, fd: RawFd) -> Vec<CString> {
    let sigpipe = if signals::is_ignored(nix::sys::signal::Signal::SIGPIPE) {
        "sigpipe-ignored"
    } else {
        "sigpipe-default"
    };
    ["orphanage-agent", "worker", name, &fd.to_string(), sigpipe]
        .iter()
        .map(|s| CString::new(*s).unwrap())
        .collect()
}

/// Entry point after exec: `orphanage-agent worker NAME FD SIGPIPE`.
pub fn serve_execed(name: &str, fd: RawFd, sigpipe_ignored: bool) -> ! {
    // SAFETY: the fd was passed to us on purpose; we own it from here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // exec(2) resets handlers and keeps ignored signals; Rust's startup then
    // ignores SIGPIPE and catches SIGSEGV/SIGBUS. Put back what exec left.
    signals::undo_runtime_startup(sigpipe_ignored);
    signals::reset_record();
    serve(name, &sock, false);
    std::process::exit(0)
}

/// Entry point in a fork child: shed the parent's agent fds, keep scenario handles.
pub fn serve_forked(name: &str, sock: OwnedFd) -> ! {
    // A child of a detached worker is not detached itself.
    DETACHED.store(false, Ordering::SeqCst);
    let mut keep = handles::fds();
    keep.push(sock.as_raw_fd());
    fds::close_all_except(&keep);
    signals::reset_record();
    // A child forked by a thread worker inherits that thread's mask, which
    // blocks SIGCHLD (see serve_thread); a scenario process starts unblocked.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    let _ = set.thread_unblock();
    serve(name, &sock, false);
    // SAFETY: leave without running the parent's atexit handlers or destructors twice.
    unsafe { libc::_exit(0) }
}

pub fn serve_thread(name: &str, sock: OwnedFd) {
    // SIGCHLD is sent to the process; blocked here, it is always handled by
    // the main thread, before that thread reads its next request. So an
    // `observe` of the process counts every SIGCHLD sent before it.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    let _ = set.thread_block();
    serve(name, &sock, true);
}

fn hello(name: &str) -> Reply {
    // NSpid lists our ids from the /proc mount's namespace (the root's) down.
    let nspid = procfs::status_field("/proc/self/status", "NSpid")
        .unwrap_or_else(|_| vec![nix::unistd::getpid().as_raw()]);
    // A main thread's ids are its process's: one status file fewer to read.
    let nstid = if nix::unistd::gettid() == nix::unistd::getpid() {
        nspid.clone()
    } else {
        procfs::status_field("/proc/thread-self/status", "NSpid")
            .unwrap_or_else(|_| vec![nix::unistd::gettid().as_raw()])
    };
    Reply::Hello {
        name: name.to_string(),
        nspid,
        nstid,
    }
}

/// Set by the `detach` step: this process outlives the agent.
static DETACHED: AtomicBool = AtomicBool::new(false);

pub fn detach() {
    DETACHED.store(true, Ordering::SeqCst);
}

thread_local! {
    /// This thread's socket and name, for the panic hook.
    static SERVING: std::cell::RefCell<Option<(RawFd, String)>> = const { std::cell::RefCell::new(None) };
}

/// A panic in agent code is the agent's failure, not the kernel's: tell the
/// root so before the thread unwinds and the socket closes.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let serving = SERVING.with(|s| s.borrow().clone());
        if let Some((fd, name)) = serving {
            let reason = format!("agent worker {name} panicked: {info}");
            let _ = protocol::send(
                fd,
                &Reply::Verdict(orphanage_scenario::Verdict::broken(reason)),
                None,
            );
        }
        default(info);
    }));
}

fn serve(name: &str, sock: &OwnedFd, is_thread: bool) {
    let fd = sock.as_raw_fd();
    SERVING.with(|s| *s.borrow_mut() = Some((fd, name.to_string())));
    if protocol::send(fd, &hello(name), None).is_err() {
        return;
    }
    loop {
        let (request, passed_fd) = match protocol::recv::<Request>(fd) {
            Ok(Some(m)) => m,
            // The root is gone: the scenario is over, unless we are detached.
            Ok(None) | Err(_) if DETACHED.load(Ordering::SeqCst) => loop {
                // Like a daemon, we live on until killed.
                nix::unistd::pause();
            },
            Ok(None) | Err(_) => return,
        };
        let reply = match request {
            Request::Getppid => Reply::Ppid(nix::unistd::getppid().as_raw()),
            Request::Observe => Reply::Observed {
                ppid: nix::unistd::getppid().as_raw(),
                sigchld: signals::sigchld_count(),
            },
            Request::Perform {
                step: Step::Exit { code, .. },
                ..
            } => {
                if is_thread {
                    return; // only this thread ends; the socket closes with it
                }
                // SAFETY: exit_group without unwinding, as a process exit should be.
                unsafe { libc::_exit(i32::from(code)) }
            }
            Request::Perform {
                step: Step::Exec { memfd, errno, .. },
                ..
            } => exec(name, fd, memfd.as_ref().map(|h| h.as_str()), errno),
            Request::Perform { step, pids } => {
                match steps::perform(name, &step, &pids, passed_fd) {
                    Ok(notes) => Reply::Done { notes },
                    Err(verdict) => Reply::Verdict(verdict),
                }
            }
        };
        if protocol::send(fd, &reply, None).is_err() {
            return;
        }
    }
}

/// Re-executes the agent in place. On success the new image says hello; this
/// function only returns (a reply) when the exec failed.
fn exec(
    name: &str,
    fd: RawFd,
    memfd: Option<&str>,
    expected: Option<orphanage_scenario::ErrnoName>,
) -> Reply {
    let argv = exec_argv(name, fd);
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    fds::clear_cloexec(fd);
    let (what, errno) = match memfd {
        Some(handle) => match handles::fd(handle) {
            Ok(mfd) => {
                let empty = CString::new("").unwrap();
                // SAFETY: execveat with valid, NUL-terminated argv and the current environment.
                unsafe {
                    libc::syscall(
                        libc::SYS_execveat,
                        mfd,
                        empty.as_ptr(),
                        ptrs.as_ptr(),
                        environ_ptr(),
                        libc::AT_EMPTY_PATH,
                    );
                }
                (
                    format!("execveat({handle}, \"\", AT_EMPTY_PATH)"),
                    Errno::last(),
                )
            }
            Err(v) => return Reply::Verdict(v),
        },
        None => {
            let path = CString::new("/proc/self/exe").unwrap();
            // SAFETY: as above.
            unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
            ("execve(/proc/self/exe)".to_string(), Errno::last())
        }
    };
    // Still here: the exec failed. Put the socket back the way it was.
    // SAFETY: plain fcntl on our own fd.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    match steps::expect_errno(name, &what, Err::<(), _>(errno), expected) {
        Ok(_) => Reply::Done { notes: vec![] },
        Err(v) => Reply::Verdict(v),
    }
}

fn environ_ptr() -> *const *const libc::c_char {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: reading the libc global.
    unsafe { environ }
}
