//! Which CPU kernel computes each pass of a convolution (flex, `f32`): [`super::direct`] (3×3
//! "same" convolutions on AVX-512), [`super::dense`] (maps with fewer pixels than kernel taps)
//! and [`super::winograd`] (3×3 "same" convolutions of 64 channels or more) where they apply,
//! in that order (the weight gradient asks dense, Winograd, then direct), and the patch-matrix
//! product of [`super::patches`] for every other convolution.

use super::shared::Geometry;
use super::{dense, direct, patches, winograd};

/// The convolution of `input` `[B, C, H, W]` by `weight` `[O, C, kh, kw]`: `[B, O, OH, OW]`.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    direct::forward(geometry, input, weight)
        .or_else(|| dense::forward(geometry, input, weight))
        .or_else(|| winograd::forward(geometry, input, weight))
        .unwrap_or_else(|| patches::forward(geometry, input, weight))
}

/// The gradient of the loss with respect to the convolution's input, given its gradient with
/// respect to the output.
pub(super) fn input_gradient(geometry: &Geometry, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
    direct::input_gradient(geometry, weight, output_grad)
        .or_else(|| dense::input_gradient(geometry, weight, output_grad))
        .or_else(|| winograd::input_gradient(geometry, weight, output_grad))
        .unwrap_or_else(|| patches::input_gradient(geometry, weight, output_grad))
}

/// The gradient of the loss with respect to the kernel, given the input and the output's
/// gradient.
pub(super) fn weight_gradient(geometry: &Geometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    dense::weight_gradient(geometry, input, output_grad)
        .or_else(|| winograd::weight_gradient(geometry, input, output_grad))
        .or_else(|| direct::weight_gradient(geometry, input, output_grad))
        .unwrap_or_else(|| patches::weight_gradient(geometry, input, output_grad))
}
