//! Residual blocks of He et al. 2016, "Deep Residual Learning for Image Recognition", with
//! torchvision's field names (`conv1`, `bn1`, …; the projection is torchvision's `downsample`).
//!
//! A block computes `a[l+2] = g(z[l+2] + a[l])`: the skip connection is the last step of
//! `forward`. A block without a shortcut is the "plain" twin of §4.1 and §4.2.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Identity};
use burn::prelude::*;
use burn::tensor::TensorCreationOptions;
use serde::{Deserialize, Serialize};

use crate::blocks::conv::he_normal_conv;
use crate::trace::{self, Layer};

/// How a block's shortcut matches shapes when the block changes resolution or width (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShortcutKind {
    /// Option A: subsample by the stride and zero-pad the new channels; no parameters.
    ZeroPad,
    /// Option B: a 1×1 convolution W_s and batch norm where shapes change.
    Projection,
}

/// Configuration of a residual block.
#[derive(Config, Debug)]
pub struct ResidualBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Width of the block's 3×3 convolution; the output has `planes × expansion` channels.
    pub planes: usize,
    /// Stride of the block (on the 3×3 convolution, as torchvision's "ResNet v1.5").
    #[config(default = 1)]
    pub stride: usize,
    /// Shortcut used where the shape changes.
    #[config(default = "ShortcutKind::Projection")]
    pub shortcut: ShortcutKind,
    /// `false` builds the plain twin: no skip connection and no projection at all.
    #[config(default = true)]
    pub residual: bool,
}

/// Channel expansion of the bottleneck block (1×1 reduce, 3×3, 1×1 expand ×4).
pub const BOTTLENECK_EXPANSION: usize = 4;

impl ResidualBlockConfig {
    fn shortcut(&self, out_channels: usize, device: &Device) -> Option<Shortcut> {
        if !self.residual {
            return None;
        }
        if self.stride == 1 && self.in_channels == out_channels {
            return Some(Shortcut::Identity(Identity::new()));
        }
        Some(match self.shortcut {
            ShortcutKind::ZeroPad => Shortcut::ZeroPad(ZeroPadShortcut {
                stride: self.stride,
                extra_channels: out_channels - self.in_channels,
            }),
            ShortcutKind::Projection => Shortcut::Projection(Projection {
                conv: he_normal_conv([self.in_channels, out_channels], 1, self.stride, 0, false)
                    .init(device),
                bn: BatchNormConfig::new(out_channels).init(device),
            }),
        })
    }

    /// Two 3×3 convolutions (ResNet-18/34 and the CIFAR ResNets).
    pub fn init_basic(&self, device: &Device) -> BasicBlock {
        let planes = self.planes;
        BasicBlock {
            conv1: he_normal_conv([self.in_channels, planes], 3, self.stride, 1, false)
                .init(device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: he_normal_conv([planes, planes], 3, 1, 1, false).init(device),
            bn2: BatchNormConfig::new(planes).init(device),
            shortcut: self.shortcut(planes, device),
        }
    }

    /// 1×1 reduce, 3×3, 1×1 expand (ResNet-50/101/152, figure 5 right).
    pub fn init_bottleneck(&self, device: &Device) -> Bottleneck {
        let planes = self.planes;
        let out_channels = planes * BOTTLENECK_EXPANSION;
        Bottleneck {
            conv1: he_normal_conv([self.in_channels, planes], 1, 1, 0, false).init(device),
            bn1: BatchNormConfig::new(planes).init(device),
            conv2: he_normal_conv([planes, planes], 3, self.stride, 1, false).init(device),
            bn2: BatchNormConfig::new(planes).init(device),
            conv3: he_normal_conv([planes, out_channels], 1, 1, 0, false).init(device),
            bn3: BatchNormConfig::new(out_channels).init(device),
            shortcut: self.shortcut(out_channels, device),
        }
    }
}

/// The path `a[l]` takes to the sum.
// Burn derives `Module` for enums of modules but not for boxes; a model holds a handful of
// these, built once, so the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Shortcut {
    /// Same shape: `a[l]` itself.
    Identity(Identity),
    /// Option A (§4.2): parameter-free subsampling and zero channels.
    ZeroPad(ZeroPadShortcut),
    /// Option B: `W_s a[l]` (§3.3, eq. 2).
    Projection(Projection),
}

