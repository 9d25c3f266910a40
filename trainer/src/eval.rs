//! `cargo xtask eval <run>`: a trained run's accuracy on the test (or validation) split, per
//! class, with the confusion matrix.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use data::datasets::image_folder::decode_file;
use data::transforms::{CenterCrop, Normalize, Resize};
use data::{Compose, DataLoader, Preset, Rng, Transform};
use model_zoo::{Classifier, Preprocessing, ZooModel};
use serde::Serialize;

use crate::atomic_file::{WriteError, write_atomically};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::setup::{Setup, setup};

/// Which split to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSplit {
    /// The dataset's test split.
    Test,
    /// The training images the run held back.
    Valid,
}

/// A run's accuracy on one split.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The weights evaluated.
    pub weights: PathBuf,
    /// The preset whose evaluation transform the images went through (`--augment`'s names).
    pub preset: &'static str,
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy.
    pub top5: f64,
    /// Class names.
    pub classes: Vec<String>,
    /// Top-1 accuracy of each class.
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// A trained run rebuilt from its folder: its evaluation data and the model with its weights.
pub(crate) struct LoadedRun {
    pub(crate) config: TrainConfig,
    pub(crate) weights: PathBuf,
    pub(crate) device: Device,
    pub(crate) model: ZooModel,
    pub(crate) test: DataLoader,
    pub(crate) valid: Option<DataLoader>,
    pub(crate) eval_transform: (Compose, usize),
    pub(crate) preset: Preset,
    pub(crate) size: usize,
}

impl LoadedRun {
    fn new(
        config: TrainConfig,
        weights: PathBuf,
        device: Device,
        model: ZooModel,
        setup: Setup,
    ) -> Self {
        let Setup {
            test,
            valid,
            eval_transform,
            preset,
            size,
            ..
        } = setup;
        Self {
            config,
            weights,
            device,
            model,
            test,
            valid,
            eval_transform,
            preset,
            size,
        }
    }

    /// The loader of `split`, or an error naming `source` (the run or the weights) when no
    /// images were held back.
    pub(crate) fn loader(
        &self,
        split: EvalSplit,
        source: &Path,
    ) -> Result<&DataLoader, TrainError> {
        match split {
            EvalSplit::Test => Ok(&self.test),
            EvalSplit::Valid => self.valid.as_ref().ok_or_else(|| {
                TrainError::Config(format!(
                    "{}: no images were held back for validation (a run trained with \
                     --validation 0, or weights evaluated without their run)",
                    source.display()
                ))
            }),
        }
    }
}

pub(crate) fn load_run(run: &Path, weights: Option<&Path>) -> Result<LoadedRun, TrainError> {
    crate::manifest::verify(&run.join("config.json"))?;
    let config = crate::config::load(run)?;
    let weights = weights.map_or_else(|| run.join("best.bpk"), Path::to_path_buf);
    crate::manifest::verify(&weights)?;
    let device = config.backend.open()?;
    let setup = setup(&config)?;
    let model = setup
        .build_model(&device)
        .try_load_file(&weights)
        .map_err(|e| {
            TrainError::Config(format!(
                "{}: cannot load weights for {}: {e:?}",
                weights.display(),
                config.model
            ))
        })?;
    Ok(LoadedRun::new(config, weights, device, model, setup))
}

/// Evaluates the weights `weights` (default: the run's `best.bpk`) of the run in `run`.
pub fn evaluate_run(
    run: &Path,
    weights: Option<&Path>,
    split: EvalSplit,
) -> Result<EvalReport, TrainError> {
    let loaded = load_run(run, weights)?;
    let loader = loaded.loader(split, run)?;
    score(
        &loaded.weights,
        &loaded.device,
        &loaded.model,
        loader,
        loaded.preset,
    )
}

/// Weights of a registry model to evaluate without a run folder (`eval --model`).
#[derive(Debug, Clone)]
pub struct WeightsSpec {
    /// The registry model.
    pub model: String,
    /// A weights file, or published or shipped weights (`zoo:…`, `tv:…`).
    pub weights: PathBuf,
    /// The dataset, as `--dataset` names it; its test split is evaluated.
    pub dataset: String,
    /// Where MNIST's or CIFAR-10's files are.
    pub data_dir: PathBuf,
    /// The preset whose evaluation transform the weights expect, as `--augment` names it
    /// (default: a shipped file's recipe's, else the dataset's own, as `train` would choose).
    pub augment: Option<String>,
    /// The backend.
    pub backend: crate::BackendKind,
}

