//! Files written so that nothing already saved is lost: a temporary file, then a rename.

use std::path::{Path, PathBuf};

use burn::module::Module;

/// Why a file could not be written.
#[derive(Debug)]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for WriteError {}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn rename_into_place(temporary: &Path, path: &Path) -> Result<(), WriteError> {
    std::fs::rename(temporary, path).map_err(|e| WriteError {
        path: path.to_path_buf(),
        problem: format!("rename from {}: {e}", temporary.display()),
    })
}

/// Writes `bytes` to `path` through a temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let temporary = temporary(path);
    std::fs::write(&temporary, bytes).map_err(|e| WriteError {
        path: temporary.clone(),
        problem: e.to_string(),
    })?;
    rename_into_place(&temporary, path)
}

/// Reads a raw little-endian `f32` file that must hold exactly `values` numbers.
pub(crate) fn read_f32s(path: &Path, values: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() != values * 4 {
        return Err(format!(
            "{}: {} bytes, expected {} ({values} f32 values)",
            path.display(),
            bytes.len(),
            values * 4
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Saves `module`'s weights as burnpack at `path` through a temporary file.
pub fn save_module<M: Module>(module: M, path: &Path) -> Result<(), WriteError> {
    let temporary = temporary(path);
    module.save_file(&temporary).map_err(|e| WriteError {
        path: temporary.clone(),
        problem: format!("{e:?}"),
    })?;
    rename_into_place(&temporary, path)
}
