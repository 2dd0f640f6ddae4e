//! `orphanage kernels fetch|path`: the kernels file's kernels, into the cache.

use crate::cli::KernelsCommand;
use crate::kernels::{self, FetchError};
use anyhow::{bail, Context};
use std::process::ExitCode;

/// `orphanage kernels fetch|path`.
pub fn kernels_command(command: KernelsCommand) -> anyhow::Result<ExitCode> {
    let (file, names, fetch) = match command {
        KernelsCommand::Fetch { kernels, names } => (kernels, names, true),
        KernelsCommand::Path { kernels, names } => (kernels, names, false),
    };
    let file = file.unwrap_or_else(crate::default_kernels_file);
    let all = kernels::load(&file)?;
    let kernels = kernels::select(&file, all, &names)?;
    let cache = kernels::cache_dir();
    if !fetch {
        let mut missing = false;
        for k in &kernels {
            match k.image(&cache) {
                Some(p) => println!("{}\t{}", k.name, p.display()),
                None if k.source == kernels::Source::Host => {
                    println!("{}\t(the running kernel)", k.name)
                }
                None if matches!(k.source, kernels::Source::Build { .. }) => {
                    eprintln!("orphanage: kernel {} is not built yet", k.name);
                    missing = true;
                }
                None => {
                    eprintln!("orphanage: kernel {} is not fetched yet", k.name);
                    missing = true;
                }
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
    // A build runs for minutes: Ctrl-C kills its make and removes its work
    // directory (the source and the objects, over a gigabyte).
    crate::live::install_interrupt_handler().context("cannot set up the interrupt handler")?;
    match kernels::fetch(&kernels, &cache, |m| eprintln!("orphanage: {m}")) {
        Ok(images) => {
            for (name, image) in images {
                println!("{name}\t{}", image.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        // A build that stopped because of Ctrl-C is the interrupt's to report.
        Err(_) if crate::live::interrupted() => crate::live::stand_down(),
        Err(FetchError::BadInput(m)) => bail!("{m}"),
        Err(FetchError::Failed(m)) => {
            eprintln!("orphanage: {m}");
            Ok(ExitCode::FAILURE)
        }
    }
}
