//! The exact MRC scores a killed run had finished (`mrc_partial.yaml` in the session), read
//! back so that a continued run scores only the rest. A file that cannot be read as scores
//! is never silently dropped: it is moved aside (`mrc_partial.yaml.corrupt-N`), a warning
//! says so and where, and every module is scored again.
use super::events::{Event, Sink};
use super::results::ModuleScore;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    #[error("cannot read the partial MRC scores {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a list of module scores ({reason}) and cannot be moved aside to {aside}: {source}; move or delete it yourself to score every module again")]
    SetAside {
        path: String,
        reason: String,
        aside: String,
        source: std::io::Error,
    },
}

/// The scores saved in `path`; none when there is no such file. A file that does not
/// parse is renamed to the first free `<name>.corrupt-N` and reported through `sink`.
pub fn load_partial_scores(path: &Path, sink: Sink) -> Result<Vec<ModuleScore>, PartialError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PartialError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let reason = match serde_yaml::from_str::<Vec<ModuleScore>>(&text) {
        Ok(scores) => return Ok(scores),
        Err(e) => e.to_string(),
    };
    let aside = free_aside_name(path);
    std::fs::rename(path, &aside).map_err(|source| PartialError::SetAside {
        path: path.display().to_string(),
        reason: reason.clone(),
        aside: aside.display().to_string(),
        source,
    })?;
    sink(Event::Warning {
        message: format!(
            "{} is not a list of module scores ({reason}); kept as {} and every module is scored again",
            path.display(),
            aside.display()
        ),
    });
    Ok(Vec::new())
}

/// `<path>.corrupt-N` for the smallest N ≥ 1 that names no file yet.
fn free_aside_name(path: &Path) -> PathBuf {
    let mut n = 1;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".corrupt-{n}"));
        let candidate = PathBuf::from(name);
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_kept_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mrc_partial.yaml");
        assert!(load_partial_scores(&path, &mut |_| {}).unwrap().is_empty());
        std::fs::write(dir.path().join("mrc_partial.yaml.corrupt-1"), "older").unwrap();
        std::fs::write(&path, "- name: conv1\n  mrc: [").unwrap();
        let mut warnings = Vec::new();
        let scores = load_partial_scores(&path, &mut |e| {
            if let Event::Warning { message } = e {
                warnings.push(message)
            }
        })
        .unwrap();
        assert!(scores.is_empty());
        assert!(!path.exists());
        let aside = dir.path().join("mrc_partial.yaml.corrupt-2");
        assert_eq!(
            std::fs::read_to_string(&aside).unwrap(),
            "- name: conv1\n  mrc: ["
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("corrupt-2"), "{}", warnings[0]);
    }
}
