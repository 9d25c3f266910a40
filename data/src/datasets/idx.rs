//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.), raw or gzip-compressed: a magic
//! number (two zero bytes, a type code, the number of dimensions), big-endian u32 dimensions,
//! then the data.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::datasets::{Dataset, Sample};
use crate::error::DataError;
use crate::image::Image;

/// An unsigned-byte IDX array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values.
    pub data: Vec<u8>,
}

/// Reads a file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read", e))?;
    read_maybe_gz_bytes(&bytes, path)
}

/// Gunzips `bytes` when they start with the gzip magic; `path` names them in errors.
pub fn read_maybe_gz_bytes(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::new(path, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// Parses IDX bytes; `path` names the source in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 {
        return Err(DataError::at(
            path,
            0,
            "too short for an IDX header (4-byte magic)",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::at(
            path,
            0,
            format!(
                "not an IDX file: magic starts {:02x} {:02x}, expected 00 00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::at(
            path,
            2,
            format!(
                "IDX type code 0x{:02x} is not unsigned byte (0x08)",
                bytes[2]
            ),
        ));
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 {
        return Err(DataError::at(path, 3, "IDX array with no dimension"));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(DataError::at(
            path,
            bytes.len() as u64,
            format!("truncated header: {rank} dimensions need {header} bytes"),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| DataError::at(path, 4, format!("dimensions {dims:?} overflow")))?;
    let body = bytes.len() - header;
    if body != expected {
        let problem = if body < expected {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(DataError::at(
            path,
            (header + body.min(expected)) as u64,
            format!("{problem}: dimensions {dims:?} need {expected} data bytes, found {body}"),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file (raw or `.gz`).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    parse_idx(&read_maybe_gz(path)?, path)
}

/// MNIST's digits 0 to 9.
pub const MNIST_CLASSES: usize = 10;

/// Images and labels from a pair of IDX arrays.
#[derive(Debug, Clone)]
pub struct IdxDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    height: usize,
    width: usize,
    classes: Vec<String>,
}

/// MNIST's training or test half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl IdxDataset {
    /// Pairs an image array `[n, h, w]` with a label array `[n]` of labels below `classes`;
    /// names in errors are `images_path` and `labels_path`. A label outside the classes is an
    /// error naming its record and value (it would otherwise index past the model's head).
    pub fn new(
        images: IdxArray,
        labels: IdxArray,
        classes: usize,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self, DataError> {
        let [n, height, width] = images.dims[..] else {
            return Err(DataError::new(
                images_path,
                format!("expected 3 dimensions [n, h, w], found {:?}", images.dims),
            ));
        };
        if labels.dims != [n] {
            return Err(DataError::new(
                labels_path,
                format!(
                    "expected {n} labels to match {}, found dimensions {:?}",
                    images_path.display(),
                    labels.dims
                ),
            ));
        }
        let outside = labels
            .data
            .iter()
            .enumerate()
            .find(|(_, label)| usize::from(**label) >= classes);
        if let Some((record, label)) = outside {
            return Err(DataError::new(
                labels_path,
                format!(
                    "label {label} of record {record} is outside the {classes} classes \
                     (0 to {})",
                    classes.saturating_sub(1)
                ),
            ));
        }
        Ok(Self {
            images: images.data,
            labels: labels.data,
            height,
            width,
            classes: (0..classes).map(|c| c.to_string()).collect(),
        })
    }

    /// Reads an image file and a label file of labels below `classes`.
    pub fn open(images_path: &Path, labels_path: &Path, classes: usize) -> Result<Self, DataError> {
        Self::new(
            read_idx(images_path)?,
            read_idx(labels_path)?,
            classes,
            images_path,
            labels_path,
        )
    }

    /// MNIST from `dir`, holding the canonical file names, gzipped or not.
    pub fn mnist(dir: &Path, split: Split) -> Result<Self, DataError> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |stem: String| -> Result<PathBuf, DataError> {
            [format!("{stem}.gz"), stem.clone()]
                .into_iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| {
                    DataError::new(
                        dir.join(&stem),
                        "MNIST file not found (looked for it with and without .gz); \
                         `cargo xtask data fetch mnist --dir DIR` downloads it",
                    )
                })
        };
        let images = find(format!("{prefix}-images-idx3-ubyte"))?;
        let labels = find(format!("{prefix}-labels-idx1-ubyte"))?;
        Self::open(&images, &labels, MNIST_CLASSES)
    }

    /// Image height and width.
    pub fn image_size(&self) -> [usize; 2] {
        [self.height, self.width]
    }
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let plane = self.height * self.width;
        let pixels = &self.images[index * plane..(index + 1) * plane];
        Ok(Sample {
            image: Image::from_chw_u8(1, self.height, self.width, pixels),
            label: self.label(index),
        })
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }
}
