//! Messages between the agent's root (the controller) and its workers, one
//! JSON document per SOCK_SEQPACKET datagram. A new worker's socket travels
//! with the `spawn` request as SCM_RIGHTS.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use orphanage_scenario::{Step, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Pids by scenario name, as the receiving process sees them (0: not visible to it).
pub type Pids = BTreeMap<String, i32>;

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Perform `step` (a spawn carries the new worker's socket).
    Perform { step: Step, pids: Pids },
    /// Report getppid().
    Getppid,
    /// Report getppid() and how many SIGCHLDs the handler caught.
    Observe,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A worker is up. `nspid`/`nstid` are its ids from the root's pid
    /// namespace down to its own (NSpid in /proc/self/status).
    Hello {
        name: String,
        nspid: Vec<i32>,
        nstid: Vec<i32>,
    },
    /// The step held; notes are figures worth reporting.
    Done {
        notes: Vec<String>,
    },
    /// The step did not hold (fail, unsupported or broken).
    Verdict(Verdict),
    Ppid(i32),
    Observed {
        ppid: i32,
        sigchld: u32,
    },
}

const MAX_MESSAGE: usize = 256 * 1024;

thread_local! {
    /// One receive buffer per thread, reused: a fresh zeroed 256 KiB per
    /// message cost a memset and, in a forked worker, dozens of
    /// copy-on-write faults, which dominated large generated trees.
    static RECEIVE_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_MESSAGE]);
}

pub fn send<T: Serialize>(sock: RawFd, message: &T, fd: Option<RawFd>) -> nix::Result<()> {
    let bytes = serde_json::to_vec(message).expect("protocol messages serialize");
    let iov = [std::io::IoSlice::new(&bytes)];
    let fds;
    let cmsgs: &[ControlMessage] = match fd {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Receives one message and the fd riding with it. `Ok(None)` means the peer is gone.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: RawFd,
) -> Result<Option<(T, Option<OwnedFd>)>, String> {
    RECEIVE_BUFFER.with(|b| recv_into(sock, &mut b.borrow_mut()))
}

fn recv_into<T: for<'de> Deserialize<'de>>(
    sock: RawFd,
    buf: &mut [u8],
) -> Result<Option<(T, Option<OwnedFd>)>, String> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (len, fd) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("recvmsg: {e}")),
            Ok(msg) => {
                let mut fd = None;
                for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        // SAFETY: the kernel just installed these fds for us.
                        fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
                    }
                }
                break (msg.bytes, fd);
            }
        }
    };
    if len == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..len])
        .map(|m| Some((m, fd)))
        .map_err(|e| format!("bad message: {e}"))
}
