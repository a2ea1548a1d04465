//! One candidate's directory, the one layout `rift compare` and the explorer share:
//! `ROOT/candidates/NAME/` holds a complete session (so `rift report` and `rift tui
//! --resume` open it on its own) and, once `rift compare` has finished the candidate, its
//! table row `candidate.yaml`. Every place that builds, lists or reads these directories
//! goes through this type.
use super::compare::{Candidate, CandidateRow, CANDIDATES_DIR, CANDIDATE_FILE};
use crate::engine::files::{atomic_write, WriteError};
use crate::engine::session::Session;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateDir {
    path: PathBuf,
}

impl CandidateDir {
    /// `ROOT/candidates/NAME` of `candidate`.
    pub fn of(root: &Path, candidate: &Candidate) -> CandidateDir {
        CandidateDir {
            path: root.join(Self::relative(candidate)),
        }
    }

    /// `candidates/NAME`, as a comparison's rows record it (`CandidateRow::session`).
    pub fn relative(candidate: &Candidate) -> String {
        format!("{CANDIDATES_DIR}/{}", candidate.dir_name())
    }

    /// The candidate directories under `root` that hold a session, in name order.
    pub fn all(root: &Path) -> Vec<CandidateDir> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(CANDIDATES_DIR))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|d| Session::path(d).is_file())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs.into_iter().map(|path| CandidateDir { path }).collect()
    }

    /// The candidate directory at `path` (one listed, or on display).
    pub fn at(path: &Path) -> CandidateDir {
        CandidateDir {
            path: path.to_path_buf(),
        }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// Its `candidate.yaml`.
    pub fn row_file(&self) -> PathBuf {
        self.path.join(CANDIDATE_FILE)
    }

    /// The row `rift compare` wrote: None when there is none, an error naming the file
    /// when it is there but cannot be read.
    pub fn row(&self) -> Result<Option<CandidateRow>, String> {
        let file = self.row_file();
        if !file.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
    }

    /// The row of `candidate` when this directory holds it finished.
    pub fn finished(&self, candidate: &Candidate) -> Option<CandidateRow> {
        self.row()
            .ok()
            .flatten()
            .filter(|r| r.candidate == candidate.label())
    }

    /// The name `rift compare` gave the candidate, when it finished it here.
    pub fn compare_label(&self) -> Option<String> {
        self.row().ok().flatten().map(|r| r.candidate)
    }

    /// Writes the finished candidate's row (atomically).
    pub fn write_row(&self, row: &CandidateRow) -> Result<(), WriteError> {
        let text = serde_yaml::to_string(row).map_err(|e| WriteError::File {
            path: self.row_file(),
            source: std::io::Error::other(e.to_string()),
        })?;
        atomic_write(&self.row_file(), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_named_listed_and_their_rows_read() {
        let root = tempfile::tempdir().unwrap();
        let c = Candidate::Named(vec!["layer1.0.conv1".into(), "fc".into()]);
        let dir = CandidateDir::of(root.path(), &c);
        assert_eq!(CandidateDir::relative(&c), "candidates/layer1.0.conv1-fc");
        assert_eq!(dir.path(), root.path().join("candidates/layer1.0.conv1-fc"));
        assert_eq!(dir.row(), Ok(None));
        assert!(CandidateDir::all(root.path()).is_empty());
        std::fs::create_dir_all(dir.path()).unwrap();
        std::fs::write(Session::path(dir.path()), "x").unwrap();
        assert_eq!(CandidateDir::all(root.path()), vec![dir.clone()]);
        std::fs::write(dir.row_file(), "candidate: [").unwrap();
        let err = dir.row().unwrap_err();
        assert!(err.contains("candidate.yaml"), "{err}");
        assert_eq!(dir.finished(&c), None);
    }
}
