//! The host target: the agent runs on the running kernel, as the init of a
//! fresh pid namespace (with a user namespace when we are not root) or as a
//! plain process in ours. Where the kernel refuses CLONE_NEWPID with EINVAL,
//! or `--no-pid-namespace` says so, a fresh namespace's scenario runs in ours
//! under a subreaper root instead (the agent's `subreaper_root`). The harness
//! is multi-threaded, so the agent starts by clone(2) + execve(2) with
//! nothing but async-signal-safe calls between.

use crate::live::{self, Registration, Tree};
use nix::errno::Errno;
use orphanage_agent_io::{above_std_fds, clone_failed, pipe, read_events, Countdown};
use orphanage_scenario::WaitStatus;
use orphanage_scenario::{ErrnoName, Event, Namespace, Scenario, Verdict};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// How the host target runs scenarios.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTarget {
    /// `--no-pid-namespace`: every `namespace: fresh` scenario runs under a
    /// subreaper root, as on a kernel without pid namespaces.
    pub force_subreaper_root: bool,
}

/// Why a subreaper root stands in, when forced (the agent words its reasons with it).
const FORCED: &str = "forced by --no-pid-namespace";

/// How long an agent that closed its event pipe may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// clone(2) flags for the agent, and whether a user namespace needs id maps.
/// Without id maps to write, the child shares our memory and we sleep until
/// it has exec'd (what posix_spawn does): no copy of the harness's page
/// tables, and no copy-on-write faults in the harness afterwards.
/// A subreaper root lives in our namespaces: its agent makes its own mount namespace.
pub fn clone_flags(namespace: Namespace, euid: u32, subreaper_root: bool) -> (libc::c_ulong, bool) {
    let base = libc::SIGCHLD as libc::c_ulong;
    let vfork = (libc::CLONE_VM | libc::CLONE_VFORK) as libc::c_ulong;
    match namespace {
        _ if subreaper_root => (base | vfork, false),
        Namespace::Caller | Namespace::UnderInit | Namespace::GlobalInit => (base | vfork, false),
        Namespace::Fresh if euid == 0 => (
            base | vfork | (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong,
            false,
        ),
        // The parent writes the id maps while the child waits: no vfork.
        Namespace::Fresh => (
            base | (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) as libc::c_ulong,
            true,
        ),
    }
}

/// What to write to /proc/PID/{setgroups,uid_map,gid_map}: our ids become root inside.
pub fn id_maps(uid: u32, gid: u32) -> [(&'static str, String); 3] {
    [
        ("setgroups", "deny".into()),
        ("uid_map", format!("0 {uid} 1")),
        ("gid_map", format!("0 {gid} 1")),
    ]
}

/// `AGENT run`, or `AGENT run subreaper-root WHY` where a subreaper root
/// stands in for a missing pid namespace (WHY: the refused clone and its errno,
/// or the flag that forced it).
pub fn agent_argv(agent: &Path, subreaper_root: Option<&str>) -> Vec<CString> {
    let mut argv = vec![
        CString::new(agent.as_os_str().as_bytes()).unwrap(),
        CString::new("run").unwrap(),
    ];
    if let Some(why) = subreaper_root {
        argv.push(CString::new("subreaper-root").unwrap());
        argv.push(CString::new(why).unwrap_or_default());
    }
    argv
}

/// Enough for the few libc calls the child makes before execve.
const CHILD_STACK: usize = 64 * 1024;

/// What the cloned child needs before it execs the agent, prepared by the parent.
struct ChildSetup {
    stdin: RawFd,
    events: RawFd,
    stderr: RawFd,
    /// (read, write) ends of the pipe on which the parent releases the child,
    /// once it has written the id maps; None when there are none to write.
    sync: Option<(RawFd, RawFd)>,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

/// The cloned child, up to execve. It may share the parent's memory
/// (CLONE_VM), so it only makes raw system calls and writes nothing shared.
extern "C" fn agent_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the parent passed a ChildSetup that lives until we exec.
    let s = unsafe { &*(arg as *const ChildSetup) };
    // SAFETY: async-signal-safe calls on fds and pointers prepared by the parent.
    unsafe {
        libc::dup2(s.stdin, 0);
        libc::dup2(s.stderr, 1);
        libc::dup2(s.stderr, 2);
        libc::dup2(s.events, 3);
        // If the harness dies, even by SIGKILL, so does this tree (our
        // init's death ends the namespace). The creating thread lives until
        // it has reaped us, so the thread-exit trap of PDEATHSIG cannot fire.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if let Some((sync_r, sync_w)) = s.sync {
            // Wait until the parent has written our id maps and registered us.
            // Our copy of the write end goes first, so a dead parent reads as EOF.
            libc::close(sync_w);
            let mut b = 0u8;
            if libc::read(sync_r, (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(127);
            }
        }
        // Our own session: the terminal's Ctrl-C reaches only the harness,
        // which then tears every tree down in order.
        libc::setsid();
        libc::execve(*s.argv, s.argv, s.envp);
        libc::_exit(127)
    }
}

struct Started {
    events: OwnedFd,
    stderr: OwnedFd,
    registration: Registration,
    /// The agent's tree is in our pid namespace (`namespace: caller`, or a subreaper root).
    shares_our_namespace: bool,
}

/// Starts the agent for `scenario`: in a fresh pid namespace unless forced
/// otherwise or refused one with EINVAL, and then under a subreaper root.
fn start(agent: &Path, scenario: &Scenario, host: HostTarget) -> Result<Started, Verdict> {
    let fresh = scenario.namespace == Namespace::Fresh;
    if fresh && host.force_subreaper_root {
        return start_as(agent, scenario, Some(FORCED)).map_err(Refused::into_verdict);
    }
    match start_as(agent, scenario, None) {
        Err(Refused::PidNamespace(why)) if fresh => start_as(agent, scenario, Some(&why)),
        other => other,
    }
    .map_err(Refused::into_verdict)
}

/// Why an agent did not start.
enum Refused {
    /// clone(2) with CLONE_NEWPID failed with EINVAL: the clone and its errno.
    PidNamespace(String),
    Other(Verdict),
}

impl Refused {
    fn into_verdict(self) -> Verdict {
        match self {
            Refused::PidNamespace(why) => {
                Verdict::unsupported(format!("{why} (needs pid namespaces)"))
            }
            Refused::Other(v) => v,
        }
    }
}

impl From<Verdict> for Refused {
    fn from(v: Verdict) -> Refused {
        Refused::Other(v)
    }
}

fn start_as(
    agent: &Path,
    scenario: &Scenario,
    subreaper_root: Option<&str>,
) -> Result<Started, Refused> {
    let broken = |e: std::io::Error| Verdict::broken(format!("making the agent's pipes: {e}"));
    let (stdin_r, stdin_w) = pipe().map_err(broken)?;
    let (events_r, events_w) = pipe().map_err(broken)?;
    let (err_r, err_w) = pipe().map_err(broken)?;
    let (sync_r, sync_w) = pipe().map_err(broken)?;
    let high = |fd| above_std_fds(fd).map_err(broken);
    let (stdin_r, events_w, err_w, sync_r) =
        (high(stdin_r)?, high(events_w)?, high(err_w)?, high(sync_r)?);
    let euid = nix::unistd::geteuid().as_raw();
    let (flags, user_namespace) = clone_flags(scenario.namespace, euid, subreaper_root.is_some());

    let argv = agent_argv(agent, subreaper_root);
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).unwrap_or_default())
        .collect();
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let setup = ChildSetup {
        stdin: stdin_r.as_raw_fd(),
        events: events_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        // With CLONE_VFORK we are suspended until the child execs, so it cannot wait for us.
        sync: user_namespace.then(|| (sync_r.as_raw_fd(), sync_w.as_raw_fd())),
        argv: argv_ptrs.as_ptr(),
        envp: env_ptrs.as_ptr(),
    };
    // The child runs on its own stack: with CLONE_VM it shares our memory.
    let mut stack = vec![0u8; CHILD_STACK];
    let clone = || -> Result<i32, Refused> {
        // SAFETY: the stack top is 16-byte aligned and `setup` outlives the
        // child's use of it (until execve, or until we return with CLONE_VFORK).
        // The child makes only async-signal-safe calls on data prepared above.
        let pid = unsafe {
            let top = stack.as_mut_ptr().add(CHILD_STACK) as usize & !15;
            libc::clone(
                agent_child,
                top as *mut libc::c_void,
                flags as libc::c_int,
                (&setup as *const ChildSetup).cast_mut().cast(),
            )
        };
        if pid >= 0 {
            return Ok(pid);
        }
        let errno = Errno::last();
        if errno == Errno::EINVAL && flags & libc::CLONE_NEWPID as libc::c_ulong != 0 {
            return Err(Refused::PidNamespace(format!(
                "clone({}): {}",
                orphanage_agent_io::clone_flag_names(flags),
                ErrnoName(errno)
            )));
        }
        let needs = if user_namespace {
            "pid namespaces and unprivileged user namespaces"
        } else {
            "pid namespaces"
        };
        Err(clone_failed(flags, ErrnoName(errno), needs).into())
    };
    let tree = Tree {
        agent: 0,
        // A subreaper root shares our namespace: its tree is killed as a caller's is.
        caller_namespace: scenario.namespace == Namespace::Caller || subreaper_root.is_some(),
        spawned: vec![],
        container: None,
    };
    // Cloned and registered under the registry's lock: an interrupt either
    // came first (nothing was started) or will find this agent.
    let (pid, registration) = match live::start_registered(tree, clone) {
        None => return Err(Verdict::broken("interrupted").into()),
        Some(started) => started?,
    };
    drop((stdin_r, events_w, err_w, sync_r));
    if user_namespace {
        for (file, content) in id_maps(euid, nix::unistd::getegid().as_raw()) {
            if let Err(e) = std::fs::write(format!("/proc/{pid}/{file}"), content) {
                registration.kill();
                registration.reap_root(None);
                return Err(Verdict::unsupported(format!(
                    "writing /proc/{pid}/{file} for a user namespace: {e}"
                ))
                .into());
            }
        }
    }
    if setup.sync.is_some() {
        // Releases the child.
        // SAFETY: one byte to a pipe we own.
        unsafe { libc::write(sync_w.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    }
    drop((sync_w, stack));
    let json = serde_json::to_vec(scenario).expect("scenarios serialize");
    let mut stdin = std::fs::File::from(stdin_w);
    // An agent that died before reading shows up below as a missing verdict.
    let _ = std::io::Write::write_all(&mut stdin, &json);
    drop(stdin);
    Ok(Started {
        events: events_r,
        stderr: err_r,
        registration,
        shares_our_namespace: scenario.namespace == Namespace::Caller || subreaper_root.is_some(),
    })
}

/// Reaps the agent, killing it if it lingers past `grace`. None if the
/// interrupt handler reaped it first.
fn reap_within(grace: Duration, registration: &Registration) -> Option<WaitStatus> {
    if let Some(exit) = registration.reap_root(Some(grace)) {
        return Some(exit.status);
    }
    registration.kill();
    registration.reap_root(None).map(|exit| exit.status)
}

/// Runs one scenario on the running kernel. Every event goes to `on_event`,
/// and the last one is always `Finished`, whether from the agent or made here.
pub fn run_on_host(
    host: HostTarget,
    agent: &Path,
    scenario: &Scenario,
    on_event: &mut dyn FnMut(&Event),
) {
    let clock = Countdown::start(scenario.deadline());
    let finish = |on_event: &mut dyn FnMut(&Event), verdict: Verdict| {
        on_event(&Event::Finished {
            verdict,
            steps_ms: 0.0,
        })
    };
    let Started {
        events,
        stderr,
        registration,
        shares_our_namespace,
    } = match start(agent, scenario, host) {
        Ok(s) => s,
        Err(v) => return finish(on_event, v),
    };
    let mut reading = read_events(&events, &stderr, &clock, &mut |event| {
        if let Event::Spawned {
            pid, start_time, ..
        } = event
        {
            registration.add_spawned(*pid, *start_time);
        }
        on_event(event);
    });
    if reading.timed_out {
        registration.kill();
    }
    let status = reap_within(
        if reading.timed_out {
            Duration::ZERO
        } else {
            EXIT_GRACE
        },
        &registration,
    );
    reading.drain_stderr(&stderr);
    if shares_our_namespace {
        // The agent kills what it made; this catches anything it could not,
        // and reaps what was orphaned to us.
        registration.kill();
        registration.reap_adopted();
    }
    drop(registration);
    if reading.finished.is_some() {
        return;
    }
    let verdict =
        reading.verdict_without_finish(status, clock.limit(), &agent.display().to_string());
    finish(on_event, verdict);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Namespace::Caller, 0, libc::CLONE_VM | libc::CLONE_VFORK, false)]
    #[case(Namespace::Caller, 1000, libc::CLONE_VM | libc::CLONE_VFORK, false)]
    #[case(Namespace::Fresh, 0, libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_NEWPID | libc::CLONE_NEWNS, false)]
    #[case(Namespace::Fresh, 1000, libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS, true)]
    fn clone_flags_follow_namespace_and_privilege(
        #[case] ns: Namespace,
        #[case] euid: u32,
        #[case] extra: libc::c_int,
        #[case] maps: bool,
    ) {
        let (flags, needs_maps) = clone_flags(ns, euid, false);
        assert_eq!(
            flags,
            libc::SIGCHLD as libc::c_ulong | extra as libc::c_ulong
        );
        assert_eq!(needs_maps, maps);
    }

    #[rstest]
    #[case(0)]
    #[case(1000)]
    fn a_subreaper_root_is_started_in_our_namespaces(#[case] euid: u32) {
        let (flags, needs_maps) = clone_flags(Namespace::Fresh, euid, true);
        assert_eq!(
            flags,
            (libc::SIGCHLD | libc::CLONE_VM | libc::CLONE_VFORK) as libc::c_ulong
        );
        assert!(!needs_maps);
    }

    #[test]
    fn id_maps_make_us_root_inside() {
        let maps = id_maps(1000, 100);
        assert_eq!(maps[0], ("setgroups", "deny".to_string()));
        assert_eq!(maps[1], ("uid_map", "0 1000 1".to_string()));
        assert_eq!(maps[2], ("gid_map", "0 100 1".to_string()));
    }

    #[test]
    fn argv_runs_the_agent() {
        let argv = agent_argv(Path::new("/tmp/x/orphanage-agent"), None);
        assert_eq!(
            argv,
            vec![
                CString::new("/tmp/x/orphanage-agent").unwrap(),
                CString::new("run").unwrap()
            ]
        );
        let argv = agent_argv(
            Path::new("/a"),
            Some("clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL"),
        );
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "/a",
                "run",
                "subreaper-root",
                "clone(CLONE_NEWPID|CLONE_NEWNS): EINVAL"
            ]
        );
    }
}
