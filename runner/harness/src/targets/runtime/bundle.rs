//! OCI bundles: `config.json` from the template in fixtures/ plus a
//! scenario's overrides, and a rootfs holding only the agent (and the init
//! under test).

use orphanage_scenario::{InitMode, Namespace};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The template every bundle starts from (fixtures/runtime/config.json).
pub const TEMPLATE: &str = include_str!("../../../../../fixtures/runtime/config.json");

/// Where the agent and the init under test sit inside the rootfs.
pub const AGENT_IN_ROOTFS: &str = "/orphanage-agent";
pub const INIT_IN_ROOTFS: &str = "/init-under-test";

/// An init program under test (`--init`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUnderTest {
    pub path: PathBuf,
    /// For a dynamically linked init, the host directories its loader and
    /// libraries come from, mounted read-only at the same place; empty for a
    /// static binary.
    pub library_dirs: Vec<PathBuf>,
    /// Top-level symlinks such as /lib -> usr/lib (merged /usr), recreated in the rootfs.
    pub library_links: Vec<(PathBuf, PathBuf)>,
}

/// Whether an ELF executable names a program interpreter (PT_INTERP): then
/// it needs the host's loader and libraries inside the container.
pub fn is_dynamic_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    // 64-bit little-endian ELF only: that is what runs on x86_64.
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).any(|i| u32_at(phoff as usize + i * phentsize as usize) == Some(PT_INTERP))
}

impl InitUnderTest {
    /// The program's name, for messages and trial names.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "init".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// Why a scenario gets no container: its verdict is unsupported, with this
/// as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleSpecError {
    #[error("{}", crate::targets::kind::GLOBAL_INIT_NEEDS_A_VM)]
    NeedsAVm,
    #[error("needs an init program under test (--init PATH)")]
    NoInitUnderTest,
    /// The init program has no flag orphanage knows for the scenario's mode.
    #[error("{init} has no known {} mode", mode_words(*.mode))]
    NoKnownMode { init: String, mode: InitMode },
}

fn mode_words(mode: InitMode) -> &'static str {
    match mode {
        InitMode::Group => "process-group forwarding",
        _ => "subreaper",
    }
}

/// The init's own arguments for a mode, before the agent's command line.
/// The known inits spell the modes differently; an unknown one is run only
/// in child mode, with no flags.
pub fn init_flags(init_name: &str, mode: InitMode) -> Result<Vec<&'static str>, BundleSpecError> {
    let family = match init_name {
        "tini" | "tini-static" => "tini",
        other => other,
    };
    match (family, mode) {
        ("tini", InitMode::Child) => Ok(vec!["--"]),
        ("tini", InitMode::Group) => Ok(vec!["-g", "--"]),
        ("tini", InitMode::Subreaper) => Ok(vec!["-s", "--"]),
        // dumb-init runs its child in a new session and signals that group.
        ("dumb-init", InitMode::Child) => Ok(vec!["--single-child", "--"]),
        ("dumb-init", InitMode::Group) => Ok(vec!["--"]),
        ("catatonit", InitMode::Child) => Ok(vec!["--"]),
        ("catatonit", InitMode::Group) => Ok(vec!["-g", "--"]),
        // catatonit registers as a subreaper whenever it is not PID 1.
        ("catatonit", InitMode::Subreaper) => Ok(vec!["--"]),
        (_, InitMode::Child) => Ok(vec![]),
        (name, mode) => Err(BundleSpecError::NoKnownMode {
            init: name.to_string(),
            mode,
        }),
    }
}

/// What a scenario asks of its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSpec {
    pub args: Vec<String>,
    /// Share the host's pid namespace (no `pid` entry in linux.namespaces).
    pub host_pid_namespace: bool,
    /// Host directories bind-mounted read-only at the same path.
    pub read_only_mounts: Vec<PathBuf>,
    /// Symlinks to create in the rootfs (link, target).
    pub links: Vec<(PathBuf, PathBuf)>,
}

