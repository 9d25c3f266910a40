//! Layer lists in torchvision's `nn.Sequential` order, so that AlexNet's and VGG's `features.N`
//! and `classifier.N` indices match torchvision's state-dict keys.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Dropout, Linear, LocalResponseNorm, Relu};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::trace::Layer;

/// One entry of a convolutional feature extractor.
#[derive(Module, Debug)]
pub enum FeatureLayer {
    /// A convolution.
    Conv(Conv2d),
    /// Batch normalisation (the `_bn` VGGs).
    BatchNorm(BatchNorm),
    /// ReLU.
    Relu(Relu),
    /// Max pooling.
    MaxPool(MaxPool2d),
    /// Local Response Normalization (AlexNet 2012).
    Lrn(LocalResponseNorm),
}

impl FeatureLayer {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(layer) => layer.run(x),
            Self::BatchNorm(layer) => layer.run(x),
            Self::Relu(_) => relu(x),
            Self::MaxPool(layer) => layer.run(x),
            Self::Lrn(layer) => layer.run(x),
        }
    }
}

/// One entry of a fully connected classifier.
#[derive(Module, Debug)]
pub enum ClassifierLayer {
    /// Dropout.
    Dropout(Dropout),
    /// A fully connected layer.
    Linear(Linear),
    /// ReLU.
    Relu(Relu),
}

impl ClassifierLayer {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Dropout(layer) => layer.run(x),
            Self::Linear(layer) => layer.run(x),
            Self::Relu(_) => relu(x),
        }
    }
}

/// Runs a list of feature layers in order.
pub fn forward_features(layers: &[FeatureLayer], x: Tensor<4>) -> Tensor<4> {
    forward_features_seen(layers, x, &mut |_| {})
}

/// [`forward_features`], showing `seen` every layer's output.
pub fn forward_features_seen(
    layers: &[FeatureLayer],
    x: Tensor<4>,
    seen: &mut dyn FnMut(&Tensor<4>),
) -> Tensor<4> {
    layers.iter().fold(x, |x, layer| {
        let x = layer.forward(x);
        seen(&x);
        x
    })
}

/// Runs a list of classifier layers in order.
pub fn forward_classifier(layers: &[ClassifierLayer], x: Tensor<2>) -> Tensor<2> {
    layers.iter().fold(x, |x, layer| layer.forward(x))
}

/// Replaces the last fully connected layer of `layers` by a fresh one with `num_classes` outputs.
pub fn replace_last_linear(
    mut layers: Vec<ClassifierLayer>,
    num_classes: usize,
    device: &Device,
) -> Vec<ClassifierLayer> {
    let last = layers
        .iter()
        .rposition(|layer| matches!(layer, ClassifierLayer::Linear(_)))
        .expect("a classifier has a fully connected layer");
    if let ClassifierLayer::Linear(linear) = &layers[last] {
        let [features_in, _] = linear.weight.dims();
        layers[last] = ClassifierLayer::Linear(
            burn::nn::LinearConfig::new(features_in, num_classes).init(device),
        );
    }
    layers
}

/// The number of outputs of the last fully connected layer.
pub fn last_linear_outputs(layers: &[ClassifierLayer]) -> usize {
    layers
        .iter()
        .rev()
        .find_map(|layer| match layer {
            ClassifierLayer::Linear(linear) => Some(linear.weight.dims()[1]),
            _ => None,
        })
        .expect("a classifier has a fully connected layer")
}
