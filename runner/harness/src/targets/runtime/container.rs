//! Runs one scenario in a container: bundle, a foreground `run` (a scenario
//! that needs nothing of the harness) or `run --detach`, the agent's events,
//! the harness's own steps (runtime verbs, checks from the host), and the
//! container gone whatever happened: deleted by its foreground `run`, or
//! else by `delete --force`.

use super::argv::{answers_unknown_state, RuntimeCli};
use super::bundle::{self, InitUnderTest};
use super::cgroup;
use super::command::{bounded_ticking, wait_bounded, wait_bounded_ticking, CommandError, Ran};
use super::foreground::{self, SigchldNudge};
use super::pid_file::{self, pid_in, PidFileWait};
use super::state_dir;
use super::watch::{self, Watched};
use crate::live::{self, Container, Registration, Tree};
use orphanage_agent_io::{read_events_until, Countdown, Flow};
use orphanage_scenario::{
    signal_name, Event, ExpectedStatus, FailKind, GoneProbe, Namespace, Outcome, Scenario,
    SpawnHow, Step, Verdict, WaitStatus,
};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A runtime to run scenarios in, with orphanage's private state directory.
#[derive(Debug, Clone)]
pub struct RuntimeTarget {
    /// Short name for trial names and reports: `runc`, or `runc+tini` with an init.
    pub label: String,
    pub cli: RuntimeCli,
    /// Where bundles are made (a private temporary directory of the run).
    pub work_dir: PathBuf,
    pub init: Option<InitUnderTest>,
    /// Its foreground `run` can miss its init's exit, and is sent the
    /// SIGCHLD it missed (`argv::foreground_run_loses_sigchld`).
    pub nudge_foreground_run: bool,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// What teardown may take, all of it: killing, reaping, `delete --force`, and
/// the container vanishing from the runtime's state. A budget of its own, not
/// what is left of the scenario's deadline: a scenario that timed out still
/// leaves nothing behind.
const CLEANUP_BUDGET: Duration = Duration::from_secs(20);

/// What a foreground `run` may take in teardown, out of the cleanup budget:
/// to end as its init exits and delete the container, and after the kills
/// if it did not. It is waited for by its pidfd, so this is only a bound;
/// the rest of the budget stays for `delete --force`.
const FOREGROUND_EXIT: Duration = Duration::from_secs(10);

fn pipe() -> Result<(OwnedFd, OwnedFd), Verdict> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Verdict::broken(format!("pipe2: {e}")))
}

/// Runs a runtime verb to completion, killing it past `limit`, capturing
/// what it said; `tick` runs while it waits.
fn run(
    cli: &RuntimeCli,
    argv: &[std::ffi::OsString],
    limit: Duration,
    tick: &mut dyn FnMut(),
) -> Result<Ran, CommandError> {
    bounded_ticking(&cli.program, argv, limit, tick)
}

