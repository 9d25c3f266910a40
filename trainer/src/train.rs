//! The training loop: any zoo model on any dataset source, on the backend chosen at run time.
//!
//! One code path for every backend: batches and model live on `backend.open()?.autodiff()`
//! while training and on the plain device for evaluation. Every run writes `config.json`,
//! `metrics.csv` (a row per epoch and split), `curves.png`, burnpack weights (`last.bpk`,
//! `best.bpk` by validation accuracy) and a checkpoint to resume from (`checkpoint.json` naming
//! the weights, optimiser state, schedule state and data position), each through a temporary
//! file and a rename.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{Module, ParamGroup, ParamId};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, DynOptimizer, DynState, LearningRate, ModuleOptimizer, Optimizer,
    OptimizerRecord, StateSink, StateSource,
};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::kind::BridgeTensor;
use data::datasets::classes::{ClassGroups, Relabeled, per_class};
use data::datasets::idx::Split;
use data::datasets::source::DatasetSource;
use data::{DataError, DataLoader, Dataset, LoaderConfig, Preset, Subset};
use indicatif::{ProgressBar, ProgressStyle};
use model_zoo::{Classifier, ModelOptions, TrainOutput, UnknownModel, ZooModel};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{WriteError, save_module, write_atomically};
use crate::features::cached_features;
use crate::manifest::{self, FileDigest};
use crate::precision::{LossScale, Precision, gradients};
use crate::run_folder::{self, Locked, RunLock};
pub use crate::schedule::Schedule;
use crate::schedule::{ScheduleConfig, ScheduleState};
use crate::sgd::MomentumSgd;
use crate::transfer::{FreezePolicy, freeze, pretrained};
use crate::{BackendKind, BackendUnavailable};

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// SGD with momentum, PyTorch's semantics (no dampening).
    Sgd,
    /// Adam (ε = 1e-8), weight decay added to the gradient (L2).
    Adam,
    /// AdamW (ε = 1e-8), weight decay decoupled from the gradient (Loshchilov & Hutter 2019).
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

/// Everything needed to rerun a training run; saved as `config.json` beside its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Registry name of the model.
    pub model: String,
    /// Backend.
    pub backend: BackendKind,
    /// Dataset: `embedded`, `mnist`, `cifar10` or an image folder.
    pub dataset: String,
    /// Folder with the downloaded files of `mnist` and `cifar10`.
    pub data_dir: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    pub nesterov: bool,
    /// Weight decay; by default only on weights of rank ≥ 2 (convolutions, linear layers).
    pub weight_decay: f64,
    /// Also decay biases and BatchNorm's scale and shift.
    pub decay_norm_and_bias: bool,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Step schedule: epochs between cuts.
    pub lr_step_epochs: usize,
    /// Step and plateau schedules: the factor of each cut.
    pub lr_gamma: f64,
    /// Plateau schedule: epochs without a better validation accuracy before a cut.
    pub plateau_patience: usize,
    /// Multi-step schedule: the iterations of each cut.
    #[serde(default)]
    pub lr_milestones: Vec<usize>,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Label smoothing of the cross-entropy (Szegedy et al. 2016), 0 for none.
    pub label_smoothing: f64,
    /// Augmentation preset (default: the dataset's; for an image folder `small` or `imagenet`
    /// by the images' size, `data::Preset::for_image_side`).
    pub augment: Option<String>,
    /// Data-loading threads.
    pub workers: usize,
    /// Seed of the model's initialisation, the split, the shuffle and the augmentation.
    pub seed: u64,
    /// Side of the square input (default: 32 for MNIST and CIFAR, the model's own otherwise).
    pub image_size: Option<usize>,
    /// The task's classes built from the dataset's (`cat,dog,neither=*`: keep, merge, drop;
    /// see `data::datasets::classes::ClassGroups`), for training and test alike.
    #[serde(default)]
    pub classes: Option<String>,
    /// Draw this many training images of each class (by seed) before the validation split.
    #[serde(default)]
    pub per_class: Option<usize>,
    /// Draw this many test images of each class (by seed), e.g. a balanced test set after
    /// merging classes.
    #[serde(default)]
    pub test_per_class: Option<usize>,
    /// Use only the first N training images.
    pub limit: Option<usize>,
    /// Training images held back for validation (default: 10 %, at most 5,000,
    /// `data::datasets::default_validation`).
    pub validation: Option<usize>,
    /// Also evaluate on the test split after every epoch (for curves like He et al.'s figure
    /// 6); the last of those rows is the run's test result.
    #[serde(default)]
    pub test_each_epoch: bool,
    /// Start from these weights (torchvision `.pth`/`.safetensors` or a zoo `.bpk`), with a new
    /// head when the dataset has another number of classes.
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// What training leaves alone.
    #[serde(default = "no_freezing")]
    pub freeze: FreezePolicy,
    /// The backbone's learning rate as a multiple of the head's (the head: what
    /// `with_num_classes` replaces).
    #[serde(default = "same_rate")]
    pub backbone_lr_mult: f64,
    /// With `--freeze all-but-head`: compute the backbone's activations of the training images
    /// once (without augmentation), keep them in `<out>/../feature-cache/`, and train the head
    /// on them.
    #[serde(default)]
    pub cache_features: bool,
    /// The float type of the forward and backward passes (weights and optimiser stay `f32`).
    #[serde(default)]
    pub precision: Precision,
    /// fp16: the dynamic loss scale's starting value.
    #[serde(default = "default_loss_scale")]
    pub initial_loss_scale: f32,
    /// Output folder.
    pub out: PathBuf,
    /// How the run reports.
    pub progress: Progress,
}

