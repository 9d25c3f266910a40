//! A network of one's own from the zoo's blocks — a stem convolution, the chapter's 1×1
//! bottleneck, two Inception modules — registered by name and trained through the trainer as a
//! library (`trainer::train::train`): its checkpoints, curves, resume and test figure come as
//! for any zoo model.
//!
//!     cargo run --release --example custom_network -- [dataset] [epochs]
//!
//! `dataset` defaults to `embedded` (the built-in MNIST digits), or `mnist`, `cifar10` or an
//! image folder as `cargo xtask train` takes them; the run is written to
//! `target/custom-network-run/`.

use burn::prelude::*;
use example_support::exit_on_error;
use model_zoo::blocks::{ConvUnitConfig, InceptionConfig};
use model_zoo::models::custom::{BlockConfig, BlockNet, BlockNetConfig};
use model_zoo::{FamilyEntry, ModelArgs};
use trainer::config::{Progress, TrainConfig, TrainControl};

fn main() {
    exit_on_error(run());
}

/// 64 channels at full size, a 1×1 convolution shrinking them to 16 (the chapter's bottleneck:
/// a quarter of the next layer's multiplies), then Inception modules at half and quarter size.
fn bottleneck_inception(args: &ModelArgs, device: &Device) -> BlockNet {
    let stem = ConvUnitConfig::new([args.in_channels, 64], 3)
        .with_padding(1)
        .with_batch_norm(true);
    let first = InceptionConfig::new(16, 16, 16, 32, 8, 16, 16);
    let second = InceptionConfig::new(first.out_channels(), 32, 32, 48, 8, 16, 16);
    BlockNetConfig::new(
        vec![
            BlockConfig::Conv(stem),
            BlockConfig::MaxPool([2, 2]),
            BlockConfig::Conv(ConvUnitConfig::pointwise(64, 16).with_batch_norm(true)),
            BlockConfig::Inception(first),
            BlockConfig::MaxPool([2, 2]),
            BlockConfig::Inception(second),
        ],
        args.num_classes,
    )
    .init(device)
}

fn run() -> Result<(), String> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    model_zoo::register(FamilyEntry {
        name: "bottleneck-inception",
        paper: "this example",
        input: [3, 32, 32],
        num_classes: 10,
        build: bottleneck_inception,
    })?;
    let config = TrainConfig {
        dataset: arguments
            .first()
            .cloned()
            .unwrap_or_else(|| "embedded".into()),
        epochs: arguments
            .get(1)
            .map(|n| {
                n.parse()
                    .map_err(|_| format!("'{n}' is not a number of epochs"))
            })
            .transpose()?
            .unwrap_or(2),
        lr: 0.05,
        weight_decay: 5e-4,
        progress: Progress::Quiet,
        out: "target/custom-network-run".into(),
        ..TrainConfig::new("bottleneck-inception")
    };
    let control = TrainControl {
        overwrite: true,
        ..TrainControl::default()
    };
    let report = trainer::train::train(&config, &control).map_err(|e| e.to_string())?;
    let test = report.test.ok_or("the run stopped before its test")?;
    println!(
        "bottleneck-inception: {:.2} % test top-1; curves, weights and checkpoint in {}",
        100.0 * test.top1,
        report.out.display()
    );
    Ok(())
}
