//! `cargo xtask experiment ensemble`: train K networks that differ only in their seed, then
//! score every ensemble size 1..K with and without 10-crop, from one pass of each member over
//! the test set. The chapter's claim: averaging the outputs of a few independently trained
//! networks, and averaging over crops of the test image, each buy accuracy at a multiple of the
//! cost.

use std::path::PathBuf;
use std::time::Instant;

use data::transforms::Views;
use serde::Serialize;

use crate::config::{TrainConfig, TrainControl};
use crate::ensemble::{
    Averaging, EnsembleConfig, EnsembleCost, EnsembleOutputs, Member, accuracy, ensemble_outputs,
};
use crate::error::TrainError;
use crate::eval::EvalSplit;
use crate::experiment::{start, train_once, write_results};
use crate::plot::{Line, write_lines};

/// What the experiment trains and how it evaluates.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleExperiment {
    /// The members' settings; member `i` is trained with seed `base.seed + i` into
    /// `out/member-i`.
    pub base: TrainConfig,
    /// Members K.
    pub members: usize,
    /// Test-time augmentation compared with the centre crop.
    pub views: String,
    /// Where everything is written.
    pub out: PathBuf,
}

impl EnsembleExperiment {
    /// K members of `base`, written into `out`, compared with and without 10-crop.
    pub fn new(base: TrainConfig, members: usize, out: PathBuf) -> Self {
        Self {
            base,
            members,
            views: Views::TenCrop.name().into(),
            out,
        }
    }

    fn member_config(&self, index: usize) -> TrainConfig {
        TrainConfig {
            seed: self.base.seed + index as u64,
            out: self.out.join(format!("member-{index}")),
            ..self.base.clone()
        }
    }
}

/// Accuracy of ensembles of one size.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleSizeRow {
    /// Members in each ensemble.
    pub size: usize,
    /// Ensembles averaged over: the K windows of `size` consecutive members (cyclic), so every
    /// member counts equally (1 when `size` is K).
    pub ensembles: usize,
    /// Mean top-1 on the centre crop.
    pub top1_centre: f64,
    /// Mean top-1 with 10-crop.
    pub top1_ten_crop: f64,
    /// Lowest and highest top-1 with 10-crop among the ensembles.
    pub top1_ten_crop_range: (f64, f64),
    /// Forward passes per test image: `size` on the centre crop, `10 × size` with 10-crop.
    pub forward_passes_centre: usize,
    /// See `forward_passes_centre`.
    pub forward_passes_ten_crop: usize,
}

/// What the experiment found.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleExperimentReport {
    /// The experiment's settings.
    pub experiment: EnsembleExperiment,
    /// Test images.
    pub images: usize,
    /// One row per ensemble size.
    pub rows: Vec<EnsembleSizeRow>,
    /// The cost of evaluating all K members with 10-crop.
    pub cost: EnsembleCost,
    /// Wall time of this invocation (training included).
    pub wall_seconds: f64,
}

/// The K cyclic windows of `size` consecutive members.
fn windows(members: usize, size: usize) -> Vec<Vec<usize>> {
    let starts = if size == members { 1 } else { members };
    (0..starts)
        .map(|start| (0..size).map(|i| (start + i) % members).collect())
        .collect()
}

fn rows(outputs: &EnsembleOutputs) -> Vec<EnsembleSizeRow> {
    let members = outputs.averaged.len();
    let classes = outputs.classes.len();
    (1..=members)
        .map(|size| {
            let subsets = windows(members, size);
            let score = |source: &[Vec<f32>]| -> Vec<f64> {
                subsets
                    .iter()
                    .map(|subset| {
                        let picked: Vec<&[f32]> =
                            subset.iter().map(|&m| source[m].as_slice()).collect();
                        accuracy(&picked, &outputs.labels, classes).0
                    })
                    .collect()
            };
            let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
            let centre = score(&outputs.centre);
            let ten_crop = score(&outputs.averaged);
            let low = ten_crop.iter().copied().fold(f64::INFINITY, f64::min);
            let high = ten_crop.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            EnsembleSizeRow {
                size,
                ensembles: subsets.len(),
                top1_centre: mean(&centre),
                top1_ten_crop: mean(&ten_crop),
                top1_ten_crop_range: (low, high),
                forward_passes_centre: size,
                forward_passes_ten_crop: size * outputs.views.count(),
            }
        })
        .collect()
}

