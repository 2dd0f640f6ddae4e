//! memfd_create(2) and file seals (fcntl(2) F_ADD_SEALS), plus the pipes that
//! clone-isolation checks pass bytes through. A seal is proven by the
//! operation it refuses, so these steps are the plain syscalls with the errno
//! the scenario expects; nothing here trusts F_GET_SEALS alone.

use crate::handles::{self, Handle};
use crate::procfs::io_errno;
use crate::steps::{expect_errno, StepResult};
use nix::errno::Errno;
use orphanage_scenario::{Content, MfdFlag, Seal, Step, Verdict};
use std::ffi::CString;

const PAGE: u64 = 4096;

fn ret(r: libc::c_long) -> Result<libc::c_long, Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

pub fn create(name: &str, flags: libc::c_uint) -> Result<i32, Errno> {
    let cname = CString::new(name).unwrap();
    // SAFETY: a valid C string and plain flags.
    ret(unsafe { libc::syscall(libc::SYS_memfd_create, cname.as_ptr(), flags) }).map(|fd| fd as i32)
}

pub fn flag_bits(flags: &[MfdFlag]) -> libc::c_uint {
    flags.iter().fold(0, |acc, f| acc | f.raw() as libc::c_uint)
}

pub fn seal_bits(seals: &[Seal]) -> libc::c_int {
    seals.iter().fold(0, |acc, s| acc | s.raw() as libc::c_int)
}

fn names(flags: &[impl std::fmt::Display]) -> String {
    if flags.is_empty() {
        "0".to_string()
    } else {
        flags
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("|")
    }
}

fn fill(fd: i32, content: Content) -> Result<(), Errno> {
    let bytes = match content {
        Content::Empty => return Ok(()),
        Content::Bytes(n) => vec![b'o'; n as usize],
        Content::Agent => std::fs::read("/proc/self/exe").map_err(io_errno)?,
    };
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: writing from a live buffer.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        done += ret(n as libc::c_long)? as usize;
    }
    Ok(())
}

fn is_pipe(fd: i32) -> bool {
    // SAFETY: a zeroed stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) }) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO
}

