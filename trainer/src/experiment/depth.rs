//! `cargo xtask experiment depth`: He et al. 2016, figure 6. Plain networks get worse as they
//! get deeper (plain-56 trains and tests worse than plain-20: the degradation problem, not
//! overfitting), while residual networks get better (ResNet-56 beats ResNet-20). The four CIFAR
//! nets are trained with the paper's recipe (§4.2): SGD, learning rate 0.1, momentum 0.9,
//! weight decay 1e-4, batch 128, ÷10 at 32k and 48k iterations, 64k in all, 4-pixel padded
//! crops and mirroring, on the 50k training images. `--budget` scales every iteration count,
//! and `--depths` picks which plain/residual pairs to train (both by default).

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::config::{OptimizerKind, Schedule, TrainConfig, TrainControl};
use crate::error::TrainError;
use crate::experiment::{start, train_once, write_results};
use crate::metrics::{EpochMetrics, read_metrics};
use crate::plot::{Line, write_lines};

/// The paper's schedule, in iterations (§4.2).
const PAPER_ITERATIONS: usize = 64_000;
const PAPER_MILESTONES: [usize; 2] = [32_000, 48_000];

/// The four networks of figure 6 by depth, shallow pair first (a partial run has a whole pair),
/// with the paper's CIFAR-10 test error where table 6 gives one.
const NETWORKS: [(usize, &str, Option<f64>); 4] = [
    (20, "plain-cifar-resnet20", None),
    (20, "cifar-resnet20", Some(8.75)),
    (56, "plain-cifar-resnet56", None),
    (56, "cifar-resnet56", Some(6.97)),
];

/// The depths figure 6 compares.
pub const DEPTHS: [usize; 2] = [20, 56];

/// What the experiment trains.
#[derive(Debug, Clone, Serialize)]
pub struct DepthExperiment {
    /// Dataset, backend, workers and seed; the recipe fields are set from the paper.
    pub base: TrainConfig,
    /// Fraction of the paper's 64k iterations (1.0: the full schedule).
    pub budget: f64,
    /// Which plain/residual pairs to train, by depth (20, 56).
    pub depths: Vec<usize>,
    /// Iterations in one epoch of the training images (after `--limit`).
    pub steps_per_epoch: usize,
    /// Where everything is written.
    pub out: PathBuf,
}

impl DepthExperiment {
    /// The experiment on `base`'s data, both depths; `steps_per_epoch` converts iterations into
    /// epochs.
    pub fn new(base: TrainConfig, budget: f64, steps_per_epoch: usize, out: PathBuf) -> Self {
        Self {
            base,
            budget,
            depths: DEPTHS.to_vec(),
            steps_per_epoch,
            out,
        }
    }

    /// The networks it trains, in training order, with the paper's test error.
    pub fn networks(&self) -> Vec<(&'static str, Option<f64>)> {
        NETWORKS
            .iter()
            .filter(|(depth, _, _)| self.depths.contains(depth))
            .map(|&(_, model, paper)| (model, paper))
            .collect()
    }

    /// Iterations of the (scaled) schedule.
    pub fn iterations(&self) -> usize {
        ((PAPER_ITERATIONS as f64 * self.budget).round() as usize).max(1)
    }

    /// The run of one network: the paper's recipe, the schedule scaled by the budget, ending at
    /// the epoch boundary nearest the iteration count.
    pub fn network_config(&self, model: &str) -> TrainConfig {
        let epochs = (self.iterations() as f64 / self.steps_per_epoch.max(1) as f64)
            .round()
            .max(1.0) as usize;
        TrainConfig {
            model: model.to_string(),
            epochs,
            batch_size: 128,
            optimizer: OptimizerKind::Sgd,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-4,
            schedule: Schedule::MultiStep,
            lr_milestones: PAPER_MILESTONES
                .iter()
                .map(|&at| (at as f64 * self.budget).round() as usize)
                .collect(),
            lr_gamma: 0.1,
            warmup_epochs: 0,
            label_smoothing: 0.0,
            augment: Some("cifar".into()),
            validation: Some(0),
            test_each_epoch: true,
            out: self.out.join(model),
            ..self.base.clone()
        }
    }
}

/// One network's final figures.
#[derive(Debug, Clone, Serialize)]
pub struct DepthRow {
    /// Registry name.
    pub model: String,
    /// Training error (%) of the last epoch (with augmentation, as the paper plots it).
    pub train_error: f64,
    /// Test error (%) of the last epoch's weights.
    pub test_error: f64,
    /// The paper's test error (%), table 6.
    pub paper_test_error: Option<f64>,
    /// Training and test rows per epoch.
    pub metrics: Vec<EpochMetrics>,
}

/// What the experiment found.
#[derive(Debug, Clone, Serialize)]
pub struct DepthReport {
    /// The experiment's settings.
    pub experiment: DepthExperiment,
    /// Iterations each network trained for.
    pub iterations: usize,
    /// The networks trained, shallow pair first.
    pub rows: Vec<DepthRow>,
    /// Wall time of this invocation (training included).
    pub wall_seconds: f64,
}

