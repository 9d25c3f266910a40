//! The convolutions the GEMM lowering is checked on, and the check: shared by
//! `conv_lowering.rs` (on flex) and `hardware.rs` (on wgpu).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::conv2d_as_gemm;

use crate::close::assert_all_close;

/// Output, input gradient, weight gradient and (if any) bias gradient of `conv` on `input`
/// under a fixed random cotangent, by `forward`.
pub fn output_and_gradients(
    conv: &Conv2d,
    input: &Tensor<4>,
    cotangent: &Tensor<4>,
    forward: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
) -> Vec<Tensor<1>> {
    let input = input.clone().require_grad();
    let output = forward(conv, input.clone());
    let grads = (output.clone() * cotangent.clone()).sum().backward();
    let mut results = vec![
        output.flatten(0, 3),
        input.grad(&grads).unwrap().flatten(0, 3),
        conv.weight.val().grad(&grads).unwrap().flatten(0, 3),
    ];
    if let Some(bias) = &conv.bias {
        results.push(bias.val().grad(&grads).unwrap());
    }
    results
}

/// (channels, kernel, stride, dilation, padding (top, left, bottom, right), bias, input side): a
/// VGG 3×3, ResNet's 7×7/2 stem, its 1×1/2 projection, a bottleneck 1×1, AlexNet's 11×11/4,
/// LeNet-5's valid 5×5, a lopsided padding, a dilated 3×3, a kernel taller than the input, a
/// one-row input whose outer taps read nothing but padding, a 3×3 with more output channels
/// than the weight gradient streams its patch matrix for (64), two 16-channel layers (CIFAR
/// ResNet-20's width; a 3×3 and a 5×5, 50 patch rows), and three whose outer kernel rows or
/// columns read only padding (a strided 3×3 on a 2×3 image, a 5×5 on a 1×2 one, and a 3×3 of
/// which one tap reads the 1×2 image, like ResNet-18's 3×3s on its last 1×1 maps); and three
/// four 3×3 "same" layers that the direct AVX-512 kernel computes on CPUs that have it: 16 → 16
/// channels on 12×13 (one masked tile a row, all three passes), 3 → 32 on 15×16 (two channel
/// blocks, whole tiles; no direct input gradient, 3 channels being no block), 16 → 32 on 27×28
/// (a whole and a masked tile a row) and 32 → 16 on 11×12 (the input gradient's two blocks;
/// its weight gradient, of 32 input channels, a patch-matrix product); and three maps with fewer pixels than taps, computed as one product with the
/// convolution's matrix: 2×3 (ResNet-18's 2×2 stage, and a column that two taps miss), a
/// stride-2 dilated 3×3 on 2×3 and a 5×5 on 2×3; and three 3×3 "same" layers of 64 or more
/// channels computed by Winograd's F(2×2, 3×3): 72 → 64 on 7×8 (an odd height: the last row of
/// tiles half outside; 72 channels: four vectors of 16 and 8 taken one at a time), 64 → 72 on
/// 4×5 (an odd width) and 64 → 64 on 33×34 (more tiles than one product takes: two bands of
/// tile rows).
pub type Case = (
    [usize; 2],
    usize,
    usize,
    usize,
    (usize, usize, usize, usize),
    bool,
    usize,
);
pub const CASES: [Case; 26] = [
    ([3, 8], 3, 1, 1, (1, 1, 1, 1), true, 9),
    ([3, 4], 7, 2, 1, (3, 3, 3, 3), false, 16),
    ([4, 6], 1, 2, 1, (0, 0, 0, 0), false, 9),
    ([5, 3], 1, 1, 1, (0, 0, 0, 0), true, 7),
    ([3, 4], 11, 4, 1, (2, 2, 2, 2), true, 31),
    ([2, 3], 5, 1, 1, (0, 0, 0, 0), true, 12),
    ([2, 3], 3, 2, 1, (1, 0, 2, 1), true, 10),
    ([3, 5], 3, 1, 2, (2, 2, 2, 2), false, 8),
    ([2, 2], 5, 1, 1, (4, 1, 4, 1), false, 3),
    ([2, 2], 3, 1, 1, (1, 1, 1, 1), true, 1),
    ([3, 70], 3, 1, 1, (1, 1, 1, 1), false, 5),
    ([3, 16], 3, 1, 1, (1, 1, 1, 1), true, 10),
    ([2, 16], 5, 1, 1, (2, 2, 2, 2), false, 9),
    ([3, 5], 3, 2, 1, (1, 1, 1, 1), false, 2),
    ([4, 4], 5, 1, 1, (2, 2, 2, 2), true, 1),
    ([3, 6], 3, 2, 1, (1, 2, 1, 0), false, 1),
    ([16, 16], 3, 1, 1, (1, 1, 1, 1), true, 12),
    ([3, 32], 3, 1, 1, (1, 1, 1, 1), false, 15),
    ([16, 32], 3, 1, 1, (1, 1, 1, 1), true, 27),
    ([32, 16], 3, 1, 1, (1, 1, 1, 1), false, 11),
    ([8, 8], 3, 1, 1, (1, 1, 1, 1), true, 2),
    ([5, 6], 3, 2, 2, (2, 1, 1, 2), false, 2),
    ([4, 7], 5, 1, 1, (2, 2, 2, 2), true, 2),
    ([72, 64], 3, 1, 1, (1, 1, 1, 1), true, 7),
    ([64, 72], 3, 1, 1, (1, 1, 1, 1), false, 4),
    ([64, 64], 3, 1, 1, (1, 1, 1, 1), true, 33),
];

/// Checks every case: the lowering on `device` against the backend's convolution on the CPU
/// (flex), outputs and gradients, the same parameters and input for both. Batches alternate
/// between three images (more than CPU threads on a 2-core machine, split unevenly) and one
/// (fewer: flex's kernels then multithread each product instead).
pub fn check_against_flex(device: &Device, cases: &[Case]) {
    let cpu = Device::flex().autodiff();
    for (index, &(channels, kernel, stride, dilation, padding, bias, side)) in
        cases.iter().enumerate()
    {
        let (top, left, bottom, right) = padding;
        let batch = [3, 1][index % 2];
        let conv = Conv2dConfig::new(channels, [kernel, kernel])
            .with_stride([stride, stride])
            .with_dilation([dilation, dilation])
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_bias(bias)
            .init(&cpu);
        let input = Tensor::random(
            [batch, channels[0], side, side + 1],
            Distribution::Normal(0.0, 1.0),
            &cpu,
        );
        let native_output = conv.forward(input.clone());
        let cotangent = Tensor::random(native_output.dims(), Distribution::Normal(0.0, 1.0), &cpu);
        let native = output_and_gradients(&conv, &input, &cotangent, Conv2d::forward);
        let lowered = output_and_gradients(
            &conv.clone().fork(device),
            &input.to_device(device),
            &cotangent.to_device(device),
            conv2d_as_gemm,
        );
        assert_all_close(
            &["output", "input grad", "weight grad", "bias grad"],
            native,
            lowered.into_iter().map(|result| result.to_device(&cpu)),
            1e-5,
            &format!(" of {channels:?} k{kernel} s{stride} d{dilation} batch {batch}"),
        );
    }
}
