//! `cargo xtask experiment <name>`: the chapter's claims, each run end to end into
//! `runs/experiments/<name>/` with its configuration, a table and a plot. Every experiment trains
//! its networks as ordinary runs in sub-folders, so stopping one and starting it again resumes
//! where it stopped: finished runs are kept, interrupted ones continue from their checkpoint.

pub mod bottleneck;
pub mod depth;
pub mod ensemble;
pub mod identity;
pub mod transfer;

use std::path::Path;

use crate::atomic_file::write_atomically;
use crate::config::{TrainConfig, TrainControl};
use crate::error::TrainError;
use crate::train::{resume, train};

/// Whether the run of `config` finished: its `metrics.csv` has the last epoch's test row.
fn finished(config: &TrainConfig) -> bool {
    let last_epoch = config.epochs.to_string();
    std::fs::read_to_string(config.out.join("metrics.csv")).is_ok_and(|csv| {
        csv.lines().any(|line| {
            let mut fields = line.split(',');
            fields.next() == Some(last_epoch.as_str()) && fields.next() == Some("test")
        })
    })
}

/// The settings that decide what a run learns (not where it is written or how it reports).
fn learning_settings(config: &TrainConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(config).expect("the config serialises");
    if let Some(fields) = value.as_object_mut() {
        for field in ["out", "progress", "workers"] {
            fields.remove(field);
        }
    }
    value
}

/// `config` with what a run chose from its data where `config` leaves it open (the recipe, the
/// input side, the validation hold-out), taken from the run's `saved` configuration.
fn with_chosen_defaults(config: &TrainConfig, saved: &TrainConfig) -> TrainConfig {
    TrainConfig {
        augment: config.augment.clone().or_else(|| saved.augment.clone()),
        image_size: config.image_size.or(saved.image_size),
        validation: config.validation.or(saved.validation),
        ..config.clone()
    }
}

/// Trains `config` into `config.out`, unless it finished there before (kept) or stopped there
/// (resumed). A folder trained with other settings is an error, never silently reused. Returns
/// whether the run finished (false when it was interrupted or stopped with a checkpoint).
pub(crate) fn train_once(config: &TrainConfig, control: &TrainControl) -> Result<bool, TrainError> {
    let saved = crate::config::load(&config.out).ok();
    if let Some(saved) = &saved
        && learning_settings(saved) != learning_settings(&with_chosen_defaults(config, saved))
    {
        return Err(TrainError::Config(format!(
            "{} holds a run with other settings than this experiment's; remove it or choose \
             another --out",
            config.out.display()
        )));
    }
    if finished(config) {
        eprintln!("{}: finished before, kept", config.out.display());
        return Ok(true);
    }
    let report = if saved.is_some() && config.out.join("checkpoint.json").exists() {
        eprintln!("{}: resuming", config.out.display());
        resume(&config.out, control)?
    } else {
        // A run of these very settings that stopped before its first checkpoint: start again.
        let control = TrainControl {
            overwrite: true,
            ..control.clone()
        };
        train(config, &control)?
    };
    Ok(report.test.is_some())
}

/// Creates the experiment's folder and records its settings in `experiment.json`.
pub(crate) fn start(out: &Path, experiment: &impl serde::Serialize) -> Result<(), TrainError> {
    std::fs::create_dir_all(out)
        .map_err(|e| TrainError::Config(format!("{}: {e}", out.display())))?;
    write_json(&out.join("experiment.json"), experiment)
}

/// Writes what an experiment found: `results.json` and the markdown `table.md`.
pub(crate) fn write_results(
    out: &Path,
    report: &impl serde::Serialize,
    table: &str,
) -> Result<(), TrainError> {
    write_json(&out.join("results.json"), report)?;
    Ok(write_atomically(&out.join("table.md"), table.as_bytes())?)
}

/// Writes `value` as pretty JSON through a rename.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), TrainError> {
    let json = serde_json::to_vec_pretty(value).expect("the record serialises");
    Ok(write_atomically(path, &json)?)
}
