//! The fields of /proc/PID/stat that agent and harness both read, parsed from
//! text (the reading is theirs). Shared so the two cannot disagree.

/// State (field 3), parent (4), the kernel's flags (9), start time (22) and,
/// from Linux 3.5, the exit code a zombie will report (52).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: i32,
    /// PF_* flags; PF_KTHREAD marks a kernel thread.
    pub flags: u64,
    pub start_time: u64,
    pub exit_code: Option<i32>,
}

impl ProcStat {
    pub fn parse(text: &str) -> Option<Self> {
        // comm (field 2) may hold spaces and parentheses; fields resume after the last ')'.
        let rest = text.get(text.rfind(')')? + 2..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            flags: fields.get(6)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
            exit_code: fields.get(49).and_then(|f| f.parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_hostile_comm() {
        let text = "42 (a) b (c)) Z 7 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 9";
        let s = ProcStat::parse(text).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.flags, s.start_time, s.exit_code),
            ('Z', 7, 4194564, 777, Some(9))
        );
    }

    #[test]
    fn an_old_kernel_without_exit_code_still_parses() {
        let s = ProcStat::parse("1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5").unwrap();
        assert_eq!((s.ppid, s.start_time, s.exit_code), (0, 5, None));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(ProcStat::parse("no parenthesis"), None);
        assert_eq!(ProcStat::parse("1 (x)"), None);
    }
}
