//! Running a runtime's command with a deadline: a hung runtime must not hang the run.

use std::path::Path;
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

/// Waits for a started command, killing it past `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(100);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {limit:?}"));
        }
        // A poll interval against the deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(5));
    }
}

/// Runs `program args` to completion, killing it past `limit`.
pub fn bounded(
    program: &Path,
    args: &[std::ffi::OsString],
    limit: Duration,
) -> Result<Ran, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    // Output is small (a state document at most): it fits the pipes until the command exits.
    wait_bounded(&mut child, limit)?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(Ran {
        ok: out.status.success(),
        status: out.status.to_string(),
        output: text.trim().to_string(),
    })
}
