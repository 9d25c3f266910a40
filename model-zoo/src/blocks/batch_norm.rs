//! Batch normalisation's training pass (Ioffe & Szegedy 2015) on flex as four passes over
//! contiguous `f32` buffers: the batch's per-channel moments, the normalisation, and in the
//! backward pass the scale and shift gradients, then the input gradient.
//!
//! Why: Burn 0.22.1's `batch_norm_train` and its backward pass are composed of tensor
//! operations, and each per-channel statistic starts with swapping the batch and channel axes,
//! a full copy of the activation. In a CIFAR ResNet-20 training step on flex, once the
//! convolutions were the zoo's own, those copies and the element-wise passes around them were
//! the largest share left (`benches/RESULTS.md`). Other backends, and evaluation everywhere,
//! keep Burn's `BatchNorm::forward`; the results are the same either way, the running
//! statistics included.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::{DType, Shape, Slice};
use rayon::prelude::*;

use super::kernel_support::{Constant, f32_tensor, f32_values, from_planes, vectorized_fn};

/// `norm.forward(input)`, with the training pass (autodiff device, training enabled) on flex
/// in `f32` computed by [`BatchNormOps`]; like `BatchNorm::forward_train` it normalises with
/// the batch's statistics and moves the running statistics `momentum` of the way towards them.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    let [channels] = norm.gamma.dims();
    let on_flex = matches!(
        device.clone().without_autodiff().as_dispatch(),
        DispatchDevice::Flex(_)
    );
    let training = device.is_autodiff() && norm.training.is_enabled();
    if !(on_flex && training && input.dtype() == DType::F32 && input.dims()[1] == channels) {
        return norm.forward(input);
    }
    let moments = Tensor::<2>::from_dispatch(Dispatch::zoo_channel_moments(
        input.clone().detach().into_dispatch(),
    ));
    let output = Tensor::from_dispatch(Dispatch::zoo_batch_norm_train(
        input.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        moments.clone().into_dispatch(),
        norm.epsilon,
    ));
    let momentum = norm.momentum;
    let moment = |row: usize| moments.clone().narrow(0, row, 1).reshape([channels]);
    let running_mean = norm
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - momentum)
        .add(moment(0).mul_scalar(momentum));
    let running_var = norm
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - momentum)
        .add(moment(1).mul_scalar(momentum));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
    output
}

