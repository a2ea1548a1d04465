//! The session locks this process holds (`rift::engine::session_lock`): taken by one call
//! where a command opens its session directory (`run::open` for `rift run` and `rift
//! compare`, `tui::explore` for the explorer), kept until the command returns, then
//! released by `main` (`release_held_locks`). A process that dies instead leaves its record
//! in the lock file, and the next command says whose lock it took over.
use anyhow::Result;
use rift::engine::session_lock::SessionLock;
use std::path::Path;
use std::sync::Mutex;

static HELD: Mutex<Vec<SessionLock>> = Mutex::new(Vec::new());

/// Locks session directory `dir` (creating it) until the command ends, or refuses when
/// another live rift process holds it.
pub fn hold_session_lock(dir: &Path) -> Result<()> {
    let got = SessionLock::acquire(dir)?;
    if let Some(dead) = &got.taken_over {
        eprintln!(
            "note: {} was last locked by {}, which ended without releasing it (killed?); this process takes the session over",
            got.lock.path().display(),
            dead.describe()
        );
    }
    if let Some(why) = &got.unprotected {
        eprintln!("warning: {why}; a second rift process on this session would not be refused");
    }
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(got.lock);
    Ok(())
}

/// Empties and releases every lock taken by `hold_session_lock` (at the command's end).
pub fn release_held_locks() {
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}
