//! The kernel matrix file (`fixtures/kernels.yaml`) and `orphanage kernels
//! fetch`, which downloads Debian kernel packages with apt-get into a private
//! apt state (never touching the system's sources) and keeps each kernel
//! image in the user's cache directory. An entry with `build:` names a kernel
//! source package instead, which fetch downloads the same way and builds
//! (`kernel_build`).

use orphanage_scenario::{
    check_yaml_syntax, explain_yaml_error, list_item_field_position, top_level_key_position,
    YamlProblem,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One entry of the matrix file, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    /// A Debian kernel package, e.g. linux-image-6.1.0-50-amd64 ...
    #[serde(default)]
    package: Option<String>,
    /// ... from this suite (bullseye, bookworm, bookworm-backports, trixie).
    #[serde(default)]
    suite: Option<String>,
    /// Or any kernel image, relative to the matrix file.
    #[serde(default)]
    path: Option<PathBuf>,
    /// Or the running kernel, as `cargo run` tests it (a column to compare with).
    #[serde(default)]
    host: bool,
    /// With `package` naming a kernel source package (linux-source-6.1):
    /// a config fragment, relative to the matrix file, merged onto `make
    /// tinyconfig`; fetch builds a bzImage from it.
    #[serde(default)]
    build: Option<PathBuf>,
    /// Extra QEMU arguments, for kernels that boot differently.
    #[serde(default)]
    qemu_args: Vec<String>,
    /// Where results come back: `ttyS1` (a second serial port, the default),
    /// `console` (between the log lines of a kernel's one console, ttyS0),
    /// or `hvc0` (likewise on the virtio console, with no serial port).
    #[serde(default)]
    results: crate::targets::vm::ResultsPort,
    /// Extra kernel command line.
    #[serde(default)]
    cmdline: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    kernels: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Package {
        package: String,
        suite: String,
    },
    Path(PathBuf),
    /// The running kernel, no VM.
    Host,
    /// Built from a Debian kernel source package with a config fragment.
    Build {
        package: String,
        suite: String,
        fragment: PathBuf,
        /// Names the build in the cache: it changes with the fragment and the source.
        key: String,
    },
}

/// A validated matrix entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub name: String,
    pub source: Source,
    pub qemu_args: Vec<String>,
    pub cmdline: String,
    pub results: crate::targets::vm::ResultsPort,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelsError {
    // Not `source`: the message already says it, and a chained source would
    // be printed a second time by the CLI's `{:#}`.
    #[error("{}: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}:{column}: kernels[{index}] ({name}): {message}", .path.display())]
    Entry {
        path: PathBuf,
        line: usize,
        column: usize,
        index: usize,
        name: String,
        message: String,
    },
    #[error("{}:{line}:{column}: the file names no kernel", .path.display())]
    NoKernel {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("{}: no kernel named {name} (the file has: {have})", .path.display())]
    Unknown {
        path: PathBuf,
        name: String,
        have: String,
    },
}

