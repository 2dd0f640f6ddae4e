//! A `namespace: fresh` scenario where there is no pid namespace (the kernel
//! refused CLONE_NEWPID, or the harness was told `--no-pid-namespace`). A
//! child subreaper stands in for the namespace's init: kernel/exit.c
//! find_new_reaper() sends an orphan to its nearest subreaper ancestor before
//! it falls back to the namespace's init, so orphans still come to the root.
//!
//! The tree is: the harness (or the VM's init), then this process, the
//! *holder*, then the scenario's root (its `init`, the controller), then the
//! workers. The holder is there for isolation:
//! - A `clone(CLONE_PARENT)` from the root makes the root's parent the new
//!   process's parent: the holder, never the harness.
//! - The holder is a subreaper too, so as long as it lives every orphan of the
//!   scenario, even after the root died, is reparented inside its subtree.
//!   When the root has ended it kills and reaps its own children until it has
//!   none: an unreaped child keeps its pid, so no signal can reach a stranger.
//! - The root dies with the holder (PR_SET_PDEATHSIG), and the workers with
//!   the root (their sockets close); the harness kills the holder's process
//!   group and every reported process, by start time, as for `namespace: caller`.

use crate::controller::{self, Start, SubreaperRoot};
use nix::errno::Errno;
use orphanage_scenario::{ErrnoName, WaitStatus};

/// Runs the scenario on stdin under a subreaper root; `why` says why there is
/// no pid namespace. Exits as the root did.
pub fn main(why: &str) -> ! {
    if let Err(refused) = become_subreaper() {
        // Nothing can stand in for the init: the root says so, as itself.
        controller::main(Start {
            subreaper_root: Some(SubreaperRoot {
                why: why.to_string(),
                private_tmp: false,
                refused: Some(refused),
            }),
            ..Start::as_written()
        })
    }
    let private_tmp = private_tmp().is_ok();
    let holder = nix::unistd::getpid();
    // SAFETY: the agent is single-threaded here; the child goes on as the root.
    let root = match unsafe { libc::fork() } {
        -1 => {
            eprintln!(
                "orphanage-agent: fork of the subreaper root: {}",
                Errno::last()
            );
            std::process::exit(1)
        }
        0 => {
            // SAFETY: prctl with integer arguments.
            unsafe {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            if nix::unistd::getppid() != holder {
                // SAFETY: the holder died before the death signal was armed.
                unsafe { libc::_exit(1) }
            }
            let refused = become_subreaper().err();
            controller::main(Start {
                subreaper_root: Some(SubreaperRoot {
                    why: why.to_string(),
                    private_tmp,
                    refused,
                }),
                ..Start::as_written()
            })
        }
        pid => pid,
    };
    // The scenario and the event pipe are the root's: the harness sees the
    // events end when the root and its workers are done with them.
    // SAFETY: closing fds this process no longer uses.
    unsafe {
        libc::close(0);
        libc::close(crate::controller::EVENTS_FD);
    }
    let status = wait_for(root);
    kill_and_reap_children();
    exit_as(status)
}

/// The kernel would not make the root a child subreaper: then nothing can
/// stand in for a namespace's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("prctl(PR_SET_CHILD_SUBREAPER): {}", ErrnoName(*.errno))]
pub struct SubreaperRefused {
    pub errno: Errno,
}

/// PR_SET_CHILD_SUBREAPER, or its errno.
fn become_subreaper() -> Result<(), SubreaperRefused> {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(SubreaperRefused {
            errno: Errno::last(),
        })
    }
}

/// A mount namespace of our own with a private tmpfs on /tmp, as a fresh
/// namespace's init has (core files land there and vanish with it). Without
/// the privilege for one, inside a user namespace of our own where we are
/// root, as the harness gives an unprivileged fresh namespace. Where neither
/// can be made there is no private /tmp, and scenarios that need it say so.
fn private_tmp() -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        if e != Errno::EPERM {
            return Err(e);
        }
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
        let write = |file: &str, text: String| {
            std::fs::write(format!("/proc/self/{file}"), text).map_err(crate::procfs::io_errno)
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("0 {uid} 1"))?;
        write("gid_map", format!("0 {gid} 1"))?;
    }
    let none: Option<&str> = None;
    // Without this, the tmpfs would propagate to the caller's mount table.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=64m"),
    )?;
    nix::unistd::chdir("/tmp")
}

/// Waits for the root alone: any other child (a CLONE_PARENT sibling of the
/// root) stays as the scenario left it until the root is done.
fn wait_for(root: i32) -> WaitStatus {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(root, &mut status, libc::__WALL) };
        if r == root {
            return WaitStatus::from_raw(status);
        }
        if Errno::last() != Errno::EINTR {
            return WaitStatus::Exited(0);
        }
    }
}

/// Kills every child of ours, reaps it, and does so again for the orphans
/// that come to us as they die, until we have no child left.
fn kill_and_reap_children() {
    let me = nix::unistd::getpid().as_raw();
    loop {
        loop {
            // SAFETY: reaping whatever child has ended, without waiting.
            let r =
                unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
            match r {
                r if r > 0 => continue,
                0 => break,
                _ if Errno::last() == Errno::EINTR => continue,
                _ => return, // ECHILD: none left
            }
        }
        let children = children_of(me);
        if children.is_empty() {
            // Children, but none /proc shows alive: nothing to wait for
            // safely. The harness kills the rest by group and start time.
            return;
        }
        for pid in children {
            // SAFETY: our own unreaped child: only we can reap it, so its pid is still its own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Blocks until one of them has died; its children are ours by then
        // (exit_notify() reparents them before the parent is a zombie).
        // SAFETY: waiting for any child of ours.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL) };
        if r < 0 && Errno::last() == Errno::ECHILD {
            return;
        }
    }
}

/// Our children that are not zombies yet, from /proc.
fn children_of(me: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            crate::procfs::stat(pid).is_ok_and(|s| s.ppid == me && !matches!(s.state, 'Z' | 'X'))
        })
        .collect()
}

/// Ends this process the way the root ended, so the harness reads the root's
/// wait status as the agent's (a crash as the same signal).
fn exit_as(status: WaitStatus) -> ! {
    if let WaitStatus::Killed { signal, .. } = status {
        // SAFETY: back to the default action for that signal, unblocked, then raised.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        std::process::exit(128 + signal)
    }
    match status {
        WaitStatus::Exited(code) => std::process::exit(code),
        // waitpid without WUNTRACED or WCONTINUED reports neither.
        _ => std::process::exit(0),
    }
}
