//! Published weights on disk: `--weights tv:resnet50` (and `cargo xtask weights fetch`)
//! downloads the file named in [`model_zoo::pretrained`] once into a cache folder, checks its
//! SHA-256 before renaming it into place, resumes a cut download, and never hands out a file
//! that does not match, as `torch.hub` does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use data::datasets::fetch::{RemoteFile, digest_matches, download_within, sha256_file};
use model_zoo::Preprocessing;
use model_zoo::pretrained::{self, PublishedWeights, ShippedWeights};

use crate::error::TrainError;

/// The environment variable that moves the cache (like `TORCH_HOME`).
pub const CACHE_ENV: &str = "CNN_ZOO_CACHE";

/// Where published weights are kept: `$CNN_ZOO_CACHE/weights`, else
/// `$XDG_CACHE_HOME/cnn-zoo/weights`, else `~/.cache/cnn-zoo/weights`.
pub fn cache_dir() -> PathBuf {
    let root = std::env::var_os(CACHE_ENV)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("cnn-zoo")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cnn-zoo")))
        .unwrap_or_else(|| PathBuf::from(".cache/cnn-zoo"));
    root.join("weights")
}

fn remote(weights: &PublishedWeights) -> RemoteFile {
    RemoteFile {
        url: weights.url,
        file_name: weights.file_name(),
        sha256: weights.sha256_prefix,
    }
}

/// `weights`'s file in `dir`, downloaded when it is not there yet (or does not match), waiting
/// at most `stall` for the server's next bytes.
pub fn fetch_into(
    weights: &PublishedWeights,
    dir: &Path,
    stall: Duration,
) -> Result<PathBuf, TrainError> {
    let hint = format!(
        "download {} elsewhere (its SHA-256 starts with {}) and put it at {}, or set {CACHE_ENV}",
        weights.url,
        weights.sha256_prefix,
        dir.join(weights.file_name()).display()
    );
    download_within(&remote(weights), dir, &hint, stall).map_err(TrainError::Data)
}

/// `weights`'s file in the cache folder, downloaded if needed.
pub fn fetch(weights: &PublishedWeights) -> Result<PathBuf, TrainError> {
    fetch_into(weights, &cache_dir(), data::datasets::fetch::STALL_TIMEOUT)
}

/// What a cached file's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Not downloaded yet.
    Missing,
    /// Present and its SHA-256 matches.
    Verified(PathBuf),
    /// Present but another file: it is not used, and `fetch` downloads it again.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Its SHA-256.
        sha256: String,
    },
}

/// Checks `weights`'s file in `dir` against its published hash.
pub fn verify_in(weights: &PublishedWeights, dir: &Path) -> Result<Cached, TrainError> {
    let path = dir.join(weights.file_name());
    if !path.is_file() {
        return Ok(Cached::Missing);
    }
    let sha256 = sha256_file(&path).map_err(TrainError::Data)?;
    Ok(if digest_matches(&remote(weights), &sha256) {
        Cached::Verified(path)
    } else {
        Cached::Mismatch { path, sha256 }
    })
}

/// Weights named rather than given as a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Named {
    /// Published by torchvision (`tv:…`), downloaded into the cache.
    Published(&'static PublishedWeights),
    /// Trained and shipped by this project (`zoo:…`), written into the cache from the binary.
    Shipped(&'static ShippedWeights),
}

impl Named {
    /// Its name (`tv:resnet50.imagenet1k_v2`, `zoo:lenet5.mnist`).
    pub fn name(&self) -> String {
        match self {
            Named::Published(weights) => weights.name(),
            Named::Shipped(weights) => weights.name(),
        }
    }

    /// The registry entry it loads into.
    pub fn model(&self) -> &'static str {
        match self {
            Named::Published(weights) => weights.model,
            Named::Shipped(weights) => weights.model,
        }
    }

    /// Whether the model is built with `transform_input` (torchvision's GoogLeNet weights).
    pub fn transform_input(&self) -> bool {
        matches!(self, Named::Published(weights) if weights.transform_input)
    }

    /// The class names, index by index.
    pub fn classes(&self) -> Vec<String> {
        match self {
            Named::Published(weights) => weights.classes.names(),
            Named::Shipped(weights) => weights.classes.names(),
        }
    }

    /// The preprocessing its recipe used, where it is not the registry entry's own.
    pub fn preprocessing(&self) -> Option<Preprocessing> {
        match self {
            Named::Published(weights) => Some(weights.preprocessing()),
            Named::Shipped(_) => None,
        }
    }
}

/// Shipped weights' file in `dir`, written from the binary's copy unless a matching file is
/// there already.
pub fn unpack_into(weights: &ShippedWeights, dir: &Path) -> Result<PathBuf, TrainError> {
    let path = dir.join(weights.file_name);
    if path.is_file() && sha256_file(&path).map_err(TrainError::Data)? == weights.sha256 {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| TrainError::Config(format!("{}: {e}", dir.display())))?;
    crate::atomic_file::write_atomically(&path, weights.bytes)?;
    Ok(path)
}

/// `spec` as a file to load: published weights (`tv:…`) are fetched into the cache, shipped
/// ones (`zoo:…`) written there, anything else is a path. Named weights come with their
/// description.
pub fn resolve(spec: &Path) -> Result<(PathBuf, Option<Named>), TrainError> {
    let text = spec.to_string_lossy();
    if text.starts_with("zoo:") {
        let weights = pretrained::find_shipped(&text).map_err(TrainError::Config)?;
        return Ok((
            unpack_into(weights, &cache_dir())?,
            Some(Named::Shipped(weights)),
        ));
    }
    if !pretrained::is_published_name(&text) {
        return Ok((spec.to_path_buf(), None));
    }
    let weights = pretrained::find(&text).map_err(TrainError::Config)?;
    Ok((fetch(weights)?, Some(Named::Published(weights))))
}
