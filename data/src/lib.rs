//! # data
//!
//! Datasets (IDX, CIFAR binary, image folders, an embedded MNIST subset, downloads) and a
//! multithreaded, seeded augmentation pipeline that streams mini-batches into Burn tensors
//! while training runs. This crate knows nothing of models.

pub mod datasets;
pub mod error;
pub mod image;
pub mod pipeline;
pub mod rng;
pub mod transforms;

pub use datasets::{Dataset, Sample, SampleU8, Subset};
pub use error::DataError;
pub use image::{Image, ImageU8};
pub use pipeline::{Batch, DataLoader, Epoch, HostBatch, LoaderConfig, MixedTargets, OnBadSample};
pub use rng::Rng;
pub use transforms::{Compose, ExtraAugmentation, Preset, Transform};
