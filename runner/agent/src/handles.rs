//! Named handles a scenario process holds: memfds, pidfds and mappings. The
//! table is per process (threads share it, a fork child inherits a copy, as
//! the fds and mappings themselves are inherited).

use orphanage_scenario::Verdict;
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::Mutex;

#[derive(Clone, Copy)]
pub enum Handle {
    Fd(RawFd),
    Map { addr: usize, len: usize },
}

static HANDLES: Mutex<BTreeMap<String, Handle>> = Mutex::new(BTreeMap::new());

fn table() -> std::sync::MutexGuard<'static, BTreeMap<String, Handle>> {
    HANDLES.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn insert(name: &str, handle: Handle) {
    table().insert(name.to_string(), handle);
}

pub fn get(name: &str) -> Result<Handle, Verdict> {
    table().get(name).copied().ok_or_else(|| {
        Verdict::broken(format!(
            "this process holds no handle `{name}` (created by another process?)"
        ))
    })
}

pub fn fd(name: &str) -> Result<RawFd, Verdict> {
    match get(name)? {
        Handle::Fd(fd) => Ok(fd),
        Handle::Map { .. } => Err(Verdict::broken(format!(
            "`{name}` is a mapping, not a file"
        ))),
    }
}

pub fn map(name: &str) -> Result<(usize, usize), Verdict> {
    match get(name)? {
        Handle::Map { addr, len } => Ok((addr, len)),
        Handle::Fd(_) => Err(Verdict::broken(format!(
            "`{name}` is a file, not a mapping"
        ))),
    }
}

pub fn remove(name: &str) -> Option<Handle> {
    table().remove(name)
}

/// The fds a fork child must keep.
pub fn fds() -> Vec<RawFd> {
    table()
        .values()
        .filter_map(|h| match h {
            Handle::Fd(fd) => Some(*fd),
            Handle::Map { .. } => None,
        })
        .collect()
}
