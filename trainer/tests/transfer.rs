//! Transfer learning on the CPU: a CIFAR ResNet-20 starts from saved weights, and after an
//! epoch what the freeze policy names is bit-identical (weights and BatchNorm statistics) while
//! the rest has learned.

mod common;

use common::{one_run_at_a_time, run_dir};

use burn::prelude::*;
use model_zoo::models::cifar_resnet::CifarResNet;
use model_zoo::{Classifier, ModelOptions, ZooModel};
use trainer::atomic_file::save_module;
use trainer::config::{Progress, TrainConfig, TrainControl};
use trainer::train::train;
use trainer::transfer::FreezePolicy;

fn options() -> ModelOptions {
    ModelOptions::new().with_in_channels(Some(1))
}

/// Trains one epoch on 150 embedded digits from `weights`, freezing `policy`; returns the
/// starting network and the trained one.
fn finetune(name: &str, policy: FreezePolicy, backbone_lr_mult: f64) -> (ZooModel, ZooModel) {
    let out = run_dir(name);
    std::fs::create_dir_all(&out).unwrap();
    let device = Device::flex();
    device.seed(3);
    let start = model_zoo::create("cifar-resnet20", &options(), &device).unwrap();
    let weights = out.join("start.bpk");
    save_module(start.clone(), &weights).unwrap();
    let config = TrainConfig {
        epochs: 1,
        limit: Some(200),
        validation: Some(50),
        batch_size: 50,
        workers: 2,
        weights: Some(weights),
        freeze: policy,
        backbone_lr_mult,
        weight_decay: 1e-4,
        progress: Progress::Quiet,
        out: out.clone(),
        ..TrainConfig::new("cifar-resnet20")
    };
    {
        let _turn = one_run_at_a_time();
        train(&config, &TrainControl::default()).unwrap();
    }
    let trained = model_zoo::create("cifar-resnet20", &options(), &device)
        .unwrap()
        .try_load_file(out.join("last.bpk"))
        .unwrap();
    (start, trained)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec().unwrap()
}

/// Whether training left a tensor bit for bit as it was.
fn unchanged<const D: usize>(after: Tensor<D>, before: Tensor<D>) -> bool {
    values(after) == values(before)
}

/// The two CIFAR ResNets of a fine-tuning run.
fn resnets(pair: (ZooModel, ZooModel)) -> (CifarResNet, CifarResNet) {
    let (ZooModel::CifarResNet(before), ZooModel::CifarResNet(after)) = pair else {
        panic!("a CIFAR ResNet")
    };
    (before, after)
}

#[test]
fn all_but_head_keeps_the_backbone_bit_for_bit() {
    let (start, trained) = finetune("transfer-all-but-head", FreezePolicy::AllButHead, 1.0);
    let device = Device::flex();
    let x = Tensor::<4>::ones([2, 1, 32, 32], &device);
    // Same convolutions and the same BatchNorm running statistics: the same features.
    assert!(unchanged(
        trained.forward_features(x.clone()),
        start.forward_features(x)
    ));
    let (before, after) = resnets((start, trained));
    assert!(!unchanged(after.fc.weight.val(), before.fc.weight.val()));
}

#[test]
fn until_a_stage_freezes_it_and_everything_before() {
    let (before, after) = resnets(finetune(
        "transfer-until-layer2",
        FreezePolicy::Until("layer2".into()),
        1.0,
    ));
    assert!(unchanged(
        after.conv1.weight.val(),
        before.conv1.weight.val()
    ));
    assert!(unchanged(
        after.layer2[2].conv2.weight.val(),
        before.layer2[2].conv2.weight.val()
    ));
    assert!(unchanged(
        after.layer2[2].bn2.running_mean.value(),
        before.layer2[2].bn2.running_mean.value()
    ));
    assert!(!unchanged(
        after.layer3[0].conv1.weight.val(),
        before.layer3[0].conv1.weight.val()
    ));
    assert!(!unchanged(after.fc.weight.val(), before.fc.weight.val()));
}

