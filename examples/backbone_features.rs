//! A zoo network as a backbone: the feature maps of every stage, with their channels and
//! reductions, as a detection or segmentation head takes them (timm's `features_only`).
//!
//!     cargo run --release --example backbone_features -- resnet50

use burn::prelude::*;
use burn::tensor::Distribution;
use model_zoo::{Classifier, ModelOptions};

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "resnet18".to_string());
    let device = Device::flex();
    let model = match model_zoo::create(&name, &ModelOptions::new(), &device) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let [channels, height, width] = model_zoo::info(&name).expect("created above").input;
    let images = Tensor::<4>::random(
        [2, channels, height, width],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let maps = model.forward_intermediates(images);
    let info = model_zoo::feature_info(&model, [channels, height, width], &device);
    println!("{name} on {channels}×{height}×{width} images:");
    for (map, stage) in maps.iter().zip(&info) {
        println!(
            "  stage {}: {:?}  ({} channels, 1/{} of the input)",
            stage.index,
            map.dims(),
            stage.channels,
            stage.reduction
        );
    }
}
