//! Deadlines as written in scenario files: `500ms`, `2s`, `1.5s`.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The deadline of a scenario that names none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// Anything longer is a typo, not a plan: lifecycle checks settle in milliseconds.
pub const MAX_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Duration);

impl FromStr for Deadline {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad duration `{text}`: write it like `500ms` or `2s`");
        let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, 1000.0)
        } else {
            return Err(bad());
        };
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("duration `{text}` must be positive"));
        }
        // Compare before converting: from_secs_f64 panics past u64 seconds.
        let seconds = value * unit_ms / 1000.0;
        if seconds > MAX_DEADLINE.as_secs_f64() {
            return Err(format!(
                "duration `{text}` is absurd: the limit is {} s",
                MAX_DEADLINE.as_secs()
            ));
        }
        Ok(Deadline(Duration::from_secs_f64(seconds)))
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if self.0.subsec_nanos() % 1_000_000 != 0 {
            // Below a millisecond (a latency bound): keep the microseconds.
            let text = format!("{:.6}", self.0.as_secs_f64() * 1000.0);
            write!(f, "{}ms", text.trim_end_matches('0').trim_end_matches('.'))
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Deadline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is ambiguous (seconds? milliseconds?), so only strings.
        let text = String::deserialize(d)?;
        // Named, because yaml_serde cannot place errors in top-level values.
        text.parse()
            .map_err(|e| de::Error::custom(format!("deadline: {e}")))
    }
}

impl Serialize for Deadline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("10s", 10_000)]
    #[case("500ms", 500)]
    #[case("1.5s", 1_500)]
    #[case("300s", 300_000)]
    fn accepts(#[case] text: &str, #[case] ms: u64) {
        assert_eq!(
            text.parse::<Deadline>().unwrap().0,
            Duration::from_millis(ms)
        );
    }

    #[rstest]
    #[case("0.001ms")]
    #[case("0.25ms")]
    #[case("1.5s")]
    #[case("2s")]
    fn survives_the_trip_to_the_agent(#[case] text: &str) {
        let d: Deadline = text.parse().unwrap();
        let back: Deadline = d.to_string().parse().unwrap();
        assert!(
            back.0.abs_diff(d.0) < Duration::from_nanos(10),
            "{text} became {back}"
        );
        assert!(!back.0.is_zero());
    }

    #[rstest]
    #[case("-1s", "positive")]
    #[case("0s", "positive")]
    #[case("301s", "absurd")]
    #[case("100000000s", "absurd")]
    #[case("1e20s", "absurd")]
    #[case("1e300ms", "absurd")]
    #[case("10", "write it like")]
    #[case("tens", "write it like")]
    #[case("NaNs", "positive")]
    fn rejects(#[case] text: &str, #[case] why: &str) {
        let err = text.parse::<Deadline>().unwrap_err();
        assert!(err.contains(why), "{err}");
    }
}
