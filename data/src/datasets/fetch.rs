//! `cargo xtask data fetch mnist|cifar10`: downloads from the canonical hosts, resumes a partial
//! download, checks SHA-256, and renames into place only when the checksum matches.
//! Without network it fails fast and says how to use local copies instead.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::DataError;

/// A file to download and the digest it must have.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// Where it is published.
    pub url: &'static str,
    /// Its name on disk.
    pub file_name: &'static str,
    /// Its SHA-256, hex (the published values, as torchvision's prototype datasets pin them),
    /// or the start of it that a publisher puts in file names (at least 8 digits, checked as
    /// `torch.hub`'s `check_hash` does).
    pub sha256: &'static str,
}

/// MNIST's four IDX files on the mirror TensorFlow and torchvision use.
pub const MNIST: [RemoteFile; 4] = [
    RemoteFile {
        url: "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
        file_name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    RemoteFile {
        url: "https://storage.googleapis.com/cvdf-datasets/mnist/train-labels-idx1-ubyte.gz",
        file_name: "train-labels-idx1-ubyte.gz",
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    RemoteFile {
        url: "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz",
        file_name: "t10k-images-idx3-ubyte.gz",
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    RemoteFile {
        url: "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz",
        file_name: "t10k-labels-idx1-ubyte.gz",
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

/// CIFAR-10's binary version from its author's page (extracts to `cifar-10-batches-bin/`).
pub const CIFAR10: [RemoteFile; 1] = [RemoteFile {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file_name: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
}];

/// The files of a dataset `fetch` knows.
pub fn remote_files(dataset: &str) -> Option<&'static [RemoteFile]> {
    match dataset {
        "mnist" => Some(&MNIST),
        "cifar10" => Some(&CIFAR10),
        _ => None,
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, "cannot open", e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| DataError::io(path, "cannot read", e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn offline_hint(dataset: &str) -> &'static str {
    match dataset {
        "cifar10" => {
            "download cifar-10-binary.tar.gz elsewhere, extract it, and pass \
             `--data-dir <folder holding cifar-10-batches-bin>`; or pass `--dataset <folder>` \
             for an image folder (e.g. ../shared/datasets/cifar10-jpeg.tar.gz extracted)"
        }
        _ => "copy the four MNIST IDX .gz files into a folder and pass `--data-dir <folder>`",
    }
}

/// Whether a file's SHA-256 `digest` is the one `remote` publishes (all of it, or its prefix).
pub fn digest_matches(remote: &RemoteFile, digest: &str) -> bool {
    remote.sha256.len() >= 8 && digest.starts_with(&remote.sha256.to_ascii_lowercase())
}

/// How long a download may wait for the server's next bytes before it stops (keeping what it
/// has for the next attempt to resume).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads `remote` into `dir`, resuming `<file>.part` when present; returns the final path.
/// `hint` ends the error of a failed connection (what to do offline).
pub fn download(remote: &RemoteFile, dir: &Path, hint: &str) -> Result<PathBuf, DataError> {
    download_within(remote, dir, hint, STALL_TIMEOUT)
}

/// [`download`], stopping when the server sends nothing for `stall`.
pub fn download_within(
    remote: &RemoteFile,
    dir: &Path,
    hint: &str,
    stall: Duration,
) -> Result<PathBuf, DataError> {
    let target = dir.join(remote.file_name);
    if target.is_file() && digest_matches(remote, &sha256_file(&target)?) {
        return Ok(target);
    }
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, "cannot create folder", e))?;
    let partial = dir.join(format!("{}.part", remote.file_name));
    let resume_from = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(stall))
        .timeout_per_read(Some(stall))
        .build()
        .into();
    let mut request = agent.get(remote.url);
    if resume_from > 0 {
        request = request.header("Range", &format!("bytes={resume_from}-"));
    }
    let mut response = match request.call() {
        Ok(response) => response,
        // The part already holds the whole file (or more): start again from nothing.
        Err(ureq::Error::StatusCode(416)) if resume_from > 0 => {
            fs::remove_file(&partial).map_err(|e| DataError::io(&partial, "cannot remove", e))?;
            return download_within(remote, dir, hint, stall);
        }
        Err(ureq::Error::StatusCode(code)) => {
            return Err(DataError::new(
                &target,
                format!("the server answered HTTP {code} for {}", remote.url),
            ));
        }
        Err(e) => {
            return Err(DataError::new(
                &target,
                format!("cannot download {}: {e}. Offline? {hint}", remote.url),
            ));
        }
    };
    let append = resume_from > 0 && response.status().as_u16() == 206;
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&partial)
        .map_err(|e| DataError::io(&partial, "cannot write", e))?;
    let mut body = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = body.read(&mut buffer).map_err(|e| {
            DataError::new(
                &partial,
                format!(
                    "download of {} interrupted: {e}; run again to resume",
                    remote.url
                ),
            )
        })?;
        if read == 0 {
            break;
        }
        file.write_all(&buffer[..read])
            .map_err(|e| DataError::io(&partial, "cannot write", e))?;
    }
    file.sync_all()
        .map_err(|e| DataError::io(&partial, "cannot write", e))?;
    let digest = sha256_file(&partial)?;
    if !digest_matches(remote, &digest) {
        fs::remove_file(&partial).map_err(|e| DataError::io(&partial, "cannot remove", e))?;
        return Err(DataError::new(
            &partial,
            format!(
                "SHA-256 {digest} does not match the published {}; removed it",
                remote.sha256
            ),
        ));
    }
    fs::rename(&partial, &target)
        .map_err(|e| DataError::io(&target, "cannot rename into place", e))?;
    Ok(target)
}

/// Fetches `dataset` (`mnist` or `cifar10`) into `dir` and returns the folder to use as
/// `--data-dir`.
pub fn fetch(dataset: &str, dir: &Path) -> Result<PathBuf, DataError> {
    let files = remote_files(dataset).ok_or_else(|| {
        DataError::new(
            dir,
            format!("no download known for '{dataset}' (known: mnist, cifar10)"),
        )
    })?;
    let hint = offline_hint(dataset);
    for remote in files {
        let path = download(remote, dir, hint)?;
        if remote.file_name.ends_with(".tar.gz") {
            unpack(&path, dir)?;
        }
    }
    Ok(match dataset {
        "cifar10" => dir.join("cifar-10-batches-bin"),
        _ => dir.to_path_buf(),
    })
}

/// Extracts the gzip-compressed tar archive `archive` into `dir`. Entries that would land
/// outside `dir` (absolute paths, `..`) are refused by the `tar` crate's `unpack`.
pub fn unpack(archive: &Path, dir: &Path) -> Result<(), DataError> {
    let file = File::open(archive).map_err(|e| DataError::io(archive, "cannot open", e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir)
        .map_err(|e| DataError::new(archive, format!("cannot extract: {e}")))
}
