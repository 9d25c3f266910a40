//! `cargo xtask experiment <name>`: the chapter's claims, run end to end.

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use trainer::BackendKind;
use trainer::config::{TrainConfig, TrainControl};
use trainer::experiment::bottleneck::{self, BottleneckExperiment};
use trainer::experiment::depth::{self, DepthExperiment};
use trainer::experiment::ensemble::{self, EnsembleExperiment};
use trainer::experiment::identity::{self, IdentityExperiment};
use trainer::experiment::transfer::{self, TransferExperiment};
use trainer::transfer::FreezePolicy;

use crate::train::{TrainOptions, interrupt_on_ctrl_c};

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Train K seeds of a model; accuracy against ensemble size, with and without 10-crop.
    Ensemble(EnsembleArgs),
    /// Append zero-weight residual blocks and plain blocks to a trained CIFAR ResNet.
    Identity(IdentityArgs),
    /// The Inception 5×5 branch with and without its 1×1 bottleneck: MACs, parameters, time.
    Bottleneck(BottleneckArgs),
    /// He et al.'s figure 6: plain-20/56 against ResNet-20/56 on CIFAR-10, the paper's recipe.
    Depth(DepthArgs),
    /// The chapter's cat example: pretrain on 8 CIFAR-10 classes, then learn cat / dog /
    /// neither from few images four ways (scratch, head on cached features, frozen to a middle
    /// stage, fine-tune all), at two training-set sizes.
    Transfer(TransferArgs),
}

#[derive(Args)]
pub struct TransferArgs {
    /// The network (pretrained, then transferred).
    #[arg(long, default_value = "cifar-resnet20")]
    model: String,
    /// The classes to pretrain on.
    #[arg(
        long,
        default_value = "airplane,automobile,bird,deer,frog,horse,ship,truck"
    )]
    pretrain_classes: String,
    /// Pretraining epochs (the task's: --epochs).
    #[arg(long, default_value_t = 15)]
    pretrain_epochs: usize,
    /// Training images per class of the task, one set of regimes each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes: Vec<usize>,
    /// The stage up to which the middle regime freezes.
    #[arg(long, default_value = "layer2")]
    middle: String,
    /// Output folder (default: runs/experiments/transfer).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dataset, backend, workers, seed, the task's classes (--classes, default
    /// cat,dog,neither=*), its balanced test set (--test-per-class, default 1000) and recipe
    /// (--epochs, --lr, --backbone-lr-mult, …); pretraining uses the same recipe with
    /// --pretrain-epochs.
    #[command(flatten)]
    options: TrainOptions,
}

#[derive(Args)]
pub struct DepthArgs {
    /// Fraction of the paper's 64k iterations (cuts at 32k and 48k scale with it).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// Which plain/residual pairs to train, by depth (20 costs about a third of 56).
    #[arg(long, value_delimiter = ',', default_value = "20,56")]
    depths: Vec<usize>,
    /// Output folder (default: runs/experiments/depth).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dataset, backend, workers, seed (the recipe itself is the paper's).
    #[command(flatten)]
    options: TrainOptions,
}

#[derive(Args)]
pub struct BottleneckArgs {
    /// Backends to time on, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    backends: Vec<BackendKind>,
    /// Volumes per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Untimed passes first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed passes (the median is reported).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Output folder (default: runs/experiments/bottleneck).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct EnsembleArgs {
    /// Registry name of the members' model.
    model: String,
    /// Members K (seeds --seed … --seed + K − 1).
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Output folder (default: runs/experiments/ensemble).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: TrainOptions,
}

#[derive(Args)]
pub struct IdentityArgs {
    /// The CIFAR ResNet to train first.
    #[arg(long, default_value = "cifar-resnet20")]
    model: String,
    /// Use this trained run instead of training one.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Blocks to append to the last stage.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Output folder (default: runs/experiments/identity).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: TrainOptions,
}

