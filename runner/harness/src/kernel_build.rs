//! Building a kernel from a Debian source package (`build:` in a kernels
//! file): `make tinyconfig`, the entry's config fragment merged on top by the
//! tree's own `scripts/kconfig/merge_config.sh`, `make olddefconfig`, then
//! `make bzImage`. The source and the objects stay in a work directory of
//! the cache, removed afterwards; only the image and its `.config` are kept,
//! under `kernels/<name>-<key>/`, so a second fetch finds them and builds
//! nothing. The key changes with the fragment and the source package.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The programs a build runs, with the Debian package that has each.
/// Found by tracing every execve of a whole fetch and build of
/// linux-source-6.1's tinyconfig with the fragment (strace -f): gcc brings
/// cpp and binutils, bison brings m4, and the rest it ran (sh, sed, awk,
/// grep, tar, dpkg-deb, apt-get ...) are in packages every Debian system
/// has. It also asks for pkg-config and git, and does without them.
pub const BUILD_PROGRAMS: &[(&str, &str)] = &[
    ("make", "make"),
    ("gcc", "gcc"),
    // kconfig's lexer and parser.
    ("flex", "flex"),
    ("bison", "bison"),
    // kernel/time/timeconst.bc.
    ("bc", "bc"),
    // The source tarball is .tar.xz.
    ("xz", "xz-utils"),
];

/// The headers a build compiles against, with the package that has each.
pub const BUILD_HEADERS: &[(&str, &str)] = &[
    // The host programs: kconfig, fixdep, the boot tools.
    ("/usr/include/stdio.h", "libc6-dev"),
    // objtool, which every x86-64 kernel of 6.1 builds and runs.
    ("/usr/include/gelf.h", "libelf-dev"),
];

/// The Debian packages whose programs or headers are missing, each once, in
/// the tables' order.
pub fn missing_packages(
    has_program: impl Fn(&str) -> bool,
    has_file: impl Fn(&Path) -> bool,
) -> Vec<&'static str> {
    let programs = BUILD_PROGRAMS
        .iter()
        .filter(|(program, _)| !has_program(program));
    let headers = BUILD_HEADERS
        .iter()
        .filter(|(header, _)| !has_file(Path::new(header)));
    let mut packages: Vec<&'static str> = vec![];
    for (_, package) in programs.chain(headers) {
        if !packages.contains(package) {
            packages.push(package);
        }
    }
    packages
}

/// Where a built kernel lives in the cache: named after its entry, keyed by
/// what it is built from.
pub fn build_dir(cache: &Path, name: &str, key: &str) -> PathBuf {
    cache.join("kernels").join(format!("{name}-{key}"))
}

/// Where a failed build leaves its log: beside the directory it would have made.
pub fn failed_build_log(cache: &Path, name: &str, key: &str) -> PathBuf {
    cache.join("kernels").join(format!("{name}-{key}.log"))
}

/// The image a build leaves in its directory.
pub const IMAGE: &str = "bzImage";

/// The key of a build: a CRC-32 of the source package, its suite and the
/// fragment's bytes. Not a security measure: a name that changes when the input does.
pub fn build_key(package: &str, suite: &str, fragment: &[u8]) -> String {
    let mut hasher = crc32fast::Hasher::new();
    for part in [package.as_bytes(), b"\n", suite.as_bytes(), b"\n", fragment] {
        hasher.update(part);
    }
    format!("{:08x}", hasher.finalize())
}

/// tar arguments that take the source tarball (`usr/src/PACKAGE.tar.*`) out
/// of the source package's data.
pub fn tarball_members(package: &str) -> [String; 2] {
    ["--wildcards".into(), format!("./usr/src/{package}.tar.*")]
}

/// `tar -xf TARBALL -C INTO` (tar picks the decompressor by the name).
pub fn untar_argv(tarball: &Path, into: &Path) -> Vec<OsString> {
    vec![
        "-xf".into(),
        tarball.as_os_str().to_owned(),
        "-C".into(),
        into.as_os_str().to_owned(),
    ]
}