impl Shortcut {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Identity(_) => x,
            Self::ZeroPad(zero_pad) => zero_pad.forward(x),
            Self::Projection(projection) => projection.forward(x),
        }
    }
}

/// Takes every `stride`-th pixel and appends zero channels: x[:, :, ::s, ::s] ⊕ 0.
#[derive(Module, Debug)]
pub struct ZeroPadShortcut {
    /// Spatial subsampling factor.
    pub stride: usize,
    /// Channels to add, split evenly before and after the existing ones.
    pub extra_channels: usize,
}

impl ZeroPadShortcut {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, height, width] = x.dims();
        let zeros = TensorCreationOptions::new(x.device()).with_dtype(x.dtype());
        let s = self.stride as isize;
        let x = x.slice(s![.., .., 0..;s, 0..;s]);
        let (height, width) = (height.div_ceil(self.stride), width.div_ceil(self.stride));
        let before = self.extra_channels / 2;
        let after = self.extra_channels - before;
        let mut parts = Vec::with_capacity(3);
        if before > 0 {
            parts.push(Tensor::zeros([batch, before, height, width], zeros.clone()));
        }
        parts.push(x);
        if after > 0 {
            parts.push(Tensor::zeros([batch, after, height, width], zeros));
        }
        Tensor::cat(parts, 1)
    }
}

/// 1×1 convolution and batch norm matching `a[l]` to `z[l+2]` (torchvision's `downsample`).
#[derive(Module, Debug)]
pub struct Projection {
    /// W_s.
    pub conv: Conv2d,
    /// Batch norm after W_s.
    pub bn: BatchNorm,
}

impl Projection {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.run(self.conv.run(x))
    }
}

/// `g(z + a)` with `z = norm(convolved)`, the block's last batch norm; `g(z)` in the plain
/// twin. The three steps are one on flex in training ([`trace::batch_norm_add_relu`]).
fn close_block(
    norm: &BatchNorm,
    convolved: Tensor<4>,
    a: Tensor<4>,
    shortcut: &Option<Shortcut>,
) -> Tensor<4> {
    match shortcut {
        Some(shortcut) => trace::batch_norm_add_relu(norm, convolved, || shortcut.forward(a)),
        None => trace::batch_norm_relu(norm, convolved),
    }
}

/// Two 3×3 convolutions with a skip connection around them (figure 2).
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 convolution (carries the stride).
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// Second 3×3 convolution.
    pub conv2: Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm,
    /// The skip connection; `None` in the plain twin.
    pub shortcut: Option<Shortcut>,
}

impl BasicBlock {
    /// `a[l+2] = g(z[l+2] + a[l])`.
    pub fn forward(&self, a: Tensor<4>) -> Tensor<4> {
        let x = trace::batch_norm_relu(&self.bn1, self.conv1.run(a.clone()));
        close_block(&self.bn2, self.conv2.run(x), a, &self.shortcut)
    }
}

/// 1×1 reduce, 3×3, 1×1 expand, with a skip connection around them (figure 5).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// 3×3 convolution (carries the stride).
    pub conv2: Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm,
    /// 1×1 expansion.
    pub conv3: Conv2d,
    /// Batch norm after `conv3`.
    pub bn3: BatchNorm,
    /// The skip connection; `None` in the plain twin.
    pub shortcut: Option<Shortcut>,
}

impl Bottleneck {
    /// `a[l+3] = g(z[l+3] + a[l])`.
    pub fn forward(&self, a: Tensor<4>) -> Tensor<4> {
        let x = trace::batch_norm_relu(&self.bn1, self.conv1.run(a.clone()));
        let x = trace::batch_norm_relu(&self.bn2, self.conv2.run(x));
        close_block(&self.bn3, self.conv3.run(x), a, &self.shortcut)
    }
}

/// Either residual block, so that a stage is a `Vec` indexed like torchvision's `layerN.i`.
// Burn derives `Module` for enums of modules but not for boxes; a model holds a handful of
// these, built once, so the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    /// Two 3×3 convolutions.
    Basic(BasicBlock),
    /// 1×1, 3×3, 1×1.
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(block) => block.forward(x),
            Self::Bottleneck(block) => block.forward(x),
        }
    }
}
