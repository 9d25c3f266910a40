//! Ensembles and test-time augmentation, the chapter's two benchmark tricks: average the
//! outputs ŷ of independently trained networks (never their weights, which live in unrelated
//! coordinates), and average each network's outputs over several crops of the test image
//! (10-crop: Krizhevsky et al. 2012, §4.1). Both multiply the forward passes per image, so the
//! cost is reported beside the accuracy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use data::transforms::{MultiCropGeometry, Views};
use data::{DataLoader, LoaderConfig};
use indicatif::{ProgressBar, ProgressStyle};
use model_zoo::{Classifier, ZooModel};
use serde::Serialize;

use crate::error::TrainError;
use crate::eval::{EvalSplit, LoadedRun, WeightsSpec, load_run, load_weights};

/// What the members' outputs are averaged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// Softmax probabilities (the chapter's ŷ; the default).
    Probabilities,
    /// Raw logits.
    Logits,
}

/// One member of an ensemble.
#[derive(Debug, Clone)]
pub enum Member {
    /// A training run's folder and, optionally, other weights than its `best.bpk`.
    Run {
        /// The run's folder.
        run: PathBuf,
        /// Weights to load instead of `best.bpk`.
        weights: Option<PathBuf>,
    },
    /// Weights of a registry model, without a run (`eval --model`).
    Weights(WeightsSpec),
}

impl Member {
    /// The run's `best.bpk`.
    pub fn run(run: &Path) -> Self {
        Member::Run {
            run: run.to_path_buf(),
            weights: None,
        }
    }

    /// What errors name: the run's folder, or the weights.
    fn source(&self) -> &Path {
        match self {
            Member::Run { run, .. } => run,
            Member::Weights(spec) => &spec.weights,
        }
    }

    fn load(&self) -> Result<LoadedRun, TrainError> {
        match self {
            Member::Run { run, weights } => load_run(run, weights.as_deref()),
            Member::Weights(spec) => load_weights(spec),
        }
    }
}

/// How to evaluate an ensemble.
#[derive(Debug, Clone)]
pub struct EnsembleConfig {
    /// The members; one member is plain (or test-time augmented) evaluation.
    pub members: Vec<Member>,
    /// The views each image is cut into.
    pub views: Views,
    /// Resize the shorter side first (default: the preset's, see
    /// [`data::Preset::multi_crop_geometry`]).
    pub resize: Option<usize>,
    /// Side of each crop (default: the runs' input size).
    pub crop: Option<usize>,
    /// Zeros added to every side before cutting (default: the preset's).
    pub padding: Option<usize>,
    /// What is averaged.
    pub averaging: Averaging,
    /// Which split.
    pub split: EvalSplit,
    /// Images per batch (default: the first run's training batch over the views, at least 1);
    /// each batch is one forward pass of `images × views` crops per member.
    pub batch_size: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
}

impl EnsembleConfig {
    /// Plain evaluation of the given runs' `best.bpk`, averaging probabilities.
    pub fn new(runs: &[PathBuf]) -> Self {
        Self {
            members: runs.iter().map(|run| Member::run(run)).collect(),
            views: Views::Single,
            resize: None,
            crop: None,
            padding: None,
            averaging: Averaging::Probabilities,
            split: EvalSplit::Test,
            batch_size: None,
            progress: false,
        }
    }
}

/// What the evaluation cost.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleCost {
    /// Forward passes per image: members × views.
    pub forward_passes_per_image: usize,
    /// Images (not crops) per second over the whole pass, decoding included.
    pub images_per_second: f64,
    /// Wall time of the pass.
    pub seconds: f64,
    /// Images per batch.
    pub batch_size: usize,
    /// Forward calls made: one per member and batch, whatever the views.
    pub forward_calls: usize,
    /// Peak resident memory of the process (Linux `VmHWM`), when known.
    pub peak_memory_bytes: Option<u64>,
}

/// Every member's outputs on every image of the split, kept so that any sub-ensemble can be
/// scored without another forward pass.
#[derive(Debug, Clone)]
pub struct EnsembleOutputs {
    /// Class names.
    pub classes: Vec<String>,
    /// The true class of each image.
    pub labels: Vec<i64>,
    /// Per member, `[images × classes]`: the output averaged over the views.
    pub averaged: Vec<Vec<f32>>,
    /// Per member, `[images × classes]`: the output of the centre view alone (plain evaluation).
    pub centre: Vec<Vec<f32>>,
    /// The members' weight files.
    pub weights: Vec<PathBuf>,
    /// The views.
    pub views: Views,
    /// The averaging.
    pub averaging: Averaging,
    /// The cost of the pass.
    pub cost: EnsembleCost,
}

