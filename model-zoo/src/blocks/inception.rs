//! The Inception module of Szegedy et al. 2014, "Going deeper with convolutions" (figure 2), in
//! its naive form and with 1×1 bottlenecks, and GoogLeNet's auxiliary classifier. Field names
//! follow torchvision's `Inception` (`branch1` … `branch4`).

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::blocks::conv::{ConvUnit, ConvUnitConfig, he_normal_conv};
use crate::trace::{self, Layer};

/// A 3×3 stride-1 "same" max pool: the pooling branch keeps the spatial size.
fn same_max_pool(ceil_mode: bool) -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_ceil_mode(ceil_mode)
        .init()
}

/// Configuration of the naive module (figure 2a): 1×1, 3×3 and 5×5 "same" convolutions and a
/// 3×3 max pool side by side, concatenated along channels.
#[derive(Config, Debug)]
pub struct NaiveInceptionConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the 1×1 branch.
    pub ch1x1: usize,
    /// Output channels of the 3×3 branch.
    pub ch3x3: usize,
    /// Output channels of the 5×5 branch.
    pub ch5x5: usize,
}

impl NaiveInceptionConfig {
    /// Builds the module; it outputs `ch1x1 + ch3x3 + ch5x5 + in_channels` channels, since the
    /// pooling branch keeps every input channel.
    pub fn init(&self, device: &Device) -> NaiveInception {
        let conv = |out: usize, kernel: usize| {
            he_normal_conv([self.in_channels, out], kernel, 1, kernel / 2, true).init(device)
        };
        NaiveInception {
            branch1: conv(self.ch1x1, 1),
            branch2: conv(self.ch3x3, 3),
            branch3: conv(self.ch5x5, 5),
            branch4: same_max_pool(false),
        }
    }
}

/// Figure 2a: every filter size at once, and let training pick.
#[derive(Module, Debug)]
pub struct NaiveInception {
    /// 1×1 convolution.
    pub branch1: Conv2d,
    /// 3×3 "same" convolution.
    pub branch2: Conv2d,
    /// 5×5 "same" convolution.
    pub branch3: Conv2d,
    /// 3×3 stride-1 "same" max pool.
    pub branch4: MaxPool2d,
}

impl NaiveInception {
    /// Concatenates the four branches along channels.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branch1 = relu(self.branch1.run(x.clone()));
        let branch2 = relu(self.branch2.run(x.clone()));
        let branch3 = relu(self.branch3.run(x.clone()));
        let branch4 = self.branch4.run(x);
        trace::concat(vec![branch1, branch2, branch3, branch4])
    }
}

/// Configuration of the module with dimension reductions (figure 2b), named as torchvision's.
#[derive(Config, Debug)]
pub struct InceptionConfig {
    /// Input channels.
    pub in_channels: usize,
    /// 1×1 branch.
    pub ch1x1: usize,
    /// 1×1 bottleneck before the 3×3.
    pub ch3x3red: usize,
    /// 3×3 branch.
    pub ch3x3: usize,
    /// 1×1 bottleneck before the "5×5".
    pub ch5x5red: usize,
    /// "5×5" branch.
    pub ch5x5: usize,
    /// 1×1 projection after the pool.
    pub pool_proj: usize,
    /// Kernel of the "5×5" branch: 5 in the paper; torchvision's GoogLeNet uses 3 (a known
    /// deviation kept for weight compatibility).
    #[config(default = 5)]
    pub kernel_5x5: usize,
    /// Batch norm after each convolution (torchvision) or none (the 2014 paper).
    #[config(default = true)]
    pub batch_norm: bool,
    /// Batch norm epsilon (torchvision: 1e-3).
    #[config(default = 1e-3)]
    pub bn_epsilon: f64,
    /// Ceil-mode pooling in the pool branch (torchvision's choice; no effect on the shape).
    #[config(default = true)]
    pub ceil_mode: bool,
}