impl WeightsSpec {
    /// `weights` of `model` on `dataset`'s test split, with the default preset, on flex.
    pub fn new(model: &str, weights: &Path, dataset: &str, data_dir: &Path) -> Self {
        Self {
            model: model.to_string(),
            weights: weights.to_path_buf(),
            dataset: dataset.to_string(),
            data_dir: data_dir.to_path_buf(),
            augment: None,
            backend: crate::BackendKind::Flex,
        }
    }
}

/// The model of `spec` with its weights and the test split of its dataset at the size a run
/// would choose; the weights' own head, which must predict the dataset's classes.
pub(crate) fn load_weights(spec: &WeightsSpec) -> Result<LoadedRun, TrainError> {
    let WeightsSpec {
        model,
        weights,
        dataset,
        ..
    } = spec;
    let name = weights.to_string_lossy();
    let augment = match &spec.augment {
        Some(preset) => Some(preset.clone()),
        None if name.starts_with("zoo:") => Some(
            model_zoo::pretrained::find_shipped(&name)
                .map_err(TrainError::Config)?
                .augment
                .to_string(),
        ),
        None => None,
    };
    let config = TrainConfig {
        dataset: dataset.clone(),
        data_dir: spec.data_dir.clone(),
        backend: spec.backend,
        validation: Some(0),
        augment,
        ..TrainConfig::new(model)
    };
    let device = spec.backend.open()?;
    let setup = setup(&config)?;
    let info = model_zoo::info(model).map_err(TrainError::Model)?;
    let loaded = crate::transfer::with_own_head(info, &setup.options, weights, &device)?;
    if loaded.num_classes() != setup.classes {
        return Err(TrainError::Config(format!(
            "{}: its head predicts {} classes, {dataset} has {}: evaluate it on a dataset of its \
             classes, or fine-tune it first (cargo xtask finetune)",
            weights.display(),
            loaded.num_classes(),
            setup.classes
        )));
    }
    Ok(LoadedRun::new(
        config,
        weights.clone(),
        device,
        loaded,
        setup,
    ))
}

/// Evaluates the weights of `spec` on its dataset's test split, without a run folder.
pub fn evaluate_weights(spec: &WeightsSpec) -> Result<EvalReport, TrainError> {
    let loaded = load_weights(spec)?;
    score(
        &loaded.weights,
        &loaded.device,
        &loaded.model,
        &loaded.test,
        loaded.preset,
    )
}

/// Top-1, top-5, per-class accuracy and the confusion matrix of `model` over `loader`.
fn score(
    weights: &Path,
    device: &Device,
    model: &ZooModel,
    loader: &DataLoader,
    preset: Preset,
) -> Result<EvalReport, TrainError> {
    let weights = &weights.to_path_buf();
    let classes = loader.dataset().classes().to_vec();
    let mut confusion = vec![vec![0usize; classes.len()]; classes.len()];
    let (mut images, mut top5) = (0usize, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let labels = batch.labels.clone();
        let on_device = batch.to_device(device);
        let logits = model.forward(on_device.images);
        let [n, num_classes] = logits.dims();
        let k = 5.min(num_classes);
        let predicted: Vec<i64> = logits
            .clone()
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap_or_default();
        let best_k: Vec<i64> = logits
            .topk_with_indices(k, 1)
            .1
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap_or_default();
        for (row, (&label, &guess)) in labels.iter().zip(&predicted).enumerate() {
            confusion[label as usize][guess as usize] += 1;
            top5 += usize::from(best_k[row * k..(row + 1) * k].contains(&label));
        }
        images += n;
    }
    let correct: usize = (0..classes.len()).map(|c| confusion[c][c]).sum();
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| row[c] as f64 / row.iter().sum::<usize>().max(1) as f64)
        .collect();
    Ok(EvalReport {
        weights: weights.clone(),
        preset: preset.name(),
        images,
        top1: correct as f64 / images.max(1) as f64,
        top5: top5 as f64 / images.max(1) as f64,
        classes,
        per_class,
        confusion,
    })
}

/// Writes a report as pretty JSON, through a rename.
pub fn write_json(report: &impl Serialize, path: &Path) -> Result<(), WriteError> {
    let json = serde_json::to_vec_pretty(report).expect("the report serialises");
    write_atomically(path, &json)
}

/// The most likely classes of one image.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The image file.
    pub image: PathBuf,
    /// Up to five (class name, probability), most likely first.
    pub top5: Vec<(String, f64)>,
    /// The full logits vector.
    pub logits: Vec<f32>,
}

