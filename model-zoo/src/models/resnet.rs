//! ResNets for ImageNet (He, Zhang, Ren, Sun 2016, "Deep residual learning for image
//! recognition", Table 1), equal to torchvision's: ResNet-18 has 11,689,512 parameters and
//! 1,814,073,344 MACs at 224×224, ResNet-50 25,557,032 and 4,089,184,256.
//! The plain twins (`residual = false`) drop every skip connection, projections included.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::blocks::residual::{BOTTLENECK_EXPANSION, ResidualBlock, ResidualBlockConfig};
use crate::blocks::{ShortcutKind, he_normal_conv};
use crate::models::{Classifier, FamilyEntry, IMAGENET_INPUT, ModelArgs};
use crate::trace::{self, Layer};

/// Blocks per stage for each depth (Table 1).
pub const BLOCKS_18: [usize; 4] = [2, 2, 2, 2];
/// ResNet-34.
pub const BLOCKS_34: [usize; 4] = [3, 4, 6, 3];
/// ResNet-50.
pub const BLOCKS_50: [usize; 4] = [3, 4, 6, 3];
/// ResNet-101.
pub const BLOCKS_101: [usize; 4] = [3, 4, 23, 3];
/// ResNet-152.
pub const BLOCKS_152: [usize; 4] = [3, 8, 36, 3];

/// Configuration of [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Blocks in conv2_x … conv5_x.
    pub blocks: [usize; 4],
    /// Bottleneck blocks (ResNet-50 and deeper) or basic blocks.
    pub bottleneck: bool,
    /// `false` builds the plain twin of §4.1.
    #[config(default = true)]
    pub residual: bool,
    /// Number of classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
}

impl ResNetConfig {
    /// The ResNet of the given depth (18, 34, 50, 101 or 152).
    pub fn depth(depth: usize) -> Self {
        match depth {
            18 => Self::new(BLOCKS_18, false),
            34 => Self::new(BLOCKS_34, false),
            50 => Self::new(BLOCKS_50, true),
            101 => Self::new(BLOCKS_101, true),
            152 => Self::new(BLOCKS_152, true),
            depth => panic!("ImageNet ResNets have 18, 34, 50, 101 or 152 layers, not {depth}"),
        }
    }

    fn expansion(&self) -> usize {
        if self.bottleneck {
            BOTTLENECK_EXPANSION
        } else {
            1
        }
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> ResNet {
        let mut in_channels = 64;
        let mut stage = |planes: usize, blocks: usize, stride: usize| {
            (0..blocks)
                .map(|index| {
                    let config = ResidualBlockConfig::new(in_channels, planes)
                        .with_stride(if index == 0 { stride } else { 1 })
                        .with_shortcut(ShortcutKind::Projection)
                        .with_residual(self.residual);
                    in_channels = planes * self.expansion();
                    if self.bottleneck {
                        ResidualBlock::Bottleneck(config.init_bottleneck(device))
                    } else {
                        ResidualBlock::Basic(config.init_basic(device))
                    }
                })
                .collect::<Vec<_>>()
        };
        let layer1 = stage(64, self.blocks[0], 1);
        let layer2 = stage(128, self.blocks[1], 2);
        let layer3 = stage(256, self.blocks[2], 2);
        let layer4 = stage(512, self.blocks[3], 2);
        ResNet {
            conv1: he_normal_conv([self.in_channels, 64], 7, 2, 3, false).init(device),
            bn1: BatchNormConfig::new(64).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(512 * self.expansion(), self.num_classes).init(device),
        }
    }
}

/// ResNet with torchvision's field names.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7×7/2 stem convolution.
    pub conv1: Conv2d,
    /// Batch norm after the stem.
    pub bn1: BatchNorm,
    /// 3×3/2 max pool.
    pub maxpool: MaxPool2d,
    /// conv2_x.
    pub layer1: Vec<ResidualBlock>,
    /// conv3_x.
    pub layer2: Vec<ResidualBlock>,
    /// conv4_x.
    pub layer3: Vec<ResidualBlock>,
    /// conv5_x.
    pub layer4: Vec<ResidualBlock>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// FC to the classes.
    pub fc: Linear,
}

impl Classifier for ResNet {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let x = trace::batch_norm_relu(&self.bn1, self.conv1.run(x));
        seen(&x);
        let x = self.maxpool.run(x);
        seen(&x);
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .fold(x, |x, block| {
                let x = block.forward(x);
                seen(&x);
                x
            })
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        self.fc.run(trace::flatten(self.avgpool.run(features)))
    }

    fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        let features = self.fc.weight.dims()[0];
        self.fc = LinearConfig::new(features, num_classes).init(device);
        self
    }
}

/// The zoo's ImageNet ResNets (torchvision's names) and their plain twins (no shortcuts), for
/// He et al.'s comparison.
#[rustfmt::skip]
pub(crate) const ENTRIES: &[FamilyEntry<ResNet>] = &[
    entry("resnet18", build::<18, true>), entry("resnet34", build::<34, true>),
    entry("resnet50", build::<50, true>), entry("resnet101", build::<101, true>),
    entry("resnet152", build::<152, true>),
    entry("plain-resnet18", build::<18, false>), entry("plain-resnet34", build::<34, false>),
    entry("plain-resnet50", build::<50, false>), entry("plain-resnet101", build::<101, false>),
    entry("plain-resnet152", build::<152, false>),
];

const fn entry(
    name: &'static str,
    build: fn(&ModelArgs, &Device) -> ResNet,
) -> FamilyEntry<ResNet> {
    FamilyEntry {
        name,
        paper: "He et al. 2016",
        input: IMAGENET_INPUT,
        num_classes: 1000,
        build,
    }
}

fn build<const DEPTH: usize, const RESIDUAL: bool>(args: &ModelArgs, device: &Device) -> ResNet {
    ResNetConfig::depth(DEPTH)
        .with_residual(RESIDUAL)
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .init(device)
}
