//! AlexNet (Krizhevsky, Sutskever, Hinton 2012, "ImageNet classification with deep
//! convolutional neural networks") in three forms:
//! - [`AlexNetVariant::Torchvision`]: torchvision's single-tower variant (64-192-384-256-256,
//!   adaptive 6×6 pool), whose weights can be imported: 61,100,840 parameters.
//! - [`AlexNetVariant::Course`]: the chapter's single tower on 227×227 (96-256-384-384-256;
//!   55→27→13→6×6×256 = 9216): 62,378,344 parameters.
//! - [`AlexNetVariant::Paper`]: the 2012 network, its two-GPU split expressed as grouped
//!   convolutions on conv2/4/5 and Local Response Normalization after conv1 and conv2:
//!   60,965,224 parameters.

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{DropoutConfig, LinearConfig, LocalResponseNormConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blocks::he_normal_conv;
use crate::blocks::sequential::{
    ClassifierLayer, FeatureLayer, forward_classifier, forward_features_seen, last_linear_outputs,
    replace_last_linear,
};
use crate::models::{Classifier, FamilyEntry, IMAGENET_INPUT, ModelArgs};
use crate::trace::{self, Layer};

/// Which AlexNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlexNetVariant {
    /// torchvision's `alexnet`.
    Torchvision,
    /// The chapter's single-tower network on 227×227.
    Course,
    /// Krizhevsky et al. 2012 with grouped convolutions and LRN.
    Paper,
}

/// One convolution of the feature extractor: output channels, kernel, stride, padding, groups.
struct ConvSpec(usize, usize, usize, usize, usize);

impl AlexNetVariant {
    fn convs(self) -> [ConvSpec; 5] {
        match self {
            Self::Torchvision => [
                ConvSpec(64, 11, 4, 2, 1),
                ConvSpec(192, 5, 1, 2, 1),
                ConvSpec(384, 3, 1, 1, 1),
                ConvSpec(256, 3, 1, 1, 1),
                ConvSpec(256, 3, 1, 1, 1),
            ],
            Self::Course => [
                ConvSpec(96, 11, 4, 0, 1),
                ConvSpec(256, 5, 1, 2, 1),
                ConvSpec(384, 3, 1, 1, 1),
                ConvSpec(384, 3, 1, 1, 1),
                ConvSpec(256, 3, 1, 1, 1),
            ],
            // §3.5 and figure 2: conv2, conv4 and conv5 see only the kernel maps on their own GPU.
            Self::Paper => [
                ConvSpec(96, 11, 4, 0, 1),
                ConvSpec(256, 5, 1, 2, 2),
                ConvSpec(384, 3, 1, 1, 1),
                ConvSpec(384, 3, 1, 1, 2),
                ConvSpec(256, 3, 1, 1, 2),
            ],
        }
    }
}

