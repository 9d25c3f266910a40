//! The training loop: any zoo model on any dataset source, on the backend chosen at run time.
//!
//! One code path for every backend: batches and model live on `backend.device().autodiff()`
//! while training and on the plain device for evaluation. Every run writes `config.json`,
//! `metrics.csv` (a row per epoch and split) and burnpack checkpoints (`last.bpk`, `best.bpk`
//! by validation accuracy), each through a temporary file and a rename.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use data::datasets::idx::Split;
use data::datasets::source::DatasetSource;
use data::{DataError, DataLoader, Dataset, LoaderConfig, Preset, Subset};
use indicatif::{ProgressBar, ProgressStyle};
use model_zoo::{Classifier, ModelOptions, UnknownModel, ZooModel};
use serde::{Deserialize, Serialize};

use crate::BackendKind;
use crate::checkpoint::{WriteError, save_module, write_atomically};

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// SGD with momentum, PyTorch's semantics (no dampening).
    Sgd,
    /// Adam (ε = 1e-8).
    Adam,
}

/// The learning-rate schedule over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine decay from the rate to zero over the run (Loshchilov & Hutter 2017).
    Cosine,
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
    /// Learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay, applied to every parameter.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Augmentation preset (default: the dataset's).
    pub augment: Option<String>,
    /// Data-loading threads.
    pub workers: usize,
    /// Seed of the model's initialisation, the split, the shuffle and the augmentation.
    pub seed: u64,
    /// Side of the square input (default: 32 for MNIST and CIFAR, the model's own otherwise).
    pub image_size: Option<usize>,
    /// Use only the first N training images.
    pub limit: Option<usize>,
    /// Training images held back for validation.
    pub validation: usize,
    /// Output folder.
    pub out: PathBuf,
    /// No progress bar, only the per-epoch summary lines.
    pub quiet: bool,
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
            weight_decay: 0.0,
            schedule: Schedule::Cosine,
            augment: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: 0,
            image_size: None,
            limit: None,
            validation: 500,
            out: PathBuf::from("runs").join(model),
            quiet: false,
        }
    }
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// `train`, `valid` or `test`.
    pub split: &'static str,
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
    /// Test-set metrics of the last epoch's weights.
    pub test: EpochMetrics,
    /// Where the run was written.
    pub out: PathBuf,
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
            Self::Diverged { epoch, step, loss } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, step {step}: stopped; the last good \
                 checkpoint is kept (try a lower --lr)"
            ),
        }
    }
}

impl std::error::Error for TrainError {}

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
}

