//! The CIFAR-10 ResNets of He et al. 2016, §4.2: a 3×3 convolution with 16 filters, three stages
//! of n basic blocks with 16, 32 and 64 filters on 32×32, 16×16 and 8×8 maps, global average
//! pooling and a 10-way FC — 6n+2 weight layers (20, 32, 44, 56, 110).
//!
//! Option A shortcuts (zero padding) add no parameters, so a plain twin under option A has
//! exactly the residual network's parameters: the paper's fair comparison of figure 6.
//! ResNet-20 has 269,722 parameters, ResNet-56 853,018.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::blocks::residual::{BasicBlock, ResidualBlockConfig};
use crate::blocks::{ShortcutKind, he_normal_conv};
use crate::models::{CIFAR_INPUT, Classifier, FamilyEntry, ModelArgs};
use crate::trace::{self, Layer};

/// Configuration of [`CifarResNet`].
#[derive(Config, Debug)]
pub struct CifarResNetConfig {
    /// Weight layers, 6n+2.
    pub depth: usize,
    /// Option A (zero padding, the paper's choice for CIFAR) or B (projection).
    #[config(default = "ShortcutKind::ZeroPad")]
    pub shortcut: ShortcutKind,
    /// `false` builds the plain twin.
    #[config(default = true)]
    pub residual: bool,
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
}

impl CifarResNetConfig {
    /// Blocks per stage: n = (depth - 2) / 6.
    pub fn blocks_per_stage(&self) -> usize {
        assert!(
            self.depth >= 8 && (self.depth - 2).is_multiple_of(6),
            "a CIFAR ResNet has 6n+2 layers (20, 32, 44, 56, 110, …), not {}",
            self.depth
        );
        (self.depth - 2) / 6
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> CifarResNet {
        let n = self.blocks_per_stage();
        let mut in_channels = 16;
        let mut stage = |planes: usize, stride: usize| {
            (0..n)
                .map(|index| {
                    let block = ResidualBlockConfig::new(in_channels, planes)
                        .with_stride(if index == 0 { stride } else { 1 })
                        .with_shortcut(self.shortcut)
                        .with_residual(self.residual)
                        .init_basic(device);
                    in_channels = planes;
                    block
                })
                .collect::<Vec<_>>()
        };
        let layer1 = stage(16, 1);
        let layer2 = stage(32, 2);
        let layer3 = stage(64, 2);
        CifarResNet {
            conv1: he_normal_conv([self.in_channels, 16], 3, 1, 1, false).init(device),
            bn1: BatchNormConfig::new(16).init(device),
            layer1,
            layer2,
            layer3,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(64, self.num_classes).init(device),
        }
    }
}

/// A CIFAR ResNet (or its plain twin).
#[derive(Module, Debug)]
pub struct CifarResNet {
    /// 3×3 convolution with 16 filters.
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// n blocks, 16 filters, 32×32.
    pub layer1: Vec<BasicBlock>,
    /// n blocks, 32 filters, 16×16.
    pub layer2: Vec<BasicBlock>,
    /// n blocks, 64 filters, 8×8.
    pub layer3: Vec<BasicBlock>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// FC to the classes.
    pub fc: Linear,
}

/// How [`CifarResNet::deepen`] initialises the blocks it appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendedBlock {
    /// Residual blocks whose convolutions are all zero: `z[l+2] = 0`, so `a[l+2] = g(a[l]) = a[l]`
    /// (`a[l]` is already a ReLU's output). The chapter's argument for ResNets: with weight decay
    /// pulling W and b towards zero, the identity is what a residual block learns most easily.
    ZeroResidual,
    /// Residual blocks initialised as usual (He normal).
    Residual,
    /// Plain blocks (no shortcut) initialised as usual: nothing makes them the identity.
    Plain,
}

impl CifarResNet {
    /// Appends `count` blocks of 64 filters to the last stage (8×8 maps), e.g. to study what
    /// extra depth does to a trained network.
    pub fn deepen(mut self, count: usize, kind: AppendedBlock, device: &Device) -> Self {
        for _ in 0..count {
            let block = ResidualBlockConfig::new(64, 64)
                .with_residual(kind != AppendedBlock::Plain)
                .init_basic(device);
            let block = if kind == AppendedBlock::ZeroResidual {
                BasicBlock {
                    conv1: zeroed(block.conv1),
                    conv2: zeroed(block.conv2),
                    ..block
                }
            } else {
                block
            };
            self.layer3.push(block);
        }
        self
    }
}

fn zeroed(mut conv: Conv2d) -> Conv2d {
    conv.weight = conv.weight.map(|weight| weight.zeros_like());
    conv
}

impl Classifier for CifarResNet {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let x = trace::batch_norm_relu(&self.bn1, self.conv1.run(x));
        seen(&x);
        [&self.layer1, &self.layer2, &self.layer3]
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
        self.fc = LinearConfig::new(64, num_classes).init(device);
        self
    }
}

/// The zoo's CIFAR ResNets (6n + 2 layers, He et al. §4.2) and their plain twins.
#[rustfmt::skip]
pub(crate) const ENTRIES: &[FamilyEntry<CifarResNet>] = &[
    entry("cifar-resnet20", build::<20, true>), entry("cifar-resnet32", build::<32, true>),
    entry("cifar-resnet44", build::<44, true>), entry("cifar-resnet56", build::<56, true>),
    entry("cifar-resnet110", build::<110, true>),
    entry("plain-cifar-resnet20", build::<20, false>), entry("plain-cifar-resnet32", build::<32, false>),
    entry("plain-cifar-resnet44", build::<44, false>), entry("plain-cifar-resnet56", build::<56, false>),
    entry("plain-cifar-resnet110", build::<110, false>),
];

const fn entry(
    name: &'static str,
    build: fn(&ModelArgs, &Device) -> CifarResNet,
) -> FamilyEntry<CifarResNet> {
    FamilyEntry {
        name,
        paper: "He et al. 2016",
        input: CIFAR_INPUT,
        num_classes: 10,
        build,
    }
}

fn build<const DEPTH: usize, const RESIDUAL: bool>(
    args: &ModelArgs,
    device: &Device,
) -> CifarResNet {
    CifarResNetConfig::new(DEPTH)
        .with_shortcut(args.shortcut)
        .with_residual(RESIDUAL)
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .init(device)
}