impl TrainConfig {
    /// Defaults for `model` on the embedded MNIST subset.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            backend: BackendKind::Flex,
            dataset: "embedded".into(),
            data_dir: PathBuf::from("datasets"),
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            decay_norm_and_bias: false,
            schedule: Schedule::Cosine,
            lr_step_epochs: 30,
            lr_gamma: 0.1,
            plateau_patience: 3,
            lr_milestones: Vec::new(),
            warmup_epochs: 0,
            label_smoothing: 0.0,
            augment: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: 0,
            image_size: None,
            classes: None,
            per_class: None,
            test_per_class: None,
            limit: None,
            validation: None,
            test_each_epoch: false,
            weights: None,
            freeze: FreezePolicy::None,
            backbone_lr_mult: 1.0,
            cache_features: false,
            precision: Precision::Fp32,
            initial_loss_scale: LossScale::DEFAULT_INITIAL,
            out: PathBuf::from("runs").join(model),
            progress: Progress::Bar,
        }
    }

    fn schedule(&self) -> ScheduleConfig {
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

    fn check(&self) -> Result<(), TrainError> {
        let problem = if self.epochs == 0 || self.batch_size == 0 {
            "--epochs and --batch-size must be positive"
        } else if !(0.0..1.0).contains(&self.label_smoothing) {
            "--label-smoothing must be in [0, 1)"
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
    /// Stop with a checkpoint after this many optimiser steps in this invocation.
    pub stop_after_steps: Option<usize>,
    /// Start a new run even where `out` holds one, removing that run's files first.
    pub overwrite: bool,
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// `train`, `valid` or `test`.
    pub split: String,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-1 when there are 5 classes or fewer).
    pub top5: f64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Images per second.
    pub images_per_second: f64,
    /// Wall time of the pass.
    pub seconds: f64,
}

/// What a run ends with.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Every row written to `metrics.csv`.
    pub metrics: Vec<EpochMetrics>,
    /// Test-set metrics of the last epoch's weights; `None` when the run was stopped early.
    pub test: Option<EpochMetrics>,
    /// Where the run was written.
    pub out: PathBuf,
    /// fp16: the loss scale at the end, with the steps it skipped.
    pub loss_scale: Option<LossScale>,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum TrainError {
    /// Bad configuration.
    Config(String),
    /// The model name.
    Model(UnknownModel),
    /// Reading data.
    Data(DataError),
    /// Writing the run's files.
    Write(WriteError),
    /// The backend could not start on this machine.
    Backend(BackendUnavailable),
    /// The loss stopped being finite; the last good checkpoint is kept.
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss.
        loss: f32,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(problem) => f.write_str(problem),
            Self::Model(error) => error.fmt(f),
            Self::Data(error) => error.fmt(f),
            Self::Write(error) => error.fmt(f),
            Self::Backend(error) => error.fmt(f),
            Self::Diverged { epoch, step, loss } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, step {step}: stopped; the last good \
                 checkpoint is kept (try a lower --lr)"
            ),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<BackendUnavailable> for TrainError {
    fn from(error: BackendUnavailable) -> Self {
        Self::Backend(error)
    }
}

impl From<DataError> for TrainError {
    fn from(error: DataError) -> Self {
        Self::Data(error)
    }
}

impl From<WriteError> for TrainError {
    fn from(error: WriteError) -> Self {
        Self::Write(error)
    }
}

/// The datasets, loaders and model a run needs.
pub(crate) struct Setup {
    pub(crate) train: DataLoader,
    pub(crate) valid: Option<DataLoader>,
    pub(crate) test: DataLoader,
    pub(crate) model: ZooModel,
    pub(crate) classes: usize,
    /// Evaluation preprocessing and the channels images decode to, for single images.
    pub(crate) eval_transform: (data::Compose, usize),
    /// The augmentation preset and the input side, from which multi-crop evaluation is built.
    pub(crate) preset: Preset,
    pub(crate) size: usize,
    /// Training images held back for validation.
    pub(crate) validation: usize,
    /// How the model was built, for pretrained weights.
    pub(crate) options: ModelOptions,
}

pub(crate) fn setup(config: &TrainConfig, device: &Device) -> Result<Setup, TrainError> {
    let info = model_zoo::info(&config.model).map_err(TrainError::Model)?;
    let source = DatasetSource::parse(&config.dataset);
    // An image folder's defaults follow its images: small ones keep their size and get padding
    // and random crops, large ones the ImageNet recipe at the model's input size.
    let folder_side = match (&config.augment, config.image_size) {
        (Some(_), Some(_)) => None,
        _ => source.folder_image_side()?,
    };
    let small_images = match &source {
        DatasetSource::Embedded | DatasetSource::Mnist | DatasetSource::Cifar10 => true,
        DatasetSource::ImageFolder(_) => {
            folder_side.is_some_and(|side| Preset::for_image_side(side) == Preset::Small)
        }
    };
    let size = config.image_size.unwrap_or(match (&source, folder_side) {
        (DatasetSource::ImageFolder(_), Some(side)) if small_images => side,
        _ if small_images => 32,
        _ => info.input[1],
    });
    let preset = match (&config.augment, &source) {
        (Some(name), _) => name.parse::<Preset>().map_err(TrainError::Config)?,
        (None, DatasetSource::Embedded | DatasetSource::Mnist) => Preset::Mnist,
        (None, DatasetSource::Cifar10) => Preset::Cifar,
        (None, DatasetSource::ImageFolder(_)) if small_images => Preset::Small,
        (None, DatasetSource::ImageFolder(_)) => Preset::Imagenet,
    };
    let groups = config
        .classes
        .as_deref()
        .map(str::parse::<ClassGroups>)
        .transpose()
        .map_err(|e| TrainError::Config(format!("--classes {e}")))?;
    let task = |dataset: Arc<dyn Dataset>, count: Option<usize>, seed: u64| {
        let dataset: Arc<dyn Dataset> = match &groups {
            Some(groups) => Arc::new(Relabeled::new(dataset, groups).map_err(|e| {
                TrainError::Config(format!("--classes for {}: {e}", config.dataset))
            })?),
            None => dataset,
        };
        Ok::<_, TrainError>(match count {
            Some(count) => Arc::new(per_class(dataset, count, seed)),
            None => dataset,
        })
    };
    let full_train = task(
        source.open(Split::Train, &config.data_dir)?,
        config.per_class,
        config.seed,
    )?;
    let test = task(
        source.open(Split::Test, &config.data_dir)?,
        config.test_per_class,
        config.seed,
    )?;
    // A label means the same class in both splits only when they list the same classes in the
    // same order (an image folder's train/ and test/ sub-folders are listed separately).
    if full_train.classes() != test.classes() {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|class| !b.contains(class))
                .cloned()
                .collect()
        };
        return Err(TrainError::Config(format!(
            "{}: the training and test splits have different classes (only in training: {:?}; \
             only in test: {:?}; or the same names in another order)",
            config.dataset,
            only(full_train.classes(), test.classes()),
            only(test.classes(), full_train.classes())
        )));
    }
    let classes = full_train.classes().len();
    let limited: Arc<dyn Dataset> = match config.limit {
        Some(limit) => Arc::new(Subset::first(full_train, limit)),
        None => full_train,
    };
    let validation = config
        .validation
        .unwrap_or_else(|| data::datasets::default_validation(limited.len()));
    let (train, valid) = data::datasets::split(limited, validation, config.seed);
    if train.is_empty() {
        return Err(TrainError::Config(format!(
            "no training images left after holding {validation} back for validation"
        )));
    }
    let loader = |dataset: Arc<dyn Dataset>, train: bool| {
        let transform = if train {
            preset.train(size)
        } else {
            preset.eval(size)
        };
        let loader_config = LoaderConfig {
            workers: config.workers.max(1),
            prefetch: 2 * config.workers.max(1),
            shuffle: train,
            seed: config.seed,
            ..LoaderConfig::new(config.batch_size)
        };
        DataLoader::new(dataset, Arc::new(transform), loader_config)
    };
    let options = ModelOptions::new()
        .with_num_classes(Some(classes))
        .with_in_channels(Some(source.channels()))
        .with_input_size(Some(size))
        .with_aux_logits(true);
    Ok(Setup {
        train: loader(Arc::new(train), true),
        valid: (!valid.is_empty()).then(|| loader(Arc::new(valid), false)),
        test: loader(test, false),
        model: info.build(&options, device),
        classes,
        eval_transform: (preset.eval(size), source.channels()),
        preset,
        size,
        validation,
        options,
    })
}

