//! A scenario's deadline as one clock. It starts once, when the scenario
//! does, and every wait of that scenario asks it what is left: reading the
//! agent's events, a runtime's `create` or `kill`, a step's `within`. So a
//! `deadline: 5s` scenario ends within 5 s however its time is spent.

use std::time::{Duration, Instant};

/// A deadline counting down from its start.
#[derive(Debug, Clone, Copy)]
pub struct Countdown {
    started: Instant,
    limit: Duration,
}

impl Countdown {
    /// Starts counting `limit` down from now.
    pub fn start(limit: Duration) -> Self {
        Countdown {
            started: Instant::now(),
            limit,
        }
    }

    /// The whole deadline, as the scenario gave it.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What is left; zero once expired.
    pub fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.started.elapsed())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// `wait`, or what is left when that is less: a step's own bound never
    /// outlasts the scenario.
    pub fn cap(&self, wait: Duration) -> Duration {
        wait.min(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_shrinks_to_zero_and_caps_every_wait() {
        let clock = Countdown::start(Duration::from_secs(3600));
        assert!(!clock.expired());
        assert!(clock.remaining() <= Duration::from_secs(3600));
        assert_eq!(clock.cap(Duration::from_secs(1)), Duration::from_secs(1));
        assert!(clock.cap(Duration::from_secs(7200)) <= Duration::from_secs(3600));

        // A short one, watched as it runs out.
        let short = Countdown::start(Duration::from_millis(50));
        let first = short.remaining();
        assert!(first > Duration::ZERO && !short.expired());
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while !short.expired() && std::time::Instant::now() < give_up {
            // A poll interval against a deadline, not a synchronisation point.
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(short.expired(), "50 ms ran out within 10 s");
        assert_eq!(short.remaining(), Duration::ZERO);
        assert!(short.elapsed() >= Duration::from_millis(50));

        let spent = Countdown::start(Duration::ZERO);
        assert!(spent.expired());
        assert_eq!(spent.remaining(), Duration::ZERO);
        assert_eq!(spent.cap(Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(spent.limit(), Duration::ZERO);
    }
}
