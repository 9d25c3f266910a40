//! The chapter's shortcut for a frozen backbone: compute its activations for every training image
//! once, save them to disk, and train the softmax head on them. The cache is a dataset of
//! feature maps, so the ordinary training loop (shuffling, checkpoints, resume) runs the head on
//! it unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use data::{Compose, DataError, DataLoader, Dataset, Image, LoaderConfig, Sample};
use model_zoo::{Classifier, ZooModel};
use serde::{Deserialize, Serialize};

use crate::atomic_file::{read_f32s, write_atomically};
use crate::config::TrainConfig;
use crate::error::TrainError;

/// Backbone activations of a training set, one feature map per image.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    shape: [usize; 3],
    values: Vec<f32>,
    labels: Vec<usize>,
    classes: Vec<String>,
}

/// `<key>.json` beside the raw `<key>.f32` values.
#[derive(Debug, Serialize, Deserialize)]
struct CacheHeader {
    shape: [usize; 3],
    labels: Vec<usize>,
    classes: Vec<String>,
}

impl Dataset for FeatureCache {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let [channels, height, width] = self.shape;
        let size = channels * height * width;
        Ok(Sample {
            image: Image {
                channels,
                height,
                width,
                data: self.values[index * size..(index + 1) * size].to_vec(),
            },
            label: self.labels[index],
        })
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }
}

/// FNV-1a: a stable 64-bit hash for cache keys (the standard library's may change between
/// Rust versions).
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// What the cached activations depend on: the weights (the file's bytes), the model, the
/// training images (dataset, classes, split, limit) and their preprocessing.
fn cache_key(config: &TrainConfig, preprocessing: &str) -> Result<String, TrainError> {
    let weights = config.weights.as_ref().ok_or_else(|| {
        TrainError::Config("--cache-features needs pretrained --weights to cache".into())
    })?;
    let (weights, _) = crate::hub::resolve(weights)?;
    let bytes = std::fs::read(&weights)
        .map_err(|e| TrainError::Config(format!("{}: {e}", weights.display())))?;
    let mut hash = fnv1a(&bytes, 0xcbf2_9ce4_8422_2325);
    let inputs = serde_json::json!({
        "model": config.model,
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "classes": config.classes,
        "per_class": config.per_class,
        "limit": config.limit,
        "validation": config.validation,
        "seed": config.seed,
        "preprocessing": preprocessing,
    });
    hash = fnv1a(inputs.to_string().as_bytes(), hash);
    Ok(format!("{}-{hash:016x}", config.model))
}

fn cache_error(path: &Path, problem: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{}: {problem}", path.display()))
}

fn read(stem: &Path) -> Result<FeatureCache, TrainError> {
    let header_path = stem.with_extension("json");
    let values_path = stem.with_extension("f32");
    let header: CacheHeader = serde_json::from_str(
        &std::fs::read_to_string(&header_path).map_err(|e| cache_error(&header_path, e))?,
    )
    .map_err(|e| cache_error(&header_path, e))?;
    let count = header.labels.len() * header.shape.iter().product::<usize>();
    let values = read_f32s(&values_path, count)
        .map_err(|e| TrainError::Config(format!("{e}; delete the cache to rebuild it")))?;
    Ok(FeatureCache {
        shape: header.shape,
        values,
        labels: header.labels,
        classes: header.classes,
    })
}

fn write(stem: &Path, cache: &FeatureCache) -> Result<(), TrainError> {
    let bytes: Vec<u8> = cache.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_atomically(&stem.with_extension("f32"), &bytes)?;
    let header = CacheHeader {
        shape: cache.shape,
        labels: cache.labels.clone(),
        classes: cache.classes.clone(),
    };
    let json = serde_json::to_vec(&header).expect("the header serialises");
    // The header goes last: a cache is only ever read when both files are whole.
    Ok(write_atomically(&stem.with_extension("json"), &json)?)
}

/// The cached backbone activations of `train` (read when present, computed and saved in
/// `dir` otherwise), with the loader that serves them to the head in shuffled batches.
pub fn cached_features(
    config: &TrainConfig,
    model: &ZooModel,
    train: &DataLoader,
    eval_transform: Compose,
    preprocessing: &str,
    dir: &Path,
    device: &Device,
) -> Result<(DataLoader, PathBuf, bool), TrainError> {
    let stem = dir.join(cache_key(config, preprocessing)?);
    let (cache, reused) = if stem.with_extension("json").is_file() {
        (read(&stem)?, true)
    } else {
        let backbone = model.valid();
        // The backbone must end where the head begins: a new head leaves the features as
        // they are (not so in NiN, whose head is its last mlpconv).
        let renewed = backbone
            .clone()
            .with_num_classes(backbone.num_classes(), device);
        let loader = DataLoader::new(
            train.dataset().clone(),
            Arc::new(eval_transform),
            LoaderConfig {
                workers: config.workers.max(1),
                shuffle: false,
                ..LoaderConfig::new(config.batch_size)
            },
        );
        let (mut values, mut labels, mut shape) = (Vec::new(), Vec::new(), [0; 3]);
        for batch in loader.epoch(0) {
            let batch = batch?;
            let batch_labels = batch.labels.clone();
            let images = batch.to_device(device).images;
            let features = backbone.forward_features(images.clone());
            if labels.is_empty() {
                let same = features
                    .clone()
                    .equal(renewed.forward_features(images))
                    .all()
                    .into_scalar::<bool>();
                if !same {
                    return Err(TrainError::Config(format!(
                        "--cache-features: {}'s new head sits inside its feature extractor, so \
                         there is nothing to cache; train without it",
                        config.model
                    )));
                }
            }
            labels.extend(batch_labels.iter().map(|&l| l as usize));
            let [_, c, h, w] = features.dims();
            shape = [c, h, w];
            values.extend(
                features
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| TrainError::Config(format!("{e:?}")))?,
            );
        }
        let cache = FeatureCache {
            shape,
            values,
            labels,
            classes: train.dataset().classes().to_vec(),
        };
        std::fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
        write(&stem, &cache)?;
        (cache, false)
    };
    let loader = DataLoader::new(
        Arc::new(cache),
        Arc::new(Compose::identity()),
        LoaderConfig {
            workers: config.workers.max(1),
            prefetch: 2 * config.workers.max(1),
            shuffle: true,
            seed: config.seed,
            ..LoaderConfig::new(config.batch_size)
        },
    );
    Ok((loader, stem, reused))
}