/// Batch normalisation with the batch's own statistics, in the passes the module
/// documentation lists. Tensors are `[B, C, ...]`; per-channel values are `[C]`; `moments`
/// is `[2, C]`: each channel's mean, then its biased variance, of the same `x`.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormOps: Backend {
    /// The per-channel moments of `x` over the batch and spatial axes.
    fn zoo_channel_moments(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(x − mean) / √(variance + ε) · gamma + beta`, differentiated as a function of `x`
    /// through the moments as well (they must be `x`'s own).
    fn zoo_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// `[2, C]`: gamma's gradient `Σ dy · x̂`, then beta's `Σ dy`, given the output gradient.
    fn zoo_batch_norm_affine_grads(
        x: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// `x`'s gradient, `gamma / σ · (dy − mean(dy) − x̂ · mean(dy · x̂))`, from the sums
    /// [`Self::zoo_batch_norm_affine_grads`] returned.
    fn zoo_batch_norm_input_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        affine_grads: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `[B, C, rest…]` as (images, channels, elements per channel and image).
fn planes(shape: &Shape) -> [usize; 3] {
    let dims = shape.as_slice();
    let [batch, channels] = [dims[0], dims[1]];
    [batch, channels, dims[2..].iter().product()]
}

/// What the passes after the moments read of them: `x`'s layout ([`planes`]), and each
/// channel's mean and `1 / √(variance + ε)`.
struct Statistics {
    shape: [usize; 3],
    means: Vec<f32>,
    inverse_deviations: Vec<f32>,
}

impl Statistics {
    fn new(x: &FlexTensor, moments: &FlexTensor, epsilon: f64) -> Self {
        let shape = planes(&x.shape());
        let moments = f32_values(moments);
        let (means, variances) = moments.split_at(shape[1]);
        Self {
            shape,
            means: means.to_vec(),
            inverse_deviations: variances
                .iter()
                .map(|variance| (1.0 / (f64::from(*variance) + epsilon).sqrt()) as f32)
                .collect(),
        }
    }
}

vectorized_fn! {
    /// `Σ term(a[k], b[k])`, in 16 lanes of `f32` (so it vectorises), then in `f64`.
    fn lane_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f64 {
        const LANES: usize = 16;
        let mut lanes = [0.0f32; LANES];
        let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = a_chunks
            .remainder()
            .iter()
            .zip(b_chunks.remainder())
            .map(|(a, b)| term(*a, *b))
            .sum();
        for (a, b) in a_chunks.zip(b_chunks) {
            for lane in 0..LANES {
                lanes[lane] += term(a[lane], b[lane]);
            }
        }
        lanes.iter().map(|lane| f64::from(*lane)).sum::<f64>() + f64::from(tail)
    }
}

/// `Σ term(a, b)` over channel `channel`'s elements of two `[B, C, S]` buffers, per image in
/// `f32` lanes and across images in `f64`.
fn channel_sum(
    [batch, channels, spatial]: [usize; 3],
    channel: usize,
    a: &[f32],
    b: &[f32],
    term: impl Fn(f32, f32) -> f32 + Copy,
) -> f64 {
    (0..batch)
        .map(|image| {
            let plane =
                (image * channels + channel) * spatial..(image * channels + channel + 1) * spatial;
            lane_sum(&a[plane.clone()], &b[plane], term)
        })
        .sum()
}

/// A `[2, C]` tensor of `pair(c)` for every channel `c`, computed in parallel: the first
/// elements in row 0, the second in row 1 (the moments, and the scale and shift gradients).
fn per_channel_pairs(
    channels: usize,
    pair: impl Fn(usize) -> (f32, f32) + Send + Sync,
) -> FlexTensor {
    let pairs: Vec<(f32, f32)> = (0..channels).into_par_iter().map(pair).collect();
    let (first, second): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
    f32_tensor([first, second].concat(), [2, channels])
}

/// `a · x + b · y + c` for every element, with `(a, b, c)` chosen per channel, into a new
/// `[B, C, S]` buffer.
fn per_channel_affine(
    [_, channels, spatial]: [usize; 3],
    x: &[f32],
    y: &[f32],
    coefficients: &[[f32; 3]],
) -> Vec<f32> {
    from_planes(x.len() / spatial.max(1), spatial, |plane| {
        let [a, b, c] = coefficients[plane % channels];
        let range = plane * spatial..(plane + 1) * spatial;
        x[range.clone()]
            .iter()
            .zip(&y[range])
            .map(move |(x, y)| a * x + b * y + c)
    })
}

impl BatchNormOps for Flex {
    fn zoo_channel_moments(x: FlexTensor) -> FlexTensor {
        let shape = planes(&x.shape());
        let [batch, channels, spatial] = shape;
        let count = (batch * spatial).max(1) as f64;
        let x = f32_values(&x);
        per_channel_pairs(channels, |channel| {
            let mean = channel_sum(shape, channel, &x, &x, |x, _| x) / count;
            let center = mean as f32;
            let squares = channel_sum(shape, channel, &x, &x, |x, _| (x - center) * (x - center));
            (mean as f32, (squares / count) as f32)
        })
    }

    fn zoo_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let Statistics {
            shape,
            means,
            inverse_deviations: inverse,
        } = Statistics::new(&x, &moments, epsilon);
        let (gamma, beta) = (f32_values(&gamma), f32_values(&beta));
        // y = (x − mean) · gamma / σ + beta = a · x + (beta − a · mean).
        let coefficients: Vec<[f32; 3]> = (0..shape[1])
            .map(|channel| {
                let a = gamma[channel] * inverse[channel];
                [a, 0.0, beta[channel] - a * means[channel]]
            })
            .collect();
        let x_values = f32_values(&x);
        let output = per_channel_affine(shape, &x_values, &x_values, &coefficients);
        f32_tensor(output, x.shape())
    }

    fn zoo_batch_norm_affine_grads(
        x: FlexTensor,
        moments: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let Statistics {
            shape,
            means,
            inverse_deviations: inverse,
        } = Statistics::new(&x, &moments, epsilon);
        let channels = shape[1];
        let (x, output_grad) = (f32_values(&x), f32_values(&output_grad));
        per_channel_pairs(channels, |channel| {
            let mean = means[channel];
            let centered = channel_sum(shape, channel, &output_grad, &x, |dy, x| dy * (x - mean));
            let total = channel_sum(shape, channel, &output_grad, &output_grad, |dy, _| dy);
            (
                (centered * f64::from(inverse[channel])) as f32,
                total as f32,
            )
        })
    }

    fn zoo_batch_norm_input_grad(
        x: FlexTensor,
        gamma: FlexTensor,
        moments: FlexTensor,
        affine_grads: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let Statistics {
            shape,
            means,
            inverse_deviations: inverse,
        } = Statistics::new(&x, &moments, epsilon);
        let [batch, channels, spatial] = shape;
        let count = (batch * spatial).max(1) as f32;
        let (gamma, sums) = (f32_values(&gamma), f32_values(&affine_grads));
        // dx = k · (dy − mean(dy) − x̂ · mean(dy · x̂)), k = gamma / σ, x̂ = (x − mean) / σ:
        // k · dy + b · x + c with b = −k · mean(dy · x̂) / σ and c = −k · mean(dy) − b · mean.
        let coefficients: Vec<[f32; 3]> = (0..channels)
            .map(|channel| {
                let k = gamma[channel] * inverse[channel];
                let mean_dy = sums[channels + channel] / count;
                let mean_dy_normalized = sums[channel] / count;
                let b = -k * mean_dy_normalized * inverse[channel];
                [k, b, -k * mean_dy - b * means[channel]]
            })
            .collect();
        let (x_values, output_grad) = (f32_values(&x), f32_values(&output_grad));
        let input_grad = per_channel_affine(shape, &output_grad, &x_values, &coefficients);
        f32_tensor(input_grad, x.shape())
    }
}

impl<B: BatchNormOps, C: CheckpointStrategy> BatchNormOps for Autodiff<B, C> {
    fn zoo_channel_moments(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Constant
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateless(B::zoo_channel_moments(x.into_primitive()))
    }

    fn zoo_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        /// The gradients of `x`, `gamma` and `beta`, from the saved input, scale and moments.
        #[derive(Debug)]
        struct BatchNormGradients;

        impl<B: BatchNormOps> Backward<B, 3> for BatchNormGradients {
            type State = (
                B::FloatTensorPrimitive,
                B::FloatTensorPrimitive,
                B::FloatTensorPrimitive,
                f64,
            );

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let output_grad = grads.consume::<B>(&ops.node);
                let (x, gamma, moments, epsilon) = ops.state;
                let affine = B::zoo_batch_norm_affine_grads(
                    x.clone(),
                    moments.clone(),
                    output_grad.clone(),
                    epsilon,
                );
                let [_, channels] = affine.shape().dims();
                let row = |row: usize| {
                    let slice = B::float_slice(
                        affine.clone(),
                        &[Slice::from(row..row + 1), Slice::from(0..channels)],
                    );
                    B::float_reshape(slice, Shape::new([channels]))
                };
                if let Some(node) = node_gamma {
                    grads.register::<B>(node.id, row(0));
                }
                if let Some(node) = node_beta {
                    grads.register::<B>(node.id, row(1));
                }
                if let Some(node) = node_x {
                    let input_grad = B::zoo_batch_norm_input_grad(
                        x,
                        gamma,
                        moments,
                        affine,
                        output_grad,
                        epsilon,
                    );
                    grads.register::<B>(node.id, input_grad);
                }
            }
        }

        let moments = moments.into_primitive();
        match BatchNormGradients
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let state = (x.clone(), gamma.clone(), moments.clone(), epsilon);
                let output =
                    B::zoo_batch_norm_train(x, gamma, beta.into_primitive(), moments, epsilon);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::zoo_batch_norm_train(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                moments,
                epsilon,
            )),
        }
    }

    fn zoo_batch_norm_affine_grads(
        x: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), moments.node(), output_grad.node()];
        Constant
            .prepare::<C>(nodes)
            .compute_bound()
            .stateless(B::zoo_batch_norm_affine_grads(
                x.into_primitive(),
                moments.into_primitive(),
                output_grad.into_primitive(),
                epsilon,
            ))
    }

    fn zoo_batch_norm_input_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        affine_grads: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let nodes = [
            x.node(),
            gamma.node(),
            moments.node(),
            affine_grads.node(),
            output_grad.node(),
        ];
        Constant
            .prepare::<C>(nodes)
            .compute_bound()
            .stateless(B::zoo_batch_norm_input_grad(
                x.into_primitive(),
                gamma.into_primitive(),
                moments.into_primitive(),
                affine_grads.into_primitive(),
                output_grad.into_primitive(),
                epsilon,
            ))
    }
}