fn simple_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// Parses and validates a matrix file. Relative paths are relative to it.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Kernel>, KernelsError> {
    let syntax = |p: YamlProblem| {
        let (line, column) = p.position.unwrap_or((1, 1));
        KernelsError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: p.message,
        }
    };
    check_yaml_syntax(text).map_err(syntax)?;
    let file: File =
        yaml_serde::from_str(text).map_err(|e| syntax(explain_yaml_error(text, &e)))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut kernels: Vec<Kernel> = Vec::new();
    for (index, e) in file.kernels.into_iter().enumerate() {
        // Each error points at the key to fix, or at the entry when a key is missing.
        let bad = |field: &str, message: &str| {
            let (line, column) = list_item_field_position(text, "kernels", index, field)
                .or_else(|| top_level_key_position(text, "kernels"))
                .unwrap_or((1, 1));
            KernelsError::Entry {
                path: path.to_path_buf(),
                line,
                column,
                index,
                name: e.name.clone(),
                message: message.to_string(),
            }
        };
        if !simple_word(&e.name) {
            return Err(bad(
                "name",
                "a name is letters, digits, '.', '_', '+' or '-'",
            ));
        }
        if kernels.iter().any(|k| k.name == e.name) {
            return Err(bad("name", "the name is used twice"));
        }
        if e.host {
            if let Some(field) = [
                ("package", e.package.is_some()),
                ("suite", e.suite.is_some()),
                ("path", e.path.is_some()),
                ("build", e.build.is_some()),
            ]
            .iter()
            .find_map(|(f, given)| given.then_some(*f))
            {
                return Err(bad(
                    field,
                    "host runs on the running kernel: no package, suite, path or build",
                ));
            }
            if !e.qemu_args.is_empty() || !e.cmdline.is_empty() {
                let field = if e.qemu_args.is_empty() {
                    "cmdline"
                } else {
                    "qemu_args"
                };
                return Err(bad(field, "host boots nothing: no qemu_args or cmdline"));
            }
        }
        if e.build.is_some() && e.path.is_some() {
            return Err(bad(
                "path",
                "build takes its source from package (with suite), not from path",
            ));
        }
        if e.build.is_some() && e.package.is_none() {
            return Err(bad(
                "build",
                "build needs the kernel source package to build from (package, with suite)",
            ));
        }
        let source = match (&e.package, &e.suite, &e.path) {
            _ if e.host => Source::Host,
            (Some(p), Some(s), None) if simple_word(p) && simple_word(s) => match &e.build {
                None => Source::Package {
                    package: p.clone(),
                    suite: s.clone(),
                },
                Some(fragment) => {
                    let fragment = base.join(fragment);
                    let bytes = std::fs::read(&fragment).map_err(|error| {
                        bad(
                            "build",
                            &format!(
                                "cannot read the config fragment {}: {error}",
                                fragment.display()
                            ),
                        )
                    })?;
                    Source::Build {
                        key: crate::kernel_build::build_key(p, s, &bytes),
                        package: p.clone(),
                        suite: s.clone(),
                        fragment,
                    }
                }
            },
            (Some(p), Some(_), None) => {
                let field = if simple_word(p) { "suite" } else { "package" };
                return Err(bad(field, "package and suite are single words"));
            }
            (Some(_), None, None) => {
                return Err(bad("package", "a package needs the suite it comes from"))
            }
            (None, None, Some(p)) => Source::Path(base.join(p)),
            (None, Some(_), Some(_)) => {
                return Err(bad("suite", "suite goes with package, not path"))
            }
            (Some(_), _, Some(_)) => {
                return Err(bad("path", "give either package or path, not both"))
            }
            (None, _, None) => {
                // Neither key is there: point at the entry itself.
                return Err(bad(
                    "-",
                    "give either package (with suite), path, or host: true",
                ));
            }
        };
        kernels.push(Kernel {
            name: e.name,
            source,
            qemu_args: e.qemu_args,
            cmdline: e.cmdline,
            results: e.results,
        });
    }
    if kernels.is_empty() {
        let (line, column) = top_level_key_position(text, "kernels").unwrap_or((1, 1));
        return Err(KernelsError::NoKernel {
            path: path.to_path_buf(),
            line,
            column,
        });
    }
    Ok(kernels)
}

pub fn load(path: &Path) -> Result<Vec<Kernel>, KernelsError> {
    let text = std::fs::read_to_string(path).map_err(|error| KernelsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(path, &text)
}

/// Keeps the named kernels (all when `names` is empty); an unknown name is an error.
pub fn select(
    path: &Path,
    kernels: Vec<Kernel>,
    names: &[String],
) -> Result<Vec<Kernel>, KernelsError> {
    for n in names {
        if !kernels.iter().any(|k| &k.name == n) {
            let have: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
            return Err(KernelsError::Unknown {
                path: path.to_path_buf(),
                name: n.clone(),
                have: have.join(", "),
            });
        }
    }
    Ok(kernels
        .into_iter()
        .filter(|k| names.is_empty() || names.contains(&k.name))
        .collect())
}

/// `$XDG_CACHE_HOME/orphanage`, else `~/.cache/orphanage`.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

pub fn cache_dir_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    let base = match (xdg, home) {
        // The spec ignores a relative XDG_CACHE_HOME.
        (Some(x), _) if x.is_absolute() => x,
        (_, Some(h)) => h.join(".cache"),
        _ => std::env::temp_dir(),
    };
    base.join("orphanage")
}

/// Where a package's kernel lives in the cache.
pub fn package_dir(cache: &Path, package: &str) -> PathBuf {
    cache.join("kernels").join(package)
}

