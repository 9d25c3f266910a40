//! The embedded default: the first 8,000 training and 2,000 test digits of MNIST (LeCun, Cortes,
//! Burges; CC BY-SA 3.0), compiled into the crate as canonical IDX `.gz` files
//! (`data/assets/make_mnist_subset.py` made them), so training needs nothing fetched first.

use std::path::Path;

use crate::datasets::idx::read_maybe_gz_bytes;
use crate::datasets::idx::{IdxDataset, MNIST_CLASSES, Split, parse_idx};

const TRAIN_IMAGES: &[u8] = include_bytes!("../../assets/mnist-subset/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../assets/mnist-subset/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../assets/mnist-subset/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../assets/mnist-subset/t10k-labels-idx1-ubyte.gz");

/// The embedded MNIST subset's training (8,000) or test (2,000) half.
pub fn mnist_subset(split: Split) -> IdxDataset {
    let (images, labels, name) = match split {
        Split::Train => (TRAIN_IMAGES, TRAIN_LABELS, "train"),
        Split::Test => (TEST_IMAGES, TEST_LABELS, "t10k"),
    };
    let images_path = Path::new("embedded").join(format!("{name}-images-idx3-ubyte.gz"));
    let labels_path = Path::new("embedded").join(format!("{name}-labels-idx1-ubyte.gz"));
    let read = |bytes: &[u8], path: &Path| {
        read_maybe_gz_bytes(bytes, path).and_then(|raw| parse_idx(&raw, path))
    };
    read(images, &images_path)
        .and_then(|images| {
            let labels = read(labels, &labels_path)?;
            IdxDataset::new(images, labels, MNIST_CLASSES, &images_path, &labels_path)
        })
        .expect("the embedded MNIST subset is valid IDX (checked by its test)")
}
