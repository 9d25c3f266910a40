//! Average pooling without padding on flex, forward and backward, as row loops over contiguous
//! `f32` planes.
//!
//! Why: burn-flex 0.22.1's average pooling (a 3-D kernel, per output element, with a division
//! each) and its backward pass took 29 % of a LeNet-5 training step, whose subsampling layers
//! are 2×2 average pools (`benches/RESULTS.md`). Without padding every window lies inside the
//! input, so the divisor is always `kh·kw` and both passes are a few strided row sums. Padded
//! pools and other backends keep Burn's `AvgPool2d::forward`.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::AvgPool2d;
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::kernel_support::{Constant, f32_tensor, f32_values};

/// `pool.forward(input)`, computed by [`AvgPoolOps`] on flex in `f32` when the pool has no
/// padding and its output size does not depend on `ceil_mode` (every window then lies inside the
/// input).
pub fn avg_pool2d(pool: &AvgPool2d, input: Tensor<4>) -> Tensor<4> {
    let on_flex = matches!(
        input.device().without_autodiff().as_dispatch(),
        DispatchDevice::Flex(_)
    );
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
    if !(on_flex && unpadded && windows_fit && input.dtype() == DType::F32) {
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
