//! Average pooling without padding and max pooling on flex, forward and backward, as row loops
//! over contiguous `f32` planes.
//!
//! Why: burn-flex 0.22.1 pools through a 3-D kernel that works out each output element's
//! window with divisions, a large share of LeNet-5's step (its subsampling layers are 2×2
//! average pools) and of ResNet-18's for its one 3×3/2 pool after the stem (measured in
//! `docs/kernels.md`). Here each kernel tap's window along each axis is worked out once
//! per call. Without padding every average-pool window lies inside the input, so the divisor is
//! always `kh·kw` and both passes are a few strided row sums. Padded average pools, asymmetric
//! max-pool padding and other backends keep Burn's modules.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use crate::support::{Constant, TapWindow, f32_tensor, f32_values, on_flex, tap_windows};

/// `pool.forward(input)`, computed by [`AvgPoolOps`] on flex in `f32` when the pool has no
/// padding and its output size does not depend on `ceil_mode` (every window then lies inside the
/// input).
pub fn avg_pool2d(pool: &AvgPool2d, input: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = input.dims();
    let unpadded = match pool.padding {
        PaddingConfig2d::Valid => true,
        PaddingConfig2d::Explicit(top, left, bottom, right) => top + left + bottom + right == 0,
        PaddingConfig2d::Same => false,
    };
    let windows_fit = [height, width]
        .iter()
        .zip(pool.kernel_size.iter().zip(&pool.stride))
        .all(|(&size, (&kernel, &stride))| {
            size >= kernel && (!pool.ceil_mode || (size - kernel) % stride == 0)
        });
    if !(on_flex(&input.device()) && unpadded && windows_fit && input.dtype() == DType::F32) {
        return pool.forward(input);
    }
    Tensor::from_dispatch(Dispatch::zoo_avg_pool2d(
        input.into_dispatch(),
        pool.kernel_size,
        pool.stride,
    ))
}

/// Average pooling of `x` `[B, C, H, W]` over `kernel` windows every `stride`, without padding,
/// and its gradient.
#[backend_extension(Flex, Autodiff)]
pub trait AvgPoolOps: Backend {
    /// `[B, C, (H − kh) / sh + 1, (W − kw) / sw + 1]`: each window's mean.
    fn zoo_avg_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;

    /// The gradient with respect to `x` (whose shape is all this reads of it), given the
    /// gradient with respect to the output: each output's gradient over `kh·kw`, added to every
    /// input of its window.
    fn zoo_avg_pool2d_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// The pooled size of `[height, width]`.
fn pooled([height, width]: [usize; 2], kernel: [usize; 2], stride: [usize; 2]) -> [usize; 2] {
    [
        (height - kernel[0]) / stride[0] + 1,
        (width - kernel[1]) / stride[1] + 1,
    ]
}

impl AvgPoolOps for Flex {
    fn zoo_avg_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2]) -> FlexTensor {
        let [batch, channels, height, width] = x.shape().dims();
        let [out_h, out_w] = pooled([height, width], kernel, stride);
        let scale = 1.0 / (kernel[0] * kernel[1]) as f32;
        let input = f32_values(&x);
        let mut output = vec![0.0f32; batch * channels * out_h * out_w];
        output
            .par_chunks_mut((out_h * out_w).max(1))
            .zip(input.par_chunks((height * width).max(1)))
            .for_each(|(output, input)| {
                for (out_row, output) in output.chunks_mut(out_w.max(1)).enumerate() {
                    for i in 0..kernel[0] {
                        let row = &input[(out_row * stride[0] + i) * width..][..width];
                        for j in 0..kernel[1] {
                            let taps = row[j..].iter().step_by(stride[1]);
                            output.iter_mut().zip(taps).for_each(|(sum, x)| *sum += *x);
                        }
                    }
                    output.iter_mut().for_each(|sum| *sum *= scale);
                }
            });
        f32_tensor(output, [batch, channels, out_h, out_w])
    }

    fn zoo_avg_pool2d_backward(
        x: FlexTensor,
        output_grad: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FlexTensor {
        let [batch, channels, height, width] = x.shape().dims();
        let [out_h, out_w] = pooled([height, width], kernel, stride);
        let scale = 1.0 / (kernel[0] * kernel[1]) as f32;
        let output_grad = f32_values(&output_grad);
        let mut input_grad = vec![0.0f32; batch * channels * height * width];
        input_grad
            .par_chunks_mut((height * width).max(1))
            .zip(output_grad.par_chunks((out_h * out_w).max(1)))
            .for_each(|(input_grad, output_grad)| {
                for (out_row, output_grad) in output_grad.chunks(out_w.max(1)).enumerate() {
                    for i in 0..kernel[0] {
                        let row = &mut input_grad[(out_row * stride[0] + i) * width..][..width];
                        for j in 0..kernel[1] {
                            let taps = row[j..].iter_mut().step_by(stride[1]);
                            taps.zip(output_grad).for_each(|(x, dy)| *x += *dy * scale);
                        }
                    }
                }
            });
        f32_tensor(input_grad, [batch, channels, height, width])
    }
}

