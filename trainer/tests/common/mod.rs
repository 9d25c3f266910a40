//! What the trainer's integration tests share.

use std::path::{Path, PathBuf};
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

/// Writes the first `count` embedded digits of `split` as `side`×`side` PNGs into
/// `root/<label>/`.
#[allow(dead_code)]
pub fn digit_folder(root: &Path, split: data::datasets::idx::Split, count: usize, side: u32) {
    let digits = data::datasets::embedded::mnist_subset(split);
    for index in 0..count {
        let digit = image::imageops::resize(
            &digit_image(split, index),
            side,
            side,
            image::imageops::Triangle,
        );
        let class = root.join(data::Dataset::label(&digits, index).to_string());
        std::fs::create_dir_all(&class).unwrap();
        digit.save(class.join(format!("{index}.png"))).unwrap();
    }
}

/// Every float parameter of a module, in visiting order.
#[allow(dead_code)]
#[derive(Default)]
struct Weights(Vec<Vec<f32>>);

impl burn::module::ModuleVisitor for Weights {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::prelude::Tensor<D>>,
    ) {
        self.0
            .push(param.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

/// The LeNet-5 weights of `run`'s `last.bpk`, by value (a file's bytes also hold parameter ids,
/// which differ between runs).
#[allow(dead_code)]
pub fn weights(run: &Path) -> Vec<Vec<f32>> {
    weights_in(run, "last.bpk")
}

/// The float tensors of the LeNet-5 weights file `file` of `run`.
pub fn weights_in(run: &Path, file: &str) -> Vec<Vec<f32>> {
    use burn::module::Module;
    let device = burn::prelude::Device::flex();
    let model = model_zoo::create("lenet5", &model_zoo::ModelOptions::new(), &device)
        .unwrap()
        .try_load_file(run.join(file))
        .unwrap();
    let mut visitor = Weights::default();
    model.visit(&mut visitor);
    visitor.0
}
