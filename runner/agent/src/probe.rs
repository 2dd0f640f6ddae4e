//! Feature probes. Each makes the smallest call that tells whether the kernel
//! implements the feature, and on failure names the call and its errno.

use crate::{memfd, procfs, spawn};
use nix::errno::Errno;
use orphanage_agent_io::pidfd_open;
use orphanage_scenario::{ErrnoName, Feature, MfdFlag, Seal};
use std::os::fd::AsRawFd;

/// Why a probed feature is missing here: the unsupported verdict's reason,
/// before the `(needs ...)` the controller adds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureMissing {
    /// The smallest call that uses the feature failed: "prctl(PR_SET_CHILD_SUBREAPER): EINVAL".
    #[error("{call}: {}", ErrnoName(*errno))]
    Refused { call: String, errno: Errno },
    #[error("a memfd created without flags has mode {mode:o}: vm.memfd_noexec makes memfds non-executable here")]
    MemfdNotExecutable { mode: u32 },
    #[error("core_pattern pipes to a program ({pattern}): whether a core is written is up to it")]
    CorePatternPipes { pattern: String },
    #[error("core_pattern writes to a path ({pattern}), outside the scenario's private /tmp")]
    CorePatternIsAPath { pattern: String },
    #[error("core files need the private tmpfs of a fresh namespace (namespace: fresh)")]
    NoPrivateTmp,
    #[error("RLIMIT_CORE hard limit is 0")]
    NoCoreSizeAllowed,
}

fn fail<T>(call: impl Into<String>, errno: Errno) -> Result<T, FeatureMissing> {
    Err(FeatureMissing::Refused {
        call: call.into(),
        errno,
    })
}

/// `Ok` when the kernel (and this place in it) has the feature.
pub fn probe(feature: Feature, in_private_tmp: bool) -> Result<(), FeatureMissing> {
    let check = |call: &str, r: Result<(), Errno>| r.or_else(|e| fail(call, e));
    let mut int: libc::c_int = 0;
    match feature {
        // The set, not the get: it is what the scenarios use, and what a
        // kernel without subreapers refuses (EINVAL for an unknown option).
        // To the value it has, so the caller stays as it was (no throwaway
        // child: it would take a pid the scenario's processes expect).
        Feature::ChildSubreaper => {
            // SAFETY: the kernel writes one int.
            let got = unsafe {
                libc::prctl(
                    libc::PR_GET_CHILD_SUBREAPER,
                    &mut int as *mut libc::c_int,
                    0,
                    0,
                    0,
                )
            };
            let value = if got == 0 { int as libc::c_ulong } else { 0 };
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, value, 0, 0, 0) };
            check("prctl(PR_SET_CHILD_SUBREAPER)", ok_if(r == 0))
        }
        Feature::Pdeathsig => {
            // SAFETY: the kernel writes one int.
            let r = unsafe {
                libc::prctl(
                    libc::PR_GET_PDEATHSIG,
                    &mut int as *mut libc::c_int,
                    0,
                    0,
                    0,
                )
            };
            check("prctl(PR_GET_PDEATHSIG)", ok_if(r == 0))
        }
        Feature::PidNamespace => check(
            "unshare(CLONE_NEWPID) in a child",
            in_child(|| {
                // SAFETY: unshare in a throwaway child.
                unsafe { libc::unshare(libc::CLONE_NEWPID) }
            }),
        ),
        Feature::Clone3 => check("clone3(NULL, 0)", spawn::probe_clone3()),
        Feature::Pidfd => check(
            "pidfd_open(self)",
            pidfd_open(std::process::id() as i32).map(drop),
        ),
        Feature::PidfdWait => {
            let fd = match pidfd_open(std::process::id() as i32) {
                Ok(fd) => fd,
                Err(e) => return fail("pidfd_open(self)", e),
            };
            // SAFETY: zeroed siginfo is valid; we are not our own child, so ECHILD means P_PIDFD is known.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    fd.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG,
                )
            };
            let e = Errno::last();
            drop(fd);
            match (r, e) {
                (-1, Errno::ECHILD) => Ok(()),
                (-1, e) => fail("waitid(P_PIDFD)", e),
                _ => Ok(()),
            }
        }
        Feature::Memfd => memfd_probe(&[MfdFlag::Cloexec]),
        Feature::MemfdHugetlb => memfd_probe(&[MfdFlag::Cloexec, MfdFlag::Hugetlb]),
        Feature::MemfdNoexecSeal => memfd_probe(&[MfdFlag::Cloexec, MfdFlag::NoexecSeal]),
        Feature::SealFutureWrite => {
            let fd = memfd::create(
                "probe",
                memfd::flag_bits(&[MfdFlag::Cloexec, MfdFlag::AllowSealing]),
            )
            .or_else(|e| fail("memfd_create(MFD_ALLOW_SEALING)", e))?;
            // SAFETY: plain fcntl on our memfd.
            let r = unsafe {
                libc::fcntl(
                    fd,
                    libc::F_ADD_SEALS,
                    Seal::FutureWrite.raw() as libc::c_int,
                )
            };
            let e = Errno::last();
            close_if(fd as i64);
            if r == 0 {
                Ok(())
            } else {
                fail("fcntl(F_ADD_SEALS, F_SEAL_FUTURE_WRITE)", e)
            }
        }
        Feature::MemfdExecAllowed => memfd_probe(&[MfdFlag::Cloexec, MfdFlag::Exec]),
        Feature::MemfdExecutable => {
            let fd = memfd::create("probe", memfd::flag_bits(&[MfdFlag::Cloexec]))
                .or_else(|e| fail("memfd_create(MFD_CLOEXEC)", e))?;
            // SAFETY: a zeroed stat is valid; fstat fills it.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::fstat(fd, &mut stat) };
            let e = Errno::last();
            close_if(fd as i64);
            if r != 0 {
                return fail("fstat(memfd)", e);
            }
            let mode = stat.st_mode;
            if mode & 0o111 == 0 {
                return Err(FeatureMissing::MemfdNotExecutable {
                    mode: mode & 0o7777,
                });
            }
            Ok(())
        }
        // Writable, not just present: without privilege over the namespace the
        // scenario could set nothing (EACCES in an unprivileged user namespace).
        Feature::MemfdNoexecSysctl => std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/vm/memfd_noexec")
            .map(|_| ())
            .or_else(|e| {
                fail(
                    "open(/proc/sys/vm/memfd_noexec, O_WRONLY)",
                    procfs::io_errno(e),
                )
            }),
        Feature::Execveat => {
            let empty = c"";
            // SAFETY: fd -1 makes the kernel fail before executing anything.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    -1,
                    empty.as_ptr(),
                    std::ptr::null::<*const libc::c_char>(),
                    std::ptr::null::<*const libc::c_char>(),
                    libc::AT_EMPTY_PATH,
                )
            };
            match (r, Errno::last()) {
                (-1, Errno::ENOSYS) => fail("execveat(-1, \"\", AT_EMPTY_PATH)", Errno::ENOSYS),
                _ => Ok(()),
            }
        }
        Feature::CoreDumps => {
            let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
                .or_else(|e| fail("open(/proc/sys/kernel/core_pattern)", procfs::io_errno(e)))?;
            if pattern.starts_with('|') {
                return Err(FeatureMissing::CorePatternPipes {
                    pattern: pattern.trim().to_string(),
                });
            }
            if pattern.contains('/') {
                return Err(FeatureMissing::CorePatternIsAPath {
                    pattern: pattern.trim().to_string(),
                });
            }
            if !in_private_tmp {
                return Err(FeatureMissing::NoPrivateTmp);
            }
            let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
                .or_else(|e| fail("getrlimit(RLIMIT_CORE)", e))?;
            if limit.1 == 0 {
                return Err(FeatureMissing::NoCoreSizeAllowed);
            }
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_CORE,
                limit.1,
                limit.1,
            )
            .or_else(|e| fail("setrlimit(RLIMIT_CORE)", e))
        }
        Feature::ProcNspid => procfs::status_field("/proc/self/status", "NSpid")
            .map(|_| ())
            .or_else(|e| fail("NSpid in /proc/self/status", e)),
    }
}

