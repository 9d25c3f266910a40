//! What the trainer's integration tests share.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Burn's CPU generator is process-wide: runs that overlap would draw each other's numbers, so
/// the tests that train take turns (a real run is one per process).
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn one_run_at_a_time() -> MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An empty folder for a test's run, under Cargo's temporary directory for tests.
pub fn run_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Embedded MNIST digit `index` of `split` (28×28) as an 8-bit grey image, to write as a file.
// Each test crate compiles this module; only those that write images call this.
#[allow(dead_code)]
pub fn digit_image(split: data::datasets::idx::Split, index: usize) -> image::GrayImage {
    use data::Dataset;
    let digits = data::datasets::embedded::mnist_subset(split);
    let pixels: Vec<u8> = digits
        .get(index)
        .unwrap()
        .image
        .data
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    image::GrayImage::from_raw(28, 28, pixels).unwrap()
}
