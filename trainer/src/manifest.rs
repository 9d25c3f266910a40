//! `manifest.json`: the SHA-256 and size of every file a run writes, updated right after each
//! write, so that a file that rotted on disk, was cut by a full disk or was replaced is named
//! before it is resumed, evaluated or loaded, instead of loading silently. A checkpoint's own
//! files are also hashed inside `checkpoint.json` (written after them), which `--resume` checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomically;
use crate::error::TrainError;

/// The manifest's file name in a run folder.
pub const MANIFEST: &str = "manifest.json";

/// What the manifest knows of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Every file of a run with its digest, by name within the run folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The files.
    pub files: BTreeMap<String, FileDigest>,
}

/// The digest of the file at `path`.
pub fn digest(path: &Path) -> Result<FileDigest, TrainError> {
    let bytes = std::fs::metadata(path)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?
        .len();
    let sha256 = data::datasets::fetch::sha256_file(path).map_err(TrainError::Data)?;
    Ok(FileDigest { sha256, bytes })
}

fn read(out: &Path) -> Result<Option<Manifest>, TrainError> {
    let path = out.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::Config(format!("{}: {e}", path.display()))),
    };
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: not a manifest: {e}", path.display())))?;
    if let Some(name) = manifest.files.keys().find(|name| !is_plain_file_name(name)) {
        return Err(TrainError::Config(format!(
            "{}: lists {name:?}, which is not a file in the run folder",
            path.display()
        )));
    }
    Ok(Some(manifest))
}

/// Whether `name` names a file inside a run folder itself: one plain component, so that no
/// manifest or checkpoint can make a check read (or a new checkpoint remove) a file elsewhere,
/// such as `../x` or `/dev/zero`.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// Records the files `written` (names in `out`) as they are now, and forgets `removed`.
pub(crate) fn record(out: &Path, written: &[&str], removed: &[&str]) -> Result<(), TrainError> {
    let mut manifest = read(out)?.unwrap_or_default();
    for name in written {
        manifest
            .files
            .insert(name.to_string(), digest(&out.join(name))?);
    }
    for name in removed {
        manifest.files.remove(*name);
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    write_atomically(&out.join(MANIFEST), &json).map_err(TrainError::from)
}

/// Why a file failed its check.
fn mismatch(path: &Path, expected: &FileDigest, found: &FileDigest, against: &str) -> TrainError {
    TrainError::Config(format!(
        "{}: SHA-256 {} ({} bytes) does not match {} ({} bytes) in {against}: the file changed \
         after the run wrote it (rotted, cut by a full disk, replaced, or written when the run \
         was killed); it is not used",
        path.display(),
        found.sha256,
        found.bytes,
        expected.sha256,
        expected.bytes
    ))
}

/// What checking one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Listed in its folder's manifest, and the same.
    Matches,
    /// Its folder has no manifest, or the manifest does not list it (weights from elsewhere, a
    /// run written before manifests): only its structure is checked where it is loaded.
    Unlisted,
}

/// Checks the file at `path` against the manifest of its folder; a difference is an error
/// naming the file.
pub fn verify(path: &Path) -> Result<Check, TrainError> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Check::Unlisted);
    };
    let Some(expected) = read(folder)?.and_then(|m| m.files.get(name).cloned()) else {
        return Ok(Check::Unlisted);
    };
    let found = digest(path)?;
    if found != expected {
        return Err(mismatch(path, &expected, &found, MANIFEST));
    }
    Ok(Check::Matches)
}

/// Checks the file at `path` against a digest recorded elsewhere (`checkpoint.json`).
pub(crate) fn verify_against(
    path: &Path,
    expected: &FileDigest,
    against: &str,
) -> Result<(), TrainError> {
    let found = digest(path)?;
    if &found != expected {
        return Err(mismatch(path, expected, &found, against));
    }
    Ok(())
}

/// One listed file and what its check found (`Err`: missing or different, with the reason).
pub type FileCheck = (PathBuf, Result<(), String>);

/// Every file the manifest of `out` lists, each with what its check found.
pub fn verify_run(out: &Path) -> Result<Vec<FileCheck>, TrainError> {
    let manifest = read(out)?.ok_or_else(|| {
        TrainError::Config(format!(
            "{}: no {MANIFEST} (a run written before manifests, or not a run folder)",
            out.display()
        ))
    })?;
    Ok(manifest
        .files
        .iter()
        .map(|(name, expected)| {
            let path = out.join(name);
            let outcome = match digest(&path) {
                Ok(found) if &found == expected => Ok(()),
                Ok(found) => Err(mismatch(&path, expected, &found, MANIFEST).to_string()),
                Err(error) => Err(error.to_string()),
            };
            (path, outcome)
        })
        .collect())
}
