//! The zoo's tanh: within 2 ulp of the correctly rounded value everywhere, exact at the special
//! values, and the same outputs and gradients as Burn's own tanh in a network.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;
use zoo_kernels::tanh::{tanh, tanh_f32};

/// Distance in units in the last place between two finite f32 of the same sign.
fn ulps(a: f32, b: f32) -> u32 {
    assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} vs {b}");
    a.to_bits().abs_diff(b.to_bits())
}

#[test]
fn tanh_f32_is_within_two_ulp_of_the_rounded_value() {
    // Every 2⁻¹⁴ from −12 to 12, both sides of the branch points, and the tiny values where
    // tanh(x) = x.
    let mut inputs: Vec<f32> = (-(12 << 14)..=(12 << 14))
        .map(|i| i as f32 / (1 << 14) as f32)
        .collect();
    for edge in [0.55f32, 9.0, 10.0] {
        inputs.extend([edge, edge.next_down(), edge.next_up()]);
    }
    inputs.extend([
        1e-30,
        1e-10,
        f32::MIN_POSITIVE,
        1e-45,
        3e-4,
        88.0,
        1e30,
        f32::MAX,
    ]);
    let mut worst = (0, 0.0f32);
    for x in inputs.iter().flat_map(|&x| [x, -x]) {
        let expected = (x as f64).tanh() as f32;
        let error = ulps(tanh_f32(x), expected);
        if error > worst.0 {
            worst = (error, x);
        }
    }
    assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
}

#[test]
fn tanh_f32_special_values() {
    assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
    assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    assert_eq!(tanh_f32(f32::INFINITY), 1.0);
    assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
    assert!(tanh_f32(f32::NAN).is_nan());
}

/// `tanh_fn(x)` and the gradient of `sum(tanh_fn(x) · cotangent)` with respect to `x`, computed
/// on `device` and returned on `x`'s device.
fn output_and_gradient(
    tanh_fn: fn(Tensor<2>) -> Tensor<2>,
    x: &Tensor<2>,
    cotangent: &Tensor<2>,
    device: &Device,
) -> [Tensor<2>; 2] {
    let input = x.clone().to_device(device).require_grad();
    let output = tanh_fn(input.clone());
    let grads = (output.clone() * cotangent.clone().to_device(device))
        .sum()
        .backward();
    let gradient = input.grad(&grads).unwrap();
    [output, gradient].map(|tensor| tensor.to_device(&x.device()))
}

/// Fails unless outputs agree within `output_tolerance` and gradients within 1e-5.
fn assert_agree(expected: [Tensor<2>; 2], actual: [Tensor<2>; 2], output_tolerance: f32) {
    let [expected_output, expected_gradient] = expected;
    let [output, gradient] = actual;
    let output_difference = (expected_output - output).abs().max().into_scalar::<f32>();
    let gradient_difference = (expected_gradient - gradient)
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(
        output_difference <= output_tolerance,
        "outputs differ by {output_difference}"
    );
    assert!(
        gradient_difference <= 1e-5,
        "gradients differ by {gradient_difference}"
    );
}

#[test]
fn tanh_matches_burns_in_outputs_and_gradients() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::random([64, 300], Distribution::Normal(0.0, 3.0), &device);
    let cotangent = Tensor::<2>::random([64, 300], Distribution::Normal(0.0, 1.0), &device);
    assert_agree(
        output_and_gradient(activation::tanh, &x, &cotangent, &device),
        output_and_gradient(tanh, &x, &cotangent, &device),
        2.5e-7,
    );
}