pub(crate) fn setup(config: &TrainConfig, device: &Device) -> Result<Setup, TrainError> {
    let info = model_zoo::info(&config.model).map_err(TrainError::Model)?;
    let source = DatasetSource::parse(&config.dataset);
    let small_images = matches!(
        source,
        DatasetSource::Embedded | DatasetSource::Mnist | DatasetSource::Cifar10
    );
    let size = config
        .image_size
        .unwrap_or(if small_images { 32 } else { info.input[1] });
    let preset = match (&config.augment, &source) {
        (Some(name), _) => name.parse::<Preset>().map_err(TrainError::Config)?,
        (None, DatasetSource::Embedded | DatasetSource::Mnist) => Preset::Mnist,
        (None, DatasetSource::Cifar10) => Preset::Cifar,
        (None, DatasetSource::ImageFolder(_)) => Preset::Imagenet,
    };
    let full_train = source.open(Split::Train, &config.data_dir)?;
    let test = source.open(Split::Test, &config.data_dir)?;
    let classes = full_train.classes().len();
    let limited: Arc<dyn Dataset> = match config.limit {
        Some(limit) => Arc::new(Subset::first(full_train, limit)),
        None => full_train,
    };
    let (train, valid) = data::datasets::split(limited, config.validation, config.seed);
    if train.is_empty() {
        return Err(TrainError::Config(format!(
            "no training images left after holding {} back for validation",
            config.validation
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
    })
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let decay =
        (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    match config.optimizer {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((config.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(config.momentum)
                    .with_dampening(0.0)
            }))
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
    }
}

fn learning_rate(config: &TrainConfig, epoch: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.lr,
        Schedule::Cosine => {
            let progress = epoch as f64 / config.epochs.max(1) as f64;
            0.5 * config.lr * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
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
    split: &'static str,
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
        split,
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

fn progress_bar(config: &TrainConfig, batches: usize, epoch: usize) -> ProgressBar {
    if config.quiet {
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

/// Trains `config.model` and writes the run into `config.out`.
pub fn train(config: &TrainConfig) -> Result<TrainReport, TrainError> {
    if config.epochs == 0 || config.batch_size == 0 {
        return Err(TrainError::Config(
            "--epochs and --batch-size must be positive".into(),
        ));
    }
    let device = config.backend.device();
    device.seed(config.seed);
    let autodiff = device.clone().autodiff();
    let Setup {
        train,
        valid,
        test,
        model,
        classes,
        ..
    } = setup(config, &autodiff)?;
    std::fs::create_dir_all(&config.out).map_err(|e| WriteError {
        path: config.out.clone(),
        problem: e.to_string(),
    })?;
    let config_json = serde_json::to_vec_pretty(config).expect("the config serialises");
    write_atomically(&config.out.join("config.json"), &config_json)?;

    let mut model = model;
    let mut optim = optimizer(config);
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut metrics = Vec::new();
    let mut best = f64::NEG_INFINITY;
    eprintln!(
        "training {} ({} classes, {} trainable parameters) on {} with {}; writing {}",
        config.model,
        classes,
        model_zoo::count_parameters(&model),
        config.dataset,
        config.backend,
        config.out.display()
    );
    for epoch in 1..=config.epochs {
        let lr = learning_rate(config, epoch - 1);
        let bar = progress_bar(config, train.batches_per_epoch(), epoch);
        let started = Instant::now();
        let (mut seen, mut loss_sum, mut top1, mut top5) = (0usize, 0.0f64, 0usize, 0usize);
        for (step, batch) in train.epoch(epoch - 1).enumerate() {
            let batch = batch?.to_device(&autodiff);
            let n = batch.labels.dims()[0];
            let output = model.forward_train(batch.images);
            let mut loss = loss_fn.forward(output.logits.clone(), batch.labels.clone());
            // GoogLeNet's auxiliary classifiers count with weight 0.3 (Szegedy et al. §5).
            for aux in output.aux_logits {
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
            let (c1, c5) = correct(&output.logits, &batch.labels, 5);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            (seen, top1, top5) = (seen + n, top1 + c1, top5 + c5);
            loss_sum += f64::from(loss_value) * n as f64;
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * top1 as f64 / seen as f64,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let seen_f = seen.max(1) as f64;
        let train_row = EpochMetrics {
            epoch,
            split: "train",
            loss: loss_sum / seen_f,
            top1: top1 as f64 / seen_f,
            top5: top5 as f64 / seen_f,
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
            "epoch {epoch}/{}: train loss {:.4} acc {:.2}% ({:.0} img/s, {:.1} s)",
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
        eprintln!("{line}");
        save_module(inference.clone(), &config.out.join("last.bpk"))?;
        let score = valid_row.as_ref().map_or(train_row.top1, |row| row.top1);
        if score > best {
            best = score;
            save_module(inference, &config.out.join("best.bpk"))?;
        }
        metrics.push(train_row);
        metrics.extend(valid_row);
        write_atomically(&config.out.join("metrics.csv"), csv(&metrics).as_bytes())?;
    }
    let lr = learning_rate(config, config.epochs);
    let test_row = evaluate(&model.valid(), &test, &device, config.epochs, lr, "test")?;
    eprintln!(
        "test: loss {:.4}, top-1 {:.2}%, top-5 {:.2}% — curves in {}, weights in {}",
        test_row.loss,
        100.0 * test_row.top1,
        100.0 * test_row.top5,
        config.out.join("metrics.csv").display(),
        config.out.join("last.bpk").display()
    );
    metrics.push(test_row.clone());
    write_atomically(&config.out.join("metrics.csv"), csv(&metrics).as_bytes())?;
    std::io::stderr().flush().ok();
    Ok(TrainReport {
        metrics,
        test: test_row,
        out: config.out.clone(),
    })
}
