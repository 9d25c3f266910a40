//! # model-zoo
//!
//! The convolutional networks of the "deep convolutional models: case studies" chapter —
//! LeNet-5, AlexNet, VGG, ResNets (ImageNet and CIFAR, with plain twins), Network in Network and
//! Inception / GoogLeNet — as backend-agnostic Burn modules, exact to the papers and to
//! torchvision (parameter counts, MACs, field names).
//!
//! Every model is created by name and shares one face ([`Classifier`]): logits, features before
//! the head, the head alone, and head replacement.
//!
//! ```
//! use burn::prelude::*;
//! use model_zoo::{Classifier, ModelOptions};
//!
//! let device = Device::flex();
//! let model = model_zoo::create("lenet5", &ModelOptions::new(), &device).unwrap();
//! let images = Tensor::<4>::zeros([8, 1, 32, 32], &device);
//! assert_eq!(model.forward(images).dims(), [8, 10]);
//!
//! // Transfer learning: a new 3-way head on the same backbone.
//! let model = model.with_num_classes(3, &device);
//! assert_eq!(model.num_classes(), 3);
//!
//! let summary = model_zoo::summary::summarize(&model, "lenet5", [1, 32, 32], &device);
//! assert_eq!(summary.params, 61_706 - 84 * 10 - 10 + 84 * 3 + 3);
//! ```

pub mod blocks;
pub mod models;
mod pickle_globals;
pub mod pretrained;
pub mod registry;
pub mod summary;
mod trace;
pub mod weights;

pub use models::{Classifier, FamilyEntry, ModelArgs, TrainOutput};
pub use registry::{
    MODELS, ModelInfo, ModelOptions, Preprocessing, UnknownModel, ZooModel, create, info, names,
    register,
};
pub use summary::{FeatureInfo, Summary, count_parameters, feature_info, summarize};
pub use trace::Layer;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
