//! What an unfinished MRC stage has computed (`mrc_partial.yaml` in the session): the
//! adversarial set's summary, the screening estimates and every exact score finished, all
//! rewritten atomically after each step, so a killed run or an explorer saved mid-MRC loses
//! at most the module in progress. The exact scores are read back so that a continued run
//! scores only the rest (the set and the estimates are recomputed: they are deterministic
//! and cheap). Older sessions wrote a bare list of scores; it still reads. A file that
//! cannot be read is refused, naming it: it holds finished work, so rift neither
//! overwrites it nor scores every module again behind the user's back (`check_partial`
//! lets commands refuse it before any compute).
use crate::engine::rift::mrc::results::{ModuleEstimate, ModuleScore};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The fixed adversarial set MRC measured on: its size and the AT model's loss and
/// accuracy (percent) on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdvSetSummary {
    pub n: usize,
    pub loss: f64,
    pub acc: f64,
}

/// Everything the MRC stage finished so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialMrc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adv_set: Option<AdvSetSummary>,
    /// First-order estimates of every screened module (when screening).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimates: Vec<ModuleEstimate>,
    /// Exact scores, in the order they finished.
    pub scores: Vec<ModuleScore>,
}

/// Both layouts the file has had.
#[derive(Deserialize)]
#[serde(untagged)]
enum PartialFile {
    Record(PartialMrc),
    Scores(Vec<ModuleScore>),
}

#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    #[error("cannot read the partial MRC scores {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a record of MRC scores ({reason}); it holds the exact scores a run had finished, so rift neither overwrites nor ignores it: repair it, or move it away (or continue with --restart-from mrc) to score every module again")]
    Corrupt { path: String, reason: String },
}

/// The scores saved in `path`; none when there is no such file.
pub fn load_partial_scores(path: &Path) -> Result<Vec<ModuleScore>, PartialError> {
    Ok(load_partial(path)?.scores)
}

/// Refuses a partial file that does not read, before any compute (a missing one is fine).
pub fn check_partial(path: &Path) -> Result<(), PartialError> {
    load_partial(path).map(|_| ())
}

/// The record in `path` (an empty one when there is no such file).
pub fn load_partial(path: &Path) -> Result<PartialMrc, PartialError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PartialMrc::default()),
        Err(source) => {
            return Err(PartialError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    match serde_yaml::from_str::<PartialFile>(&text) {
        Ok(PartialFile::Record(r)) => Ok(r),
        Ok(PartialFile::Scores(scores)) => Ok(PartialMrc {
            scores,
            ..PartialMrc::default()
        }),
        Err(e) => Err(PartialError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mrc_partial.yaml");
        assert!(load_partial_scores(&path).unwrap().is_empty());
        std::fs::write(&path, "- name: conv1\n  mrc: [").unwrap();
        let err = load_partial(&path).unwrap_err().to_string();
        assert!(
            err.contains("mrc_partial.yaml") && err.contains("--restart-from mrc"),
            "{err}"
        );
        assert!(check_partial(&path).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "- name: conv1\n  mrc: ["
        );
        // Both layouts read: the bare list older sessions wrote, and the record.
        std::fs::write(&path, "[]").unwrap();
        assert!(load_partial(&path).unwrap().scores.is_empty());
        std::fs::write(&path, "scores: []\nestimates: []\n").unwrap();
        assert_eq!(load_partial(&path).unwrap(), PartialMrc::default());
    }
}