/// `nice -n 10 make -C SRC O=OUT -jJOBS TARGET`, quiet unless it fails:
/// the build shares the machine, so it yields to whatever else runs.
pub fn make_argv(src: &Path, out: &Path, jobs: usize, target: &str) -> Vec<OsString> {
    let mut o = OsString::from("O=");
    o.push(out);
    vec![
        "-n".into(),
        "10".into(),
        "make".into(),
        "-s".into(),
        "-C".into(),
        src.as_os_str().to_owned(),
        o,
        format!("-j{}", jobs.max(1)).into(),
        target.into(),
    ]
}

/// The tree's merge_config.sh, merging `fragment` into OUT/.config without
/// running make itself (`-m`): olddefconfig follows.
pub fn merge_config_argv(src: &Path, out: &Path, fragment: &Path) -> (PathBuf, Vec<OsString>) {
    (
        src.join("scripts/kconfig/merge_config.sh"),
        vec![
            "-m".into(),
            "-O".into(),
            out.as_os_str().to_owned(),
            out.join(".config").into_os_string(),
            fragment.as_os_str().to_owned(),
        ],
    )
}

/// One setting of a config fragment or a .config: `CONFIG_X=v`, or
/// `# CONFIG_X is not set` (None).
fn setting(line: &str) -> Option<(&str, Option<&str>)> {
    let line = line.trim();
    if let Some(name) = line
        .strip_prefix("# ")
        .and_then(|l| l.strip_suffix(" is not set"))
    {
        return name.starts_with("CONFIG_").then_some((name, None));
    }
    let (name, value) = line.split_once('=')?;
    // A fragment may say `=n`, which Kconfig writes as `is not set`.
    (name.starts_with("CONFIG_") && !name.contains(' '))
        .then_some((name, Some(value).filter(|v| *v != "n")))
}

/// The fragment's settings that the final .config does not have, each as the
/// fragment wrote it with what the .config has instead: Kconfig drops a
/// setting whose dependencies are unmet without a word (merge_config.sh only
/// warns), so the build checks that every one stuck. A `not set` is kept
/// when the .config does not set the option at all.
pub fn settings_not_kept(fragment: &str, config: &str) -> Vec<String> {
    let have: std::collections::BTreeMap<&str, Option<&str>> =
        config.lines().filter_map(setting).collect();
    fragment
        .lines()
        .filter_map(setting)
        .filter_map(|(name, want)| {
            let got = have.get(name).copied().flatten();
            (got != want).then(|| {
                let asked = match want {
                    Some(v) => format!("{name}={v}"),
                    None => format!("{name} unset"),
                };
                match got {
                    Some(v) => format!("{asked} (the .config has {v})"),
                    None => format!("{asked} (the .config leaves it unset)"),
                }
            })
        })
        .collect()
}

/// What a failed step's output says was wrong: its first line that reads
/// like a cause (a compiler's `error:`, a shell's `not found`), else its last
/// non-empty line; make's own `*** ... Error N` lines only repeat that a step failed.
pub fn cause_in_log(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| {
            !l.contains("***")
                && (l.contains("error:")
                    || l.contains("not found")
                    || l.contains("No such file or directory"))
        })
        .or(lines.iter().rev().find(|l| !l.contains("***")))
        .or(lines.last())
        .map_or_else(String::new, |l| l.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "kernel {kernel} is built from source, which needs Debian packages this machine lacks: apt-get install {}",
        .packages.join(" ")
    )]
    MissingPackages {
        kernel: String,
        packages: Vec<&'static str>,
    },
    #[error("kernel {kernel}: {step} failed: {cause} (the whole log: {})", .log.display())]
    Step {
        kernel: String,
        step: String,
        cause: String,
        log: PathBuf,
    },
    #[error("kernel {kernel}: the config fragment {} asks for what Kconfig did not keep: {}", .fragment.display(), .settings.join("; "))]
    NotKept {
        kernel: String,
        fragment: PathBuf,
        settings: Vec<String>,
    },
    #[error("kernel {kernel}: {what}: {error}")]
    Io {
        kernel: String,
        what: String,
        error: std::io::Error,
    },
}