/// Configuration of [`AlexNet`].
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Number of classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Which AlexNet.
    #[config(default = "AlexNetVariant::Torchvision")]
    pub variant: AlexNetVariant,
    /// Side of the square input, which sizes the first FC layer of the course and paper
    /// variants (227 gives the 6×6×256 of the chapter); torchvision's pools adaptively to 6×6.
    #[config(default = 227)]
    pub input_size: usize,
    /// Dropout before the two hidden FC layers (§4.2).
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl AlexNetConfig {
    /// Side of the last feature map for the course and paper variants.
    fn feature_side(&self) -> usize {
        let pool = |side: usize| (side - 3) / 2 + 1;
        assert!(
            self.input_size >= 67,
            "AlexNet needs an input of at least 67×67, got {}",
            self.input_size
        );
        pool(pool(pool((self.input_size - 11) / 4 + 1)))
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> AlexNet {
        let max_pool =
            || FeatureLayer::MaxPool(MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init());
        // The paper's k + α·Σa² (§3.3, k=2, n=5, α=1e-4, β=0.75); Burn divides α by n as PyTorch does.
        let lrn = || {
            FeatureLayer::Lrn(
                LocalResponseNormConfig::new(5)
                    .with_alpha(1e-4 * 5.0)
                    .with_beta(0.75)
                    .with_k(2.0)
                    .init(),
            )
        };
        let paper = self.variant == AlexNetVariant::Paper;
        let mut features = Vec::new();
        let mut channels = self.in_channels;
        for (index, ConvSpec(out, kernel, stride, padding, groups)) in
            self.variant.convs().into_iter().enumerate()
        {
            let conv: Conv2dConfig =
                he_normal_conv([channels, out], kernel, stride, padding, true).with_groups(groups);
            features.push(FeatureLayer::Conv(conv.init(device)));
            features.push(FeatureLayer::Relu(Relu::new()));
            if paper && index < 2 {
                features.push(lrn());
            }
            if index < 2 || index == 4 {
                features.push(max_pool());
            }
            channels = out;
        }
        let (avgpool, side) = match self.variant {
            AlexNetVariant::Torchvision => (Some(AdaptiveAvgPool2dConfig::new([6, 6]).init()), 6),
            AlexNetVariant::Course | AlexNetVariant::Paper => (None, self.feature_side()),
        };
        let flat = channels * side * side;
        let classifier = vec![
            ClassifierLayer::Dropout(DropoutConfig::new(self.dropout).init()),
            ClassifierLayer::Linear(LinearConfig::new(flat, 4096).init(device)),
            ClassifierLayer::Relu(Relu::new()),
            ClassifierLayer::Dropout(DropoutConfig::new(self.dropout).init()),
            ClassifierLayer::Linear(LinearConfig::new(4096, 4096).init(device)),
            ClassifierLayer::Relu(Relu::new()),
            ClassifierLayer::Linear(LinearConfig::new(4096, self.num_classes).init(device)),
        ];
        AlexNet {
            features,
            avgpool,
            classifier,
        }
    }
}

/// AlexNet, laid out as torchvision's `features` / `avgpool` / `classifier`.
#[derive(Module, Debug)]
pub struct AlexNet {
    /// Convolutions, ReLUs, (LRN) and max pools.
    pub features: Vec<FeatureLayer>,
    /// torchvision's adaptive 6×6 average pool; absent in the fixed-size variants.
    pub avgpool: Option<AdaptiveAvgPool2d>,
    /// Dropout, FC 4096, ReLU, dropout, FC 4096, ReLU, FC classes.
    pub classifier: Vec<ClassifierLayer>,
}

impl Classifier for AlexNet {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        forward_features_seen(&self.features, x, seen)
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = match &self.avgpool {
            Some(pool) => pool.run(features),
            None => features,
        };
        forward_classifier(&self.classifier, trace::flatten(x))
    }

    fn num_classes(&self) -> usize {
        last_linear_outputs(&self.classifier)
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.classifier = replace_last_linear(self.classifier, num_classes, device);
        self
    }
}

/// The zoo's AlexNet entries: torchvision's single-tower network, the course's 227 × 227 one and
/// the paper's two-tower one with LRN.
pub(crate) const ENTRIES: &[FamilyEntry<AlexNet>] = &[
    entry("alexnet", IMAGENET_INPUT, |args, device| {
        build(AlexNetVariant::Torchvision, args, device)
    }),
    entry("alexnet-course", [3, 227, 227], |args, device| {
        build(AlexNetVariant::Course, args, device)
    }),
    entry("alexnet-paper", [3, 227, 227], |args, device| {
        build(AlexNetVariant::Paper, args, device)
    }),
];

const fn entry(
    name: &'static str,
    input: [usize; 3],
    build: fn(&ModelArgs, &Device) -> AlexNet,
) -> FamilyEntry<AlexNet> {
    FamilyEntry {
        name,
        paper: "Krizhevsky et al. 2012",
        input,
        num_classes: 1000,
        build,
    }
}

fn build(variant: AlexNetVariant, args: &ModelArgs, device: &Device) -> AlexNet {
    AlexNetConfig::new()
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .with_variant(variant)
        .with_input_size(args.input_size)
        .init(device)
}
