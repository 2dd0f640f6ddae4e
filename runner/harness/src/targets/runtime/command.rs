//! Running a runtime's command with a limit: a hung runtime must not hang the run.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command said.
pub struct Ran {
    pub ok: bool,
    /// The exit status, in words.
    pub status: String,
    /// Its stdout then its stderr, trimmed.
    pub output: String,
}

/// Why a command gave no status.
// The cause is part of the message, not a chained source: these are
// printed on their own, in verdicts and notes, as often as through anyhow.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run {}: {error}", program.display())]
    Spawn {
        program: PathBuf,
        error: std::io::Error,
    },
    /// It was still running at its limit, and was killed with its group.
    #[error("no answer within {limit:?}")]
    NoAnswer { limit: Duration },
    #[error("waiting for it: {0}")]
    Wait(std::io::Error),
    #[error("a file for its output: {0}")]
    Output(std::io::Error),
}

/// Waits for a started command, killing it past `limit`: its whole process
/// group when it leads one (a half-made `runc init` goes with `runc run`).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, CommandError> {
    wait_bounded_ticking(child, limit, &mut || {})
}

/// As `wait_bounded`, calling `tick` at each poll: a sandboxed runtime's
/// `delete` waits for its sandbox to vanish, and the sandbox is our child,
/// so the caller reaps it meanwhile.
pub fn wait_bounded_ticking(
    child: &mut Child,
    limit: Duration,
    tick: &mut dyn FnMut(),
) -> Result<ExitStatus, CommandError> {
    let start = Instant::now();
    // Woken by the exit itself, where a sleep would add its slack to each of
    // a scenario's runtime commands; without a pidfd, short sleeps instead.
    let mut pause = ExitOrInterval::new(child, Duration::from_millis(1), Duration::from_millis(5));
    loop {
        if let Some(status) = child.try_wait().map_err(CommandError::Wait)? {
            return Ok(status);
        }
        tick();
        if start.elapsed() >= limit {
            // SAFETY: our unreaped child leads this group, so the id is not reused.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(CommandError::NoAnswer { limit });
        }
        pause.wait(limit.saturating_sub(start.elapsed()));
    }
}

/// The pause between two looks at a child of ours (is it done, has it
/// written something): the next interval, doubled from `first` up to
/// `longest`, or the child's exit, whichever comes first. Not a
/// synchronisation point: the looks decide, this only spaces them.
pub struct ExitOrInterval {
    /// Our unreaped child's, so surely its: it polls readable at the exit.
    pidfd: Option<std::os::fd::OwnedFd>,
    interval: Duration,
    longest: Duration,
}

impl ExitOrInterval {
    pub fn new(child: &Child, first: Duration, longest: Duration) -> Self {
        let pidfd = orphanage_agent_io::pidfd_open(child.id() as i32).ok();
        // Without a pidfd nothing wakes the pause early: start short.
        let interval = if pidfd.is_some() {
            first
        } else {
            first.min(Duration::from_micros(100))
        };
        ExitOrInterval {
            pidfd,
            interval,
            longest,
        }
    }

    /// Waits the next interval, at most `left`, or until the child exits.
    pub fn wait(&mut self, left: Duration) {
        let wait = self.interval.min(left);
        self.interval = (self.interval * 2).min(self.longest);
        match &self.pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(fd),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ts = libc::timespec {
                    tv_sec: wait.as_secs() as libc::time_t,
                    tv_nsec: wait.subsec_nanos() as libc::c_long,
                };
                // SAFETY: one valid pollfd and timespec, no signal mask. An
                // EINTR only ends this pause early; the caller looks again.
                unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// Runs `program args` to completion, killing it past `limit`. Its output
/// goes to anonymous files, not pipes: a descendant that keeps them open (a
/// runtime's helper in the background) cannot make us wait for it.
pub fn bounded(
    program: &Path,
    args: &[std::ffi::OsString],
    limit: Duration,
) -> Result<Ran, CommandError> {
    bounded_ticking(program, args, limit, &mut || {})
}

/// As `bounded`, calling `tick` while it waits (see `wait_bounded_ticking`).
pub fn bounded_ticking(
    program: &Path,
    args: &[std::ffi::OsString],
    limit: Duration,
    tick: &mut dyn FnMut(),
) -> Result<Ran, CommandError> {
    let mut out = tempfile::tempfile().map_err(CommandError::Output)?;
    let mut err = tempfile::tempfile().map_err(CommandError::Output)?;
    let mut child = Command::new(program)
        .args(args)
        // With RUST_BACKTRACE=1 in the environment a Rust runtime (youki,
        // through anyhow) captures and prints a backtrace with each error:
        // its `state` of a deleted container, which every teardown asks,
        // took 180 ms instead of 20 to 40 ms here. Only error output changes.
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(CommandError::Output)?)
        .stderr(err.try_clone().map_err(CommandError::Output)?)
        .process_group(0)
        .spawn()
        .map_err(|error| CommandError::Spawn {
            program: program.to_path_buf(),
            error,
        })?;
    let status = wait_bounded_ticking(&mut child, limit, tick)?;
    let read = |f: &mut std::fs::File| {
        let mut text = String::new();
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.read_to_string(&mut text);
        text.trim().to_string()
    };
    let text = format!("{} {}", read(&mut out), read(&mut err));
    Ok(Ran {
        ok: status.success(),
        status: status.to_string(),
        output: text.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::watch;
    use super::*;

    #[test]
    fn a_command_past_its_limit_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("background");
        let started = Instant::now();
        // A half-made `runc init` stands in: a process of the command's
        // group that outlives it unless the group is killed.
        let args = [
            "-c".into(),
            "sleep 30 & echo $! > \"$1\"; wait".into(),
            "sh".into(),
            pid_file.clone().into_os_string(),
        ];
        let err = bounded(Path::new("/bin/sh"), &args, Duration::from_millis(300))
            .err()
            .expect("sleep 30 outlasts 300 ms");
        assert!(matches!(err, CommandError::NoAnswer { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let background: i32 = std::fs::read_to_string(&pid_file)
            .expect("the background sleep started")
            .trim()
            .parse()
            .unwrap();
        // Killed with the group: gone, or a zombie until init reaps it.
        let give_up = Instant::now() + Duration::from_secs(5);
        let alive = || watch::stat(background).is_some_and(|s| s.state != 'Z' && s.state != 'X');
        while alive() && Instant::now() < give_up {
            // A poll interval against a deadline, not a synchronisation point.
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !alive(),
            "the background sleep {background} outlived its group"
        );
    }

    #[test]
    fn a_pause_ends_at_the_childs_exit_not_its_interval() {
        let mut child = Command::new("sleep").arg("0.05").spawn().unwrap();
        let mut pause =
            ExitOrInterval::new(&child, Duration::from_secs(30), Duration::from_secs(30));
        let started = Instant::now();
        pause.wait(Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a 30 s pause outlasted its child's exit: {:?}",
            started.elapsed()
        );
        child.wait().unwrap();
    }

    #[test]
    fn a_finished_command_says_its_status_and_output() {
        let args = ["-c".into(), "echo out; echo err >&2; exit 3".into()];
        let ran = bounded(Path::new("/bin/sh"), &args, Duration::from_secs(10)).unwrap();
        assert!(!ran.ok);
        assert_eq!(ran.output, "out err");
        assert!(ran.status.contains('3'), "{}", ran.status);
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = bounded(Path::new("/no/such/runtime"), &[], Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with("cannot run /no/such/runtime"),
            "{err}"
        );
    }
}