/// Optimiser steps in one epoch of `config` (its training images over the batch size).
pub fn steps_per_epoch(config: &TrainConfig) -> Result<usize, TrainError> {
    Ok(setup(config, &config.backend.open()?)?
        .train
        .batches_per_epoch())
}

/// Correct top-1 and top-k predictions in a batch.
fn correct(logits: &Tensor<2>, labels: &Tensor<1, Int>, k: usize) -> (usize, usize) {
    let [n, classes] = logits.dims();
    let k = k.min(classes);
    let labels = labels.clone().reshape([n, 1]);
    let top1 = logits.clone().argmax(1).equal(labels.clone());
    let top1 = top1.int().sum().into_scalar::<i64>() as usize;
    let topk_indices = logits.clone().topk_with_indices(k, 1).1;
    let topk = topk_indices.equal(labels.expand([n, k])).int().sum();
    (top1, topk.into_scalar::<i64>() as usize)
}

/// Loss and accuracy of `model` over `loader`'s epoch 0, on the plain device.
pub fn evaluate(
    model: &ZooModel,
    loader: &DataLoader,
    device: &Device,
    epoch: usize,
    lr: f64,
    split: &str,
) -> Result<EpochMetrics, DataError> {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let started = Instant::now();
    let (mut seen, mut loss_sum, mut top1, mut top5) = (0usize, 0.0f64, 0usize, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?.to_device(device);
        let n = batch.labels.dims()[0];
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
        loss_sum += f64::from(loss.into_scalar::<f32>()) * n as f64;
        let (c1, c5) = correct(&logits, &batch.labels, 5);
        (seen, top1, top5) = (seen + n, top1 + c1, top5 + c5);
    }
    let seconds = started.elapsed().as_secs_f64();
    let seen_f = seen.max(1) as f64;
    Ok(EpochMetrics {
        epoch,
        split: split.to_string(),
        loss: loss_sum / seen_f,
        top1: top1 as f64 / seen_f,
        top5: top5 as f64 / seen_f,
        lr,
        images_per_second: seen as f64 / seconds,
        seconds,
    })
}

