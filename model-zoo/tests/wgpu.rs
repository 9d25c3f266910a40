//! One forward pass on wgpu, compared with the CPU, where the machine has an adapter (Vulkan,
//! Metal, DX12 or GL — Mesa's software rasteriser counts). Without one the test says why it
//! skipped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::{Classifier, ModelOptions};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[test]
fn lenet5_on_wgpu_matches_the_cpu() {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let probe = catch_unwind(AssertUnwindSafe(|| {
        Tensor::<1>::ones([4], &gpu).sum().into_scalar::<f32>()
    }));
    match probe {
        Ok(sum) => assert_eq!(sum, 4.0),
        Err(payload) => {
            eprintln!(
                "skipped: no wgpu adapter here ({})",
                panic_message(payload.as_ref())
            );
            return;
        }
    }
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
