//! The QEMU command line, built by small pure functions so each can be
//! unit-tested without starting a VM. Serial port 0 (the console: kernel log
//! and diagnostics) goes to QEMU's stderr, serial port 1 (results) to its
//! stdout; QEMU's own errors land on stderr too, next to the kernel log. A
//! guest with one console (ttyS0, or the virtio console hvc0) sends log and
//! results together to stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How QEMU executes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Where the guest sends its result frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ResultsPort {
    /// A second serial port (ttyS1), results alone; the console is ttyS0.
    #[default]
    #[value(name = "ttyS1")]
    #[serde(rename = "ttyS1")]
    SecondSerial,
    /// The one console (ttyS0): frames between the kernel's log lines, as on
    /// a kernel with a single console.
    #[value(name = "console")]
    Console,
    /// The virtio console (hvc0) as the guest's one console, and no serial
    /// port at all, as Asterinas boots: frames between the log lines again.
    #[value(name = "hvc0")]
    #[serde(rename = "hvc0")]
    VirtioConsole,
}

impl ResultsPort {
    /// The init word that tells the agent where to write (`results=...`).
    pub fn init_word(self) -> Option<&'static str> {
        match self {
            ResultsPort::SecondSerial => None,
            ResultsPort::Console => Some("results=/dev/ttyS0"),
            ResultsPort::VirtioConsole => Some("results=/dev/hvc0"),
        }
    }

    /// The kernel's console device (`console=...`).
    pub fn console_device(self) -> &'static str {
        match self {
            ResultsPort::SecondSerial | ResultsPort::Console => "ttyS0",
            ResultsPort::VirtioConsole => "hvc0",
        }
    }
}

/// Everything one boot needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Extra kernel command line, appended after ours.
    pub cmdline: String,
    /// Extra QEMU arguments, appended last.
    pub qemu_args: Vec<String>,
    /// Arguments for init (after `--` on the command line).
    pub init_args: Vec<String>,
    pub results: ResultsPort,
}

/// The most virtual CPUs a VM gets.
pub const MAX_CPUS: u32 = 4;

/// Virtual CPUs for each of `at_once` VMs on a host with `cores` cores: the
/// cores shared out, at least one each. Under TCG each virtual CPU is a host
/// thread, so VMs that together ask for more than the cores only slow each
/// other down.
pub fn cpus_each(cores: usize, at_once: usize) -> u32 {
    (cores / at_once.max(1)).clamp(1, MAX_CPUS as usize) as u32
}

/// Virtual CPUs for the `position`th (from 0) of a matrix's `vms` VMs, run
/// `parallel` at a time on `cores` cores. The first wave shares the cores.
/// A later VM shares them only with the VMs still to start, so the last
/// ones get more as the others finish; they overlap the first wave's last
/// minutes, which measured better than leaving a core idle (three kernels on
/// 2 cores: 18.4 to 20.4 s against 23.8 to 25.8 s for the whole matrix).
pub fn cpus_for_cell(cores: usize, parallel: usize, vms: usize, position: usize) -> u32 {
    let at_once = if position < parallel {
        parallel.min(vms)
    } else {
        parallel.min(vms.saturating_sub(position))
    };
    cpus_each(cores, at_once)
}

/// Memory for a VM with `cpus` CPUs, which runs two scenarios per CPU.
pub fn memory_mib(cpus: u32) -> u32 {
    512 + 128 * (cpus.max(1) - 1)
}

/// A quiet console on `console` (ttyS0 or hvc0); `panic=-1` reboots at once
/// on a panic, which `-no-reboot` turns into QEMU exiting. `no_timer_check`
/// skips the IO-APIC timer check, which an emulated CPU starved by a busy
/// host can fail with a panic ("IO-APIC + timer doesn't work!") before init runs.
pub fn kernel_cmdline(console: &str, extra: &str, init_args: &[String]) -> String {
    let mut line = format!("console={console} panic=-1 quiet no_timer_check");
    if !extra.trim().is_empty() {
        line.push(' ');
        line.push_str(extra.trim());
    }
    if !init_args.is_empty() {
        // Linux hands init the words after the first `--` and drops any
        // after a second one: join an extra `-- ...` rather than add another.
        if !line.split_whitespace().any(|w| w == "--") {
            line.push_str(" --");
        }
        for a in init_args {
            line.push(' ');
            line.push_str(a);
        }
    }
    line
}