fn csv(metrics: &[EpochMetrics]) -> String {
    let mut out = String::from("epoch,split,loss,top1,top5,lr,images_per_second,seconds\n");
    for m in metrics {
        out.push_str(&format!(
            "{},{},{:.6},{:.6},{:.6},{:.6e},{:.1},{:.3}\n",
            m.epoch, m.split, m.loss, m.top1, m.top5, m.lr, m.images_per_second, m.seconds
        ));
    }
    out
}

/// Reads back the `metrics.csv` a run wrote.
pub fn read_metrics(out: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = out.join("metrics.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    let bad = |line: usize| {
        TrainError::Config(format!(
            "{}: line {line} is not a metrics row",
            path.display()
        ))
    };
    text.lines()
        .enumerate()
        .skip(1)
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            let [
                epoch,
                split,
                loss,
                top1,
                top5,
                lr,
                images_per_second,
                seconds,
            ] = fields[..]
            else {
                return Err(bad(index + 1));
            };
            let number = |field: &str| field.parse::<f64>().map_err(|_| bad(index + 1));
            Ok(EpochMetrics {
                epoch: epoch.parse().map_err(|_| bad(index + 1))?,
                split: split.to_string(),
                loss: number(loss)?,
                top1: number(top1)?,
                top5: number(top5)?,
                lr: number(lr)?,
                images_per_second: number(images_per_second)?,
                seconds: number(seconds)?,
            })
        })
        .collect()
}

/// Parameters spared from weight decay unless asked: biases and BatchNorm's γ and β, as timm and
/// torchvision's reference scripts do (decaying a normalisation's scale fights the normalisation).
const UNDECAYED_PARAMS: &str = r"(^|\.)(bias|gamma|beta)$";

/// An optimiser whose learning rate is a fixed multiple of the run's: `--backbone-lr-mult`
/// trains a pretrained backbone more gently than its new head.
struct ScaledLr<O> {
    inner: O,
    factor: f64,
}

impl<O: DynOptimizer> DynOptimizer for ScaledLr<O> {
    fn step_dyn(
        &self,
        rank: usize,
        lr: LearningRate,
        tensor: BridgeTensor,
        grad: BridgeTensor,
        state: Option<DynState>,
    ) -> (BridgeTensor, Option<DynState>) {
        self.inner
            .step_dyn(rank, lr * self.factor, tensor, grad, state)
    }

    fn to_device_dyn(&self, state: DynState, device: &Device) -> DynState {
        self.inner.to_device_dyn(state, device)
    }

    fn state_flatten(&self, prefix: &str, state: &DynState, out: &mut StateSink) {
        self.inner.state_flatten(prefix, state, out);
    }

    fn state_unflatten(
        &self,
        rank: usize,
        prefix: &str,
        src: &mut StateSource,
        device: &Device,
    ) -> Option<DynState> {
        self.inner.state_unflatten(rank, prefix, src, device)
    }
}

/// Where `--backbone-lr-mult` applies: (factor, backbone weights, backbone biases and norms).
type Backbone = (f64, Vec<ParamId>, Vec<ParamId>);

/// `decayed` for every parameter; `undecayed` for biases and BatchNorm's γ and β when `spared`;
/// both at a multiple of the rate on the backbone's parameters.
fn grouped<O: Optimizer + 'static>(
    decayed: impl Fn() -> O,
    undecayed: impl Fn() -> O,
    spared: bool,
    backbone: Option<Backbone>,
) -> ModuleOptimizer {
    let mut optim = ModuleOptimizer::from(decayed());
    if spared {
        let group = ParamGroup::from_regex(UNDECAYED_PARAMS).expect("a valid pattern");
        optim = optim.with_group(group, undecayed(), None);
    }
    if let Some((factor, weights, others)) = backbone {
        let scaled = ScaledLr {
            inner: decayed(),
            factor,
        };
        optim = optim.with_group(ParamGroup::from_ids(weights), scaled, None);
        if spared {
            let scaled = ScaledLr {
                inner: undecayed(),
                factor,
            };
            optim = optim.with_group(ParamGroup::from_ids(others), scaled, None);
        }
    }
    optim
}

/// The run's optimiser for `model`.
fn optimizer(config: &TrainConfig, model: &ZooModel, device: &Device) -> ModuleOptimizer {
    let decay = (config.weight_decay > 0.0).then_some(config.weight_decay);
    let spared = decay.is_some() && !config.decay_norm_and_bias;
    let backbone = (config.backbone_lr_mult != 1.0).then(|| {
        let undecayed = ParamGroup::from_regex(UNDECAYED_PARAMS).expect("a valid pattern");
        let (mut weights, mut others) = (Vec::new(), Vec::new());
        for (id, path) in crate::transfer::backbone_parameters(model, device) {
            if spared && undecayed.matches(&id, Some(&path)) {
                others.push(id);
            } else {
                weights.push(id);
            }
        }
        (config.backbone_lr_mult, weights, others)
    });
    let sgd = |decay: Option<f64>| MomentumSgd {
        momentum: (config.momentum > 0.0).then_some(config.momentum as f32),
        nesterov: config.nesterov,
        weight_decay: decay.unwrap_or(0.0) as f32,
    };
    let adam = |decay: Option<f64>| {
        AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay.map(|d| WeightDecayConfig::new(d as f32)))
            .build()
    };
    let adamw = |decay: Option<f64>| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay.unwrap_or(0.0) as f32)
            .build()
    };
    match config.optimizer {
        OptimizerKind::Sgd => grouped(|| sgd(decay), || sgd(None), spared, backbone),
        OptimizerKind::Adam => grouped(|| adam(decay), || adam(None), spared, backbone),
        OptimizerKind::AdamW => grouped(|| adamw(decay), || adamw(None), spared, backbone),
    }
}

