//! Network in Network's mlpconv layer (Lin, Chen, Yan 2014, §3.1): a k×k convolution followed by
//! two 1×1 convolutions, each with ReLU — a small MLP slid over every position.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::blocks::conv::he_normal_conv;
use crate::trace::Layer;

/// Configuration of an [`MlpConv`].
#[derive(Config, Debug)]
pub struct MlpConvConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the k×k convolution and of the two 1×1 convolutions.
    pub channels: [usize; 3],
    /// Kernel of the first convolution.
    pub kernel: usize,
    /// Stride of the first convolution.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding of the first convolution.
    #[config(default = 0)]
    pub padding: usize,
}

impl MlpConvConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> MlpConv {
        let [c1, c2, c3] = self.channels;
        MlpConv {
            conv: he_normal_conv(
                [self.in_channels, c1],
                self.kernel,
                self.stride,
                self.padding,
                true,
            )
            .init(device),
            cccp1: he_normal_conv([c1, c2], 1, 1, 0, true).init(device),
            cccp2: he_normal_conv([c2, c3], 1, 1, 0, true).init(device),
        }
    }
}

/// k×k conv → ReLU → 1×1 → ReLU → 1×1 → ReLU (the 1×1 layers keep Caffe's `cccp` names).
#[derive(Module, Debug)]
pub struct MlpConv {
    /// The k×k convolution.
    pub conv: Conv2d,
    /// First 1×1 convolution.
    pub cccp1: Conv2d,
    /// Second 1×1 convolution.
    pub cccp2: Conv2d,
}

impl MlpConv {
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_output(self.forward_hidden(x))
    }

    /// The k×k convolution and the first 1×1, each with ReLU.
    pub fn forward_hidden(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv.run(x));
        relu(self.cccp1.run(x))
    }

    /// The last 1×1 convolution with ReLU, from [`MlpConv::forward_hidden`]'s output.
    pub fn forward_output(&self, hidden: Tensor<4>) -> Tensor<4> {
        relu(self.cccp2.run(hidden))
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.cccp2.weight.dims()[0]
    }

    /// The block with its last 1×1 convolution replaced to give `channels` outputs (NiN's last
    /// mlpconv emits one map per class).
    pub fn with_out_channels(mut self, channels: usize, device: &Device) -> Self {
        let c2 = self.cccp1.weight.dims()[0];
        self.cccp2 = he_normal_conv([c2, channels], 1, 1, 0, true).init(device);
        self
    }
}
