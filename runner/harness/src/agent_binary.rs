//! The static agent, built by build.rs and carried inside the harness, is
//! written to a private temporary directory for the run and removed after.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const AGENT: &[u8] = include_bytes!(env!("ORPHANAGE_AGENT_BIN"));

pub struct AgentBinary {
    /// Keeps the directory (and the file) alive; None for a user-supplied agent.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl AgentBinary {
    /// Writes the agent to a new private directory; `created` learns the
    /// directory before anything is written into it (to clean it up on Ctrl-C).
    pub fn materialize(created: impl FnOnce(&Path)) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("orphanage-").tempdir()?;
        created(dir.path());
        // The file name is the agent's comm, so `ps` shows what it is.
        let path = dir.path().join("orphanage-agent");
        std::fs::write(&path, AGENT)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        // Readable to everyone: with a user namespace the agent runs as another uid.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        Ok(AgentBinary {
            dir: Some(dir),
            path,
        })
    }

    pub fn given(path: &Path) -> Self {
        AgentBinary {
            dir: None,
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the temporary copy now (Drop does too, but `exit` skips Drop).
    pub fn remove(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// The agent's bytes, for images that carry it (a VM's initramfs).
pub fn embedded() -> &'static [u8] {
    AGENT
}