/// The rows as a markdown table.
pub fn table(report: &EnsembleExperimentReport) -> String {
    let mut out = String::from(
        "| members | top-1, centre crop | top-1, 10-crop | 10-crop range | forward passes per image |\n\
         |---|---|---|---|---|\n",
    );
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {:.2} % | {:.2} % | {:.2}–{:.2} % | {} / {} |\n",
            row.size,
            100.0 * row.top1_centre,
            100.0 * row.top1_ten_crop,
            100.0 * row.top1_ten_crop_range.0,
            100.0 * row.top1_ten_crop_range.1,
            row.forward_passes_centre,
            row.forward_passes_ten_crop
        ));
    }
    out
}

/// Trains (or resumes, or keeps) the members, evaluates them once with 10-crop and writes
/// `experiment.json`, `results.json`, `table.md` and `ensemble.png` into the experiment's
/// folder. `None` when training was stopped before every member finished.
pub fn run(
    experiment: &EnsembleExperiment,
    control: &TrainControl,
) -> Result<Option<EnsembleExperimentReport>, TrainError> {
    if experiment.members == 0 {
        return Err(TrainError::Config("--members must be at least 1".into()));
    }
    let started = Instant::now();
    start(&experiment.out, experiment)?;
    for index in 0..experiment.members {
        let config = experiment.member_config(index);
        eprintln!(
            "member {}/{}: seed {}",
            index + 1,
            experiment.members,
            config.seed
        );
        if !train_once(&config, control)? {
            return Ok(None);
        }
    }
    let runs: Vec<Member> = (0..experiment.members)
        .map(|index| Member::run(&experiment.member_config(index).out))
        .collect();
    let outputs = ensemble_outputs(&EnsembleConfig {
        members: runs,
        views: Views::TenCrop,
        averaging: Averaging::Probabilities,
        split: EvalSplit::Test,
        progress: experiment.base.progress == crate::config::Progress::Bar,
        ..EnsembleConfig::new(&[])
    })?;
    let report = EnsembleExperimentReport {
        experiment: experiment.clone(),
        images: outputs.labels.len(),
        rows: rows(&outputs),
        cost: outputs.cost.clone(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_results(&experiment.out, &report, &table(&report))?;
    let line = |label: &str, color: usize, value: fn(&EnsembleSizeRow) -> f64| Line {
        label: label.into(),
        points: report
            .rows
            .iter()
            .map(|row| (row.size as f64, 100.0 * value(row)))
            .collect(),
        color,
        bold: true,
    };
    let title = format!(
        "{} on {}: ensembles of seeds, {} test images",
        experiment.base.model, experiment.base.dataset, report.images
    );
    write_lines(
        &experiment.out.join("ensemble.png"),
        &title,
        ("members", "test top-1 (%)"),
        &[
            line("centre crop", 0, |row| row.top1_centre),
            line("10-crop", 1, |row| row.top1_ten_crop),
        ],
    )?;
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::windows;

    #[test]
    fn every_member_counts_equally_in_the_windows() {
        assert_eq!(windows(3, 1), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(windows(3, 2), vec![vec![0, 1], vec![1, 2], vec![2, 0]]);
        assert_eq!(windows(3, 3), vec![vec![0, 1, 2]]);
        for size in 1..=5 {
            let mut counts = [0usize; 5];
            for window in windows(5, size) {
                for member in window {
                    counts[member] += 1;
                }
            }
            assert!(counts.iter().all(|&c| c == counts[0]), "{size}: {counts:?}");
        }
    }
}
