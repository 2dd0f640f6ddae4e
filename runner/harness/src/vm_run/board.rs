//! The matrix's progress on stderr.

/// The matrix's progress while kernels boot. On a terminal, a bar per cell
/// (indicatif): its kernel, the time since it started, scenarios done out of
/// the total, and its state; lines that matter are printed above the bars.
/// Otherwise no bars, one line per step.
pub struct Board {
    tty: bool,
    multi: indicatif::MultiProgress,
    bars: Vec<(String, indicatif::ProgressBar)>,
}

impl Board {
    pub fn new(names: impl Iterator<Item = String>, scenarios: usize) -> Self {
        use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template(
            "{prefix:>12} {elapsed:>4} [{bar:24}] {pos:>3}/{len:3} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bars = names
            .map(|name| {
                let bar = multi.add(ProgressBar::new(scenarios as u64));
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                bar.set_message("waiting");
                (name, bar)
            })
            .collect();
        Board { tty, multi, bars }
    }

    /// A cell's state changed; `every_time` says whether a log line is worth
    /// it too where there are no bars.
    pub fn set(&self, i: usize, state: String, every_time: bool) {
        let (name, bar) = &self.bars[i];
        if !self.tty && every_time {
            eprintln!("[{name}] {state}");
        }
        bar.set_message(state);
    }

    /// Scenarios done in a cell.
    pub fn done(&self, i: usize, done: usize, total: usize) {
        let bar = &self.bars[i].1;
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message("running");
        if !self.tty && (done == total || done % 20 == 0) {
            eprintln!("[{}] {done}/{total}", self.bars[i].0);
        }
    }

    /// A line that stays: printed above the bars.
    pub fn say(&self, i: usize, line: &str) {
        let line = format!("[{}] {line}", self.bars[i].0);
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// A cell is over: its bar stays, with how it ended.
    pub fn end(&self, i: usize, state: String) {
        self.bars[i].1.finish_with_message(state);
    }
}