/// The container's process and namespaces for a scenario: the agent as
/// init, the agent in the host's pid namespace, or the init under test with
/// the agent as its child.
pub fn spec_for(
    namespace: Namespace,
    init_mode: Option<InitMode>,
    init: Option<&InitUnderTest>,
) -> Result<BundleSpec, BundleSpecError> {
    // The events come on the container's stdout: see container.rs.
    let agent = vec![
        AGENT_IN_ROOTFS.to_string(),
        "run".to_string(),
        "--events-on-stdout".to_string(),
    ];
    match namespace {
        Namespace::Fresh => Ok(BundleSpec {
            args: agent,
            host_pid_namespace: false,
            read_only_mounts: vec![],
            links: vec![],
        }),
        Namespace::Caller => Ok(BundleSpec {
            args: agent,
            host_pid_namespace: true,
            read_only_mounts: vec![],
            links: vec![],
        }),
        Namespace::GlobalInit => Err(BundleSpecError::NeedsAVm),
        Namespace::UnderInit => {
            let init = init.ok_or(BundleSpecError::NoInitUnderTest)?;
            let mode = init_mode.unwrap_or_default();
            let mut args = vec![INIT_IN_ROOTFS.to_string()];
            args.extend(
                init_flags(&init.name(), mode)?
                    .into_iter()
                    .map(String::from),
            );
            args.extend(agent);
            Ok(BundleSpec {
                args,
                // Not PID 1, the init must act as a subreaper to adopt orphans.
                host_pid_namespace: mode == InitMode::Subreaper,
                read_only_mounts: init.library_dirs.clone(),
                links: init.library_links.clone(),
            })
        }
    }
}

/// config.json: the template with the spec applied.
pub fn config(template: &Value, spec: &BundleSpec) -> Value {
    let mut config = template.clone();
    config["process"]["args"] = json!(spec.args);
    if spec.host_pid_namespace {
        if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
            namespaces.retain(|n| n["type"] != "pid");
        }
    }
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for dir in &spec.read_only_mounts {
            mounts.push(json!({
                "destination": dir,
                "type": "bind",
                "source": dir,
                "options": ["rbind", "ro", "nosuid", "nodev"],
            }));
        }
    }
    config
}

/// Directories the rootfs needs before the runtime mounts anything.
pub fn rootfs_dirs(spec: &BundleSpec) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["proc", "dev", "sys", "tmp"]
        .iter()
        .map(PathBuf::from)
        .collect();
    dirs.extend(
        spec.read_only_mounts
            .iter()
            .map(|d| d.strip_prefix("/").unwrap_or(d).to_path_buf()),
    );
    dirs
}

