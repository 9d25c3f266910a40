//! `cargo xtask experiment transfer`: the chapter's cat example ("Tigger / Misty / neither").
//! A CIFAR ResNet learns eight CIFAR-10 classes; then a three-class task it has never seen
//! (cat, dog, neither) is learnt from a few images per class in four ways — from scratch, only
//! a new softmax head on cached features, a frozen backbone up to a middle stage, and
//! everything fine-tuned — and again with ten times the images. The chapter's rule is what to
//! look for: the less data, the more of the pretrained network to freeze.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::config::{TrainConfig, TrainControl};
use crate::error::TrainError;
use crate::experiment::{start, train_once, write_results};
use crate::metrics::read_metrics;
use crate::plot::{Line, write_lines};
use crate::transfer::FreezePolicy;

/// What the experiment trains.
#[derive(Debug, Clone, Serialize)]
pub struct TransferExperiment {
    /// The network learnt on the pretraining classes, into `out/pretrain`.
    pub pretrain: TrainConfig,
    /// The new task (its `classes`, test set and recipe); model, weights, freezing and
    /// training-set size are set per regime.
    pub task: TrainConfig,
    /// Training images per class of the new task, one set of regimes each.
    pub sizes: Vec<usize>,
    /// The stage up to which the middle regime freezes (`layer2`: the stem and the first two
    /// of a CIFAR ResNet's three stages).
    pub middle: String,
    /// The backbone's learning rate as a multiple of the head's when starting from the
    /// pretrained weights.
    pub backbone_lr_mult: f64,
    /// Where everything is written.
    pub out: PathBuf,
}

/// The four ways to learn the new task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Regime {
    /// Random initialisation, everything trained.
    Scratch,
    /// Pretrained backbone frozen, its activations cached, a new softmax head trained on them.
    HeadOnCachedFeatures,
    /// Pretrained, frozen up to the middle stage, the rest and a new head trained.
    FreezeToMiddle,
    /// Pretrained, everything trained (backbone at the lower learning rate).
    FineTuneAll,
}

impl Regime {
    /// Every regime, from the least pretrained help to the most trainable.
    pub const ALL: [Regime; 4] = [
        Regime::Scratch,
        Regime::HeadOnCachedFeatures,
        Regime::FreezeToMiddle,
        Regime::FineTuneAll,
    ];

    /// Folder name of its runs.
    fn slug(self) -> &'static str {
        match self {
            Regime::Scratch => "scratch",
            Regime::HeadOnCachedFeatures => "head-cached",
            Regime::FreezeToMiddle => "freeze-middle",
            Regime::FineTuneAll => "fine-tune-all",
        }
    }

    fn describe(self, middle: &str) -> String {
        match self {
            Regime::Scratch => "from scratch".into(),
            Regime::HeadOnCachedFeatures => "all but head frozen (cached features)".into(),
            Regime::FreezeToMiddle => format!("frozen until {middle}"),
            Regime::FineTuneAll => "fine-tune everything".into(),
        }
    }
}

impl TransferExperiment {
    /// The run of `regime` with `per_class` training images per class.
    pub fn task_config(&self, regime: Regime, per_class: usize) -> TrainConfig {
        let weights = (regime != Regime::Scratch).then(|| self.pretrain.out.join("last.bpk"));
        let (freeze, cache_features) = match regime {
            Regime::Scratch | Regime::FineTuneAll => (FreezePolicy::None, false),
            Regime::HeadOnCachedFeatures => (FreezePolicy::AllButHead, true),
            Regime::FreezeToMiddle => (FreezePolicy::Until(self.middle.clone()), false),
        };
        TrainConfig {
            model: self.pretrain.model.clone(),
            per_class: Some(per_class),
            weights,
            freeze,
            cache_features,
            backbone_lr_mult: if regime == Regime::Scratch {
                1.0
            } else {
                self.backbone_lr_mult
            },
            out: self
                .out
                .join(format!("{per_class}-per-class"))
                .join(regime.slug()),
            ..self.task.clone()
        }
    }
}

/// One regime at one training-set size.
#[derive(Debug, Clone, Serialize)]
pub struct TransferRow {
    /// How the task was learnt.
    pub regime: Regime,
    /// Its description in the table.
    pub description: String,
    /// Training images per class.
    pub per_class: usize,
    /// Test top-1 of the last epoch's weights.
    pub test_top1: f64,
    /// Training top-1 of the last epoch.
    pub train_top1: f64,
    /// Seconds spent in training passes (the cached regime's one-time feature pass excluded).
    pub train_seconds: f64,
}

/// What the experiment found.
#[derive(Debug, Clone, Serialize)]
pub struct TransferReport {
    /// The experiment's settings.
    pub experiment: TransferExperiment,
    /// Test top-1 of the pretrained network on its own eight classes.
    pub pretrain_test_top1: f64,
    /// Every regime at every size.
    pub rows: Vec<TransferRow>,
    /// Wall time of this invocation (training included).
    pub wall_seconds: f64,
}

