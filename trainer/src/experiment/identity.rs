//! `cargo xtask experiment identity`: why ResNets work (the chapter, He et al. 2016). Two
//! residual blocks whose weights are zero compute the identity, so appending them to a trained
//! CIFAR ResNet leaves its test accuracy exactly as it was; two plain blocks initialised as usual
//! scramble the features the head was trained on.

use std::path::PathBuf;
use std::time::Instant;

use model_zoo::ZooModel;
use model_zoo::models::cifar_resnet::AppendedBlock;
use serde::Serialize;

use crate::config::{TrainConfig, TrainControl};
use crate::error::TrainError;
use crate::eval::{EvalSplit, load_run};
use crate::experiment::{start, train_once, write_results};
use crate::metrics::evaluate;
use crate::plot::{Bar, write_bars};

/// What the experiment starts from and appends.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityExperiment {
    /// The network to train first (a CIFAR ResNet), into `out/trained`; ignored with `run`.
    pub base: TrainConfig,
    /// A trained CIFAR ResNet run to use instead of training one.
    pub run: Option<PathBuf>,
    /// Blocks appended to the last stage.
    pub blocks: usize,
    /// Seed of the appended blocks' initialisation.
    pub seed: u64,
    /// Where everything is written.
    pub out: PathBuf,
}

/// Test accuracy of one variant of the network.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityRow {
    /// What was appended.
    pub variant: String,
    /// Weight layers.
    pub depth: usize,
    /// Test top-1.
    pub top1: f64,
    /// Test cross-entropy.
    pub loss: f64,
}

/// What the experiment found.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityReport {
    /// The experiment's settings.
    pub experiment: IdentityExperiment,
    /// The weights the variants start from.
    pub weights: PathBuf,
    /// The trained network, then each variant.
    pub rows: Vec<IdentityRow>,
    /// Wall time of this invocation (training included).
    pub wall_seconds: f64,
}

/// The rows as a markdown table.
pub fn table(report: &IdentityReport) -> String {
    let mut out =
        String::from("| network | weight layers | test top-1 | test loss |\n|---|---|---|---|\n");
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {} | {:.2} % | {:.4} |\n",
            row.variant,
            row.depth,
            100.0 * row.top1,
            row.loss
        ));
    }
    out
}

/// Trains (or reuses) the network, appends each kind of block, evaluates every variant on the
/// test split and writes `experiment.json`, `results.json`, `table.md` and `identity.png`.
/// `None` when training was stopped before it finished.
pub fn run(
    experiment: &IdentityExperiment,
    control: &TrainControl,
) -> Result<Option<IdentityReport>, TrainError> {
    let started = Instant::now();
    start(&experiment.out, experiment)?;
    let run_dir = match &experiment.run {
        Some(run) => run.clone(),
        None => {
            let config = TrainConfig {
                out: experiment.out.join("trained"),
                ..experiment.base.clone()
            };
            if !train_once(&config, control)? {
                return Ok(None);
            }
            config.out
        }
    };
    let loaded = load_run(&run_dir, None)?;
    let test = loaded.loader(EvalSplit::Test, &run_dir)?;
    let ZooModel::CifarResNet(trained) = loaded.model.clone() else {
        return Err(TrainError::Config(format!(
            "the identity experiment appends blocks to a CIFAR ResNet (cifar-resnet20, …), not \
             {}",
            loaded.config.model
        )));
    };
    let device = &loaded.device;
    device.seed(experiment.seed);
    let depth = 2 + 2 * (trained.layer1.len() + trained.layer2.len() + trained.layer3.len());
    let blocks = experiment.blocks;
    let variants = [
        ("trained".to_string(), trained.clone()),
        (
            format!("+{blocks} residual blocks, zero weights"),
            trained
                .clone()
                .deepen(blocks, AppendedBlock::ZeroResidual, device),
        ),
        (
            format!("+{blocks} residual blocks, He init"),
            trained
                .clone()
                .deepen(blocks, AppendedBlock::Residual, device),
        ),
        (
            format!("+{blocks} plain blocks, He init"),
            trained.deepen(blocks, AppendedBlock::Plain, device),
        ),
    ];
    let mut rows = Vec::new();
    for (index, (variant, network)) in variants.into_iter().enumerate() {
        eprintln!("evaluating: {variant}");
        let metrics = evaluate(
            &ZooModel::CifarResNet(network),
            test,
            device,
            0,
            0.0,
            "test",
        )?;
        rows.push(IdentityRow {
            variant,
            depth: if index == 0 {
                depth
            } else {
                depth + 2 * blocks
            },
            top1: metrics.top1,
            loss: metrics.loss,
        });
    }
    let report = IdentityReport {
        experiment: experiment.clone(),
        weights: loaded.weights,
        rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&experiment.out, &report, &table(&report))?;
    let bars: Vec<Bar> = report
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| Bar {
            label: row.variant.clone(),
            value: 100.0 * row.top1,
            color: index,
        })
        .collect();
    write_bars(
        &experiment.out.join("identity.png"),
        &format!(
            "{} ({}): appending blocks to a trained network",
            loaded.config.model, loaded.config.dataset
        ),
        "test top-1 (%)",
        &bars,
    )?;
    Ok(Some(report))
}