fn ok_if(ok: bool) -> Result<(), Errno> {
    if ok {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

fn close_if(fd: i64) {
    if fd >= 0 {
        // SAFETY: an fd this function opened.
        unsafe { libc::close(fd as i32) };
    }
}

fn memfd_probe(flags: &[MfdFlag]) -> Result<(), FeatureMissing> {
    let names: Vec<&str> = flags.iter().map(|f| f.as_str()).collect();
    match memfd::create("probe", memfd::flag_bits(flags)) {
        Ok(fd) => {
            close_if(fd as i64);
            Ok(())
        }
        Err(e) => fail(format!("memfd_create({})", names.join("|")), e),
    }
}

/// Runs `f` in a throwaway child and returns its errno: for probes that change the caller.
fn in_child(f: impl FnOnce() -> libc::c_int) -> Result<(), Errno> {
    // SAFETY: the child makes one syscall and exits.
    match unsafe { libc::fork() } {
        0 => {
            let r = f();
            let code = if r == 0 { 0 } else { Errno::last_raw() };
            // SAFETY: leave the child at once.
            unsafe { libc::_exit(code) }
        }
        -1 => Err(Errno::last()),
        pid => {
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            match libc::WEXITSTATUS(status) {
                0 => Ok(()),
                e => Err(Errno::from_raw(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_call_reads_as_the_call_and_its_errno() {
        let refused = FeatureMissing::Refused {
            call: "prctl(PR_SET_CHILD_SUBREAPER)".into(),
            errno: Errno::EINVAL,
        };
        assert_eq!(refused.to_string(), "prctl(PR_SET_CHILD_SUBREAPER): EINVAL");
        assert_eq!(
            crate::subreaper_root::SubreaperRefused {
                errno: Errno::EPERM
            }
            .to_string(),
            "prctl(PR_SET_CHILD_SUBREAPER): EPERM",
            "the reason a subreaper root cannot stand in reads as the probe's"
        );
        assert_eq!(
            FeatureMissing::MemfdNotExecutable { mode: 0o600 }.to_string(),
            "a memfd created without flags has mode 600: vm.memfd_noexec makes memfds non-executable here"
        );
    }
}
