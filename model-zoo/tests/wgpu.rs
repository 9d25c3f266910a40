//! One forward pass on wgpu, compared with the CPU, where the machine has an adapter (Vulkan,
//! Metal, DX12 or GL — Mesa's software rasteriser counts). Without one the test says why it
//! skipped.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::{Classifier, ModelOptions};

mod support;

#[test]
fn lenet5_on_wgpu_matches_the_cpu() {
    let Some(gpu) = support::wgpu_device() else {
        return;
    };
    let cpu = Device::flex();
    let model = model_zoo::create("lenet5", &ModelOptions::new(), &cpu).unwrap();
    let x = Tensor::<4>::random([4, 1, 32, 32], Distribution::Normal(0.0, 1.0), &cpu);
    let expected = model.forward(x.clone());
    let model = model.to_device(&gpu);
    let actual = model.forward(x.to_device(&gpu)).to_device(&cpu);
    let difference: f32 = (actual - expected).abs().max().into_scalar::<f32>();
    assert!(
        difference < 1e-4,
        "wgpu and flex logits differ by {difference}"
    );
}
