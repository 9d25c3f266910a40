//! The training loop: any zoo model on any dataset source, on the backend chosen at run time.
//!
//! One code path for every backend: batches and model live on `backend.open()?.autodiff()`
//! while training and on the plain device for evaluation. Every run writes `config.json`,
//! `metrics.csv` (a row per epoch and split), `curves.png`, burnpack weights (`last.bpk`;
//! `best.bpk` by validation accuracy, the last epoch's without a validation split) and a
//! checkpoint to resume from (`checkpoint.json` naming the weights, optimiser state, schedule
//! state and data position), each through a temporary file and a rename.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, ModuleOptimizer};
use burn::prelude::*;
use data::DataLoader;
use indicatif::{ProgressBar, ProgressStyle};
use model_zoo::{Classifier, TrainOutput, ZooModel};

use crate::atomic_file::{WriteError, copy_atomically, save_module, write_atomically, writing};
use crate::checkpoint::Checkpoint;
use crate::config::{Progress, TrainConfig, TrainControl};
use crate::distill::Teachers;
use crate::ema::WeightAverage;
use crate::error::TrainError;
use crate::features::cached_features;
use crate::manifest;
use crate::metrics::{
    EpochMetrics, EpochTally, batch_loss, correct, csv, dominant_labels, evaluate,
};
use crate::optimizer::optimizer;
use crate::precision::{LossScale, gradients};
use crate::run_folder::{self, Locked, RunLock};
use crate::schedule::{ScheduleConfig, ScheduleState};
use crate::setup::{Setup, setup};
use crate::transfer::{freeze, pretrained};
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

/// Writes the run's file `name` with `write` and records it in the manifest, as one group that
/// a second Ctrl-C waits for.
fn write_recorded(
    out: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), WriteError>,
) -> Result<(), TrainError> {
    let _writing = writing();
    write(&out.join(name))?;
    manifest::record(out, &[name], &[])
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
/// use trainer::config::{Progress, TrainConfig, TrainControl};
/// use trainer::train::train;
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
/// # Ok::<(), trainer::error::TrainError>(())
/// ```
///
/// Trains `config.model` from scratch and writes the run into `config.out`, which must not hold
/// a run unless `control.overwrite` says to replace it.
pub fn train(config: &TrainConfig, control: &TrainControl) -> Result<TrainReport, TrainError> {
    config.check()?;
    // A backend that cannot start on this machine is said before a run folder is made.
    let device = config.backend.open()?;
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
    write_recorded(&config.out, "config.json", |path| {
        write_atomically(path, &config_json)
    })?;
    run(config, control, None, device)
}

/// Continues the run in `out` from its last checkpoint, with the configuration it was started
/// with; on a CPU backend it ends with the same weights as a run that was never stopped.
pub fn resume(out: &Path, control: &TrainControl) -> Result<TrainReport, TrainError> {
    // A folder with nothing to resume says so before a lock file is written into it; the
    // checkpoint is read again under the lock, where no other process can move it on.
    Checkpoint::read(out)?;
    let _lock = lock(out)?;
    let checkpoint = Checkpoint::read(out)?;
    manifest::verify(&out.join("config.json"))?;
    let mut config = crate::config::load(out)?;
    config.out = out.to_path_buf();
    let device = config.backend.open()?;
    run(&config, control, Some(checkpoint), device)
}

/// What every epoch of a run shares.
struct EpochLoop<'a> {
    config: &'a TrainConfig,
    control: &'a TrainControl,
    /// The autodiff device the model trains on.
    device: &'a Device,
    loss_fn: &'a CrossEntropyLoss,
    schedule: &'a ScheduleConfig,
    teachers: Option<&'a Teachers>,
    /// Optimiser steps in one epoch.
    steps: usize,
}