impl<B: AvgPoolOps, C: CheckpointStrategy> AvgPoolOps for Autodiff<B, C> {
    fn zoo_avg_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        /// The input's gradient, from the input (for its shape) and the window.
        #[derive(Debug)]
        struct AvgPoolGradient;

        impl<B: AvgPoolOps> Backward<B, 1> for AvgPoolGradient {
            type State = (B::FloatTensorPrimitive, [usize; 2], [usize; 2]);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let output_grad = grads.consume::<B>(&ops.node);
                let (x, kernel, stride) = ops.state;
                if let Some(node) = node_x {
                    let input_grad = B::zoo_avg_pool2d_backward(x, output_grad, kernel, stride);
                    grads.register::<B>(node.id, input_grad);
                }
            }
        }

        match AvgPoolGradient
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let output = B::zoo_avg_pool2d(x.clone(), kernel, stride);
                prep.finish((x, kernel, stride), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::zoo_avg_pool2d(x.into_primitive(), kernel, stride))
            }
        }
    }

    fn zoo_avg_pool2d_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        Constant
            .prepare::<C>([x.node(), output_grad.node()])
            .compute_bound()
            .stateless(B::zoo_avg_pool2d_backward(
                x.into_primitive(),
                output_grad.into_primitive(),
                kernel,
                stride,
            ))
    }
}

/// `pool.forward(input)`, computed by [`MaxPoolOps`] on flex in `f32` when the padding is the
/// same on both sides of each axis (every torchvision model's is).
pub fn max_pool2d(pool: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
    let padding = match pool.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            (top == bottom && left == right).then_some([top, left])
        }
        PaddingConfig2d::Same => None,
    };
    let Some(padding) = padding.filter(|_| on_flex(&input.device()) && input.dtype() == DType::F32)
    else {
        return pool.forward(input);
    };
    let window = PoolWindow {
        kernel: pool.kernel_size,
        stride: pool.stride,
        padding,
        dilation: pool.dilation,
        ceil_mode: pool.ceil_mode,
    };
    Tensor::from_dispatch(Dispatch::zoo_max_pool2d(input.into_dispatch(), window))
}

/// A max pool's window: its size, stride, padding on each side, dilation, and whether a last
/// partial window counts (`ceil_mode`, as PyTorch's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    /// Window rows and columns.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding before and after each axis (read as −∞).
    pub padding: [usize; 2],
    /// Step between a window's taps.
    pub dilation: [usize; 2],
    /// Whether the output size rounds up, PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
}

impl PoolWindow {
    /// The pooled size of an `extent` along `axis`, by PyTorch's rule (burn-flex's too): with
    /// `ceil_mode` a last window that would start in the trailing padding is dropped.
    fn output(&self, axis: usize, extent: usize) -> usize {
        let span = self.dilation[axis] * (self.kernel[axis] - 1) + 1;
        let padded = extent + 2 * self.padding[axis];
        if padded < span {
            return usize::from(self.ceil_mode);
        }
        let steps = padded - span;
        match self.ceil_mode {
            true => {
                let outputs = steps.div_ceil(self.stride[axis]) + 1;
                let starts_inside = (outputs - 1) * self.stride[axis] < extent + self.padding[axis];
                if starts_inside { outputs } else { outputs - 1 }
            }
            false => steps / self.stride[axis] + 1,
        }
    }

    /// Where each tap along `axis` reads, for `outputs` outputs of an `extent`.
    fn taps(&self, axis: usize, extent: usize, outputs: usize) -> Vec<Option<TapWindow>> {
        tap_windows(
            self.kernel[axis],
            extent,
            outputs,
            self.stride[axis],
            self.padding[axis],
            self.dilation[axis],
        )
    }
}

/// Max pooling of `x` `[B, C, H, W]` and its gradient.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPoolOps: Backend {
    /// Each window's largest element (NaN where the window holds one, as PyTorch).
    fn zoo_max_pool2d(x: FloatTensor<Self>, window: PoolWindow) -> FloatTensor<Self>;

    /// The gradient with respect to `x`: each output's gradient added to the element its
    /// maximum came from (the first of equal ones, the last NaN), found again from `x`.
    fn zoo_max_pool2d_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        window: PoolWindow,
    ) -> FloatTensor<Self>;
}

/// Marks an output whose window read only padding (its maximum stays −∞ with no source).
const NO_SOURCE: u32 = u32::MAX;

/// One plane's pooling: for each output row and each output column, the input rows (columns)
/// its window reads, in tap order; and the plane's width.
struct MaxPoolPlane {
    rows: Vec<Vec<usize>>,
    columns: Vec<Vec<usize>>,
    width: usize,
}

