//! Choosing the accelerator: KVM when a short probe shows it works, TCG
//! otherwise. Nested KVM can hang at the kernel's first instructions, so the
//! probe boots the real kernel with early printk and waits, briefly, for its
//! first words. The decision is made once per run.

use super::machine::spawn_qemu;
use super::qemu_args::{kvm_probe_argv, Accel, KVM_PROBE_MARKER};
use crate::live;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a working KVM takes at most to print "Linux version" (it takes
/// well under half a second); a hang is caught by this.
pub const PROBE_DEADLINE: Duration = Duration::from_millis(1500);

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if the probe shows it works, else TCG.
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator and why it was chosen.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub accel: Accel,
    pub why: String,
}

static CHOSEN: OnceLock<Chosen> = OnceLock::new();

pub fn choose(choice: AccelChoice, kernel: &Path) -> Chosen {
    CHOSEN
        .get_or_init(|| match choice {
            AccelChoice::Kvm => Chosen {
                accel: Accel::Kvm,
                why: "asked for".into(),
            },
            AccelChoice::Tcg => Chosen {
                accel: Accel::Tcg,
                why: "asked for".into(),
            },
            AccelChoice::Auto => match probe_kvm(kernel) {
                Ok(took) => Chosen {
                    accel: Accel::Kvm,
                    why: format!("the KVM probe booted in {} ms", took.as_millis()),
                },
                Err(why) => Chosen {
                    accel: Accel::Tcg,
                    why: why.to_string(),
                },
            },
        })
        .clone()
}

/// Why KVM was not chosen: its words go into the run's "(tcg: ...)" note.
#[derive(Debug, thiserror::Error)]
enum NoKvm {
    #[error("/dev/kvm: {0}")]
    Device(std::io::Error),
    #[error("cannot start the KVM probe: {0}")]
    Start(std::io::Error),
    #[error("interrupted")]
    Interrupted,
    #[error("the KVM probe printed nothing within {} ms (nested KVM hanging?)", .0.as_millis())]
    Silent(Duration),
    #[error("the KVM probe ended before the kernel spoke")]
    Ended,
}

/// Ok(time to the kernel's first words) when KVM runs the kernel.
fn probe_kvm(kernel: &Path) -> Result<Duration, NoKvm> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Err(NoKvm::Device(e));
    }
    let started = Instant::now();
    let mut child = spawn_qemu(&kvm_probe_argv(kernel), Stdio::piped()).map_err(NoKvm::Start)?;
    let Some(registration) = live::register_child(&mut child) else {
        return Err(NoKvm::Interrupted);
    };
    let mut console = child.stdout.take().expect("piped");
    let mut seen = Vec::new();
    let mut result = Err(NoKvm::Silent(PROBE_DEADLINE));
    loop {
        let left = PROBE_DEADLINE.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match orphanage_agent_io::wait_readable(&[Some(console.as_raw_fd())], left) {
            Ok(ready) if ready[0] => {}
            Ok(_) => continue,
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match console.read(&mut buf) {
            Ok(0) | Err(_) => {
                result = Err(NoKvm::Ended);
                break;
            }
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&seen).contains(KVM_PROBE_MARKER) {
            result = Ok(started.elapsed());
            break;
        }
    }
    registration.kill();
    registration.reap_root(None);
    result
}
