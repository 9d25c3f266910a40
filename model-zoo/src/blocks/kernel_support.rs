//! What the zoo's backend extensions share: flex tensors as plain `f32` buffers for the CPU
//! kernels (convolution lowering, batch normalisation, average pooling), and the backward pass
//! of their non-differentiable helper operations.

use std::borrow::Cow;

use burn::backend::Backend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
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

/// The backward pass of an extension's helper operations (statistics, the pieces of a backward
/// pass): none. They are differentiated only as part of the operation they serve, whose own
/// backward pass calls them on plain tensors, so gradients stop there, as at a `detach`.
#[derive(Debug)]
pub(crate) struct Constant;

impl<B: Backend, const N: usize> Backward<B, N> for Constant {
    type State = ();

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        grads.consume::<B>(&ops.node);
    }
}
