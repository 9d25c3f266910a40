//! Ensembles and test-time augmentation on two small LeNet-5s trained for real: an ensemble of
//! one is the model itself, test-time augmentation is batched and exact, averaging outputs
//! works where averaging weights breaks (the chapter's warning), and the ensemble experiment
//! writes its table and plot and keeps finished members when run again.

mod common;

use common::{one_run_at_a_time, run_dir};
use std::path::PathBuf;
use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use data::transforms::Views;
use data::{Rng, Transform};
use model_zoo::{Classifier, ModelOptions, ZooModel};
use trainer::config::{Progress, TrainConfig, TrainControl};
use trainer::ensemble::{
    Averaging, EnsembleConfig, accuracy, ensemble_outputs, evaluate_ensemble, forward_views,
};
use trainer::eval::{EvalSplit, evaluate_run};
use trainer::experiment::ensemble::{self, EnsembleExperiment};
use trainer::train::train;

/// LeNet-5 on 2,500 embedded digits (2,000 to train on), 3 epochs.
fn small_run(seed: u64, out: PathBuf) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        limit: Some(2500),
        validation: Some(500),
        workers: 2,
        seed,
        progress: Progress::Quiet,
        out,
        ..TrainConfig::new("lenet5")
    }
}

/// Two LeNet-5 runs that differ only in their seed, trained once for all the tests here.
fn two_members() -> &'static [PathBuf; 2] {
    static MEMBERS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let _turn = one_run_at_a_time();
        [0, 1].map(|seed| {
            let out = run_dir(&format!("ensemble-member-{seed}"));
            train(&small_run(seed, out.clone()), &TrainControl::default()).unwrap();
            out
        })
    })
}

fn load(run: &std::path::Path, device: &Device) -> ZooModel {
    model_zoo::create("lenet5", &ModelOptions::new(), device)
        .unwrap()
        .try_load_file(run.join("best.bpk"))
        .unwrap()
}

#[test]
fn an_ensemble_of_one_is_the_model_itself() {
    let [run, _] = two_members();
    let single = evaluate_run(run, None, EvalSplit::Test).unwrap();
    let ensemble = evaluate_ensemble(&EnsembleConfig::new(std::slice::from_ref(run))).unwrap();
    assert_eq!(ensemble.images, single.images);
    assert_eq!(ensemble.top1, single.top1);
    assert_eq!(ensemble.top5, single.top5);
    assert_eq!(ensemble.members[0].top1, single.top1);
    assert_eq!(ensemble.top1_centre, single.top1);
    assert_eq!(ensemble.gain_over_mean_member, 0.0);
    assert_eq!(ensemble.cost.forward_passes_per_image, 1);
}

#[test]
fn test_time_augmentation_is_one_batched_forward_pass_per_member() {
    let members = two_members().to_vec();
    let config = EnsembleConfig {
        views: Views::TenCrop,
        batch_size: Some(64),
        ..EnsembleConfig::new(&members)
    };
    let outputs = ensemble_outputs(&config).unwrap();
    let images = outputs.labels.len();
    assert_eq!(images, 2000);
    // 2,000 images in batches of 64: 32 forward calls per member, each over 640 crops.
    assert_eq!(outputs.cost.forward_calls, 2 * images.div_ceil(64));
    assert_eq!(outputs.cost.forward_passes_per_image, 20);
    assert!(outputs.cost.peak_memory_bytes.is_some_and(|b| b > 0));
    // The centre view alone is plain evaluation.
    let plain = evaluate_run(&members[0], None, EvalSplit::Test).unwrap();
    let (centre_top1, _) = accuracy(&[&outputs.centre[0]], &outputs.labels, 10);
    assert_eq!(centre_top1, plain.top1);
}

#[test]
fn batched_views_equal_each_crop_alone() {
    let [run, _] = two_members();
    let device = Device::flex();
    let model = load(run, &device);
    let preset = data::Preset::Mnist;
    let transform = preset.multi_crop(preset.multi_crop_geometry(32), Views::TenCrop);
    let images: Vec<data::Image> = (0..3)
        .map(|i| {
            let mut image = data::Image::zeros(1, 28, 28);
            for (j, value) in image.data.iter_mut().enumerate() {
                *value = ((i * 7 + j * 13) % 17) as f32 / 17.0;
            }
            transform.apply(image, &mut Rng::new(0))
        })
        .collect();
    let stacked: Vec<f32> = images.iter().flat_map(|i| i.data.clone()).collect();
    let stacked = Tensor::<4>::from_data(TensorData::new(stacked, [3, 10, 32, 32]), &device);
    let batched = forward_views(&model, stacked, 10, Averaging::Probabilities);
    assert_eq!(batched.dims(), [3, 10, 10]);
    let batched: Vec<f32> = batched.into_data().try_to_vec().unwrap();
    for (i, image) in images.iter().enumerate() {
        for view in 0..10 {
            let crop = image.data[view * 1024..(view + 1) * 1024].to_vec();
            let crop = Tensor::<4>::from_data(TensorData::new(crop, [1, 1, 32, 32]), &device);
            let alone: Vec<f32> = softmax(model.forward(crop), 1)
                .into_data()
                .try_to_vec()
                .unwrap();
            let row = &batched[(i * 10 + view) * 10..][..10];
            for (a, b) in alone.iter().zip(row) {
                assert!((a - b).abs() < 1e-5, "image {i} view {view}: {a} vs {b}");
            }
        }
    }
}

