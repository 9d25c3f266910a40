//! Mixed precision, as `torch.autocast` runs these layers: every layer computes in its input's
//! float type. Parameters stay `f32` (the master weights of Micikevicius et al. 2018, "Mixed
//! precision training") and are cast to the input's type per call, so their gradients come back
//! `f32` through the cast and the optimiser never sees a half-precision value. Batch
//! normalisation computes its statistics in `f32` and returns its input's type. With an `f32`
//! input every cast is a no-op and nothing changes.

use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;

/// `layer`'s weight and bias in `dtype`.
pub(crate) fn linear_params(layer: &Linear, dtype: DType) -> (Tensor<2>, Option<Tensor<1>>) {
    (
        layer.weight.val().cast(dtype),
        layer.bias.as_ref().map(|bias| bias.val().cast(dtype)),
    )
}

/// `normalize` applied to `input` in `f32`, its result cast back to `input`'s type.
pub(crate) fn in_f32<const D: usize>(
    input: Tensor<D>,
    normalize: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let dtype = input.dtype();
    normalize(input.cast(DType::F32)).cast(dtype)
}

/// `conv.forward(input)` as the zoo runs every convolution: in the input's float type, the
/// weights cast to it per call, and with the `kernels` feature computed as
/// [`crate::blocks::lowering`] chooses.
pub(crate) fn conv2d(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let dtype = input.dtype();
    let Some(padding) = explicit_padding(conv) else {
        // Burn works `Same` padding out inside `forward`; no zoo model uses it.
        return conv.forward(input.cast(conv.weight.dtype())).cast(dtype);
    };
    let weight = conv.weight.val().cast(dtype);
    let bias = conv.bias.as_ref().map(|bias| bias.val().cast(dtype));
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    #[cfg(feature = "kernels")]
    let output = crate::blocks::lowering::conv2d(input, weight, bias, options);
    #[cfg(not(feature = "kernels"))]
    let output = burn::tensor::module::conv2d(input, weight, bias, options);
    output
}

/// `conv`'s padding as (begin, end) pairs of rows and columns, unless it is `Same` (which
/// depends on the input's size).
pub(crate) fn explicit_padding(conv: &Conv2d) -> Option<[(usize, usize); 2]> {
    match conv.padding {
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Same => None,
    }
}
