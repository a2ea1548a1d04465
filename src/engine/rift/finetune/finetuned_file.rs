//! The fine-tuned weights a session names, when a run continues that session: reloaded,
//! or refused with the file named; never silently fine-tuned over. A corrupt or foreign
//! `finetuned.safetensors` used to start a new fine-tuning that overwrote it, so the only
//! copy of the work was lost without a word, and the sweep saved beside it described
//! weights that no longer existed.
use crate::engine::checkpoint::load_checkpoint;
use crate::engine::rift::events::{Event, Sink};
use crate::engine::rift::pipeline::{Pipeline, PipelineError};
use crate::engine::session::Session;
use std::path::{Path, PathBuf};

impl Pipeline {
    /// Reloads the fine-tuned weights the session names, to continue from them. Ok(true):
    /// reloaded. Ok(false): nothing to reload, so fine-tuning runs: the session names no
    /// file, or the file is gone (deleted to fine-tune again; a warning says so). A file
    /// that is there but cannot be read, or does not fit the model, is refused and left
    /// as it is.
    pub fn continue_finetuned(&mut self, sink: Sink) -> Result<bool, PipelineError> {
        let Some(path) = named_file(&self.setup.session_dir, &self.session) else {
            return Ok(false);
        };
        if is_gone(&path) {
            sink(Event::Warning {
                message: format!(
                    "the session's fine-tuned weights {} are gone: fine-tuning again",
                    path.display()
                ),
            });
            return Ok(false);
        }
        self.reload_finetuned().map_err(|e| unusable(path, e))
    }
}

/// Checks that the fine-tuned weights `session` names in `dir`, if any, can be read (a
/// file that is gone is fine: fine-tuning runs again). `rift compare` checks every
/// candidate this way before its first stage; the fit to the model is checked when the
/// weights are reloaded.
pub fn check_finetuned_file(dir: &Path, session: &Session) -> Result<(), PipelineError> {
    match named_file(dir, session) {
        Some(path) if !is_gone(&path) => match load_checkpoint(&path) {
            Ok(_) => Ok(()),
            Err(source) => Err(unusable(
                path.clone(),
                PipelineError::Reload {
                    path,
                    source: Box::new(source),
                },
            )),
        },
        _ => Ok(()),
    }
}

fn named_file(dir: &Path, session: &Session) -> Option<PathBuf> {
    session.finetuned_weights.as_ref().map(|f| dir.join(f))
}

/// Nothing at `path`, not even a broken link (which is refused: its target is named).
fn is_gone(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

fn unusable(path: PathBuf, e: PipelineError) -> PipelineError {
    PipelineError::FinetunedUnusable {
        path,
        source: Box::new(e),
    }
}
