//! The agent's root process: in a fresh pid namespace, its init (without
//! one, a child subreaper standing in for it: see `subreaper_root`). It reads
//! the scenario, probes the features it needs, drives the steps one by one
//! through the workers, and reports events to the harness on fd 3.

use crate::protocol::{self, Pids, Reply, Request};
use crate::{poll, probe, procfs, signals, steps};
use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use orphanage_scenario::{
    Event, Feature, Namespace, ProcState, RootMode, Scenario, Step, Verdict, WaitStatus,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The fd on which the harness reads our events.
pub const EVENTS_FD: RawFd = 3;

/// How the root starts.
pub struct Start {
    /// Set when a `namespace: fresh` scenario runs without a pid namespace.
    pub subreaper_root: Option<SubreaperRoot>,
    /// Events on stdout instead of fd 3 (in a container, whose runtime may
    /// pass nothing but stdio).
    pub events_on_stdout: bool,
}

impl Start {
    /// The scenario's own namespace, as its file says.
    pub fn as_written() -> Start {
        Start {
            subreaper_root: None,
            events_on_stdout: false,
        }
    }

    /// As written, with the events on stdout.
    pub fn events_on_stdout() -> Start {
        Start {
            events_on_stdout: true,
            ..Start::as_written()
        }
    }
}

/// What the process that made a subreaper root prepared for it.
pub struct SubreaperRoot {
    /// Why there is no pid namespace: the refused call and its errno, or the flag that forced it.
    pub why: String,
    /// Whether /tmp is a private tmpfs in a mount namespace of the scenario's own.
    pub private_tmp: bool,
    /// Set when the root could not become a subreaper: then nothing stands in.
    pub refused: Option<crate::subreaper_root::SubreaperRefused>,
}

struct Actor {
    /// None for the root itself.
    sock: Option<OwnedFd>,
    /// Pids from the root's namespace down to the actor's own.
    nspid: Vec<i32>,
    nstid: Vec<i32>,
    /// The pid-namespace inits (by name) between the root's namespace and the actor's.
    ns_path: Vec<String>,
    /// For a thread, the process it belongs to; for a process, itself.
    process: String,
    is_thread: bool,
    pidfd: Option<OwnedFd>,
    alive: bool,
    /// Field 22 of /proc/PID/stat when it started, against pid reuse.
    start_time: u64,
}

struct Controller {
    scenario: Scenario,
    root: &'static str,
    actors: BTreeMap<String, Actor>,
    events: std::fs::File,
    /// Where the harness hands steps back (runtime target).
    stdin: std::io::BufReader<std::io::Stdin>,
    started: Instant,
    subreaper_root: Option<SubreaperRoot>,
    /// When each process's `exit` step saw its exit complete: what the time
    /// an "eventually gone" check reports is counted from (CHECKS 2.5).
    exit_completed: BTreeMap<String, Instant>,
}

/// Why the root has no scenario to run (its verdict is broken): the first
/// line of stdin could not be read, or is not a scenario.
#[derive(Debug, thiserror::Error)]
enum ScenarioUnreadable {
    #[error("{0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Decode(serde_json::Error),
}

/// `start.events_on_stdout`: the events go to stdout (the runtime target),
/// which becomes fd 3 here; fd 1 then becomes a copy of stderr, so that
/// nothing else the agent or its workers print can land among the events.
pub fn main(start: Start) -> ! {
    signals::reset_all();
    if start.events_on_stdout {
        // SAFETY: dup2 on the std fds, before anything else uses them.
        if unsafe { libc::dup2(1, EVENTS_FD) } < 0 || unsafe { libc::dup2(2, 1) } < 0 {
            eprintln!("orphanage-agent: cannot move the events to stdout's pipe");
            std::process::exit(2);
        }
    }
    // SAFETY: fd 3 is ours by convention with the harness; workers must not inherit it.
    unsafe { libc::fcntl(EVENTS_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: as above; the File owns fd 3 from here.
    let events = unsafe { std::fs::File::from_raw_fd(EVENTS_FD) };
    // The scenario is the first line of stdin. On the runtime target stdin
    // stays open: the harness writes a line each time it hands a step back.
    let mut input = String::new();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let scenario: Result<Scenario, ScenarioUnreadable> =
        std::io::BufRead::read_line(&mut stdin, &mut input)
            .map_err(ScenarioUnreadable::Read)
            .and_then(|_| serde_json::from_str(&input).map_err(ScenarioUnreadable::Decode));
    let mut controller = Controller {
        root: "init",
        scenario: placeholder(),
        actors: BTreeMap::new(),
        events,
        stdin,
        started: Instant::now(),
        subreaper_root: start.subreaper_root,
        exit_completed: BTreeMap::new(),
    };
    let mode = match (&controller.subreaper_root, &scenario) {
        (Some(_), _) => RootMode::SubreaperRoot,
        (None, Ok(s)) => s.root_mode(),
        (None, Err(_)) if nix::unistd::getpid().as_raw() == 1 => RootMode::PidNamespace,
        (None, Err(_)) => RootMode::CallerNamespace,
    };
    controller.emit(&Event::Started {
        pid: nix::unistd::getpid().as_raw(),
        mode,
    });
    let scenario = match scenario {
        Ok(s) => s,
        Err(e) => controller.finish(
            Verdict::broken(format!("agent could not read its scenario: {e}")),
            0.0,
        ),
    };
    controller.root = scenario.root_name();
    controller.scenario = scenario;
    let verdict = controller.run();
    let steps_ms = controller.started.elapsed().as_secs_f64() * 1000.0;
    controller.finish(verdict, steps_ms)
}

/// What an eventual `expect_state` reports: how long the check took against
/// its deadline and, for a process whose exit a step completed, how long
/// after that exit it was first seen in `state` (CHECKS 2.5's "time taken":
/// counted from the exit, not from the check, which may come after other
/// steps). Seen so at the check's first look, that time is only an upper bound.
fn eventual_state_note(
    name: &str,
    state: &str,
    took: Duration,
    deadline: Duration,
    since_exit: Option<Duration>,
    first_look: bool,
) -> String {
    let check = format!(
        "{name} {state} after {} (deadline {})",
        poll::micros(took),
        poll::micros(deadline)
    );
    match (since_exit, first_look) {
        (None, _) => check,
        (Some(t), true) => format!(
            "{check}; at most {} after its exit completed (already {state} at the first look)",
            poll::micros(t)
        ),
        (Some(t), false) => format!("{check}; {} after its exit completed", poll::micros(t)),
    }
}

/// Whether `step` names the init program under test (`namespace: under_init`).
fn names_init(step: &Step) -> bool {
    step.actor_refs().iter().any(|(_, a)| a.as_str() == "init")
}

/// Under an init program, why the agent's parent `ppid` cannot be the init
/// under test, if it cannot. An "init" that only execs its child (as
/// `/usr/bin/env` would) leaves the agent as PID 1 of the container's pid
/// namespace, whose parent is outside it: getppid() is 0. Then nothing
/// reaps, forwards or adopts but the agent itself, and a step about the
/// init must fail rather than mistake the runtime (sender pid 0) for it.
fn init_under_test_missing(ppid: i32) -> Option<String> {
    (ppid == 0).then(|| {
        "expected the init program under test to be the agent's parent, observed none: \
         getppid() is 0, so the agent is PID 1 of its pid namespace itself (an init that \
         execs its child instead of running it as a child)"
            .to_string()
    })
}

/// Whether any mount in /proc/self/mountinfo text is in a peer group
/// (`shared:N`) or receives from one (`master:N`): its optional fields,
/// between the mount options and the ` - ` separator.
fn propagates(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let before_separator = line.split(" - ").next().unwrap_or("");
        before_separator
            .split_whitespace()
            .skip(6)
            .any(|field| field.starts_with("shared:") || field.starts_with("master:"))
    })
}

fn placeholder() -> Scenario {
    Scenario {
        checks: String::new(),
        requires: vec![],
        refs: vec![],
        deadline: None,
        namespace: Namespace::Caller,
        init_mode: None,
        steps: vec![],
    }
}

impl Controller {
    fn emit(&mut self, event: &Event) {
        let mut line = serde_json::to_vec(event).expect("events serialize");
        line.push(b'\n');
        // The harness gone means nobody is listening; the namespace dies with us anyway.
        let _ = self.events.write_all(&line);
    }

    fn finish(&mut self, verdict: Verdict, steps_ms: f64) -> ! {
        self.emit(&Event::Finished { verdict, steps_ms });
        self.teardown();
        std::process::exit(0)
    }

    fn run(&mut self) -> Verdict {
        let in_private_tmp = match self.setup() {
            Ok(private) => private,
            Err(v) => return v,
        };
        if let Some(v) = self.stand_in_refused() {
            return v;
        }
        for feature in self.scenario.required_features() {
            if let Err(why) = probe::probe(feature, in_private_tmp) {
                return Verdict::unsupported(format!("{why} (needs {})", feature.needs()));
            }
        }
        let root_nspid = vec![nix::unistd::getpid().as_raw()];
        self.actors.insert(
            self.root.to_string(),
            Actor {
                sock: None,
                nspid: root_nspid.clone(),
                nstid: root_nspid,
                ns_path: vec![],
                process: self.root.to_string(),
                is_thread: false,
                pidfd: None,
                alive: true,
                start_time: 0,
            },
        );
        if self.scenario.namespace == Namespace::UnderInit {
            // The init program under test is our parent: observed, never driven.
            let init = nix::unistd::getppid().as_raw();
            self.actors.insert(
                "init".to_string(),
                Actor {
                    sock: None,
                    nspid: vec![init],
                    nstid: vec![init],
                    ns_path: vec![],
                    process: "init".to_string(),
                    is_thread: false,
                    pidfd: None,
                    alive: true,
                    start_time: procfs::stat(init).map(|s| s.start_time).unwrap_or(0),
                },
            );
        }
        self.started = Instant::now();
        let steps = self.scenario.steps.clone();
        let mut next = 0;
        while next < steps.len() {
            let (index, step) = (next, &steps[next]);
            next += 1;
            if let Step::Exit { by, code } = step {
                if by.as_str() == self.root {
                    // The root's exit, its last step before the harness's own
                    // (as parsing ensures): its status is the container's,
                    // which the harness reaps (expect_container_exit).
                    self.emit(&Event::StepStarted {
                        index,
                        summary: summary(step),
                    });
                    self.teardown();
                    self.emit(&Event::Handoff { index: index + 1 });
                    std::process::exit(i32::from(*code));
                }
            }
            if step.runs_in_harness() {
                // The harness performs this step and any that follow it; it
                // answers with the index of the step we go on from.
                self.emit(&Event::Handoff { index });
                let mut line = String::new();
                let resume = std::io::BufRead::read_line(&mut self.stdin, &mut line)
                    .ok()
                    .and_then(|_| line.trim().parse::<usize>().ok());
                match resume {
                    Some(at) if at > index => {
                        next = at;
                        continue;
                    }
                    _ => {
                        return Verdict::broken(format!(
                            "step {}: the harness never handed back",
                            index + 1
                        ))
                    }
                }
            }
            self.emit(&Event::StepStarted {
                index,
                summary: summary(step),
            });
            match self.step(step) {
                Ok(notes) => {
                    for text in notes {
                        self.emit(&Event::Note { text });
                    }
                }
                Err(mut verdict) => {
                    verdict.reason = format!(
                        "step {} ({}): {}",
                        index + 1,
                        step.keyword(),
                        verdict.reason
                    );
                    return verdict;
                }
            }
        }
        Verdict::pass()
    }

    /// Under a subreaper root: why the scenario cannot run there, if it cannot.
    fn stand_in_refused(&self) -> Option<Verdict> {
        let root = self.subreaper_root.as_ref()?;
        if let Some(refused) = &root.refused {
            return Some(Verdict::unsupported(format!(
                "{}, and {refused} for a subreaper root to stand in for the namespace's init (needs {}, or {})",
                root.why,
                Feature::PidNamespace.needs(),
                Feature::ChildSubreaper.needs()
            )));
        }
        if self.scenario.needs_pid_namespace_root() {
            return Some(Verdict::unsupported(format!(
                "{}, and the scenario declares `requires: [pid_namespace]`: it needs a pid namespace of its own, which a subreaper root does not give it (needs {})",
                root.why,
                Feature::PidNamespace.needs()
            )));
        }
        // The sysctl belongs to the pid namespace, which is the caller's here.
        if self
            .scenario
            .required_features()
            .contains(&Feature::MemfdNoexecSysctl)
        {
            return Some(Verdict::unsupported(format!(
                "{}: vm.memfd_noexec would be written in the caller's pid namespace (needs {})",
                root.why,
                Feature::PidNamespace.needs()
            )));
        }
        None
    }

    /// In a fresh namespace: a private /proc for this pid namespace and a
    /// private /tmp (core files land there and vanish with the namespace).
    /// Mount namespaces die with their last process, so nothing is left behind.
    fn setup(&mut self) -> Result<bool, Verdict> {
        let _ = raise_nofile_limit();
        signals::reset_record();
        if let Some(root) = &self.subreaper_root {
            if self.scenario.namespace != Namespace::Fresh {
                return Err(Verdict::broken(
                    "a subreaper root stands in only for a fresh namespace's init",
                ));
            }
            return Ok(root.private_tmp);
        }
        if self.scenario.namespace != Namespace::Fresh {
            return Ok(false);
        }
        if nix::unistd::getpid().as_raw() != 1 {
            return Err(Verdict::broken(
                "the agent was to be the init of a fresh pid namespace but is not pid 1",
            ));
        }
        use nix::mount::{mount, MsFlags};
        let none: Option<&str> = None;
        // Without this, our mounts would propagate to the host's mount table.
        if let Err(e) = mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none) {
            // A kernel without shared subtrees (gVisor's Sentry before 2023
            // refuses MS_PRIVATE with EINVAL) has nothing that propagates:
            // then there is nothing to make private, and the mounts below
            // stay here. Otherwise the agent cannot keep the host clean.
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if e != Errno::EINVAL || mountinfo.is_empty() || propagates(&mountinfo) {
                return Err(Verdict::broken(format!("mount --make-rprivate /: {e}")));
            }
            self.emit(&Event::Note {
                text: "mount(\"/\", MS_REC|MS_PRIVATE): EINVAL; no mount here is shared or a \
                       slave (/proc/self/mountinfo), so none of the agent's mounts can propagate"
                    .into(),
            });
        }
        if let Err(e) = mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            none,
        ) {
            return Err(Verdict::unsupported(format!(
                "mount(proc) in a new pid namespace: {e}"
            )));
        }
        let private_tmp = mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=64m"),
        )
        .is_ok()
            && std::env::set_current_dir("/tmp").is_ok();
        Ok(private_tmp)
    }

    fn teardown(&mut self) {
        if self.scenario.namespace == Namespace::Fresh && self.subreaper_root.is_none() {
            return; // our exit as init kills and reaps the whole namespace
        }
        // In the caller's namespace nothing does that for us: kill what we made.
        // (Under a subreaper root, what escapes this goes to the process
        // above us, which kills it: see `subreaper_root`.)
        for actor in self
            .actors
            .values()
            .filter(|a| a.alive && !a.is_thread && a.sock.is_some())
        {
            match &actor.pidfd {
                // Through the pidfd: immune to pid reuse.
                Some(fd) => {
                    let _ = orphanage_agent_io::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                }
                // SAFETY: plain kill; without pidfds, the start time guards against reuse below.
                None => unsafe {
                    libc::kill(actor.nspid[0], libc::SIGKILL);
                },
            }
        }
        // Reap our own children (the others belong to their reapers).
        // SAFETY: waitpid on our children until none is left.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL) } > 0 {}
    }

    fn step(&mut self, step: &Step) -> Result<Vec<String>, Verdict> {
        let performer = step
            .performer()
            .map_or(self.root.to_string(), |a| a.to_string());
        self.require_alive(&performer, step)?;
        if let Some(init) = self.actors.get("init").filter(|_| names_init(step)) {
            if self.scenario.namespace == Namespace::UnderInit {
                if let Some(why) = init_under_test_missing(init.nspid[0]) {
                    return Err(Verdict::fail(why));
                }
            }
        }
        match step {
            Step::Spawn {
                name, how, errno, ..
            } => self.spawn(&performer, name.as_str(), *how, errno.is_some(), step),
            Step::Exit { .. } => self.exit(&performer, step),
            Step::Exec { errno, .. } => self.exec(&performer, step, errno.is_some()),
            Step::ExpectParent { is, within, .. } => {
                self.expect_parent(&performer, is.as_str(), within.map(|d| d.0))
            }
            Step::ExpectState { is, within, .. } => {
                self.expect_state(&performer, *is, within.map(|d| d.0))
            }
            Step::Observe { of } => {
                for name in of {
                    let event = self.observe(name.as_str());
                    self.emit(&event);
                }
                Ok(vec![])
            }
            _ => self.perform(&performer, step, None),
        }
    }

    fn require_alive(&self, name: &str, step: &Step) -> Result<(), Verdict> {
        let observing = matches!(step, Step::ExpectState { .. } | Step::ExpectParent { .. });
        match self.actors.get(name) {
            Some(a) if a.alive || observing => Ok(()),
            Some(_) => Err(Verdict::broken(format!(
                "`{name}` has exited and cannot {}",
                step.keyword()
            ))),
            None => Err(Verdict::broken(format!("`{name}` was never created"))),
        }
    }

    /// Pids of every actor as `viewer` sees them: the one at the viewer's
    /// namespace level, if the actor lives in the viewer's namespace or below.
    fn pids_for(&self, viewer: &str) -> Pids {
        let v = &self.actors[viewer];
        let level = v.ns_path.len();
        self.actors
            .iter()
            .map(|(name, a)| {
                let visible = a.ns_path.starts_with(&v.ns_path);
                (
                    name.clone(),
                    if visible {
                        a.nspid.get(level).copied().unwrap_or(0)
                    } else {
                        0
                    },
                )
            })
            .collect()
    }

    /// Sends `step` to `performer` (or runs it here for the root) and collects its reply.
    fn perform(
        &mut self,
        performer: &str,
        step: &Step,
        fd: Option<OwnedFd>,
    ) -> Result<Vec<String>, Verdict> {
        let pids = self.pids_for(performer);
        let Some(sock) = self.actors[performer].sock.as_ref().map(|s| s.as_raw_fd()) else {
            return steps::perform(performer, step, &pids, fd);
        };
        let request = Request::Perform {
            step: step.clone(),
            pids,
        };
        protocol::send(sock, &request, fd.as_ref().map(|f| f.as_raw_fd()))
            .map_err(|e| self.died(performer, step, &format!("send: {e}")))?;
        drop(fd);
        match protocol::recv::<Reply>(sock) {
            Ok(Some((Reply::Done { notes }, _))) => Ok(notes),
            Ok(Some((Reply::Verdict(v), _))) => Err(v),
            Ok(Some((other, _))) => Err(Verdict::broken(format!("{performer} answered {other:?}"))),
            Ok(None) => Err(self.died(performer, step, "its socket closed")),
            Err(e) => Err(Verdict::broken(format!("{performer}: {e}"))),
        }
    }

    /// A worker vanished mid-step: say how it died, as far as /proc can tell.
    fn died(&mut self, name: &str, step: &Step, detail: &str) -> Verdict {
        let pid = self.actors[name].nspid[0];
        // The socket closes (exit_files) before the task is a zombie: wait for the exit to finish.
        match &self.actors[name].pidfd {
            Some(fd) => {
                steps::poll_readable(fd.as_raw_fd(), 1000);
            }
            None => {
                let _ = poll::until(Duration::from_secs(1), || {
                    exited(pid, pid, false).then_some(())
                });
            }
        }
        let how = match procfs::stat(pid) {
            Ok(s) if s.state == 'Z' => s
                .exit_code
                .map_or("exited".into(), |raw| WaitStatus::from_raw(raw).to_string()),
            Ok(_) => format!("still running, but {detail}"),
            Err(_) => "gone".into(),
        };
        self.mark_dead(name);
        Verdict::fail(format!(
            "{name} died while performing {}: {how}",
            step.keyword()
        ))
    }

    fn mark_dead(&mut self, name: &str) {
        let process = self.actors[name].process.clone();
        let whole_process = !self.actors[name].is_thread;
        for (n, a) in self.actors.iter_mut() {
            if n == name || (whole_process && a.process == process) {
                a.alive = false;
            }
        }
    }

    fn spawn(
        &mut self,
        performer: &str,
        name: &str,
        how: orphanage_scenario::SpawnHow,
        expect_failure: bool,
        step: &Step,
    ) -> Result<Vec<String>, Verdict> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Verdict::broken(format!("socketpair: {e}")))?;
        let notes = self.perform(performer, step, Some(theirs))?;
        if expect_failure {
            return Ok(notes); // the spawn failed with the expected errno
        }
        let hello = protocol::recv::<Reply>(ours.as_raw_fd());
        let Ok(Some((Reply::Hello { nspid, nstid, .. }, _))) = hello else {
            return Err(Verdict::fail(format!(
                "{name} never started ({})",
                match hello {
                    Ok(None) => "it exited first".to_string(),
                    Ok(Some((other, _))) => format!("it said {other:?}"),
                    Err(e) => e,
                }
            )));
        };
        let parent = &self.actors[performer];
        let is_thread = how == orphanage_scenario::SpawnHow::Thread;
        let mut ns_path = parent.ns_path.clone();
        if how == orphanage_scenario::SpawnHow::PidNamespace {
            ns_path.push(name.to_string());
        }
        let process = if is_thread {
            parent.process.clone()
        } else {
            name.to_string()
        };
        // A live process that nobody can reap before it exits.
        let pidfd = (!is_thread)
            .then(|| orphanage_agent_io::pidfd_open(nspid[0]).ok())
            .flatten();
        let start_time = procfs::stat(nspid[0]).map(|s| s.start_time).unwrap_or(0);
        self.emit(&Event::Spawned {
            name: name.to_string(),
            pid: nspid[0],
            start_time,
        });
        self.actors.insert(
            name.to_string(),
            Actor {
                sock: Some(ours),
                nspid,
                nstid,
                ns_path,
                process,
                is_thread,
                pidfd,
                alive: true,
                start_time,
            },
        );
        Ok(notes)
    }

    fn exit(&mut self, name: &str, step: &Step) -> Result<Vec<String>, Verdict> {
        self.send_step(name, step)?;
        let a = &self.actors[name];
        // The exit is complete (children reparented) once the task is a zombie
        // or gone: a pidfd turns readable exactly then.
        let (pid, tid, is_thread) = (a.nspid[0], a.nstid[0], a.is_thread);
        let deadline = self.scenario.deadline();
        let done = match (&a.pidfd, is_thread) {
            (Some(fd), false) => steps::poll_readable(fd.as_raw_fd(), deadline.as_millis() as i32),
            _ => poll::until(deadline, || exited(pid, tid, is_thread).then_some(())).is_ok(),
        };
        if !done {
            return Err(Verdict::fail(format!(
                "{name} did not finish exiting within {}",
                poll::micros(deadline)
            )));
        }
        self.exit_completed.insert(name.to_string(), Instant::now());
        if !is_thread {
            parent_notified_barrier();
        }
        self.mark_dead(name);
        Ok(vec![])
    }

    fn exec(
        &mut self,
        name: &str,
        step: &Step,
        expect_failure: bool,
    ) -> Result<Vec<String>, Verdict> {
        let sock = self.send_step(name, step)?;
        match protocol::recv::<Reply>(sock) {
            Ok(Some((Reply::Hello { .. }, _))) if !expect_failure => {
                // exec(2) ends every other thread of the process.
                let process = self.actors[name].process.clone();
                for (n, a) in self.actors.iter_mut() {
                    if a.process == process && n != name {
                        a.alive = false;
                    }
                }
                Ok(vec![])
            }
            Ok(Some((Reply::Hello { .. }, _))) => Err(Verdict::fail(format!(
                "{name}: exec: expected failure, observed success"
            ))),
            Ok(Some((Reply::Done { notes }, _))) => Ok(notes),
            Ok(Some((Reply::Verdict(v), _))) => Err(v),
            Ok(Some((other, _))) => Err(Verdict::broken(format!("{name} answered {other:?}"))),
            Ok(None) => Err(self.died(name, step, "its socket closed")),
            Err(e) => Err(Verdict::broken(e)),
        }
    }

    /// Sends `step` to a worker without waiting for a reply (exit and exec answer differently).
    fn send_step(&mut self, name: &str, step: &Step) -> Result<RawFd, Verdict> {
        let Some(sock) = self.actors[name].sock.as_ref().map(|s| s.as_raw_fd()) else {
            return Err(Verdict::broken(format!(
                "`{name}` is the agent's root and cannot {}",
                step.keyword()
            )));
        };
        let request = Request::Perform {
            step: step.clone(),
            pids: Pids::new(),
        };
        protocol::send(sock, &request, None)
            .map_err(|e| self.died(name, step, &format!("send: {e}")))?;
        Ok(sock)
    }

    fn getppid_of(&mut self, name: &str) -> Result<i32, Verdict> {
        let Some(sock) = self.actors[name].sock.as_ref().map(|s| s.as_raw_fd()) else {
            return Ok(nix::unistd::getppid().as_raw());
        };
        protocol::send(sock, &Request::Getppid, None)
            .map_err(|e| Verdict::broken(format!("send to {name}: {e}")))?;
        match protocol::recv::<Reply>(sock) {
            Ok(Some((Reply::Ppid(p), _))) => Ok(p),
            other => Err(Verdict::broken(format!(
                "{name}: no answer to getppid ({other:?})"
            ))),
        }
    }

    /// A reparent is proven two ways at once: getppid() inside the process and
    /// PPid in /proc/PID/status from outside.
    fn expect_parent(
        &mut self,
        name: &str,
        expected: &str,
        within: Option<Duration>,
    ) -> Result<Vec<String>, Verdict> {
        let own_view = self.pids_for(name);
        let root_view = self.pids_for(self.root);
        let want_own = own_view.get(expected).copied().unwrap_or(0);
        let want_root = root_view[expected];
        let status_path = format!("/proc/{}/status", self.actors[name].nspid[0]);
        let mut last = (None, 0);
        // A zombie cannot answer; its parent is still in /proc.
        let can_answer = self.actors[name].alive;
        let mut observe = |c: &mut Self| -> Result<bool, Verdict> {
            let by_getppid = if can_answer {
                Some(c.getppid_of(name)?)
            } else {
                None
            };
            let by_proc = match procfs::status_field(&status_path, "PPid") {
                Ok(v) if !v.is_empty() => v[0],
                Ok(_) | Err(Errno::ENODATA) => {
                    return Err(Verdict::unsupported(format!(
                        "{status_path} has no PPid line"
                    )))
                }
                Err(e) => {
                    return Err(Verdict::unsupported(format!(
                        "reading {status_path}: {}",
                        orphanage_scenario::ErrnoName(e)
                    )))
                }
            };
            last = (by_getppid, by_proc);
            Ok(by_getppid.is_none_or(|p| p == want_own) && by_proc == want_root)
        };
        let (held, took) = poll::holds_within(within.unwrap_or(Duration::ZERO), || observe(self))?;
        if held {
            return Ok(within.map_or_else(Vec::new, |w| {
                vec![format!(
                    "{name}'s parent became {expected} after {} (deadline {})",
                    poll::micros(took),
                    poll::micros(w)
                )]
            }));
        }
        let (by_getppid, by_proc) = last;
        let root_pid = |p: i32| steps::describe_pid(&root_view, p);
        let own_pid = |p: i32| steps::describe_pid(&own_view, p);
        let expected_text = format!("{expected} (pid {want_root})");
        let Some(by_getppid) = by_getppid else {
            // Nothing made up for the getppid() a zombie cannot run.
            return Err(Verdict::fail(format!(
                "{name}'s parent (a zombie, so by {status_path} PPid alone): expected {expected_text}, observed {}",
                root_pid(by_proc)
            )));
        };
        Err(Verdict::fail(
            if by_proc != want_root && (by_getppid == want_own) == (by_proc == want_root) {
                format!(
                    "{name}'s parent: expected {expected_text}, observed {}",
                    root_pid(by_proc)
                )
            } else if by_proc != want_root {
                format!("{name}'s parent: getppid() says {} but {status_path} PPid says {}; expected {expected_text}", own_pid(by_getppid), root_pid(by_proc))
            } else {
                format!("{name}'s parent: {status_path} PPid says {expected_text} but getppid() says {}", own_pid(by_getppid))
            },
        ))
    }

    /// What `name` looks like now, for an `observed` event. Never fails:
    /// whatever cannot be read is reported as unknown.
    fn observe(&mut self, name: &str) -> Event {
        let a = &self.actors[name];
        let (pid, tid, is_thread, started) = (a.nspid[0], a.nstid[0], a.is_thread, a.start_time);
        if name == self.root {
            return Event::Observed {
                name: name.to_string(),
                pid,
                state: ProcState::Alive,
                parent: None,
                getppid: None,
                sigchld: Some(signals::sigchld_count()),
            };
        }
        let path = if is_thread {
            format!("/proc/{pid}/task/{tid}/stat")
        } else {
            format!("/proc/{pid}/stat")
        };
        // State X (EXIT_DEAD) is a task being released right after it was
        // reaped: wait the moment out rather than call it a zombie.
        let stat = poll::until(Duration::from_secs(1), || match procfs::stat_at(&path) {
            Ok(s) if s.state == 'X' => None,
            other => Some(other),
        });
        let state = match stat {
            Ok((Ok(s), _)) if is_thread || s.start_time == started => match s.state {
                'Z' | 'X' => ProcState::Zombie,
                _ => ProcState::Alive,
            },
            Ok((Ok(_), _)) => ProcState::Gone, // the pid now belongs to another process
            Ok((Err(_), _)) => ProcState::Gone,
            Err(_) => ProcState::Zombie, // still X after a second
        };
        let parent = (state != ProcState::Gone)
            .then(|| procfs::status_field(&format!("/proc/{pid}/status"), "PPid").ok())
            .flatten()
            .and_then(|v| v.first().copied())
            .and_then(|ppid| self.process_named(ppid, 0, &[]));
        let (mut getppid, mut sigchld) = (None, None);
        if state == ProcState::Alive && self.actors[name].alive {
            if let Some(sock) = self.actors[name].sock.as_ref().map(|s| s.as_raw_fd()) {
                let asked = protocol::send(sock, &Request::Observe, None).is_ok();
                if let (true, Ok(Some((Reply::Observed { ppid, sigchld: n }, _)))) =
                    (asked, protocol::recv::<Reply>(sock))
                {
                    let a = &self.actors[name];
                    getppid = self.process_named(ppid, a.ns_path.len(), &a.ns_path.clone());
                    sigchld = Some(n);
                }
            }
        }
        Event::Observed {
            name: name.to_string(),
            pid,
            state,
            parent,
            getppid,
            sigchld,
        }
    }

    /// The process (not thread) whose pid at namespace `level` is `pid`,
    /// among those visible from a namespace at `ns_path`; `pid N` if none is.
    fn process_named(&self, pid: i32, level: usize, ns_path: &[String]) -> Option<String> {
        if pid == 0 {
            return None; // the parent is outside the caller's pid namespace
        }
        let found = self.actors.iter().find(|(_, a)| {
            !a.is_thread && a.ns_path.starts_with(ns_path) && a.nspid.get(level) == Some(&pid)
        });
        Some(found.map_or_else(|| format!("pid {pid}"), |(n, _)| n.clone()))
    }

    fn expect_state(
        &mut self,
        name: &str,
        expected: ProcState,
        within: Option<Duration>,
    ) -> Result<Vec<String>, Verdict> {
        let a = &self.actors[name];
        let (pid, tid, is_thread) = (a.nspid[0], a.nstid[0], a.is_thread);
        // A thread's state is its own, under /proc/PID/task/TID.
        let path = if is_thread {
            format!("/proc/{pid}/task/{tid}/stat")
        } else {
            format!("/proc/{pid}/stat")
        };
        let mut seen = ProcState::Gone;
        let (mut looks, mut held_at) = (0u32, Instant::now());
        let (held, took) = poll::holds_within(within.unwrap_or(Duration::ZERO), || {
            looks += 1;
            held_at = Instant::now();
            // State X (EXIT_DEAD) is a task being released: reaped, or
            // never to be a zombie (its parent ignores SIGCHLD). Waited out,
            // as when observing, rather than called a zombie; one still X
            // after a second counts as one.
            let settled = poll::until(Duration::from_secs(1), || match procfs::stat_at(&path) {
                Ok(s) if s.state == 'X' => None,
                other => Some(other),
            });
            seen = match settled {
                Ok((Ok(s), _)) if s.state == 'Z' => ProcState::Zombie,
                Ok((Ok(_), _)) => ProcState::Alive,
                Ok((Err(Errno::ENOENT), _)) | Ok((Err(Errno::ESRCH), _)) => ProcState::Gone,
                Err(_) => ProcState::Zombie,
                Ok((Err(e), _)) => {
                    return Err(Verdict::unsupported(format!(
                        "reading {path}: {}",
                        orphanage_scenario::ErrnoName(e)
                    )))
                }
            };
            Ok(seen == expected)
        })?;
        if !held {
            let waited = within
                .map(|w| format!(" after {}", poll::micros(w)))
                .unwrap_or_default();
            return Err(Verdict::fail(format!(
                "{name}'s state: expected {}, observed {}{waited}",
                state_name(expected),
                state_name(seen)
            )));
        }
        let since_exit = self
            .exit_completed
            .get(name)
            .map(|exited| held_at.saturating_duration_since(*exited));
        Ok(within.map_or_else(Vec::new, |w| {
            vec![eventual_state_note(
                name,
                state_name(expected),
                took,
                w,
                since_exit,
                looks == 1,
            )]
        }))
    }
}