/// What one build needs.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    pub kernel: &'a str,
    /// The source tarball, e.g. usr/src/linux-source-6.1.tar.xz.
    pub tarball: &'a Path,
    pub fragment: &'a Path,
    /// A directory of its own, removed by the caller afterwards.
    pub work: &'a Path,
    /// Where the image and its .config go (created here, once built).
    pub into: &'a Path,
    /// Where the steps' output (kept in the work directory, and in `into`
    /// as build.log once built) is copied when a step fails, for the error to name.
    pub failed_log: &'a Path,
    pub jobs: usize,
}

/// The programs and headers a build needs are there, or one error naming
/// the Debian packages that have what is missing.
pub fn check_tools(kernel: &str) -> Result<(), BuildError> {
    let missing = missing_packages(on_path, |f| f.is_file());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BuildError::MissingPackages {
            kernel: kernel.to_string(),
            packages: missing,
        })
    }
}

/// An executable file `program` in a directory of PATH.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Checks the build tools, then unpacks and builds; `say` hears each step.
pub fn build(spec: &BuildSpec, say: impl FnMut(&str)) -> Result<(), BuildError> {
    check_tools(spec.kernel)?;
    let log = spec.work.join("build.log");
    match build_steps(spec, &log, say) {
        // The work directory goes, but the log of a failed step stays where
        // the error says. After Ctrl-C nothing stays.
        Err(BuildError::Step {
            kernel,
            step,
            cause,
            ..
        }) if !crate::live::interrupted() => {
            let kept = spec
                .failed_log
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::copy(&log, spec.failed_log));
            Err(BuildError::Step {
                kernel,
                step,
                cause,
                log: match kept {
                    Ok(_) => spec.failed_log.to_path_buf(),
                    Err(_) => log,
                },
            })
        }
        Ok(()) => {
            // An earlier attempt's failure is history now.
            let _ = std::fs::remove_file(spec.failed_log);
            Ok(())
        }
        other => other,
    }
}

