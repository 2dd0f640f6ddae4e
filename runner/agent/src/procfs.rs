//! The few /proc fields the agent reads, parsed by hand: on Linux-ABI kernels
//! (gVisor, Asterinas) some files lack fields a full parser insists on, and a
//! missing field must become "unsupported", never a crash.

use nix::errno::Errno;
use std::fs;

/// State letter (field 3) and start time (field 22) of /proc/PID/stat.
pub struct Stat {
    pub state: char,
    pub start_time: u64,
    /// Field 52, the exit code a zombie will report (Linux 3.5).
    pub exit_code: Option<i32>,
}

pub fn stat(pid: i32) -> Result<Stat, Errno> {
    stat_at(&format!("/proc/{pid}/stat"))
}

/// A stat file by path (a thread's is /proc/PID/task/TID/stat).
pub fn stat_at(path: &str) -> Result<Stat, Errno> {
    let text = fs::read_to_string(path).map_err(io_errno)?;
    parse_stat(&text).ok_or(Errno::EINVAL)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // comm (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
        exit_code: fields.get(49).and_then(|f| f.parse().ok()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_survives_hostile_comm() {
        let text = "42 (a) b (c)) Z 1 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 9";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.state, 'Z');
        assert_eq!(s.start_time, 777);
        assert_eq!(s.exit_code, Some(9));
    }
}
