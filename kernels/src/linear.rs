//! Fully connected layers on flex: their matrix products, forward and backward, written by
//! `gemm` straight into the output buffers.
//!
//! Why: burn-flex 0.22.1 creates each product's output as a zeroed byte vector and then copies
//! it into a second, aligned allocation (`Bytes::from_bytes_vec` takes any byte vector for
//! unaligned), so every product pays two fresh allocations, their page faults and a copy, which
//! for VGG-16's 411 MB classifier weight gradient is a share of the step worth removing
//! (measured in `docs/kernels.md`). Other backends keep Burn's `Linear::forward`.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use gemm::Parallelism;

use crate::support::{Matrix, f32_tensor, f32_values, matmul, on_flex};

/// `input · weight + bias` for a `[features in, features out]` weight (a `Linear` layer's own,
/// or the folded one of VGG's pooled first classifier layer): on flex in `f32` by
/// [`MatmulOps`], then the bias added by Burn; Burn's `linear` otherwise.
pub fn linear(input: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    if !(on_flex(&input.device()) && input.dtype() == DType::F32 && weight.dtype() == DType::F32) {
        return burn::tensor::module::linear(input, weight, bias);
    }
    let product = Tensor::from_dispatch(Dispatch::zoo_matmul(
        input.into_dispatch(),
        weight.into_dispatch(),
        false,
        false,
    ));
    match bias {
        Some(bias) => product + bias.unsqueeze_dim(0),
        None => product,
    }
}

/// The product of two matrices, each taken as it is or transposed.
#[backend_extension(Flex, Autodiff)]
pub trait MatmulOps: Backend {
    /// `op(lhs) · op(rhs)`, `op` transposing where asked: `[m, k] · [k, n]` → `[m, n]`.
    fn zoo_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        transpose_lhs: bool,
        transpose_rhs: bool,
    ) -> FloatTensor<Self>;
}

/// `tensor`'s values as a `[rows, columns]` matrix of `op(tensor)`, and those sizes.
fn operand(
    values: &[f32],
    [rows, columns]: [usize; 2],
    transpose: bool,
) -> (Matrix<'_>, [usize; 2]) {
    let matrix = Matrix::row_major(values, columns);
    match transpose {
        true => (matrix.transposed(), [columns, rows]),
        false => (matrix, [rows, columns]),
    }
}

impl MatmulOps for Flex {
    fn zoo_matmul(
        lhs: FlexTensor,
        rhs: FlexTensor,
        transpose_lhs: bool,
        transpose_rhs: bool,
    ) -> FlexTensor {
        let (lhs_values, rhs_values) = (f32_values(&lhs), f32_values(&rhs));
        let (lhs, [m, k]) = operand(&lhs_values, lhs.shape().dims(), transpose_lhs);
        let (rhs, [depth, n]) = operand(&rhs_values, rhs.shape().dims(), transpose_rhs);
        assert_eq!(k, depth, "matrix product of [{m}, {k}] and [{depth}, {n}]");
        let mut product = vec![0.0; m * n];
        matmul(
            &mut product,
            n,
            false,
            [m, n, k],
            lhs,
            rhs,
            Parallelism::Rayon(0),
        );
        f32_tensor(product, [m, n])
    }
}

impl<B: MatmulOps, C: CheckpointStrategy> MatmulOps for Autodiff<B, C> {
    fn zoo_matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        transpose_lhs: bool,
        transpose_rhs: bool,
    ) -> FloatTensor<Self> {
        /// The factors' gradients, from the saved factors and how each was taken.
        #[derive(Debug)]
        struct MatmulGradients;

        impl<B: MatmulOps> Backward<B, 2> for MatmulGradients {
            type State = (FloatTensor<B>, FloatTensor<B>, bool, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_lhs, node_rhs] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (lhs, rhs, transpose_lhs, transpose_rhs) = ops.state;
                // C = op(A)·op(B): dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC, each transposed
                // back where the factor was taken transposed.
                if let Some(node) = node_lhs {
                    let lhs_grad = match transpose_lhs {
                        false => B::zoo_matmul(grad.clone(), rhs.clone(), false, !transpose_rhs),
                        true => B::zoo_matmul(rhs.clone(), grad.clone(), transpose_rhs, true),
                    };
                    grads.register::<B>(node.id, lhs_grad);
                }
                if let Some(node) = node_rhs {
                    let rhs_grad = match transpose_rhs {
                        false => B::zoo_matmul(lhs, grad, !transpose_lhs, false),
                        true => B::zoo_matmul(grad, lhs, true, transpose_lhs),
                    };
                    grads.register::<B>(node.id, rhs_grad);
                }
            }
        }

        let parents = [lhs.node(), rhs.node()];
        let [lhs, rhs] = [lhs, rhs].map(|tensor| tensor.into_primitive());
        let product = B::zoo_matmul(lhs.clone(), rhs.clone(), transpose_lhs, transpose_rhs);
        match MatmulGradients
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((lhs, rhs, transpose_lhs, transpose_rhs), product)
            }
            OpsKind::UnTracked(prep) => prep.finish(product),
        }
    }
}
