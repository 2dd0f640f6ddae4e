use crate::{wait_readable, Countdown};
use orphanage_scenario::{verdict_without_finish, AgentEnd, Event, Verdict, WaitStatus};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The longest event line accepted; a longer one is the agent's failure.
const LONGEST_EVENT: usize = 1024 * 1024;
/// How much of the agent's stderr is kept: the verdict quotes only its tail.
const STDERR_KEPT: usize = 64 * 1024;
/// Reads of one pipe in one go at most, so a process that never stops
/// writing cannot hold its reader (the VM's init, say) in one loop.
pub const READS_IN_A_ROW: usize = 64;

/// What reading an agent's events found.
#[derive(Debug, Default)]
pub struct Reading {
    /// The agent's own verdict and the time its steps took, if it sent them.
    pub finished: Option<(Verdict, f64)>,
    /// The last step the agent started, for the reason of a timeout.
    pub reached: Option<String>,
    /// The last line that was not an event.
    pub garbage: Option<String>,
    pub timed_out: bool,
    /// The caller's `on_event` asked to stop.
    pub stopped: bool,
    /// Event bytes after the last complete line.
    pending: Vec<u8>,
    stderr: Vec<u8>,
    stderr_closed: bool,
}

/// One read(2) into `into`: the byte count, 0 at end of file (every writer
/// gone), None when nothing can be read now (EAGAIN, EINTR) or on an error.
fn read_some(fd: RawFd, into: &mut Vec<u8>) -> Option<usize> {
    let mut buf = [0u8; 8192];
    // SAFETY: reading into a local buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    into.extend_from_slice(&buf[..n as usize]);
    Some(n as usize)
}

/// Whether `fd` can be read (data, or end of file) without waiting.
pub fn readable_now(fd: RawFd) -> bool {
    wait_readable(&[Some(fd)], Duration::ZERO).is_ok_and(|ready| ready[0])
}

/// What the reader of an agent's events does after one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading.
    Go,
    /// Stop now: the caller has what it needs (a verdict, or a failure of its own).
    Stop,
}

/// Reads the agent's events, one JSON line each, until it closes the events
/// pipe (the agent and every worker gone) or the scenario's `clock` runs
/// out, and keeps what its stderr says. Each event goes to `on_event`.
pub fn read_events(
    events: &OwnedFd,
    stderr: &OwnedFd,
    clock: &Countdown,
    on_event: &mut dyn FnMut(&Event),
) -> Reading {
    read_events_until(events, Some(stderr), clock, &mut |e| {
        on_event(e);
        Flow::Go
    })
}

/// As `read_events`, but `on_event` may stop the reading (`Reading::stopped`)
/// after any event; the lines after it stay unread. Without `stderr` (a
/// container's goes to the runtime's log), only the events are read.
pub fn read_events_until(
    events: &OwnedFd,
    stderr: Option<&OwnedFd>,
    clock: &Countdown,
    on_event: &mut dyn FnMut(&Event) -> Flow,
) -> Reading {
    let mut reading = Reading {
        stderr_closed: stderr.is_none(),
        ..Reading::default()
    };
    loop {
        let left = clock.remaining();
        if left.is_zero() {
            reading.timed_out = true;
            return reading;
        }
        let stderr_fd = match stderr {
            Some(fd) if !reading.stderr_closed => Some(fd.as_raw_fd()),
            _ => None,
        };
        let Ok(ready) = wait_readable(&[Some(events.as_raw_fd()), stderr_fd], left) else {
            return reading;
        };
        if let (Some(fd), true) = (stderr, ready[1]) {
            reading.take_stderr(fd.as_raw_fd());
        }
        if ready[0] {
            let open = reading.take_events_until(events.as_raw_fd(), on_event);
            if !open || reading.stopped {
                return reading;
            }
        }
    }
}

impl Reading {
    /// One read of the events pipe, for a caller that polls it (the VM's
    /// init reads several agents at once): each complete line goes to
    /// `on_event`. False at end of file: every writer is gone.
    pub fn take_events(&mut self, events: RawFd, on_event: &mut dyn FnMut(&Event)) -> bool {
        self.take_events_until(events, &mut |e| {
            on_event(e);
            Flow::Go
        })
    }