fn words(argv: &[std::ffi::OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a scenario can run as a bare `run` does, the runtime in the
/// foreground until the container's init exits and deleting the container
/// itself: when nothing in it needs the harness as the init's parent, or
/// the container to outlive its init. So with no step the harness performs
/// (runtime verbs, checks from the host, the init's exit status, which only
/// its parent can reap), and, in the host's pid namespace, with no process
/// that could leave the agent's tree (see `stays_in_the_tree`). The others
/// are made with `run --detach`, and the harness adopts the init.
fn runs_in_foreground(scenario: &Scenario, host_pid_namespace: bool) -> bool {
    !scenario.steps.iter().any(Step::runs_in_harness)
        && (!host_pid_namespace || stays_in_the_tree(scenario))
}

/// In the host's pid namespace a container's processes can outlive its
/// init, and an orphan goes to the nearest subreaper: a foreground `run`
/// (runc's is one), where after `run --detach` it is the harness. That
/// matters nowhere if no orphan can arise: every process is the root's own
/// child (so no exit but the root's orphans anyone, and the root's workers
/// end with it), none is made the root's sibling (CLONE_PARENT) or the init
/// of a pid namespace of its own, and none detaches to outlive the agent.
fn stays_in_the_tree(scenario: &Scenario) -> bool {
    let root = scenario.root_name();
    scenario.steps.iter().all(|step| match step {
        Step::Spawn { by, how, .. } => {
            by.as_ref().is_none_or(|b| b.as_str() == root)
                && matches!(how, SpawnHow::Fork | SpawnHow::Clone | SpawnHow::Thread)
        }
        Step::Detach { .. } => false,
        _ => true,
    })
}

/// What sends a foreground `run` the SIGCHLD it missed, for a runtime known
/// to miss one; it never sends anything for the others.
fn sigchld_nudge(
    target: &RuntimeTarget,
    runtime: &mut std::process::Child,
    init: Option<&Watched>,
) -> SigchldNudge {
    SigchldNudge::new(runtime, init.filter(|_| target.nudge_foreground_run))
}

/// The pid of the container's init, from `state`.
pub fn state_pid(state_json: &str) -> Option<i32> {
    // Only the JSON object: a runtime may print warnings around it.
    let (first, last) = (state_json.find('{')?, state_json.rfind('}')?);
    let json = state_json.get(first..=last)?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["pid"].as_i64().map(|p| p as i32).filter(|&p| p > 0)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// What teardown could not clean up: the container outlived it.
#[derive(Debug, thiserror::Error)]
enum CleanupError {
    #[error("`delete --force` failed ({status}): {output}")]
    DeleteFailed { status: String, output: String },
    #[error("`delete --force`: {0}")]
    Delete(CommandError),
    #[error("the runtime still knows the container {:.1} s after `delete --force`", .0.as_secs_f64())]
    StillKnown(Duration),
    /// A foreground `run` forgot the container (its state entries are gone)
    /// but left cgroups behind, which the harness then removed or could not.
    #[error("{}", cgroups_left(.removed, .kept))]
    CgroupsLeft {
        removed: Vec<PathBuf>,
        kept: Vec<(PathBuf, std::io::Error)>,
    },
}

/// What a runtime that forgot its container's cgroups left, and what became
/// of each: `delete --force` cannot help (the runtime no longer knows the
/// container), so the harness removes them itself.
fn cgroups_left(removed: &[PathBuf], kept: &[(PathBuf, std::io::Error)]) -> String {
    let each: Vec<String> = removed
        .iter()
        .map(|d| format!("the cgroup {} behind (orphanage removed it)", d.display()))
        .chain(kept.iter().map(|(d, e)| {
            format!(
                "the cgroup {} behind, which orphanage could not remove: {e}",
                d.display()
            )
        }))
        .collect();
    format!(
        "the runtime's `run` exited and forgot the container, but left {}",
        each.join("; ")
    )
}

/// Removes each of a container's cgroup directories that is still there.
fn remove_cgroups(dirs: Vec<PathBuf>) -> CleanupError {
    let (mut removed, mut kept) = (vec![], vec![]);
    for dir in dirs {
        match std::fs::remove_dir(&dir) {
            Ok(()) => removed.push(dir),
            Err(e) => kept.push((dir, e)),
        }
    }
    CleanupError::CgroupsLeft { removed, kept }
}

/// Everything one container run holds; dropping it deletes the container,
/// reaps its init (or waits for its foreground `run`) and removes the bundle.
struct Run<'a> {
    target: &'a RuntimeTarget,
    /// The scenario's deadline, started before the bundle is made: every
    /// runtime command and every wait of a step gets what is left of it.
    clock: Countdown,
    id: String,
    bundle: PathBuf,
    host_pid_namespace: bool,
    registration: Option<Registration>,
    init: Option<Watched>,
    init_status: Option<WaitStatus>,
    watched: Vec<Watched>,
    cgroup_procs: Vec<PathBuf>,
    /// Everything the runtime printed, for failure reports.
    runtime_said: String,
    agent_stdin: Option<std::fs::File>,
    /// Reported processes that were gone before the harness could pin them.
    gone_unpinned: Vec<String>,
    /// Set when the container's processes are not host processes (gVisor's
    /// runsc: they live in the sandbox's own kernel): why the harness thinks so.
    /// Then only what the host sees is checked: the sandbox's host processes.
    sandboxed: Option<String>,
    /// The runtime's state directory held entries of the container once it
    /// ran: teardown then proves the delete by their absence, and asks
    /// `state` only of a runtime that keeps its state elsewhere.
    state_in_root: bool,
    /// The runtime's foreground `run`, while it runs the container (a
    /// scenario `runs_in_foreground`): it deletes the container once the
    /// init exits, and teardown waits for it to.
    foreground: Option<std::process::Child>,
    /// The agent sent its verdict: it exits, and its container ends, by itself.
    agent_finished: bool,
    /// SIGCHLDs sent to a foreground `run` that had missed its init's exit.
    sigchlds_sent: u32,
    torn_down: bool,
}

impl Run<'_> {
    fn log_path(&self) -> PathBuf {
        self.bundle.join("runtime.log")
    }

    /// A verdict other than pass carries what the runtime printed.
    fn with_output(&self, mut v: Verdict) -> Verdict {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let said = format!("{}{}", self.runtime_said, last_lines(&log, 5));
        if v.outcome != orphanage_scenario::Outcome::Pass && !said.trim().is_empty() {
            v.reason = format!("{}; runtime output: {}", v.reason, said.trim());
        }
        v
    }

    fn note_output(&mut self, verb: &str, ran: &Ran) {
        if !ran.output.is_empty() {
            self.runtime_said
                .push_str(&format!("[{verb}: {}] ", last_lines(&ran.output, 3)));
        }
    }

    /// Reaps what of a sandbox has exited: the sandbox itself (the root, through
    /// the registration) and its helpers. runsc's `delete` and `kill` wait
    /// for the sandbox to vanish, which a zombie of ours never does. Nothing
    /// on a runtime whose processes are host processes (they are the
    /// scenario's to observe).
    fn reap_sandbox(&mut self) {
        if self.sandboxed.is_none() {
            return;
        }
        self.try_reap_init(Some(Duration::ZERO));
        for w in &self.watched {
            w.reap_if_exited_child();
        }
    }

    /// Runs a runtime verb within what is left of the scenario's deadline.
    /// One still running when it runs out makes the scenario a timeout.
    fn verb(&mut self, name: &str, argv: Vec<std::ffi::OsString>) -> Result<Ran, Verdict> {
        let line = words(&argv);
        let cli = self.target.cli.clone();
        let limit = self.clock.remaining();
        let ran = run(&cli, &argv, limit, &mut || self.reap_sandbox()).map_err(|e| match e {
            CommandError::NoAnswer { .. } => Verdict::timeout(format!(
                "`{} {line}` was still running, and was killed",
                self.target.label
            )),
            other => Verdict::broken(format!("`{} {line}`: {other}", self.target.label)),
        })?;
        if !ran.ok {
            self.note_output(name, &ran);
            return Err(Verdict::fail(format!(
                "`{} {line}` failed ({}): {}",
                self.target.label,
                ran.status,
                last_lines(&ran.output, 3)
            )));
        }
        Ok(ran)
    }

    /// Reaps the init if it has exited (it is our child: the harness adopted
    /// it), waiting up to `block`. Through the registration, which reaps
    /// under the lock that its kills take.
    fn try_reap_init(&mut self, block: Option<Duration>) -> Option<WaitStatus> {
        if self.init_status.is_none() && self.init.is_some() {
            let registration = self.registration.as_ref()?;
            self.init_status = registration
                .reap_root(Some(block.unwrap_or(Duration::ZERO)))
                .map(|exit| exit.status);
        }
        self.init_status
    }

    /// Takes `pid`, started at `started`, as the container's init: registered,
    /// so that an interrupt kills it; pinned, under the name its scenario
    /// gives it; its cgroup found; and whatever else the runtime left there
    /// pinned too, while the init is surely alive (once the container's
    /// program exits, a sandbox's helpers may exit too, and their zombies
    /// leave cgroup.procs). Broken (interrupted) if an interrupt came first.
    fn watch_init(&mut self, scenario: &Scenario, pid: i32, started: u64) -> Result<(), Verdict> {
        if self
            .registration
            .as_ref()
            .is_some_and(|r| !r.set_agent(pid, started))
        {
            return Err(Verdict::broken("interrupted"));
        }
        let name = if scenario.namespace == Namespace::UnderInit {
            "init"
        } else {
            scenario.root_name()
        };
        self.init = Watched::pin(name, pid, started).ok();
        self.cgroup_procs = cgroup_procs_of(pid);
        self.pin_cgroup_members();
        Ok(())
    }

    /// Pins every host process in the container's cgroup that is not pinned
    /// yet (a sandbox without a cgroup: every one that names its bundle, and
    /// those below them): for a sandboxed runtime, the sandbox's helpers
    /// (runsc's gofer, the ptrace platform's stub processes). They are ours to kill, and after
    /// `run --detach` ours to reap (a foreground `runsc run` reaps its own):
    /// as a subreaper the harness inherits them, and runsc's `delete` waits
    /// until its gofer is gone, which an unreaped zombie of ours never is.
    /// (After `run --detach`, runc, crun and youki leave only the init there.)
    /// Until the container is known to be a sandbox, the init's descendants
    /// are left alone: they are the container's own processes, which the
    /// agent reports by name (under `--init`, the agent forked by the init
    /// would otherwise be pinned twice, once as a stranger).
    fn pin_cgroup_members(&mut self) {
        let init = self.init.as_ref().map(|w| w.pid);
        let members = match self
            .cgroup_procs
            .iter()
            .find_map(|f| std::fs::read_to_string(f).ok())
        {
            Some(text) => cgroup::parse_procs(&text),
            // A rootless runsc makes no cgroup: its sandbox and gofer are
            // known by the bundle they name instead.
            None if self.sandboxed.is_some() => watch::naming_bundle(&self.bundle),
            None => return,
        };
        for pid in members {
            if self.everyone().iter().any(|w| w.pid == pid) {
                continue;
            }
            if self.sandboxed.is_none() && init.is_some_and(|i| watch::descends_from(pid, i)) {
                continue;
            }
            let Some(stat) = watch::stat(pid) else {
                continue;
            };
            let name = format!("host process {pid} of the sandbox");
            if let Ok(w) = Watched::pin(&name, pid, stat.start_time) {
                if let Some(r) = &self.registration {
                    r.add_spawned(pid, stat.start_time);
                }
                self.watched.push(w);
            }
        }
    }

    fn everyone(&self) -> Vec<&Watched> {
        self.init.iter().chain(self.watched.iter()).collect()
    }

    /// Processes still in the container's cgroup that the agent never reported.
    fn cgroup_members(&self) -> Vec<String> {
        let known: Vec<i32> = self.everyone().iter().map(|w| w.pid).collect();
        self.cgroup_procs
            .iter()
            .find_map(|f| std::fs::read_to_string(f).ok())
            .map(|text| {
                cgroup::parse_procs(&text)
                    .into_iter()
                    .filter(|p| !known.contains(p))
                    .map(|p| format!("unreported pid {p} in the container's cgroup"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The watched processes named; one that was gone before it could be
    /// pinned is gone, and left out.
    fn named(&self, names: &[orphanage_scenario::ActorRef]) -> Result<Vec<&Watched>, Verdict> {
        if let Some(why) = &self.sandboxed {
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            return Err(Verdict::unsupported(format!(
                "{} cannot be watched from the host: {why}; only the runtime's own `ps` could \
                 say whether they are gone, and the system under test does not grade itself",
                names.join(", ")
            )));
        }
        let mut found = Vec::new();
        for n in names {
            if let Some(w) = self.everyone().into_iter().find(|w| w.name == n.as_str()) {
                found.push(w);
            } else if !self.gone_unpinned.iter().any(|g| g == n.as_str()) {
                return Err(Verdict::broken(format!(
                    "the harness never saw `{n}` reported"
                )));
            }
        }
        Ok(found)
    }

    /// A step the harness performs; returns its notes.
    fn harness_step(&mut self, step: &Step) -> Result<Vec<String>, Verdict> {
        match step {
            Step::RuntimeKill { signal, all } => {
                let argv = self.target.cli.kill(&self.id, signal.0.as_str(), *all);
                self.verb("kill", argv)?;
                // The race of CHECKS 5.4: what a check made at once still sees.
                let alive = self
                    .everyone()
                    .iter()
                    .filter(|w| w.alive(GoneProbe::Kill0))
                    .count();
                let listed = self
                    .cgroup_procs
                    .iter()
                    .find_map(|f| std::fs::read_to_string(f).ok())
                    .map_or("cgroup.procs not found".to_string(), |t| {
                        format!("{} listed in cgroup.procs", cgroup::parse_procs(&t).len())
                    });
                Ok(vec![format!(
                    "kill race: {alive} of {} {}processes still alive to kill -0, {listed}, when `kill{}` returned",
                    self.everyone().len(),
                    if self.sandboxed.is_some() { "host (sandbox) " } else { "" },
                    if *all { " --all" } else { "" }
                )])
            }
            Step::RuntimeDelete { force } => {
                let argv = self.target.cli.delete(&self.id, *force);
                let started = Instant::now();
                self.verb("delete", argv)?;
                if let Some(r) = &self.registration {
                    r.deleted();
                }
                let alive = self
                    .everyone()
                    .iter()
                    .filter(|w| w.alive(GoneProbe::Kill0))
                    .count();
                Ok(vec![format!(
                    "`delete{}` took {:.1} ms; {alive} of {} {}processes still alive when it returned",
                    if *force { " --force" } else { "" },
                    started.elapsed().as_secs_f64() * 1000.0,
                    self.everyone().len(),
                    if self.sandboxed.is_some() { "host (sandbox) " } else { "" },
                )])
            }
            Step::ExpectGone { of, via, within } => {
                let all = of.is_empty();
                let targets: Vec<&Watched> = if all {
                    self.everyone()
                } else {
                    self.named(of)?
                };
                if *via == GoneProbe::Pidfd && targets.iter().any(|w| !w.has_pidfd()) {
                    return Err(Verdict::unsupported(
                        "pidfd_open failed on the host (needs pidfds, Linux 5.3)",
                    ));
                }
                if targets.is_empty() {
                    return Err(Verdict::broken(
                        "no process of the container could be watched",
                    ));
                }
                let asked = within.map_or(Duration::ZERO, |d| d.0);
                let within = self.clock.cap(asked);
                let cgroup = |run: &Run| if all { run.cgroup_members() } else { vec![] };
                let count = targets.len();
                let result = watch::until_gone(&targets, *via, within, &mut || cgroup(self));
                let whom = gone_from_the_host(
                    self.sandboxed.is_some(),
                    all,
                    !self.cgroup_procs.is_empty(),
                );
                match result {
                    Ok(took) => Ok(vec![format!(
                        "all {count}{whom} gone via {} after {:.3} ms",
                        match via {
                            GoneProbe::Pidfd => "pidfd",
                            GoneProbe::Kill0 => "kill -0",
                        },
                        took.as_secs_f64() * 1000.0
                    )]),
                    Err(alive) if within < asked => Err(Verdict::timeout(format!(
                        "the deadline came while waiting for every process to be gone; still alive: {}",
                        alive.join(", ")
                    ))),
                    Err(alive) => Err(Verdict::fail(format!(
                        "expected every process gone{}, observed still alive: {}",
                        if within.is_zero() {
                            " at once".to_string()
                        } else {
                            format!(" within {:?}", within)
                        },
                        alive.join(", ")
                    ))),
                }
            }
            Step::ExpectAlive { of } => {
                let targets = self.named(of)?;
                let dead = dead_among(of, &targets, |w| w.not_living_on());
                if dead.is_empty() {
                    Ok(vec![format!("all {} still alive", of.len())])
                } else {
                    Err(Verdict::fail(format!(
                        "expected {} still alive, observed gone: {}",
                        of.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                        dead.join(", ")
                    )))
                }
            }
            Step::ExpectContainerExit { status, within } => {
                let asked = within.map_or(Duration::from_secs(2), |d| d.0);
                let within = self.clock.cap(asked);
                let Some(init) = &self.init else {
                    return Err(Verdict::broken("the container's init is unknown"));
                };
                let (pid, started) = (init.pid, init.start_time);
                let me = std::process::id() as i32;
                let waiting = Instant::now();
                let parent = if self.init_status.is_none() {
                    watch::parent_once_adopted(pid, started, me, within)
                } else {
                    None
                };
                if self.init_status.is_none() && parent.is_some_and(|p| p != me) {
                    return Err(Verdict::fail(format!(
                        "the container's init (pid {pid}{}) has parent {}, not the harness ({me}): \
                         a subreaper should adopt it once the runtime's `run --detach` process exits",
                        if self.sandboxed.is_some() { ", the sandbox" } else { "" },
                        parent.unwrap_or(0)
                    )));
                }
                // One `within` for the adoption and the exit together.
                let Some(s) = self.try_reap_init(Some(within.saturating_sub(waiting.elapsed())))
                else {
                    if within < asked {
                        return Err(Verdict::timeout(
                            "the deadline came while waiting for the container's init to exit",
                        ));
                    }
                    return Err(Verdict::fail(format!(
                        "expected the container's init to exit within {within:?}; it is still running"
                    )));
                };
                let observed = self.describe_init_status(s);
                let matches = match (status, self.sandboxed.is_some()) {
                    (_, false) => s.matches(*status),
                    (ExpectedStatus::Exited(_), true) => s.matches(*status),
                    // The host sees the sandbox, which exits 128+N when the
                    // container's init is killed by signal N, as a shell reports it.
                    (ExpectedStatus::Signaled(sig), true) => {
                        s == WaitStatus::Exited(128 + sig.0 as i32)
                    }
                    (ExpectedStatus::Dumped(_), true) => {
                        return Err(Verdict::unsupported(
                            "the sandbox's exit code cannot say whether the container's init dumped core",
                        ))
                    }
                    (ExpectedStatus::Running, true) => false,
                };
                if matches {
                    Ok(vec![match &self.sandboxed {
                        None => format!("the harness reaped the container's init: {observed}"),
                        Some(_) => format!(
                            "the harness reaped the sandbox (host pid {pid}), which ends with the \
                             container's init and carries its status: {observed}"
                        ),
                    }])
                } else {
                    Err(Verdict::fail(format!(
                        "container's init: expected {status:?}, observed {observed}"
                    )))
                }
            }
            other => Err(Verdict::broken(format!(
                "{} is the agent's step, not the harness's",
                other.keyword()
            ))),
        }
    }

    /// A verb's timeout before any step ran, worded as every timeout is.
    fn before_the_steps(&self, mut v: Verdict) -> Verdict {
        if v.kind == Some(FailKind::Timeout) {
            v.reason = format!(
                "timeout after {} s (last step reached: before the first step): {}",
                self.clock.limit().as_secs_f64(),
                v.reason
            );
        }
        v
    }

    /// Tells the waiting agent to go on from step `at`.
    fn hand_back(&mut self, at: usize) {
        if let Some(stdin) = self.agent_stdin.as_mut() {
            // The agent may have died since; then the next event is EOF.
            let _ = stdin.write_all(format!("{at}\n").as_bytes());
        }
    }
}

impl Run<'_> {
    /// The status the harness reaped, in words. A sandbox's exit code
    /// stands for its init's status: 128+N for a death by signal N.
    fn describe_init_status(&self, s: WaitStatus) -> String {
        match (&self.sandboxed, s) {
            (Some(_), WaitStatus::Exited(code)) if code > 128 && code < 128 + 65 => format!(
                "{s} (the sandbox's code for its init killed by {})",
                signal_name(code - 128)
            ),
            (Some(_), _) => format!("{s} (the sandbox's status)"),
            (None, _) => s.to_string(),
        }
    }
}

/// What an `expect_gone` that passed proved, seen from the host, in a
/// sandbox (gVisor's), where the container's processes are not host
/// processes: the sandbox's host processes gone, and, when every process
/// was meant, the container's cgroup empty too, if one was found to check.
fn gone_from_the_host(sandboxed: bool, all: bool, cgroup_found: bool) -> &'static str {
    match (sandboxed, all, cgroup_found) {
        (false, ..) => "",
        (true, true, true) => {
            " (from the host: the sandbox and its host processes, the kernel the container ran in; its cgroup empty)"
        }
        (true, true, false) => {
            " (from the host: the sandbox and its host processes, the kernel the container ran in; no cgroup of it was found to check)"
        }
        (true, false, _) => {
            " (from the host: the sandbox's host processes, the kernel the container ran in)"
        }
    }
}

/// The names in `of` that are not alive, with why: the pinned ones for which
/// `not_alive` has a reason, and those never pinned (they were gone before
/// the harness could pin them).
fn dead_among(
    of: &[orphanage_scenario::ActorRef],
    pinned: &[&Watched],
    not_alive: impl Fn(&Watched) -> Option<&'static str>,
) -> Vec<String> {
    of.iter()
        .filter_map(|n| match pinned.iter().find(|w| w.name == n.as_str()) {
            Some(w) => not_alive(w).map(|why| format!("{n} (pid {}, {why})", w.pid)),
            None => Some(format!("{n} (gone before the harness could pin it)")),
        })
        .collect()
}

impl Run<'_> {
    /// Leaves nothing behind: the processes die first (a host-pid-namespace
    /// container's outlive its init, and are killed by pidfd, immune to pid
    /// reuse), then the ones that came to us are reaped (a zombie still counts
    /// as a member of its cgroup, which could not be removed), and then the
    /// runtime deletes the container. Says what could not be cleaned up.
    fn teardown(&mut self) -> Result<(), CleanupError> {
        if std::mem::replace(&mut self.torn_down, true) {
            return Ok(());
        }
        let budget = Countdown::start(CLEANUP_BUDGET);
        // A foreground `run` ends first as a bare one does: the agent exits
        // after its verdict, the container's init with it, and the runtime
        // deletes the container. Whatever is still running after that (or
        // after a timeout, when the agent never finished) is killed below.
        // One bound for both of its waits, so that `delete --force` still
        // has the rest of the budget if it must clean up after a hung `run`.
        let foreground_budget = Countdown::start(FOREGROUND_EXIT);
        let mut nudge = match self.foreground.as_mut() {
            Some(runtime) => sigchld_nudge(self.target, runtime, self.init.as_ref()),
            None => SigchldNudge::none(),
        };
        if self.agent_finished {
            if let Some(runtime) = self.foreground.as_mut() {
                foreground::exits_within(
                    runtime,
                    &mut nudge,
                    budget.cap(foreground_budget.remaining()),
                );
            }
        }
        if self.sandboxed.is_some() {
            // The sandbox's helpers and stubs born since the last look.
            self.pin_cgroup_members();
        }
        if self.host_pid_namespace || self.sandboxed.is_some() {
            for w in &self.watched {
                if let Some(fd) = w.pidfd() {
                    let _ = orphanage_agent_io::pidfd_send_signal(fd, libc::SIGKILL);
                }
            }
        }
        if let Some(reg) = &self.registration {
            reg.kill();
        }
        // With its init dead, a foreground `run` deletes the container and
        // exits; past its time it is killed, and deleted below instead.
        let mut deleted_by_run = false;
        if let Some(mut runtime) = self.foreground.take() {
            let exited = wait_bounded_ticking(
                &mut runtime,
                budget.cap(foreground_budget.remaining()),
                &mut || nudge.tick(),
            )
            .is_ok();
            if let Some(reg) = &self.registration {
                reg.created();
            }
            // Gone from its state: the runtime no longer knows the container,
            // so a `delete --force` could only say it does not exist. Its
            // cgroups are looked at below.
            deleted_by_run = exited
                && self.state_in_root
                && state_dir::entries_in(&self.target.cli.root, &self.id)
                    .is_ok_and(|left| left.is_empty());
        }
        self.sigchlds_sent += nudge.sent;
        self.try_reap_init(Some(budget.cap(Duration::from_secs(2))));
        if let Some(reg) = &self.registration {
            reg.reap_adopted();
        }
        let mut problem = Ok(());
        if deleted_by_run {
            // A runtime may log a cgroup it could not remove and forget the
            // container all the same: a leak, and still nothing left behind.
            let left: Vec<PathBuf> = self
                .cgroup_procs
                .iter()
                .filter_map(|procs| procs.parent())
                .filter(|dir| dir.exists())
                .map(Path::to_path_buf)
                .collect();
            if !left.is_empty() {
                problem = Err(remove_cgroups(left));
            }
        }
        // After an interrupt the interrupt thread deletes every container
        // (and then ends the process): a second delete would race it.
        if self.registration.is_some() && !live::interrupted() && !deleted_by_run {
            let delete = self.target.cli.delete(&self.id, true);
            let cli = self.target.cli.clone();
            match run(&cli, &delete, budget.remaining(), &mut || {
                self.reap_sandbox()
            }) {
                Ok(r) if r.ok => {}
                Ok(r) => {
                    problem = Err(CleanupError::DeleteFailed {
                        output: last_lines(&r.output, 2),
                        status: r.status,
                    })
                }
                Err(e) => problem = Err(CleanupError::Delete(e)),
            }
            if problem.is_ok() {
                // Gone from the runtime's state: its entries in the state
                // directory, or else `state`'s answer for an unknown
                // container. Eventually: whether delete is synchronous is a
                // check of its own (kill_race::delete_force_is_synchronous).
                let cli = self.target.cli.clone();
                let state = cli.state(&self.id);
                let in_root = self.state_in_root;
                let mut forgotten = || {
                    if in_root {
                        self.reap_sandbox();
                        // Unreadable is not gone: polled again until the budget ends.
                        return state_dir::entries_in(&cli.root, &self.id)
                            .is_ok_and(|left| left.is_empty());
                    }
                    run(&cli, &state, budget.remaining(), &mut || {
                        self.reap_sandbox()
                    })
                    .is_ok_and(|r| answers_unknown_state(r.ok, &r.output))
                };
                let started = Instant::now();
                let mut interval = Duration::from_millis(1);
                while !forgotten() {
                    if budget.expired() {
                        problem = Err(CleanupError::StillKnown(started.elapsed()));
                        break;
                    }
                    // A poll interval against the budget, not a synchronisation point.
                    std::thread::sleep(budget.cap(interval));
                    interval = (interval * 2).min(Duration::from_millis(100));
                }
            }
        }
        if let Some(reg) = self.registration.take() {
            // Deleted, or forgotten by its own `run`: either way no `delete`
            // is left to retry.
            if problem.is_ok() || deleted_by_run {
                reg.deleted();
            }
            // Dropping it retries the delete if it failed.
            drop(reg);
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
        problem
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        // A panic between creation and teardown still cleans up.
        let _ = self.teardown();
    }
}

/// Performs harness step `index`, reporting it like the agent reports its own.
fn run_harness_step(
    run: &mut Run,
    scenario: &Scenario,
    index: usize,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(), Verdict> {
    let step = &scenario.steps[index];
    on_event(&Event::StepStarted {
        index,
        summary: step.keyword().to_string(),
    });
    match run.harness_step(step) {
        Ok(notes) => {
            for text in notes {
                on_event(&Event::Note { text });
            }
            Ok(())
        }
        Err(mut v) => {
            v.reason = if v.kind == Some(FailKind::Timeout) {
                format!(
                    "timeout after {} s (last step reached: step {} {}): {}",
                    run.clock.limit().as_secs_f64(),
                    index + 1,
                    step.keyword(),
                    v.reason
                )
            } else {
                format!("step {} ({}): {}", index + 1, step.keyword(), v.reason)
            };
            Err(run.with_output(v))
        }
    }
}

/// Runs one scenario in a container of `target`. Every event goes to
/// `on_event`, and the last one is always `Finished`, sent only once the
/// container is gone: a cleanup that fails is part of the verdict.
pub fn run_in_runtime(
    target: &RuntimeTarget,
    agent: &Path,
    scenario: &Scenario,
    on_event: &mut dyn FnMut(&Event),
) {
    let spec = match bundle::spec_for(scenario.namespace, scenario.init_mode, target.init.as_ref())
    {
        Ok(s) => s,
        Err(why) => {
            return on_event(&Event::Finished {
                verdict: Verdict::unsupported(why.to_string()),
                steps_ms: 0.0,
            })
        }
    };
    let id = format!(
        "{}{}",
        container_id_prefix(),
        NEXT_ID.fetch_add(1, Ordering::SeqCst)
    );
    let mut run = Run {
        target,
        clock: Countdown::start(scenario.deadline()),
        bundle: target.work_dir.join(&id),
        id,
        host_pid_namespace: spec.host_pid_namespace,
        registration: None,
        init: None,
        init_status: None,
        watched: vec![],
        cgroup_procs: vec![],
        runtime_said: String::new(),
        agent_stdin: None,
        gone_unpinned: vec![],
        sandboxed: None,
        state_in_root: false,
        foreground: None,
        agent_finished: false,
        sigchlds_sent: 0,
        torn_down: false,
    };
    let (mut verdict, steps_ms) = match drive(&mut run, &spec, agent, scenario, on_event) {
        Ok(done) => done,
        Err(v) => (v, 0.0),
    };
    if let Err(problem) = run.teardown() {
        verdict = match verdict.outcome {
            // The container outlived its teardown: the runtime leaked it.
            Outcome::Pass => Verdict::leak(format!("cleanup: {problem}")),
            _ => Verdict {
                reason: format!("{}; cleanup: {problem}", verdict.reason),
                ..verdict
            },
        };
    }
    if let Some(text) = foreground::nudged_note(&target.label, run.sigchlds_sent) {
        on_event(&Event::Note { text });
    }
    on_event(&Event::Finished { verdict, steps_ms });
}

/// Waits for a foreground `run` to make the container: its pid file names
/// the init, whose agent (or init under test) waits for the scenario on its
/// stdin, so nothing has happened in the container yet. The `run` stays
/// registered as creating until teardown has seen it exit, so an interrupt
/// lets it end before the container is deleted again.
fn init_of_foreground_run(
    run: &mut Run,
    mut runtime: std::process::Child,
    pid_file: &Path,
) -> Result<(i32, u64), Verdict> {
    let label = run.target.label.clone();
    let waited = pid_file::wait_for_pid_file(&mut runtime, pid_file, run.clock.remaining());
    let registration = run.registration.as_ref().expect("registered");
    let give_up = |runtime: &mut std::process::Child| {
        // SAFETY: our unreaped child leads this group, so the id is not reused.
        unsafe { libc::kill(-(runtime.id() as i32), libc::SIGKILL) };
        let _ = runtime.kill();
        let _ = runtime.wait();
        registration.created();
    };
    match waited {
        Ok(PidFileWait::Written { pid, .. }) => {
            // Read while the `run` is surely unreaped, so its pid is its own.
            let started = watch::start_under(
                pid,
                runtime.id() as i32,
                watch::UNDER_A_FOREGROUND_RUN,
                live::parent_and_start,
            );
            run.foreground = Some(runtime);
            if live::interrupted() {
                // The interrupt thread deletes the container now.
                return Err(Verdict::broken("interrupted"));
            }
            match started {
                Some(started) => Ok((pid, started)),
                // Gone: as when `run` exits right after the pid file (below).
                // The `run` is on its way out too (runsc's, when its network
                // cannot be set up), and says why as it goes: its exit and its
                // words are waited for, briefly, so that the verdict has them
                // (and the environment error its hint).
                None if watch::stat(pid).is_none() => {
                    let within = run.clock.cap(Duration::from_secs(2));
                    let exited = run.foreground.as_mut().and_then(|r| {
                        foreground::exits_within(r, &mut SigchldNudge::none(), within)
                    });
                    let how = exited
                        .map(|s| format!(" (its foreground `{label} run` exited: {s})"))
                        .unwrap_or_default();
                    Err(run.with_output(Verdict::broken(format!(
                        "the agent ended without a verdict (before the first step): the \
                         container's init, pid {pid} in `{label} run`'s --pid-file, was gone \
                         before its scenario came{how}"
                    ))))
                }
                // Someone else's: nothing may be done to it.
                None => Err(run.with_output(Verdict::fail(format!(
                    "`{label} run` wrote {pid} to its --pid-file, and that is no process of \
                     that `run`'s: not the container's init"
                )))),
            }
        }
        Ok(PidFileWait::RuntimeExited(status)) => {
            registration.created();
            if live::interrupted() {
                return Err(Verdict::broken("interrupted"));
            }
            // Written in between the last look and the exit: the container
            // was made, and the runtime gave up on it at once.
            let wrote = std::fs::read_to_string(pid_file)
                .ok()
                .as_deref()
                .and_then(pid_in)
                .is_some();
            Err(run.with_output(match (wrote, status.success()) {
                // As after `run --detach`, an init gone before its scenario
                // came is the agent ending without a verdict.
                (true, _) => Verdict::broken(format!(
                    "the agent ended without a verdict (before the first step): `{label} run` \
                     exited ({status}) as soon as it had written its --pid-file"
                )),
                (false, true) => Verdict::fail(format!(
                    "`{label} run` exited ({status}) without writing the pid to its --pid-file"
                )),
                (false, false) => Verdict::fail(format!("`{label} run` failed ({status})")),
            }))
        }
        Ok(PidFileWait::TimedOut) => {
            give_up(&mut runtime);
            Err(
                run.with_output(run.before_the_steps(Verdict::timeout(format!(
                    "`{label} run` had written no pid to its --pid-file, and was killed"
                )))),
            )
        }
        Err(e) => {
            give_up(&mut runtime);
            Err(run.with_output(Verdict::broken(format!(
                "waiting for `{label} run` to write its --pid-file: {e}"
            ))))
        }
    }
}

/// Waits for `run --detach` to make and start the container and exit: the
/// init is then the harness's to adopt.
fn init_of_detached_run(
    run: &mut Run,
    creating: &mut std::process::Child,
    pid_file: &Path,
) -> Result<i32, Verdict> {
    let target = run.target;
    let id = run.id.clone();
    let created = wait_bounded(creating, run.clock.remaining());
    run.registration.as_ref().expect("registered").created();
    if live::interrupted() {
        // The interrupt thread deletes the container now: going on with it
        // meanwhile would only race that delete.
        return Err(Verdict::broken("interrupted"));
    }
    let created = created.map_err(|e| {
        run.with_output(run.before_the_steps(match e {
            CommandError::NoAnswer { .. } => Verdict::timeout(format!(
                "`{} run --detach` was still running, and was killed",
                target.label
            )),
            other => Verdict::broken(format!("`{} run --detach`: {other}", target.label)),
        }))
    })?;
    if !created.success() {
        return Err(run.with_output(Verdict::fail(format!(
            "`{} run --detach` failed ({created})",
            target.label
        ))));
    }
    match pid_in(&std::fs::read_to_string(pid_file).unwrap_or_default()) {
        Some(pid) => Ok(pid),
        // A runtime that took --pid-file but wrote nothing there: ask it.
        None => {
            let state = run
                .verb("state", target.cli.state(&id))
                .map_err(|v| run.with_output(run.before_the_steps(v)))?;
            state_pid(&state.output).ok_or_else(|| {
                run.with_output(Verdict::fail(format!(
                    "`run --pid-file` wrote no pid, and `state` gave none: {}",
                    state.output
                )))
            })
        }
    }
}

/// The cgroup.procs files of the container's cgroups, found from its init's.
fn cgroup_procs_of(init: i32) -> Vec<PathBuf> {
    cgroup::procs_files(
        &std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap_or_default(),
        &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        &std::fs::read_to_string("/proc/self/mounts").unwrap_or_default(),
    )
}

/// What this harness's container ids begin with: `orphanage-PID-`, then a
/// number counting up from 0 across every runtime of the run.
fn container_id_prefix() -> String {
    format!("orphanage-{}-", std::process::id())
}

/// What `pid` is of another of this harness's containers, if anything: a
/// pid file that names another scenario's process, which is under the
/// harness too after `run --detach`. Its `run` or its init, as the registry
/// knows them (`live::Registration::another_trees_process`), else a process
/// in its cgroups, where they say (`cgroup::another_container`).
fn of_another_container(run: &Run, pid: i32) -> Option<String> {
    run.registration
        .as_ref()
        .and_then(|r| r.another_trees_process(pid))
        .or_else(|| {
            let other = cgroup::another_container(
                &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default(),
                &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
                &run.id,
                &container_id_prefix(),
            )?;
            Some(format!("a process of {other}"))
        })
}

/// The verdict when `run --detach` named as its init (by --pid-file, or by
/// `state` without one) a process that is not under the harness, which
/// adopts every process `run --detach` leaves (an init that exits stays our
/// zombie, so even a gone one is still there), or one in another of its
/// containers (`neighbour`, as the caller saw it). The real init, if `state`
/// names one under the harness and in no other container, is watched as the scenario would have
/// watched it, so that teardown kills and reaps it and, for a sandbox, its
/// helpers: a zombie of ours holds up runsc's `delete`. Without one, a pid
/// with no process is the agent ending before its scenario; anyone else's
/// is a fail, and it is left alone.
fn not_the_detached_init(
    run: &mut Run,
    scenario: &Scenario,
    pid: i32,
    neighbour: Option<String>,
    program_in_rootfs: &Path,
) -> Verdict {
    let label = run.target.label.clone();
    let me = std::process::id() as i32;
    let state = run.target.cli.state(&run.id);
    let said = run
        .verb("state", state)
        .ok()
        .and_then(|s| state_pid(&s.output))
        .filter(|&p| p != pid);
    // `state` may lie as the pid file did: its pid is then named, not watched.
    let state_neighbour = said.and_then(|p| Some((p, of_another_container(run, p)?)));
    let real = said.filter(|_| state_neighbour.is_none()).and_then(|p| {
        Some((
            p,
            watch::start_under(p, me, watch::UNDER_THE_HARNESS, live::parent_and_start)?,
        ))
    });
    let whose = match &neighbour {
        Some(other) => format!("that is {other}, another container of this run's"),
        None => "that is no process under the harness, which adopts what `run --detach` leaves"
            .to_string(),
    };
    let Some((real, started)) = real else {
        if neighbour.is_none() && watch::stat(pid).is_none() {
            return run.with_output(Verdict::broken(format!(
                "the agent ended without a verdict (before the first step): the container's \
                 init, pid {pid} from `{label} run --detach`, was gone before its scenario came"
            )));
        }
        let state_too = match state_neighbour {
            Some((p, other)) => format!(" (`{label} state` says {p}, {other})"),
            None => String::new(),
        };
        return run.with_output(Verdict::fail(format!(
            "`{label} run --detach` gave {pid} as its container's init, and {whose}: not the \
             container's init{state_too}"
        )));
    };
    if let Err(interrupted) = run.watch_init(scenario, real, started) {
        return interrupted;
    }
    // The container has started, but runc's init may not have exec'd its
    // program yet, and would look like a sandbox: then its own cgroup's
    // members are pinned and killed with it, which teardown does anyway.
    if let HostView::NotHost(why) = host_view(real, program_in_rootfs) {
        run.sandboxed = Some(why);
        run.pin_cgroup_members();
    }
    run.with_output(Verdict::fail(format!(
        "`{label} run --detach` gave {pid} as its container's init, and {whose}: not the \
         container's init (`{label} state` says {real})"
    )))
}

/// Creates and starts the container and runs the scenario's steps; returns
/// the verdict and the time the steps took.
fn drive(
    run: &mut Run,
    spec: &bundle::BundleSpec,
    agent: &Path,
    scenario: &Scenario,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(Verdict, f64), Verdict> {
    let target = run.target;
    let id = run.id.clone();
    let bundle_dir = run.bundle.clone();
    let template: serde_json::Value =
        serde_json::from_str(bundle::TEMPLATE).expect("the template is JSON");
    let config = bundle::config(&template, spec);
    bundle::write(&bundle_dir, &config, spec, agent, target.init.as_ref()).map_err(|e| {
        Verdict::broken(format!(
            "cannot write the bundle {}: {e}",
            bundle_dir.display()
        ))
    })?;
    let (stdin_r, stdin_w) = pipe()?;
    let (events_r, events_w) = pipe()?;
    let log = std::fs::File::create(run.log_path())
        .map_err(|e| Verdict::broken(format!("cannot create the runtime log: {e}")))?;
    // Registered before `run`, so an interrupt from here on deletes the container.
    let Some(registration) = live::register(Tree {
        agent: 0,
        caller_namespace: spec.host_pid_namespace,
        spawned: vec![],
        container: Some(Container {
            delete: (target.cli.program.clone(), target.cli.delete(&id, true)),
        }),
    }) else {
        return Err(Verdict::broken("interrupted"));
    };
    run.registration = Some(registration);
    let pid_file = bundle_dir.join("init.pid");
    let foreground = runs_in_foreground(scenario, spec.host_pid_namespace);
    let argv = if foreground {
        target.cli.run_foreground(&id, &bundle_dir, &pid_file)
    } else {
        target.cli.run_detached(&id, &bundle_dir, &pid_file)
    };
    let mut command = Command::new(&target.cli.program);
    // The container's stdio is the `run` process's: every runtime passes it
    // through (runsc has no --preserve-fds), so the agent's events come on
    // the container's stdout, and its stderr and the runtime's go to the log.
    command
        .args(&argv)
        .stdin(Stdio::from(stdin_r))
        .stdout(Stdio::from(events_w))
        .stderr(Stdio::from(log));
    // SAFETY: between fork and exec only setsid, which is async-signal-safe.
    // Its own session keeps the terminal's Ctrl-C away from the container.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let registration = run.registration.as_ref().expect("registered above");
    let Some(spawned) = registration.spawn_creating(&mut command) else {
        return Err(Verdict::broken("interrupted"));
    };
    let mut creating = spawned.map_err(|e| {
        Verdict::broken(format!("cannot run {}: {e}", target.cli.program.display()))
    })?;
    drop(command); // our copies of the container's stdio

    // After `run --detach` the init is our child, or is once the runtime's
    // helper has exited (we are a subreaper and `run` has exited; crun's
    // helper may lag), and we reap it only later: its pid stays its own. A
    // foreground `run` is its parent (or a wrapper's runtime is), and may
    // reap it any time. Either way its start time is read only once it is
    // found under us or under that `run`: a pid file that names anyone else
    // must not make the harness signal them. The init runs, but the agent
    // waits for the scenario on its stdin: nothing has happened in the
    // container yet.
    let program_in_rootfs = bundle_dir.join("rootfs").join(
        if scenario.namespace == Namespace::UnderInit {
            bundle::INIT_IN_ROOTFS
        } else {
            bundle::AGENT_IN_ROOTFS
        }
        .trim_start_matches('/'),
    );
    let (init_pid, init_start) = if foreground {
        init_of_foreground_run(run, creating, &pid_file)?
    } else {
        let pid = init_of_detached_run(run, &mut creating, &pid_file)?;
        let me = std::process::id() as i32;
        // Under the harness is every scenario's container after `run
        // --detach`: this one's init is in no other's cgroup.
        let started = watch::start_under(pid, me, watch::UNDER_THE_HARNESS, live::parent_and_start);
        // Read once: the verdict says what was seen here, though the
        // neighbour may be gone by the time it is written.
        let neighbour = started.and_then(|_| of_another_container(run, pid));
        match (started, neighbour) {
            (Some(started), None) => (pid, started),
            (_, neighbour) => {
                return Err(not_the_detached_init(
                    run,
                    scenario,
                    pid,
                    neighbour,
                    &program_in_rootfs,
                ))
            }
        }
    };
    if let (Some(r), true) = (&run.registration, foreground && target.nudge_foreground_run) {
        r.nudge_on_interrupt((init_pid, init_start));
    }
    run.watch_init(scenario, init_pid, init_start)?;
    run.state_in_root =
        state_dir::entries_in(&target.cli.root, &id).is_ok_and(|entries| !entries.is_empty());
    // The agent is reading by now, so a scenario larger than the pipe
    // cannot block us.
    let mut stdin = std::fs::File::from(stdin_w);
    let mut json = serde_json::to_vec(scenario).expect("scenarios serialize");
    json.push(b'\n');
    let _ = stdin.write_all(&json);
    run.agent_stdin = Some(stdin);
    // Where the scenario's own steps begin, as the agent counts its
    // `steps_ms`: a scenario that ends on a step of the harness's is timed
    // from here, not from the start of its container.
    let steps_started = Instant::now();

    // The agent's events, read with the same bounds as on the host, with the
    // harness's steps woven in at each handoff.
    let mut ended: Option<Result<(Verdict, f64), Verdict>> = None;
    let mut after_harness_step: Option<usize> = None;
    let clock = run.clock;
    let reading = read_events_until(&events_r, None, &clock, &mut |event| {
        match event {
            Event::Started { .. } => {
                // The container's program runs by now: is it the process the
                // host knows as the container's init?
                if let HostView::NotHost(why) = host_view(init_pid, &program_in_rootfs) {
                    run.sandboxed = Some(why);
                    if let Some(init) = run.init.as_mut() {
                        init.name = format!("the sandbox (host pid {init_pid})");
                    }
                    run.pin_cgroup_members();
                }
                on_event(event);
            }
            Event::Spawned {
                name,
                pid,
                start_time,
            } => {
                if run.sandboxed.is_some() {
                    // No host pid to find; but a fork inside may have made
                    // a stub process on the host.
                    run.pin_cgroup_members();
                    on_event(event);
                    return Flow::Go;
                }
                let host_pid = if spec.host_pid_namespace {
                    Some(*pid)
                } else {
                    let members = run
                        .cgroup_procs
                        .iter()
                        .find_map(|f| std::fs::read_to_string(f).ok())
                        .map(|t| cgroup::parse_procs(&t));
                    watch::host_pid(*pid, init_pid, members.as_deref())
                };
                // Not found, or found with another start time: it has exited
                // and been reaped already, so it is gone.
                match host_pid.map(|hp| (hp, Watched::pin(name, hp, *start_time))) {
                    Some((hp, Ok(w))) => {
                        if let Some(r) = &run.registration {
                            r.add_spawned(hp, *start_time);
                        }
                        run.watched.push(w);
                    }
                    _ => run.gone_unpinned.push(name.clone()),
                }
                on_event(event);
            }
            Event::StepStarted { .. } => {
                after_harness_step = None;
                on_event(event);
            }
            Event::Handoff { index } => {
                // The pipe is the container's stdout, which an init under
                // test writes too: a handoff for a step that is not the
                // harness's is the agent's failure, not a reason to panic.
                if !scenario
                    .steps
                    .get(*index)
                    .is_some_and(|step| step.runs_in_harness())
                {
                    ended = Some(Err(run.with_output(Verdict::broken(format!(
                        "the agent handed off step {}, which is not the harness's",
                        index + 1
                    )))));
                    return Flow::Stop;
                }
                // This step and every harness step after it run here; the
                // agent may not survive them (a kill), so it is not asked.
                let mut at = *index;
                while at < scenario.steps.len() && scenario.steps[at].runs_in_harness() {
                    if let Err(v) = run_harness_step(run, scenario, at, on_event) {
                        ended = Some(Err(v));
                        return Flow::Stop;
                    }
                    at += 1;
                }
                if at == scenario.steps.len() {
                    ended = Some(Ok((
                        Verdict::pass(),
                        steps_started.elapsed().as_secs_f64() * 1000.0,
                    )));
                    return Flow::Stop;
                }
                if let Some(init) = &run.init {
                    if !init.alive(GoneProbe::Pidfd) {
                        let how = match run.try_reap_init(Some(clock.cap(Duration::from_secs(1)))) {
                            Some(s) => run.describe_init_status(s),
                            None => "is gone".into(),
                        };
                        ended = Some(Err(run.with_output(Verdict::fail(format!(
                            "step {} ({}) needs the agent: expected it still running after step {}, \
                             observed the container's init {how}",
                            at + 1,
                            scenario.steps[at].keyword(),
                            at
                        )))));
                        return Flow::Stop;
                    }
                }
                after_harness_step = Some(at - 1);
                run.hand_back(at);
            }
            Event::Finished { verdict, steps_ms } => {
                run.agent_finished = true;
                ended = Some(Ok((run.with_output(verdict.clone()), *steps_ms)));
                return Flow::Stop;
            }
            _ => on_event(event),
        }
        Flow::Go
    });
    if let Some(ended) = ended {
        return ended;
    }
    let last_step = reading
        .reached
        .clone()
        .unwrap_or_else(|| "before the first step".into());
    if reading.timed_out {
        return Err(run.with_output(Verdict::timeout(format!(
            "timeout after {} s (last step reached: {last_step})",
            clock.limit().as_secs_f64()
        ))));
    }
    if let Some(garbage) = reading.garbage {
        return Err(run.with_output(Verdict::broken(garbage)));
    }
    // End of file: the agent and its workers are gone without a verdict.
    let how = match run.try_reap_init(Some(clock.cap(Duration::from_secs(2)))) {
        Some(s) => run.describe_init_status(s),
        // A foreground `run` reaped it, and exits with what it saw (the
        // init's code, or 128+N for a death by signal N): its word, the
        // only one left, and said to be its.
        None => match run.foreground.as_mut().and_then(|r| {
            let mut nudge = sigchld_nudge(run.target, r, run.init.as_ref());
            let exited = foreground::exits_within(r, &mut nudge, clock.cap(Duration::from_secs(2)));
            run.sigchlds_sent += nudge.sent;
            exited
        }) {
            Some(status) => format!(
                "is gone (its foreground `{} run` exited: {status}{})",
                run.target.label,
                match status.code() {
                    Some(code) if code > 128 => format!(", 128+{}", signal_name(code - 128)),
                    _ => String::new(),
                }
            ),
            None => "is gone".to_string(),
        },
    };
    let verdict = match after_harness_step {
        Some(i) => Verdict::fail(format!(
            "the agent died after step {} ({}): expected it to go on, observed the container's init {how}",
            i + 1,
            scenario.steps[i].keyword()
        )),
        None => Verdict::broken(format!(
            "the agent ended without a verdict (last step reached: {last_step}): the container's init {how}"
        )),
    };
    Err(run.with_output(verdict))
}

/// What the host sees of the container's program.
#[derive(Debug, PartialEq, Eq)]
pub enum HostView {
    /// The container's init is a host process running the program.
    Host,
    /// It is not (why): the container's processes live elsewhere.
    NotHost(String),
    /// The init is gone already (its `exe` link cannot be read): no process
    /// of it is left to watch either way.
    Gone,
}

/// Whether the process the host knows as the container's init (`state`'s
/// pid) runs the container's program, the file in its rootfs: the same
/// inode on the same device. Not so under gVisor, where `state` names the
/// sandbox (runsc itself) and the container's processes live in the
/// sandbox's own kernel.
pub fn host_view(init_pid: i32, program_in_rootfs: &Path) -> HostView {
    let exe = format!("/proc/{init_pid}/exe");
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let (Ok(running), Ok(path)) = (std::fs::metadata(&exe).map(id), std::fs::read_link(&exe))
    else {
        return HostView::Gone;
    };
    match std::fs::metadata(program_in_rootfs).map(id) {
        Ok(program) if program == running => HostView::Host,
        _ => HostView::NotHost(format!(
            "the container's init as the host sees it (pid {init_pid}) runs {}, not the \
             container's {}: its processes are not host processes",
            path.display(),
            program_in_rootfs
                .file_name()
                .map_or("program".into(), |n| n.to_string_lossy().into_owned())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A sandbox's `expect_gone` claims an empty cgroup only when it read one.
    #[rstest]
    #[case(false, true, true, "")]
    #[case(true, true, true, "its cgroup empty)")]
    #[case(true, true, false, "no cgroup of it was found to check)")]
    #[case(
        true,
        false,
        true,
        "the sandbox's host processes, the kernel the container ran in)"
    )]
    fn a_sandboxs_gone_note_says_what_it_checked(
        #[case] sandboxed: bool,
        #[case] all: bool,
        #[case] cgroup_found: bool,
        #[case] ends: &str,
    ) {
        let note = gone_from_the_host(sandboxed, all, cgroup_found);
        assert!(note.ends_with(ends), "{note}");
        if !(all && cgroup_found) {
            assert!(!note.contains("cgroup empty"), "{note}");
        }
    }

    #[test]
    fn cgroups_left_behind_are_each_named_with_what_became_of_them() {
        let removed = vec![PathBuf::from("/sys/fs/cgroup/pids/c-1")];
        let kept = vec![(
            PathBuf::from("/sys/fs/cgroup/freezer/c-1"),
            std::io::Error::from_raw_os_error(libc::EBUSY),
        )];
        assert_eq!(
            cgroups_left(&removed, &[]),
            "the runtime's `run` exited and forgot the container, but left the cgroup \
             /sys/fs/cgroup/pids/c-1 behind (orphanage removed it)"
        );
        let both = cgroups_left(&removed, &kept);
        assert!(
            both.ends_with(
                "(orphanage removed it); the cgroup /sys/fs/cgroup/freezer/c-1 behind, \
                 which orphanage could not remove: Device or resource busy (os error 16)"
            ),
            "{both}"
        );
    }

    #[test]
    fn a_removable_cgroup_is_removed_and_a_busy_one_kept_with_its_errno() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, busy) = (dir.path().join("c-1"), dir.path().join("c-2"));
        std::fs::create_dir(&empty).unwrap();
        // Not a cgroup: a file in it stands in for what keeps one busy.
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("cgroup.procs"), "").unwrap();
        match remove_cgroups(vec![empty.clone(), busy.clone()]) {
            CleanupError::CgroupsLeft { removed, kept } => {
                assert_eq!(removed, vec![empty.clone()]);
                assert_eq!(kept.len(), 1);
                assert_eq!(kept[0].0, busy);
                assert_eq!(kept[0].1.raw_os_error(), Some(libc::ENOTEMPTY));
            }
            other => panic!("{other}"),
        }
        assert!(!empty.exists() && busy.exists());
    }

    #[rstest::rstest]
    #[case(
        "steps: [{spawn: {name: w}}, {kill: {target: w, signal: SIGKILL}}, {wait: {for: w}}]",
        false,
        true
    )]
    // The host's pid namespace: only the root's own children, so no orphan.
    #[case(
        "steps: [{spawn: {name: w}}, {spawn: {name: t, how: thread}}]",
        true,
        true
    )]
    // A grandchild, which its parent's exit would orphan to the nearest subreaper.
    #[case("steps: [{spawn: {name: w}}, {spawn: {name: g, by: w}}]", true, false)]
    #[case("steps: [{spawn: {name: w}}, {spawn: {name: g, by: w}}]", false, true)]
    // The root's sibling: the child of whatever made the container's process.
    #[case("steps: [{spawn: {name: s, how: clone_parent}}]", true, false)]
    #[case("steps: [{spawn: {name: w}}, {detach: {by: w}}]", true, false)]
    #[case("steps: [{spawn: {name: n, how: pid_namespace}}]", true, false)]
    // A step of the harness's: the container must outlive what it does.
    #[case(
        "steps: [{spawn: {name: w}}, {runtime_kill: {signal: SIGKILL}}]",
        false,
        false
    )]
    #[case(
        "steps: [{expect_container_exit: {status: {exited: 0}}}]",
        false,
        false
    )]
    #[case("steps: [{spawn: {name: w}}, {expect_gone: {of: [w]}}]", false, false)]
    fn only_a_scenario_needing_nothing_of_the_harness_runs_in_the_foreground(
        #[case] steps: &str,
        #[case] host_pid_namespace: bool,
        #[case] foreground: bool,
    ) {
        let scenario: Scenario =
            orphanage_scenario::parse("t.yaml", &format!("checks: c\nrefs: [r]\n{steps}\n"))
                .unwrap();
        assert_eq!(
            runs_in_foreground(&scenario, host_pid_namespace),
            foreground
        );
    }

    #[test]
    fn state_pid_reads_the_oci_state() {
        let state =
            r#"{"ociVersion":"1.0.2-dev","id":"c","pid":6141,"status":"created","bundle":"/b"}"#;
        assert_eq!(state_pid(state), Some(6141));
        assert_eq!(state_pid(r#"{"id":"c","pid":0,"status":"stopped"}"#), None);
        assert_eq!(state_pid("not json"), None);
        // A warning with a `}` and no object after it.
        assert_eq!(state_pid("level=warning msg=\"x}\" then {"), None);
    }

    #[test]
    fn a_process_runs_on_the_host_only_if_it_runs_that_very_file() {
        let me = std::process::id() as i32;
        let exe = std::env::current_exe().unwrap();
        assert_eq!(host_view(me, &exe), HostView::Host);
        let HostView::NotHost(why) = host_view(me, Path::new("/bin/sh")) else {
            panic!("/bin/sh is not this test");
        };
        assert!(
            why.contains("not host processes") && why.contains("sh"),
            "{why}"
        );
        assert!(matches!(
            host_view(me, Path::new("/no/such/file")),
            HostView::NotHost(_)
        ));
        // A pid no process has (pid_max is at most 2^22).
        assert_eq!(host_view(i32::MAX, &exe), HostView::Gone);
    }

    #[test]
    fn the_dead_are_the_pinned_not_alive_and_the_never_pinned() {
        let me = std::process::id() as i32;
        let start = watch::stat(me).unwrap().start_time;
        let (up, down) = (
            Watched::pin("up", me, start).unwrap(),
            Watched::pin("down", me, start).unwrap(),
        );
        let names: Vec<orphanage_scenario::ActorRef> = ["up", "down", "never"]
            .iter()
            .map(|n| serde_json::from_value(serde_json::json!(n)).unwrap())
            .collect();
        let dead = dead_among(&names, &[&up, &down], |w| {
            (w.name != "up").then_some("exited")
        });
        assert_eq!(
            dead,
            vec![
                format!("down (pid {me}, exited)"),
                "never (gone before the harness could pin it)".to_string()
            ]
        );
        assert!(dead_among(&names[..1], &[&up], |_| None).is_empty());
    }
}