impl EpochLoop<'_> {
    /// Trains the rest of the epoch `state` stands in (a resumed run starts mid-epoch), as
    /// torchvision's reference script's `train_one_epoch`: the model after it, and the epoch's
    /// training row; `None` when the run was stopped (Ctrl-C or `stop_after_steps`), after
    /// writing a checkpoint.
    fn train_one_epoch(
        &self,
        mut model: ZooModel,
        optim: &mut ModuleOptimizer,
        state: &mut Checkpoint,
        average: &mut Option<WeightAverage>,
        train: &DataLoader,
        steps_taken: &mut usize,
    ) -> Result<(ZooModel, Option<EpochMetrics>), TrainError> {
        let Self {
            config,
            control,
            device: autodiff,
            loss_fn,
            schedule,
            teachers,
            steps,
        } = *self;
        let precision = config.precision;
        let epoch = state.epoch + 1;
        let bar = progress_bar(config, steps, epoch);
        bar.set_position(state.step as u64);
        let started = Instant::now();
        let mut tally = state.tally;
        // With --accumulate N, N batches make one optimiser step, and the schedule counts those.
        let accumulate = config.accumulate.max(1);
        let optimiser_steps = steps.div_ceil(accumulate);
        let mut accumulated = GradientsAccumulator::<ZooModel>::new();
        let mut overflowed = false;
        // The rate of the epoch's last step taken so far (what the epoch's row reports).
        let mut lr = schedule.lr(
            &state.schedule,
            state.epoch,
            state.step.saturating_sub(1) / accumulate,
            optimiser_steps,
        );
        for batch in train.epoch_from(state.epoch, state.step) {
            let step = state.step;
            lr = schedule.lr(
                &state.schedule,
                state.epoch,
                step / accumulate,
                optimiser_steps,
            );
            autodiff.seed(step_seed(config.seed, state.epoch, step));
            let batch = batch?.to_device(autodiff);
            let n = batch.labels.dims()[0];
            // Teachers see the batch in f32, whatever the student's precision.
            let teacher_images = teachers.map(|_| batch.images.clone());
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
            let mix = batch.mix.as_ref();
            let mut loss = batch_loss(loss_fn, logits.clone(), &batch.labels, mix);
            if let (Some(teachers), Some(images)) = (teachers, teacher_images) {
                loss = teachers.loss(loss, logits.clone(), images);
            }
            // GoogLeNet's auxiliary classifiers count with weight 0.3 (Szegedy et al. §5).
            for aux in output.aux_logits {
                let aux = precision.logits(aux);
                loss = loss + batch_loss(loss_fn, aux, &batch.labels, mix).mul_scalar(0.3);
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
            let (c1, c5) = correct(&logits, &dominant_labels(&batch.labels, mix), 5);
            // Each of N accumulated batches counts 1/N, so N batches of B step as one of N·B.
            let loss = if accumulate > 1 {
                loss.div_scalar(accumulate as f32)
            } else {
                loss
            };
            let mut stepped = false;
            match gradients(loss, &model, state.loss_scale.as_mut()) {
                Some(grads) if accumulate == 1 => {
                    model = optim.step(lr, model, grads);
                    stepped = true;
                }
                Some(grads) => accumulated.accumulate(&model, grads),
                None => overflowed = true,
            }
            tally.seen += n;
            tally.top1 += c1;
            tally.top5 += c5;
            tally.loss_sum += f64::from(loss_value) * n as f64;
            state.step += 1;
            *steps_taken += 1;
            let boundary = state.step.is_multiple_of(accumulate) || state.step == steps;
            if boundary {
                // fp16: a group with a batch whose gradients overflowed is skipped whole.
                let skip = std::mem::take(&mut overflowed);
                if accumulate > 1 {
                    let grads = accumulated.grads();
                    if !skip {
                        model = optim.step(lr, model, grads);
                        stepped = true;
                    }
                }
            }
            if let Some(average) = average.as_mut().filter(|_| stepped) {
                // torchvision's reference restarts the average through the warm-up.
                if state.epoch < config.warmup_epochs {
                    average.reset(&model);
                } else {
                    average.update(&model);
                }
            }
            let elapsed = tally.seconds + started.elapsed().as_secs_f64();
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                tally.loss_sum / tally.seen as f64,
                100.0 * tally.top1 as f64 / tally.seen as f64,
                tally.seen as f64 / elapsed
            ));
            let interrupted = control.interrupt.load(Ordering::Relaxed);
            let stop = control.stop_after_steps.is_some_and(|n| *steps_taken >= n);
            // A checkpoint holds no half-accumulated gradients: stops wait for the group's end.
            if boundary && (interrupted || stop) {
                bar.abandon();
                state.tally = EpochTally {
                    seconds: elapsed,
                    ..tally
                };
                state.save(&config.out, &model, optim, average.as_ref())?;
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
                return Ok((model, None));
            }
        }
        bar.finish_and_clear();
        let seconds = tally.seconds + started.elapsed().as_secs_f64();
        let seen_f = tally.seen.max(1) as f64;
        let row = EpochMetrics {
            epoch,
            split: "train".into(),
            loss: tally.loss_sum / seen_f,
            top1: tally.top1 as f64 / seen_f,
            top5: tally.top5 as f64 / seen_f,
            lr,
            images_per_second: seen_f / seconds,
            seconds,
        };
        Ok((model, Some(row)))
    }
}