/// `-accel` and `-cpu` for an accelerator.
pub fn accel_args(accel: Accel) -> Vec<OsString> {
    let cpu = match accel {
        Accel::Kvm => "host",
        Accel::Tcg => "max",
    };
    ["-accel", accel.as_str(), "-cpu", cpu]
        .map(OsString::from)
        .to_vec()
}

/// The machine without any default device, display, monitor or disk; it
/// exits instead of rebooting.
pub fn machine_args(memory_mib: u32, cpus: u32) -> Vec<OsString> {
    [
        "-nodefaults".to_string(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-m".into(),
        format!("{memory_mib}M"),
        "-smp".into(),
        cpus.to_string(),
    ]
    .map(OsString::from)
    .to_vec()
}

/// With a second port: ttyS0 to stderr (by reopening our fd 2, which works
/// for pipes), ttyS1 to stdout. With the console alone: ttyS0 to stdout (fd
/// 1, reopened the same way), and stderr keeps only QEMU's own messages.
/// With the virtio console: no serial port, and hvc0 to stdout. A
/// virtio-serial device with one port offers no multiport feature, so the
/// guest's driver makes hvc0 while it probes, before init runs, rather than
/// later, when the host's control message would announce the port.
pub fn console_args(results: ResultsPort) -> Vec<OsString> {
    let args: &[&str] = match results {
        ResultsPort::SecondSerial => &[
            "-chardev",
            "file,id=console,path=/proc/self/fd/2",
            "-serial",
            "chardev:console",
            "-chardev",
            "stdio,id=results,signal=off",
            "-serial",
            "chardev:results",
        ],
        // A file backend, as for the console above: output only.
        ResultsPort::Console => &[
            "-chardev",
            "file,id=console,path=/proc/self/fd/1",
            "-serial",
            "chardev:console",
        ],
        ResultsPort::VirtioConsole => &[
            "-device",
            "virtio-serial-pci,max_ports=1",
            "-chardev",
            "file,id=console,path=/proc/self/fd/1",
            "-device",
            "virtconsole,chardev=console",
        ],
    };
    args.iter().map(OsString::from).collect()
}

pub fn boot_args(kernel: &Path, initrd: &Path, cmdline: &str) -> Vec<OsString> {
    vec![
        "-kernel".into(),
        kernel.as_os_str().to_owned(),
        "-initrd".into(),
        initrd.as_os_str().to_owned(),
        "-append".into(),
        cmdline.into(),
    ]
}

/// The whole argument list (without the program name).
pub fn qemu_argv(boot: &Boot) -> Vec<OsString> {
    let mut argv = machine_args(boot.memory_mib, boot.cpus);
    argv.extend(accel_args(boot.accel));
    argv.extend(console_args(boot.results));
    let mut init_args = boot.init_args.clone();
    init_args.extend(boot.results.init_word().map(String::from));
    argv.extend(boot_args(
        &boot.kernel,
        &boot.initrd,
        &kernel_cmdline(boot.results.console_device(), &boot.cmdline, &init_args),
    ));
    argv.extend(boot.qemu_args.iter().map(OsString::from));
    argv
}

/// The KVM probe: the real kernel, no initramfs, early printk on the console.
/// KVM works when the kernel's first words ("Linux version") arrive quickly;
/// where nested KVM hangs, nothing arrives.
pub fn kvm_probe_argv(kernel: &Path) -> Vec<OsString> {
    let mut argv = machine_args(256, 1);
    argv.extend(accel_args(Accel::Kvm));
    argv.extend(
        [
            "-serial",
            "stdio",
            "-kernel",
            &kernel.to_string_lossy(),
            "-append",
            "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1",
        ]
        .map(OsString::from),
    );
    argv
}

/// What the probe waits for on the console.
pub const KVM_PROBE_MARKER: &str = "Linux version";

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    /// The value after `flag`, for each time `flag` appears.
    fn values_of(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    fn boot(accel: Accel) -> Boot {
        Boot {
            kernel: "/k/vmlinuz".into(),
            initrd: "/tmp/x/initramfs.cpio".into(),
            accel,
            memory_mib: 512,
            cpus: 1,
            cmdline: String::new(),
            qemu_args: vec![],
            init_args: vec![],
            results: ResultsPort::SecondSerial,
        }
    }

    #[test]
    fn one_console_carries_log_and_results_and_init_is_told() {
        let mut b = boot(Accel::Tcg);
        b.results = ResultsPort::Console;
        b.init_args = vec!["stay-up".into()];
        let argv = strings(&qemu_argv(&b));
        assert_eq!(values_of(&argv, "-serial"), ["chardev:console"]);
        assert_eq!(
            values_of(&argv, "-chardev"),
            ["file,id=console,path=/proc/self/fd/1"]
        );
        assert!(
            values_of(&argv, "-append")[0].ends_with(
                "console=ttyS0 panic=-1 quiet no_timer_check -- stay-up results=/dev/ttyS0"
            ),
            "{argv:?}"
        );
    }

    #[test]
    fn the_virtio_console_is_the_one_console_and_no_serial_port_is_made() {
        let mut b = boot(Accel::Tcg);
        b.results = ResultsPort::VirtioConsole;
        b.init_args = vec!["stay-up".into()];
        let argv = strings(&qemu_argv(&b));
        // -nodefaults makes no serial port of its own, and none is asked for.
        assert!(argv.contains(&"-nodefaults".to_string()));
        assert!(values_of(&argv, "-serial").is_empty(), "{argv:?}");
        assert_eq!(
            values_of(&argv, "-device"),
            [
                "virtio-serial-pci,max_ports=1",
                "virtconsole,chardev=console"
            ]
        );
        assert_eq!(
            values_of(&argv, "-chardev"),
            ["file,id=console,path=/proc/self/fd/1"]
        );
        assert!(
            values_of(&argv, "-append")[0].ends_with(
                "console=hvc0 panic=-1 quiet no_timer_check -- stay-up results=/dev/hvc0"
            ),
            "{argv:?}"
        );
    }

    #[rstest]
    #[case::second_serial(ResultsPort::SecondSerial, "ttyS0", None)]
    #[case::serial_console(ResultsPort::Console, "ttyS0", Some("results=/dev/ttyS0"))]
    #[case::virtio_console(ResultsPort::VirtioConsole, "hvc0", Some("results=/dev/hvc0"))]
    fn each_results_port_names_its_console_and_tells_init(
        #[case] port: ResultsPort,
        #[case] console: &str,
        #[case] word: Option<&str>,
    ) {
        assert_eq!(port.console_device(), console);
        assert_eq!(port.init_word(), word);
    }

    #[test]
    fn the_kernels_file_and_the_flag_name_the_virtio_console_hvc0() {
        let port: ResultsPort = yaml_serde::from_str("hvc0").unwrap();
        assert_eq!(port, ResultsPort::VirtioConsole);
        use clap::ValueEnum;
        assert_eq!(
            ResultsPort::from_str("hvc0", false),
            Ok(ResultsPort::VirtioConsole)
        );
    }

    #[rstest]
    #[case::one_vm_gets_the_cores(2, 1, 2)]
    #[case::vms_share_the_cores(8, 2, 4)]
    #[case::more_vms_than_cores_get_one_each(2, 4, 1)]
    #[case::never_more_than_the_cap(64, 1, MAX_CPUS)]
    #[case::no_vm_at_all_still_one(1, 0, 1)]
    fn cpus_are_the_cores_shared_out(
        #[case] cores: usize,
        #[case] at_once: usize,
        #[case] expected: u32,
    ) {
        assert_eq!(cpus_each(cores, at_once), expected);
    }

    #[rstest]
    #[case::three_on_two_cores(2, 2, 3, &[1, 1, 2])]
    #[case::two_on_two_cores(2, 2, 2, &[1, 1])]
    #[case::four_on_four_cores(4, 4, 4, &[1, 1, 1, 1])]
    #[case::six_on_four_cores(4, 4, 6, &[1, 1, 1, 1, 2, 4])]
    #[case::one_core(1, 1, 3, &[1, 1, 1])]
    fn matrix_cells_never_start_asking_for_more_than_the_cores(
        #[case] cores: usize,
        #[case] parallel: usize,
        #[case] vms: usize,
        #[case] expected: &[u32],
    ) {
        let got: Vec<u32> = (0..vms)
            .map(|p| cpus_for_cell(cores, parallel, vms, p))
            .collect();
        assert_eq!(got, expected);
        // The first wave, started together, fits the cores.
        let first: u32 = got.iter().take(parallel).sum();
        assert!(first as usize <= cores.max(parallel), "{got:?}");
    }

    #[test]
    fn memory_grows_with_the_cpus() {
        assert_eq!(memory_mib(1), 512);
        assert_eq!(memory_mib(4), 896);
    }

    #[test]
    fn smp_carries_the_cpus() {
        let argv = strings(&qemu_argv(&Boot {
            cpus: 2,
            ..boot(Accel::Tcg)
        }));
        assert_eq!(values_of(&argv, "-smp"), ["2"]);
    }

    #[rstest]
    #[case("", &[], "console=ttyS0 panic=-1 quiet no_timer_check")]
    #[case("  mitigations=off ", &[], "console=ttyS0 panic=-1 quiet no_timer_check mitigations=off")]
    #[case("", &["poweroff"], "console=ttyS0 panic=-1 quiet no_timer_check -- poweroff")]
    #[case("-- stay-up", &["results=/dev/ttyS0"], "console=ttyS0 panic=-1 quiet no_timer_check -- stay-up results=/dev/ttyS0")]
    fn the_command_line_has_console_panic_and_init_args(
        #[case] extra: &str,
        #[case] init: &[&str],
        #[case] expected: &str,
    ) {
        let init: Vec<String> = init.iter().map(|s| s.to_string()).collect();
        assert_eq!(kernel_cmdline("ttyS0", extra, &init), expected);
    }

    #[rstest]
    #[case(Accel::Tcg, "tcg", "max")]
    #[case(Accel::Kvm, "kvm", "host")]
    fn the_accelerator_picks_the_cpu(#[case] a: Accel, #[case] name: &str, #[case] cpu: &str) {
        let argv = strings(&qemu_argv(&boot(a)));
        assert_eq!(values_of(&argv, "-accel"), [name]);
        assert_eq!(values_of(&argv, "-cpu"), [cpu]);
    }

    #[test]
    fn a_boot_has_no_disk_no_display_and_two_serial_ports() {
        let argv = strings(&qemu_argv(&boot(Accel::Tcg)));
        for flag in ["-nodefaults", "-no-reboot", "-no-user-config"] {
            assert!(argv.contains(&flag.to_string()), "{flag} in {argv:?}");
        }
        for disk in ["-hda", "-drive", "-cdrom"] {
            assert!(!argv.contains(&disk.to_string()));
        }
        assert_eq!(values_of(&argv, "-display"), ["none"]);
        // ttyS0 first (the console), ttyS1 second (results).
        assert_eq!(
            values_of(&argv, "-serial"),
            ["chardev:console", "chardev:results"]
        );
        let chardevs = values_of(&argv, "-chardev");
        assert!(chardevs[0].starts_with("file,id=console,path=/proc/self/fd/2"));
        assert!(chardevs[1].starts_with("stdio,id=results"));
        assert_eq!(values_of(&argv, "-kernel"), ["/k/vmlinuz"]);
        assert_eq!(values_of(&argv, "-initrd"), ["/tmp/x/initramfs.cpio"]);
        assert_eq!(values_of(&argv, "-m"), ["512M"]);
        assert_eq!(values_of(&argv, "-smp"), ["1"]);
    }

    #[test]
    fn extra_arguments_come_last_and_extend_the_command_line() {
        let mut b = boot(Accel::Tcg);
        b.qemu_args = vec!["-machine".into(), "q35".into()];
        b.cmdline = "init_on_free=1".into();
        let argv = strings(&qemu_argv(&b));
        assert_eq!(&argv[argv.len() - 2..], ["-machine", "q35"]);
        assert_eq!(
            values_of(&argv, "-append"),
            ["console=ttyS0 panic=-1 quiet no_timer_check init_on_free=1"]
        );
    }

    #[test]
    fn the_kvm_probe_boots_the_kernel_with_early_printk_and_no_initramfs() {
        let argv = strings(&kvm_probe_argv(Path::new("/k/vmlinuz")));
        assert_eq!(values_of(&argv, "-accel"), ["kvm"]);
        assert_eq!(values_of(&argv, "-kernel"), ["/k/vmlinuz"]);
        assert!(values_of(&argv, "-initrd").is_empty());
        assert!(values_of(&argv, "-append")[0].contains("earlyprintk=serial,ttyS0"));
        assert_eq!(values_of(&argv, "-serial"), ["stdio"]);
    }
}
