//! Running a runtime's command with a deadline: a hung runtime must not hang the run.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
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

/// Waits for a started command, killing it past `limit`: its whole process
/// group when it leads one (a half-made `runc init` goes with `runc create`).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    wait_bounded_ticking(child, limit, &mut || {})
}

/// As `wait_bounded`, calling `tick` at each poll: a sandboxed runtime's
/// `delete` waits for its sandbox to vanish, and the sandbox is our child,
/// so the caller reaps it meanwhile.
pub fn wait_bounded_ticking(
    child: &mut Child,
    limit: Duration,
    tick: &mut dyn FnMut(),
) -> Result<ExitStatus, String> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(100);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        tick();
        if start.elapsed() > limit {
            // SAFETY: our unreaped child leads this group, so the id is not reused.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {limit:?}"));
        }
        // A poll interval against the deadline, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(5));
    }
}

/// Runs `program args` to completion, killing it past `limit`. Its output
/// goes to anonymous files, not pipes: a descendant that keeps them open (a
/// runtime's helper in the background) cannot make us wait for it.
pub fn bounded(
    program: &Path,
    args: &[std::ffi::OsString],
    limit: Duration,
) -> Result<Ran, String> {
    bounded_ticking(program, args, limit, &mut || {})
}

/// As `bounded`, calling `tick` while it waits (see `wait_bounded_ticking`).
pub fn bounded_ticking(
    program: &Path,
    args: &[std::ffi::OsString],
    limit: Duration,
    tick: &mut dyn FnMut(),
) -> Result<Ran, String> {
    let mut out = tempfile::tempfile().map_err(|e| format!("tempfile: {e}"))?;
    let mut err = tempfile::tempfile().map_err(|e| format!("tempfile: {e}"))?;
    let mut child = Command::new(program)
        .args(args)
        // With RUST_BACKTRACE=1 in the environment a Rust runtime (youki,
        // through anyhow) captures and prints a backtrace with each error:
        // its `state` of a deleted container, which every teardown asks,
        // took 180 ms instead of 20 to 40 ms here. Only error output changes.
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(err.try_clone().map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
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