/// The rows as a markdown table: a row per regime, a column per training-set size.
pub fn table(report: &TransferReport) -> String {
    let sizes = &report.experiment.sizes;
    let mut out = String::from("| regime |");
    for size in sizes {
        out.push_str(&format!(" {size} / class: test top-1 (train s) |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(sizes.len()));
    out.push('\n');
    for regime in Regime::ALL {
        out.push_str(&format!(
            "| {} |",
            regime.describe(&report.experiment.middle)
        ));
        for size in sizes {
            match report
                .rows
                .iter()
                .find(|row| row.regime == regime && row.per_class == *size)
            {
                Some(row) => out.push_str(&format!(
                    " {:.2} % ({:.1} s) |",
                    100.0 * row.test_top1,
                    row.train_seconds
                )),
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
    out
}

/// Pretrains (or keeps, or resumes), runs every regime at every size, and writes
/// `experiment.json`, `results.json`, `table.md` and `transfer.png`. `None` when training was
/// stopped first.
pub fn run(
    experiment: &TransferExperiment,
    control: &TrainControl,
) -> Result<Option<TransferReport>, TrainError> {
    let started = Instant::now();
    start(&experiment.out, experiment)?;
    eprintln!("pretraining {} on {:?}", experiment.pretrain.model, {
        experiment.pretrain.classes.as_deref().unwrap_or("all")
    });
    if !train_once(&experiment.pretrain, control)? {
        return Ok(None);
    }
    let last = |config: &TrainConfig, split: &str| -> Result<f64, TrainError> {
        Ok(read_metrics(&config.out)?
            .iter()
            .rev()
            .find(|row| row.split == split)
            .map_or(f64::NAN, |row| row.top1))
    };
    let pretrain_test_top1 = last(&experiment.pretrain, "test")?;
    let mut rows = Vec::new();
    for &per_class in &experiment.sizes {
        for regime in Regime::ALL {
            let config = experiment.task_config(regime, per_class);
            eprintln!(
                "{per_class} images per class: {}",
                regime.describe(&experiment.middle)
            );
            if !train_once(&config, control)? {
                return Ok(None);
            }
            let metrics = read_metrics(&config.out)?;
            rows.push(TransferRow {
                regime,
                description: regime.describe(&experiment.middle),
                per_class,
                test_top1: last(&config, "test")?,
                train_top1: last(&config, "train")?,
                train_seconds: metrics
                    .iter()
                    .filter(|row| row.split == "train")
                    .map(|row| row.seconds)
                    .sum(),
            });
        }
    }
    let report = TransferReport {
        experiment: experiment.clone(),
        pretrain_test_top1,
        rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&experiment.out, &report, &table(&report))?;
    let lines: Vec<Line> = Regime::ALL
        .iter()
        .enumerate()
        .map(|(color, &regime)| Line {
            label: regime.describe(&experiment.middle),
            points: report
                .rows
                .iter()
                .filter(|row| row.regime == regime)
                .map(|row| ((row.per_class as f64).log10(), 100.0 * row.test_top1))
                .collect(),
            color,
            bold: true,
        })
        .collect();
    write_lines(
        &experiment.out.join("transfer.png"),
        &format!(
            "{}: pretrained on {} classes of {}",
            experiment.task.classes.as_deref().unwrap_or("all classes"),
            experiment
                .pretrain
                .classes
                .as_deref()
                .map_or("all".to_string(), |c| c.split(',').count().to_string()),
            experiment.task.dataset
        ),
        ("log10(training images per class)", "test top-1 (%)"),
        &lines,
    )?;
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regimes_differ_only_in_what_they_start_from_and_freeze() {
        let mut pretrain = TrainConfig::new("cifar-resnet20");
        pretrain.out = "x/pretrain".into();
        let experiment = TransferExperiment {
            pretrain,
            task: TrainConfig::new("cifar-resnet20"),
            sizes: vec![100, 1000],
            middle: "layer2".into(),
            backbone_lr_mult: 0.1,
            out: "x".into(),
        };
        let scratch = experiment.task_config(Regime::Scratch, 100);
        assert_eq!(scratch.weights, None);
        assert_eq!(scratch.freeze, FreezePolicy::None);
        assert_eq!(scratch.backbone_lr_mult, 1.0);
        assert_eq!(scratch.out, PathBuf::from("x/100-per-class/scratch"));
        let cached = experiment.task_config(Regime::HeadOnCachedFeatures, 1000);
        assert_eq!(cached.weights, Some(PathBuf::from("x/pretrain/last.bpk")));
        assert_eq!(
            (cached.freeze, cached.cache_features),
            (FreezePolicy::AllButHead, true)
        );
        assert_eq!(cached.per_class, Some(1000));
        let middle = experiment.task_config(Regime::FreezeToMiddle, 100);
        assert_eq!(middle.freeze, FreezePolicy::Until("layer2".into()));
        assert_eq!(middle.backbone_lr_mult, 0.1);
        let all = experiment.task_config(Regime::FineTuneAll, 100);
        assert_eq!(
            (all.freeze, all.cache_features),
            (FreezePolicy::None, false)
        );
    }
}
