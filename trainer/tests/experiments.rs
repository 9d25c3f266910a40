//! The chapter's experiments on small inputs: the bottleneck's counted cost and the identity
//! that zero-weight residual blocks compute inside a trained network.

mod common;

use common::{one_run_at_a_time, run_dir};

use trainer::BackendKind;
use trainer::experiment::bottleneck::{self, BottleneckExperiment};
use trainer::experiment::identity::{self, IdentityExperiment};
use trainer::train::{Progress, TrainConfig, TrainControl};

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
        validation: 100,
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
