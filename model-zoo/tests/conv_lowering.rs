//! The GEMM lowering of convolutions computes what the backend's convolution computes: outputs
//! and gradients for the shapes the zoo uses, and whole models' logits (on wgpu: `hardware.rs`).
//! Its own test binary, because `set_conv_lowering` is process-wide.

use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::blocks::{ConvLowering, set_conv_lowering};
use model_zoo::{Classifier, ModelOptions};

#[path = "../../kernels/tests/support/close.rs"]
mod close;
#[path = "support/conv_cases.rs"]
mod conv_cases;

use close::assert_close;
use conv_cases::{CASES, check_against_flex};

#[test]
fn gemm_lowering_matches_the_backend_convolution_and_its_gradients() {
    check_against_flex(&Device::flex().autodiff(), &CASES);
}

#[test]
fn models_give_the_same_logits_with_either_lowering() {
    let device = Device::flex();
    // One of each family at a small input; AlexNet's paper variant has grouped convolutions,
    // which stay on the backend's kernel under the GEMM lowering.
    let cases = [
        ("lenet5", 32),
        ("alexnet-paper", 227),
        ("vgg11", 32),
        ("resnet18", 32),
        ("cifar-resnet20", 32),
        ("nin-cifar", 32),
        ("googlenet", 64),
    ];
    for (name, side) in cases {
        let model = model_zoo::create(name, &ModelOptions::new(), &device).unwrap();
        let channels = if name == "lenet5" { 1 } else { 3 };
        let input = Tensor::random(
            [2, channels, side, side],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        set_conv_lowering(ConvLowering::Native);
        let native = model.forward(input.clone());
        set_conv_lowering(ConvLowering::Gemm);
        let lowered = model.forward(input);
        set_conv_lowering(ConvLowering::Auto);
        assert_close(native, lowered, 1e-4, &format!("{name}'s logits"));
    }
}

#[test]
fn auto_lowers_on_f32_flex_only_and_the_explicit_choices_hold_everywhere() {
    // The deprecated ndarray backend stands for "any other backend" without needing a GPU.
    #[allow(deprecated)]
    let (flex, ndarray) = (Device::flex(), Device::ndarray());
    assert_eq!(ConvLowering::Auto.on(&flex), ConvLowering::Gemm);
    assert_eq!(
        ConvLowering::Auto.on(&flex.clone().autodiff()),
        ConvLowering::Gemm
    );
    assert_eq!(ConvLowering::Auto.on(&ndarray), ConvLowering::Native);
    assert_eq!(ConvLowering::Native.on(&flex), ConvLowering::Native);
    assert_eq!(ConvLowering::Gemm.on(&ndarray), ConvLowering::Gemm);
    assert_eq!(ConvLowering::default(), ConvLowering::Auto);
}

#[test]
fn lowering_names_round_trip_and_unknown_ones_are_refused() {
    for lowering in ConvLowering::ALL {
        assert_eq!(lowering.name().parse::<ConvLowering>(), Ok(lowering));
    }
    let error = "im2col".parse::<ConvLowering>().unwrap_err();
    assert!(
        error.contains("'im2col'") && error.contains("auto, native or gemm"),
        "{error}"
    );
}
