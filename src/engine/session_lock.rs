//! One writer per session directory: `rift run`, `rift compare` and the explorer (`rift
//! tui`, `rift demo`) hold the directory's lock for as long as the command runs, so a
//! second of them on the same directory is refused before it loads its model, instead of
//! interleaving its writes with the first one's.
//!
//! Mechanism: the lock file `DIR/.rift-lock`, held with an OS advisory lock (`flock(2)`,
//! through `std::fs::File::try_lock`): one system call per process, nothing to poll. Its
//! content records who holds it (pid, host, command line, start time) so the refusal can
//! name the holder. The kernel drops a `flock` when its process dies, however it dies, so
//! a lock left by a killed process (SIGKILL: no cleanup runs) is simply free to take: the
//! next command locks the file again and says on stderr whose lock it took over. The file
//! is never deleted (deleting a locked file would let two processes lock two different
//! files of the same name); a process that ends well empties it, so a file that still
//! names a holder when its lock is free was left by a process that did not end well.
//!
//! Who takes no lock, and why:
//! - `rift tui --follow DIR` only reads the session and its `events.jsonl`.
//! - `rift mrc --shard I/N --session DIR` and `rift merge`: the shards of one session run
//!   in parallel by design, each writing its own file under `shards/`, and `rift merge`
//!   combines them once they are done; a lock would serialise exactly what sharding is for.
//! - `rift report` and the other one-shot commands read a session or write elsewhere.
use crate::engine::session::now_rfc3339;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file in a session directory.
pub const LOCK_FILE: &str = ".rift-lock";

/// Who holds (or last held) a session's lock, as its lock file records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// The holder's command line.
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub started: String,
}

impl Holder {
    /// This process, now.
    pub fn this_process() -> Holder {
        let args: Vec<String> = std::env::args().collect();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown host".into());
        Holder {
            pid: std::process::id(),
            host,
            command: args.join(" "),
            started: now_rfc3339(),
        }
    }

    /// "pid 123 on host h (`rift run …`, started 2025-…)".
    pub fn describe(&self) -> String {
        format!(
            "pid {} on host {} (`{}`, started {})",
            self.pid, self.host, self.command, self.started
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the session directory {} is in use by another rift process: {}. Two processes \
         writing one session would mix their results, so this one stops before loading \
         anything. Watch the running one with `rift tui --follow {}`, wait for it to end, \
         or stop it (kill {}) and run this command again to continue the session; to work \
         beside it, give this command another session directory",
        dir.display(), holder.as_ref().map_or_else(|| "its pid is not recorded yet".into(), Holder::describe),
        dir.display(), holder.as_ref().map_or_else(|| "it".into(), |h| h.pid.to_string())
    )]
    Held {
        dir: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot create the session directory {}: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the session lock {} (the session directory must be writable): {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the session lock {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held session lock; dropping it empties the lock file and releases the lock.
#[derive(Debug)]
pub struct SessionLock {
    /// `None` where the filesystem has no advisory locks (see `acquire`).
    file: Option<File>,
    path: PathBuf,
}

/// What taking a session's lock found.
#[derive(Debug)]
pub struct Acquired {
    pub lock: SessionLock,
    /// The holder a free lock still named: a process that ended without releasing it
    /// (killed), whose lock this one took over.
    pub taken_over: Option<Holder>,
    /// The filesystem could not lock the file (some network filesystems): the session
    /// is written unprotected; the text says why, for a warning.
    pub unprotected: Option<String>,
}

impl SessionLock {
    /// Takes the lock of session directory `dir` (created if missing) for this process,
    /// or refuses with the holder named when another live process has it.
    pub fn acquire(dir: &Path) -> Result<Acquired, LockError> {
        std::fs::create_dir_all(dir).map_err(|source| LockError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder: holder_of_live_lock(&mut file),
                })
            }
            Err(TryLockError::Error(e)) => {
                let why = format!("cannot lock {}: {e}", path.display());
                return Ok(Acquired {
                    lock: SessionLock { file: None, path },
                    taken_over: None,
                    unprotected: Some(why),
                });
            }
        }
        let taken_over = read_holder(&mut file);
        let me = serde_yaml::to_string(&Holder::this_process()).unwrap_or_default();
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(me.as_bytes())?;
            f.flush()
        };
        write(&mut file).map_err(|source| LockError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(Acquired {
            lock: SessionLock {
                file: Some(file),
                path,
            },
            taken_over,
            unprotected: None,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        // Emptied while still locked: a file naming a holder then always means that
        // holder did not end well. The lock itself goes with the file handle.
        if let Some(f) = &self.file {
            let _ = f.set_len(0);
        }
    }
}

/// The holder of a lock another process holds: it writes its record just after taking
/// the lock, so an empty file is read again a few times (at most 0.2 s) before giving up.
fn holder_of_live_lock(file: &mut File) -> Option<Holder> {
    for _ in 0..10 {
        if let Some(h) = read_holder(file) {
            return Some(h);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// The holder a lock file records; `None` when it is empty (released, or its holder has
/// not written it yet) or unreadable.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    serde_yaml::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_again_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s");
        let first = SessionLock::acquire(&s).unwrap();
        assert!(first.taken_over.is_none() && first.unprotected.is_none());
        // flock locks belong to the open file, so a second open in this process conflicts
        // exactly as another process's would.
        let err = SessionLock::acquire(&s).unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("expected Held, got {err:?}");
        };
        assert_eq!(holder.as_ref().unwrap().pid, std::process::id());
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(
            text.contains(&format!("rift tui --follow {}", s.display())),
            "{text}"
        );
        drop(first);
        assert_eq!(std::fs::read_to_string(s.join(LOCK_FILE)).unwrap(), "");
        let again = SessionLock::acquire(&s).unwrap();
        assert!(
            again.taken_over.is_none(),
            "a released lock is not a takeover"
        );
    }

    #[test]
    fn a_lock_file_left_by_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = Holder {
            pid: 999_999,
            host: "elsewhere".into(),
            command: "rift run --session s".into(),
            started: "2020-01-01T00:00:00Z".into(),
        };
        // What a SIGKILLed holder leaves: its record, and no lock (the kernel dropped it).
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_yaml::to_string(&dead).unwrap(),
        )
        .unwrap();
        let got = SessionLock::acquire(dir.path()).unwrap();
        assert_eq!(got.taken_over, Some(dead));
        let now: Holder =
            serde_yaml::from_str(&std::fs::read_to_string(got.lock.path()).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id());
    }
}
