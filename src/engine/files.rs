//! Files rift writes that must never be seen half-written (sessions, reports, outputs).
use std::io::Write;

/// Why a save the caller supplies failed (a checkpoint after each training epoch,
/// AutoAttack's state file): the caller's own error, kept whole with its causes instead of
/// flattened into text, so the one error paragraph can say why.
pub type SaveError = Box<dyn std::error::Error + Send + Sync>;
use std::path::{Path, PathBuf};

/// A file or directory rift could not write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `std::fs::create_dir_all`, naming the directory in its error.
pub fn create_dir(dir: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError::Dir {
        dir: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees a half-written file and an interrupted run leaves the old one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        WriteError::File {
            path: path.to_path_buf(),
            source,
        }
    })
}
