//! `cargo xtask experiment <name>`: the chapter's claims, run end to end.

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use trainer::experiment::ensemble::{self, EnsembleExperiment};
use trainer::train::TrainControl;

use crate::train::{TrainOptions, interrupt_on_ctrl_c};

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Train K seeds of a model; accuracy against ensemble size, with and without 10-crop.
    Ensemble(EnsembleArgs),
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

pub fn run(command: ExperimentCommand) -> Result<(), Box<dyn Error>> {
    let control = TrainControl::default();
    interrupt_on_ctrl_c(&control)?;
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
                None => {
                    eprintln!("stopped before every member finished; the same command continues")
                }
            }
        }
    }
    Ok(())
}
