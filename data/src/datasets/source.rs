//! Datasets named on the command line: `embedded`, `mnist`, `cifar10`, or an image folder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::datasets::Dataset;
use crate::datasets::cifar::{CifarDataset, CifarKind};
use crate::datasets::embedded::mnist_subset;
use crate::datasets::idx::{IdxDataset, Split};
use crate::datasets::image_folder::ImageFolder;
use crate::error::DataError;

/// Where samples come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSource {
    /// The MNIST subset compiled into the crate.
    Embedded,
    /// MNIST's IDX files in `--data-dir`.
    Mnist,
    /// CIFAR-10's binary batches in `--data-dir` (or its `cifar-10-batches-bin`).
    Cifar10,
    /// A class-per-folder tree; with `train/` and `test/` sub-folders each split uses its own.
    ImageFolder(PathBuf),
}

impl DatasetSource {
    /// Parses a `--dataset` value.
    pub fn parse(name: &str) -> Self {
        match name {
            "embedded" => Self::Embedded,
            "mnist" => Self::Mnist,
            "cifar10" => Self::Cifar10,
            path => Self::ImageFolder(PathBuf::from(path)),
        }
    }

    /// Image channels the source yields (image folders decode to RGB).
    pub fn channels(&self) -> usize {
        match self {
            Self::Embedded | Self::Mnist => 1,
            Self::Cifar10 | Self::ImageFolder(_) => 3,
        }
    }

    /// For an image folder, the longer side of the largest of 16 training images spread over
    /// it (from their headers); `None` for the named datasets, whose recipes are their own.
    pub fn folder_image_side(&self) -> Result<Option<usize>, DataError> {
        let Self::ImageFolder(root) = self else {
            return Ok(None);
        };
        let nested = root.join("train");
        let dir = if nested.is_dir() { &nested } else { root };
        ImageFolder::open(dir, 3)?.largest_side(16).map(Some)
    }

    /// Opens `split`; `data_dir` holds the downloaded files of `mnist` and `cifar10`.
    pub fn open(&self, split: Split, data_dir: &Path) -> Result<Arc<dyn Dataset>, DataError> {
        Ok(match self {
            Self::Embedded => Arc::new(mnist_subset(split)),
            Self::Mnist => Arc::new(IdxDataset::mnist(data_dir, split)?),
            Self::Cifar10 => {
                let nested = data_dir.join("cifar-10-batches-bin");
                let dir = if nested.is_dir() {
                    nested
                } else {
                    data_dir.to_path_buf()
                };
                Arc::new(CifarDataset::open(&dir, CifarKind::Cifar10, split)?)
            }
            Self::ImageFolder(root) => {
                let name = match split {
                    Split::Train => "train",
                    Split::Test => "test",
                };
                let nested = root.join(name);
                let dir = if nested.is_dir() {
                    nested
                } else {
                    root.clone()
                };
                Arc::new(ImageFolder::open(&dir, 3)?)
            }
        })
    }
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded"),
            Self::Mnist => f.write_str("mnist"),
            Self::Cifar10 => f.write_str("cifar10"),
            Self::ImageFolder(root) => write!(f, "{}", root.display()),
        }
    }
}