fn run(
    config: &TrainConfig,
    control: &TrainControl,
    resumed: Option<Checkpoint>,
    device: Device,
) -> Result<TrainReport, TrainError> {
    let setup = setup(config)?;
    // Before the seed: loading teachers must not move the student's draws (Burn initialises
    // parameters lazily, at their first use), so --distillation-alpha 0 is a run without them.
    let teachers = Teachers::load(config, &setup.options, setup.classes, setup.preset, &device)?;
    device.seed(config.seed);
    let autodiff = device.clone().autodiff();
    let model = setup.build_model(&autodiff);
    let Setup {
        train,
        valid,
        test,
        classes,
        options,
        eval_transform: (eval_transform, _),
        preset,
        size,
        validation,
        training_data,
        ..
    } = setup;
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
        write_recorded(&config.out, "config.json", |path| {
            write_atomically(path, &json)
        })?;
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
            if let Some(started_on) = checkpoint
                .training_data
                .as_ref()
                .filter(|&started_on| *started_on != training_data)
            {
                return Err(TrainError::Config(format!(
                    "{}: the training data changed since the run started ({started_on} then, \
                     {training_data} now: a file was added, removed or moved), so the run \
                     cannot continue on the same images; restore them, or start a new run",
                    config.dataset
                )));
            }
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
                training_data: Some(training_data),
                ema: None,
            },
        ),
    };
    let mut smoothing = CrossEntropyLossConfig::new();
    if config.label_smoothing > 0.0 {
        smoothing = smoothing.with_smoothing(Some(config.label_smoothing as f32));
    }
    let loss_fn = smoothing.init(&autodiff);
    let (frozen_model, trainable, total) = freeze(model, &config.freeze, &autodiff)?;
    model = frozen_model;
    let mut average = if config.ema_decay > 0.0 {
        Some(state.restore_average(&config.out, &model, config.ema_decay)?)
    } else {
        None
    };
    let train = if config.cache_features {
        let dir = config
            .out
            .parent()
            .unwrap_or(Path::new("."))
            .join("feature-cache");
        let preprocessing = format!("{preset:?} eval at {size}");
        let started = Instant::now();
        let (loader, stem, reused) = cached_features(
            config,
            &model,
            &train,
            eval_transform,
            &preprocessing,
            &dir,
            &device,
        )?;
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
             {} in {}{}; writing {}",
            config.model,
            classes,
            config.freeze,
            config.dataset,
            preset.name(),
            config.backend,
            config.precision,
            match config.teachers.len() {
                0 => String::new(),
                n => format!(
                    ", distilling {n} teacher{} (α {}, τ {})",
                    if n == 1 { "" } else { "s" },
                    config.distillation_alpha,
                    config.distillation_temperature
                ),
            },
            config.out.display()
        );
    }
    let steps = train.batches_per_epoch();
    let mut steps_taken = 0usize;
    let epoch_loop = EpochLoop {
        config,
        control,
        device: &autodiff,
        loss_fn: &loss_fn,
        schedule: &schedule,
        teachers: teachers.as_ref(),
        steps,
    };
    while state.epoch < config.epochs {
        let epoch = state.epoch + 1;
        let (trained, train_row) = epoch_loop.train_one_epoch(
            model,
            &mut optim,
            &mut state,
            &mut average,
            &train,
            &mut steps_taken,
        )?;
        model = trained;
        let Some(train_row) = train_row else {
            return Ok(TrainReport {
                metrics: state.metrics,
                test: None,
                out: config.out.clone(),
                loss_scale: state.loss_scale,
            });
        };
        let (lr, seconds) = (train_row.lr, train_row.seconds);
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
        // The average, evaluated and saved beside the raw weights.
        let mut average_rows = Vec::new();
        if let Some(average) = &average {
            if let Some(loader) = &valid {
                let row = evaluate(&average.model, loader, &device, epoch, lr, "valid-ema")?;
                line.push_str(&format!(" | ema valid acc {:.2}%", 100.0 * row.top1));
                average_rows.push(row);
            }
            write_recorded(&config.out, "ema.bpk", |path| {
                save_module(average.model.clone(), path)
            })?;
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
        write_recorded(&config.out, "last.bpk", |path| {
            save_module(inference.clone(), path)
        })?;
        let validation_top1 = valid_row.as_ref().map(|row| row.top1);
        if is_new_best(state.best, validation_top1) {
            state.best = Some(validation_top1.unwrap_or(train_row.top1));
            if validation_top1.is_some() {
                write_recorded(&config.out, "best.bpk", |path| save_module(inference, path))?;
            } else {
                // The same weights as last.bpk: copied, not read off the device a second time.
                let last = config.out.join("last.bpk");
                write_recorded(&config.out, "best.bpk", |path| copy_atomically(&last, path))?;
            }
        }
        let test_row = if config.test_each_epoch {
            let row = evaluate(&model.valid(), &test, &device, epoch, lr, "test")?;
            report(config, &row);
            if config.progress != Progress::JsonLines {
                eprintln!("  test loss {:.4} acc {:.2}%", row.loss, 100.0 * row.top1);
            }
            if let Some(average) = &average {
                let row = evaluate(&average.model, &test, &device, epoch, lr, "test-ema")?;
                if config.progress != Progress::JsonLines {
                    eprintln!(
                        "  ema test loss {:.4} acc {:.2}%",
                        row.loss,
                        100.0 * row.top1
                    );
                }
                average_rows.push(row);
            }
            Some(row)
        } else {
            None
        };
        for row in &average_rows {
            report(config, row);
        }
        state.metrics.push(train_row);
        state.metrics.extend(valid_row);
        state.metrics.extend(test_row);
        state.metrics.extend(average_rows);
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
        state.save(&config.out, &model, &optim, average.as_ref())?;
    }
    let last_test = state
        .metrics
        .iter()
        .rev()
        .find(|row| row.split == "test")
        .filter(|row| row.epoch == config.epochs)
        .cloned();
    let evaluated_each_epoch = last_test.is_some();
    let test_row = match last_test {
        Some(row) => row,
        None => {
            let optimiser_steps = steps.div_ceil(config.accumulate.max(1));
            let lr = schedule.lr(&state.schedule, config.epochs, 0, optimiser_steps);
            let row = evaluate(&model.valid(), &test, &device, config.epochs, lr, "test")?;
            report(config, &row);
            row
        }
    };
    if config.progress != Progress::JsonLines {
        let best = if valid.is_some() {
            format!(
                ", the best validation epoch's in {}",
                config.out.join("best.bpk").display()
            )
        } else {
            String::new()
        };
        eprintln!(
            "test: loss {:.4}, top-1 {:.2}%, top-5 {:.2}% — curves in {}, these weights in {}{best}",
            test_row.loss,
            100.0 * test_row.top1,
            100.0 * test_row.top5,
            config.out.join("curves.png").display(),
            config.out.join("last.bpk").display(),
        );
    }
    let mut metrics = state.metrics;
    if !evaluated_each_epoch {
        metrics.push(test_row.clone());
        if let Some(average) = &average {
            let lr = test_row.lr;
            let row = evaluate(
                &average.model,
                &test,
                &device,
                config.epochs,
                lr,
                "test-ema",
            )?;
            report(config, &row);
            if config.progress != Progress::JsonLines {
                eprintln!(
                    "test of the weight average: loss {:.4}, top-1 {:.2}%, top-5 {:.2}% \
                     (weights in {})",
                    row.loss,
                    100.0 * row.top1,
                    100.0 * row.top5,
                    config.out.join("ema.bpk").display()
                );
            }
            metrics.push(row);
        }
    }
    write_recorded(&config.out, "metrics.csv", |path| {
        write_atomically(path, csv(&metrics).as_bytes())
    })?;
    std::io::stderr().flush().ok();
    Ok(TrainReport {
        metrics,
        test: Some(test_row),
        out: config.out.clone(),
        loss_scale: state.loss_scale,
    })
}

/// Whether this epoch's weights become `best.bpk`: the best validation top-1 so far. Without a
/// held-back split nothing chooses between epochs (training accuracy under augmentation is no
/// model selection), so the last epoch's weights are kept, as He et al. report the network at
/// the end of its schedule.
fn is_new_best(best: Option<f64>, validation_top1: Option<f64>) -> bool {
    validation_top1.is_none_or(|top1| best.is_none_or(|best| top1 > best))
}

#[cfg(test)]
mod tests {
    use super::is_new_best;

    #[test]
    fn best_weights_follow_validation_or_else_the_last_epoch() {
        assert!(is_new_best(None, Some(0.5)));
        assert!(is_new_best(Some(0.5), Some(0.6)));
        assert!(!is_new_best(Some(0.6), Some(0.5)));
        assert!(!is_new_best(Some(0.6), Some(0.6)));
        // No validation split: every epoch replaces the last, whatever its training accuracy.
        assert!(is_new_best(None, None));
        assert!(is_new_best(Some(0.99), None));
    }
}