/// Running sums of the epoch in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct EpochTally {
    seen: usize,
    loss_sum: f64,
    top1: usize,
    top5: usize,
    seconds: f64,
}

/// `checkpoint.json`: where a run stands, naming the weight and optimiser files written with it.
/// It is renamed into place after those files, so it never names a half-written file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    /// Epoch in progress (0-based).
    epoch: usize,
    /// Steps of that epoch already taken.
    step: usize,
    /// Model weights (burnpack, with parameter ids), relative to the run folder.
    model: String,
    /// Optimiser state (burnpack), relative to the run folder.
    optimizer: String,
    /// Learning-rate schedule state.
    schedule: ScheduleState,
    /// Best validation (or training) accuracy so far, which `best.bpk` holds.
    best: Option<f64>,
    /// Rows of `metrics.csv` so far.
    metrics: Vec<EpochMetrics>,
    /// Running sums of the epoch in progress.
    tally: EpochTally,
    /// fp16: the dynamic loss scale.
    #[serde(default)]
    loss_scale: Option<LossScale>,
    /// The digests of `model` and `optimizer`, checked before they are loaded (absent in
    /// checkpoints written before they were recorded).
    #[serde(default)]
    digests: Option<[FileDigest; 2]>,
}

const CHECKPOINT: &str = "checkpoint.json";

impl Checkpoint {
    fn save(
        &mut self,
        out: &Path,
        model: &ZooModel,
        optim: &ModuleOptimizer,
    ) -> Result<(), TrainError> {
        let stem = format!("checkpoint-e{}-s{}", self.epoch, self.step);
        self.model = format!("{stem}.bpk");
        self.optimizer = format!("{stem}.optim.bpk");
        save_module(model.clone(), &out.join(&self.model))?;
        let optim_path = out.join(&self.optimizer);
        let bytes = optim.to_record().into_bytes().map_err(|e| WriteError {
            path: optim_path.clone(),
            problem: format!("{e:?}"),
        })?;
        write_atomically(&optim_path, &bytes)?;
        self.digests = Some([
            manifest::digest(&out.join(&self.model))?,
            manifest::digest(&optim_path)?,
        ]);
        let previous = Self::load(out).ok();
        let json = serde_json::to_vec_pretty(&*self).expect("the checkpoint serialises");
        write_atomically(&out.join(CHECKPOINT), &json)?;
        let mut removed = Vec::new();
        if let Some(previous) = previous.filter(|p| p.model != self.model) {
            let _ = std::fs::remove_file(out.join(&previous.model));
            let _ = std::fs::remove_file(out.join(&previous.optimizer));
            removed = vec![previous.model, previous.optimizer];
        }
        let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
        manifest::record(out, &[&self.model, &self.optimizer, CHECKPOINT], &removed)
    }

    fn load(out: &Path) -> Result<Self, TrainError> {
        let path = out.join(CHECKPOINT);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            TrainError::Config(format!(
                "{}: nothing to resume ({e}); a run writes it after its first epoch or when stopped",
                path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: not a checkpoint: {e}", path.display())))
    }

    /// The saved model, then the optimiser `build` makes for it (its parameter groups name the
    /// loaded parameters) with the saved state.
    fn restore(
        &self,
        out: &Path,
        model: ZooModel,
        build: impl FnOnce(&ZooModel) -> ModuleOptimizer,
    ) -> Result<(ZooModel, ModuleOptimizer), TrainError> {
        let model_path = out.join(&self.model);
        let optim_path = out.join(&self.optimizer);
        if let Some([model_digest, optim_digest]) = &self.digests {
            manifest::verify_against(&model_path, model_digest, CHECKPOINT)?;
            manifest::verify_against(&optim_path, optim_digest, CHECKPOINT)?;
        }
        let model = model.try_load_file(&model_path).map_err(|e| {
            TrainError::Config(format!("{}: cannot load: {e:?}", model_path.display()))
        })?;
        let optim = build(&model);
        let bytes = std::fs::read(&optim_path)
            .map_err(|e| TrainError::Config(format!("{}: {e}", optim_path.display())))?;
        let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
            TrainError::Config(format!(
                "{}: not an optimiser state: {e:?}",
                optim_path.display()
            ))
        })?;
        Ok((model, optim.load_record(record)))
    }
}

/// The seed of the device's generator (dropout) for one step: reseeding every step lets a
/// resumed run draw exactly what the uninterrupted run drew.
fn step_seed(seed: u64, epoch: usize, step: usize) -> u64 {
    let position = ((epoch as u64) << 32) | step as u64;
    seed ^ position.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn progress_bar(config: &TrainConfig, batches: usize, epoch: usize) -> ProgressBar {
    if config.progress != Progress::Bar {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches as u64);
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    )
    .expect("a valid progress template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{}", config.epochs));
    bar
}

fn report(config: &TrainConfig, row: &EpochMetrics) {
    if config.progress == Progress::JsonLines {
        println!("{}", serde_json::to_string(row).expect("metrics serialise"));
    }
}