impl Kernel {
    /// The image to boot: the given path, or from the cache the unpacked
    /// vmlinux when fetch could make one (it starts much faster under TCG),
    /// else the package's vmlinuz, or the bzImage a build made. None when
    /// the package is not fetched (or the kernel not built) yet, and for the
    /// host, which boots nothing.
    pub fn image(&self, cache: &Path) -> Option<PathBuf> {
        match &self.source {
            Source::Host => None,
            Source::Path(p) => Some(p.clone()),
            Source::Build { key, .. } => {
                let image = crate::kernel_build::build_dir(cache, &self.name, key)
                    .join(crate::kernel_build::IMAGE);
                image.is_file().then_some(image)
            }
            Source::Package { package, .. } => {
                let dir = package_dir(cache, package);
                ["vmlinux", "vmlinuz"]
                    .iter()
                    .map(|f| dir.join(f))
                    .find(|p| p.is_file())
            }
        }
    }
}

/// The first archive URI of the system's Debian sources, deb822
/// (`debian.sources`) or one-line (`sources.list`) format, skipping the
/// security archive (it carries no older suites).
pub fn mirror_from_sources(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        if let (Some(types), Some(uris), Some(suites)) =
            (field("Types:"), field("URIs:"), field("Suites:"))
        {
            let enabled = field("Enabled:").is_none_or(|v| v != "no");
            if enabled
                && types.split_whitespace().any(|t| t == "deb")
                && !suites.contains("-security")
            {
                return uris.split_whitespace().next().map(str::to_string);
            }
        }
    }
    for line in text.lines() {
        let mut words = line
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .skip_while(|w| w.ends_with(']'));
        if words.next() == Some("deb") {
            let uri = words.next()?;
            let suite = words.next().unwrap_or_default();
            if !suite.contains("-security") {
                return Some(uri.to_string());
            }
        }
    }
    None
}

/// The system keyring that signs every Debian suite, bullseye included.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A private sources list naming only the suites the matrix needs.
pub fn sources_list(mirror: &str, suites: &[String], keyring: &str) -> String {
    let mut suites = suites.to_vec();
    suites.sort();
    suites.dedup();
    suites
        .iter()
        .map(|s| format!("deb [signed-by={keyring}] {mirror} {s} main\n"))
        .collect()
}

/// apt-get options that keep everything in `dir`: its own sources list,
/// state and cache, no system source parts, no translations or AppStream data.
pub fn apt_options(dir: &Path) -> Vec<String> {
    let d = dir.display();
    [
        format!("Dir::Etc::SourceList={d}/sources.list"),
        "Dir::Etc::SourceParts=/dev/null".into(),
        format!("Dir::State={d}/state"),
        format!("Dir::Cache={d}/cache"),
        "Acquire::Languages=none".into(),
        "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
        "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false".into(),
        // The download lands in our own directory; apt's _apt user could not write there.
        "APT::Sandbox::User=root".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Bad input: exit 2.
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Failed(String),
}

/// The last few lines of a tool's stderr, for one-line errors.
fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn apt_get(dir: &Path, args: &[&str], cwd: &Path) -> Result<std::process::Output, FetchError> {
    Command::new("apt-get")
        .args(apt_options(dir))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| FetchError::BadInput(format!("cannot run apt-get: {e}")))
}

/// A private apt directory for `suites`: its sources list names them on the
/// first Debian mirror of the system's sources (so no archive's host name
/// is written anywhere in orphanage), with its own state and cache. Returns
/// the mirror.
pub fn prepare_private_apt(apt_dir: &Path, suites: &[String]) -> Result<String, FetchError> {
    let system = [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ];
    let mirror = system
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|t| mirror_from_sources(&t))
        .ok_or_else(|| {
            FetchError::BadInput(format!(
                "no Debian mirror found in {} to fetch from",
                system.join(" or ")
            ))
        })?;
    for sub in ["state/lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(apt_dir.join(sub))
            .map_err(|e| FetchError::Failed(format!("{}: {e}", apt_dir.display())))?;
    }
    std::fs::write(
        apt_dir.join("sources.list"),
        sources_list(&mirror, suites, KEYRING),
    )
    .map_err(|e| FetchError::Failed(format!("{}: {e}", apt_dir.display())))?;
    Ok(mirror)
}