impl InceptionConfig {
    /// Output channels: the four branches concatenated.
    pub fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }

    fn unit(&self, channels: [usize; 2], kernel: usize, device: &Device) -> ConvUnit {
        ConvUnitConfig::new(channels, kernel)
            .with_padding(kernel / 2)
            .with_batch_norm(self.batch_norm)
            .with_bn_epsilon(self.bn_epsilon)
            .init(device)
    }

    /// Builds the module.
    pub fn init(&self, device: &Device) -> Inception {
        let c = self.in_channels;
        Inception {
            branch1: self.unit([c, self.ch1x1], 1, device),
            branch2: vec![
                self.unit([c, self.ch3x3red], 1, device),
                self.unit([self.ch3x3red, self.ch3x3], 3, device),
            ],
            branch3: vec![
                self.unit([c, self.ch5x5red], 1, device),
                self.unit([self.ch5x5red, self.ch5x5], self.kernel_5x5, device),
            ],
            branch4: PoolProjection {
                pool: same_max_pool(self.ceil_mode),
                proj: self.unit([c, self.pool_proj], 1, device),
            },
        }
    }
}

/// Figure 2b: 1×1 bottlenecks before the 3×3 and 5×5 convolutions and after the pool.
#[derive(Module, Debug)]
pub struct Inception {
    /// 1×1.
    pub branch1: ConvUnit,
    /// 1×1 bottleneck, then 3×3.
    pub branch2: Vec<ConvUnit>,
    /// 1×1 bottleneck, then "5×5".
    pub branch3: Vec<ConvUnit>,
    /// 3×3 max pool, then 1×1 projection.
    pub branch4: PoolProjection,
}

/// The pooling branch: pooling keeps every channel, so a 1×1 projection shrinks them.
#[derive(Module, Debug)]
pub struct PoolProjection {
    /// 3×3 stride-1 max pool.
    pub pool: MaxPool2d,
    /// 1×1 projection.
    pub proj: ConvUnit,
}

impl Inception {
    /// Concatenates the four branches along channels.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branch1 = self.branch1.forward(x.clone());
        let branch2 = self
            .branch2
            .iter()
            .fold(x.clone(), |x, unit| unit.forward(x));
        let branch3 = self
            .branch3
            .iter()
            .fold(x.clone(), |x, unit| unit.forward(x));
        let branch4 = self.branch4.proj.forward(self.branch4.pool.run(x));
        trace::concat(vec![branch1, branch2, branch3, branch4])
    }
}

/// Configuration of GoogLeNet's auxiliary classifier (§5: average pool to 4×4, 1×1 conv with
/// 128 filters, FC 1024, dropout 70 %, FC to the classes).
#[derive(Config, Debug)]
pub struct InceptionAuxConfig {
    /// Channels of the Inception output it reads (512 after 4a, 528 after 4d).
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Batch norm in the 1×1 unit (torchvision) or none (the paper).
    #[config(default = true)]
    pub batch_norm: bool,
    /// Dropout before the last FC (0.7 in the paper and torchvision).
    #[config(default = 0.7)]
    pub dropout: f64,
}

impl InceptionAuxConfig {
    /// Builds the head.
    pub fn init(&self, device: &Device) -> InceptionAux {
        InceptionAux {
            pool: AdaptiveAvgPool2dConfig::new([4, 4]).init(),
            conv: ConvUnitConfig::new([self.in_channels, 128], 1)
                .with_batch_norm(self.batch_norm)
                .with_bn_epsilon(1e-3)
                .init(device),
            fc1: LinearConfig::new(128 * 4 * 4, 1024).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc2: LinearConfig::new(1024, self.num_classes).init(device),
        }
    }
}

/// An auxiliary classifier on an intermediate Inception output; its loss is added with weight
/// 0.3 during training and it is dropped at inference (§5).
#[derive(Module, Debug)]
pub struct InceptionAux {
    /// Average pool to 4×4 (5×5 stride 3 on a 14×14 map in the paper).
    pub pool: AdaptiveAvgPool2d,
    /// 1×1 convolution with 128 filters.
    pub conv: ConvUnit,
    /// FC 2048 → 1024.
    pub fc1: Linear,
    /// Dropout before `fc2`.
    pub dropout: Dropout,
    /// FC 1024 → classes.
    pub fc2: Linear,
}

impl InceptionAux {
    /// Logits of the auxiliary head.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.conv.forward(self.pool.run(x));
        let x = relu(self.fc1.run(trace::flatten(x)));
        self.fc2.run(self.dropout.run(x))
    }

    /// The same head for `num_classes` classes, keeping the trunk of the head.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc2 = LinearConfig::new(1024, num_classes).init(device);
        self
    }
}
