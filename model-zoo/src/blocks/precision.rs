//! Mixed precision, as `torch.autocast` runs these layers: every layer computes in its input's
//! float type. Parameters stay `f32` (the master weights of Micikevicius et al. 2018, "Mixed
//! precision training") and are cast to the input's type per call, so their gradients come back
//! `f32` through the cast and the optimiser never sees a half-precision value. Batch
//! normalisation computes its statistics in `f32` and returns its input's type. With an `f32`
//! input every cast is a no-op and nothing changes.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

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
