//! Files written so that nothing already saved is lost: a temporary file flushed to disk, then a
//! rename, then the folder flushed.

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

/// Moves a written temporary file to `path` so that it survives a power loss too: the file's
/// data reaches the disk before the rename, and the folder's entry after it.
fn rename_into_place(temporary: &Path, path: &Path) -> Result<(), WriteError> {
    let failed = |path: &Path, what: &str, e: std::io::Error| WriteError {
        path: path.to_path_buf(),
        problem: format!("{what}: {e}"),
    };
    std::fs::File::open(temporary)
        .and_then(|file| file.sync_all())
        .map_err(|e| failed(temporary, "flush to disk", e))?;
    std::fs::rename(temporary, path)
        .map_err(|e| failed(path, &format!("rename from {}", temporary.display()), e))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| failed(folder, "flush the folder to disk", e))
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