/// Writes the bundle: config.json, and a rootfs with the agent and the init.
pub fn write(
    bundle: &Path,
    config: &Value,
    spec: &BundleSpec,
    agent: &Path,
    init: Option<&InitUnderTest>,
) -> std::io::Result<()> {
    let rootfs = bundle.join("rootfs");
    for dir in rootfs_dirs(spec) {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    let place = |from: &Path, to: &str| -> std::io::Result<()> {
        let to = rootfs.join(to.trim_start_matches('/'));
        // A hard link costs nothing; across filesystems, copy.
        std::fs::hard_link(from, &to).or_else(|_| std::fs::copy(from, &to).map(|_| ()))
    };
    for (link, target) in &spec.links {
        std::os::unix::fs::symlink(target, rootfs.join(link.strip_prefix("/").unwrap_or(link)))?;
    }
    place(agent, AGENT_IN_ROOTFS)?;
    if let Some(init) = init {
        place(&init.path, INIT_IN_ROOTFS)?;
    }
    let text = serde_json::to_vec_pretty(config).expect("configs serialize");
    std::fs::write(bundle.join("config.json"), text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn template() -> Value {
        serde_json::from_str(TEMPLATE).expect("the template is JSON")
    }

    fn pid_namespace(config: &Value) -> bool {
        config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "pid")
    }

    fn tini() -> InitUnderTest {
        InitUnderTest {
            path: "/usr/bin/tini".into(),
            library_dirs: vec!["/lib".into(), "/usr/lib".into()],
            library_links: vec![],
        }
    }

    #[test]
    fn agent_is_init_of_a_private_pid_namespace() {
        let spec = spec_for(Namespace::Fresh, None, None).unwrap();
        let c = config(&template(), &spec);
        assert_eq!(
            c["process"]["args"],
            json!(["/orphanage-agent", "run", "--events-on-stdout"])
        );
        assert!(pid_namespace(&c));
        assert_eq!(c["process"]["terminal"], json!(false));
    }

    #[test]
    fn caller_namespace_shares_the_host_pid_namespace() {
        let spec = spec_for(Namespace::Caller, None, None).unwrap();
        let c = config(&template(), &spec);
        assert!(!pid_namespace(&c));
        // Everything else stays: the mount namespace and its /proc.
        assert!(c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "mount"));
    }

    #[rstest]
    #[case(InitMode::Child, &["/init-under-test", "--", "/orphanage-agent", "run", "--events-on-stdout"], true)]
    #[case(InitMode::Group, &["/init-under-test", "-g", "--", "/orphanage-agent", "run", "--events-on-stdout"], true)]
    #[case(InitMode::Subreaper, &["/init-under-test", "-s", "--", "/orphanage-agent", "run", "--events-on-stdout"], false)]
    fn init_under_test_runs_the_agent(
        #[case] mode: InitMode,
        #[case] args: &[&str],
        #[case] own_pid_namespace: bool,
    ) {
        let spec = spec_for(Namespace::UnderInit, Some(mode), Some(&tini())).unwrap();
        let c = config(&template(), &spec);
        assert_eq!(c["process"]["args"], json!(args));
        assert_eq!(pid_namespace(&c), own_pid_namespace);
        let binds: Vec<&Value> = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "bind")
            .collect();
        assert_eq!(binds.len(), 2);
        assert_eq!(binds[0]["destination"], json!("/lib"));
        assert!(binds[0]["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
    }

    #[test]
    fn under_init_without_an_init_is_unsupported() {
        let e = spec_for(Namespace::UnderInit, None, None).unwrap_err();
        assert_eq!(e, BundleSpecError::NoInitUnderTest);
        assert_eq!(
            e.to_string(),
            "needs an init program under test (--init PATH)"
        );
        assert_eq!(
            spec_for(Namespace::GlobalInit, None, None)
                .unwrap_err()
                .to_string(),
            crate::targets::kind::GLOBAL_INIT_NEEDS_A_VM
        );
    }

    #[rstest]
    #[case("dumb-init", InitMode::Child, Ok(vec!["--single-child", "--"]))]
    #[case("dumb-init", InitMode::Subreaper, Err("dumb-init has no known subreaper mode".to_string()))]
    #[case("catatonit", InitMode::Group, Ok(vec!["-g", "--"]))]
    #[case("tini-static", InitMode::Subreaper, Ok(vec!["-s", "--"]))]
    #[case("my-init", InitMode::Child, Ok(vec![]))]
    #[case("my-init", InitMode::Group, Err("my-init has no known process-group forwarding mode".to_string()))]
    fn init_flags_per_program(
        #[case] name: &str,
        #[case] mode: InitMode,
        #[case] expected: Result<Vec<&str>, String>,
    ) {
        assert_eq!(init_flags(name, mode).map_err(|e| e.to_string()), expected);
    }

    #[test]
    fn elf_interpreter_is_detected() {
        let mut elf = vec![0u8; 0x40 + 2 * 0x38];
        elf[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert!(!is_dynamic_elf(&elf));
        elf[0x40 + 0x38..0x40 + 0x3c].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert!(is_dynamic_elf(&elf));
        assert!(!is_dynamic_elf(b"#!/bin/sh\n"));
        assert!(!is_dynamic_elf(&elf[..0x30]));
    }

    #[test]
    fn real_binaries_are_told_apart() {
        // The test binary itself is dynamically linked (it is built without crt-static).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(is_dynamic_elf(&me));
    }

    #[test]
    fn rootfs_has_mount_points_for_binds() {
        let spec = spec_for(Namespace::UnderInit, None, Some(&tini())).unwrap();
        let dirs = rootfs_dirs(&spec);
        assert!(dirs.contains(&PathBuf::from("proc")));
        assert!(dirs.contains(&PathBuf::from("usr/lib")));
    }
}