#[test]
fn a_zero_backbone_rate_moves_only_the_head() {
    let (before, after) = resnets(finetune("transfer-backbone-rate", FreezePolicy::None, 0.0));
    // Weights, biases and BatchNorm's γ and β of the backbone: step size 0 × the rate.
    assert!(unchanged(
        after.conv1.weight.val(),
        before.conv1.weight.val()
    ));
    assert!(unchanged(
        after.layer3[2].bn2.gamma.val(),
        before.layer3[2].bn2.gamma.val()
    ));
    assert!(unchanged(
        after.layer3[2].conv2.weight.val(),
        before.layer3[2].conv2.weight.val()
    ));
    assert!(!unchanged(after.fc.weight.val(), before.fc.weight.val()));
    assert!(!unchanged(
        after.fc.bias.unwrap().val(),
        before.fc.bias.unwrap().val()
    ));
}

#[test]
fn an_unknown_stage_is_a_clear_error() {
    let out = run_dir("transfer-unknown-stage");
    let config = TrainConfig {
        epochs: 1,
        limit: Some(100),
        validation: Some(20),
        freeze: "until:layer9".parse().unwrap(),
        progress: Progress::Quiet,
        out,
        ..TrainConfig::new("cifar-resnet20")
    };
    let error = {
        let _turn = one_run_at_a_time();
        train(&config, &TrainControl::default()).unwrap_err()
    };
    let message = error.to_string();
    assert!(message.contains("no module 'layer9'"), "{message}");
    assert!(message.contains("layer3"), "{message}");
    assert!("until:".parse::<FreezePolicy>().is_err());
    assert!("some".parse::<FreezePolicy>().is_err());
}

/// LeNet-5 head trained on 1,000 digits from `weights`, through the frozen backbone or from
/// its cached activations; returns the trained head's weights.
fn head_after(name: &str, weights: &std::path::Path, cache_features: bool) -> Vec<f32> {
    let out = run_dir(name);
    let config = TrainConfig {
        epochs: 2,
        limit: Some(1200),
        validation: Some(200),
        augment: Some("none".into()),
        workers: 2,
        weights: Some(weights.to_path_buf()),
        freeze: FreezePolicy::AllButHead,
        cache_features,
        progress: Progress::Quiet,
        out: out.clone(),
        ..TrainConfig::new("lenet5")
    };
    {
        let _turn = one_run_at_a_time();
        train(&config, &TrainControl::default()).unwrap();
    }
    let trained = model_zoo::create("lenet5", &ModelOptions::new(), &Device::flex())
        .unwrap()
        .try_load_file(out.join("last.bpk"))
        .unwrap();
    let ZooModel::LeNet5(net) = trained else {
        panic!("LeNet-5")
    };
    values(net.fc3.weight.val())
}

#[test]
fn a_head_trained_on_cached_features_matches_one_trained_through_the_backbone() {
    let dir = run_dir("transfer-cache-start");
    std::fs::create_dir_all(&dir).unwrap();
    let device = Device::flex();
    device.seed(5);
    let start = model_zoo::create("lenet5", &ModelOptions::new(), &device).unwrap();
    let weights = dir.join("start.bpk");
    save_module(start, &weights).unwrap();

    let through = head_after("transfer-through-backbone", &weights, false);
    let cache_dir = run_dir("feature-cache");
    let cached = head_after("transfer-cached", &weights, true);
    let files: Vec<_> = std::fs::read_dir(&cache_dir).unwrap().collect();
    assert_eq!(files.len(), 2, "a .json header and the .f32 values");
    let error = through
        .iter()
        .zip(&cached)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(error < 1e-4, "heads differ by {error}");
    // A second run reads the cache back and trains the same head.
    let again = head_after("transfer-cached", &weights, true);
    assert_eq!(again, cached);
}