fn lock(out: &Path) -> Result<RunLock, TrainError> {
    RunLock::acquire(out).map_err(|Locked(problem)| TrainError::Config(problem))
}

fn create_out(out: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(out).map_err(|e| {
        TrainError::Write(WriteError {
            path: out.to_path_buf(),
            problem: e.to_string(),
        })
    })
}

/// A run from code, as `cargo xtask train` makes one:
///
/// ```
/// use trainer::train::{Progress, TrainConfig, TrainControl, train};
///
/// let config = TrainConfig {
///     epochs: 1,
///     limit: Some(1000), // the first 1,000 embedded MNIST digits, a tenth held back
///     workers: 1,
///     progress: Progress::Quiet,
///     out: std::env::temp_dir().join(format!("trainer-doc-run-{}", std::process::id())),
///     ..TrainConfig::new("lenet5")
/// };
/// let report = train(&config, &TrainControl::default())?;
/// let test = report.test.expect("a finished run is tested");
/// assert!(test.top1 > 0.3, "chance is 0.1");
/// assert!(config.out.join("best.bpk").is_file());
/// # std::fs::remove_dir_all(&config.out).unwrap();
/// # Ok::<(), trainer::train::TrainError>(())
/// ```
///
/// Trains `config.model` from scratch and writes the run into `config.out`, which must not hold
/// a run unless `control.overwrite` says to replace it.
pub fn train(config: &TrainConfig, control: &TrainControl) -> Result<TrainReport, TrainError> {
    config.check()?;
    // A backend that cannot start on this machine is said before a run folder is made.
    config.backend.open()?;
    create_out(&config.out)?;
    let _lock = lock(&config.out)?;
    if run_folder::holds_run(&config.out) {
        if !control.overwrite {
            let out = config.out.display();
            return Err(TrainError::Config(format!(
                "{out} holds a run already: continue it with `cargo xtask train --resume --out \
                 {out}`, write this one elsewhere with --out, or replace it with --overwrite"
            )));
        }
        run_folder::clear(&config.out).map_err(|e| {
            TrainError::Write(WriteError {
                path: config.out.clone(),
                problem: format!("removing the earlier run's files: {e}"),
            })
        })?;
    }
    let config_json = serde_json::to_vec_pretty(config).expect("the config serialises");
    write_atomically(&config.out.join("config.json"), &config_json)?;
    manifest::record(&config.out, &["config.json"], &[])?;
    run(config, control, None)
}

/// Continues the run in `out` from its last checkpoint, with the configuration it was started
/// with; on a CPU backend it ends with the same weights as a run that was never stopped.
pub fn resume(out: &Path, control: &TrainControl) -> Result<TrainReport, TrainError> {
    // A folder with nothing to resume says so before a lock file is written into it; the
    // checkpoint is read again under the lock, where no other process can move it on.
    Checkpoint::load(out)?;
    let _lock = lock(out)?;
    let checkpoint = Checkpoint::load(out)?;
    manifest::verify(&out.join("config.json"))?;
    let mut config = crate::eval::load_config(out)?;
    config.out = out.to_path_buf();
    config.check()?;
    run(&config, control, Some(checkpoint))
}

