//! "Eventually" checks: poll a condition against a deadline and say how long it took.
//! The interval starts at a few microseconds and doubles to 2 ms, so fast
//! kernels are seen fast and slow ones are not hammered. The sleep here is a
//! poll interval inside a deadline loop, never a synchronisation point.

use std::time::{Duration, Instant};

pub fn until<T>(
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<(T, Duration), Duration> {
    let start = Instant::now();
    let mut interval = Duration::from_micros(5);
    loop {
        if let Some(v) = check() {
            return Ok((v, start.elapsed()));
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            return Err(elapsed);
        }
        std::thread::sleep(interval.min(deadline - elapsed));
        interval = (interval * 2).min(Duration::from_millis(2));
    }
}

pub fn micros(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
