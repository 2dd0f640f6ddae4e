//! A kernel that lacks pieces, simulated with a seccomp filter: the kernel
//! itself then returns the errno such a kernel would, to orphanage and to
//! everything it starts (a filter is inherited across fork and exec). Used by
//! the tests on the host and by the VM's init (its command-line knobs).
//!
//! A filter sees a syscall's number and its register arguments, never the
//! memory they point to: it can refuse clone(2) and unshare(2) by their
//! CLONE_NEWPID flag and prctl(2) by its option, but clone3(2) only as a
//! whole (its flags are in a struct). orphanage never asks clone3 for a pid
//! namespace, so leaving clone3 alone loses nothing; list it in `enosys` to
//! simulate a kernel that predates it.

/// What the simulated kernel lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lacks {
    /// clone(2) and unshare(2) with CLONE_NEWPID fail with EINVAL, as without CONFIG_PID_NS.
    pub pid_namespaces: bool,
    /// prctl(PR_SET_CHILD_SUBREAPER) and prctl(PR_GET_CHILD_SUBREAPER) fail
    /// with EINVAL, as an unknown prctl option does (before Linux 3.4).
    pub subreapers: bool,
    /// These syscalls fail with ENOSYS, as on a kernel that predates them.
    pub enosys: Vec<libc::c_long>,
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Offsets in struct seccomp_data.
const ARCH: u32 = 4;
const NR: u32 = 0;
const ARG0_LOW: u32 = 16;

/// One instruction, with jumps to labels instead of offsets.
#[derive(Debug, Clone, Copy)]
enum Insn {
    Load(u32),
    /// To the label if the accumulator equals k, else on.
    JumpIfEqual(u32, Label),
    /// To the label unless the accumulator equals k, else on.
    JumpUnlessEqual(u32, Label),
    /// To the label if the accumulator has any bit of k, else on.
    JumpIfAnyBit(u32, Label),
    Return(u32),
    /// Where a label points; takes no room.
    Mark(Label),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Allow,
    Enosys,
    Einval,
    CloneFlags,
    PrctlOption,
}

impl Lacks {
    /// Whether it lacks anything at all.
    pub fn anything(&self) -> bool {
        self.pid_namespaces || self.subreapers || !self.enosys.is_empty()
    }

    /// The classic BPF program of the filter (x86-64 only: another
    /// architecture's calls are allowed).
    pub fn program(&self) -> Vec<libc::sock_filter> {
        use Insn::*;
        use Label::*;
        let allow = Return(libc::SECCOMP_RET_ALLOW);
        let mut code = vec![
            Load(ARCH),
            JumpUnlessEqual(AUDIT_ARCH_X86_64, Allow),
            Load(NR),
        ];
        code.extend(self.enosys.iter().map(|&nr| JumpIfEqual(nr as u32, Enosys)));
        if self.pid_namespaces {
            code.push(JumpIfEqual(libc::SYS_clone as u32, CloneFlags));
            code.push(JumpIfEqual(libc::SYS_unshare as u32, CloneFlags));
        }
        if self.subreapers {
            code.push(JumpIfEqual(libc::SYS_prctl as u32, PrctlOption));
        }
        code.extend([Mark(Allow), allow]);
        if self.pid_namespaces {
            code.extend([
                Mark(CloneFlags),
                Load(ARG0_LOW),
                JumpIfAnyBit(libc::CLONE_NEWPID as u32, Einval),
                allow,
            ]);
        }
        if self.subreapers {
            code.extend([
                Mark(PrctlOption),
                Load(ARG0_LOW),
                JumpIfEqual(libc::PR_SET_CHILD_SUBREAPER as u32, Einval),
                JumpIfEqual(libc::PR_GET_CHILD_SUBREAPER as u32, Einval),
                allow,
            ]);
        }
        code.extend([
            Mark(Enosys),
            Return(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            Mark(Einval),
            Return(libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32),
        ]);
        assemble(&code)
    }
}

/// Resolves labels to forward offsets (classic BPF jumps only forward).
fn assemble(code: &[Insn]) -> Vec<libc::sock_filter> {
    let mut at = Vec::new();
    let mut position = 0usize;
    for insn in code {
        match insn {
            Insn::Mark(label) => at.push((*label, position)),
            _ => position += 1,
        }
    }
    let target = |label: Label, from: usize| -> u8 {
        let to = at
            .iter()
            .find(|(l, _)| *l == label)
            .expect("every label is marked")
            .1;
        u8::try_from(to - from - 1).expect("a short forward jump")
    };
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |op: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let mut program = Vec::new();
    for insn in code {
        let here = program.len();
        program.push(match *insn {
            Insn::Load(offset) => stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset),
            Insn::JumpIfEqual(k, l) => jump(libc::BPF_JEQ, k, target(l, here), 0),
            Insn::JumpUnlessEqual(k, l) => jump(libc::BPF_JEQ, k, 0, target(l, here)),
            Insn::JumpIfAnyBit(k, l) => jump(libc::BPF_JSET, k, target(l, here), 0),
            Insn::Return(k) => stmt(libc::BPF_RET | libc::BPF_K, k),
            Insn::Mark(_) => continue,
        });
    }
    program
}

