//! `checkpoint.json` and the files it names: where a run stands, so that it can be resumed.

use std::path::Path;

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::tensor::Bytes;
use model_zoo::ZooModel;
use serde::{Deserialize, Serialize};

use crate::atomic_file::{WriteError, save_module, write_atomically, writing};
use crate::ema::WeightAverage;
use crate::error::TrainError;
use crate::manifest::{self, FileDigest};
use crate::metrics::{EpochMetrics, EpochTally};
use crate::precision::LossScale;
use crate::schedule::ScheduleState;

/// `checkpoint.json`: where a run stands, naming the weight and optimiser files written with it.
/// It is renamed into place after those files, so it never names a half-written file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epoch in progress (0-based).
    pub(crate) epoch: usize,
    /// Steps of that epoch already taken.
    pub(crate) step: usize,
    /// Model weights (burnpack, with parameter ids), relative to the run folder.
    pub(crate) model: String,
    /// Optimiser state (burnpack), relative to the run folder.
    pub(crate) optimizer: String,
    /// Learning-rate schedule state.
    pub(crate) schedule: ScheduleState,
    /// The accuracy of the weights `best.bpk` holds: the best validation top-1 so far, or without
    /// a validation split the last epoch's training top-1.
    pub(crate) best: Option<f64>,
    /// Rows of `metrics.csv` so far.
    pub(crate) metrics: Vec<EpochMetrics>,
    /// Running sums of the epoch in progress.
    pub(crate) tally: EpochTally,
    /// fp16: the dynamic loss scale.
    #[serde(default)]
    pub(crate) loss_scale: Option<LossScale>,
    /// The digests of `model` and `optimizer`, checked before they are loaded (absent in
    /// checkpoints written before they were recorded).
    #[serde(default)]
    pub(crate) digests: Option<[FileDigest; 2]>,
    /// The training set the run started on (`setup::training_data`; absent in checkpoints
    /// written before it was recorded).
    #[serde(default)]
    pub(crate) training_data: Option<String>,
    /// The weight average (`--ema-decay`), relative to the run folder, and its digest.
    #[serde(default)]
    pub(crate) ema: Option<(String, FileDigest)>,
}

const CHECKPOINT: &str = "checkpoint.json";

impl Checkpoint {
    pub(crate) fn save(
        &mut self,
        out: &Path,
        model: &ZooModel,
        optim: &ModuleOptimizer,
        average: Option<&WeightAverage>,
    ) -> Result<(), TrainError> {
        let _writing = writing();
        let stem = format!("checkpoint-e{}-s{}", self.epoch, self.step);
        self.model = format!("{stem}.bpk");
        self.optimizer = format!("{stem}.optim.bpk");
        save_module(model.clone(), &out.join(&self.model))?;
        self.ema = match average {
            Some(average) => {
                let name = format!("{stem}.ema.bpk");
                save_module(average.model.clone(), &out.join(&name))?;
                let digest = manifest::digest(&out.join(&name))?;
                Some((name, digest))
            }
            None => None,
        };
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
        let previous = Self::read(out).ok();
        let json = serde_json::to_vec_pretty(&*self).expect("the checkpoint serialises");
        write_atomically(&out.join(CHECKPOINT), &json)?;
        let mut removed = Vec::new();
        if let Some(previous) = previous.filter(|p| p.model != self.model) {
            removed = previous.files();
            for name in &removed {
                let _ = std::fs::remove_file(out.join(name));
            }
        }
        let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
        let mut written = self.files();
        written.push(CHECKPOINT.to_string());
        let written: Vec<&str> = written.iter().map(String::as_str).collect();
        manifest::record(out, &written, &removed)
    }

    /// The files this checkpoint names.
    fn files(&self) -> Vec<String> {
        let mut files = vec![self.model.clone(), self.optimizer.clone()];
        files.extend(self.ema.as_ref().map(|(name, _)| name.clone()));
        files
    }

    /// Reads the run's `checkpoint.json`; the files it names must lie in the run folder itself.
    pub fn read(out: &Path) -> Result<Self, TrainError> {
        let path = out.join(CHECKPOINT);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            TrainError::Config(format!(
                "{}: nothing to resume ({e}); a run writes it after its first epoch or when stopped",
                path.display()
            ))
        })?;
        let checkpoint: Self = serde_json::from_str(&text).map_err(|e| {
            TrainError::Config(format!("{}: not a checkpoint: {e}", path.display()))
        })?;
        // A name such as `../x` would make resuming read, and the next checkpoint remove, a file
        // outside the run.
        for name in &checkpoint.files() {
            if !manifest::is_plain_file_name(name) {
                return Err(TrainError::Config(format!(
                    "{}: names the file {name:?}, which is not a file in the run folder",
                    path.display()
                )));
            }
        }
        Ok(checkpoint)
    }

    /// The saved model, then the optimiser `build` makes for it (its parameter groups name the
    /// loaded parameters) with the saved state.
    pub(crate) fn restore(
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

    /// The saved weight average with `decay`, or one starting at `model` where the checkpoint
    /// holds none.
    pub(crate) fn restore_average(
        &self,
        out: &Path,
        model: &ZooModel,
        decay: f64,
    ) -> Result<WeightAverage, TrainError> {
        let mut average = WeightAverage::new(model, decay);
        if let Some((name, digest)) = &self.ema {
            let path = out.join(name);
            manifest::verify_against(&path, digest, CHECKPOINT)?;
            average.model = average.model.try_load_file(&path).map_err(|e| {
                TrainError::Config(format!("{}: cannot load: {e:?}", path.display()))
            })?;
        }
        Ok(average)
    }
}
