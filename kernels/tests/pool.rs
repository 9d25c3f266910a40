//! The zoo's pooling on flex computes what Burn's `AvgPool2d::forward` and
//! `MaxPool2d::forward` compute, output and input gradient; padded average pools (and
//! `ceil_mode` windows that overhang) and asymmetric max-pool padding stay Burn's.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo_kernels::pool::{avg_pool2d, max_pool2d};

/// Output and input gradient of `forward` on `input` under a fixed cotangent.
fn output_and_gradient<P>(
    pool: &P,
    input: &Tensor<4>,
    cotangent: &Tensor<4>,
    forward: impl Fn(&P, Tensor<4>) -> Tensor<4>,
) -> [Tensor<1>; 2] {
    let input = input.clone().require_grad();
    let output = forward(pool, input.clone());
    assert_eq!(output.dims(), cotangent.dims());
    let grads = (output.clone() * cotangent.clone()).sum().backward();
    [
        output.flatten(0, 3),
        input.grad(&grads).unwrap().flatten(0, 3),
    ]
}

#[test]
fn pools_match_burns_average_pooling() {
    let device = Device::flex().autodiff();
    // (kernel, stride, padding, ceil_mode, input height and width): LeNet-5's 2×2/2, a 3×3/2
    // that leaves the last row out, GoogLeNet's auxiliary 5×5/3, overlapping 2×2/1, a ceil-mode
    // pool whose windows fit exactly, then what stays Burn's: padding, and overhanging
    // ceil-mode windows.
    let cases = [
        ([2, 2], [2, 2], (0, 0, 0, 0), false, [28, 28]),
        ([3, 3], [2, 2], (0, 0, 0, 0), false, [10, 9]),
        ([5, 5], [3, 3], (0, 0, 0, 0), false, [14, 14]),
        ([2, 2], [1, 1], (0, 0, 0, 0), false, [5, 7]),
        ([3, 2], [2, 2], (0, 0, 0, 0), true, [7, 6]),
        ([3, 3], [2, 2], (1, 1, 1, 1), false, [8, 8]),
        ([2, 2], [2, 2], (0, 0, 0, 0), true, [7, 7]),
    ];
    for (kernel, stride, (top, left, bottom, right), ceil_mode, [height, width]) in cases {
        let pool = AvgPool2dConfig::new(kernel)
            .with_strides(stride)
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_ceil_mode(ceil_mode)
            .init();
        let input = Tensor::<4>::random([3, 2, height, width], Distribution::Default, &device);
        let expected_output = pool.forward(input.clone());
        let cotangent = Tensor::random(
            expected_output.dims(),
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = output_and_gradient(&pool, &input, &cotangent, AvgPool2d::forward);
        let actual = output_and_gradient(&pool, &input, &cotangent, avg_pool2d);
        for (what, (expected, actual)) in ["output", "input grad"]
            .iter()
            .zip(expected.into_iter().zip(actual))
        {
            let difference = (expected - actual).abs().max().into_scalar::<f32>();
            assert!(
                difference <= 1e-5,
                "{what} of {kernel:?}/{stride:?} on {height}×{width}: differs by {difference}"
            );
        }
    }
}

/// Fails unless the zoo's max pool and Burn's agree on `input` (output and input gradient).
fn check_max_pool(pool: &MaxPool2d, input: Tensor<4>, case: &str) {
    let device = input.device();
    let expected_output = pool.forward(input.clone());
    let cotangent = Tensor::random(
        expected_output.dims(),
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let expected = output_and_gradient(pool, &input, &cotangent, MaxPool2d::forward);
    let actual = output_and_gradient(pool, &input, &cotangent, max_pool2d);
    for (what, (expected, actual)) in ["output", "input grad"]
        .iter()
        .zip(expected.into_iter().zip(actual))
    {
        assert_eq!(expected.dims(), actual.dims(), "{what} of {case}");
        let difference = (expected - actual).abs().max().into_scalar::<f32>();
        assert!(
            difference == 0.0,
            "{what} of {case}: differs by {difference}"
        );
    }
}

#[test]
fn pools_match_burns_max_pooling() {
    let device = Device::flex().autodiff();
    // (kernel, stride, padding, dilation, ceil_mode, input height and width): ResNet's stem
    // 3×3/2 pad 1, VGG's 2×2/2, AlexNet's 3×3/2, GoogLeNet's 3×3/2 ceil-mode pools (one whose
    // last window overhangs, one whose last window would start in the padding) and its 3×3/1
    // pad 1 branch pool, a dilated pool, a window larger than a padded input, and asymmetric
    // padding (Burn's).
    let cases = [
        ([3, 3], [2, 2], (1, 1, 1, 1), [1, 1], false, [16, 15]),
        ([2, 2], [2, 2], (0, 0, 0, 0), [1, 1], false, [9, 8]),
        ([3, 3], [2, 2], (0, 0, 0, 0), [1, 1], false, [13, 13]),
        ([3, 3], [2, 2], (0, 0, 0, 0), [1, 1], true, [14, 12]),
        ([2, 2], [2, 2], (1, 1, 1, 1), [1, 1], true, [5, 5]),
        ([3, 3], [1, 1], (1, 1, 1, 1), [1, 1], false, [7, 6]),
        ([3, 2], [1, 2], (1, 0, 1, 0), [2, 2], false, [9, 10]),
        ([5, 5], [1, 1], (1, 1, 1, 1), [1, 1], true, [2, 3]),
        ([3, 3], [2, 2], (1, 0, 0, 1), [1, 1], false, [8, 8]),
    ];
    for (kernel, stride, (top, left, bottom, right), dilation, ceil_mode, [height, width]) in cases
    {
        let pool = MaxPool2dConfig::new(kernel)
            .with_strides(stride)
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_dilation(dilation)
            .with_ceil_mode(ceil_mode)
            .init();
        let case = format!("{kernel:?}/{stride:?} ceil {ceil_mode} on {height}×{width}");
        let input = Tensor::<4>::random([3, 2, height, width], Distribution::Default, &device);
        check_max_pool(&pool, input, &case);
        // Whole numbers from a handful: windows with equal maxima, where the first one's
        // position takes the gradient.
        let ties = Tensor::<4>::random(
            [3, 2, height, width],
            Distribution::Uniform(0.0, 3.0),
            &device,
        )
        .floor();
        check_max_pool(&pool, ties, &format!("{case}, ties"));
    }
}
