//! Files written so that nothing already saved is lost: a temporary file flushed to disk, then a
//! rename, then the folder flushed; and a way to quit (a second Ctrl-C) that waits for the
//! writes in progress, so that a checkpoint's files and their manifest are never left half-way.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// Writes in progress hold it shared; quitting takes it whole.
static WRITES: RwLock<()> = RwLock::new(());

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Held while a group of files is written that belong together (a checkpoint's weights,
/// optimiser state, `checkpoint.json` and manifest): [`wait_for_writes`] waits for it to drop.
pub struct WritesInProgress {
    _shared: Option<RwLockReadGuard<'static, ()>>,
}

/// Marks a write (or a group of them) in progress on this thread. Nested calls are free: only
/// the outermost takes the lock, since a second shared lock could wait behind a quitter that
/// waits for the first.
pub fn writing() -> WritesInProgress {
    let outermost = HELD.with(|held| {
        held.set(held.get() + 1);
        held.get() == 1
    });
    WritesInProgress {
        _shared: outermost.then(|| WRITES.read().unwrap_or_else(|p| p.into_inner())),
    }
}

impl Drop for WritesInProgress {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get() - 1));
    }
}

/// Waits until no write is in progress, then keeps new ones from starting for as long as the
/// guard lives: what a process about to exit holds.
pub fn wait_for_writes() -> RwLockWriteGuard<'static, ()> {
    WRITES.write().unwrap_or_else(|p| p.into_inner())
}

/// Ends the process with `code` once the writes in progress are done.
pub fn exit_after_writes(code: i32) -> ! {
    let _no_more_writes = wait_for_writes();
    std::process::exit(code)
}

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
    let _writing = writing();
    let temporary = temporary(path);
    std::fs::write(&temporary, bytes).map_err(|e| WriteError {
        path: temporary.clone(),
        problem: e.to_string(),
    })?;
    rename_into_place(&temporary, path)
}

/// Copies the file `source` to `path` through a temporary file.
pub fn copy_atomically(source: &Path, path: &Path) -> Result<(), WriteError> {
    let _writing = writing();
    let temporary = temporary(path);
    std::fs::copy(source, &temporary).map_err(|e| WriteError {
        path: temporary.clone(),
        problem: format!("copy from {}: {e}", source.display()),
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
    let _writing = writing();
    let temporary = temporary(path);
    module.save_file(&temporary).map_err(|e| WriteError {
        path: temporary.clone(),
        problem: format!("{e:?}"),
    })?;
    rename_into_place(&temporary, path)
}