/// `apt-get update` of a private apt directory's lists.
pub fn apt_update(apt_dir: &Path) -> Result<(), FetchError> {
    let update = apt_get(apt_dir, &["-q", "update"], apt_dir)?;
    if !update.status.success() {
        return Err(FetchError::Failed(format!(
            "apt-get update failed: {}",
            last_lines(&update.stderr, 3)
        )));
    }
    Ok(())
}

/// Why members could not be taken out of a .deb.
// The cause is part of the message: callers wrap it in a sentence of their own.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{program}: {error}")]
    Start {
        program: &'static str,
        error: std::io::Error,
    },
    /// tar ran and refused; its last words.
    #[error("{0}")]
    Tar(String),
}

/// Unpacks the members `tar_args` name from a .deb's data into `into`
/// (dpkg-deb's tar stream, through tar).
pub fn unpack_from_deb(deb: &Path, into: &Path, tar_args: &[&str]) -> Result<(), UnpackError> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| UnpackError::Start {
            program: "dpkg-deb",
            error,
        })?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(into)
        .args(tar_args)
        .stdin(dpkg.stdout.take().expect("piped"))
        .output()
        .map_err(|error| UnpackError::Start {
            program: "tar",
            error,
        });
    let _ = dpkg.wait();
    let tar = tar?;
    if !tar.status.success() {
        return Err(UnpackError::Tar(last_lines(&tar.stderr, 2)));
    }
    Ok(())
}

/// `apt-get download PACKAGE/SUITE` into `work`; returns the .deb. A package
/// the archive does not have is bad input.
pub fn download_deb(
    apt_dir: &Path,
    package: &str,
    suite: &str,
    work: &Path,
) -> Result<PathBuf, FetchError> {
    let failed = |what: String| FetchError::Failed(format!("{package}: {what}"));
    let download = apt_get(
        apt_dir,
        &["-q", "download", &format!("{package}/{suite}")],
        work,
    )?;
    if !download.status.success() {
        let why = last_lines(&download.stderr, 2);
        if why.contains("Unable to locate package")
            || why.contains("Couldn't find any package")
            || why.contains("was not found")
            || why.contains("Can't select")
            || why.contains("has no installation candidate")
        {
            return Err(FetchError::BadInput(format!(
                "{package}: the archive has no such package in {suite} ({why})"
            )));
        }
        return Err(failed(format!("apt-get download failed: {why}")));
    }
    std::fs::read_dir(work)
        .map_err(|e| failed(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| failed("apt-get download left no .deb".into()))
}

/// Downloads every package kernel not yet cached; returns (name, image) of all.
pub fn fetch(
    kernels: &[Kernel],
    cache: &Path,
    mut say: impl FnMut(&str),
) -> Result<Vec<(String, PathBuf)>, FetchError> {
    // An interrupted fetch leaves its work directory behind: clear those first.
    for stale in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        if stale.file_name().to_string_lossy().starts_with(".fetch-") {
            let _ = std::fs::remove_dir_all(stale.path());
        }
    }
    let missing: Vec<&Kernel> = kernels
        .iter()
        .filter(|k| k.image(cache).is_none())
        .collect();
    // A build's tools are checked before anything is downloaded.
    if let Some(k) = missing
        .iter()
        .find(|k| matches!(k.source, Source::Build { .. }))
    {
        crate::kernel_build::check_tools(&k.name).map_err(from_build)?;
    }
    if !missing.is_empty() {
        let suites: Vec<String> = missing
            .iter()
            .filter_map(|k| match &k.source {
                Source::Package { suite, .. } | Source::Build { suite, .. } => Some(suite.clone()),
                Source::Path(_) | Source::Host => None,
            })
            .collect();
        let apt_dir = cache.join("apt");
        let mirror = prepare_private_apt(&apt_dir, &suites)?;
        say(&format!(
            "updating the package lists of {} from {mirror}",
            suites.join(", ")
        ));
        apt_update(&apt_dir)?;
        for k in &missing {
            match &k.source {
                Source::Package { package, suite } => {
                    say(&format!("downloading {package} from {suite}"));
                    fetch_one(&apt_dir, cache, package, suite)?;
                }
                Source::Build {
                    package,
                    suite,
                    fragment,
                    key,
                } => {
                    say(&format!(
                        "{}: downloading {package} from {suite}, to build with {}",
                        k.name,
                        fragment.display()
                    ));
                    build_one(&apt_dir, cache, k, package, suite, fragment, key, &mut say)?;
                }
                Source::Path(_) | Source::Host => {}
            }
        }
    }
    kernels
        .iter()
        .filter(|k| k.source != Source::Host)
        .map(|k| match k.image(cache) {
            Some(p) => Ok((k.name.clone(), p)),
            None => Err(FetchError::Failed(format!(
                "{}: no image after fetching",
                k.name
            ))),
        })
        .collect()
}

