//! Making new scenario processes. Every kind of child continues in place as a
//! worker; none execs, because exec(2) resets the exit signal to SIGCHLD
//! (fs/exec.c de_thread()) and would hide what clone's flags asked for.
//!
//! Raw clone(2)/clone3(2) children skip glibc's fork handlers (which take
//! libc's locks around fork). That is safe as long as the calling process has
//! no other threads that might hold them; scenario processes are
//! single-threaded unless a scenario spawns threads in them.

use crate::worker;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{fork, ForkResult};
use orphanage_scenario::SpawnHow;
use std::os::fd::OwnedFd;

/// Creates `name` serving `sock`. Returns a note when something worth reporting happened.
pub fn spawn(
    name: &str,
    how: SpawnHow,
    exit_signal: Option<Signal>,
    sock: OwnedFd,
) -> Result<Option<String>, Errno> {
    let signal = exit_signal.map_or(libc::SIGCHLD, |s| s as libc::c_int) as libc::c_ulong;
    let parent = libc::CLONE_PARENT as libc::c_ulong;
    match how {
        SpawnHow::Fork => {
            // SAFETY: the child only runs the worker loop; glibc's fork keeps libc consistent.
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
        SpawnHow::Clone => continue_in(name, sock, raw_clone(signal)),
        // With CLONE_PARENT the kernel ignores the exit signal in the flags and
        // uses the caller's own (kernel/fork.c copy_process()).
        SpawnHow::CloneParent => continue_in(name, sock, raw_clone(parent | signal)),
        SpawnHow::PidNamespace => continue_in(
            name,
            sock,
            raw_clone(libc::CLONE_NEWPID as libc::c_ulong | signal),
        ),
        // clone3 refuses CLONE_PARENT with a nonzero exit_signal
        // (clone3_args_valid()), so none is passed unless the scenario asks.
        SpawnHow::Clone3Parent => continue_in(
            name,
            sock,
            clone3(parent as u64, exit_signal.map_or(0, |s| s as u64)),
        ),
        SpawnHow::Clone3ParentOrClone => {
            match clone3(parent as u64, exit_signal.map_or(0, |s| s as u64)) {
                Err(Errno::ENOSYS) => continue_in(name, sock, raw_clone(parent | signal))
                    .map(|_| Some("clone3: ENOSYS, fell back to clone(CLONE_PARENT)".to_string())),
                other => continue_in(name, sock, other),
            }
        }
    }
}

/// Which side of a clone we are on.
enum Side {
    Parent,
    Child,
}

/// The child becomes worker `name`; the parent reports success.
fn continue_in(
    name: &str,
    sock: OwnedFd,
    side: Result<Side, Errno>,
) -> Result<Option<String>, Errno> {
    match side? {
        Side::Child => worker::serve_forked(name, sock),
        Side::Parent => Ok(None),
    }
}

fn raw_clone(flags: libc::c_ulong) -> Result<Side, Errno> {
    // SAFETY: no CLONE_VM and no new stack: the child gets a copy of this
    // address space and continues here, like fork.
    match unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) } {
        0 => Ok(Side::Child),
        -1 => Err(Errno::last()),
        _ => Ok(Side::Parent),
    }
}

/// The machine's init tries to make a sibling (`namespace: global_init`),
/// by clone(CLONE_PARENT) or by clone3 with its fallback: Linux refuses with
/// EINVAL. Should a kernel accept, the child exits at once (it has no worker
/// to become) and the caller reports the success. Returns the fallback's note.
pub fn sibling_of_global_init(how: SpawnHow) -> Result<Option<String>, Errno> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    let (side, note) = match how {
        SpawnHow::Clone3ParentOrClone => match clone3(libc::CLONE_PARENT as u64, 0) {
            Err(Errno::ENOSYS) => (
                raw_clone(flags),
                Some("clone3: ENOSYS, fell back to clone(CLONE_PARENT)".to_string()),
            ),
            other => (other, None),
        },
        _ => (raw_clone(flags), None),
    };
    match side? {
        // SAFETY: _exit in the child of a fork-like clone, touching nothing.
        Side::Child => unsafe { libc::_exit(0) },
        Side::Parent => Ok(note),
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

fn clone3(flags: u64, exit_signal: u64) -> Result<Side, Errno> {
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    // SAFETY: as for raw_clone; clone3 only reads `args`.
    match unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    } {
        0 => Ok(Side::Child),
        -1 => Err(Errno::last()),
        _ => Ok(Side::Parent),
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
