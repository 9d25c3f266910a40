//! tanh, the activation of LeNet-5 (LeCun et al. 1998), as one backend operation that is
//! vectorised on the CPU.
//!
//! Why: burn-flex 0.22.1 computes tanh one element at a time through libm's `tanhf`, and Burn's
//! autodiff computes it a second time in the backward pass: in a LeNet-5 step that took a large
//! share of the time for a small share of the arithmetic (measured in `docs/kernels.md`). Here
//! flex evaluates tanh with plain arithmetic that the compiler turns into SIMD lanes
//! ([`tanh_f32`], AVX-512 where the CPU has it) in parallel chunks, and the backward pass is one
//! pass over the forward output, `dy · (1 − y²)`. Every other backend runs Burn's own `tanh`,
//! untouched: with wgpu routed through the extension too (its default body, Burn's tanh), a
//! LeNet-5 training step on Mesa's software adapter stopped on wgpu's six-second GL context
//! lock, which it does not otherwise.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::ops::unary::unary_op;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, activation};
use rayon::prelude::*;

use crate::support::{Constant, f32_tensor, f32_values, on_flex, write_values};

/// `tanh(x)` elementwise: vectorised on flex, Burn's own `tanh` elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match on_flex(&x.device()) {
        true => Tensor::from_dispatch(Dispatch::zoo_tanh(x.into_dispatch())),
        false => activation::tanh(x),
    }
}

/// tanh as a backend operation (see the module documentation).
#[backend_extension(Flex, Autodiff)]
pub trait TanhOps: Backend {
    /// `tanh(x)` elementwise.
    fn zoo_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// tanh's backward pass: `output_grad · (1 − output²)`, from tanh's output.
    fn zoo_tanh_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Elements per parallel task: large enough to amortise a task, small enough that LeNet-5's
/// activations (6 × 28 × 28 per image) split over both cores.
const CHUNK: usize = 1 << 14;

impl TanhOps for Flex {
    fn zoo_tanh(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return unary_op(x, tanh_f32, f64::tanh);
        }
        let shape = x.shape();
        let values = f32_values(&x);
        f32_tensor(
            elementwise(&values, &values, |value, _| tanh_f32(value)),
            shape,
        )
    }

    fn zoo_tanh_backward(output: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        if output.dtype() != DType::F32 || output_grad.dtype() != DType::F32 {
            return slope_product::<Flex>(output, output_grad);
        }
        let shape = output.shape();
        let (output, output_grad) = (f32_values(&output), f32_values(&output_grad));
        f32_tensor(
            elementwise(&output, &output_grad, |y, dy| dy * (1.0 - y * y)),
            shape,
        )
    }
}

/// `output_grad · (1 − output²)` in Burn's operations, for the other float types.
fn slope_product<B: Backend>(
    output: FloatTensor<B>,
    output_grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let squared = B::float_mul(output.clone(), output);
    let slope = B::float_add_scalar(B::float_neg(squared), 1f32.into());
    B::float_mul(output_grad, slope)
}

/// `map(a[i], b[i])` for every `i`, in parallel chunks, each vectorised.
fn elementwise(a: &[f32], b: &[f32], map: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "elementwise operands of different sizes");
    let mut values = Vec::with_capacity(a.len());
    values.spare_capacity_mut()[..a.len()]
        .par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(slots, (a, b))| {
            write_values(slots, a.iter().zip(b).map(|(a, b)| map(*a, *b)));
        });
    // SAFETY: the chunks of `a` cover all `a.len()` slots, each written by `write_values`
    // (the iterator yields exactly as many values as its chunk has slots).
    unsafe { values.set_len(a.len()) };
    values
}

impl<B: TanhOps, C: CheckpointStrategy> TanhOps for Autodiff<B, C> {
    fn zoo_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        /// `d tanh(x) = (1 − tanh(x)²) dx`, from the forward pass's output.
        #[derive(Debug)]
        struct TanhGradient;

        impl<B: TanhOps> Backward<B, 1> for TanhGradient {
            type State = B::FloatTensorPrimitive;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let output = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::zoo_tanh_backward(output, grad)
                });
            }
        }

        match TanhGradient
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::zoo_tanh(x.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::zoo_tanh(x.into_primitive())),
        }
    }

    fn zoo_tanh_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Constant
            .prepare::<C>([output.node(), output_grad.node()])
            .compute_bound()
            .stateless(B::zoo_tanh_backward(
                output.into_primitive(),
                output_grad.into_primitive(),
            ))
    }
}

/// Below this magnitude tanh is its Taylor series (the `exp` form would lose bits to the
/// subtraction from 1); above it, `1 − 2 / (e^{2x} + 1)`, where the result is at least 0.5.
const SERIES_LIMIT: f32 = 0.55;

/// From here on `tanh(x)` rounds to 1 in f32 (`1 − tanh(10) ≈ 4·10⁻⁹`, far under half an ulp
/// below 1, `3·10⁻⁸`).
const SATURATION: f32 = 10.0;

/// tanh in f32 with no branches the compiler cannot turn into lane selects, so a loop over a
/// slice becomes SIMD code. Within 2 ulp of the correctly rounded value (tested against f64's
/// tanh); NaN stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let magnitude = x.abs();
    // Odd Taylor series to x¹⁵: the first omitted term is under 3·10⁻⁸ of tanh at the limit.
    let square = magnitude * magnitude;
    let series = magnitude
        * (1.0
            + square
                * (-1.0 / 3.0
                    + square
                        * (2.0 / 15.0
                            + square
                                * (-17.0 / 315.0
                                    + square
                                        * (62.0 / 2835.0
                                            + square
                                                * (-1382.0 / 155_925.0
                                                    + square
                                                        * (21_844.0 / 6_081_075.0
                                                            + square
                                                                * (-929_569.0
                                                                    / 638_512_875.0))))))));
    // `if` rather than `min` so that NaN passes through.
    let clamped = if magnitude > SATURATION {
        SATURATION
    } else {
        magnitude
    };
    let tail = 1.0 - 2.0 / (exp_f32(2.0 * clamped) + 1.0);
    let result = if magnitude < SERIES_LIMIT {
        series
    } else {
        tail
    };
    result.copysign(x)
}

/// `e^x` for `0 ≤ x ≤ 2·SATURATION`, branch-free: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (ln 2 split in two, the first part short enough that `n·LN2_HIGH` is exact: Cody and Waite
/// 1980), a degree-7 Taylor polynomial for `e^r` (error under 10⁻⁸), and `2ⁿ` written straight
/// into the exponent bits.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer in the addition itself and leaves that integer in the
    // low bits of the sum: no `round` or float-to-int conversion, which baseline x86-64 (SSE2)
    // has no vector instruction for.
    const ROUNDER: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (x - n * LN2_HIGH) - n * LN2_LOW;
    let polynomial = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // `shifted`'s bits are ROUNDER's plus n; a NaN x leaves garbage here, and the polynomial
    // carries the NaN.
    let biased_exponent = shifted
        .to_bits()
        .wrapping_sub(ROUNDER.to_bits())
        .wrapping_add(127);
    polynomial * f32::from_bits(biased_exponent << 23)
}
