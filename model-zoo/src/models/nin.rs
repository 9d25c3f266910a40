//! Network in Network (Lin, Chen, Yan 2014): mlpconv blocks — a k×k convolution then two 1×1
//! convolutions — and global average pooling of one map per class instead of FC layers.
//!
//! - [`Nin`]: the ImageNet model (Caffe model zoo, as in d2l): 96-96-96 (11×11/4), 256-256-256
//!   (5×5, pad 2), 384-384-384 (3×3, pad 1), 1024-1024-classes (3×3, pad 1) with 3×3/2 max pools
//!   between them, 224→54→26→12→5.
//! - [`NinCifar`]: the paper's CIFAR-10 network, 192-160-96 (5×5), 192-192-192 (5×5),
//!   192-192-classes (3×3) with a max pool and an average pool of 3×3/2 (Caffe's ceil mode,
//!   32→16→8) and dropout between them.
//!
//! The head is the last 1×1 convolution, its ReLU and the global average pool: the class maps
//! are averaged into logits.

use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use crate::blocks::{MlpConv, MlpConvConfig};
use crate::models::{CIFAR_INPUT, Classifier, FamilyEntry, IMAGENET_INPUT};
use crate::trace::{self, Layer};

fn pool_3x3_s2(ceil_mode: bool) -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_ceil_mode(ceil_mode)
        .init()
}

/// Configuration of [`Nin`].
#[derive(Config, Debug)]
pub struct NinConfig {
    /// Number of classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Dropout before the last mlpconv.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl NinConfig {
    /// Builds the network.
    pub fn init(&self, device: &Device) -> Nin {
        Nin {
            block1: MlpConvConfig::new(self.in_channels, [96, 96, 96], 11)
                .with_stride(4)
                .init(device),
            pool1: pool_3x3_s2(false),
            block2: MlpConvConfig::new(96, [256, 256, 256], 5)
                .with_padding(2)
                .init(device),
            pool2: pool_3x3_s2(false),
            block3: MlpConvConfig::new(256, [384, 384, 384], 3)
                .with_padding(1)
                .init(device),
            pool3: pool_3x3_s2(false),
            dropout: DropoutConfig::new(self.dropout).init(),
            block4: MlpConvConfig::new(384, [1024, 1024, self.num_classes], 3)
                .with_padding(1)
                .init(device),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

/// Network in Network for ImageNet.
#[derive(Module, Debug)]
pub struct Nin {
    /// 96-96-96, 11×11/4.
    pub block1: MlpConv,
    /// 3×3/2 max pool.
    pub pool1: MaxPool2d,
    /// 256-256-256, 5×5.
    pub block2: MlpConv,
    /// 3×3/2 max pool.
    pub pool2: MaxPool2d,
    /// 384-384-384, 3×3.
    pub block3: MlpConv,
    /// 3×3/2 max pool.
    pub pool3: MaxPool2d,
    /// Dropout before the last block.
    pub dropout: Dropout,
    /// 1024-1024-classes, 3×3.
    pub block4: MlpConv,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
}

impl Classifier for Nin {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let mut x = x;
        for (block, pool) in [
            (&self.block1, &self.pool1),
            (&self.block2, &self.pool2),
            (&self.block3, &self.pool3),
        ] {
            x = block.forward(x);
            seen(&x);
            x = pool.run(x);
            seen(&x);
        }
        self.block4.forward_hidden(self.dropout.run(x))
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        trace::flatten(self.avgpool.run(self.block4.forward_output(features)))
    }

    fn num_classes(&self) -> usize {
        self.block4.out_channels()
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.block4 = self.block4.with_out_channels(num_classes, device);
        self
    }
}

/// Configuration of [`NinCifar`].
#[derive(Config, Debug)]
pub struct NinCifarConfig {
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Dropout after the two pools (§4.1).
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl NinCifarConfig {
    /// Builds the network.
    pub fn init(&self, device: &Device) -> NinCifar {
        NinCifar {
            block1: MlpConvConfig::new(self.in_channels, [192, 160, 96], 5)
                .with_padding(2)
                .init(device),
            pool1: pool_3x3_s2(true),
            dropout1: DropoutConfig::new(self.dropout).init(),
            block2: MlpConvConfig::new(96, [192, 192, 192], 5)
                .with_padding(2)
                .init(device),
            pool2: AvgPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_ceil_mode(true)
                .init(),
            dropout2: DropoutConfig::new(self.dropout).init(),
            block3: MlpConvConfig::new(192, [192, 192, self.num_classes], 3)
                .with_padding(1)
                .init(device),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }
}

/// Network in Network for CIFAR-10.
#[derive(Module, Debug)]
pub struct NinCifar {
    /// 192-160-96, 5×5.
    pub block1: MlpConv,
    /// 3×3/2 max pool, 32→16.
    pub pool1: MaxPool2d,
    /// Dropout after `pool1`.
    pub dropout1: Dropout,
    /// 192-192-192, 5×5.
    pub block2: MlpConv,
    /// 3×3/2 average pool, 16→8.
    pub pool2: AvgPool2d,
    /// Dropout after `pool2`.
    pub dropout2: Dropout,
    /// 192-192-classes, 3×3.
    pub block3: MlpConv,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
}

impl Classifier for NinCifar {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let x = self.block1.forward(x);
        seen(&x);
        let x = self.pool1.run(x);
        seen(&x);
        let x = self.block2.forward(self.dropout1.run(x));
        seen(&x);
        let x = self.pool2.run(x);
        seen(&x);
        self.block3.forward_hidden(self.dropout2.run(x))
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        trace::flatten(self.avgpool.run(self.block3.forward_output(features)))
    }

    fn num_classes(&self) -> usize {
        self.block3.out_channels()
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.block3 = self.block3.with_out_channels(num_classes, device);
        self
    }
}

/// The zoo's ImageNet Network in Network.
pub(crate) const ENTRIES: &[FamilyEntry<Nin>] = &[FamilyEntry {
    name: "nin",
    paper: PAPER,
    input: IMAGENET_INPUT,
    num_classes: 1000,
    build: |args, device| {
        NinConfig::new()
            .with_num_classes(args.num_classes)
            .with_in_channels(args.in_channels)
            .init(device)
    },
}];

/// The paper's CIFAR-10 Network in Network.
pub(crate) const CIFAR_ENTRIES: &[FamilyEntry<NinCifar>] = &[FamilyEntry {
    name: "nin-cifar",
    paper: PAPER,
    input: CIFAR_INPUT,
    num_classes: 10,
    build: |args, device| {
        NinCifarConfig::new()
            .with_num_classes(args.num_classes)
            .with_in_channels(args.in_channels)
            .init(device)
    },
}];

const PAPER: &str = "Lin et al. 2014";