/// Top-1 and top-5 accuracy of the mean of `outputs` (each `[images × classes]`).
pub fn accuracy(outputs: &[&[f32]], labels: &[i64], classes: usize) -> (f64, f64) {
    let k = 5.min(classes);
    let (mut top1, mut top5) = (0usize, 0usize);
    let mut mean = vec![0f32; classes];
    for (image, &label) in labels.iter().enumerate() {
        mean.fill(0.0);
        for output in outputs {
            for (sum, value) in mean.iter_mut().zip(&output[image * classes..][..classes]) {
                *sum += value;
            }
        }
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
        top1 += usize::from(order[0] as i64 == label);
        top5 += usize::from(order[..k].contains(&(label as usize)));
    }
    let n = labels.len().max(1) as f64;
    (top1 as f64 / n, top5 as f64 / n)
}

/// One forward pass over a batch of stacked views `[N, V·C, H, W]` (see
/// [`data::transforms::MultiCrop`]): the model sees the `[N·V, C, H, W]` crops at once and the
/// result is `[N, V, classes]`, as probabilities or logits.
pub fn forward_views(
    model: &ZooModel,
    stacked: Tensor<4>,
    views: usize,
    averaging: Averaging,
) -> Tensor<3> {
    let [n, channels, height, width] = stacked.dims();
    let crops = stacked.reshape([n * views, channels / views, height, width]);
    let logits = model.forward(crops);
    let classes = logits.dims()[1];
    let outputs = match averaging {
        Averaging::Probabilities => softmax(logits, 1),
        Averaging::Logits => logits,
    };
    outputs.reshape([n, views, classes])
}

/// Peak resident memory of this process, from `/proc/self/status` (Linux only).
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The members must see the same images in the same order with the same classes.
fn check_compatible(
    first: &LoadedRun,
    other: &LoadedRun,
    config: &EnsembleConfig,
) -> Result<(), TrainError> {
    let (a, b) = (&first.config, &other.config);
    let mismatch = if a.dataset != b.dataset || a.data_dir != b.data_dir {
        Some(format!("dataset {} vs {}", a.dataset, b.dataset))
    } else if first.preset != other.preset || first.size != other.size {
        Some(format!(
            "preprocessing {:?} at {} px vs {:?} at {} px",
            first.preset, first.size, other.preset, other.size
        ))
    } else if config.split == EvalSplit::Valid
        && (a.seed, a.limit, a.validation) != (b.seed, b.limit, b.validation)
    {
        Some("validation splits (seed, --limit, --validation differ); use the test split".into())
    } else {
        None
    };
    match mismatch {
        Some(problem) => Err(TrainError::Config(format!(
            "{} and {} cannot form an ensemble: {problem}",
            first.weights.display(),
            other.weights.display()
        ))),
        None => Ok(()),
    }
}

