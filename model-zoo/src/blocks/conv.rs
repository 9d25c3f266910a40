//! Convolution units: a convolution, an optional batch norm, then ReLU.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::trace::{self, Layer};

/// A `k×k` convolution with He (Kaiming) normal initialisation over fan-out, as torchvision
/// initialises ResNet and VGG (He et al. 2015, "Delving deep into rectifiers").
pub fn he_normal_conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
) -> Conv2dConfig {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(bias)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
}

/// Configuration of a [`ConvUnit`].
#[derive(Config, Debug)]
pub struct ConvUnitConfig {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Square kernel size.
    pub kernel: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on every side.
    #[config(default = 0)]
    pub padding: usize,
    /// Batch norm after the convolution (the convolution then has no bias).
    #[config(default = true)]
    pub batch_norm: bool,
    /// Batch norm epsilon: torchvision's GoogLeNet uses 1e-3.
    #[config(default = 1e-5)]
    pub bn_epsilon: f64,
}

impl ConvUnitConfig {
    /// The chapter's 1×1 convolution ("network in network"): mixes channels at every position,
    /// e.g. shrinking 28×28×192 to 28×28×32 before an expensive convolution.
    pub fn pointwise(in_channels: usize, out_channels: usize) -> Self {
        Self::new([in_channels, out_channels], 1).with_batch_norm(false)
    }

    /// Builds the unit on `device`.
    pub fn init(&self, device: &Device) -> ConvUnit {
        let conv = he_normal_conv(
            self.channels,
            self.kernel,
            self.stride,
            self.padding,
            !self.batch_norm,
        )
        .init(device);
        let bn = self.batch_norm.then(|| {
            BatchNormConfig::new(self.channels[1])
                .with_epsilon(self.bn_epsilon)
                .init(device)
        });
        ConvUnit { conv, bn }
    }
}

/// conv → (batch norm) → ReLU; torchvision's `BasicConv2d` when batch norm is on.
#[derive(Module, Debug)]
pub struct ConvUnit {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch norm, absent in the pre-BatchNorm architectures (GoogLeNet 2014, NiN).
    pub bn: Option<BatchNorm>,
}

impl ConvUnit {
    /// Applies the unit.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.run(x);
        match &self.bn {
            Some(bn) => trace::batch_norm_relu(bn, x),
            None => relu(x),
        }
    }
}
