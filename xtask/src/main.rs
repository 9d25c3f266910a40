//! `cargo xtask <command>`: a thin command line over the `trainer` crate.

mod bench;
mod data;
mod eval;
mod experiment;
mod parity;
mod predict;
mod summary;
mod train;
mod verify;
mod weights;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Train, evaluate and inspect the CNN zoo",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a zoo model (default: on the embedded MNIST subset, on the CPU).
    Train(train::TrainArgs),
    /// Fine-tune from pretrained weights: `train` with --weights required (the head is
    /// replaced for the dataset's classes; --freeze chooses what stays fixed).
    Finetune(train::TrainArgs),
    /// Accuracy of a trained run, per class, with the confusion matrix.
    Eval(eval::EvalArgs),
    /// Top-5 classes of image files with a trained run's weights.
    Predict(predict::PredictArgs),
    /// Layers, output shapes, parameters and MACs of a zoo model (Keras's `model.summary()`).
    Summary(summary::SummaryArgs),
    /// Datasets: download, PCA of colours.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// The chapter's claims, end to end, with a table and a plot.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Logits of the zoo against torchvision's for the same weights and inputs.
    Parity(parity::ParityArgs),
    /// Benchmarks beside PyTorch.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Check a run's files (or single files) against the SHA-256 in its manifest.json.
    Verify(verify::VerifyArgs),
    /// Published pretrained weights by name (`tv:resnet50`): list, download, verify.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
}

fn main() -> ExitCode {
    trainer::allocator::retain_freed_memory();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // Which options the command line set (train's win over its recipe's).
    let given = matches
        .subcommand()
        .map(|(_, given)| given.clone())
        .unwrap_or_default();
    let result = match cli.command {
        Command::Train(args) => train::run(args, &given),
        Command::Finetune(args) => train::finetune(args, &given),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Summary(args) => summary::run(args),
        Command::Data(command) => data::run(command),
        Command::Experiment(command) => experiment::run(command),
        Command::Parity(args) => parity::run(args),
        Command::Bench(command) => bench::run(command),
        Command::Verify(args) => verify::run(args),
        Command::Weights(command) => weights::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
