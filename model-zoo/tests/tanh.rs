//! The zoo's tanh: within 2 ulp of the correctly rounded value everywhere, exact at the special
//! values, and the same outputs and gradients as Burn's own tanh in a network.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;
use model_zoo::blocks::tanh::{tanh, tanh_f32};

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

#[test]
fn tanh_matches_burns_in_outputs_and_gradients() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::random([64, 300], Distribution::Normal(0.0, 3.0), &device);
    let cotangent = Tensor::<2>::random([64, 300], Distribution::Normal(0.0, 1.0), &device);
    let mut results = Vec::new();
    for zoo in [false, true] {
        let input = x.clone().require_grad();
        let output = if zoo {
            tanh(input.clone())
        } else {
            activation::tanh(input.clone())
        };
        let grads = (output.clone() * cotangent.clone()).sum().backward();
        results.push((output, input.grad(&grads).unwrap()));
    }
    let (burn_output, burn_grad) = results.remove(0);
    let (zoo_output, zoo_grad) = results.remove(0);
    let output_difference = (burn_output - zoo_output).abs().max().into_scalar::<f32>();
    let grad_difference = (burn_grad - zoo_grad).abs().max().into_scalar::<f32>();
    assert!(
        output_difference <= 2.5e-7,
        "outputs differ by {output_difference}"
    );
    assert!(
        grad_difference <= 1e-5,
        "gradients differ by {grad_difference}"
    );
}

/// On wgpu, where the machine has an adapter (Mesa's software rasteriser counts), the zoo's tanh
/// is Burn's; forward and backward agree with flex's vectorised one.
#[test]
fn tanh_on_wgpu_matches_the_cpu() {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<1>::ones([4], &gpu).sum().into_scalar::<f32>()
    }));
    if probe.is_err() {
        eprintln!("skipped: no wgpu adapter here");
        return;
    }
    let cpu = Device::flex().autodiff();
    let x = Tensor::<2>::random([16, 50], Distribution::Normal(0.0, 3.0), &cpu);
    let cotangent = Tensor::<2>::random([16, 50], Distribution::Normal(0.0, 1.0), &cpu);
    let mut results = Vec::new();
    for device in [cpu.clone(), gpu.autodiff()] {
        let input = x.clone().to_device(&device).require_grad();
        let output = tanh(input.clone());
        let grads = (output.clone() * cotangent.clone().to_device(&device))
            .sum()
            .backward();
        let grad = input.grad(&grads).unwrap();
        results.push((output.to_device(&cpu), grad.to_device(&cpu)));
    }
    let (cpu_output, cpu_grad) = results.remove(0);
    let (gpu_output, gpu_grad) = results.remove(0);
    let output_difference = (cpu_output - gpu_output).abs().max().into_scalar::<f32>();
    let grad_difference = (cpu_grad - gpu_grad).abs().max().into_scalar::<f32>();
    assert!(
        output_difference <= 1e-6,
        "outputs differ by {output_difference}"
    );
    assert!(
        grad_difference <= 1e-5,
        "gradients differ by {grad_difference}"
    );
}
