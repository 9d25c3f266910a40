//! VGG (Simonyan, Zisserman 2015, "Very deep convolutional networks for large-scale image
//! recognition"): stacks of 3×3 "same" convolutions and 2×2/2 max pools with 64→128→256→512→512
//! channels, then FC 4096-4096. Configurations A, B, D, E of Table 1 are VGG-11, -13, -16, -19;
//! the `_bn` variants add batch norm after each convolution. Equal to torchvision's: VGG-16 has
//! 138,357,544 parameters and 15,470,264,320 MACs at 224×224. Any input of at least 32×32 works:
//! the features are average-pooled to 7×7 as in torchvision; below 224×224 that pool enlarges
//! the map, and it is folded into the first FC layer
//! ([`crate::blocks::pooled_linear`]: at 32×32 that layer does 1/49 of its multiplies).

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNormConfig, DropoutConfig, Initializer, LinearConfig, Relu};
use burn::prelude::*;

use crate::blocks::he_normal_conv;
use crate::blocks::pooled_linear::pooled_linear;
use crate::blocks::sequential::{
    ClassifierLayer, FeatureLayer, forward_classifier, forward_features_seen, last_linear_outputs,
    replace_last_linear,
};
use crate::models::{Classifier, FamilyEntry, IMAGENET_INPUT, ModelArgs};
use crate::trace::{self, Layer};

/// `Some(c)`: a 3×3 convolution with `c` filters; `None`: a 2×2/2 max pool (Table 1).
type Plan = &'static [Option<usize>];

const M: Option<usize> = None;
const fn c(channels: usize) -> Option<usize> {
    Some(channels)
}

/// Table 1, configuration A.
#[rustfmt::skip]
pub const VGG11: Plan = &[c(64), M, c(128), M, c(256), c(256), M, c(512), c(512), M, c(512), c(512), M];
/// Table 1, configuration B.
#[rustfmt::skip]
pub const VGG13: Plan = &[
    c(64), c(64), M, c(128), c(128), M, c(256), c(256), M, c(512), c(512), M, c(512), c(512), M,
];
/// Table 1, configuration D.
#[rustfmt::skip]
pub const VGG16: Plan = &[
    c(64), c(64), M, c(128), c(128), M, c(256), c(256), c(256), M,
    c(512), c(512), c(512), M, c(512), c(512), c(512), M,
];
/// Table 1, configuration E.
#[rustfmt::skip]
pub const VGG19: Plan = &[
    c(64), c(64), M, c(128), c(128), M, c(256), c(256), c(256), c(256), M,
    c(512), c(512), c(512), c(512), M, c(512), c(512), c(512), c(512), M,
];

/// Configuration of [`Vgg`].
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Weight layers: 11, 13, 16 or 19.
    pub depth: usize,
    /// Batch norm after every convolution.
    #[config(default = false)]
    pub batch_norm: bool,
    /// Number of classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Dropout after the two hidden FC layers.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl VggConfig {
    fn plan(&self) -> Plan {
        match self.depth {
            11 => VGG11,
            13 => VGG13,
            16 => VGG16,
            19 => VGG19,
            depth => panic!("VGG has 11, 13, 16 or 19 weight layers, not {depth}"),
        }
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> Vgg {
        let mut features = Vec::new();
        let mut channels = self.in_channels;
        for step in self.plan() {
            match *step {
                Some(out) => {
                    let conv = he_normal_conv([channels, out], 3, 1, 1, true).init(device);
                    features.push(FeatureLayer::Conv(conv));
                    if self.batch_norm {
                        features.push(FeatureLayer::BatchNorm(
                            BatchNormConfig::new(out).init(device),
                        ));
                    }
                    features.push(FeatureLayer::Relu(Relu::new()));
                    channels = out;
                }
                None => features.push(FeatureLayer::MaxPool(
                    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                )),
            }
        }
        // torchvision initialises VGG's FC layers from N(0, 0.01).
        let linear = |d_in: usize, d_out: usize| {
            LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device)
        };
        let classifier = vec![
            ClassifierLayer::Linear(linear(channels * 7 * 7, 4096)),
            ClassifierLayer::Relu(Relu::new()),
            ClassifierLayer::Dropout(DropoutConfig::new(self.dropout).init()),
            ClassifierLayer::Linear(linear(4096, 4096)),
            ClassifierLayer::Relu(Relu::new()),
            ClassifierLayer::Dropout(DropoutConfig::new(self.dropout).init()),
            ClassifierLayer::Linear(linear(4096, self.num_classes)),
        ];
        Vgg {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([7, 7]).init(),
            classifier,
        }
    }
}

/// VGG, laid out as torchvision's `features` / `avgpool` / `classifier`.
#[derive(Module, Debug)]
pub struct Vgg {
    /// Convolutions, (batch norms), ReLUs and max pools.
    pub features: Vec<FeatureLayer>,
    /// Adaptive average pool to 7×7.
    pub avgpool: AdaptiveAvgPool2d,
    /// FC 4096, ReLU, dropout, FC 4096, ReLU, dropout, FC classes.
    pub classifier: Vec<ClassifierLayer>,
}

impl Classifier for Vgg {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        forward_features_seen(&self.features, x, seen)
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        match self.classifier.split_first() {
            Some((ClassifierLayer::Linear(first), rest)) => {
                forward_classifier(rest, pooled_linear(&self.avgpool, first, features))
            }
            _ => forward_classifier(&self.classifier, trace::flatten(self.avgpool.run(features))),
        }
    }

    fn num_classes(&self) -> usize {
        last_linear_outputs(&self.classifier)
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.classifier = replace_last_linear(self.classifier, num_classes, device);
        self
    }
}

/// The zoo's VGG entries, named as torchvision's: configurations A, B, D and E, each with and
/// without batch norm.
#[rustfmt::skip]
pub(crate) const ENTRIES: &[FamilyEntry<Vgg>] = &[
    entry("vgg11", build::<11, false>), entry("vgg11_bn", build::<11, true>),
    entry("vgg13", build::<13, false>), entry("vgg13_bn", build::<13, true>),
    entry("vgg16", build::<16, false>), entry("vgg16_bn", build::<16, true>),
    entry("vgg19", build::<19, false>), entry("vgg19_bn", build::<19, true>),
];

const fn entry(name: &'static str, build: fn(&ModelArgs, &Device) -> Vgg) -> FamilyEntry<Vgg> {
    FamilyEntry {
        name,
        paper: "Simonyan & Zisserman 2015",
        input: IMAGENET_INPUT,
        num_classes: 1000,
        build,
    }
}

fn build<const DEPTH: usize, const BATCH_NORM: bool>(args: &ModelArgs, device: &Device) -> Vgg {
    VggConfig::new(DEPTH)
        .with_batch_norm(BATCH_NORM)
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .init(device)
}
