//! "Eventually" checks: poll a condition against a deadline and say how long it took.
//! The interval starts at a few microseconds and doubles to 2 ms, so fast
//! kernels are seen fast and slow ones are not hammered. The sleep here is a
//! poll interval inside a deadline loop, never a synchronisation point.

use std::time::{Duration, Instant};

/// Polls `observe` until it says the condition holds or `deadline` passes;
/// an error ends the poll at once. Returns whether it held and when it was last seen.
pub fn holds_within<E>(
    deadline: Duration,
    mut observe: impl FnMut() -> Result<bool, E>,
) -> Result<(bool, Duration), E> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(5);
    loop {
        if observe()? {
            return Ok((true, start.elapsed()));
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            return Ok((false, elapsed));
        }
        std::thread::sleep(interval.min(deadline - elapsed));
        interval = (interval * 2).min(Duration::from_millis(2));
    }
}

/// Polls `check` until it yields a value or `deadline` passes.
pub fn until<T>(
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<(T, Duration), Duration> {
    let mut value = None;
    let never: Result<_, std::convert::Infallible> = holds_within(deadline, || {
        value = check();
        Ok(value.is_some())
    });
    match (never, value) {
        (Ok((true, took)), Some(v)) => Ok((v, took)),
        (Ok((_, elapsed)), _) => Err(elapsed),
    }
}

pub fn micros(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
