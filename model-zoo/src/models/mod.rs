//! One file per model family of the chapter. Every model has a `#[derive(Config)]` with
//! `num_classes` and `in_channels` and implements [`Classifier`].

pub mod alexnet;
pub mod cifar_resnet;
pub mod custom;
pub mod googlenet;
pub mod lenet;
pub mod nin;
pub mod resnet;
pub mod vgg;

use burn::prelude::*;

use crate::blocks::ShortcutKind;

/// ImageNet's input, `[C, H, W]`.
pub(crate) const IMAGENET_INPUT: [usize; 3] = [3, 224, 224];
/// CIFAR's input.
pub(crate) const CIFAR_INPUT: [usize; 3] = [3, 32, 32];

/// One registry entry, declared in its family's file beside the model (as timm's
/// `@register_model` functions are); `registry::MODELS` gathers every family's `ENTRIES`.
#[derive(Debug)]
pub struct FamilyEntry<M> {
    /// Registry name.
    pub name: &'static str,
    /// The paper it follows.
    pub paper: &'static str,
    /// Default input `[C, H, W]`.
    pub input: [usize; 3],
    /// Default number of classes.
    pub num_classes: usize,
    /// Builds the network with every option resolved.
    pub build: fn(&ModelArgs, &Device) -> M,
}

// By hand: derived, they would ask the model to be `Copy` too, where only its builder is copied.
impl<M> Clone for FamilyEntry<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for FamilyEntry<M> {}

/// `ModelOptions` with the entry's defaults filled in: what a family's builder reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelArgs {
    /// Number of classes.
    pub num_classes: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Side of the square input.
    pub input_size: usize,
    /// GoogLeNet's auxiliary classifiers.
    pub aux_logits: bool,
    /// GoogLeNet's input re-normalisation.
    pub transform_input: bool,
    /// The CIFAR ResNets' shortcut where shapes change.
    pub shortcut: ShortcutKind,
}

/// The face every zoo model shares (timm's `forward_features` / `forward_head` split), so that
/// code that trains or evaluates never matches on model names.
pub trait Classifier: Sized {
    /// Everything before the head, showing `seen` the feature map after each stage (a layer or
    /// block) as it goes: the one forward path behind [`Classifier::forward_features`] and
    /// [`Classifier::forward_intermediates`].
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4>;

    /// Everything before the head: the last feature maps.
    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_stages(x, &mut |_| {})
    }

    /// The feature maps a detection or segmentation head takes from a backbone (timm's
    /// `features_only` and `forward_intermediates`): the last map at each spatial size, shallow
    /// to deep, the last being [`Classifier::forward_features`]'s. [`crate::feature_info`] gives
    /// their channels and reductions; pick stages by index.
    fn forward_intermediates(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut maps: Vec<Tensor<4>> = Vec::new();
        let last = self.forward_stages(x, &mut |map| keep_last_per_size(&mut maps, map));
        keep_last_per_size(&mut maps, &last);
        maps
    }

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

/// Appends `map` to `maps`, or replaces the last one when it has the same spatial size.
fn keep_last_per_size(maps: &mut Vec<Tensor<4>>, map: &Tensor<4>) {
    match maps.last_mut() {
        Some(last) if last.dims()[2..] == map.dims()[2..] => *last = map.clone(),
        _ => maps.push(map.clone()),
    }
}

/// What [`Classifier::forward_train`] returns.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    /// Main logits `[N, classes]`.
    pub logits: Tensor<2>,
    /// Logits of auxiliary classifiers, empty for most models.
    pub aux_logits: Vec<Tensor<2>>,
}
