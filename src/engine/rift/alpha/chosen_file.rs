//! The chosen weights a session names (`chosen.pth`, `chosen.safetensors`), when a run
//! continues that session: a file that is there but does not load is refused with the
//! file named and left as it is. `rift run` used to look only at whether the files
//! existed, so a truncated or garbage chosen model passed for finished work and the run
//! reported success over it.
use crate::engine::checkpoint::{load_checkpoint, CheckpointError};
use crate::engine::session::Session;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ChosenFileError {
    #[error("the session's chosen weights {} do not load: {source}; rift keeps that file as it is rather than write the chosen model over it: delete {} to write the chosen model again", path.display(), path.display())]
    Unusable {
        path: PathBuf,
        source: Box<CheckpointError>,
    },
}

/// Checks that each chosen-weights file `session` names in `dir` loads. A file that is
/// gone is fine: the chosen model is written again from the fine-tuned weights.
pub fn check_chosen_files(dir: &Path, session: &Session) -> Result<(), ChosenFileError> {
    let Some(chosen) = &session.chosen else {
        return Ok(());
    };
    for file in [&chosen.pth, &chosen.safetensors] {
        let path = dir.join(file);
        let gone = std::fs::symlink_metadata(&path)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        if gone {
            continue;
        }
        load_checkpoint(&path).map_err(|source| ChosenFileError::Unusable {
            path: path.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}