impl MaxPoolPlane {
    fn new(window: &PoolWindow, [height, width]: [usize; 2]) -> (Self, [usize; 2]) {
        let output = [window.output(0, height), window.output(1, width)];
        let reads = |axis: usize, extent: usize| {
            let mut reads = vec![Vec::new(); output[axis]];
            for tap in window.taps(axis, extent, output[axis]).iter().flatten() {
                for (step, out) in (tap.first..tap.last).enumerate() {
                    reads[out].push(tap.start + step * window.stride[axis]);
                }
            }
            reads
        };
        let plane = Self {
            rows: reads(0, height),
            columns: reads(1, width),
            width,
        };
        (plane, output)
    }

    /// Each output's maximum over its window of `input`, and where in the plane it came from
    /// (`NO_SOURCE` for a window of padding alone), as `visit(output, maximum, source)`. Taps
    /// are visited row by row, as burn-flex and PyTorch do: a later one wins only when it is
    /// larger, or NaN.
    fn maxima(&self, input: &[f32], mut visit: impl FnMut(usize, f32, u32)) {
        let out_w = self.columns.len();
        for (out_row, rows) in self.rows.iter().enumerate() {
            for (out_column, columns) in self.columns.iter().enumerate() {
                let mut positions = rows
                    .iter()
                    .flat_map(|row| columns.iter().map(move |column| row * self.width + column));
                let Some(first) = positions.next() else {
                    visit(out_row * out_w + out_column, f32::NEG_INFINITY, NO_SOURCE);
                    continue;
                };
                let (mut maximum, mut source) = (input[first], first);
                for position in positions {
                    let value = input[position];
                    // Selected without a branch: which tap wins is data, and mispredicting it
                    // cost more than the comparisons.
                    let wins = value > maximum || value.is_nan();
                    maximum = if wins { value } else { maximum };
                    source = if wins { position } else { source };
                }
                visit(out_row * out_w + out_column, maximum, source as u32);
            }
        }
    }
}

impl MaxPoolOps for Flex {
    fn zoo_max_pool2d(x: FlexTensor, window: PoolWindow) -> FlexTensor {
        let [batch, channels, height, width] = x.shape().dims();
        let (plane, [out_h, out_w]) = MaxPoolPlane::new(&window, [height, width]);
        let input = f32_values(&x);
        let mut output = vec![0.0f32; batch * channels * out_h * out_w];
        output
            .par_chunks_mut((out_h * out_w).max(1))
            .zip(input.par_chunks((height * width).max(1)))
            .for_each(|(maxima, input)| {
                plane.maxima(input, |output, maximum, _| maxima[output] = maximum);
            });
        f32_tensor(output, [batch, channels, out_h, out_w])
    }

    fn zoo_max_pool2d_backward(
        x: FlexTensor,
        output_grad: FlexTensor,
        window: PoolWindow,
    ) -> FlexTensor {
        let [batch, channels, height, width] = x.shape().dims();
        let (plane, [out_h, out_w]) = MaxPoolPlane::new(&window, [height, width]);
        let (input, output_grad) = (f32_values(&x), f32_values(&output_grad));
        let mut input_grad = vec![0.0f32; batch * channels * height * width];
        let out_plane = (out_h * out_w).max(1);
        input_grad
            .par_chunks_mut((height * width).max(1))
            .zip(input.par_chunks((height * width).max(1)))
            .zip(output_grad.par_chunks(out_plane))
            .for_each(|((input_grad, input), output_grad)| {
                plane.maxima(input, |output, _, source| {
                    if source != NO_SOURCE {
                        input_grad[source as usize] += output_grad[output];
                    }
                });
            });
        f32_tensor(input_grad, [batch, channels, height, width])
    }
}

impl<B: MaxPoolOps, C: CheckpointStrategy> MaxPoolOps for Autodiff<B, C> {
    fn zoo_max_pool2d(x: FloatTensor<Self>, window: PoolWindow) -> FloatTensor<Self> {
        /// The input's gradient, from the input and the window.
        #[derive(Debug)]
        struct MaxPoolGradient;

        impl<B: MaxPoolOps> Backward<B, 1> for MaxPoolGradient {
            type State = (B::FloatTensorPrimitive, PoolWindow);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x] = ops.parents;
                let output_grad = grads.consume::<B>(&ops.node);
                let (x, window) = ops.state;
                if let Some(node) = node_x {
                    let input_grad = B::zoo_max_pool2d_backward(x, output_grad, window);
                    grads.register::<B>(node.id, input_grad);
                }
            }
        }

        match MaxPoolGradient
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let output = B::zoo_max_pool2d(x.clone(), window);
                prep.finish((x, window), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::zoo_max_pool2d(x.into_primitive(), window)),
        }
    }

    fn zoo_max_pool2d_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        window: PoolWindow,
    ) -> FloatTensor<Self> {
        Constant
            .prepare::<C>([x.node(), output_grad.node()])
            .compute_bound()
            .stateless(B::zoo_max_pool2d_backward(
                x.into_primitive(),
                output_grad.into_primitive(),
                window,
            ))
    }
}
