//! How the zoo's convolutions are computed: by the backend's own convolution kernels, or lowered
//! to one matrix product over image patches ("im2col", Chellapilla et al. 2006; the lowering
//! behind cuDNN's GEMM algorithms).
//!
//! Why both: on Burn 0.22.1's GPU backends an f32 convolution wider than 1×1 has one kernel
//! that runs, a direct convolution (its implicit-GEMM rivals need tensor-core types and decline
//! for f32), and on an H100 it ran at about 1 TFLOP/s where Burn's f32 matrix product ran at
//! 40–55 TFLOP/s (`benches/RESULTS.md`). On the CPU the backends' own convolutions are already
//! GEMMs. The choice is process-wide, like PyTorch's `torch.backends.cudnn` switches; the
//! parameters, and so checkpoints, are the same either way.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::ops::PadMode;
use burn::tensor::s;
use serde::{Deserialize, Serialize};

/// How [`crate::Layer::run`] computes a `Conv2d`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvLowering {
    /// The backend's convolution (`Conv2d::forward`).
    #[default]
    Native,
    /// Patches gathered by strided slices, then one batched matrix product with the kernel
    /// (see [`conv2d_as_gemm`]). Costs the patch matrix in memory: `k²` times the input.
    Gemm,
}

impl ConvLowering {
    /// Every choice, as the command line names them.
    pub const ALL: [ConvLowering; 2] = [ConvLowering::Native, ConvLowering::Gemm];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ConvLowering::Native => "native",
            ConvLowering::Gemm => "gemm",
        }
    }
}

impl fmt::Display for ConvLowering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConvLowering {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|lowering| lowering.name() == name)
            .ok_or_else(|| {
                format!("unknown convolution lowering '{name}' (expected native or gemm)")
            })
    }
}

static LOWERING: AtomicU8 = AtomicU8::new(0);

/// Chooses how every zoo convolution in this process is computed from now on.
pub fn set_conv_lowering(lowering: ConvLowering) {
    LOWERING.store(lowering as u8, Ordering::Relaxed);
}

/// The lowering in force ([`ConvLowering::Native`] unless [`set_conv_lowering`] said otherwise).
pub fn conv_lowering() -> ConvLowering {
    match LOWERING.load(Ordering::Relaxed) {
        0 => ConvLowering::Native,
        _ => ConvLowering::Gemm,
    }
}

/// Runs `conv` the way [`conv_lowering`] says; convolutions the lowering does not cover
/// (grouped, dilated, `Same` padding) always take the backend's own kernel.
pub(crate) fn conv2d(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    if conv_lowering() == ConvLowering::Gemm && explicit_padding(conv).is_some() {
        conv2d_as_gemm(conv, input)
    } else {
        conv.forward(input)
    }
}

/// `((top, bottom), (left, right))` when `conv` is one [`conv2d_as_gemm`] covers.
fn explicit_padding(conv: &Conv2d) -> Option<((usize, usize), (usize, usize))> {
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return None;
    }
    match conv.padding {
        PaddingConfig2d::Valid => Some(((0, 0), (0, 0))),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some(((top, bottom), (left, right))),
        PaddingConfig2d::Same => None,
    }
}

/// `conv.forward(input)` as one matrix product: the input is zero-padded, each of the `kh·kw`
/// kernel offsets takes a strided slice of it (`[B, C, OH, OW]`), the slices stack into patches
/// `[B, C·kh·kw, OH·OW]` in the weight's `(c, i, j)` order, and the kernel `[O, C·kh·kw]`
/// multiplies them. Every step is an ordinary tensor op, so autodiff needs nothing new.
///
/// # Panics
/// If `conv` is grouped, dilated or uses `Same` padding; [`crate::Layer::run`] sends those to
/// `Conv2d::forward` instead.
pub fn conv2d_as_gemm(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let ((top, bottom), (left, right)) = explicit_padding(conv)
        .expect("conv2d_as_gemm covers ungrouped, undilated convolutions with explicit padding");
    let [batch, channels, height, width] = input.dims();
    let [out_channels, _, kernel_h, kernel_w] = conv.weight.dims();
    let [stride_h, stride_w] = conv.stride;
    let out_h = (height + top + bottom - kernel_h) / stride_h + 1;
    let out_w = (width + left + right - kernel_w) / stride_w + 1;
    let padded = if top + bottom + left + right > 0 {
        input.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
    } else {
        input
    };
    let patches: Tensor<4> = if kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 {
        padded.reshape([batch, channels, 1, out_h * out_w])
    } else {
        let offsets = (0..kernel_h)
            .flat_map(|i| (0..kernel_w).map(move |j| (i, j)))
            .map(|(i, j)| {
                padded
                    .clone()
                    .slice(s![
                        ..,
                        ..,
                        i..i + stride_h * (out_h - 1) + 1;stride_h,
                        j..j + stride_w * (out_w - 1) + 1;stride_w
                    ])
                    .reshape([batch, channels, out_h * out_w])
            })
            .collect();
        Tensor::stack(offsets, 2)
    };
    let patches: Tensor<3> =
        patches.reshape([batch, channels * kernel_h * kernel_w, out_h * out_w]);
    let kernel: Tensor<3> =
        conv.weight
            .val()
            .reshape([1, out_channels, channels * kernel_h * kernel_w]);
    let output = kernel.matmul(patches);
    let output = match &conv.bias {
        Some(bias) => output + bias.val().reshape([1, out_channels, 1]),
        None => output,
    };
    output.reshape([batch, out_channels, out_h, out_w])
}