/// The rows as a markdown table.
pub fn table(report: &DepthReport) -> String {
    let mut out = String::from(
        "| network | training error | test error | paper's test error |\n|---|---|---|---|\n",
    );
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {:.2} % | {:.2} % | {} |\n",
            row.model,
            row.train_error,
            row.test_error,
            row.paper_test_error
                .map_or("—".to_string(), |e| format!("{e:.2} %"))
        ));
    }
    out
}

/// Trains (or keeps, or resumes) the chosen networks and writes `experiment.json`,
/// `results.json`, `table.md` and `depth.png`. `None` when training was stopped first.
pub fn run(
    experiment: &DepthExperiment,
    control: &TrainControl,
) -> Result<Option<DepthReport>, TrainError> {
    if !(experiment.budget > 0.0 && experiment.budget <= 1.0) {
        return Err(TrainError::Config("--budget must be in (0, 1]".into()));
    }
    if experiment.depths.is_empty() || experiment.depths.iter().any(|d| !DEPTHS.contains(d)) {
        return Err(TrainError::Config(format!(
            "--depths must list some of {DEPTHS:?}, got {:?}",
            experiment.depths
        )));
    }
    let started = Instant::now();
    start(&experiment.out, experiment)?;
    let mut rows = Vec::new();
    let networks = experiment.networks();
    for &(model, paper_test_error) in &networks {
        let config = experiment.network_config(model);
        eprintln!(
            "{model}: {} epochs of {} iterations, cuts at {:?}",
            config.epochs, experiment.steps_per_epoch, config.lr_milestones
        );
        if !train_once(&config, control)? {
            return Ok(None);
        }
        let metrics = read_metrics(&config.out)?;
        let last = |split: &str| {
            metrics
                .iter()
                .rev()
                .find(|row| row.split == split)
                .map_or(f64::NAN, |row| 100.0 * (1.0 - row.top1))
        };
        rows.push(DepthRow {
            model: model.to_string(),
            train_error: last("train"),
            test_error: last("test"),
            paper_test_error,
            metrics,
        });
    }
    let iterations = experiment.network_config(networks[0].0).epochs * experiment.steps_per_epoch;
    let report = DepthReport {
        experiment: experiment.clone(),
        iterations,
        rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&experiment.out, &report, &table(&report))?;
    let steps = experiment.steps_per_epoch as f64;
    let mut lines = Vec::new();
    for (color, row) in report.rows.iter().enumerate() {
        for (split, bold) in [("train", false), ("test", true)] {
            lines.push(Line {
                label: format!("{} {split}", row.model),
                points: row
                    .metrics
                    .iter()
                    .filter(|m| m.split == split)
                    .map(|m| (m.epoch as f64 * steps, 100.0 * (1.0 - m.top1)))
                    .collect(),
                color,
                bold,
            });
        }
    }
    let budget = if experiment.budget < 1.0 {
        format!(", --budget {} of the paper's 64k", experiment.budget)
    } else {
        String::new()
    };
    write_lines(
        &experiment.out.join("depth.png"),
        &format!(
            "He et al. fig. 6 on {}: {} iterations{budget}",
            experiment.base.dataset, report.iterations
        ),
        ("iterations", "error (%): training thin, test bold"),
        &lines,
    )?;
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_is_the_papers_scaled_by_the_budget() {
        // CIFAR-10's 50,000 training images in batches of 128: 391 iterations an epoch.
        let base = TrainConfig::new("cifar-resnet20");
        let full = DepthExperiment::new(base.clone(), 1.0, 391, "runs/depth".into());
        let config = full.network_config("plain-cifar-resnet56");
        assert_eq!(config.model, "plain-cifar-resnet56");
        assert_eq!(config.epochs, 164); // 64,000 / 391 = 163.7
        assert_eq!(config.lr_milestones, [32_000, 48_000]);
        assert_eq!(
            (config.lr, config.momentum, config.weight_decay),
            (0.1, 0.9, 1e-4)
        );
        assert_eq!((config.batch_size, config.validation), (128, Some(0)));
        assert_eq!(config.schedule, Schedule::MultiStep);
        assert!(config.test_each_epoch);
        assert_eq!(config.out, PathBuf::from("runs/depth/plain-cifar-resnet56"));

        let short = DepthExperiment::new(base, 0.01, 391, "runs/depth".into());
        let config = short.network_config("cifar-resnet20");
        assert_eq!(short.iterations(), 640);
        assert_eq!(config.epochs, 2);
        assert_eq!(config.lr_milestones, [320, 480]);
    }

    #[test]
    fn depths_pick_the_pairs_shallow_first() {
        let mut experiment =
            DepthExperiment::new(TrainConfig::new("cifar-resnet20"), 0.25, 391, "d".into());
        let models = |e: &DepthExperiment| -> Vec<&str> {
            e.networks().into_iter().map(|(model, _)| model).collect()
        };
        assert_eq!(
            models(&experiment),
            [
                "plain-cifar-resnet20",
                "cifar-resnet20",
                "plain-cifar-resnet56",
                "cifar-resnet56"
            ]
        );
        experiment.depths = vec![20];
        assert_eq!(
            models(&experiment),
            ["plain-cifar-resnet20", "cifar-resnet20"]
        );
        assert_eq!(experiment.networks()[1].1, Some(8.75));

        experiment.depths = vec![32];
        let error = run(&experiment, &TrainControl::default()).unwrap_err();
        assert!(error.to_string().contains("--depths"), "{error}");
    }
}
