//! The few /proc fields the agent reads, parsed by hand: on Linux-ABI kernels
//! (gVisor, Asterinas) some files lack fields a full parser insists on, and a
//! missing field must become "unsupported", never a crash.

use nix::errno::Errno;
use std::io::Read;

pub use orphanage_scenario::ProcStat as Stat;

pub fn stat(pid: i32) -> Result<Stat, Errno> {
    stat_at(&format!("/proc/{pid}/stat"))
}

/// A whole /proc file, in as few reads as it takes: one, and the read that
/// says the end. `fs::read_to_string` asks statx for a size (0 for these),
/// then reads 32 bytes, 64, 128 and on; under TCG each syscall costs, and
/// generated trees read these files dozens of times each.
pub fn read(path: &str) -> Result<String, Errno> {
    let mut file = std::fs::File::open(path).map_err(io_errno)?;
    let mut bytes = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_errno(e)),
        }
    }
    bytes.truncate(len);
    String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
}

/// A stat file by path (a thread's is /proc/PID/task/TID/stat).
pub fn stat_at(path: &str) -> Result<Stat, Errno> {
    let text = read(path)?;
    Stat::parse(&text).ok_or(Errno::EINVAL)
}

/// A numeric line of /proc/PID/status (`PPid`), or all the numbers of one (`NSpid`).
pub fn status_field(path: &str, key: &str) -> Result<Vec<i32>, Errno> {
    let text = read(path)?;
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
