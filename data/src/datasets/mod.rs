//! Datasets: what a sample is, the readers, subsets and splits.

pub mod cifar;
pub mod classes;
pub mod embedded;
pub mod fetch;
pub mod idx;
pub mod image_folder;
pub mod source;

use std::sync::Arc;

use crate::error::DataError;
use crate::image::{Image, ImageU8};
use crate::rng::Rng;

/// One decoded example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image, values in [0, 1].
    pub image: Image,
    /// Class index.
    pub label: usize,
}

/// One example as its file decodes: 8-bit pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleU8 {
    /// The image.
    pub image: ImageU8,
    /// Class index.
    pub label: usize,
}

/// A finite, indexable set of labelled images with a stable order.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of sample `index`, without decoding the image.
    fn label(&self, index: usize) -> usize;

    /// Reads and decodes sample `index`.
    fn get(&self, index: usize) -> Result<Sample, DataError>;

    /// Reads and decodes sample `index` to 8-bit pixels, for datasets of image files (`None`:
    /// only `get`). The pipeline hands these to transforms that crop or resize straight from
    /// the bytes.
    fn get_u8(&self, _index: usize) -> Option<Result<SampleU8, DataError>> {
        None
    }

    /// Class names, indexed by label.
    fn classes(&self) -> &[String];
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }

    fn label(&self, index: usize) -> usize {
        (**self).label(index)
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        (**self).get(index)
    }

    fn get_u8(&self, index: usize) -> Option<Result<SampleU8, DataError>> {
        (**self).get_u8(index)
    }

    fn classes(&self) -> &[String] {
        (**self).classes()
    }
}

/// Number of samples of each class.
pub fn class_counts(dataset: &dyn Dataset) -> Vec<usize> {
    let mut counts = vec![0; dataset.classes().len()];
    for index in 0..dataset.len() {
        counts[dataset.label(index)] += 1;
    }
    counts
}

/// Some samples of another dataset, in a given order.
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// The samples of `inner` at `indices`.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Self {
        assert!(
            indices.iter().all(|&index| index < inner.len()),
            "subset index out of range"
        );
        Self { inner, indices }
    }

    /// The first `limit` samples of `inner` (`--limit`), in its own order.
    pub fn first(inner: Arc<dyn Dataset>, limit: usize) -> Self {
        let indices = (0..limit.min(inner.len())).collect();
        Self { inner, indices }
    }

    /// Which samples of the underlying dataset this subset holds.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        self.inner.get(self.indices[index])
    }

    fn get_u8(&self, index: usize) -> Option<Result<SampleU8, DataError>> {
        self.inner.get_u8(self.indices[index])
    }

    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
}

/// How many of `len` training images a run holds back for validation when not told: 10 %, at
/// most 5,000 (the hold-out of He et al. 2016 §4.2 on CIFAR-10's 50,000), so a small dataset
/// keeps nine images in ten for training.
pub fn default_validation(len: usize) -> usize {
    (len / 10).min(5000)
}

/// Splits `dataset` into (train, validation) by `seed`, holding out `validation` samples.
/// The same seed always gives the same split; each part keeps the dataset's order.
pub fn split(dataset: Arc<dyn Dataset>, validation: usize, seed: u64) -> (Subset, Subset) {
    let validation = validation.min(dataset.len());
    let order = Rng::new(seed ^ 0x5b11).permutation(dataset.len());
    let mut held_out: Vec<usize> = order[..validation].to_vec();
    let mut kept: Vec<usize> = order[validation..].to_vec();
    held_out.sort_unstable();
    kept.sort_unstable();
    (
        Subset::new(Arc::clone(&dataset), kept),
        Subset::new(dataset, held_out),
    )
}
