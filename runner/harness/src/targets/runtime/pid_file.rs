//! Waiting for a runtime's foreground `run` to write its `--pid-file`: the
//! container's init then exists, and the harness pins it before the agent
//! gets its scenario. The file is looked at on a short interval against the
//! limit, the wait in between on the runtime's pidfd, so its exit ends the
//! wait at once. (Not inotify: closing an inotify instance waits for an RCU
//! grace period, 10 to 20 ms here, more than the whole wait.)

use super::command::ExitOrInterval;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The first interval between looks, doubled up to `LONGEST_INTERVAL`:
/// runtimes write the file within a few milliseconds.
const FIRST_INTERVAL: Duration = Duration::from_micros(100);
const LONGEST_INTERVAL: Duration = Duration::from_millis(2);

/// How the wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PidFileWait {
    /// The pid the file holds, and how long it took to appear.
    Written { pid: i32, took: Duration },
    /// The runtime exited first: it could not make the container.
    RuntimeExited(ExitStatus),
    /// Neither happened within the limit (the runtime still runs).
    TimedOut,
}

/// The pid in a pid file's text, if it holds a whole one.
pub fn pid_in(text: &str) -> Option<i32> {
    text.trim().parse().ok().filter(|&p| p > 0)
}

/// Waits up to `limit` for `pid_file` to hold a pid, or for `runtime` (our
/// child, unreaped) to exit.
pub fn wait_for_pid_file(
    runtime: &mut Child,
    pid_file: &Path,
    limit: Duration,
) -> std::io::Result<PidFileWait> {
    let start = Instant::now();
    let mut pause = ExitOrInterval::new(runtime, FIRST_INTERVAL, LONGEST_INTERVAL);
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .as_deref()
            .and_then(pid_in)
        {
            return Ok(PidFileWait::Written {
                pid,
                took: start.elapsed(),
            });
        }
        if let Some(status) = runtime.try_wait()? {
            return Ok(PidFileWait::RuntimeExited(status));
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(PidFileWait::TimedOut);
        }
        pause.wait(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[rstest::rstest]
    #[case("6141", Some(6141))]
    #[case("6141\n", Some(6141))]
    #[case("", None)]
    #[case("61", Some(61))]
    #[case("0", None)]
    #[case("-3", None)]
    fn a_pid_file_holds_a_whole_pid_or_none(#[case] text: &str, #[case] pid: Option<i32>) {
        assert_eq!(pid_in(text), pid);
    }

    #[test]
    fn a_pid_renamed_into_place_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("init.pid");
        // As runc writes it: a temporary file, then a rename.
        let mut writer = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf 4242 > {0}.tmp && mv {0}.tmp {0} && exec sleep 30",
                file.display()
            ))
            .spawn()
            .unwrap();
        let seen = wait_for_pid_file(&mut writer, &file, Duration::from_secs(10)).unwrap();
        assert!(
            matches!(seen, PidFileWait::Written { pid: 4242, .. }),
            "{seen:?}"
        );
        writer.kill().unwrap();
        writer.wait().unwrap();
    }

    #[test]
    fn a_runtime_that_exits_first_ends_the_wait_with_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut failing = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let seen = wait_for_pid_file(
            &mut failing,
            &dir.path().join("init.pid"),
            Duration::from_secs(10),
        )
        .unwrap();
        match seen {
            PidFileWait::RuntimeExited(status) => assert_eq!(status.code(), Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_runtime_that_writes_nothing_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut silent = Command::new("sleep").arg("30").spawn().unwrap();
        let seen = wait_for_pid_file(
            &mut silent,
            &dir.path().join("init.pid"),
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(seen, PidFileWait::TimedOut);
        silent.kill().unwrap();
        silent.wait().unwrap();
    }
}