pub fn perform(who: &str, step: &Step) -> StepResult {
    match step {
        Step::Pipe { read, write, .. } => {
            let mut fds = [-1; 2];
            // SAFETY: pipe2 fills two fds.
            let r = ret(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long);
            expect_errno(who, "pipe2(O_CLOEXEC)", r, None)?;
            handles::insert(read.as_str(), Handle::Fd(fds[0]));
            handles::insert(write.as_str(), Handle::Fd(fds[1]));
        }
        Step::MemfdCreate {
            handle,
            flags,
            content,
            errno,
            ..
        } => {
            let what = format!("memfd_create(\"{handle}\", {})", names(flags));
            if let Some(fd) = expect_errno(
                who,
                &what,
                create(handle.as_str(), flag_bits(flags)),
                *errno,
            )? {
                handles::insert(handle.as_str(), Handle::Fd(fd));
                fill(fd, *content)
                    .map_err(|e| Verdict::fail(format!("{who}: filling {handle}: {e}")))?;
            }
        }
        Step::Write {
            handle,
            offset,
            len,
            errno,
            ..
        } => {
            let fd = handles::fd(handle.as_str())?;
            let buf = vec![b'w'; *len as usize];
            let (r, what) = if is_pipe(fd) {
                // SAFETY: writing from a live buffer.
                let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
                (
                    ret(r as libc::c_long),
                    format!("write({handle}, {len} bytes)"),
                )
            } else {
                // SAFETY: writing from a live buffer.
                let r = unsafe {
                    libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), *offset as libc::off_t)
                };
                (
                    ret(r as libc::c_long),
                    format!("pwrite({handle}, {len} bytes at {offset})"),
                )
            };
            if let Some(n) = expect_errno(who, &what, r, *errno)? {
                if n as u64 != *len {
                    return Err(Verdict::fail(format!(
                        "{who}: {what}: wrote only {n} bytes"
                    )));
                }
            }
        }
        Step::Truncate {
            handle, len, errno, ..
        } => {
            let fd = handles::fd(handle.as_str())?;
            // SAFETY: plain ftruncate.
            let r = ret(unsafe { libc::ftruncate(fd, *len as libc::off_t) } as libc::c_long);
            expect_errno(who, &format!("ftruncate({handle}, {len})"), r, *errno)?;
        }
        Step::AddSeals {
            handle,
            seals,
            errno,
            ..
        } => {
            let fd = handles::fd(handle.as_str())?;
            // SAFETY: plain fcntl.
            let r = ret(
                unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seal_bits(seals)) } as libc::c_long,
            );
            expect_errno(
                who,
                &format!("fcntl({handle}, F_ADD_SEALS, {})", names(seals)),
                r,
                *errno,
            )?;
        }
        Step::ExpectSeals { handle, is, .. } => {
            let fd = handles::fd(handle.as_str())?;
            // SAFETY: plain fcntl.
            let r = ret(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) } as libc::c_long);
            let got = expect_errno(who, &format!("fcntl({handle}, F_GET_SEALS)"), r, None)?
                .unwrap_or(0) as libc::c_int;
            let want = seal_bits(is);
            if got != want {
                let observed: Vec<Seal> = Seal::ALL
                    .iter()
                    .copied()
                    .filter(|s| got & s.raw() as libc::c_int != 0)
                    .collect();
                return Err(Verdict::fail(format!(
                    "{who}: F_GET_SEALS on {handle}: expected {}, observed {}",
                    names(is),
                    names(&observed)
                )));
            }
        }
        Step::Mmap {
            handle,
            map,
            shared,
            writable,
            len,
            errno,
            ..
        } => {
            let fd = handles::fd(handle.as_str())?;
            let len = len.unwrap_or(PAGE) as usize;
            let prot = libc::PROT_READ | if *writable { libc::PROT_WRITE } else { 0 };
            let kind = if *shared {
                libc::MAP_SHARED
            } else {
                libc::MAP_PRIVATE
            };
            // SAFETY: a fresh mapping at a kernel-chosen address.
            let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, kind, fd, 0) };
            let r = if addr == libc::MAP_FAILED {
                Err(Errno::last())
            } else {
                Ok(addr as usize)
            };
            let what = format!(
                "mmap({handle}, {}, {})",
                if *writable {
                    "PROT_READ|PROT_WRITE"
                } else {
                    "PROT_READ"
                },
                if *shared { "MAP_SHARED" } else { "MAP_PRIVATE" }
            );
            if let Some(addr) = expect_errno(who, &what, r, *errno)? {
                handles::insert(map.as_str(), Handle::Map { addr, len });
            }
        }
        Step::Store {
            map, offset, byte, ..
        } => {
            let (addr, len) = handles::map(map.as_str())?;
            if *offset as usize >= len {
                return Err(Verdict::broken(format!(
                    "offset {offset} is past the end of {map}"
                )));
            }
            // SAFETY: inside a live mapping; a refused store faults, which is the observation.
            unsafe { std::ptr::write_volatile((addr + *offset as usize) as *mut u8, *byte) };
        }
        Step::ExpectByte {
            handle, offset, is, ..
        } => {
            let observed = match handles::get(handle.as_str())? {
                Handle::Fd(fd) if is_pipe(fd) => {
                    if !crate::steps::poll_readable(fd, 2000) {
                        return Err(Verdict::fail(format!("{who}: byte from pipe {handle}: expected {is:#04x}, observed nothing within 2 s")));
                    }
                    let mut b = [0u8; 1];
                    // SAFETY: reading into a local buffer.
                    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
                    expect_errno(
                        who,
                        &format!("read({handle})"),
                        ret(n as libc::c_long),
                        None,
                    )?;
                    if n == 0 {
                        return Err(Verdict::fail(format!("{who}: byte from pipe {handle}: expected {is:#04x}, observed end of file")));
                    }
                    b[0]
                }
                Handle::Fd(fd) => {
                    let mut b = [0u8; 1];
                    // SAFETY: reading into a local buffer.
                    let n = unsafe {
                        libc::pread(fd, b.as_mut_ptr().cast(), 1, *offset as libc::off_t)
                    };
                    expect_errno(
                        who,
                        &format!("pread({handle}, at {offset})"),
                        ret(n as libc::c_long),
                        None,
                    )?;
                    if n == 0 {
                        return Err(Verdict::fail(format!("{who}: byte {offset} of {handle}: expected {is:#04x}, observed end of file")));
                    }
                    b[0]
                }
                Handle::Map { addr, len } => {
                    if *offset as usize >= len {
                        return Err(Verdict::broken(format!(
                            "offset {offset} is past the end of {handle}"
                        )));
                    }
                    // SAFETY: inside a live mapping.
                    unsafe { std::ptr::read_volatile((addr + *offset as usize) as *const u8) }
                }
            };
            if observed != *is {
                return Err(Verdict::fail(format!("{who}: byte {offset} of {handle}: expected {is:#04x}, observed {observed:#04x}")));
            }
        }
        Step::ExpectSize { handle, is, .. } => {
            let fd = handles::fd(handle.as_str())?;
            // SAFETY: a zeroed stat is valid; fstat fills it.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a valid stat pointer.
            let r = ret(unsafe { libc::fstat(fd, &mut st) } as libc::c_long);
            expect_errno(who, &format!("fstat({handle})"), r, None)?;
            if st.st_size as u64 != *is {
                return Err(Verdict::fail(format!(
                    "{who}: size of {handle}: expected {is} bytes, observed {}",
                    st.st_size
                )));
            }
        }
        Step::ExpectCloexec { handle, is, .. } => {
            let fd = handles::fd(handle.as_str())?;
            // SAFETY: plain fcntl.
            let flags = ret(unsafe { libc::fcntl(fd, libc::F_GETFD) } as libc::c_long);
            let flags =
                expect_errno(who, &format!("fcntl({handle}, F_GETFD)"), flags, None)?.unwrap_or(0);
            let observed = flags & libc::FD_CLOEXEC as libc::c_long != 0;
            if observed != *is {
                return Err(Verdict::fail(format!(
                    "{who}: FD_CLOEXEC on {handle}: expected {is}, observed {observed}"
                )));
            }
        }
        Step::Close { handle, .. } => match handles::remove(handle.as_str()) {
            // SAFETY: releasing what this process created.
            Some(Handle::Fd(fd)) => unsafe {
                libc::close(fd);
            },
            Some(Handle::Map { addr, len }) => unsafe {
                libc::munmap(addr as *mut libc::c_void, len);
            },
            None => {
                return Err(Verdict::broken(format!(
                    "this process holds no handle `{handle}`"
                )))
            }
        },
        _ => {
            return Err(Verdict::broken(format!(
                "{} is not a memfd step",
                step.keyword()
            )))
        }
    }
    Ok(vec![])
}