/// A pidfd turns readable once the thread group is empty, but when a
/// multi-threaded process dies its parent is notified (SIGCHLD, and
/// auto-reaping) a moment later, by the group's last thread in
/// release_task() (kernel/exit.c), inside the write-locked tasklist_lock
/// section that emptied the group. wait(2) takes that lock for reading, so a
/// non-blocking, non-reaping waitid returns only once that section is over:
/// then the exit is complete for the parent too.
fn parent_notified_barrier() {
    // SAFETY: a zeroed siginfo_t is valid, and WNOWAIT|WNOHANG neither reaps nor blocks.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid siginfo pointer; the result does not matter, only its ordering.
    unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
        )
    };
}

fn exited(pid: i32, tid: i32, is_thread: bool) -> bool {
    if is_thread {
        return !std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists();
    }
    matches!(
        procfs::stat(pid).map(|s| s.state),
        Ok('Z') | Ok('X') | Err(_)
    )
}

fn state_name(s: ProcState) -> &'static str {
    match s {
        ProcState::Alive => "alive",
        ProcState::Zombie => "a zombie",
        ProcState::Gone => "gone",
    }
}

/// A step as one readable line: its keyword and the fields the file gave.
fn summary(step: &Step) -> String {
    let value = serde_json::to_value(step).unwrap_or_default();
    let Some((keyword, fields)) = value.as_object().and_then(|o| o.iter().next()) else {
        return step.keyword().to_string();
    };
    let parts: Vec<String> = match fields.as_object() {
        Some(f) => f
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            .map(|(k, v)| format!("{k}: {}", v.to_string().trim_matches('"')))
            .collect(),
        None => vec![],
    };
    format!("{keyword} {{{}}}", parts.join(", "))
}

