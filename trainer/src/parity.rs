//! Logit parity with torchvision: a state dict and the logits torchvision computed from it
//! (written by `trainer/python/parity.py`), loaded into the zoo model of the same name and run
//! on the same inputs in eval mode.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use model_zoo::weights::load_weights;
use model_zoo::{Classifier, ModelOptions};
use serde::{Deserialize, Serialize};

use crate::BackendKind;
use crate::atomic_file::read_f32s;
use crate::error::TrainError;

/// One array `parity.py` wrote.
#[derive(Debug, Clone, Deserialize)]
struct ArrayFile {
    file: String,
    shape: Vec<usize>,
}

/// `<model>.json`.
#[derive(Debug, Clone, Deserialize)]
struct Record {
    torch: String,
    torchvision: String,
    inputs: Vec<ArrayFile>,
    logits: Vec<ArrayFile>,
}

/// How closely one model matched torchvision.
#[derive(Debug, Clone, Serialize)]
pub struct ParityRow {
    /// Registry (and torchvision) name.
    pub model: String,
    /// Backend of the zoo model.
    pub backend: BackendKind,
    /// Input shapes compared.
    pub inputs: Vec<Vec<usize>>,
    /// Largest |zoo − torchvision| over every logit.
    pub max_abs_error: f64,
    /// `max_abs_error` over the largest |torchvision logit| of the same input (the worst input).
    pub max_rel_error: f64,
    /// torch and torchvision versions that wrote the reference.
    pub reference: String,
    /// The zoo model saved as `<model>.safetensors` in the folder, for the way back to PyTorch.
    pub saved: PathBuf,
}

fn read_f32(path: &Path, shape: &[usize]) -> Result<Vec<f32>, TrainError> {
    read_f32s(path, shape.iter().product()).map_err(TrainError::Config)
}

/// Compares the zoo's `model` on `backend` with the reference `parity.py` wrote into `dir`.
pub fn compare(dir: &Path, model: &str, backend: BackendKind) -> Result<ParityRow, TrainError> {
    let json_path = dir.join(format!("{model}.json"));
    let text = std::fs::read_to_string(&json_path)
        .map_err(|e| TrainError::Config(format!("{}: {e}", json_path.display())))?;
    let record: Record = serde_json::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: {e}", json_path.display())))?;
    let device = backend.open()?;
    let info = model_zoo::info(model).map_err(TrainError::Model)?;
    let weights: PathBuf = dir.join(format!("{model}.pth"));
    let zoo = load_weights(
        info.build(&ModelOptions::new(), &device),
        model,
        &weights,
        &device,
    )
    .map_err(|e| TrainError::Config(e.to_string()))?;
    let (mut max_abs_error, mut max_rel_error) = (0f64, 0f64);
    for (input, logits) in record.inputs.iter().zip(&record.logits) {
        let [n, c, h, w] = input.shape[..] else {
            return Err(TrainError::Config(format!(
                "{}: input shape {:?} is not NCHW",
                json_path.display(),
                input.shape
            )));
        };
        let x = read_f32(&dir.join(&input.file), &input.shape)?;
        let expected = read_f32(&dir.join(&logits.file), &logits.shape)?;
        let x = Tensor::<4>::from_data(TensorData::new(x, [n, c, h, w]), &device);
        let ours: Vec<f32> = zoo
            .forward(x)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| TrainError::Config(format!("{model}: {e:?}")))?;
        if ours.len() != expected.len() {
            return Err(TrainError::Config(format!(
                "{model}: {} logits against torchvision's {}",
                ours.len(),
                expected.len()
            )));
        }
        let abs = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, f64::max);
        let scale = expected
            .iter()
            .map(|b| f64::from(b.abs()))
            .fold(0.0, f64::max);
        max_abs_error = max_abs_error.max(abs);
        max_rel_error = max_rel_error.max(abs / scale.max(f64::MIN_POSITIVE));
    }
    let saved = dir.join(format!("{model}.safetensors"));
    model_zoo::weights::save_safetensors(&zoo, &saved)
        .map_err(|e| TrainError::Config(e.to_string()))?;
    Ok(ParityRow {
        saved,
        model: model.to_string(),
        backend,
        inputs: record.inputs.iter().map(|i| i.shape.clone()).collect(),
        max_abs_error,
        max_rel_error,
        reference: format!("torch {}, torchvision {}", record.torch, record.torchvision),
    })
}

/// Every zoo model torchvision also has, under the same name.
pub const IMPORTABLE: [&str; 15] = [
    "alexnet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "googlenet",
];
