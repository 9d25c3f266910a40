//! Flex tensors as plain `f32` buffers, for the zoo's CPU kernels (convolution lowering, batch
//! normalisation).

use std::borrow::Cow;

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

/// The elements of `tensor` in row-major order (a copy only when it is not contiguous).
///
/// # Panics
/// If `tensor` is not `f32`; callers check its dtype first.
pub(crate) fn f32_values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => values.into(),
        None => tensor
            .to_contiguous()
            .as_slice::<f32>()
            .expect("an f32 tensor's contiguous copy has a slice")
            .to_vec()
            .into(),
    }
}

/// A contiguous `f32` flex tensor of `shape` holding `values`.
pub(crate) fn f32_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape.into()),
        DType::F32,
    )
}
