//! The VM target: a kernel booted in QEMU with the static agent as its init.

mod accel;
mod console;
mod initramfs;
mod kernel_image;
mod machine;
mod qemu_args;
mod shared_boot;
mod target;

pub use accel::{choose as choose_accel, AccelChoice, Chosen};
pub use kernel_image::{check_kernel_file, extract_vmlinux};
pub use machine::{boot_floor, run as run_vm, Batch, Progress, VmRun, QEMU};
pub use qemu_args::{cpus_each, cpus_for_cell, Accel, ResultsPort};
pub use shared_boot::{BootProgress, SharedBoot};
pub use target::VmTarget;
