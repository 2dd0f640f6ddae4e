//! The few /proc fields the agent reads, parsed by hand: on Linux-ABI kernels
//! (gVisor, Asterinas) some files lack fields a full parser insists on, and a
//! missing field must become "unsupported", never a crash.

use nix::errno::Errno;
use std::fs;

pub use orphanage_scenario::ProcStat as Stat;

pub fn stat(pid: i32) -> Result<Stat, Errno> {
    stat_at(&format!("/proc/{pid}/stat"))
}

/// A stat file by path (a thread's is /proc/PID/task/TID/stat).
pub fn stat_at(path: &str) -> Result<Stat, Errno> {
    let text = fs::read_to_string(path).map_err(io_errno)?;
    Stat::parse(&text).ok_or(Errno::EINVAL)
}

/// A numeric line of /proc/PID/status (`PPid`), or all the numbers of one (`NSpid`).
pub fn status_field(path: &str, key: &str) -> Result<Vec<i32>, Errno> {
    let text = fs::read_to_string(path).map_err(io_errno)?;
    let prefix = format!("{key}:");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .ok_or(Errno::ENODATA)?;
    line[prefix.len()..]
        .split_whitespace()
        .map(|n| n.parse().map_err(|_| Errno::EINVAL))
        .collect()
}

pub fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