fn build_steps(spec: &BuildSpec, log: &Path, mut say: impl FnMut(&str)) -> Result<(), BuildError> {
    let kernel = spec.kernel.to_string();
    let io = |what: String| {
        let kernel = kernel.clone();
        move |error| BuildError::Io {
            kernel,
            what,
            error,
        }
    };
    let log = log.to_path_buf();
    let src_parent = spec.work.join("src");
    std::fs::create_dir_all(&src_parent).map_err(io(src_parent.display().to_string()))?;
    say(&format!(
        "{}: unpacking {}",
        spec.kernel,
        spec.tarball.display()
    ));
    run_step(
        spec,
        "tar",
        &untar_argv(spec.tarball, &src_parent),
        "unpacking the source",
        &log,
    )?;
    // The tarball holds one directory, the tree.
    let src = std::fs::read_dir(&src_parent)
        .map_err(io(src_parent.display().to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or_else(|| BuildError::Step {
            kernel: kernel.clone(),
            step: "unpacking the source".into(),
            cause: format!("{} holds no directory", spec.tarball.display()),
            log: log.clone(),
        })?;
    let _ = std::fs::remove_file(spec.tarball);
    let out = spec.work.join("out");
    std::fs::create_dir_all(&out).map_err(io(out.display().to_string()))?;
    say(&format!(
        "{}: make tinyconfig, then {} merged on top",
        spec.kernel,
        spec.fragment.display()
    ));
    run_step(
        spec,
        "nice",
        &make_argv(&src, &out, 1, "tinyconfig"),
        "make tinyconfig",
        &log,
    )?;
    // The fragment is read once and merged from a copy: the steps run in
    // the work directory, and what is built is what was read.
    let fragment =
        std::fs::read_to_string(spec.fragment).map_err(io(spec.fragment.display().to_string()))?;
    let copy = spec.work.join("fragment.config");
    std::fs::write(&copy, &fragment).map_err(io(copy.display().to_string()))?;
    let (merge, merge_args) = merge_config_argv(&src, &out, &copy);
    run_step(
        spec,
        &merge.to_string_lossy(),
        &merge_args,
        "merge_config.sh",
        &log,
    )?;
    run_step(
        spec,
        "nice",
        &make_argv(&src, &out, 1, "olddefconfig"),
        "make olddefconfig",
        &log,
    )?;
    let config_path = out.join(".config");
    let config =
        std::fs::read_to_string(&config_path).map_err(io(config_path.display().to_string()))?;
    let not_kept = settings_not_kept(&fragment, &config);
    if !not_kept.is_empty() {
        return Err(BuildError::NotKept {
            kernel,
            fragment: spec.fragment.to_path_buf(),
            settings: not_kept,
        });
    }
    say(&format!(
        "{}: make bzImage with {} job(s) (several minutes)",
        spec.kernel, spec.jobs
    ));
    run_step(
        spec,
        "nice",
        &make_argv(&src, &out, spec.jobs, "bzImage"),
        "make bzImage",
        &log,
    )?;
    install_build(
        spec.kernel,
        &[
            (out.join("arch/x86/boot/bzImage"), IMAGE),
            (config_path, "config"),
            (log, "build.log"),
        ],
        &spec.work.join("image"),
        spec.into,
    )
}

/// Puts a finished build's files, each `(path, name)`, in `into`, which
/// appears whole or not at all: they are gathered in `staged` (on the same
/// filesystem) and renamed into place, its parents made as needed (a fresh
/// cache has no kernels/ yet). What an unfinished `into` held (an image
/// deleted by hand, say) goes first.
fn install_build(
    kernel: &str,
    files: &[(PathBuf, &str)],
    staged: &Path,
    into: &Path,
) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let (kernel, what) = (kernel.to_string(), path.display().to_string());
        move |error| BuildError::Io {
            kernel,
            what,
            error,
        }
    };
    std::fs::create_dir_all(staged).map_err(io(staged))?;
    for (from, name) in files {
        std::fs::copy(from, staged.join(name)).map_err(io(from))?;
    }
    if let Some(parent) = into.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(io(into))?;
    }
    std::fs::rename(staged, into).map_err(io(into))
}

