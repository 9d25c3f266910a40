//! A run's datasets, loaders and model, built from its configuration on the device given.

use std::sync::Arc;

use burn::prelude::*;
use data::datasets::classes::{ClassGroups, Relabeled, per_class};
use data::datasets::idx::Split;
use data::datasets::source::DatasetSource;
use data::transforms::BatchMix;
use data::{DataLoader, Dataset, LoaderConfig, Preset, Subset};
use model_zoo::{ModelInfo, ModelOptions, ZooModel};

use crate::config::TrainConfig;
use crate::error::TrainError;

/// The datasets and loaders a run needs, and how to build its model (on the device the caller
/// opened: setting up the data needs none).
pub(crate) struct Setup {
    pub(crate) train: DataLoader,
    pub(crate) valid: Option<DataLoader>,
    pub(crate) test: DataLoader,
    /// The registry entry of the run's model.
    pub(crate) info: &'static ModelInfo,
    pub(crate) classes: usize,
    /// Evaluation preprocessing and the channels images decode to, for single images.
    pub(crate) eval_transform: (data::Compose, usize),
    /// The augmentation preset and the input side, from which multi-crop evaluation is built.
    pub(crate) preset: Preset,
    pub(crate) size: usize,
    /// Training images held back for validation.
    pub(crate) validation: usize,
    /// How the model is built, from the data's channels, classes and size.
    pub(crate) options: ModelOptions,
    /// What the training images (before the validation split) are, for a resumed run to check
    /// against ([`training_data`]).
    pub(crate) training_data: String,
}

impl Setup {
    /// The run's model, initialised on `device`.
    pub(crate) fn build_model(&self, device: &Device) -> ZooModel {
        self.info.build(&self.options, device)
    }
}

/// The training set as a resumed run must find it again: its size and a hash (FNV-1a) of its
/// labels in order. A file added to, removed from or moved within an image folder changes it,
/// and with it which images the seeded split holds back.
pub(crate) fn training_data(dataset: &dyn Dataset) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for index in 0..dataset.len() {
        for byte in (dataset.label(index) as u32).to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{} images, labels {hash:016x}", dataset.len())
}

/// The preset a run trains with: `--augment`'s, else its dataset's (`small_images`: whether an
/// image folder holds small images).
pub(crate) fn preset(
    augment: Option<&str>,
    source: &DatasetSource,
    small_images: bool,
) -> Result<Preset, TrainError> {
    Ok(match (augment, source) {
        (Some(name), _) => name.parse::<Preset>().map_err(TrainError::Config)?,
        (None, DatasetSource::Embedded | DatasetSource::Mnist) => Preset::Mnist,
        (None, DatasetSource::Cifar10) => Preset::Cifar,
        (None, DatasetSource::ImageFolder(_)) if small_images => Preset::Small,
        (None, DatasetSource::ImageFolder(_)) => Preset::Imagenet,
    })
}

pub(crate) fn setup(config: &TrainConfig) -> Result<Setup, TrainError> {
    let info = model_zoo::info(&config.model).map_err(TrainError::Model)?;
    let source = DatasetSource::parse(&config.dataset);
    // An image folder's defaults follow its images: small ones keep their size and get padding
    // and random crops, large ones the ImageNet recipe at the model's input size.
    let folder_side = match (&config.augment, config.image_size) {
        (Some(_), Some(_)) => None,
        _ => source.folder_image_side()?,
    };
    let small_images = match &source {
        DatasetSource::Embedded | DatasetSource::Mnist | DatasetSource::Cifar10 => true,
        DatasetSource::ImageFolder(_) => {
            folder_side.is_some_and(|side| Preset::for_image_side(side) == Preset::Small)
        }
    };
    let size = config.image_size.unwrap_or(match (&source, folder_side) {
        (DatasetSource::ImageFolder(_), Some(side)) if small_images => side,
        _ if small_images => 32,
        _ => info.input[1],
    });
    let preset = preset(config.augment.as_deref(), &source, small_images)?;
    let groups = config
        .classes
        .as_deref()
        .map(str::parse::<ClassGroups>)
        .transpose()
        .map_err(|e| TrainError::Config(format!("--classes {e}")))?;
    let task = |dataset: Arc<dyn Dataset>, count: Option<usize>, seed: u64| {
        let dataset: Arc<dyn Dataset> = match &groups {
            Some(groups) => Arc::new(Relabeled::new(dataset, groups).map_err(|e| {
                TrainError::Config(format!("--classes for {}: {e}", config.dataset))
            })?),
            None => dataset,
        };
        Ok::<_, TrainError>(match count {
            Some(count) => Arc::new(per_class(dataset, count, seed)),
            None => dataset,
        })
    };
    let full_train = task(
        source.open(Split::Train, &config.data_dir)?,
        config.per_class,
        config.seed,
    )?;
    let test = task(
        source.open(Split::Test, &config.data_dir)?,
        config.test_per_class,
        config.seed,
    )?;
    // A label means the same class in both splits only when they list the same classes in the
    // same order (an image folder's train/ and test/ sub-folders are listed separately).
    if full_train.classes() != test.classes() {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|class| !b.contains(class))
                .cloned()
                .collect()
        };
        return Err(TrainError::Config(format!(
            "{}: the training and test splits have different classes (only in training: {:?}; \
             only in test: {:?}; or the same names in another order)",
            config.dataset,
            only(full_train.classes(), test.classes()),
            only(test.classes(), full_train.classes())
        )));
    }
    let classes = full_train.classes().len();
    let limited: Arc<dyn Dataset> = match config.limit {
        Some(limit) => Arc::new(Subset::first(full_train, limit)),
        None => full_train,
    };
    let validation = config
        .validation
        .unwrap_or_else(|| data::datasets::default_validation(limited.len()));
    let training_data = training_data(&*limited);
    let (train, valid) = data::datasets::split(limited, validation, config.seed);
    if train.is_empty() {
        return Err(TrainError::Config(format!(
            "no training images left after holding {validation} back for validation"
        )));
    }
    let extra = config.extra_augmentation()?;
    let loader = |dataset: Arc<dyn Dataset>, train: bool| {
        let transform = if train {
            preset.train_with(size, &extra)
        } else {
            preset.eval(size)
        };
        let loader_config = LoaderConfig {
            workers: config.workers.max(1),
            prefetch: 2 * config.workers.max(1),
            shuffle: train,
            seed: config.seed,
            batch_mix: if train {
                config.batch_mix()
            } else {
                BatchMix::default()
            },
            ..LoaderConfig::new(config.batch_size)
        };
        DataLoader::new(dataset, Arc::new(transform), loader_config)
    };
    let options = ModelOptions::new()
        .with_num_classes(Some(classes))
        .with_in_channels(Some(source.channels()))
        .with_input_size(Some(size))
        .with_aux_logits(true);
    Ok(Setup {
        train: loader(Arc::new(train), true),
        valid: (!valid.is_empty()).then(|| loader(Arc::new(valid), false)),
        test: loader(test, false),
        info,
        classes,
        eval_transform: (preset.eval(size), source.channels()),
        preset,
        size,
        validation,
        options,
        training_data,
    })
}

/// Optimiser steps in one epoch of `config`: its training images over the batch size, over
/// `--accumulate`.
pub fn steps_per_epoch(config: &TrainConfig) -> Result<usize, TrainError> {
    let batches = setup(config)?.train.batches_per_epoch();
    Ok(batches.div_ceil(config.accumulate.max(1)))
}
