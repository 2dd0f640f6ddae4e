//! One boot: QEMU with the agent as init, run to the end under a host-side
//! deadline. The result port (QEMU's stdout) carries framed events; the
//! console (QEMU's stderr) is kept for diagnostics and watched for the
//! kernel's death notices. QEMU is registered with `live`, so a timeout,
//! Ctrl-C or SIGTERM kills it, and it dies with the harness (PDEATHSIG).

use super::console::{ConsoleWatch, Death};
use super::initramfs::agent_initramfs;
use super::qemu_args::{qemu_argv, Accel, Boot, ResultsPort};
use crate::live;
use orphanage_scenario::{Event, FramePiece, FrameReader, VmFrame, VmScenario};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-x86_64";

/// How long the console is still read after an oops, for its trace.
const OOPS_TRACE: Duration = Duration::from_secs(2);

/// Once every scenario has its verdict, how long init may take to send its
/// last frames (what it left behind, after up to 2 s of watching it die;
/// then `Done`). A log line can break the `Done` frame on a shared console;
/// then the run is over all the same.
const LAST_FRAMES_GRACE: Duration = Duration::from_secs(5);

/// What one VM is asked to do.
#[derive(Debug, Clone)]
pub struct Batch {
    pub kernel: PathBuf,
    pub cmdline: String,
    pub qemu_args: Vec<String>,
    pub scenarios: Vec<VmScenario>,
    /// Virtual CPUs; init runs two scenarios per CPU at a time.
    pub cpus: u32,
    /// Where the guest sends its frames: a second serial port, or the console.
    pub results: ResultsPort,
}

/// Progress of one boot, as it comes: for displays, and for callers that
/// take each scenario's events as they arrive.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    Booted {
        release: String,
        after: Duration,
    },
    /// One of a scenario's events, in the order the guest sent them; the
    /// same events end up in `VmRun::events`.
    Event {
        scenario: &'a str,
        event: &'a Event,
    },
    Finished {
        done: usize,
        total: usize,
    },
}

/// Everything one boot produced.
#[derive(Debug, Default)]
pub struct VmRun {
    /// uname -r inside the VM, once it reported.
    pub release: Option<String>,
    /// Each scenario's events, in the order they came.
    pub events: BTreeMap<String, Vec<Event>>,
    /// Why the VM as a whole failed (panic, oops, init exiting, deadline), with the log tail.
    pub broken: Option<String>,
    pub booted_after: Option<Duration>,
    /// From QEMU's start to the first scenario's verdict.
    pub first_result_after: Option<Duration>,
    /// From QEMU's start to the last scenario's verdict.
    pub last_result_after: Option<Duration>,
    pub wall: Duration,
    /// CPU time QEMU used (user + system): unlike wall time, barely moved by
    /// other work on the machine.
    pub qemu_cpu: Option<Duration>,
    pub console: String,
    /// The VM's virtual CPUs.
    pub cpus: u32,
    /// What init found alive once no scenario ran, and killed ("pid (comm)").
    pub left_behind: Vec<String>,
    /// Frames that arrived damaged (a console log line broke into them).
    pub broken_frames: usize,
    /// The VM was stopped as soon as its last frame was in, without waiting
    /// for it to power off (which a guest without ACPI cannot do).
    pub stopped_after_last_frame: bool,
}

/// Boots `kernel`, a batch without scenarios, with an init that only powers
/// off: the floor any run pays. The caller gives it the kernel, command line
/// and CPUs of the run it is the floor of, and the same accelerator.
pub fn boot_floor(kernel: &Batch, agent: &[u8], accel: Accel) -> Option<Duration> {
    let run = run(kernel, agent, accel, &["poweroff".to_string()], &mut |_| {});
    run.broken.is_none().then_some(run.wall)
}

/// How long a kernel may take to reach init before the boot counts as hung.
pub fn boot_allowance(accel: Accel) -> Duration {
    match accel {
        Accel::Kvm => Duration::from_secs(30),
        Accel::Tcg => Duration::from_secs(120),
    }
}

/// The longest silence allowed once init runs: init enforces each scenario's
/// deadline itself, so a longer gap means the VM is wedged.
pub fn silence_allowance(scenarios: &[VmScenario]) -> Duration {
    let longest = scenarios
        .iter()
        .map(|s| s.scenario.deadline())
        .max()
        .unwrap_or_default();
    longest + Duration::from_secs(30)
}

/// The boot's initramfs lives in a private directory removed afterwards.
fn write_initramfs(agent: &[u8], scenarios: &[VmScenario]) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("orphanage-vm-").tempdir()?;
    live::remove_on_interrupt(dir.path().to_path_buf());
    std::fs::write(
        dir.path().join("initramfs.cpio"),
        agent_initramfs(agent, scenarios),
    )?;
    Ok(dir)
}

