//! Open-source weights (the chapter: start from someone else's trained network): torchvision
//! state dicts (`.pth`/`.pt`, read by Burn's pickle-free reader, never executed) and
//! `.safetensors` load into zoo models whose field names and `nn.Sequential` indices are
//! torchvision's; any zoo model saves as safetensors under those names, which PyTorch's
//! `load_state_dict(strict=True)` takes back.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

use crate::registry::{MODELS, ModelOptions, ZooModel};

/// Why weights could not be read into a model or written.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsError {
    /// The file could not be read or written, or is not a state dict.
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The file's tensors do not fit the model.
    Mismatch(Box<Mismatch>),
}

/// What does not fit when weights meet a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The file.
    pub path: PathBuf,
    /// The registry name of the model.
    pub model: String,
    /// Tensors the model needs that the file lacks (torchvision names).
    pub missing: Vec<String>,
    /// Tensors in the file the model has no place for.
    pub unexpected: Vec<String>,
    /// `name: file [..] vs model [..]` for each tensor of the wrong shape.
    pub wrong_shapes: Vec<String>,
    /// Registry entries the file does fit.
    pub fits: Vec<String>,
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, problem } => write!(f, "{}: {problem}", path.display()),
            Self::Mismatch(mismatch) => {
                let Mismatch {
                    path,
                    model,
                    missing,
                    unexpected,
                    wrong_shapes,
                    fits,
                } = mismatch.as_ref();
                write!(f, "{}: the weights do not fit {model}", path.display())?;
                let list = |f: &mut fmt::Formatter<'_>, what: &str, names: &[String]| {
                    if names.is_empty() {
                        return Ok(());
                    }
                    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
                    let more = names.len().saturating_sub(shown.len());
                    write!(f, "\n  {what} ({}): {}", names.len(), shown.join(", "))?;
                    if more > 0 {
                        write!(f, ", … {more} more")?;
                    }
                    Ok(())
                };
                list(f, "missing", missing)?;
                list(f, "unexpected", unexpected)?;
                list(f, "wrong shape", wrong_shapes)?;
                if !fits.is_empty() {
                    write!(f, "\n  hint: the file fits {}", fits.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for WeightsError {}

/// BatchNorm's step counter: PyTorch keeps it in state dicts, it plays no part in eval.
fn is_bookkeeping(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// GoogLeNet's auxiliary classifiers, which a file may carry for a model built without them
/// (torchvision's own `googlenet(weights=…, aux_logits=False)` drops them the same way).
fn is_optional_head(name: &str) -> bool {
    name.starts_with("aux1.") || name.starts_with("aux2.")
}

/// Where torchvision names a layer by its position in an `nn.Sequential` and the zoo by what it
/// is: (torchvision pattern, zoo name, zoo pattern, torchvision name). A residual block's
/// projection shortcut is `downsample.0`/`.1` there and `shortcut.conv`/`.bn` here; an Inception
/// block's pool branch projects at `branch4.1` there and `branch4.proj` here.
const RENAMES: [(&str, &str, &str, &str); 3] = [
    (
        r"(^|\.)downsample\.0\.",
        "${1}shortcut.conv.",
        r"(^|\.)shortcut\.conv\.",
        "${1}downsample.0.",
    ),
    (
        r"(^|\.)downsample\.1\.",
        "${1}shortcut.bn.",
        r"(^|\.)shortcut\.bn\.",
        "${1}downsample.1.",
    ),
    (
        r"(^|\.)branch4\.1\.",
        "${1}branch4.proj.",
        r"(^|\.)branch4\.proj\.",
        "${1}branch4.1.",
    ),
];

/// Reads `path` into `model` without failing on partial matches; the caller judges the result.
fn apply<M: Module>(model: &mut M, path: &Path) -> Result<ApplyResult, WeightsError> {
    let file_error = |problem: String| WeightsError::File {
        path: path.to_path_buf(),
        problem,
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "pth" | "pt" => {
            crate::pickle_globals::check(path).map_err(file_error)?;
            // Torchvision's `features.N` keep their gaps: the zoo's layer lists hold the ReLUs
            // and pools too, so the indices already agree.
            let mut store = PytorchStore::from_file(path)
                .validate(false)
                .allow_partial(true)
                .map_indices_contiguous(false);
            for (from, to, _, _) in RENAMES {
                store = store.with_key_remapping(from, to);
            }
            model.load_from(&mut store).map_err(|e| {
                let problem = e.to_string();
                file_error(if problem.contains("zip") {
                    // Burn 0.22.1's reader rejects some archives that torch and Python's zipfile
                    // read (e.g. one 10,367-byte state dict in this project's fixtures).
                    format!(
                        "{problem} (if torch.load reads the file, convert it: \
                         safetensors.torch.save_file(torch.load(path), 'weights.safetensors'))"
                    )
                } else {
                    problem
                })
            })
        }
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .validate(false)
                .allow_partial(true)
                .skip_enum_variants(true)
                .map_indices_contiguous(false);
            for (from, to, _, _) in RENAMES {
                store = store.with_key_remapping(from, to);
            }
            model
                .load_from(&mut store)
                .map_err(|e| file_error(e.to_string()))
        }
        other => Err(file_error(format!(
            "unknown weights format '.{other}' (expected .pth, .pt or .safetensors)"
        ))),
    }
}

/// What does not fit in a load of `path` into `model` (`fits` left empty).
fn mismatch(result: &ApplyResult, path: &Path, model: &str) -> Mismatch {
    Mismatch {
        path: path.to_path_buf(),
        model: model.to_string(),
        missing: result
            .missing
            .iter()
            .map(|(path, _)| path.clone())
            .filter(|name| !is_bookkeeping(name))
            .collect(),
        unexpected: result
            .unused
            .iter()
            .filter(|name| !is_bookkeeping(name) && !is_optional_head(name))
            .cloned()
            .collect(),
        wrong_shapes: result
            .errors
            .iter()
            .map(|error| match error {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!("{path}: file {found:?} vs model {expected:?}"),
                other => other.to_string(),
            })
            .collect(),
        fits: Vec::new(),
    }
}

/// Reads `path` into `module` (named `model` in errors); every tensor must fit.
fn fit<M: Module>(module: M, path: &Path, model: &str) -> Result<M, WeightsError> {
    let mut module = module;
    let result = apply(&mut module, path)?;
    let mismatch = mismatch(&result, path, model);
    if mismatch.missing.is_empty()
        && mismatch.unexpected.is_empty()
        && mismatch.wrong_shapes.is_empty()
    {
        Ok(module)
    } else {
        Err(WeightsError::Mismatch(Box::new(mismatch)))
    }
}

/// Loads a torchvision state dict (`.pth`, `.pt`) or `.safetensors` file into `model`, the
/// registry entry `name`. Every tensor must fit: missing, unexpected and misshapen tensors are
/// listed by name, with the registry entries of the same family the file does fit.
pub fn load_weights(
    model: ZooModel,
    name: &str,
    path: &Path,
    device: &Device,
) -> Result<ZooModel, WeightsError> {
    fit(model, path, name).map_err(|error| match error {
        WeightsError::Mismatch(mut mismatch) => {
            mismatch.fits = fitting_entries(name, path, device);
            WeightsError::Mismatch(mismatch)
        }
        other => other,
    })
}

/// Loads a torchvision-named state dict into any module of the zoo (a block, a layer list, a
/// model), e.g. to check one building block against PyTorch. Every tensor must fit.
pub fn load_module_weights<M: Module>(module: M, path: &Path) -> Result<M, WeightsError> {
    let type_name = std::any::type_name::<M>();
    fit(
        module,
        path,
        type_name.rsplit("::").next().unwrap_or(type_name),
    )
}

/// The letters before the first digit: `vgg16_bn` → `vgg`, `resnet50` → `resnet`.
fn family(name: &str) -> &str {
    name.split(|c: char| c.is_ascii_digit())
        .next()
        .unwrap_or(name)
}

/// Registry entries of `name`'s family (with ImageNet's 1,000 classes) that `path` fits exactly.
fn fitting_entries(name: &str, path: &Path, device: &Device) -> Vec<String> {
    MODELS
        .iter()
        .filter(|info| info.name != name && family(info.name) == family(name))
        .filter(|info| fit(info.build(&ModelOptions::new(), device), path, info.name).is_ok())
        .map(|info| info.name.to_string())
        .collect()
}

/// Saves `model` as safetensors under torchvision's names (`layer1.0.bn1.weight`,
/// `features.0.weight`, …), with BatchNorm's running statistics, so that PyTorch loads it back;
/// written to a temporary file and renamed, so an existing file is never left half-written.
pub fn save_safetensors<M: Module>(model: &M, path: &Path) -> Result<(), WeightsError> {
    let file_error = |problem: String| WeightsError::File {
        path: path.to_path_buf(),
        problem,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut store = SafetensorsStore::from_file(&temporary)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .overwrite(true);
    for (_, _, from, to) in RENAMES {
        store = store.with_key_remapping(from, to);
    }
    model
        .save_into(&mut store)
        .map_err(|e| file_error(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| file_error(e.to_string()))
}
