//! Builds the agent as a fully static binary and hands its path to the
//! harness, which embeds it: the same file later goes into container rootfs
//! and initramfs images, and the user never builds it by hand.
//!
//! The agent gets its own target directory so that this nested cargo never
//! waits on the lock the outer one holds, and `--target` keeps crt-static
//! away from proc-macros.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..").canonicalize().unwrap();
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out; share one agent build across profiles.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_root = out_dir
        .ancestors()
        .nth(4)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let agent_target_dir = target_root.join("agent");
    let triple = env::var("TARGET").unwrap();

    for dir in ["runner/agent", "runner/agent-io", "runner/scenario"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args([
            "build",
            "--release",
            "--package",
            "orphanage-agent",
            "--target",
            &triple,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&agent_target_dir)
        // The outer build's variables (RUSTFLAGS, CARGO_TARGET_DIR, jobserver...) must not leak in.
        .env_clear()
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    for keep in [
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_NET_OFFLINE",
        "TMPDIR",
    ] {
        if let Ok(value) = env::var(keep) {
            cargo.env(keep, value);
        }
    }
    let status = cargo.status().expect("failed to run cargo for the agent");
    assert!(status.success(), "building the static agent failed");

    let agent = agent_target_dir
        .join(&triple)
        .join("release/orphanage-agent");
    assert!(
        agent.exists(),
        "the agent build produced no {}",
        agent.display()
    );
    println!("cargo:rustc-env=ORPHANAGE_AGENT_BIN={}", agent.display());
}
