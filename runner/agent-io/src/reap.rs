use std::time::{Duration, Instant};

/// Reaps `pid` (our child), polling until `grace` has passed; then calls
/// `kill` and waits for it. None when someone else reaped it first (the
/// harness's interrupt handler).
pub fn reap_within(pid: i32, grace: Duration, kill: &dyn Fn()) -> Option<i32> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(50);
    loop {
        let mut status = 0;
        // SAFETY: polling our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
        if r == pid {
            return Some(status);
        }
        if r < 0 {
            return None;
        }
        if start.elapsed() > grace {
            kill();
            // SAFETY: waiting for our own child, which `kill` has killed.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            return (r == pid).then_some(status);
        }
        // A poll interval within the grace period, not a synchronisation point.
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
// reap_within, under test, reaps the children these tests start.
#[allow(clippy::zombie_processes)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn an_exited_child_is_reaped_with_its_status() {
        let child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = reap_within(child.id() as i32, Duration::from_secs(10), &|| {
            panic!("killed a child that exits by itself")
        });
        assert_eq!(status.map(|s| (s >> 8) & 0xff), Some(3));
    }

    #[test]
    fn a_lingering_child_is_killed_after_the_grace() {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id() as i32;
        // SAFETY: SIGKILL to our own unreaped child.
        let status = reap_within(pid, Duration::from_millis(20), &|| unsafe {
            libc::kill(pid, libc::SIGKILL);
        });
        assert_eq!(status.map(|s| s & 0x7f), Some(libc::SIGKILL));
    }
}
