//! Errors of the data layer. Every message names the file or directory involved and, when a
//! dataset cannot be found, the directory layout that was expected, so a user can fix the
//! problem without reading the source.

use std::path::{Path, PathBuf};

/// Anything that can go wrong while locating, reading or decoding a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset's files are not where any accepted layout puts them.
    #[error("dataset {dataset} not found under {}: expected\n{layout}", dir.display())]
    NotFound {
        dataset: String,
        dir: PathBuf,
        layout: String,
    },

    /// An operating-system error while reading or writing a file.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file exists but its content is not what its format says it should be.
    #[error("malformed file {}: {msg}", path.display())]
    Malformed { path: PathBuf, msg: String },

    /// Byte-level parse failure with no file attached yet (see [`DataError::in_file`]).
    #[error("malformed data: {0}")]
    Format(String),

    /// A name given on the command line or in a config is not one we know.
    #[error("unknown dataset '{0}': expected one of cifar10, cifar100, cifar10-c, cifar100-c, tiny-imagenet, tiny-imagenet-c, mnist, imagefolder")]
    UnknownDataset(String),

    /// A request that is well-formed but cannot be served (wrong split, bad severity, ...).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// Attach a file name to a byte-level [`DataError::Format`] error; other variants are
    /// returned unchanged.
    pub fn in_file(self, path: &Path) -> DataError {
        match self {
            DataError::Format(msg) => DataError::Malformed {
                path: path.to_path_buf(),
                msg,
            },
            other => other,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(path: &Path, msg: impl Into<String>) -> DataError {
        DataError::Malformed {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    pub(crate) fn not_found(dataset: &str, dir: &Path, layout: &str) -> DataError {
        let shown = dir.display().to_string();
        DataError::NotFound {
            dataset: dataset.to_string(),
            dir: dir.to_path_buf(),
            layout: layout.replace("<data_dir>", &shown),
        }
    }
}

pub(crate) fn fmt_err(msg: impl Into<String>) -> DataError {
    DataError::Format(msg.into())
}