/// Starts QEMU in its own process group, dying with the harness.
pub fn spawn_qemu(
    args: &[std::ffi::OsString],
    stdout: Stdio,
) -> std::io::Result<std::process::Child> {
    let mut command = Command::new(QEMU);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe. The thread that starts QEMU waits
    // for it, so PDEATHSIG's thread-exit trap cannot fire early.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    command.spawn()
}

/// Boots `batch` and collects everything. Never hangs: the boot allowance,
/// the silence allowance and QEMU's exit each end the loop.
pub fn run(
    batch: &Batch,
    agent: &[u8],
    accel: Accel,
    init_args: &[String],
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> VmRun {
    let mut out = VmRun {
        cpus: batch.cpus,
        ..VmRun::default()
    };
    let started = Instant::now();
    let dir = match write_initramfs(agent, &batch.scenarios) {
        Ok(d) => d,
        Err(e) => {
            out.broken = Some(format!("cannot write the initramfs: {e}"));
            return out;
        }
    };
    let boot = Boot {
        kernel: batch.kernel.clone(),
        initrd: dir.path().join("initramfs.cpio"),
        accel,
        memory_mib: super::qemu_args::memory_mib(batch.cpus),
        cpus: batch.cpus,
        cmdline: batch.cmdline.clone(),
        qemu_args: batch.qemu_args.clone(),
        init_args: init_args.to_vec(),
        results: batch.results,
    };
    let mut child = match spawn_qemu(&qemu_argv(&boot), Stdio::piped()) {
        Ok(c) => c,
        Err(e) => {
            live::remove_now(dir.path());
            out.broken = Some(format!("cannot start {QEMU}: {e}"));
            return out;
        }
    };
    let Some(registration) = live::register_child(&mut child) else {
        live::remove_now(dir.path());
        out.broken = Some("interrupted".into());
        return out;
    };
    let mut results = child.stdout.take().expect("piped");
    let mut console_pipe = child.stderr.take().expect("piped");
    let mut watch = ConsoleWatch::default();
    let mut frames = FrameReader::default();
    let (mut results_open, mut console_open) = (true, true);
    let mut last_frame = Instant::now();
    let mut done_at: Option<Instant> = None;
    let mut oops_at: Option<Instant> = None;
    let mut finished = 0;
    let total = batch.scenarios.len();
    let silence = silence_allowance(&batch.scenarios);
    let mut stopped_for: Option<String> = None;
    while results_open || console_open {
        // The kernel lives on after an oops, but nothing it reports afterwards
        // can be trusted: keep its trace a moment for the log tail, then stop.
        if oops_at.is_some_and(|at| at.elapsed() >= OOPS_TRACE) {
            break;
        }
        if done_at.is_none()
            && total > 0
            && finished >= total
            && last_frame.elapsed() >= LAST_FRAMES_GRACE
        {
            done_at = Some(Instant::now());
        }
        if done_at.is_some() {
            // Every frame is in: QEMU goes now, whether or not the guest can
            // power off (ACPI, isa-debug-exit, or neither).
            out.stopped_after_last_frame = true;
            break;
        }
        if total == 0 && watch.stopped() && oops_at.is_none() {
            // A boot with nothing to run (the boot floor: init sends no
            // frame) is over once the kernel halts or powers down; without
            // ACPI it halts, and QEMU would never exit. With scenarios, the
            // last frame ends the run: a second port's frames may still be
            // on their way when the console says this.
            break;
        }
        let allowed = if let Some(at) = oops_at {
            OOPS_TRACE.saturating_sub(at.elapsed())
        } else if total > 0 && finished >= total {
            LAST_FRAMES_GRACE.saturating_sub(last_frame.elapsed())
        } else if out.release.is_some() {
            silence.saturating_sub(last_frame.elapsed())
        } else {
            boot_allowance(accel).saturating_sub(started.elapsed())
        };
        if allowed.is_zero() && done_at.is_none() && oops_at.is_none() {
            stopped_for = Some(if out.release.is_some() {
                format!(
                    "the VM went silent for {} s while running scenarios",
                    silence.as_secs()
                )
            } else {
                format!(
                    "the kernel did not start init within {} s ({})",
                    boot_allowance(accel).as_secs(),
                    accel.as_str()
                )
            });
            break;
        }
        let Ok(ready) = orphanage_agent_io::wait_readable(
            &[
                results_open.then(|| results.as_raw_fd()),
                console_open.then(|| console_pipe.as_raw_fd()),
            ],
            allowed,
        ) else {
            break;
        };
        let mut buf = [0u8; 16384];
        if ready[1] {
            match console_pipe.read(&mut buf) {
                Ok(0) | Err(_) => console_open = false,
                Ok(n) => watch.push(&buf[..n]),
            }
            if watch.death() == Some(Death::Oops) && oops_at.is_none() {
                oops_at = Some(Instant::now());
            }
        }
        if ready[0] {
            let got = match results.read(&mut buf) {
                Ok(0) | Err(_) => {
                    results_open = false;
                    &[][..]
                }
                Ok(n) => &buf[..n],
            };
            for piece in frames.push(got) {
                let frame = match piece {
                    // The console's own text, when it shares the line.
                    FramePiece::Text(text) => {
                        watch.push(&text);
                        if watch.death() == Some(Death::Oops) && oops_at.is_none() {
                            oops_at = Some(Instant::now());
                        }
                        continue;
                    }
                    FramePiece::Broken(why) => {
                        out.broken_frames += 1;
                        watch.push(format!("\n[results] a damaged frame: {why}\n").as_bytes());
                        continue;
                    }
                    FramePiece::Frame(frame) => frame,
                };
                last_frame = Instant::now();
                match frame {
                    VmFrame::Booted { release, .. } => {
                        out.booted_after = Some(started.elapsed());
                        on_progress(Progress::Booted {
                            release: release.clone(),
                            after: started.elapsed(),
                        });
                        out.release = Some(release);
                    }
                    VmFrame::Event { scenario, event } => {
                        on_progress(Progress::Event {
                            scenario: &scenario,
                            event: &event,
                        });
                        if matches!(event, Event::Finished { .. }) {
                            out.first_result_after.get_or_insert(started.elapsed());
                            out.last_result_after = Some(started.elapsed());
                            finished += 1;
                            on_progress(Progress::Finished {
                                done: finished,
                                total,
                            });
                        }
                        out.events.entry(scenario).or_default().push(event);
                    }
                    VmFrame::LeftBehind { processes } => out.left_behind = processes,
                    VmFrame::Done => done_at = Some(Instant::now()),
                }
            }
        }
    }
    // A frame cut off by the end (a panic in the middle of one, say) was
    // console text after all: the watch must see it.
    for piece in frames.finish() {
        if let FramePiece::Text(text) = piece {
            watch.push(&text);
        }
    }
    // Whatever ended the loop, QEMU goes now (it has usually exited already).
    registration.kill();
    // The reap also says how much CPU QEMU used.
    let exit = registration.reap_root(None);
    let status = exit.map(|e| e.status);
    out.qemu_cpu = exit.map(|e| e.cpu);
    drop(registration);
    // Drain what QEMU wrote before it died.
    let mut rest = Vec::new();
    let _ = console_pipe.read_to_end(&mut rest);
    watch.push(&rest);
    out.wall = started.elapsed();
    out.console = watch.text();
    let death = watch.death();
    out.broken = match (death, stopped_for, done_at.is_some()) {
        (Some(d), _, _) => Some(format!("{}:\n{}", d.describe(), watch.tail(15))),
        (None, Some(why), _) => Some(format!("{why}; last console lines:\n{}", watch.tail(15))),
        (None, None, true) => None,
        (None, None, false) if init_args.is_empty() => Some(format!(
            "QEMU ended ({}) before every scenario reported; last console lines:\n{}",
            status.map_or("status unknown".into(), |s| s.to_string()),
            watch.tail(15)
        )),
        (None, None, false) => None,
    };
    live::remove_now(dir.path());
    drop(dir);
    out
}

impl VmRun {
    /// One scenario's events, always ending with `Finished`: a scenario the
    /// VM never gave a verdict for is broken, with the VM's own failure.
    pub fn events_of(&self, scenario: &str) -> Vec<Event> {
        let mut events = self.events.get(scenario).cloned().unwrap_or_default();
        if !events.iter().any(|e| matches!(e, Event::Finished { .. })) {
            let why = match &self.broken {
                Some(b) => format!("the VM failed before this scenario's verdict: {b}"),
                None => "the VM reported no verdict for this scenario".into(),
            };
            events.push(Event::Finished {
                verdict: orphanage_scenario::Verdict::broken(why),
                steps_ms: 0.0,
            });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orphanage_scenario::{Outcome, Verdict};

    #[test]
    fn a_scenario_without_a_verdict_is_broken_with_the_vms_reason() {
        let mut run = VmRun::default();
        run.events.insert(
            "a::ok".into(),
            vec![Event::Finished {
                verdict: Verdict::pass(),
                steps_ms: 1.0,
            }],
        );
        run.broken = Some("kernel panic:\n    Kernel panic - not syncing".into());
        assert_eq!(run.events_of("a::ok").len(), 1);
        let missing = run.events_of("a::late");
        let Some(Event::Finished { verdict, .. }) = missing.last() else {
            panic!("{missing:?}")
        };
        assert_eq!(verdict.outcome, Outcome::Broken);
        assert!(verdict.reason.contains("Kernel panic"));
    }

    #[test]
    fn the_host_deadline_grows_with_the_longest_scenario() {
        let scenario: orphanage_scenario::Scenario = serde_json::from_value(serde_json::json!({
            "checks": "x", "refs": [], "deadline": "40s", "steps": []
        }))
        .unwrap();
        let s = vec![VmScenario {
            name: "a::b".into(),
            scenario,
        }];
        assert_eq!(silence_allowance(&s), Duration::from_secs(70));
        assert!(boot_allowance(Accel::Tcg) > boot_allowance(Accel::Kvm));
    }
}
