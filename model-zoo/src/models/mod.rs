//! One file per model family of the chapter. Every model has a `#[derive(Config)]` with
//! `num_classes` and `in_channels` and implements [`Classifier`].

pub mod alexnet;
pub mod cifar_resnet;
pub mod googlenet;
pub mod lenet;
pub mod nin;
pub mod resnet;
pub mod vgg;

use burn::prelude::*;

/// The face every zoo model shares (timm's `forward_features` / `forward_head` split), so that
/// code that trains or evaluates never matches on model names.
pub trait Classifier: Sized {
    /// Everything before the head: the last feature maps.
    fn forward_features(&self, x: Tensor<4>) -> Tensor<4>;

    /// The head alone: pooling and the classifier, from [`Classifier::forward_features`]'s
    /// output to logits.
    fn forward_head(&self, features: Tensor<4>) -> Tensor<2>;

    /// Logits for a batch of images `[N, C, H, W]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.forward_features(x))
    }

    /// The training forward: the logits and, where the architecture has them, the logits of its
    /// auxiliary classifiers (GoogLeNet), whose losses are added with weight 0.3.
    fn forward_train(&self, x: Tensor<4>) -> TrainOutput {
        TrainOutput {
            logits: self.forward(x),
            aux_logits: Vec::new(),
        }
    }

    /// Number of classes the head predicts.
    fn num_classes(&self) -> usize;

    /// The same network with a fresh head for `num_classes` classes (the chapter's "replace the
    /// softmax layer" for transfer learning); every other weight is kept.
    fn with_num_classes(self, num_classes: usize, device: &Device) -> Self;
}

/// What [`Classifier::forward_train`] returns.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    /// Main logits `[N, classes]`.
    pub logits: Tensor<2>,
    /// Logits of auxiliary classifiers, empty for most models.
    pub aux_logits: Vec<Tensor<2>>,
}
