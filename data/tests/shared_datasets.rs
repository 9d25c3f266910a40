//! The real datasets in `../shared/datasets` (beside the repository, as in this project's CI),
//! which a fresh clone elsewhere does not have: these tests are ignored by `cargo test` and run
//! as their own announced step, `cargo test -p data --test shared_datasets -- --ignored`
//! (`.ci/run` runs it where the folder exists and says so where it does not).

use data::Dataset;
use data::datasets::cifar::CIFAR10_CLASSES;
use data::datasets::class_counts;
use data::datasets::idx::{IdxDataset, Split};
use data::datasets::image_folder::ImageFolder;

#[path = "support/shared_datasets.rs"]
mod shared_datasets;
use shared_datasets::{cifar_folder, shared};

#[test]
#[ignore = "reads ../shared/datasets: cargo test -p data --test shared_datasets -- --ignored"]
fn mnist_has_the_canonical_counts() {
    let dir = shared().join("mnist");
    let train = IdxDataset::mnist(&dir, Split::Train).unwrap();
    let test = IdxDataset::mnist(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.image_size(), [28, 28]);
    // LeCun, Cortes, Burges: digits 0–9 in the training and test sets.
    assert_eq!(
        class_counts(&train),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        class_counts(&test),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
#[ignore = "reads ../shared/datasets: cargo test -p data --test shared_datasets -- --ignored"]
fn cifar10_folders_have_50000_and_10000_images() {
    let root = cifar_folder();
    let train = ImageFolder::open(&root.join("train"), 3).unwrap();
    let test = ImageFolder::open(&root.join("test"), 3).unwrap();
    assert_eq!((train.len(), test.len()), (50_000, 10_000));
    assert_eq!(train.classes(), CIFAR10_CLASSES);
    assert_eq!(class_counts(&train), [5000; 10]);
    assert_eq!(class_counts(&test), [1000; 10]);
    let sample = test.get(1234).unwrap();
    assert_eq!(
        (
            sample.image.channels,
            sample.image.height,
            sample.image.width
        ),
        (3, 32, 32)
    );
    let grey = ImageFolder::open(&root.join("test"), 1)
        .unwrap()
        .get(1234)
        .unwrap();
    assert_eq!(grey.image.channels, 1);
}

#[test]
#[ignore = "reads ../shared/datasets: cargo test -p data --test shared_datasets -- --ignored"]
fn the_embedded_subset_is_the_start_of_mnist() {
    let full = IdxDataset::mnist(&shared().join("mnist"), Split::Train).unwrap();
    let embedded = data::datasets::embedded::mnist_subset(Split::Train);
    for index in [0, 1234, 7999] {
        assert_eq!(embedded.get(index).unwrap(), full.get(index).unwrap());
    }
}
