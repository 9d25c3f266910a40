//! `cargo xtask train <model> [options]` and `cargo xtask train --resume --out <run>`.

use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, ValueEnum};
use trainer::BackendKind;
use trainer::precision::{LossScale, Precision};
use trainer::run_folder;
use trainer::train::{OptimizerKind, Progress, Schedule, TrainConfig, TrainControl, resume, train};
use trainer::transfer::FreezePolicy;

#[derive(Clone, Copy, ValueEnum)]
enum Optimizer {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
    Constant,
    Step,
    Cosine,
    Plateau,
    Multistep,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Registry name (`cargo xtask summary --list`); not needed with --resume --out.
    #[arg(required_unless_present = "resume")]
    model: Option<String>,
    #[command(flatten)]
    options: TrainOptions,
    /// Output folder (default: runs/<model>, or runs/<model>-2, -3, … where those hold runs).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out (or the latest of runs/<model>, -2, …) from its last
    /// checkpoint, with its saved configuration.
    #[arg(long)]
    resume: bool,
    /// Replace the run that --out holds (its files are removed first).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Stop with a checkpoint after this many optimiser steps (e.g. to fit a time slot).
    #[arg(long)]
    stop_after_steps: Option<usize>,
}

/// Everything that shapes a training run, shared by `train` and the experiments.
#[derive(Args)]
pub struct TrainOptions {
    /// Backend: flex, ndarray, wgpu (vulkan and cuda when built with `--features vulkan` / `cuda`).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// `embedded` (built in), `mnist`, `cifar10`, or an image folder.
    #[arg(long, default_value = "embedded")]
    dataset: String,
    /// Folder with the downloaded files of `mnist` and `cifar10`.
    #[arg(long, default_value = "datasets")]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, value_enum, default_value_t = Optimizer::Sgd)]
    optimizer: Optimizer,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// SGD momentum (PyTorch's semantics: no dampening).
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Nesterov momentum.
    #[arg(long)]
    nesterov: bool,
    /// Weight decay on convolution and linear weights.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Also decay biases and BatchNorm's scale and shift.
    #[arg(long)]
    decay_norm_and_bias: bool,
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
    /// Step schedule: epochs between cuts.
    #[arg(long, default_value_t = 30)]
    lr_step_epochs: usize,
    /// Step and plateau schedules: factor of each cut.
    #[arg(long, default_value_t = 0.1)]
    lr_gamma: f64,
    /// Plateau schedule: epochs without a better validation accuracy before a cut.
    #[arg(long, default_value_t = 3)]
    plateau_patience: usize,
    /// Multi-step schedule: iterations of each cut, comma-separated (e.g. 32000,48000).
    #[arg(long, value_delimiter = ',')]
    lr_milestones: Vec<usize>,
    /// Epochs of linear learning-rate warm-up.
    #[arg(long, default_value_t = 0)]
    warmup_epochs: usize,
    /// Label smoothing of the cross-entropy.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Augmentation preset: none, mnist, cifar, small, imagenet, alexnet (default: the
    /// dataset's; for an image folder `small` up to 64-pixel images, `imagenet` above).
    #[arg(long)]
    augment: Option<String>,
    /// Data-loading threads (default: the cores).
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Input side (default: 32 for MNIST and CIFAR, the images' own for a folder of small
    /// images, the model's otherwise).
    #[arg(long)]
    image_size: Option<usize>,
    /// The task's classes from the dataset's: `cat,dog,neither=*` keeps cat and dog and merges
    /// every other class into neither; `a=x+y` merges x and y; classes not named are dropped.
    #[arg(long)]
    classes: Option<String>,
    /// Draw N training images of each class (by --seed).
    #[arg(long)]
    per_class: Option<usize>,
    /// Draw N test images of each class (by --seed), e.g. a balanced test set.
    #[arg(long)]
    test_per_class: Option<usize>,
    /// Use only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
    /// Training images held back for validation (default: 10 %, at most 5,000).
    #[arg(long)]
    validation: Option<usize>,
    /// Also evaluate on the test split after every epoch.
    #[arg(long)]
    test_each_epoch: bool,
    /// Start from these weights (torchvision .pth/.safetensors, a zoo .bpk, or published weights
    /// by name: `tv:resnet50`, see `cargo xtask weights list`); the head is replaced when the
    /// dataset has another number of classes.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// What training leaves alone: none, all-but-head, until:<module> (e.g. until:layer3).
    #[arg(long, default_value = "none")]
    freeze: FreezePolicy,
    /// The backbone's learning rate as a multiple of the new head's.
    #[arg(long, default_value_t = 1.0)]
    backbone_lr_mult: f64,
    /// With --freeze all-but-head: compute the backbone's activations once, keep them on disk
    /// (runs/feature-cache/), and train the head on them.
    #[arg(long)]
    cache_features: bool,
    /// Float type of the forward and backward passes: fp32, bf16 or fp16 (mixed precision:
    /// weights, optimiser state, batch-norm statistics and the loss stay f32).
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// fp16: starting value of the dynamic loss scale (PyTorch's GradScaler default, 2^16).
    #[arg(long, default_value_t = LossScale::DEFAULT_INITIAL)]
    loss_scale: f32,
    /// Only the per-epoch summary lines, no progress bar.
    #[arg(long, conflicts_with = "json_lines")]
    quiet: bool,
    /// Only one JSON object per epoch and split on stdout.
    #[arg(long)]
    json_lines: bool,
}

impl TrainOptions {
    /// The run's configuration for `model`, written into `out`.
    pub fn config(self, model: &str, out: PathBuf) -> TrainConfig {
        let args = self;
        let defaults = TrainConfig::new(model);
        TrainConfig {
            backend: args.backend,
            dataset: args.dataset,
            data_dir: args.data_dir,
            epochs: args.epochs,
            batch_size: args.batch_size,
            optimizer: match args.optimizer {
                Optimizer::Sgd => OptimizerKind::Sgd,
                Optimizer::Adam => OptimizerKind::Adam,
                Optimizer::Adamw => OptimizerKind::AdamW,
            },
            lr: args.lr,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
            decay_norm_and_bias: args.decay_norm_and_bias,
            schedule: match args.schedule {
                ScheduleArg::Constant => Schedule::Constant,
                ScheduleArg::Step => Schedule::Step,
                ScheduleArg::Cosine => Schedule::Cosine,
                ScheduleArg::Plateau => Schedule::Plateau,
                ScheduleArg::Multistep => Schedule::MultiStep,
            },
            lr_step_epochs: args.lr_step_epochs,
            lr_gamma: args.lr_gamma,
            plateau_patience: args.plateau_patience,
            lr_milestones: args.lr_milestones,
            warmup_epochs: args.warmup_epochs,
            label_smoothing: args.label_smoothing,
            augment: args.augment,
            workers: args.workers.unwrap_or(defaults.workers),
            seed: args.seed,
            image_size: args.image_size,
            classes: args.classes,
            per_class: args.per_class,
            test_per_class: args.test_per_class,
            limit: args.limit,
            validation: args.validation,
            test_each_epoch: args.test_each_epoch,
            weights: args.weights,
            freeze: args.freeze,
            backbone_lr_mult: args.backbone_lr_mult,
            cache_features: args.cache_features,
            precision: args.precision,
            initial_loss_scale: args.loss_scale,
            out,
            progress: if args.json_lines {
                Progress::JsonLines
            } else if args.quiet {
                Progress::Quiet
            } else {
                Progress::Bar
            },
            ..defaults
        }
    }
}

/// Ctrl-C stops after the current step with a checkpoint; a second Ctrl-C quits at once.
pub fn interrupt_on_ctrl_c(control: &TrainControl) -> Result<(), Box<dyn Error>> {
    let interrupt = control.interrupt.clone();
    ctrlc::set_handler(move || {
        if interrupt.swap(true, Ordering::Relaxed) {
            eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: writing a checkpoint after this step (again to quit at once)");
    })?;
    Ok(())
}

/// `train` from pretrained weights, which must be named.
pub fn finetune(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    if args.options.weights.is_none() && !args.resume {
        return Err(
            "finetune starts from pretrained weights: name them with --weights FILE".into(),
        );
    }
    run(args)
}

pub fn run(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let control = TrainControl {
        stop_after_steps: args.stop_after_steps,
        overwrite: args.overwrite,
        ..TrainControl::default()
    };
    interrupt_on_ctrl_c(&control)?;
    if args.resume {
        let out = match (&args.out, &args.model) {
            (Some(out), _) => out.clone(),
            (None, Some(model)) => {
                let base = PathBuf::from("runs").join(model);
                run_folder::latest(&base)
                    .ok_or_else(|| format!("no run of {model} in {} to resume", base.display()))?
            }
            (None, None) => return Err("--resume needs --out or a model name".into()),
        };
        resume(&out, &control)?;
    } else {
        let model = args.model.expect("clap requires a model without --resume");
        let out = args
            .out
            .unwrap_or_else(|| run_folder::fresh(&PathBuf::from("runs").join(&model)));
        train(&args.options.config(&model, out), &control)?;
    }
    Ok(())
}
