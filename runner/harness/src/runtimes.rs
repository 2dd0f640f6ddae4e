//! `orphanage runtimes fetch|path`: container runtimes that are not installed
//! system-wide, downloaded once from a Debian suite into the user's cache,
//! so that two releases can run side by side (`--runtime runsc --runtime
//! "$(orphanage runtimes path runsc-trixie)"`). The download goes through
//! apt-get with a private sources list and state, as `kernels fetch` does
//! (kernels.rs): the system's own sources and packages are never touched.

use crate::cli::RuntimesCommand;
use crate::kernels::{self, FetchError};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A runtime orphanage knows how to fetch: one static binary out of a
/// Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetchable {
    /// What `runtimes fetch NAME` calls it.
    pub name: &'static str,
    pub package: &'static str,
    pub suite: &'static str,
    /// The binary's path inside the package.
    pub binary: &'static str,
    /// What it is, for `--help`-like listings and errors.
    pub what: &'static str,
}

/// Debian 13's runsc is a static Go binary, so it runs on Debian 12 (and
/// anywhere else) unchanged: gVisor's 2024-07 release beside bookworm's 2022-12.
pub const KNOWN: &[Fetchable] = &[Fetchable {
    name: "runsc-trixie",
    package: "runsc",
    suite: "trixie",
    binary: "usr/bin/runsc",
    what: "gVisor 2024-07 (Debian 13's runsc, a static binary)",
}];

/// Where a fetched runtime lives: `CACHE/runtimes/NAME/` holding the binary
/// under its own file name, since orphanage knows a runtime's needs (runsc's
/// `--network=none`) by that name.
pub fn binary_path(cache: &Path, runtime: &Fetchable) -> PathBuf {
    let file = Path::new(runtime.binary)
        .file_name()
        .expect("a binary path names a file");
    cache.join("runtimes").join(runtime.name).join(file)
}

/// The named runtimes (all when `names` is empty); an unknown name is bad input.
pub fn select(names: &[String]) -> Result<Vec<Fetchable>, FetchError> {
    for n in names {
        if !KNOWN.iter().any(|k| k.name == n) {
            let have: Vec<&str> = KNOWN.iter().map(|k| k.name).collect();
            return Err(FetchError::BadInput(format!(
                "no runtime named {n} to fetch (orphanage knows: {})",
                have.join(", ")
            )));
        }
    }
    Ok(KNOWN
        .iter()
        .filter(|k| names.is_empty() || names.iter().any(|n| n == k.name))
        .copied()
        .collect())
}

/// Downloads each runtime not yet in the cache; returns (name, binary) of all.
pub fn fetch(
    runtimes: &[Fetchable],
    cache: &Path,
    mut say: impl FnMut(&str),
) -> Result<Vec<(String, PathBuf)>, FetchError> {
    let missing: Vec<&Fetchable> = runtimes
        .iter()
        .filter(|r| !binary_path(cache, r).is_file())
        .collect();
    if !missing.is_empty() {
        let suites: Vec<String> = missing.iter().map(|r| r.suite.to_string()).collect();
        // Its own apt state, apart from the kernels': the two never wait on
        // each other's lists.
        let apt_dir = cache.join("apt-runtimes");
        let mirror = kernels::prepare_private_apt(&apt_dir, &suites)?;
        say(&format!(
            "updating the package lists of {} from {mirror}",
            suites.join(", ")
        ));
        kernels::apt_update(&apt_dir)?;
        for r in missing {
            say(&format!("downloading {} from {}", r.package, r.suite));
            fetch_one(&apt_dir, cache, r)?;
        }
    }
    Ok(runtimes
        .iter()
        .map(|r| (r.name.to_string(), binary_path(cache, r)))
        .collect())
}

fn fetch_one(apt_dir: &Path, cache: &Path, runtime: &Fetchable) -> Result<(), FetchError> {
    let failed = |what: String| FetchError::Failed(format!("{}: {what}", runtime.name));
    let runtimes = cache.join("runtimes");
    std::fs::create_dir_all(&runtimes).map_err(|e| failed(e.to_string()))?;
    // Unpacked beside its final place and renamed into it: an interrupted
    // fetch never leaves a half-written binary where `path` would find it.
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&runtimes)
        .map_err(|e| failed(format!("{}: {e}", runtimes.display())))?;
    let deb = kernels::download_deb(apt_dir, runtime.package, runtime.suite, work.path())?;
    let member = format!("./{}", runtime.binary);
    let unpacked = work.path().join(runtime.binary);
    let missing = match kernels::unpack_from_deb(&deb, work.path(), &[&member]) {
        Err(why) => Some(why.to_string()),
        Ok(()) if !unpacked.is_file() => Some("tar took nothing out".to_string()),
        Ok(()) => None,
    };
    if let Some(why) = missing {
        return Err(failed(format!("no {member} in {} ({why})", deb.display())));
    }
    let target = binary_path(cache, runtime);
    let dir = target.parent().expect("under runtimes/NAME");
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&unpacked, &target).map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// Stale work directories of interrupted fetches.
pub fn clear_interrupted(cache: &Path) {
    let runtimes = cache.join("runtimes");
    for stale in std::fs::read_dir(runtimes).into_iter().flatten().flatten() {
        if stale.file_name().to_string_lossy().starts_with(".fetch-") {
            let _ = std::fs::remove_dir_all(stale.path());
        }
    }
}

/// `orphanage runtimes fetch|path [NAME...]`.
pub fn command(command: RuntimesCommand) -> anyhow::Result<ExitCode> {
    let (names, fetching) = match command {
        RuntimesCommand::Fetch { names } => (names, true),
        RuntimesCommand::Path { names } => (names, false),
    };
    let chosen = match select(&names) {
        Ok(c) => c,
        Err(e) => bail!("{e}"),
    };
    let cache = kernels::cache_dir();
    if !fetching {
        let mut missing = false;
        for r in &chosen {
            let path = binary_path(&cache, r);
            if path.is_file() {
                println!("{}", path.display());
            } else {
                eprintln!(
                    "orphanage: runtime {} is not fetched yet (`orphanage runtimes fetch {}`)",
                    r.name, r.name
                );
                missing = true;
            }
        }
        return Ok(if missing {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create {}", cache.display()))?;
    clear_interrupted(&cache);
    match fetch(&chosen, &cache, |m| eprintln!("orphanage: {m}")) {
        Ok(binaries) => {
            for (name, binary) in binaries {
                println!("{name}\t{}", binary.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(FetchError::BadInput(m)) => bail!("{m}"),
        Err(FetchError::Failed(m)) => {
            eprintln!("orphanage: {m}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_runtime_keeps_its_own_file_name() {
        let r = select(&["runsc-trixie".into()]).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            binary_path(Path::new("/c"), &r[0]),
            PathBuf::from("/c/runtimes/runsc-trixie/runsc")
        );
        assert_eq!((r[0].package, r[0].suite), ("runsc", "trixie"));
    }

    #[test]
    fn an_unknown_runtime_is_bad_input_naming_the_known_ones() {
        match select(&["runsc-sid".into()]) {
            Err(FetchError::BadInput(m)) => {
                assert_eq!(
                    m,
                    "no runtime named runsc-sid to fetch (orphanage knows: runsc-trixie)"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(select(&[]).unwrap().len(), KNOWN.len());
    }
}
