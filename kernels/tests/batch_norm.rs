//! The zoo's batch normalisation on flex computes what Burn's `BatchNorm::forward` computes in
//! training: outputs, the input's, scale's and shift's gradients, and the running statistics;
//! and it leaves evaluation to Burn. The same holds for batch norm with a ReLU folded in,
//! against Burn's `relu(BatchNorm::forward(x))`, and with a residual sum and a ReLU, against
//! `relu(BatchNorm::forward(x) + shortcut)` (the shortcut's gradient included).

use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use zoo_kernels::batch_norm::{batch_norm, batch_norm_add_relu, batch_norm_relu};

#[path = "support/close.rs"]
mod close;

use close::{assert_all_close, assert_close};

/// A batch norm over `channels` with random scale and shift.
fn norm(channels: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(channels).init(device);
    let uniform = Distribution::Uniform(0.5, 1.5);
    let gamma = Tensor::<1>::random([channels], uniform, device);
    let beta = Tensor::<1>::random([channels], Distribution::Normal(0.0, 1.0), device);
    norm.gamma = Param::from_tensor(gamma);
    norm.beta = Param::from_tensor(beta);
    norm
}

/// A batch norm, or a batch norm with what follows it, of an input and a shortcut (which a
/// plain batch norm ignores).
type Forward<const D: usize> = fn(&BatchNorm, Tensor<D>, Tensor<D>) -> Tensor<D>;

/// Output, input gradient, scale gradient, shift gradient, the running mean and variance and
/// (where `forward` reads it) the shortcut's gradient, after two training steps of `forward`,
/// for `input` and `shortcut` under a fixed cotangent.
fn outcome<const D: usize>(
    norm: &BatchNorm,
    [input, shortcut, cotangent]: [&Tensor<D>; 3],
    forward: Forward<D>,
) -> Vec<Tensor<1>> {
    forward(norm, input.clone() * 2.0 + 1.0, shortcut.clone());
    let input = input.clone().require_grad();
    let shortcut = shortcut.clone().require_grad();
    let output = forward(norm, input.clone(), shortcut.clone());
    let grads = (output.clone() * cotangent.clone()).sum().backward();
    let mut outcome = vec![
        output.flatten(0, D - 1),
        input.grad(&grads).unwrap().flatten(0, D - 1),
        norm.gamma.val().grad(&grads).unwrap(),
        norm.beta.val().grad(&grads).unwrap(),
        norm.running_mean.value(),
        norm.running_var.value(),
    ];
    outcome.extend(shortcut.grad(&grads).map(|grad| grad.flatten(0, D - 1)));
    outcome
}

fn burns_batch_norm<const D: usize>(norm: &BatchNorm, input: Tensor<D>, _: Tensor<D>) -> Tensor<D> {
    norm.forward(input)
}

fn zoos_batch_norm<const D: usize>(norm: &BatchNorm, input: Tensor<D>, _: Tensor<D>) -> Tensor<D> {
    batch_norm(norm, input)
}

fn burns_batch_norm_relu<const D: usize>(
    norm: &BatchNorm,
    input: Tensor<D>,
    _: Tensor<D>,
) -> Tensor<D> {
    relu(norm.forward(input))
}

fn zoos_batch_norm_relu<const D: usize>(
    norm: &BatchNorm,
    input: Tensor<D>,
    _: Tensor<D>,
) -> Tensor<D> {
    batch_norm_relu(norm, input)
}

fn burns_batch_norm_add_relu<const D: usize>(
    norm: &BatchNorm,
    input: Tensor<D>,
    shortcut: Tensor<D>,
) -> Tensor<D> {
    relu(norm.forward(input) + shortcut)
}

/// The zoo's `fused` batch norm (with what follows it) against Burn's `unfused` one, on an
/// input of `shape`.
fn check_against_burn<const D: usize>(shape: [usize; D], unfused: Forward<D>, fused: Forward<D>) {
    let device = Device::flex().autodiff();
    // Seeded: with few samples per channel a draw can land two values close together, and the
    // input gradient then cancels to rounding noise in either implementation.
    device.seed(7);
    let channels = shape[1];
    let input = Tensor::<D>::random(shape, Distribution::Normal(3.0, 2.0), &device);
    let shortcut = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let cotangent = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let burns = norm(channels, &device);
    let zoos = burns.clone();
    // `clone` shares the running statistics; the zoo's copy gets its own.
    let zoos = BatchNorm {
        running_mean: RunningState::new(zoos.running_mean.value()),
        running_var: RunningState::new(zoos.running_var.value()),
        ..zoos
    };
    let expected = outcome(&burns, [&input, &shortcut, &cotangent], unfused);
    let actual = outcome(&zoos, [&input, &shortcut, &cotangent], fused);
    let names = [
        "output",
        "input grad",
        "gamma grad",
        "beta grad",
        "running mean",
        "running variance",
        "shortcut grad",
    ];
    assert_all_close(&names, expected, actual, 1e-4, &format!(" of {shape:?}"));
}