    /// As `take_events`, but `on_event` may stop at any event: then the
    /// lines after it are kept unread and `stopped` is set.
    pub fn take_events_until(
        &mut self,
        events: RawFd,
        on_event: &mut dyn FnMut(&Event) -> Flow,
    ) -> bool {
        let mut pending = std::mem::take(&mut self.pending);
        let open = read_some(events, &mut pending) != Some(0);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice::<Event>(&line) {
                Ok(event) => {
                    match &event {
                        Event::StepStarted { index, summary } => {
                            self.reached = Some(format!("step {} {summary}", index + 1))
                        }
                        Event::Finished { verdict, steps_ms } => {
                            self.finished = Some((verdict.clone(), *steps_ms))
                        }
                        _ => {}
                    }
                    if on_event(&event) == Flow::Stop {
                        self.stopped = true;
                        break;
                    }
                }
                Err(e) => {
                    self.garbage = Some(format!(
                        "agent wrote a bad event ({e}): {}",
                        String::from_utf8_lossy(&line).trim()
                    ))
                }
            }
        }
        if pending.len() > LONGEST_EVENT {
            self.garbage = Some(format!(
                "agent wrote more than {LONGEST_EVENT} bytes without ending an event line"
            ));
            pending.clear();
        }
        self.pending = pending;
        open
    }

    /// One read of the agent's stderr, kept (its last STDERR_KEPT bytes)
    /// for the verdict's tail.
    pub fn take_stderr(&mut self, stderr: RawFd) {
        if read_some(stderr, &mut self.stderr) == Some(0) {
            self.stderr_closed = true;
        }
        if self.stderr.len() > 2 * STDERR_KEPT {
            self.stderr.drain(..self.stderr.len() - STDERR_KEPT);
        }
    }

    /// Whether the agent's stderr has ended.
    pub fn stderr_closed(&self) -> bool {
        self.stderr_closed
    }

    /// Reads what the agent's stderr holds now (at most READS_IN_A_ROW
    /// reads); call it once the agent is reaped, so that everything it wrote
    /// is there. It does not wait for a leftover process that still holds
    /// the pipe open.
    pub fn drain_stderr(&mut self, stderr: &OwnedFd) {
        for _ in 0..READS_IN_A_ROW {
            if self.stderr_closed || !readable_now(stderr.as_raw_fd()) {
                break;
            }
            self.take_stderr(stderr.as_raw_fd());
        }
        self.stderr_closed = true;
    }

    /// The last five lines of the agent's stderr, joined with " | ".
    pub fn stderr_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// The verdict for an agent that sent none: its bad line, the timeout, or
    /// how it ended (`status` from waitpid; None when someone else reaped it).
    pub fn verdict_without_finish(
        &self,
        status: Option<WaitStatus>,
        deadline: Duration,
        agent: &str,
    ) -> Verdict {
        if let (Some(g), false) = (&self.garbage, self.timed_out) {
            return Verdict::broken(g.clone());
        }
        let end = if self.timed_out {
            AgentEnd::TimedOut
        } else {
            status.map_or(AgentEnd::Unknown, AgentEnd::Status)
        };
        let reached = self.reached.as_deref().unwrap_or("before the first step");
        verdict_without_finish(
            end,
            deadline.as_secs_f64(),
            reached,
            agent,
            &self.stderr_tail(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe;
    use orphanage_scenario::Outcome;
    use std::io::Write;

    /// Reads what `events` and `stderr` hold, the writers closed unless `keep_open`.
    fn read(events: &[u8], stderr: &[u8], keep_open: bool) -> (Reading, Vec<Event>) {
        let (ev_r, ev_w) = pipe().unwrap();
        let (err_r, err_w) = pipe().unwrap();
        let (mut ev_w, mut err_w) = (std::fs::File::from(ev_w), std::fs::File::from(err_w));
        ev_w.write_all(events).unwrap();
        err_w.write_all(stderr).unwrap();
        let open = keep_open.then_some((ev_w, err_w));
        let mut seen = vec![];
        let mut reading = read_events(
            &ev_r,
            &err_r,
            &Countdown::start(Duration::from_millis(if keep_open { 50 } else { 10_000 })),
            &mut |e| seen.push(e.clone()),
        );
        drop(open);
        reading.drain_stderr(&err_r);
        (reading, seen)
    }

    fn line(event: &Event) -> Vec<u8> {
        let mut l = serde_json::to_vec(event).unwrap();
        l.push(b'\n');
        l
    }

    #[test]
    fn events_are_passed_on_and_the_verdict_kept() {
        let mut input = line(&Event::StepStarted {
            index: 1,
            summary: "exit p1".into(),
        });
        input.extend(line(&Event::Finished {
            verdict: Verdict::pass(),
            steps_ms: 2.5,
        }));
        let (reading, seen) = read(&input, b"", false);
        assert_eq!(seen.len(), 2);
        assert_eq!(reading.reached.as_deref(), Some("step 2 exit p1"));
        let (verdict, ms) = reading.finished.unwrap();
        assert_eq!((verdict.outcome, ms), (Outcome::Pass, 2.5));
        assert!(!reading.timed_out);
    }

    #[test]
    fn a_bad_line_makes_the_run_broken() {
        let (reading, seen) = read(b"not json\n", b"", false);
        assert!(seen.is_empty());
        let v = reading.verdict_without_finish(
            Some(WaitStatus::Exited(0)),
            Duration::from_secs(1),
            "agent",
        );
        assert_eq!(v.outcome, Outcome::Broken);
        assert!(v.reason.contains("not json"), "{}", v.reason);
    }

    #[test]
    fn silence_past_the_deadline_is_a_timeout_naming_the_last_step() {
        let input = line(&Event::StepStarted {
            index: 0,
            summary: "spawn p1".into(),
        });
        let (reading, _) = read(&input, b"", true);
        assert!(reading.timed_out);
        let v = reading.verdict_without_finish(None, Duration::from_millis(50), "agent");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("step 1 spawn p1"), "{}", v.reason);
    }

    #[test]
    fn the_stderr_tail_is_the_last_five_lines() {
        let (reading, _) = read(b"", b"1\n2\n3\n4\n5\n6\n", false);
        assert_eq!(reading.stderr_tail(), "2 | 3 | 4 | 5 | 6");
        let v = reading.verdict_without_finish(
            Some(WaitStatus::Exited(3)),
            Duration::from_secs(1),
            "agent",
        );
        assert!(
            v.reason.contains("exited 3") && v.reason.contains("2 | 3"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn draining_stderr_does_not_wait_for_a_writer_left_open() {
        let (err_r, err_w) = pipe().unwrap();
        let mut err_w = std::fs::File::from(err_w);
        err_w.write_all(b"last words\n").unwrap();
        let mut reading = Reading::default();
        // err_w stays open, as a leftover process would hold it.
        reading.drain_stderr(&err_r);
        assert_eq!(reading.stderr_tail(), "last words");
        drop(err_w);
    }

    #[test]
    fn a_caller_can_stop_at_an_event_and_the_rest_stays_unread() {
        let (ev_r, ev_w) = pipe().unwrap();
        let mut ev_w = std::fs::File::from(ev_w);
        let mut input = line(&Event::Note { text: "a".into() });
        input.extend(line(&Event::Note {
            text: "stop".into(),
        }));
        input.extend(line(&Event::Note { text: "b".into() }));
        ev_w.write_all(&input).unwrap();
        // The writer stays open: only the stop can end this read before the deadline.
        let mut seen = vec![];
        let reading = read_events_until(
            &ev_r,
            None,
            &Countdown::start(Duration::from_secs(10)),
            &mut |e| {
                seen.push(e.clone());
                match e {
                    Event::Note { text } if text == "stop" => Flow::Stop,
                    _ => Flow::Go,
                }
            },
        );
        assert!(reading.stopped && !reading.timed_out);
        assert_eq!(seen.len(), 2);
        assert!(!reading.pending.is_empty(), "the third line stays unread");
        drop(ev_w);
    }

    #[test]
    fn a_line_split_across_reads_is_one_event() {
        let (ev_r, ev_w) = pipe().unwrap();
        let mut ev_w = std::fs::File::from(ev_w);
        let whole = line(&Event::Note { text: "x".into() });
        let (head, tail) = whole.split_at(5);
        let mut reading = Reading::default();
        let mut seen = vec![];
        ev_w.write_all(head).unwrap();
        assert!(reading.take_events(ev_r.as_raw_fd(), &mut |e| seen.push(e.clone())));
        assert!(seen.is_empty());
        ev_w.write_all(tail).unwrap();
        drop(ev_w);
        assert!(reading.take_events(ev_r.as_raw_fd(), &mut |e| seen.push(e.clone())));
        assert!(!reading.take_events(ev_r.as_raw_fd(), &mut |e| seen.push(e.clone())));
        assert_eq!(seen, vec![Event::Note { text: "x".into() }]);
        assert!(reading.garbage.is_none());
    }

    #[test]
    fn an_endless_line_is_the_agents_failure_and_is_not_kept() {
        let (ev_r, ev_w) = pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut ev_w = std::fs::File::from(ev_w);
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(LONGEST_EVENT / chunk.len() + 2) {
                ev_w.write_all(&chunk).unwrap();
            }
        });
        let mut reading = Reading::default();
        while reading.take_events(ev_r.as_raw_fd(), &mut |_| {}) {}
        writer.join().unwrap();
        let garbage = reading.garbage.clone().unwrap_or_default();
        assert!(
            garbage.contains("without ending an event line"),
            "{garbage}"
        );
        assert!(reading.pending.len() <= LONGEST_EVENT);
    }
}