/// Runs every member over the split once, with the configured views, batched.
pub fn ensemble_outputs(config: &EnsembleConfig) -> Result<EnsembleOutputs, TrainError> {
    let Some(first_member) = config.members.first() else {
        return Err(TrainError::Config(
            "an ensemble needs at least one run".into(),
        ));
    };
    let mut members = Vec::with_capacity(config.members.len());
    for member in &config.members {
        let loaded = member.load()?;
        loaded.loader(config.split, member.source())?;
        if let Some(first) = members.first() {
            check_compatible(first, &loaded, config)?;
        }
        members.push(loaded);
    }
    let first = &members[0];
    let split_loader = first.loader(config.split, first_member.source())?;
    let classes = split_loader.dataset().classes().to_vec();
    let mut geometry = first
        .preset
        .multi_crop_geometry(config.crop.unwrap_or(first.size));
    geometry = MultiCropGeometry {
        resize: config.resize.or(geometry.resize),
        padding: config.padding.unwrap_or(geometry.padding),
        ..geometry
    };
    let views = config.views;
    let batch_size = config
        .batch_size
        .unwrap_or((first.config.batch_size / views.count()).max(1));
    let loader = DataLoader::new(
        split_loader.dataset().clone(),
        Arc::new(first.preset.multi_crop(geometry, views)),
        LoaderConfig {
            workers: first.config.workers.max(1),
            prefetch: 2 * first.config.workers.max(1),
            shuffle: false,
            ..LoaderConfig::new(batch_size)
        },
    );
    let bar = if config.progress {
        let bar = ProgressBar::new(loader.batches_per_epoch() as u64);
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
                .expect("a valid progress template")
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{} × {} views", members.len(), views.count()));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut labels = Vec::new();
    let mut averaged = vec![Vec::new(); members.len()];
    let mut centre = vec![Vec::new(); members.len()];
    let mut forward_calls = 0usize;
    let started = Instant::now();
    for batch in loader.epoch(0) {
        let batch = batch?;
        labels.extend_from_slice(&batch.labels);
        for (index, member) in members.iter().enumerate() {
            let stacked = Tensor::from_data(
                TensorData::new(batch.images.clone(), batch.shape),
                &member.device,
            );
            let outputs = forward_views(&member.model, stacked, views.count(), config.averaging);
            forward_calls += 1;
            let [n, _, k] = outputs.dims();
            let mean = outputs.clone().mean_dim(1).reshape([n, k]);
            let middle = outputs.narrow(1, views.centre(), 1).reshape([n, k]);
            averaged[index].extend(host(mean));
            centre[index].extend(host(middle));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    Ok(EnsembleOutputs {
        cost: EnsembleCost {
            forward_passes_per_image: members.len() * views.count(),
            images_per_second: labels.len() as f64 / seconds,
            seconds,
            batch_size,
            forward_calls,
            peak_memory_bytes: peak_memory_bytes(),
        },
        classes,
        labels,
        averaged,
        centre,
        weights: members.into_iter().map(|m| m.weights).collect(),
        views,
        averaging: config.averaging,
    })
}

fn host(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float data reads as f32")
}

/// One member's accuracy alone.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// Its weights.
    pub weights: PathBuf,
    /// Top-1 with the views averaged.
    pub top1: f64,
    /// Top-5 with the views averaged.
    pub top5: f64,
    /// Top-1 of the centre view alone.
    pub top1_centre: f64,
}

/// An ensemble's accuracy, its members' and its cost.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleReport {
    /// Images evaluated.
    pub images: usize,
    /// The views (`none`, `flip`, `five-crop`, `ten-crop`).
    pub views: String,
    /// What was averaged.
    pub averaging: Averaging,
    /// Each member alone.
    pub members: Vec<MemberReport>,
    /// The ensemble with the views averaged.
    pub top1: f64,
    /// Top-5 of the same.
    pub top5: f64,
    /// The ensemble on the centre views alone (no test-time augmentation).
    pub top1_centre: f64,
    /// Ensemble top-1 minus the members' mean top-1 (both with the views).
    pub gain_over_mean_member: f64,
    /// Ensemble top-1 minus the best member's top-1 (both with the views).
    pub gain_over_best_member: f64,
    /// What it cost.
    pub cost: EnsembleCost,
}

impl EnsembleOutputs {
    /// Scores the whole ensemble and each member.
    pub fn report(&self) -> EnsembleReport {
        let k = self.classes.len();
        let members: Vec<MemberReport> = (0..self.averaged.len())
            .map(|m| {
                let (top1, top5) = accuracy(&[&self.averaged[m]], &self.labels, k);
                let (top1_centre, _) = accuracy(&[&self.centre[m]], &self.labels, k);
                MemberReport {
                    weights: self.weights[m].clone(),
                    top1,
                    top5,
                    top1_centre,
                }
            })
            .collect();
        let all: Vec<&[f32]> = self.averaged.iter().map(Vec::as_slice).collect();
        let centres: Vec<&[f32]> = self.centre.iter().map(Vec::as_slice).collect();
        let (top1, top5) = accuracy(&all, &self.labels, k);
        let (top1_centre, _) = accuracy(&centres, &self.labels, k);
        let mean_member = members.iter().map(|m| m.top1).sum::<f64>() / members.len() as f64;
        let best_member = members.iter().map(|m| m.top1).fold(0.0, f64::max);
        EnsembleReport {
            images: self.labels.len(),
            views: self.views.name().to_string(),
            averaging: self.averaging,
            members,
            top1,
            top5,
            top1_centre,
            gain_over_mean_member: top1 - mean_member,
            gain_over_best_member: top1 - best_member,
            cost: self.cost.clone(),
        }
    }
}

/// Evaluates an ensemble (or one run) with test-time augmentation.
pub fn evaluate_ensemble(config: &EnsembleConfig) -> Result<EnsembleReport, TrainError> {
    Ok(ensemble_outputs(config)?.report())
}
