//! The OOD directory, checked when the pipeline starts: a directory that holds no
//! corruption files means "no OOD stage" (a warning, as before), but one that cannot be
//! read at all (missing, a file, a broken link, no permission) is an error then, not an
//! "OOD skipped" hours later: the user asked for a corrupted set and would not get it.
use crate::engine::data::{cifar_c, mnist_c, tiny_imagenet, DataError, DatasetKind};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OodDirError {
    #[error("cannot read the OOD directory {}: {source}; give --ood-dir (default: --data-dir) the directory that holds {dataset}, or make it readable", dir.display())]
    Unreadable {
        dir: PathBuf,
        dataset: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the OOD directory {} is not a directory; give --ood-dir (default: --data-dir) the directory that holds {dataset}", dir.display())]
    NotADirectory { dir: PathBuf, dataset: &'static str },
    #[error(transparent)]
    Data(DataError),
}

/// The corruptions of `kind` under `dir`: empty when the directory holds none (the OOD
/// stage is skipped with a warning), an error when it, or the corrupted set's folder
/// found in it, cannot be read.
pub fn corruptions_in_reach(kind: DatasetKind, dir: &Path) -> Result<Vec<String>, OodDirError> {
    readable_dir(dir, kind)?;
    let found = match kind {
        DatasetKind::TinyImageNetC => tiny_imagenet::find_c_dir(dir),
        DatasetKind::MnistC => mnist_c::find_dir(dir),
        _ => cifar_c::find_dir(kind, dir),
    };
    match found {
        Ok(found) => readable_dir(&found, kind)?,
        Err(DataError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(OodDirError::Data(e)),
    }
    crate::engine::rift::final_eval::ood::corruptions_found(kind, dir).map_err(OodDirError::Data)
}

/// `dir` is a directory whose entries can be listed.
fn readable_dir(dir: &Path, kind: DatasetKind) -> Result<(), OodDirError> {
    let unreadable = |source| OodDirError::Unreadable {
        dir: dir.to_path_buf(),
        dataset: kind.name(),
        source,
    };
    // Follows links: a broken one is "not found".
    let meta = std::fs::metadata(dir).map_err(unreadable)?;
    if !meta.is_dir() {
        return Err(OodDirError::NotADirectory {
            dir: dir.to_path_buf(),
            dataset: kind.name(),
        });
    }
    std::fs::read_dir(dir).map_err(unreadable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const C10: DatasetKind = DatasetKind::Cifar10C;

    #[test]
    fn an_empty_directory_has_no_corruptions_and_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            corruptions_in_reach(C10, dir.path()).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn corruption_files_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("CIFAR-10-C");
        std::fs::create_dir(&c).unwrap();
        for f in ["labels.npy", "fog.npy", "snow.npy"] {
            std::fs::write(c.join(f), b"").unwrap();
        }
        assert_eq!(
            corruptions_in_reach(C10, dir.path()).unwrap(),
            ["fog", "snow"]
        );
    }

    #[test]
    fn a_file_a_broken_link_and_a_missing_path_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        let missing = dir.path().join("missing");
        for (path, kind) in [
            (&file, "is not a directory"),
            (&link, "cannot read"),
            (&missing, "cannot read"),
        ] {
            let err = corruptions_in_reach(C10, path).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains(kind) && err.contains("--ood-dir"), "{err}");
        }
    }
}