/// A build that cannot start for want of tools is bad input (exit 2), as a
/// missing apt-get is; one that fails is a failure.
fn from_build(e: crate::kernel_build::BuildError) -> FetchError {
    match e {
        crate::kernel_build::BuildError::MissingPackages { .. } => {
            FetchError::BadInput(e.to_string())
        }
        _ => FetchError::Failed(e.to_string()),
    }
}

/// Downloads a kernel source package, takes its tarball out and builds it
/// (`kernel_build::build`) in a work directory of the cache, which goes
/// afterwards, Ctrl-C included. The build's log is kept beside the image
/// (`build.log`), or after a failure where the error says.
#[allow(clippy::too_many_arguments)]
fn build_one(
    apt_dir: &Path,
    cache: &Path,
    kernel: &Kernel,
    package: &str,
    suite: &str,
    fragment: &Path,
    key: &str,
    say: &mut dyn FnMut(&str),
) -> Result<(), FetchError> {
    let failed = |what: String| FetchError::Failed(format!("{}: {what}", kernel.name));
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)
        .map_err(|e| failed(format!("{}: {e}", cache.display())))?;
    crate::live::remove_on_interrupt(work.path().to_path_buf());
    let built = (|| {
        let deb = download_deb(apt_dir, package, suite, work.path())?;
        let members = crate::kernel_build::tarball_members(package);
        unpack_from_deb(&deb, work.path(), &members.each_ref().map(String::as_str))
            .map_err(|why| failed(format!("no usr/src/{package}.tar.* in the package ({why})")))?;
        let _ = std::fs::remove_file(&deb);
        let tarball = std::fs::read_dir(work.path().join("usr/src"))
            .map_err(|e| failed(e.to_string()))?
            .flatten()
            .map(|e| e.path())
            .next()
            .ok_or_else(|| failed(format!("no usr/src/{package}.tar.* in the package")))?;
        let into = crate::kernel_build::build_dir(cache, &kernel.name, key);
        let spec = crate::kernel_build::BuildSpec {
            kernel: &kernel.name,
            tarball: &tarball,
            fragment,
            work: work.path(),
            into: &into,
            failed_log: &crate::kernel_build::failed_build_log(cache, &kernel.name, key),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        crate::kernel_build::build(&spec, |m| say(m)).map_err(from_build)
    })();
    crate::live::remove_now(work.path());
    built
}