fn run(
    config: &TrainConfig,
    control: &TrainControl,
    resumed: Option<Checkpoint>,
) -> Result<TrainReport, TrainError> {
    let device = config.backend.open()?;
    device.seed(config.seed);
    let autodiff = device.clone().autodiff();
    let Setup {
        train,
        valid,
        test,
        model,
        classes,
        options,
        eval_transform: (eval_transform, _),
        preset,
        size,
        validation,
    } = setup(config, &autodiff)?;
    // The defaults the data chose, written down so that the run's config.json reruns it.
    let resolved = TrainConfig {
        augment: Some(preset.name().to_string()),
        image_size: Some(size),
        validation: Some(validation),
        ..config.clone()
    };
    let config = &resolved;
    if resumed.is_none() {
        let json = serde_json::to_vec_pretty(config).expect("the config serialises");
        write_atomically(&config.out.join("config.json"), &json)?;
        manifest::record(&config.out, &["config.json"], &[])?;
    }
    let model = match (&config.weights, &resumed) {
        (Some(path), None) => {
            let info = model_zoo::info(&config.model).map_err(TrainError::Model)?;
            pretrained(info, &options, path, classes, &autodiff)?
        }
        _ => model,
    };
    let schedule = config.schedule();
    let (mut model, mut optim, mut state) = match resumed {
        Some(checkpoint) => {
            let (model, optim) = checkpoint.restore(&config.out, model, |model| {
                optimizer(config, model, &autodiff)
            })?;
            eprintln!(
                "resuming {} at epoch {}, step {}",
                config.out.display(),
                checkpoint.epoch + 1,
                checkpoint.step
            );
            (model, optim, checkpoint)
        }
        None => (
            model.clone(),
            optimizer(config, &model, &autodiff),
            Checkpoint {
                epoch: 0,
                step: 0,
                model: String::new(),
                optimizer: String::new(),
                schedule: ScheduleState::default(),
                best: None,
                metrics: Vec::new(),
                tally: EpochTally::default(),
                loss_scale: config.precision.loss_scale(config.initial_loss_scale),
                digests: None,
            },
        ),
    };
    let mut smoothing = CrossEntropyLossConfig::new();
    if config.label_smoothing > 0.0 {
        smoothing = smoothing.with_smoothing(Some(config.label_smoothing as f32));
    }
    let loss_fn = smoothing.init(&autodiff);
    let precision = config.precision;
    let (frozen_model, trainable, total) = freeze(model, &config.freeze, &autodiff)?;
    model = frozen_model;
    let train = if config.cache_features {
        let dir = config
            .out
            .parent()
            .unwrap_or(Path::new("."))
            .join("feature-cache");
        let preprocessing = format!("{preset:?} eval at {size}");
        let started = Instant::now();
        let (loader, stem, reused) =
            cached_features(config, &model, &train, eval_transform, &preprocessing, &dir)?;
        if config.progress != Progress::JsonLines {
            eprintln!(
                "features of {} training images {} {} ({:.1} s); training the head on them",
                loader.dataset().len(),
                if reused { "read from" } else { "computed into" },
                stem.display(),
                started.elapsed().as_secs_f64()
            );
        }
        loader
    } else {
        train
    };
    if config.progress != Progress::JsonLines {
        eprintln!(
            "training {} ({} classes, {trainable} of {total} parameters trainable, freeze {}) on \
             {} ({size}×{size}, augment {}, {validation} images held back for validation) with \
             {} in {}; writing {}",
            config.model,
            classes,
            config.freeze,
            config.dataset,
            preset.name(),
            config.backend,
            config.precision,
            config.out.display()
        );
    }
    let steps = train.batches_per_epoch();
    let mut steps_taken = 0usize;
    while state.epoch < config.epochs {
        let epoch = state.epoch + 1;
        let bar = progress_bar(config, steps, epoch);
        bar.set_position(state.step as u64);
        let started = Instant::now();
        let mut tally = state.tally;
        // The rate of the epoch's last step taken so far (what the epoch's row reports).
        let mut lr = schedule.lr(
            &state.schedule,
            state.epoch,
            state.step.saturating_sub(1),
            steps,
        );
        for batch in train.epoch_from(state.epoch, state.step) {
            let step = state.step;
            lr = schedule.lr(&state.schedule, state.epoch, step, steps);
            autodiff.seed(step_seed(config.seed, state.epoch, step));
            let batch = batch?.to_device(&autodiff);
            let n = batch.labels.dims()[0];
            let images = precision.autocast(batch.images);
            let output = if config.cache_features {
                TrainOutput {
                    logits: model.forward_head(images),
                    aux_logits: Vec::new(),
                }
            } else {
                model.forward_train(images)
            };
            let logits = precision.logits(output.logits);
            let mut loss = loss_fn.forward(logits.clone(), batch.labels.clone());
            // GoogLeNet's auxiliary classifiers count with weight 0.3 (Szegedy et al. §5).
            for aux in output.aux_logits {
                let aux = precision.logits(aux);
                loss = loss + loss_fn.forward(aux, batch.labels.clone()).mul_scalar(0.3);
            }
            let loss_value = loss.clone().into_scalar::<f32>();
            if !loss_value.is_finite() {
                bar.abandon();
                return Err(TrainError::Diverged {
                    epoch,
                    step: step + 1,
                    loss: loss_value,
                });
            }
            let (c1, c5) = correct(&logits, &batch.labels, 5);
            if let Some(grads) = gradients(loss, &model, state.loss_scale.as_mut()) {
                model = optim.step(lr, model, grads);
            }
            tally.seen += n;
            tally.top1 += c1;
            tally.top5 += c5;
            tally.loss_sum += f64::from(loss_value) * n as f64;
            state.step += 1;
            steps_taken += 1;
            let elapsed = tally.seconds + started.elapsed().as_secs_f64();
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                tally.loss_sum / tally.seen as f64,
                100.0 * tally.top1 as f64 / tally.seen as f64,
                tally.seen as f64 / elapsed
            ));
            let interrupted = control.interrupt.load(Ordering::Relaxed);
            if interrupted || control.stop_after_steps == Some(steps_taken) {
                bar.abandon();
                state.tally = EpochTally {
                    seconds: elapsed,
                    ..tally
                };
                let metrics = state.metrics.clone();
                state.save(&config.out, &model, &optim)?;
                eprintln!(
                    "{} at epoch {epoch}, step {}: checkpoint written; continue with \
                     `cargo xtask train --resume --out {}`",
                    if interrupted {
                        "interrupted"
                    } else {
                        "stopped"
                    },
                    state.step,
                    config.out.display()
                );
                return Ok(TrainReport {
                    metrics,
                    test: None,
                    out: config.out.clone(),
                    loss_scale: state.loss_scale,
                });
            }
        }
        bar.finish_and_clear();
        let seconds = tally.seconds + started.elapsed().as_secs_f64();
        let seen_f = tally.seen.max(1) as f64;
        let train_row = EpochMetrics {
            epoch,
            split: "train".into(),
            loss: tally.loss_sum / seen_f,
            top1: tally.top1 as f64 / seen_f,
            top5: tally.top5 as f64 / seen_f,
            lr,
            images_per_second: seen_f / seconds,
            seconds,
        };
        let inference = model.valid();
        let valid_row = match &valid {
            Some(loader) => Some(evaluate(&inference, loader, &device, epoch, lr, "valid")?),
            None => None,
        };
        let mut line = format!(
            "epoch {epoch}/{}: lr {lr:.2e} | train loss {:.4} acc {:.2}% ({:.0} img/s, {:.1} s)",
            config.epochs,
            train_row.loss,
            100.0 * train_row.top1,
            train_row.images_per_second,
            seconds
        );
        if let Some(row) = &valid_row {
            line.push_str(&format!(
                " | valid loss {:.4} acc {:.2}%",
                row.loss,
                100.0 * row.top1
            ));
        }
        if let Some(scale) = &state.loss_scale {
            line.push_str(&format!(
                " | loss scale {} ({} steps skipped)",
                scale.scale, scale.skipped
            ));
        }
        report(config, &train_row);
        if let Some(row) = &valid_row {
            report(config, row);
            if schedule.observe(&mut state.schedule, row.top1) {
                line.push_str(&format!(" | lr × {}", config.lr_gamma));
            }
        }
        if config.progress != Progress::JsonLines {
            eprintln!("{line}");
        }
        save_module(inference.clone(), &config.out.join("last.bpk"))?;
        manifest::record(&config.out, &["last.bpk"], &[])?;
        let score = valid_row.as_ref().map_or(train_row.top1, |row| row.top1);
        if state.best.is_none_or(|best| score > best) {
            state.best = Some(score);
            save_module(inference, &config.out.join("best.bpk"))?;
            manifest::record(&config.out, &["best.bpk"], &[])?;
        }
        let test_row = if config.test_each_epoch {
            let row = evaluate(&model.valid(), &test, &device, epoch, lr, "test")?;
            report(config, &row);
            if config.progress != Progress::JsonLines {
                eprintln!("  test loss {:.4} acc {:.2}%", row.loss, 100.0 * row.top1);
            }
            Some(row)
        } else {
            None
        };
        state.metrics.push(train_row);
        state.metrics.extend(valid_row);
        state.metrics.extend(test_row);
        write_atomically(
            &config.out.join("metrics.csv"),
            csv(&state.metrics).as_bytes(),
        )?;
        crate::plot::write_curves(
            &config.out.join("curves.png"),
            &config.model,
            &state.metrics,
        )?;
        state.epoch += 1;
        state.step = 0;
        state.tally = EpochTally::default();
        state.save(&config.out, &model, &optim)?;
    }
    let last_test = state
        .metrics
        .last()
        .filter(|row| row.split == "test" && row.epoch == config.epochs)
        .cloned();
    let evaluated_each_epoch = last_test.is_some();
    let test_row = match last_test {
        Some(row) => row,
        None => {
            let lr = schedule.lr(&state.schedule, config.epochs, 0, steps);
            let row = evaluate(&model.valid(), &test, &device, config.epochs, lr, "test")?;
            report(config, &row);
            row
        }
    };
    if config.progress != Progress::JsonLines {
        eprintln!(
            "test: loss {:.4}, top-1 {:.2}%, top-5 {:.2}% — curves in {}, weights in {}",
            test_row.loss,
            100.0 * test_row.top1,
            100.0 * test_row.top5,
            config.out.join("curves.png").display(),
            config.out.join("best.bpk").display()
        );
    }
    let mut metrics = state.metrics;
    if !evaluated_each_epoch {
        metrics.push(test_row.clone());
    }
    write_atomically(&config.out.join("metrics.csv"), csv(&metrics).as_bytes())?;
    manifest::record(&config.out, &["metrics.csv"], &[])?;
    std::io::stderr().flush().ok();
    Ok(TrainReport {
        metrics,
        test: Some(test_row),
        out: config.out.clone(),
        loss_scale: state.loss_scale,
    })
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;

    use super::*;

    #[derive(Default)]
    struct Weights(Vec<(usize, Vec<f32>)>);

    impl ModuleVisitor for Weights {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push((D, param.val().into_data().try_to_vec::<f32>().unwrap()));
        }
    }

    /// LeNet-5's parameters after one SGD step of learning rate 1 on a zero gradient with weight
    /// decay 0.5: every decayed value is exactly halved, every spared one unchanged.
    fn after_decay_step(decay_norm_and_bias: bool) -> (Weights, Weights) {
        let device = Device::flex().autodiff();
        let model = model_zoo::create("lenet5", &ModelOptions::new(), &device).unwrap();
        let mut before = Weights::default();
        model.visit(&mut before);
        let config = TrainConfig {
            momentum: 0.0,
            weight_decay: 0.5,
            decay_norm_and_bias,
            ..TrainConfig::new("lenet5")
        };
        let logits = model.forward(Tensor::ones([2, 1, 32, 32], &device));
        let zero_loss = logits.mul_scalar(0.0).sum();
        let grads = GradientsParams::from_grads(zero_loss.backward(), &model);
        let model = optimizer(&config, &model, &device).step(1.0, model, grads);
        let mut after = Weights::default();
        model.visit(&mut after);
        (before, after)
    }

    #[test]
    fn weight_decay_spares_biases_unless_asked() {
        for decay_norm_and_bias in [false, true] {
            let (before, after) = after_decay_step(decay_norm_and_bias);
            assert_eq!(before.0.len(), 10);
            for ((rank, old), (_, new)) in before.0.iter().zip(&after.0) {
                let halved: Vec<f32> = old.iter().map(|v| v * 0.5).collect();
                if *rank == 1 && !decay_norm_and_bias {
                    assert_eq!(new, old, "a bias was decayed");
                } else {
                    assert_eq!(new, &halved, "a rank-{rank} parameter was not decayed");
                }
            }
        }
    }
}
