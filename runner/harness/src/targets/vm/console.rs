//! The VM's console (first serial port): the kernel log and init's
//! diagnostics. It is kept to explain a failure, and watched for the notices
//! the kernel prints when it dies or oopses.

/// How the kernel died, as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// "Kernel panic - not syncing: Attempted to kill init!": init exited.
    InitExited,
    Panic,
    Oops,
}

impl Death {
    pub fn describe(self) -> &'static str {
        match self {
            Death::InitExited => "init exited and the kernel panicked",
            Death::Panic => "kernel panic",
            Death::Oops => "kernel oops",
        }
    }
}

/// Reads one console line for a death notice.
pub fn death_in(line: &str) -> Option<Death> {
    if line.contains("Attempted to kill init") {
        Some(Death::InitExited)
    } else if line.contains("Kernel panic - not syncing") {
        Some(Death::Panic)
    } else if [
        "Oops: ",
        "kernel BUG at ",
        "BUG: unable to handle",
        "BUG: kernel NULL pointer",
    ]
    .iter()
    .any(|m| line.contains(m))
    {
        Some(Death::Oops)
    } else {
        None
    }
}

/// Whether a console line is the kernel's last word after init asked it to
/// stop (kernel/reboot.c): powered down, restarting, or halted, which is
/// what reboot(RB_POWER_OFF) does on a kernel that cannot power off (no
/// ACPI): the guest then never exits, and only this line says it is done.
pub fn stopped_in(line: &str) -> bool {
    [
        "reboot: System halted",
        "reboot: Power down",
        "reboot: Restarting system",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// Keeps at most this much of the log (the tail is what explains things).
const KEEP: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct ConsoleWatch {
    text: Vec<u8>,
    /// Where the first unscanned line starts.
    scanned: usize,
    death: Option<Death>,
    stopped: bool,
}

impl ConsoleWatch {
    pub fn push(&mut self, bytes: &[u8]) {
        self.text.extend_from_slice(bytes);
        while let Some(end) = self.text[self.scanned..].iter().position(|&b| b == b'\n') {
            let line =
                String::from_utf8_lossy(&self.text[self.scanned..self.scanned + end]).into_owned();
            self.scanned += end + 1;
            // The first notice is the cause; what follows is its consequence.
            // Init exiting is reported as a panic line after the cause, so it wins over a plain panic.
            match (self.death, death_in(&line)) {
                (None, Some(d)) | (Some(Death::Panic), Some(d @ Death::InitExited)) => {
                    self.death = Some(d)
                }
                _ => {}
            }
            self.stopped |= stopped_in(&line);
        }
        if self.text.len() > KEEP {
            let cut = self.text.len() - KEEP / 2;
            self.text.drain(..cut);
            self.scanned = self.scanned.saturating_sub(cut);
        }
    }

    pub fn death(&self) -> Option<Death> {
        self.death
    }

    /// The kernel said it halted, powered down or is restarting.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// The last `n` non-empty lines, indented, without carriage returns.
    pub fn tail(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let from = lines.len().saturating_sub(n);
        lines[from..]
            .iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "[    3.79] Kernel panic - not syncing: VFS: Unable to mount root fs",
        Some(Death::Panic)
    )]
    #[case(
        "[    1.00] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
        Some(Death::InitExited)
    )]
    #[case("[    2.00] Oops: 0002 [#1] PREEMPT SMP NOPTI", Some(Death::Oops))]
    #[case(
        "[    2.00] BUG: kernel NULL pointer dereference, address: 0000000000000000",
        Some(Death::Oops)
    )]
    #[case("[    0.00] Linux version 6.1.0-50-amd64", None)]
    fn death_notices_are_recognised(#[case] line: &str, #[case] death: Option<Death>) {
        assert_eq!(death_in(line), death);
    }

    #[test]
    fn lines_split_across_reads_are_still_seen_and_the_cause_wins() {
        let mut w = ConsoleWatch::default();
        w.push(b"[ 1.0] Kernel pa");
        assert_eq!(w.death(), None, "half a line is not a notice");
        w.push(b"nic - not syncing: Attempted to kill init! exitcode=0x0\r\n[ 1.1] Kernel panic - not syncing: other\n");
        assert_eq!(w.death(), Some(Death::InitExited));
        assert_eq!(w.tail(1), "    [ 1.1] Kernel panic - not syncing: other");
    }

    #[rstest]
    #[case("[    4.10] reboot: System halted", true)]
    #[case("[    4.10] reboot: Power down", true)]
    #[case("[    4.10] reboot: Restarting system", true)]
    #[case("[    0.00] Linux version 6.1.176 (tiny)", false)]
    fn the_kernels_last_words_are_recognised(#[case] line: &str, #[case] stopped: bool) {
        assert_eq!(stopped_in(line), stopped);
    }

    #[test]
    fn a_halt_split_across_reads_is_seen_once_whole() {
        let mut w = ConsoleWatch::default();
        w.push(b"[ 4.1] reboot: System ha");
        assert!(!w.stopped());
        w.push(b"lted\r\n");
        assert!(w.stopped());
        assert_eq!(w.death(), None, "halting is not dying");
    }

    #[test]
    fn an_oops_stays_the_cause_of_a_later_panic() {
        let mut w = ConsoleWatch::default();
        w.push(b"Oops: 0000 [#1]\nKernel panic - not syncing: Fatal exception\n");
        assert_eq!(w.death(), Some(Death::Oops));
    }
}
