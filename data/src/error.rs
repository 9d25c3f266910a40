//! Errors that name the file and the problem, never a panic.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong reading or preparing data.
#[derive(Debug)]
pub struct DataError {
    /// The file (or folder) concerned.
    pub path: PathBuf,
    /// Byte offset in the file, where it helps.
    pub offset: Option<u64>,
    /// What is wrong, in words.
    pub problem: String,
}

impl DataError {
    /// An error about `path`.
    pub fn new(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            offset: None,
            problem: problem.into(),
        }
    }

    /// An error at byte `offset` of `path`.
    pub fn at(path: impl AsRef<Path>, offset: u64, problem: impl Into<String>) -> Self {
        Self {
            offset: Some(offset),
            ..Self::new(path, problem)
        }
    }

    /// An I/O error while doing `action` on `path`.
    pub fn io(path: impl AsRef<Path>, action: &str, error: std::io::Error) -> Self {
        Self::new(path, format!("{action}: {error}"))
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(offset) = self.offset {
            write!(f, " (byte {offset})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for DataError {}