/// Runs one step with its output appended to `log`, in a process group of
/// its own that an interrupt kills whole (make's compilers with it).
fn run_step(
    spec: &BuildSpec,
    program: &str,
    args: &[OsString],
    step: &str,
    log: &Path,
) -> Result<(), BuildError> {
    let failed = |cause: String| BuildError::Step {
        kernel: spec.kernel.to_string(),
        step: step.to_string(),
        cause,
        log: log.to_path_buf(),
    };
    let before = std::fs::metadata(log).map_or(0, |m| m.len());
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| failed(format!("{}: {e}", log.display())))?;
    let errors = output
        .try_clone()
        .map_err(|e| failed(format!("{}: {e}", log.display())))?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(spec.work)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    let Some(registration) = crate::live::register(crate::live::Tree {
        agent: child.id() as i32,
        caller_namespace: true,
        spawned: vec![],
        container: None,
    }) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("interrupted".into()));
    };
    let exit = registration.reap_root(None);
    drop(registration);
    let status = exit.map(|e| e.status);
    if status == Some(orphanage_scenario::WaitStatus::Exited(0)) {
        return Ok(());
    }
    let text = std::fs::read(log).unwrap_or_default();
    let this_step = String::from_utf8_lossy(&text[(before as usize).min(text.len())..]);
    let cause = match status {
        // Killed (by an interrupt, or the OOM killer): the log only stops.
        Some(orphanage_scenario::WaitStatus::Killed { signal, .. }) => {
            format!("killed by {}", orphanage_scenario::signal_name(signal))
        }
        _ => cause_in_log(&this_step),
    };
    Err(failed(cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn make_runs_niced_out_of_tree_with_the_jobs() {
        let argv = strings(&make_argv(
            Path::new("/w/src/linux"),
            Path::new("/w/out"),
            2,
            "bzImage",
        ));
        assert_eq!(
            argv,
            [
                "-n",
                "10",
                "make",
                "-s",
                "-C",
                "/w/src/linux",
                "O=/w/out",
                "-j2",
                "bzImage"
            ]
        );
        assert!(strings(&make_argv(Path::new("s"), Path::new("o"), 0, "x")).contains(&"-j1".into()));
    }

    #[test]
    fn the_fragment_is_merged_into_the_out_of_tree_config_by_the_trees_script() {
        let (program, args) = merge_config_argv(
            Path::new("/w/src/linux"),
            Path::new("/w/out"),
            Path::new("/r/tiny.config"),
        );
        assert_eq!(
            program,
            Path::new("/w/src/linux/scripts/kconfig/merge_config.sh")
        );
        assert_eq!(
            strings(&args),
            ["-m", "-O", "/w/out", "/w/out/.config", "/r/tiny.config"]
        );
    }

    #[test]
    fn the_tarball_comes_out_of_the_source_package_and_is_unpacked_by_name() {
        assert_eq!(
            tarball_members("linux-source-6.1"),
            ["--wildcards", "./usr/src/linux-source-6.1.tar.*"]
        );
        assert_eq!(
            strings(&untar_argv(
                Path::new("/w/usr/src/l.tar.xz"),
                Path::new("/w/src")
            )),
            ["-xf", "/w/usr/src/l.tar.xz", "-C", "/w/src"]
        );
    }

    #[test]
    fn the_key_follows_the_fragment_and_the_source() {
        let key = build_key("linux-source-6.1", "bookworm", b"CONFIG_64BIT=y\n");
        assert_eq!(key.len(), 8);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            key,
            build_key("linux-source-6.1", "bookworm", b"CONFIG_64BIT=y\n")
        );
        for other in [
            build_key(
                "linux-source-6.1",
                "bookworm",
                b"CONFIG_64BIT=y\nCONFIG_SMP=y\n",
            ),
            build_key("linux-source-6.12", "bookworm", b"CONFIG_64BIT=y\n"),
            build_key("linux-source-6.1", "trixie", b"CONFIG_64BIT=y\n"),
        ] {
            assert_ne!(key, other);
        }
        assert_eq!(
            build_dir(Path::new("/c"), "tiny-6.1", &key),
            PathBuf::from(format!("/c/kernels/tiny-6.1-{key}"))
        );
        assert_eq!(
            failed_build_log(Path::new("/c"), "tiny-6.1", &key),
            PathBuf::from(format!("/c/kernels/tiny-6.1-{key}.log"))
        );
    }

    #[test]
    fn a_build_lands_whole_in_a_fresh_cache_and_replaces_an_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("bzImage"), "image").unwrap();
        std::fs::write(work.join(".config"), "CONFIG_64BIT=y\n").unwrap();
        let files = [
            (work.join("bzImage"), IMAGE),
            (work.join(".config"), "config"),
        ];
        // No kernels/ yet, as in a cache that never fetched anything.
        let into = build_dir(&dir.path().join("cache"), "tiny", "0123abcd");
        install_build("tiny", &files, &work.join("image"), &into).unwrap();
        assert_eq!(std::fs::read_to_string(into.join(IMAGE)).unwrap(), "image");
        assert_eq!(
            std::fs::read_to_string(into.join("config")).unwrap(),
            "CONFIG_64BIT=y\n"
        );
        assert!(!work.join("image").exists());
        // An unfinished directory (its image deleted) is replaced, not merged.
        std::fs::remove_file(into.join(IMAGE)).unwrap();
        std::fs::write(into.join("stale"), "").unwrap();
        install_build("tiny", &files, &work.join("image"), &into).unwrap();
        assert!(into.join(IMAGE).is_file() && !into.join("stale").exists());
        // A file that is not there is named.
        let e = install_build(
            "tiny",
            &[(work.join("vmlinux"), "vmlinux")],
            &work.join("image2"),
            &into,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("kernel tiny: ") && e.contains("vmlinux: No such file"),
            "{e}"
        );
    }

    #[rstest]
    #[case::all_there(&[], &[], &[])]
    #[case::kconfig_tools(&["flex", "bison"], &[], &["flex", "bison"])]
    #[case::objtools_headers(&[], &["/usr/include/gelf.h"], &["libelf-dev"])]
    #[case::nothing_at_all(
        &["make", "gcc", "flex", "bison", "bc", "xz"],
        &["/usr/include/stdio.h", "/usr/include/gelf.h"],
        &["make", "gcc", "flex", "bison", "bc", "xz-utils", "libc6-dev", "libelf-dev"]
    )]
    fn missing_tools_are_named_by_their_debian_packages(
        #[case] no_programs: &[&str],
        #[case] no_files: &[&str],
        #[case] packages: &[&str],
    ) {
        let missing = missing_packages(
            |p| !no_programs.contains(&p),
            |f| !no_files.iter().any(|n| Path::new(n) == f),
        );
        assert_eq!(missing, packages);
    }

    #[test]
    fn the_missing_packages_are_one_line_an_apt_get_away() {
        let e = BuildError::MissingPackages {
            kernel: "tiny-6.1".into(),
            packages: vec!["flex", "bison"],
        };
        assert_eq!(
            e.to_string(),
            "kernel tiny-6.1 is built from source, which needs Debian packages this machine lacks: apt-get install flex bison"
        );
    }

    const CONFIG: &str = "#\n# Automatically generated file; DO NOT EDIT.\nCONFIG_64BIT=y\nCONFIG_VIRTIO_CONSOLE=y\n# CONFIG_PID_NS is not set\nCONFIG_HZ=100\n";

    #[rstest]
    #[case::all_kept("CONFIG_64BIT=y\n# CONFIG_PID_NS is not set\n", &[])]
    #[case::unset_by_absence("# CONFIG_MODULES is not set\n", &[])]
    #[case::comments_and_blanks("# why: the agent is static\n\nCONFIG_64BIT=y\n", &[])]
    #[case::dropped(
        "CONFIG_VIRTIO_PCI=y\n",
        &["CONFIG_VIRTIO_PCI=y (the .config leaves it unset)"]
    )]
    #[case::set_though_unwanted(
        "# CONFIG_VIRTIO_CONSOLE is not set\n",
        &["CONFIG_VIRTIO_CONSOLE unset (the .config has y)"]
    )]
    #[case::other_value("CONFIG_HZ=250\n", &["CONFIG_HZ=250 (the .config has 100)"])]
    #[case::no_as_n("CONFIG_PID_NS=n\nCONFIG_MODULES=n\n", &[])]
    #[case::n_but_set("CONFIG_64BIT=n\n", &["CONFIG_64BIT unset (the .config has y)"])]
    fn every_setting_of_the_fragment_must_stick(#[case] fragment: &str, #[case] not_kept: &[&str]) {
        assert_eq!(settings_not_kept(fragment, CONFIG), not_kept);
    }

    #[rstest]
    #[case::compiler(
        "  CC      tools/objtool/elf.o\ntools/objtool/include/objtool/elf.h:10:10: fatal error: gelf.h: No such file or directory\ncompilation terminated.\nmake[5]: *** [Makefile.build:97: special.o] Error 1\nmake: *** [Makefile:250: __sub-make] Error 2\n",
        "tools/objtool/include/objtool/elf.h:10:10: fatal error: gelf.h: No such file or directory"
    )]
    #[case::shell("  LEX     scripts/kconfig/lexer.lex.c\n/bin/sh: 1: flex: not found\nmake[4]: *** [Makefile.host:9: lexer.lex.c] Error 127\n", "/bin/sh: 1: flex: not found")]
    #[case::otherwise_the_last_words("something odd\nmake: *** [x] Error 2\n", "something odd")]
    #[case::empty("", "")]
    fn a_failed_step_is_explained_by_its_cause_not_makes_summary(
        #[case] log: &str,
        #[case] cause: &str,
    ) {
        assert_eq!(cause_in_log(log), cause);
    }
}
