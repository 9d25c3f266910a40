//! `cargo xtask train <model> [options]`.

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use trainer::BackendKind;
use trainer::train::{OptimizerKind, Schedule, TrainConfig, train};

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Flex,
    Ndarray,
    Wgpu,
}

#[derive(Clone, Copy, ValueEnum)]
enum Optimizer {
    Sgd,
    Adam,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
    Constant,
    Cosine,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Registry name (`cargo xtask summary --list`).
    model: String,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
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
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// SGD momentum (PyTorch's semantics: no dampening).
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// L2 weight decay on every parameter.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
    /// Augmentation preset: none, mnist, cifar, imagenet, alexnet (default: the dataset's).
    #[arg(long)]
    augment: Option<String>,
    /// Data-loading threads (default: the cores).
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Input side (default: 32 for MNIST and CIFAR, the model's own otherwise).
    #[arg(long)]
    image_size: Option<usize>,
    /// Use only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
    /// Training images held back for validation.
    #[arg(long, default_value_t = 500)]
    validation: usize,
    /// Output folder (default: runs/<model>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the per-epoch summary lines, no progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let defaults = TrainConfig::new(&args.model);
    let config = TrainConfig {
        backend: match args.backend {
            Backend::Flex => BackendKind::Flex,
            Backend::Ndarray => BackendKind::Ndarray,
            Backend::Wgpu => BackendKind::Wgpu,
        },
        dataset: args.dataset,
        data_dir: args.data_dir,
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: match args.optimizer {
            Optimizer::Sgd => OptimizerKind::Sgd,
            Optimizer::Adam => OptimizerKind::Adam,
        },
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        schedule: match args.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Cosine => Schedule::Cosine,
        },
        augment: args.augment,
        workers: args.workers.unwrap_or(defaults.workers),
        seed: args.seed,
        image_size: args.image_size,
        limit: args.limit,
        validation: args.validation,
        out: args.out.unwrap_or(defaults.out.clone()),
        quiet: args.quiet,
        ..defaults
    };
    train(&config)?;
    Ok(())
}
