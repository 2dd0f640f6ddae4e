//! Exit-detection latency (CHECKS.md 5.5): from a child's last instruction to
//! the moment its parent knows it is gone, by pidfd poll or by kill(pid, 0).
//! The child stamps CLOCK_MONOTONIC into a shared page just before _exit, so
//! the figure excludes everything the parent did before the child died.
//!
//! A method that reports an exit too early would measure a small figure and
//! pass, so three things are checked, never clamped away: each child is seen
//! alive by the method itself before it is let go; no exit is noticed before
//! the child's stamp (its last instruction); and each is noticed within
//! `within` of it.

use crate::poll::micros;
use crate::signals;
use crate::steps::poll_readable;
use nix::errno::Errno;
use orphanage_scenario::{MeasureMethod, Verdict};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How long a measurement waits for one exit when the step names no `within`.
pub const GIVE_UP: Duration = Duration::from_secs(1);

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills ts.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn exit_detection(
    method: MeasureMethod,
    samples: u32,
    within: Duration,
) -> Result<String, Verdict> {
    let broken = |what: &str| Verdict::broken(format!("measure: {what}: {}", Errno::last()));
    // SAFETY: an anonymous shared page both processes can write.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(broken("mmap"));
    }
    let stamp = page as *mut u64;
    if method == MeasureMethod::Kill0 {
        // kill(pid, 0) succeeds on a zombie; auto-reaping makes death visible to it.
        signals::ignore(nix::sys::signal::Signal::SIGCHLD).map_err(|_| broken("sigaction"))?;
    }
    let mut latencies = Vec::with_capacity(samples as usize);
    let result = (|| {
        for _ in 0..samples.max(1) {
            let mut go = [0; 2];
            // SAFETY: pipe2 fills two fds.
            if unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(broken("pipe2"));
            }
            // SAFETY: volatile store into our mapping.
            unsafe { std::ptr::write_volatile(stamp, 0) };
            // SAFETY: the child only reads a pipe, stamps the clock and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut b = [0u8; 1];
                // SAFETY: async-signal-safe calls in the child.
                unsafe {
                    libc::read(go[0], b.as_mut_ptr().cast(), 1);
                    std::ptr::write_volatile(stamp, now_ns());
                    libc::_exit(0);
                }
            }
            // SAFETY: closing our copy of the read end.
            unsafe { libc::close(go[0]) };
            if pid < 0 {
                return Err(broken("fork"));
            }
            // Our own child, before it can exit; closed when dropped.
            let pidfd_owned = match method {
                MeasureMethod::Pidfd => match orphanage_agent_io::pidfd_open(pid) {
                    Ok(fd) => Some(fd),
                    Err(e) => {
                        // SAFETY: our child, blocked on its pipe; killed and reaped here.
                        unsafe {
                            libc::close(go[1]);
                            libc::kill(pid, libc::SIGKILL);
                            libc::waitpid(pid, std::ptr::null_mut(), 0);
                        }
                        return Err(Verdict::unsupported(format!("pidfd_open: {e}")));
                    }
                },
                MeasureMethod::Kill0 => None,
            };
            let pidfd = pidfd_owned.as_ref().map_or(-1, |fd| fd.as_raw_fd());
            // Alive, by the method's own test, before it is let go: a method that
            // says "gone" for a live process must not measure a tiny latency.
            let alive_first = match method {
                MeasureMethod::Pidfd => !poll_readable(pidfd, 0),
                // SAFETY: kill with signal 0 only checks existence.
                MeasureMethod::Kill0 => (unsafe { libc::kill(pid, 0) }) == 0,
            };
            if !alive_first {
                let how = match method {
                    MeasureMethod::Pidfd => "poll(pidfd) readable".to_string(),
                    MeasureMethod::Kill0 => {
                        format!(
                            "kill(pid, 0) {}",
                            orphanage_scenario::ErrnoName(Errno::last())
                        )
                    }
                };
                // SAFETY: our child, blocked on its pipe; killed and reaped here.
                unsafe {
                    libc::close(go[1]);
                    libc::kill(pid, libc::SIGKILL);
                }
                if method == MeasureMethod::Pidfd {
                    // SAFETY: reaping our own child (kill0 mode auto-reaps).
                    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                }
                return Err(Verdict::fail(format!(
                    "{method:?}: a child that had not been let go yet: expected alive, observed {how}"
                )));
            }
            // SAFETY: release the child.
            unsafe {
                libc::write(go[1], b"g".as_ptr().cast(), 1);
                libc::close(go[1]);
            }
            let give_up = within + Duration::from_millis(50);
            let detected = match method {
                MeasureMethod::Pidfd => {
                    let seen = poll_readable(pidfd, give_up.as_millis() as i32);
                    let t = now_ns();
                    // SAFETY: reap our child (killed first if its exit went unnoticed).
                    unsafe {
                        if !seen {
                            libc::kill(pid, libc::SIGKILL);
                        }
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                    seen.then_some(t)
                }
                MeasureMethod::Kill0 => {
                    let t = kill0_until_gone(pid, give_up);
                    if t.is_none() {
                        // SAFETY: our unreaped child (auto-reaped once it dies).
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    t
                }
            };
            // SAFETY: the child stamped before exiting.
            let died = unsafe { std::ptr::read_volatile(stamp) };
            let sample = latencies.len() + 1;
            let latency = match detected {
                None => {
                    return Err(Verdict::fail(format!(
                        "{method:?}: exit {sample}: expected it noticed within {}, observed nothing after {}",
                        micros(within),
                        micros(give_up)
                    )))
                }
                Some(t) if died == 0 || t < died => {
                    return Err(Verdict::fail(format!(
                        "{method:?}: exit {sample}: expected it noticed after the child's last instruction, observed it noticed {}",
                        if died == 0 {
                            "before the child had run it".to_string()
                        } else {
                            format!("{:.1} µs before it", (died - t) as f64 / 1000.0)
                        }
                    )))
                }
                Some(t) => t - died,
            };
            if latency > within.as_nanos() as u64 {
                return Err(Verdict::fail(format!(
                    "{method:?}: exit {sample}: expected it noticed within {}, observed {:.1} µs",
                    micros(within),
                    latency as f64 / 1000.0
                )));
            }
            latencies.push(latency);
        }
        Ok(())
    })();
    if method == MeasureMethod::Kill0 {
        let _ = signals::restore_default(nix::sys::signal::Signal::SIGCHLD);
    }
    // SAFETY: our mapping.
    unsafe { libc::munmap(page, 4096) };
    result?;
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let us = |ns: u64| format!("{:.0} µs", ns as f64 / 1000.0);
    let name = match method {
        MeasureMethod::Pidfd => "pidfd poll",
        MeasureMethod::Kill0 => "kill(pid, 0) adaptive polling",
    };
    Ok(format!(
        "exit detection by {name}: median {}, p90 {}, max {} over {} exits",
        us(pick(0.5)),
        us(pick(0.9)),
        us(*latencies.last().unwrap()),
        latencies.len()
    ))
}

/// Polls kill(pid, 0) until ESRCH: a few yields first (most exits finish in
/// microseconds), then sleeps that double from 10 µs to 1 ms, within `give_up`.
fn kill0_until_gone(pid: i32, give_up: Duration) -> Option<u64> {
    let start = now_ns();
    let mut interval = Duration::from_micros(10);
    let mut spins = 0;
    loop {
        // SAFETY: kill with signal 0 only checks existence.
        if unsafe { libc::kill(pid, 0) } == -1 && Errno::last() == Errno::ESRCH {
            return Some(now_ns());
        }
        if now_ns() - start > give_up.as_nanos() as u64 {
            return None;
        }
        if spins < 50 {
            spins += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_millis(1));
        }
    }
}
