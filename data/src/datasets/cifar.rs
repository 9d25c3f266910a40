//! CIFAR-10 and CIFAR-100 in the canonical binary layout (Krizhevsky 2009): records of label
//! byte(s) followed by 3,072 pixel bytes, red plane, green plane, blue plane, 32×32 each.
//! CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`, one label byte.
//! CIFAR-100: `train.bin`, `test.bin`, a coarse then a fine label byte (the fine one is used).

use std::io::Write;
use std::path::Path;

use crate::datasets::idx::Split;
use crate::datasets::{Dataset, Sample};
use crate::error::DataError;
use crate::image::Image;

const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10's classes in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// 10 classes, one label byte.
    Cifar10,
    /// 100 fine classes, coarse and fine label bytes.
    Cifar100,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (CifarKind::Cifar10, Split::Train) => {
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
            }
            (CifarKind::Cifar10, Split::Test) => vec!["test_batch.bin".into()],
            (CifarKind::Cifar100, Split::Train) => vec!["train.bin".into()],
            (CifarKind::Cifar100, Split::Test) => vec!["test.bin".into()],
        }
    }
}

/// CIFAR images held in memory.
#[derive(Debug, Clone)]
pub struct CifarDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
}

impl CifarDataset {
    /// Reads the split's batch files from `dir`.
    pub fn open(dir: &Path, kind: CifarKind, split: Split) -> Result<Self, DataError> {
        let mut dataset = Self {
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: match kind {
                CifarKind::Cifar10 => CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
                CifarKind::Cifar100 => (0..100).map(|c| c.to_string()).collect(),
            },
        };
        for file in kind.files(split) {
            dataset.read_batch(&dir.join(file), kind)?;
        }
        Ok(dataset)
    }

    fn read_batch(&mut self, path: &Path, kind: CifarKind) -> Result<(), DataError> {
        let bytes = std::fs::read(path).map_err(|e| {
            DataError::io(
                path,
                "cannot read CIFAR batch (`cargo xtask data fetch cifar10` downloads it)",
                e,
            )
        })?;
        let record = kind.label_bytes() + PIXELS;
        if bytes.is_empty() || bytes.len() % record != 0 {
            let complete = bytes.len() / record;
            return Err(DataError::at(
                path,
                (complete * record) as u64,
                format!(
                    "short CIFAR batch: {} bytes is not a whole number of {record}-byte records \
                     (record {complete} is cut off)",
                    bytes.len()
                ),
            ));
        }
        for (index, chunk) in bytes.chunks_exact(record).enumerate() {
            let label = chunk[kind.label_bytes() - 1];
            if usize::from(label) >= kind.classes() {
                return Err(DataError::at(
                    path,
                    (index * record) as u64,
                    format!(
                        "label {label} of record {index} is not below {}",
                        kind.classes()
                    ),
                ));
            }
            self.labels.push(label);
            self.pixels.extend_from_slice(&chunk[kind.label_bytes()..]);
        }
        Ok(())
    }
}

impl Dataset for CifarDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let pixels = &self.pixels[index * PIXELS..(index + 1) * PIXELS];
        Ok(Sample {
            image: Image::from_chw_u8(3, 32, 32, pixels),
            label: self.label(index),
        })
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }
}

/// Writes records in the CIFAR-10 binary layout: for each (label, CHW pixels) one record.
pub fn write_cifar10_batch(path: &Path, records: &[(u8, Vec<u8>)]) -> Result<(), DataError> {
    let mut bytes = Vec::with_capacity(records.len() * (1 + PIXELS));
    for (label, pixels) in records {
        assert_eq!(pixels.len(), PIXELS, "a CIFAR record has 3×32×32 pixels");
        bytes.push(*label);
        bytes.extend_from_slice(pixels);
    }
    std::fs::File::create(path)
        .and_then(|mut file| file.write_all(&bytes))
        .map_err(|e| DataError::io(path, "cannot write CIFAR batch", e))
}