#[test]
fn training_matches_burns_batch_norm_on_images() {
    check_against_burn([5, 3, 7, 6], burns_batch_norm, zoos_batch_norm);
    check_against_burn([4, 16, 1, 1], burns_batch_norm, zoos_batch_norm);
}

#[test]
fn training_matches_burns_batch_norm_on_vectors() {
    check_against_burn([9, 4], burns_batch_norm, zoos_batch_norm);
}

/// The training output of `norm` for `input` `[B, C, S]`, computed in `f64` from the `f32`
/// input, scale and shift.
fn normalized_in_f64(norm: &BatchNorm, input: &Tensor<3>) -> Vec<f64> {
    let [batch, channels, spatial] = input.dims();
    let values = input.to_data().try_to_vec::<f32>().unwrap();
    let gamma = norm.gamma.val().to_data().try_to_vec::<f32>().unwrap();
    let beta = norm.beta.val().to_data().try_to_vec::<f32>().unwrap();
    let index = |image: usize, channel: usize, k: usize| (image * channels + channel) * spatial + k;
    let mut output = vec![0.0; values.len()];
    for channel in 0..channels {
        let elements: Vec<usize> = (0..batch)
            .flat_map(|image| (0..spatial).map(move |k| index(image, channel, k)))
            .collect();
        let count = elements.len() as f64;
        let mean = elements.iter().map(|&i| f64::from(values[i])).sum::<f64>() / count;
        let variance = elements
            .iter()
            .map(|&i| (f64::from(values[i]) - mean).powi(2))
            .sum::<f64>()
            / count;
        let deviation = (variance + norm.epsilon).sqrt();
        for &i in &elements {
            let normalized = (f64::from(values[i]) - mean) / deviation;
            output[i] = normalized * f64::from(gamma[channel]) + f64::from(beta[channel]);
        }
    }
    output
}

/// Measured against `f64` rather than Burn, whose `f32` statistics are themselves 0.0095 off
/// here (the zoo's 0.0003; 0.0025 with the input not centred before scaling).
#[test]
fn training_normalises_accurately_where_the_mean_dwarfs_the_spread() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let input = Tensor::<3>::random([6, 3, 25], Distribution::Normal(1000.0, 0.05), &device);
    let norm = norm(3, &device);
    let exact = normalized_in_f64(&norm, &input);
    let error = |output: Tensor<3>| {
        let output = output.to_data().try_to_vec::<f32>().unwrap();
        let errors = output
            .iter()
            .zip(&exact)
            .map(|(a, b)| (f64::from(*a) - b).abs());
        errors.fold(0.0, f64::max)
    };
    let zoos = error(batch_norm(&norm, input));
    assert!(zoos <= 1e-3, "the zoo's output is {zoos} from f64's");
}

#[test]
fn training_with_the_relu_folded_in_matches_burns_batch_norm_then_relu() {
    check_against_burn([5, 3, 7, 6], burns_batch_norm_relu, zoos_batch_norm_relu);
    check_against_burn([4, 16, 1, 1], burns_batch_norm_relu, zoos_batch_norm_relu);
    check_against_burn([9, 4], burns_batch_norm_relu, zoos_batch_norm_relu);
}

#[test]
fn training_with_the_residual_sum_folded_in_matches_burns_batch_norm_add_relu() {
    check_against_burn([5, 3, 7, 6], burns_batch_norm_add_relu, batch_norm_add_relu);
    check_against_burn(
        [4, 16, 1, 1],
        burns_batch_norm_add_relu,
        batch_norm_add_relu,
    );
    check_against_burn([9, 4], burns_batch_norm_add_relu, batch_norm_add_relu);
}

#[test]
fn evaluation_uses_the_running_statistics() {
    let device = Device::flex();
    let norm = norm(3, &device);
    let input = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(3.0, 2.0), &device);
    let expected = norm.forward(input.clone());
    let actual = batch_norm(&norm, input.clone());
    assert_close(expected.clone(), actual, 0.0, "evaluation output");
    let actual = batch_norm_relu(&norm, input.clone());
    assert_close(
        relu(expected.clone()),
        actual,
        0.0,
        "evaluation output with the ReLU",
    );
    let shortcut = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let actual = batch_norm_add_relu(&norm, input, shortcut.clone());
    let expected = relu(expected + shortcut);
    assert_close(
        expected,
        actual,
        0.0,
        "evaluation output with the sum and the ReLU",
    );
}
