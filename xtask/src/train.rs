//! `cargo xtask train <model> [options]` and `cargo xtask train --resume --out <run>`.

use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use trainer::config::{Progress, TrainConfig, TrainControl};
use trainer::recipe::Recipe;
use trainer::run_folder;
use trainer::train::{resume, train};

#[derive(Args)]
pub struct TrainArgs {
    /// Registry name (`cargo xtask summary --list`); not needed with --resume --out, nor with
    /// a --recipe that names one.
    #[arg(required_unless_present_any = ["resume", "recipe"])]
    model: Option<String>,
    /// Start from a recipe: a built-in one by name (the files in `recipes/`; an unknown name
    /// lists them) or a .toml file of `train` options; options given here win.
    #[arg(long, conflicts_with = "resume")]
    recipe: Option<String>,
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

/// Everything that shapes a training run (each a field of `TrainConfig`, which defines the
/// option), and how the run reports; shared by `train` and the experiments.
#[derive(Args)]
pub struct TrainOptions {
    #[command(flatten)]
    config: TrainConfig,
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
        TrainConfig {
            model: model.to_string(),
            out,
            progress: if self.json_lines {
                Progress::JsonLines
            } else if self.quiet {
                Progress::Quiet
            } else {
                Progress::Bar
            },
            ..self.config
        }
    }

    /// The options as given, before a model and an output folder are chosen.
    pub fn options(&self) -> &TrainConfig {
        &self.config
    }
}

/// Ctrl-C stops after the current step with a checkpoint; a second Ctrl-C quits as soon as no
/// file is half-written.
pub fn interrupt_on_ctrl_c(control: &TrainControl) -> Result<(), Box<dyn Error>> {
    let interrupt = control.interrupt.clone();
    ctrlc::set_handler(move || {
        if interrupt.swap(true, Ordering::Relaxed) {
            eprintln!(
                "\nsecond Ctrl-C: exiting without a checkpoint, once the file being written is"
            );
            trainer::atomic_file::exit_after_writes(130);
        }
        eprintln!("\nCtrl-C: writing a checkpoint after this step (again to quit at once)");
    })?;
    Ok(())
}

/// `train` from pretrained weights, which must be named.
pub fn finetune(args: TrainArgs, matches: &ArgMatches) -> Result<(), Box<dyn Error>> {
    if args.options.options().weights.is_none() && !args.resume {
        return Err(
            "finetune starts from pretrained weights: name them with --weights FILE".into(),
        );
    }
    run(args, matches)
}

/// `matches` are the subcommand's, which say which options the command line set (they win over
/// a recipe's).
pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<(), Box<dyn Error>> {
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
        let recipe = args.recipe.as_deref().map(Recipe::find).transpose()?;
        let model = args
            .model
            .or_else(|| recipe.as_ref().and_then(|recipe| recipe.model.clone()))
            .ok_or("the recipe names no model: name one before --recipe")?;
        let out = args
            .out
            .unwrap_or_else(|| run_folder::fresh(&PathBuf::from("runs").join(&model)));
        let mut config = args.options.config(&model, out);
        if let Some(recipe) = recipe {
            let explicit =
                |field: &str| matches.value_source(field) == Some(ValueSource::CommandLine);
            config = recipe.apply(config, explicit)?;
            if let Some(description) = &recipe.description {
                eprintln!("recipe {}: {description}", recipe.source);
            }
        }
        train(&config, &control)?;
    }
    Ok(())
}