fn raise_nofile_limit() -> nix::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
}

#[cfg(test)]
mod tests {
    use super::{eventual_state_note, init_under_test_missing, names_init, propagates};
    use std::time::Duration;

    #[test]
    fn an_eventual_state_is_timed_from_the_exit_when_there_was_one() {
        let ms = Duration::from_millis;
        assert_eq!(
            eventual_state_note("a", "gone", ms(0), ms(1000), None, true),
            "a gone after 0 µs (deadline 1000.0 ms)"
        );
        assert_eq!(
            eventual_state_note("a", "gone", ms(2), ms(1000), Some(ms(5)), false),
            "a gone after 2000 µs (deadline 1000.0 ms); 5000 µs after its exit completed"
        );
        assert_eq!(
            eventual_state_note("a", "gone", ms(0), ms(1000), Some(ms(7)), true),
            "a gone after 0 µs (deadline 1000.0 ms); at most 7000 µs after its exit \
             completed (already gone at the first look)"
        );
    }

    #[test]
    fn an_init_under_test_must_be_a_parent_in_the_agents_namespace() {
        let why = init_under_test_missing(0).unwrap();
        assert!(
            why.contains("getppid() is 0") && why.contains("PID 1"),
            "{why}"
        );
        assert_eq!(init_under_test_missing(1), None);
        assert_eq!(init_under_test_missing(4242), None);
    }

    #[test]
    fn a_step_names_init_in_any_field() {
        let step = |json: &str| serde_json::from_str::<orphanage_scenario::Step>(json).unwrap();
        assert!(names_init(&step(
            r#"{"expect_parent": {"of": "agent", "is": "init"}}"#
        )));
        assert!(names_init(&step(
            r#"{"expect_signal": {"signal": "SIGTERM", "from": "init"}}"#
        )));
        assert!(!names_init(&step(
            r#"{"expect_signal": {"signal": "SIGTERM"}}"#
        )));
    }

    #[test]
    fn shared_and_slave_mounts_propagate_private_ones_do_not() {
        let private = "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n\
                       23 22 0:5 / /proc rw,nosuid - proc proc rw\n";
        assert!(!propagates(private));
        let shared = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n";
        assert!(propagates(shared));
        let slave = "22 1 0:21 / / rw,relatime master:3 - ext4 /dev/vda rw\n";
        assert!(propagates(slave));
        // "shared:" in a source or option after the separator is not a peer group.
        let named = "22 1 0:21 / / rw - tmpfs shared:x rw\n";
        assert!(!propagates(named));
    }
}
