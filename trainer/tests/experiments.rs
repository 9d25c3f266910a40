//! The chapter's experiments on small inputs: the bottleneck's counted cost, the identity
//! that zero-weight residual blocks compute inside a trained network, and the transfer regimes
//! each leaving alone what they say.

mod common;

use common::{one_run_at_a_time, run_dir};

use burn::prelude::*;
use model_zoo::{ModelOptions, ZooModel};
use trainer::BackendKind;
use trainer::config::{Progress, TrainConfig, TrainControl};
use trainer::experiment::bottleneck::{self, BottleneckExperiment};
use trainer::experiment::identity::{self, IdentityExperiment};
use trainer::experiment::transfer::{self, Regime, TransferExperiment};

#[test]
fn the_bottleneck_costs_a_tenth() {
    let _turn = one_run_at_a_time();
    let experiment = BottleneckExperiment {
        backends: vec![BackendKind::Flex],
        batch_size: 2,
        warmup: 0,
        steps: 1,
        out: run_dir("bottleneck"),
    };
    let report = bottleneck::run(&experiment).unwrap();
    let [naive, bottleneck] = &report.rows[..] else {
        panic!("{:?}", report.rows)
    };
    // The chapter's figures: 28·28·32 outputs × 5·5·192 against 1×1 to 16 channels first.
    assert_eq!(naive.macs, 120_422_400);
    assert_eq!(bottleneck.macs, 12_443_648);
    assert_eq!(naive.params, 5 * 5 * 192 * 32 + 32);
    assert_eq!(bottleneck.params, 192 * 16 + 16 + 5 * 5 * 16 * 32 + 32);
    assert!(naive.median_ms > 0.0 && bottleneck.median_ms > 0.0);
    for file in [
        "experiment.json",
        "results.json",
        "table.md",
        "bottleneck.png",
    ] {
        assert!(experiment.out.join(file).is_file(), "{file}");
    }
}

#[test]
fn zero_weight_residual_blocks_leave_a_trained_network_unchanged() {
    let out = run_dir("identity");
    let base = TrainConfig {
        epochs: 1,
        limit: Some(300),
        validation: Some(100),
        batch_size: 32,
        workers: 2,
        progress: Progress::Quiet,
        out: out.join("trained"),
        ..TrainConfig::new("cifar-resnet20")
    };
    let experiment = IdentityExperiment {
        base,
        run: None,
        blocks: 2,
        seed: 0,
        out: out.clone(),
    };
    let report = {
        let _turn = one_run_at_a_time();
        identity::run(&experiment, &TrainControl::default())
            .unwrap()
            .unwrap()
    };
    let [trained, zero, _residual, plain] = &report.rows[..] else {
        panic!("{:?}", report.rows)
    };
    assert_eq!((trained.depth, zero.depth, plain.depth), (20, 24, 24));
    assert_eq!(zero.top1, trained.top1);
    assert_eq!(zero.loss, trained.loss);
    assert!(
        (plain.loss - trained.loss).abs() > 0.01,
        "plain blocks changed nothing: {} vs {}",
        plain.loss,
        trained.loss
    );
    for file in [
        "experiment.json",
        "results.json",
        "table.md",
        "identity.png",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
}

/// The LeNet-5 weights of a run with `classes` outputs.
fn lenet(run: &std::path::Path, classes: usize) -> model_zoo::models::lenet::LeNet5 {
    let options = ModelOptions::new()
        .with_in_channels(Some(1))
        .with_num_classes(Some(classes));
    let model = model_zoo::create("lenet5", &options, &Device::flex())
        .unwrap()
        .try_load_file(run.join("last.bpk"))
        .unwrap();
    let ZooModel::LeNet5(model) = model else {
        panic!("a LeNet-5")
    };
    model
}

fn same<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> bool {
    a.into_data().try_to_vec::<f32>().unwrap() == b.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn transfer_regimes_start_from_the_pretrained_net_and_freeze_what_they_say() {
    let out = run_dir("transfer");
    let recipe = TrainConfig {
        epochs: 1,
        batch_size: 20,
        workers: 2,
        progress: Progress::Quiet,
        ..TrainConfig::new("lenet5")
    };
    let experiment = TransferExperiment {
        pretrain: TrainConfig {
            classes: Some("0,1,2,3,4,5,6,7".into()),
            limit: Some(600),
            validation: Some(50),
            out: out.join("pretrain"),
            ..recipe.clone()
        },
        task: TrainConfig {
            classes: Some("8,9,neither=*".into()),
            test_per_class: Some(30),
            validation: Some(0),
            ..recipe
        },
        sizes: vec![20],
        middle: "conv2".into(),
        backbone_lr_mult: 0.5,
        out: out.clone(),
    };
    let report = {
        let _turn = one_run_at_a_time();
        transfer::run(&experiment, &TrainControl::default())
            .unwrap()
            .unwrap()
    };
    assert_eq!(report.rows.len(), 4);
    assert!(report.rows.iter().all(|row| row.per_class == 20));
    for file in [
        "experiment.json",
        "results.json",
        "table.md",
        "transfer.png",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    // The pretrained head has 8 outputs; each task run replaced it with 3.
    let pretrained = lenet(&out.join("pretrain"), 8);
    let task = |regime| lenet(&experiment.task_config(regime, 20).out, 3);
    let cached = task(Regime::HeadOnCachedFeatures);
    assert!(same(cached.fc2.weight.val(), pretrained.fc2.weight.val()));
    let middle = task(Regime::FreezeToMiddle);
    assert!(same(
        middle.conv2.weight.val(),
        pretrained.conv2.weight.val()
    ));
    assert!(!same(middle.fc1.weight.val(), pretrained.fc1.weight.val()));
    let all = task(Regime::FineTuneAll);
    assert!(!same(all.conv1.weight.val(), pretrained.conv1.weight.val()));
    // Fine-tuning starts from the pretrained weights, scratch does not: after one small epoch
    // the first layer is still far nearer the pretrained one.
    let distance = |model: &model_zoo::models::lenet::LeNet5| {
        (model.conv1.weight.val() - pretrained.conv1.weight.val())
            .abs()
            .sum()
            .into_scalar::<f32>()
    };
    assert!(distance(&all) < 0.5 * distance(&task(Regime::Scratch)));
}