/// Installs `program` on the calling thread (and so on everything it starts),
/// after PR_SET_NO_NEW_PRIVS, which an unprivileged caller needs. Only
/// prctl(2) and seccomp(2): safe between fork and exec.
pub fn install_filter(program: &[libc::sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments; seccomp reads `fprog` during the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            ) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `call` in a child under the filter and returns its errno (0: it succeeded).
    fn errno_under(lacks: &Lacks, call: fn() -> libc::c_long) -> i32 {
        let program = lacks.program();
        // SAFETY: the child only installs the filter, makes one call and exits.
        match unsafe { libc::fork() } {
            0 => {
                let code = match install_filter(&program) {
                    Err(_) => 255,
                    Ok(()) if call() < 0 => std::io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(254),
                    Ok(()) => 0,
                };
                // SAFETY: leave the child at once.
                unsafe { libc::_exit(code) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                libc::WEXITSTATUS(status)
            }
        }
    }

    fn unshare_newpid() -> libc::c_long {
        // SAFETY: in a throwaway child.
        unsafe { libc::unshare(libc::CLONE_NEWPID) as libc::c_long }
    }
    fn unshare_newns() -> libc::c_long {
        // SAFETY: in a throwaway child.
        unsafe { libc::unshare(libc::CLONE_NEWNS) as libc::c_long }
    }
    fn set_subreaper() -> libc::c_long {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) as libc::c_long }
    }
    fn set_pdeathsig() -> libc::c_long {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) as libc::c_long }
    }
    fn pidfd_open_self() -> libc::c_long {
        // SAFETY: pidfd_open on ourselves; the fd dies with the child.
        unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) }
    }

    #[test]
    fn the_filter_refuses_exactly_what_the_kernel_lacks() {
        let root = nix_is_root();
        let pid_ns = Lacks {
            pid_namespaces: true,
            ..Lacks::default()
        };
        assert_eq!(errno_under(&pid_ns, unshare_newpid), libc::EINVAL);
        assert_eq!(errno_under(&pid_ns, set_subreaper), 0);
        if root {
            assert_eq!(
                errno_under(&pid_ns, unshare_newns),
                0,
                "other namespaces stay"
            );
        }
        let subreapers = Lacks {
            subreapers: true,
            ..Lacks::default()
        };
        assert_eq!(errno_under(&subreapers, set_subreaper), libc::EINVAL);
        assert_eq!(
            errno_under(&subreapers, set_pdeathsig),
            0,
            "other prctls stay"
        );
        if root {
            assert_eq!(errno_under(&subreapers, unshare_newpid), 0);
        }
        let both = Lacks {
            pid_namespaces: true,
            subreapers: true,
            enosys: vec![libc::SYS_pidfd_open],
        };
        assert_eq!(errno_under(&both, unshare_newpid), libc::EINVAL);
        assert_eq!(errno_under(&both, set_subreaper), libc::EINVAL);
        assert_eq!(errno_under(&both, pidfd_open_self), libc::ENOSYS);
        assert_eq!(errno_under(&both, set_pdeathsig), 0);
    }

    fn nix_is_root() -> bool {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