/// Every float parameter of a module, in visiting order.
#[derive(Default)]
struct Collect(Vec<TensorData>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data());
    }
}

/// Replaces each parameter by its mean with the other model's parameter in the same place.
struct AverageWith(std::vec::IntoIter<TensorData>);

impl ModuleMapper for AverageWith {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let other = self.0.next().expect("both models have the same parameters");
        param.map(|tensor| {
            let other = Tensor::<D>::from_data(other, &tensor.device());
            (tensor + other).div_scalar(2.0)
        })
    }
}

#[test]
fn averaging_outputs_works_where_averaging_weights_breaks() {
    let [a, b] = two_members();
    let outputs = ensemble_outputs(&EnsembleConfig::new(&[a.clone(), b.clone()])).unwrap();
    let report = outputs.report();
    let members: Vec<f64> = report.members.iter().map(|m| m.top1).collect();
    let worst = members.iter().copied().fold(1.0, f64::min);
    assert!(worst > 0.85, "the members learned: {members:?}");
    assert!(
        report.top1 >= worst,
        "averaged outputs {} vs members {members:?}",
        report.top1
    );

    // The same two networks with their weights averaged: unrelated coordinates, one broken net.
    let device = Device::flex();
    let mut other = Collect::default();
    load(b, &device).visit(&mut other);
    let averaged = load(a, &device).map(&mut AverageWith(other.0.into_iter()));
    let inputs = data::DataLoader::new(
        std::sync::Arc::new(data::datasets::embedded::mnist_subset(
            data::datasets::idx::Split::Test,
        )),
        std::sync::Arc::new(data::Preset::Mnist.eval(32)),
        data::LoaderConfig::new(500),
    );
    let (mut correct, mut seen) = (0usize, 0usize);
    for batch in inputs.epoch(0) {
        let batch = batch.unwrap().to_device(&device);
        let n = batch.labels.dims()[0];
        let predicted = averaged.forward(batch.images).argmax(1).reshape([n]);
        correct += predicted
            .equal(batch.labels)
            .int()
            .sum()
            .into_scalar::<i64>() as usize;
        seen += n;
    }
    let weights_averaged = correct as f64 / seen as f64;
    assert_eq!(seen, outputs.labels.len());
    // Measured: members 86.4 % and 86.3 %, outputs averaged ≥ both, weights averaged 68.1 %.
    assert!(
        weights_averaged < worst - 0.05 && report.top1 > weights_averaged + 0.05,
        "averaged weights {weights_averaged}, averaged outputs {}, members {members:?}",
        report.top1
    );
}

#[test]
fn the_ensemble_experiment_writes_its_table_and_keeps_finished_members() {
    let out = run_dir("ensemble-experiment");
    let base = TrainConfig {
        epochs: 1,
        limit: Some(700),
        validation: Some(200),
        ..small_run(3, out.clone())
    };
    let experiment = EnsembleExperiment::new(base.clone(), 2, out.clone());
    // Building models draws from the process-wide generator too: the whole test takes its turn.
    let _turn = one_run_at_a_time();
    let report = ensemble::run(&experiment, &TrainControl::default())
        .unwrap()
        .unwrap();
    assert_eq!(report.rows.len(), 2);
    assert_eq!(report.rows[0].ensembles, 2);
    assert_eq!(report.rows[1].forward_passes_ten_crop, 20);
    for file in [
        "experiment.json",
        "results.json",
        "table.md",
        "ensemble.png",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(table.lines().count(), 4, "{table}");
    // Run again: both members are kept, not retrained, and score the same.
    let weights = std::fs::read(out.join("member-1/best.bpk")).unwrap();
    let again = ensemble::run(&experiment, &TrainControl::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("member-1/best.bpk")).unwrap(),
        weights
    );
    assert_eq!(again.rows[1].top1_ten_crop, report.rows[1].top1_ten_crop);
    // Other settings in the same folder are refused, not mixed in.
    let changed = EnsembleExperiment::new(TrainConfig { lr: 0.01, ..base }, 2, out);
    let error = ensemble::run(&changed, &TrainControl::default()).unwrap_err();
    assert!(error.to_string().contains("other settings"), "{error}");
}