pub fn run(command: ExperimentCommand) -> Result<(), Box<dyn Error>> {
    let control = TrainControl::default();
    interrupt_on_ctrl_c(&control)?;
    let stopped = || eprintln!("stopped before training finished; the same command continues");
    match command {
        ExperimentCommand::Ensemble(args) => {
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from("runs/experiments/ensemble"));
            let base = args.options.config(&args.model, out.clone());
            let experiment = EnsembleExperiment::new(base, args.members, out.clone());
            match ensemble::run(&experiment, &control)? {
                Some(report) => {
                    println!("{}", ensemble::table(&report));
                    println!(
                        "{} test images; 10-crop evaluation of all {} members: {:.1} images/s; \
                         table, plot and JSON in {}",
                        report.images,
                        args.members,
                        report.cost.images_per_second,
                        out.display()
                    );
                }
                None => stopped(),
            }
        }
        ExperimentCommand::Identity(args) => {
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from("runs/experiments/identity"));
            let base = args.options.config(&args.model, out.join("trained"));
            let experiment = IdentityExperiment {
                seed: base.seed,
                base,
                run: args.run,
                blocks: args.blocks,
                out: out.clone(),
            };
            match identity::run(&experiment, &control)? {
                Some(report) => {
                    println!("{}", identity::table(&report));
                    println!("table, plot and JSON in {}", out.display());
                }
                None => stopped(),
            }
        }
        ExperimentCommand::Depth(args) => {
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from("runs/experiments/depth"));
            let mut base = args.options.config("cifar-resnet20", out.clone());
            base.batch_size = 128;
            base.validation = Some(0);
            let steps = trainer::setup::steps_per_epoch(&base)?;
            let experiment = DepthExperiment {
                depths: args.depths,
                ..DepthExperiment::new(base, args.budget, steps, out.clone())
            };
            match depth::run(&experiment, &control)? {
                Some(report) => {
                    println!("{}", depth::table(&report));
                    println!(
                        "{} iterations each; table, plot and JSON in {}",
                        report.iterations,
                        out.display()
                    );
                }
                None => stopped(),
            }
        }
        ExperimentCommand::Transfer(args) => {
            let out = args
                .out
                .unwrap_or_else(|| PathBuf::from("runs/experiments/transfer"));
            let base = args.options.config(&args.model, out.clone());
            let backbone_lr_mult = base.backbone_lr_mult;
            let task_classes = base.classes.clone().unwrap_or("cat,dog,neither=*".into());
            let test_per_class = base.test_per_class.unwrap_or(1000);
            let plain = TrainConfig {
                weights: None,
                freeze: FreezePolicy::None,
                backbone_lr_mult: 1.0,
                cache_features: false,
                limit: None,
                classes: None,
                per_class: None,
                test_per_class: None,
                ..base
            };
            let experiment = TransferExperiment {
                pretrain: TrainConfig {
                    classes: Some(args.pretrain_classes),
                    epochs: args.pretrain_epochs,
                    out: out.join("pretrain"),
                    ..plain.clone()
                },
                task: TrainConfig {
                    classes: Some(task_classes),
                    test_per_class: Some(test_per_class),
                    validation: Some(0),
                    ..plain
                },
                sizes: args.sizes,
                middle: args.middle,
                backbone_lr_mult,
                out: out.clone(),
            };
            match transfer::run(&experiment, &control)? {
                Some(report) => {
                    println!("{}", transfer::table(&report));
                    println!(
                        "pretrained network: {:.2} % on its own test images; table, plot and \
                         JSON in {}",
                        100.0 * report.pretrain_test_top1,
                        out.display()
                    );
                }
                None => stopped(),
            }
        }
        ExperimentCommand::Bottleneck(args) => {
            let experiment = BottleneckExperiment {
                backends: args.backends,
                batch_size: args.batch_size,
                warmup: args.warmup,
                steps: args.steps,
                out: args
                    .out
                    .unwrap_or_else(|| PathBuf::from("runs/experiments/bottleneck")),
            };
            let report = bottleneck::run(&experiment)?;
            println!("{}", bottleneck::table(&report));
            println!("table, plot and JSON in {}", experiment.out.display());
        }
    }
    Ok(())
}
