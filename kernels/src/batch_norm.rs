//! Batch normalisation's training pass (Ioffe & Szegedy 2015) on flex as four passes over
//! contiguous `f32` buffers: the batch's per-channel moments, the normalisation, and in the
//! backward pass the scale and shift gradients, then the input gradient. A ReLU that follows
//! (conv → BN → ReLU, as in every ResNet block) can be folded into the same passes.
//!
//! Why: Burn 0.22.1's `batch_norm_train` and its backward pass are composed of tensor
//! operations, and each per-channel statistic starts with swapping the batch and channel axes,
//! a full copy of the activation. In a CIFAR ResNet-20 training step on flex, once the
//! convolutions were the zoo's own, those copies and the element-wise passes around them were
//! the largest share left (`benches/RESULTS.md`). Other backends, and evaluation everywhere,
//! keep Burn's `BatchNorm::forward` (and `relu`); the results are the same either way, the
//! running statistics included.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::{DType, DispatchTensor, Shape, Slice};
use rayon::prelude::*;

use crate::support::{Constant, f32_tensor, f32_values, from_planes, on_flex, vectorized_fn};

/// `norm.forward(input)`, with the training pass (autodiff device, training enabled) on flex
/// in `f32` computed by [`BatchNormOps`]; like `BatchNorm::forward_train` it normalises with
/// the batch's statistics and moves the running statistics `momentum` of the way towards them.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    if !trains_on_flex(norm, &input) {
        return norm.forward(input);
    }
    normalize_on_flex(norm, input, |[input, gamma, beta, moments]| {
        Dispatch::zoo_batch_norm_train(input, gamma, beta, moments, norm.epsilon, false)
    })
}

/// `relu(norm.forward(input))`, as [`batch_norm`] but with the ReLU folded into its passes on
/// flex: no pass of its own forward, and none backward, where the ReLU's mask is recomputed
/// from the input instead of read from a saved output.
pub fn batch_norm_relu<const D: usize>(norm: &BatchNorm, input: Tensor<D>) -> Tensor<D> {
    if !trains_on_flex(norm, &input) {
        return relu(norm.forward(input));
    }
    normalize_on_flex(norm, input, |[input, gamma, beta, moments]| {
        Dispatch::zoo_batch_norm_train(input, gamma, beta, moments, norm.epsilon, true)
    })
}

/// `relu(norm.forward(input) + shortcut)`, a residual block's last steps (`g(z[l+2] + a[l])`,
/// He et al. 2016, figure 2), as [`batch_norm`] but with the sum and the ReLU in the same pass
/// on flex; backward, the ReLU's gradient (the shortcut's) feeds batch norm's passes.
pub fn batch_norm_add_relu<const D: usize>(
    norm: &BatchNorm,
    input: Tensor<D>,
    shortcut: Tensor<D>,
) -> Tensor<D> {
    let fits = shortcut.dims() == input.dims() && shortcut.dtype() == input.dtype();
    if !(fits && trains_on_flex(norm, &input)) {
        return relu(norm.forward(input) + shortcut);
    }
    normalize_on_flex(norm, input, |[input, gamma, beta, moments]| {
        let shortcut = shortcut.into_dispatch();
        Dispatch::zoo_batch_norm_add_relu(input, gamma, beta, moments, shortcut, norm.epsilon)
    })
}

/// Whether [`BatchNormOps`] computes `norm` on `input`: training (autodiff device, training
/// enabled) on flex, in `f32`, with `norm`'s channel count.
fn trains_on_flex<const D: usize>(norm: &BatchNorm, input: &Tensor<D>) -> bool {
    let device = input.device();
    let [channels] = norm.gamma.dims();
    on_flex(&device)
        && device.is_autodiff()
        && norm.training.is_enabled()
        && input.dtype() == DType::F32
        && input.dims()[1] == channels
}

