//! Making new scenario processes. fork(2) and threads continue as workers in
//! place. Raw clone(2)/clone3(2) children bypass libc's fork bookkeeping, so
//! they exec the agent straight away and do nothing else first: only
//! async-signal-safe calls between the clone and the exec.

use crate::worker;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{fork, ForkResult};
use orphanage_scenario::SpawnHow;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// Creates `name` serving `sock`. Returns a note when something worth reporting happened.
pub fn spawn(
    name: &str,
    how: SpawnHow,
    exit_signal: Option<Signal>,
    sock: OwnedFd,
) -> Result<Option<String>, Errno> {
    let signal = exit_signal.unwrap_or(Signal::SIGCHLD) as libc::c_ulong;
    match how {
        SpawnHow::Fork => {
            // SAFETY: the child only runs the worker loop, which is fork-safe under glibc's fork.
            match unsafe { fork() }? {
                ForkResult::Child => worker::serve_forked(name, sock),
                ForkResult::Parent { .. } => Ok(None),
            }
        }
        SpawnHow::Thread => {
            let name = name.to_string();
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || worker::serve_thread(&name, sock))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
            Ok(None)
        }
        SpawnHow::Clone => raw_clone(name, signal, &sock).map(|_| None),
        SpawnHow::CloneParent => {
            raw_clone(name, libc::CLONE_PARENT as libc::c_ulong | signal, &sock).map(|_| None)
        }
        SpawnHow::PidNamespace => {
            raw_clone(name, libc::CLONE_NEWPID as libc::c_ulong | signal, &sock).map(|_| None)
        }
        SpawnHow::Clone3Parent => {
            match clone3(name, libc::CLONE_PARENT as u64, signal as u64, &sock) {
                Err(Errno::ENOSYS) => {
                    raw_clone(name, libc::CLONE_PARENT as libc::c_ulong | signal, &sock).map(|_| {
                        Some("clone3: ENOSYS, fell back to clone(CLONE_PARENT)".to_string())
                    })
                }
                other => other.map(|_| None),
            }
        }
    }
}

/// What the child of a raw clone executes: prepared before the clone, because
/// the child may not allocate.
struct ExecPlan {
    path: CString,
    argv: Vec<CString>,
}

impl ExecPlan {
    fn new(name: &str, fd: i32) -> Self {
        let argv = worker::exec_argv(name, fd);
        ExecPlan {
            path: CString::new("/proc/self/exe").unwrap(),
            argv,
        }
    }

    /// In the child: make the socket survive exec and become the agent again.
    fn exec_in_child(&self, fd: i32) -> ! {
        let mut ptrs: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: async-signal-safe calls only, on memory prepared before the clone.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, 0);
            libc::execv(self.path.as_ptr(), ptrs.as_ptr());
            libc::_exit(127)
        }
    }
}

fn raw_clone(name: &str, flags: libc::c_ulong, sock: &OwnedFd) -> Result<i32, Errno> {
    let fd = sock.as_raw_fd();
    let plan = ExecPlan::new(name, fd);
    // SAFETY: no CLONE_VM and no new stack: the child gets a copy of this
    // address space, like fork, and execs at once.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        0 => plan.exec_in_child(fd),
        -1 => Err(Errno::last()),
        pid => Ok(pid as i32),
    }
}

/// struct clone_args, first version (CLONE_ARGS_SIZE_VER0 = 64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

fn clone3(name: &str, flags: u64, exit_signal: u64, sock: &OwnedFd) -> Result<i32, Errno> {
    let fd = sock.as_raw_fd();
    let plan = ExecPlan::new(name, fd);
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    // SAFETY: as for raw_clone; clone3 reads `args` only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => plan.exec_in_child(fd),
        -1 => Err(Errno::last()),
        pid => Ok(pid as i32),
    }
}

/// clone3(NULL, 0): EINVAL where clone3 exists (the size is too small), ENOSYS where it does not.
pub fn probe_clone3() -> Result<(), Errno> {
    // SAFETY: a zero size makes the kernel reject the call before touching memory.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<CloneArgs>(), 0usize) };
    match (ret, Errno::last()) {
        (-1, Errno::EINVAL) => Ok(()),
        (-1, e) => Err(e),
        _ => Ok(()),
    }
}
