//! Shell completions and the man page, generated from the clap definitions
//! so they never drift from `--help`, and `orphanage install --prefix DIR`,
//! which puts them where shells and man look, beside a copy of orphanage.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "orphanage", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// orphanage(1), in roff.
pub fn man_page() -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    String::from_utf8_lossy(&out).into_owned()
}

/// What `install` writes under `prefix`, and the content of each file that
/// is generated (the binary is copied, so it has none).
pub fn install_plan(prefix: &Path) -> Vec<(PathBuf, Option<String>)> {
    let share = prefix.join("share");
    vec![
        (prefix.join("bin/orphanage"), None),
        (share.join("man/man1/orphanage.1"), Some(man_page())),
        (
            share.join("bash-completion/completions/orphanage"),
            Some(completion(Shell::Bash)),
        ),
        (
            share.join("zsh/site-functions/_orphanage"),
            Some(completion(Shell::Zsh)),
        ),
        (
            share.join("fish/vendor_completions.d/orphanage.fish"),
            Some(completion(Shell::Fish)),
        ),
    ]
}

/// Writes the plan: the running binary (it carries its agent inside) and
/// the generated files. Returns the paths written.
pub fn install(prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut written = Vec::new();
    for (path, content) in install_plan(prefix) {
        let dir = path.parent().expect("every planned path has a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        match content {
            Some(text) => std::fs::write(&path, text),
            None => {
                let exe = std::env::current_exe().context("cannot find the running orphanage")?;
                std::fs::copy(exe, &path).map(|_| ())
            }
        }
        .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_names_the_subcommands_and_flags() {
        let bash = completion(Shell::Bash);
        for word in [
            "explore",
            "kernels",
            "fetch",
            "completions",
            "man",
            "install",
            "--check",
            "--suites",
            "--runtime",
            "--runtime-arg",
            "--kernel",
            "--no-pid-namespace",
            "--exact",
            "--skip",
            "--list",
            "--test-threads",
        ] {
            assert!(bash.contains(word), "bash completion lacks {word}");
        }
        assert!(bash.contains("complete -F _orphanage"), "{bash}");
    }

    #[test]
    fn other_shells_complete_the_same_flags() {
        for shell in [Shell::Zsh, Shell::Fish] {
            let script = completion(shell);
            for word in ["check", "runtime-arg", "explore", "kernels"] {
                assert!(script.contains(word), "{shell}: lacks {word}");
            }
        }
    }

    #[test]
    fn the_man_page_has_name_synopsis_and_the_flags() {
        let man = man_page();
        assert!(man.starts_with(".ie"), "{}", &man[..80.min(man.len())]);
        assert!(man.contains(".TH orphanage 1"), "{man}");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH SUBCOMMANDS",
            ".SH VERSION",
        ] {
            assert!(man.contains(section), "man page lacks {section}");
        }
        assert!(
            man.contains("orphanage \\- Checks that a kernel manages processes"),
            "{man}"
        );
        // roff escapes dashes: \-\-check.
        for flag in [
            "check",
            "suites",
            "runtime\\-arg",
            "no\\-pid\\-namespace",
            "exact",
        ] {
            assert!(
                man.contains(&format!("\\-\\-{flag}")),
                "man page lacks --{flag}"
            );
        }
        // The exit codes, from --help's long description.
        assert!(
            man.contains("Exit code: 0 when nothing failed or broke"),
            "{man}"
        );
    }

    #[test]
    fn install_puts_each_file_where_its_reader_looks() {
        let plan = install_plan(Path::new("/p"));
        let paths: Vec<&str> = plan.iter().map(|(p, _)| p.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/p/bin/orphanage",
                "/p/share/man/man1/orphanage.1",
                "/p/share/bash-completion/completions/orphanage",
                "/p/share/zsh/site-functions/_orphanage",
                "/p/share/fish/vendor_completions.d/orphanage.fish",
            ]
        );
        assert_eq!(plan[1].1.as_deref(), Some(man_page().as_str()));
        assert_eq!(plan[2].1.as_deref(), Some(completion(Shell::Bash).as_str()));
    }
}