/// Classifies image files with a trained run's weights (default: `best.bpk`), preprocessed as
/// the run's evaluation data is.
pub fn predict_images(
    run: &Path,
    weights: Option<&Path>,
    images: &[PathBuf],
) -> Result<Vec<Prediction>, TrainError> {
    let LoadedRun {
        device,
        model,
        test,
        eval_transform: (transform, channels),
        ..
    } = load_run(run, weights)?;
    let classes = test.dataset().classes().to_vec();
    classify(&model, &device, &transform, channels, &classes, images)
}

/// Classifies image files with any registry model and imported weights (torchvision `.pth`,
/// `.safetensors`, or the zoo's burnpack `.bpk`), preprocessed as torchvision's ImageNet models
/// expect: RGB, shorter side resized to 256/224 of the input, centre crop, ImageNet mean/std.
/// `classes` names the outputs (default: their indices); `options` builds the model (e.g.
/// GoogLeNet's `transform_input` for torchvision's pretrained file).
pub fn predict_with_weights(
    model: &str,
    options: &model_zoo::ModelOptions,
    weights: &Path,
    images: &[PathBuf],
    classes: Option<Vec<String>>,
    backend: crate::BackendKind,
) -> Result<Vec<Prediction>, TrainError> {
    let info = model_zoo::info(model).map_err(TrainError::Model)?;
    let (weights, published) = crate::hub::resolve(weights)?;
    let weights = weights.as_path();
    crate::manifest::verify(weights)?;
    let mut options = options.clone();
    let mut preprocessing = info.preprocessing;
    let mut classes = classes;
    if let Some(published) = published {
        if published.model() != model {
            return Err(TrainError::Config(format!(
                "{} holds {}'s weights, not {model}'s",
                published.name(),
                published.model()
            )));
        }
        options = options.with_transform_input(published.transform_input());
        preprocessing = published.preprocessing().unwrap_or(preprocessing);
        classes = classes.or_else(|| Some(published.classes()));
    }
    let device = backend.open()?;
    let fresh = info.build(&options, &device);
    let is_burnpack = weights.extension().is_some_and(|e| e == "bpk");
    let zoo = if is_burnpack {
        fresh.try_load_file(weights).map_err(|e| {
            TrainError::Config(format!(
                "{}: cannot load weights for {model}: {e:?}",
                weights.display()
            ))
        })?
    } else {
        model_zoo::weights::load_weights(fresh, model, weights, &device)
            .map_err(|e| TrainError::Config(e.to_string()))?
    };
    let [channels, size, _] = info.input;
    let classes = classes.unwrap_or_else(|| (0..info.num_classes).map(|c| c.to_string()).collect());
    classify(
        &zoo,
        &device,
        &preprocess(&preprocessing, size),
        channels,
        &classes,
        images,
    )
}

/// The evaluation transform a model's weights expect: shorter side resized (when the entry
/// says so), centre crop to `size`, per-channel normalisation.
pub fn preprocess(preprocessing: &Preprocessing, size: usize) -> Compose {
    let transform = match preprocessing.resize {
        Some(resize) => Compose::identity().then(Resize {
            size: resize * size / 224,
        }),
        None => Compose::identity(),
    };
    transform.then(CenterCrop { size }).then(Normalize {
        mean: preprocessing.mean.to_vec(),
        std: preprocessing.std.to_vec(),
    })
}

fn classify(
    model: &ZooModel,
    device: &Device,
    transform: &Compose,
    channels: usize,
    classes: &[String],
    images: &[PathBuf],
) -> Result<Vec<Prediction>, TrainError> {
    images
        .iter()
        .map(|path| {
            let image = decode_file(path, channels)?;
            // The evaluation recipe is deterministic; the generator is never drawn from.
            let image = transform.apply(image, &mut Rng::new(0));
            let shape = [1, image.channels, image.height, image.width];
            let input = Tensor::<4>::from_data(TensorData::new(image.data, shape), device);
            let logits = model.forward(input);
            let probabilities = softmax(logits.clone(), 1);
            let logits: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default();
            let probabilities: Vec<f32> = probabilities
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap_or_default();
            let mut order: Vec<usize> = (0..probabilities.len()).collect();
            order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
            let top5 = order
                .into_iter()
                .take(5)
                .map(|c| {
                    (
                        classes.get(c).cloned().unwrap_or_else(|| c.to_string()),
                        f64::from(probabilities[c]),
                    )
                })
                .collect();
            Ok(Prediction {
                image: path.clone(),
                top5,
                logits,
            })
        })
        .collect()
}
