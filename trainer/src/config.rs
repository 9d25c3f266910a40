//! What a run is: `TrainConfig` (saved as `config.json`, everything needed to rerun it), its
//! checks, and what a caller can do to a run while it trains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, ValueEnum};
use data::ExtraAugmentation;
use data::transforms::{AutoAugment, BatchMix};
use serde::{Deserialize, Serialize};

use crate::BackendKind;
use crate::error::TrainError;
use crate::precision::{LossScale, Precision};
pub use crate::schedule::Schedule;
use crate::schedule::ScheduleConfig;
use crate::transfer::FreezePolicy;

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum OptimizerKind {
    /// SGD with momentum, PyTorch's semantics (no dampening).
    Sgd,
    /// Adam (ε = 1e-8), weight decay added to the gradient (L2).
    Adam,
    /// AdamW (ε = 1e-8), weight decay decoupled from the gradient (Loshchilov & Hutter 2019).
    #[value(name = "adamw")]
    AdamW,
}

/// How a run reports while it trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Progress {
    /// A progress bar per epoch and a summary line per epoch, on stderr.
    Bar,
    /// Only the summary lines.
    Quiet,
    /// Only one JSON object per epoch and split on stdout (the rows of `metrics.csv`).
    JsonLines,
}

/// Everything needed to rerun a training run; saved as `config.json` beside its weights. Each
/// field is also the command line's option of the same name (`cargo xtask train --help`), with
/// its default here: a new option is one field.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
pub struct TrainConfig {
    /// Registry name of the model.
    #[arg(skip)]
    pub model: String,
    /// Backend: flex, ndarray, wgpu (vulkan and cuda when built with `--features vulkan` /
    /// `cuda`).
    #[arg(long, default_value = "flex")]
    pub backend: BackendKind,
    /// `embedded` (built in), `mnist`, `cifar10`, or an image folder.
    #[arg(long, default_value = "embedded")]
    pub dataset: String,
    /// Folder with the downloaded files of `mnist` and `cifar10`.
    #[arg(long, default_value = "datasets")]
    pub data_dir: PathBuf,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Gradient accumulation: one optimiser step per N batches, each counting 1/N, as one batch
    /// of N × --batch-size would (without batch norm, exactly); the schedule counts those
    /// steps.
    #[serde(default = "one")]
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// SGD momentum (PyTorch's semantics: no dampening).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay; by default only on weights of rank ≥ 2 (convolutions, linear layers).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Also decay biases and BatchNorm's scale and shift.
    #[arg(long)]
    pub decay_norm_and_bias: bool,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    pub schedule: Schedule,
    /// Step schedule: epochs between cuts.
    #[arg(long, default_value_t = 30)]
    pub lr_step_epochs: usize,
    /// Step and plateau schedules: the factor of each cut.
    #[arg(long, default_value_t = 0.1)]
    pub lr_gamma: f64,
    /// Plateau schedule: epochs without a better validation accuracy before a cut.
    #[arg(long, default_value_t = 3)]
    pub plateau_patience: usize,
    /// Multi-step schedule: the iterations of each cut, comma-separated (e.g. 32000,48000).
    #[serde(default)]
    #[arg(long, value_delimiter = ',')]
    pub lr_milestones: Vec<usize>,
    /// Epochs of linear learning-rate warm-up.
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// Label smoothing of the cross-entropy (Szegedy et al. 2016), 0 for none.
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Augmentation preset: none, mnist, cifar, small, imagenet, alexnet (default: the
    /// dataset's; for an image folder `small` up to 64-pixel images, `imagenet` above,
    /// `data::Preset::for_image_side`).
    #[arg(long)]
    pub augment: Option<String>,
    /// Automatic augmentation after the preset's crops and flips: ta_wide (TrivialAugment) or
    /// ra (RandAugment), as torchvision's reference script names them.
    #[serde(default)]
    #[arg(long)]
    pub auto_augment: Option<String>,
    /// RandAugment's magnitude bin, of 31.
    #[serde(default = "default_ra_magnitude")]
    #[arg(long, default_value_t = 9)]
    pub ra_magnitude: usize,
    /// The chance of random erasing (Zhong et al. 2020) after normalisation, 0 for none.
    #[serde(default)]
    #[arg(long, default_value_t = 0.0)]
    pub random_erase: f64,
    /// Mixup's α (Zhang et al. 2018): each batch's images blended with λ ~ Beta(α, α), the
    /// loss on the mixed targets; 0 for none. torchvision's recipes use 0.2.
    #[serde(default)]
    #[arg(long, default_value_t = 0.0)]
    pub mixup_alpha: f64,
    /// CutMix's α (Yun et al. 2019), 0 for none; with --mixup-alpha too, each batch takes one
    /// of the two at even odds. torchvision's recipes use 1.0.
    #[serde(default)]
    #[arg(long, default_value_t = 0.0)]
    pub cutmix_alpha: f64,
    /// Keep an exponential moving average of the weights with this decay per optimiser step
    /// (e.g. 0.999), evaluated beside the raw weights (the `valid-ema` and `test-ema` rows) and
    /// saved as `ema.bpk`; 0 for none.
    #[serde(default)]
    #[arg(long, default_value_t = 0.0)]
    pub ema_decay: f64,
    /// Distil these trained networks (knowledge distillation, Hinton et al. 2015): weights
    /// files or shipped weights (`zoo:…`), repeated or comma-separated; several teach as their
    /// ensemble, by the mean of their probabilities. They see the student's augmented batches.
    #[serde(default)]
    #[arg(long = "teacher", value_delimiter = ',')]
    pub teachers: Vec<PathBuf>,
    /// The zoo model the --teacher weights are for (default: the student's).
    #[serde(default)]
    #[arg(long)]
    pub teacher_model: Option<String>,
    /// With --teacher: the weight α of the soft term, (1 − α) staying on the labels' loss.
    #[serde(default = "default_distillation_alpha")]
    #[arg(long, default_value_t = 0.5)]
    pub distillation_alpha: f64,
    /// With --teacher: the temperature τ both softmaxes are softened by.
    #[serde(default = "default_distillation_temperature")]
    #[arg(long, default_value_t = 1.0)]
    pub distillation_temperature: f64,
    /// Data-loading threads (default: the cores).
    #[arg(long, default_value_t = default_workers())]
    pub workers: usize,
    /// Seed of the model's initialisation, the split, the shuffle and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the square input (default: 32 for MNIST and CIFAR, the images' own for a folder
    /// of small images, the model's otherwise).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// The task's classes from the dataset's: `cat,dog,neither=*` keeps cat and dog and merges
    /// every other class into neither; `a=x+y` merges x and y; classes not named are dropped
    /// (for training and test alike; `data::datasets::classes::ClassGroups`).
    #[serde(default)]
    #[arg(long)]
    pub classes: Option<String>,
    /// Draw this many training images of each class (by seed) before the validation split.
    #[serde(default)]
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Draw this many test images of each class (by seed), e.g. a balanced test set after
    /// merging classes.
    #[serde(default)]
    #[arg(long)]
    pub test_per_class: Option<usize>,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Training images held back for validation (default: 10 %, at most 5,000,
    /// `data::datasets::default_validation`).
    #[arg(long)]
    pub validation: Option<usize>,
    /// Also evaluate on the test split after every epoch (for curves like He et al.'s figure
    /// 6); the last of those rows is the run's test result.
    #[serde(default)]
    #[arg(long)]
    pub test_each_epoch: bool,
    /// Start from these weights (torchvision .pth/.safetensors, a zoo .bpk, or published
    /// weights by name: `tv:resnet50`, see `cargo xtask weights list`); the head is replaced
    /// when the dataset has another number of classes.
    #[serde(default)]
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// What training leaves alone: none, all-but-head, until:<module> (e.g. until:layer3).
    #[serde(default = "no_freezing")]
    #[arg(long, default_value = "none")]
    pub freeze: FreezePolicy,
    /// The backbone's learning rate as a multiple of the head's (the head: what
    /// `with_num_classes` replaces).
    #[serde(default = "same_rate")]
    #[arg(long, default_value_t = 1.0)]
    pub backbone_lr_mult: f64,
    /// With --freeze all-but-head: compute the backbone's activations of the training images
    /// once (without augmentation), keep them in `<out>/../feature-cache/`, and train the head
    /// on them.
    #[serde(default)]
    #[arg(long)]
    pub cache_features: bool,
    /// Float type of the forward and backward passes: fp32, bf16 or fp16 (mixed precision:
    /// weights, optimiser state, batch-norm statistics and the loss stay f32).
    #[serde(default)]
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// fp16: starting value of the dynamic loss scale (PyTorch's GradScaler default, 2^16).
    #[serde(default = "default_loss_scale")]
    #[arg(long = "loss-scale", default_value_t = LossScale::DEFAULT_INITIAL)]
    pub initial_loss_scale: f32,
    /// The recipe the run was set up from (`recipe::Recipe`), for the record.
    #[serde(default)]
    #[arg(skip)]
    pub recipe: Option<String>,
    /// Output folder.
    #[arg(skip)]
    pub out: PathBuf,
    /// How the run reports.
    #[arg(skip = Progress::Bar)]
    pub progress: Progress,
}

/// The command-line defaults, as a parser with nothing but `TrainConfig`'s options sees them.
#[derive(Parser)]
pub(crate) struct Defaults {
    #[command(flatten)]
    pub(crate) config: TrainConfig,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl TrainConfig {
    /// The command line's defaults for `model` (on the embedded MNIST subset), writing into
    /// `runs/<model>`.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            out: PathBuf::from("runs").join(model),
            ..Defaults::parse_from(["defaults"]).config
        }
    }

    pub(crate) fn schedule(&self) -> ScheduleConfig {
        ScheduleConfig {
            kind: self.schedule,
            lr: self.lr,
            epochs: self.epochs,
            step_epochs: self.lr_step_epochs,
            gamma: self.lr_gamma,
            patience: self.plateau_patience,
            warmup_epochs: self.warmup_epochs,
            milestones: self.lr_milestones.clone(),
        }
    }

    /// The augmentation added to the preset's (`--auto-augment`, `--random-erase`).
    pub(crate) fn extra_augmentation(&self) -> Result<ExtraAugmentation, TrainError> {
        let auto_augment = self
            .auto_augment
            .as_deref()
            .map(|name| AutoAugment::named(name, self.ra_magnitude))
            .transpose()
            .map_err(|e| TrainError::Config(format!("--auto-augment: {e}")))?;
        Ok(ExtraAugmentation {
            auto_augment,
            random_erase: self.random_erase,
        })
    }

    /// Mixup and CutMix of the training batches.
    pub(crate) fn batch_mix(&self) -> BatchMix {
        BatchMix {
            mixup_alpha: self.mixup_alpha,
            cutmix_alpha: self.cutmix_alpha,
        }
    }

    /// The checks a run makes of its configuration before it starts.
    pub fn check(&self) -> Result<(), TrainError> {
        self.extra_augmentation()?;
        let problem = if self.epochs == 0 || self.batch_size == 0 || self.accumulate == 0 {
            "--epochs, --batch-size and --accumulate must be positive"
        } else if !(0.0..1.0).contains(&self.label_smoothing) {
            "--label-smoothing must be in [0, 1)"
        } else if !(0.0..=1.0).contains(&self.random_erase) {
            "--random-erase is a probability: it must be in [0, 1]"
        } else if ![self.mixup_alpha, self.cutmix_alpha]
            .iter()
            .all(|alpha| alpha.is_finite() && *alpha >= 0.0)
        {
            "--mixup-alpha and --cutmix-alpha must be numbers ≥ 0"
        } else if !(0.0..1.0).contains(&self.ema_decay) {
            "--ema-decay must be in [0, 1) (0 for no average)"
        } else if self.cache_features && self.batch_mix().is_active() {
            "--cache-features trains the head on cached activations, which mixup and CutMix \
             cannot mix: leave out --mixup-alpha and --cutmix-alpha"
        } else if !(0.0..=1.0).contains(&self.distillation_alpha) {
            "--distillation-alpha is a weight: it must be in [0, 1]"
        } else if !(self.distillation_temperature.is_finite()
            && self.distillation_temperature > 0.0)
        {
            "--distillation-temperature must be a positive number"
        } else if self.cache_features && !self.teachers.is_empty() {
            "--cache-features trains the head on cached activations, which a --teacher cannot \
             see: leave out one of the two"
        } else if !(self.lr.is_finite() && self.lr > 0.0) {
            "--lr must be a positive number"
        } else if self.weight_decay < 0.0 {
            "--weight-decay must not be negative"
        } else if !(self.backbone_lr_mult.is_finite() && self.backbone_lr_mult >= 0.0) {
            "--backbone-lr-mult must be a number ≥ 0"
        } else if self.cache_features && self.freeze != FreezePolicy::AllButHead {
            "--cache-features caches a frozen backbone: it needs --freeze all-but-head"
        } else if self.cache_features && self.weights.is_none() {
            "--cache-features needs the pretrained --weights whose activations it caches"
        } else if !(self.initial_loss_scale.is_finite() && self.initial_loss_scale >= 1.0) {
            "--loss-scale must be a number ≥ 1"
        } else if self.schedule == Schedule::MultiStep && self.lr_milestones.is_empty() {
            "--schedule multistep needs --lr-milestones (iterations, e.g. 32000,48000)"
        } else {
            return Ok(());
        };
        Err(TrainError::Config(problem.into()))
    }
}

fn no_freezing() -> FreezePolicy {
    FreezePolicy::None
}

fn one() -> usize {
    1
}

fn default_ra_magnitude() -> usize {
    9
}

fn default_distillation_alpha() -> f64 {
    0.5
}

fn default_distillation_temperature() -> f64 {
    1.0
}

fn same_rate() -> f64 {
    1.0
}

fn default_loss_scale() -> f32 {
    LossScale::DEFAULT_INITIAL
}

/// What the caller can do to a run while it trains: stop it with a checkpoint, or continue one.
#[derive(Debug, Clone, Default)]
pub struct TrainControl {
    /// Set (e.g. by Ctrl-C) to stop after the current step with a checkpoint.
    pub interrupt: Arc<AtomicBool>,
    /// Stop with a checkpoint after this many batches in this invocation (with gradient
    /// accumulation, at the end of that batch's group).
    pub stop_after_steps: Option<usize>,
    /// Start a new run even where `out` holds one, removing that run's files first.
    pub overwrite: bool,
}

/// Reads the `config.json` a training run saved in `run`, checked as a new run's would be.
pub fn load(run: &Path) -> Result<TrainConfig, TrainError> {
    let path = run.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        TrainError::Config(format!(
            "{}: {e} (is {} a run folder?)",
            path.display(),
            run.display()
        ))
    })?;
    let config: TrainConfig = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: not a run's config: {e}", path.display())))?;
    config
        .check()
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(change: impl FnOnce(&mut TrainConfig)) -> String {
        let mut config = TrainConfig::new("lenet5");
        change(&mut config);
        config.check().unwrap_err().to_string()
    }

    #[test]
    fn augmentation_options_are_checked_and_named() {
        assert!(refusal(|c| c.auto_augment = Some("autoaugment".into())).contains("ta_wide, ra"));
        assert!(
            refusal(|c| {
                c.auto_augment = Some("ra".into());
                c.ra_magnitude = 31;
            })
            .contains("--auto-augment")
        );
        assert!(refusal(|c| c.random_erase = 1.5).contains("--random-erase"));
        assert!(refusal(|c| c.mixup_alpha = -0.2).contains("--mixup-alpha"));
        assert!(refusal(|c| c.ema_decay = 1.0).contains("--ema-decay"));
        assert!(refusal(|c| c.cutmix_alpha = f64::NAN).contains("--cutmix-alpha"));
        assert!(refusal(|c| c.distillation_alpha = 1.5).contains("--distillation-alpha"));
        assert!(
            refusal(|c| c.distillation_temperature = 0.0).contains("--distillation-temperature")
        );
        let mut config = TrainConfig::new("lenet5");
        config.auto_augment = Some("ra".into());
        config.random_erase = 0.25;
        let extra = config.extra_augmentation().unwrap();
        assert_eq!(extra.random_erase, 0.25);
        assert!(
            matches!(extra.auto_augment, Some(AutoAugment::RandAugment(p)) if p.magnitude == 9)
        );
    }
}