/// `normalize([input, gamma, beta, moments])` with the batch's moments, which also move the
/// running statistics.
fn normalize_on_flex<const D: usize>(
    norm: &BatchNorm,
    input: Tensor<D>,
    normalize: impl FnOnce([DispatchTensor; 4]) -> DispatchTensor,
) -> Tensor<D> {
    let device = input.device();
    let [channels] = norm.gamma.dims();
    let moments = Tensor::<2>::from_dispatch(Dispatch::zoo_channel_moments(
        input.clone().detach().into_dispatch(),
    ));
    let output = Tensor::from_dispatch(normalize([
        input.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        moments.clone().into_dispatch(),
    ]));
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
/// is `[2, C]`: each channel's mean, then its biased variance, of the same `x`. With
/// `then_relu` the output is the ReLU of the normalised input, and the gradients are those of
/// that composition.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormOps: Backend {
    /// The per-channel moments of `x` over the batch and spatial axes.
    fn zoo_channel_moments(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(x − mean) / √(variance + ε) · gamma + beta` (then its ReLU), differentiated as a
    /// function of `x` through the moments as well (they must be `x`'s own).
    fn zoo_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        epsilon: f64,
        then_relu: bool,
    ) -> FloatTensor<Self>;

    /// `[2, C]`: gamma's gradient `Σ dy · x̂`, then beta's `Σ dy`, given the output gradient
    /// (with `then_relu`, `dy` is the gradient that passes the ReLU).
    fn zoo_batch_norm_affine_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        then_relu: bool,
    ) -> FloatTensor<Self>;

    /// `relu(batch norm of x + shortcut)`, differentiated as a function of `x` (through the
    /// moments as well) and of the shortcut.
    fn zoo_batch_norm_add_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// `x`'s gradient, `gamma / σ · (dy − mean(dy) − x̂ · mean(dy · x̂))`, from the sums
    /// [`Self::zoo_batch_norm_affine_grads`] returned.
    #[allow(clippy::too_many_arguments)]
    fn zoo_batch_norm_input_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        affine_grads: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        then_relu: bool,
    ) -> FloatTensor<Self>;
}

/// `[B, C, rest…]` as (images, channels, elements per channel and image).
fn planes(shape: &Shape) -> [usize; 3] {
    let dims = shape.as_slice();
    let [batch, channels] = [dims[0], dims[1]];
    [batch, channels, dims[2..].iter().product()]
}

/// One channel's normalisation, `(x − mean) · scale + beta` with `scale = gamma / σ`. The
/// input is centred first, as Burn and PyTorch do: folded into `scale · x + shift`, the two
/// terms would cancel where the mean is large against the spread.
#[derive(Clone, Copy)]
struct Affine {
    mean: f32,
    scale: f32,
    beta: f32,
}

impl Affine {
    fn apply(self, x: f32) -> f32 {
        (x - self.mean) * self.scale + self.beta
    }
}

/// What passes a channel's activation: `pass(value, x)` is `value` where the activation lets
/// the element whose input is `x` through, else 0. Applied to the normalised value it is the
/// forward pass; applied to the output gradient, what reaches batch norm's own output.
trait Gate: Copy + Send + Sync {
    fn pass(self, value: f32, x: f32) -> f32;
}

/// No activation: everything passes.
#[derive(Clone, Copy)]
struct Open;

impl Gate for Open {
    fn pass(self, value: f32, _: f32) -> f32 {
        value
    }
}

/// A ReLU after the normalisation: an element passes where its normalised value does
/// ([`passes_relu`]). The mask is recomputed from `x` with the forward pass's own arithmetic,
/// so it is the forward pass's mask exactly.
#[derive(Clone, Copy)]
struct ReluAfter(Affine);

impl Gate for ReluAfter {
    fn pass(self, value: f32, x: f32) -> f32 {
        if passes_relu(self.0.apply(x)) {
            value
        } else {
            0.0
        }
    }
}

/// Whether a ReLU keeps `value`: where it is positive, or NaN (kept, as PyTorch and
/// burn-flex do, so that a diverging run shows).
fn passes_relu(value: f32) -> bool {
    value.is_nan() || value > 0.0
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

    /// Each channel's normalisation by `gamma` and `beta`.
    fn affines(&self, gamma: &FlexTensor, beta: &FlexTensor) -> Vec<Affine> {
        let (gamma, beta) = (f32_values(gamma), f32_values(beta));
        (0..self.shape[1])
            .map(|channel| Affine {
                mean: self.means[channel],
                scale: gamma[channel] * self.inverse_deviations[channel],
                beta: beta[channel],
            })
            .collect()
    }
}

vectorized_fn! {
    /// `Σ terms(a[k], b[k])`, two sums in one pass: in 16 lanes of `f32` each (so that they
    /// vectorise), then in `f64`.
    fn lane_sums(a: &[f32], b: &[f32], terms: impl Fn(f32, f32) -> [f32; 2]) -> [f64; 2] {
        const LANES: usize = 16;
        let mut lanes = [[0.0f32; LANES]; 2];
        let mut tails = [0.0f32; 2];
        let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        for (a, b) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
            let [first, second] = terms(*a, *b);
            tails[0] += first;
            tails[1] += second;
        }
        for (a, b) in a_chunks.zip(b_chunks) {
            for lane in 0..LANES {
                let [first, second] = terms(a[lane], b[lane]);
                lanes[0][lane] += first;
                lanes[1][lane] += second;
            }
        }
        [0, 1].map(|sum| {
            let lanes: f64 = lanes[sum].iter().map(|lane| f64::from(*lane)).sum();
            lanes + f64::from(tails[sum])
        })
    }
}

/// `Σ terms(a, b)` over channel `channel`'s elements of two `[B, C, S]` buffers, per image in
/// `f32` lanes and across images in `f64`.
fn channel_sums(
    [batch, channels, spatial]: [usize; 3],
    channel: usize,
    a: &[f32],
    b: &[f32],
    terms: impl Fn(f32, f32) -> [f32; 2] + Copy,
) -> [f64; 2] {
    (0..batch).fold([0.0; 2], |[first, second], image| {
        let plane =
            (image * channels + channel) * spatial..(image * channels + channel + 1) * spatial;
        let [plane_first, plane_second] = lane_sums(&a[plane.clone()], &b[plane], terms);
        [first + plane_first, second + plane_second]
    })
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

/// `map(c)(x, y)` for every element, `c` being the element's channel, into a new `[B, C, S]`
/// buffer.
fn per_channel_map<M: Fn(f32, f32) -> f32>(
    [_, channels, spatial]: [usize; 3],
    x: &[f32],
    y: &[f32],
    map: impl Fn(usize) -> M + Sync,
) -> Vec<f32> {
    from_planes(x.len() / spatial.max(1), spatial, |plane| {
        let map = map(plane % channels);
        let range = plane * spatial..(plane + 1) * spatial;
        x[range.clone()]
            .iter()
            .zip(&y[range])
            .map(move |(x, y)| map(*x, *y))
    })
}

/// The normalised `x`, through `gate(c)` for channel `c`.
fn normalized<G: Gate>(
    statistics: &Statistics,
    affines: &[Affine],
    x: &[f32],
    gate: impl Fn(usize) -> G + Sync,
) -> Vec<f32> {
    per_channel_map(statistics.shape, x, x, |channel| {
        let (affine, gate) = (affines[channel], gate(channel));
        move |x, _| gate.pass(affine.apply(x), x)
    })
}

/// Per channel, `Σ dy · (x − mean) / σ` and `Σ dy`, with `dy` the output gradient through
/// `gate(c)`.
fn affine_grads<G: Gate>(
    statistics: &Statistics,
    x: &[f32],
    output_grad: &[f32],
    gate: impl Fn(usize) -> G + Send + Sync,
) -> FlexTensor {
    let shape = statistics.shape;
    per_channel_pairs(shape[1], |channel| {
        let (mean, gate) = (statistics.means[channel], gate(channel));
        let [centered, total] = channel_sums(shape, channel, output_grad, x, |dy, x| {
            let dy = gate.pass(dy, x);
            [dy * (x - mean), dy]
        });
        let inverse = f64::from(statistics.inverse_deviations[channel]);
        ((centered * inverse) as f32, total as f32)
    })
}

/// `x`'s gradient from the output gradient through `gate(c)` and the sums of
/// [`affine_grads`].
fn input_grad<G: Gate>(
    statistics: &Statistics,
    gamma: &[f32],
    sums: &[f32],
    [x, output_grad]: [&[f32]; 2],
    gate: impl Fn(usize) -> G + Sync,
) -> Vec<f32> {
    let Statistics {
        shape,
        means,
        inverse_deviations: inverse,
    } = statistics;
    let [batch, channels, spatial] = *shape;
    let count = (batch * spatial).max(1) as f32;
    // dx = k · (dy − mean(dy) − x̂ · mean(dy · x̂)), k = gamma / σ, x̂ = (x − mean) / σ:
    // k · dy + b · (x − mean) + c with b = −k · mean(dy · x̂) / σ and c = −k · mean(dy).
    let coefficients: Vec<[f32; 4]> = (0..channels)
        .map(|channel| {
            let k = gamma[channel] * inverse[channel];
            let mean_dy = sums[channels + channel] / count;
            let mean_dy_normalized = sums[channel] / count;
            let b = -k * mean_dy_normalized * inverse[channel];
            [k, b, -k * mean_dy, means[channel]]
        })
        .collect();
    per_channel_map(*shape, output_grad, x, |channel| {
        let ([k, b, c, mean], gate) = (coefficients[channel], gate(channel));
        move |dy, x| k * gate.pass(dy, x) + b * (x - mean) + c
    })
}

impl BatchNormOps for Flex {
    fn zoo_channel_moments(x: FlexTensor) -> FlexTensor {
        let shape = planes(&x.shape());
        let [batch, channels, spatial] = shape;
        let count = (batch * spatial).max(1) as f64;
        let x = f32_values(&x);
        per_channel_pairs(channels, |channel| {
            // One pass for both sums, shifted by one of the channel's values so that the
            // variance is not the difference of two large sums when the mean is large against
            // the spread.
            let shift = x.get(channel * spatial).copied().unwrap_or(0.0);
            let [sum, squares] = channel_sums(shape, channel, &x, &x, |x, _| {
                let shifted = x - shift;
                [shifted, shifted * shifted]
            });
            let mean = sum / count;
            let variance = (squares / count - mean * mean).max(0.0);
            ((f64::from(shift) + mean) as f32, variance as f32)
        })
    }

    fn zoo_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        epsilon: f64,
        then_relu: bool,
    ) -> FlexTensor {
        let statistics = Statistics::new(&x, &moments, epsilon);
        let affines = statistics.affines(&gamma, &beta);
        let values = f32_values(&x);
        let output = match then_relu {
            true => normalized(&statistics, &affines, &values, |c| ReluAfter(affines[c])),
            false => normalized(&statistics, &affines, &values, |_| Open),
        };
        f32_tensor(output, x.shape())
    }

    fn zoo_batch_norm_add_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        shortcut: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let statistics = Statistics::new(&x, &moments, epsilon);
        let affines = statistics.affines(&gamma, &beta);
        let (values, shortcut) = (f32_values(&x), f32_values(&shortcut));
        let output = per_channel_map(statistics.shape, &values, &shortcut, |channel| {
            let affine = affines[channel];
            move |x, shortcut| {
                let sum = affine.apply(x) + shortcut;
                if passes_relu(sum) { sum } else { 0.0 }
            }
        });
        f32_tensor(output, x.shape())
    }

    fn zoo_batch_norm_affine_grads(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
        then_relu: bool,
    ) -> FlexTensor {
        let statistics = Statistics::new(&x, &moments, epsilon);
        let (x, output_grad) = (f32_values(&x), f32_values(&output_grad));
        match then_relu {
            true => {
                let affines = statistics.affines(&gamma, &beta);
                affine_grads(&statistics, &x, &output_grad, |c| ReluAfter(affines[c]))
            }
            false => affine_grads(&statistics, &x, &output_grad, |_| Open),
        }
    }

    fn zoo_batch_norm_input_grad(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        moments: FlexTensor,
        affine_grads: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
        then_relu: bool,
    ) -> FlexTensor {
        let statistics = Statistics::new(&x, &moments, epsilon);
        let (gamma_values, sums) = (f32_values(&gamma), f32_values(&affine_grads));
        let (values, output_grad) = (f32_values(&x), f32_values(&output_grad));
        let factors = [&values[..], &output_grad[..]];
        let grad = match then_relu {
            true => {
                let affines = statistics.affines(&gamma, &beta);
                let gate = |c| ReluAfter(affines[c]);
                input_grad(&statistics, &gamma_values, &sums, factors, gate)
            }
            false => input_grad(&statistics, &gamma_values, &sums, factors, |_| Open),
        };
        f32_tensor(grad, x.shape())
    }
}

/// What batch norm's backward pass reads: `x`, `gamma`, `beta`, the moments, ε and whether a
/// ReLU follows.
type Saved<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    f64,
    bool,
);

/// Registers the gradients of `x`, `gamma` and `beta` (those of `nodes` that need one), given
/// the gradient of batch norm's output.
fn register_batch_norm_grads<B: BatchNormOps>(
    grads: &mut Gradients,
    [node_x, node_gamma, node_beta]: [Option<NodeId>; 3],
    (x, gamma, beta, moments, epsilon, then_relu): Saved<B>,
    output_grad: FloatTensor<B>,
) {
    let affine = B::zoo_batch_norm_affine_grads(
        x.clone(),
        gamma.clone(),
        beta.clone(),
        moments.clone(),
        output_grad.clone(),
        epsilon,
        then_relu,
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
        grads.register::<B>(node, row(0));
    }
    if let Some(node) = node_beta {
        grads.register::<B>(node, row(1));
    }
    if let Some(node) = node_x {
        let input_grad = B::zoo_batch_norm_input_grad(
            x,
            gamma,
            beta,
            moments,
            affine,
            output_grad,
            epsilon,
            then_relu,
        );
        grads.register::<B>(node, input_grad);
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
        then_relu: bool,
    ) -> FloatTensor<Self> {
        /// The gradients of `x`, `gamma` and `beta`.
        #[derive(Debug)]
        struct BatchNormGradients;

        impl<B: BatchNormOps> Backward<B, 3> for BatchNormGradients {
            type State = Saved<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let output_grad = grads.consume::<B>(&ops.node);
                let nodes = ops.parents.map(|node| node.map(|node| node.id));
                register_batch_norm_grads::<B>(grads, nodes, ops.state, output_grad);
            }
        }

        let moments = moments.into_primitive();
        let parents = [x.node(), gamma.node(), beta.node()];
        let [x, gamma, beta] = [x, gamma, beta].map(|tensor| tensor.into_primitive());
        let output = B::zoo_batch_norm_train(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            moments.clone(),
            epsilon,
            then_relu,
        );
        match BatchNormGradients
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((x, gamma, beta, moments, epsilon, then_relu), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn zoo_batch_norm_add_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        /// The gradients of `x`, `gamma`, `beta` and the shortcut: the ReLU's (from the saved
        /// output) is the shortcut's and the output gradient of batch norm.
        #[derive(Debug)]
        struct BatchNormAddReluGradients;

        impl<B: BatchNormOps> Backward<B, 4> for BatchNormAddReluGradients {
            type State = (Saved<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 4>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let output_grad = grads.consume::<B>(&ops.node);
                let [node_x, node_gamma, node_beta, node_shortcut] =
                    ops.parents.map(|node| node.map(|node| node.id));
                let (saved, output) = ops.state;
                let sum_grad = B::relu_backward(output, output_grad);
                if let Some(node) = node_shortcut {
                    grads.register::<B>(node, sum_grad.clone());
                }
                let nodes = [node_x, node_gamma, node_beta];
                register_batch_norm_grads::<B>(grads, nodes, saved, sum_grad);
            }
        }

        let moments = moments.into_primitive();
        let parents = [x.node(), gamma.node(), beta.node(), shortcut.node()];
        let [x, gamma, beta, shortcut] =
            [x, gamma, beta, shortcut].map(|tensor| tensor.into_primitive());
        let output = B::zoo_batch_norm_add_relu(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            moments.clone(),
            shortcut,
            epsilon,
        );
        match BatchNormAddReluGradients
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let saved = (x, gamma, beta, moments, epsilon, false);
                prep.finish((saved, output.clone()), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn zoo_batch_norm_affine_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        then_relu: bool,
    ) -> FloatTensor<Self> {
        let nodes = [
            x.node(),
            gamma.node(),
            beta.node(),
            moments.node(),
            output_grad.node(),
        ];
        Constant
            .prepare::<C>(nodes)
            .compute_bound()
            .stateless(B::zoo_batch_norm_affine_grads(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                moments.into_primitive(),
                output_grad.into_primitive(),
                epsilon,
                then_relu,
            ))
    }

    fn zoo_batch_norm_input_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        affine_grads: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        then_relu: bool,
    ) -> FloatTensor<Self> {
        let nodes = [
            x.node(),
            gamma.node(),
            beta.node(),
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
                beta.into_primitive(),
                moments.into_primitive(),
                affine_grads.into_primitive(),
                output_grad.into_primitive(),
                epsilon,
                then_relu,
            ))
    }
}