fn fetch_one(apt_dir: &Path, cache: &Path, package: &str, suite: &str) -> Result<(), FetchError> {
    let failed = |what: String| FetchError::Failed(format!("{package}: {what}"));
    let dir = package_dir(cache, package);
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)
        .map_err(|e| failed(format!("{}: {e}", cache.display())))?;
    let deb = download_deb(apt_dir, package, suite, work.path())?;
    // Only the kernel image is taken out of the package (not its modules).
    unpack_from_deb(&deb, work.path(), &["--wildcards", "./boot/vmlinuz-*"])
        .map_err(|why| failed(format!("no boot/vmlinuz-* in the package ({why})")))?;
    let image = std::fs::read_dir(work.path().join("boot"))
        .map_err(|e| failed(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .next()
        .ok_or_else(|| failed("no boot/vmlinuz-* in the package".into()))?;
    std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
    // vmlinux first: a cache with vmlinuz but no vmlinux is complete too.
    if let Err(why) = crate::targets::vm::extract_vmlinux(&image, &dir.join("vmlinux")) {
        eprintln!("orphanage: {why}; the compressed image will be booted");
    }
    std::fs::rename(&image, dir.join("vmlinuz")).map_err(|e| failed(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DEB822: &str = "Types: deb\n# a snapshot\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";

    #[rstest]
    #[case::deb822(DEB822, Some("http://mirror.example/debian"))]
    #[case::security_first(
        "Types: deb\nURIs: http://s.example/sec\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://m.example/d\nSuites: bookworm\n",
        Some("http://m.example/d")
    )]
    #[case::disabled(
        "Enabled: no\nTypes: deb\nURIs: http://off.example\nSuites: bookworm\n",
        None
    )]
    #[case::one_line(
        "# comment\ndeb http://s.example/sec bookworm-security main\ndeb [arch=amd64] http://m.example/d bookworm main\n",
        Some("http://m.example/d")
    )]
    #[case::source_only("deb-src http://m.example/d bookworm main\n", None)]
    fn the_mirror_is_read_from_the_system_sources(
        #[case] text: &str,
        #[case] mirror: Option<&str>,
    ) {
        assert_eq!(mirror_from_sources(text).as_deref(), mirror);
    }

    #[test]
    fn the_private_list_names_each_suite_once_with_the_keyring() {
        let suites = ["bookworm", "bullseye", "bookworm"].map(String::from);
        assert_eq!(
            sources_list("http://m.example/d", &suites, KEYRING),
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/d bookworm main\n\
             deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/d bullseye main\n"
        );
    }

    #[test]
    fn apt_state_stays_private() {
        let opts = apt_options(Path::new("/c/apt"));
        let values: Vec<&String> = opts.iter().skip(1).step_by(2).collect();
        assert!(opts.iter().step_by(2).all(|o| o == "-o"));
        for want in [
            "Dir::Etc::SourceList=/c/apt/sources.list",
            "Dir::Etc::SourceParts=/dev/null",
            "Dir::State=/c/apt/state",
            "Dir::Cache=/c/apt/cache",
        ] {
            assert!(values.iter().any(|v| *v == want), "{want}");
        }
    }

    #[rstest]
    #[case(Some("/x/cache"), Some("/home/u"), "/x/cache/orphanage")]
    #[case(Some("relative"), Some("/home/u"), "/home/u/.cache/orphanage")]
    #[case(None, Some("/home/u"), "/home/u/.cache/orphanage")]
    fn the_cache_follows_xdg(
        #[case] xdg: Option<&str>,
        #[case] home: Option<&str>,
        #[case] want: &str,
    ) {
        assert_eq!(
            cache_dir_from(xdg.map(PathBuf::from), home.map(PathBuf::from)),
            PathBuf::from(want)
        );
    }

    #[test]
    fn the_fixture_matrix_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kernels.yaml");
        let kernels = load(&path).unwrap();
        let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["5.10", "6.1", "6.12", "tiny-6.1", "host"]);
        for k in &kernels[..3] {
            assert!(matches!(k.source, Source::Package { .. }), "{k:?}");
        }
        assert!(
            matches!(&kernels[3].source, Source::Build { package, fragment, .. }
                if package == "linux-source-6.1" && fragment.ends_with("kernels/tiny-6.1.config")),
            "{:?}",
            kernels[3]
        );
        assert_eq!(
            kernels[3].results,
            crate::targets::vm::ResultsPort::VirtioConsole
        );
        assert_eq!(kernels[4].source, Source::Host);
    }

    #[rstest]
    #[case::unknown_key(
        "kernels:\n  - name: a\n    path: k\n    colour: red\n",
        "m.yaml:4:5: kernels[0]: unknown field `colour`, expected one of `name`, `package`, `suite`, `path`, `host`, `build`, `qemu_args`, `results`, `cmdline`"
    )]
    #[case::both(
        "kernels:\n  - name: a\n    path: k\n    package: p\n    suite: s\n",
        "m.yaml:3:5: kernels[0] (a): give either package or path, not both"
    )]
    #[case::no_suite(
        "kernels:\n  - name: a\n    package: p\n",
        "m.yaml:3:5: kernels[0] (a): a package needs the suite it comes from"
    )]
    #[case::host_with_path(
        "kernels:\n  - {name: h, host: true, path: k}\n",
        "m.yaml:2:27: kernels[0] (h): host runs on the running kernel: no package, suite, path or build"
    )]
    #[case::neither(
        "# the matrix\nkernels:\n  - name: a\n  - name: b\n    cmdline: x\n",
        "m.yaml:3:3: kernels[0] (a): give either package (with suite), path, or host: true"
    )]
    #[case::twice(
        "kernels:\n  - {name: a, path: k}\n  - {name: a, path: j}\n",
        "m.yaml:3:6: kernels[1] (a): the name is used twice"
    )]
    #[case::duplicate_key(
        "kernels:\n  - name: a\n    path: k\n    name: b\n",
        "m.yaml:4:5: kernels[0]: duplicate key `name`: a key may appear once in a mapping"
    )]
    #[case::bad_type(
        "kernels:\n  - name: a\n    host: 1\n",
        "m.yaml:3:11: kernels[0].host: expected true or false, found 1"
    )]
    #[case::build_from_a_path(
        "kernels:\n  - name: t\n    path: k\n    build: t.config\n",
        "m.yaml:3:5: kernels[0] (t): build takes its source from package (with suite), not from path"
    )]
    #[case::build_without_a_source(
        "kernels:\n  - name: t\n    build: t.config\n",
        "m.yaml:3:5: kernels[0] (t): build needs the kernel source package to build from (package, with suite)"
    )]
    #[case::host_with_build(
        "kernels:\n  - {name: h, host: true, build: t.config}\n",
        "m.yaml:2:27: kernels[0] (h): host runs on the running kernel: no package, suite, path or build"
    )]
    #[case::fragment_missing(
        "kernels:\n  - name: t\n    package: linux-source-6.1\n    suite: bookworm\n    build: no-such.config\n",
        "m.yaml:5:5: kernels[0] (t): cannot read the config fragment no-such.config: No such file or directory (os error 2)"
    )]
    #[case::empty("# none\nkernels: []\n", "m.yaml:2:1: the file names no kernel")]
    #[case::top_level(
        "kernel: []\n",
        "m.yaml:1:1: unknown field `kernel`, expected `kernels`"
    )]
    fn bad_matrix_files_give_one_line_at_the_key_to_fix(#[case] text: &str, #[case] line: &str) {
        let e = parse(Path::new("m.yaml"), text).unwrap_err().to_string();
        assert_eq!(e, line);
    }

    #[test]
    fn paths_are_relative_to_the_file_and_carry_their_extras() {
        let text = "kernels:\n  - name: aster\n    path: img/aster.bin\n    qemu_args: [-machine, q35]\n    cmdline: init=/init\n";
        let k = &parse(Path::new("/m/kernels.yaml"), text).unwrap()[0];
        assert_eq!(k.source, Source::Path("/m/img/aster.bin".into()));
        assert_eq!(k.qemu_args, ["-machine", "q35"]);
        assert_eq!(k.cmdline, "init=/init");
    }

    #[test]
    fn a_build_is_keyed_by_its_fragment_and_found_in_the_cache_once_built() {
        let dir = tempfile::tempdir().unwrap();
        let fragment = dir.path().join("tiny.config");
        std::fs::write(&fragment, "CONFIG_64BIT=y\n").unwrap();
        let text = "kernels:\n  - name: tiny\n    package: linux-source-6.1\n    suite: bookworm\n    build: tiny.config\n    results: hvc0\n";
        let file = dir.path().join("kernels.yaml");
        let k = parse(&file, text).unwrap().remove(0);
        let key =
            crate::kernel_build::build_key("linux-source-6.1", "bookworm", b"CONFIG_64BIT=y\n");
        assert_eq!(
            k.source,
            Source::Build {
                package: "linux-source-6.1".into(),
                suite: "bookworm".into(),
                fragment: fragment.clone(),
                key: key.clone(),
            }
        );
        assert_eq!(k.results, crate::targets::vm::ResultsPort::VirtioConsole);
        let cache = dir.path().join("cache");
        assert_eq!(k.image(&cache), None, "not built yet");
        let built = crate::kernel_build::build_dir(&cache, "tiny", &key);
        std::fs::create_dir_all(&built).unwrap();
        std::fs::write(built.join("bzImage"), "").unwrap();
        assert_eq!(k.image(&cache), Some(built.join("bzImage")));
        // Another fragment is another kernel: built anew, not the cached one.
        std::fs::write(&fragment, "CONFIG_64BIT=y\nCONFIG_SMP=y\n").unwrap();
        assert_eq!(parse(&file, text).unwrap()[0].image(&cache), None);
    }

    #[test]
    fn selecting_an_unknown_kernel_is_an_error() {
        let kernels = parse(Path::new("m.yaml"), "kernels:\n  - {name: a, path: k}\n").unwrap();
        assert!(select(Path::new("m.yaml"), kernels.clone(), &["b".into()]).is_err());
        assert_eq!(
            select(Path::new("m.yaml"), kernels, &["a".into()])
                .unwrap()
                .len(),
            1
        );
    }
}
