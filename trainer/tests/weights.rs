//! `predict --model --weights`: a registry model with weights from a file, on image files,
//! preprocessed as torchvision's ImageNet models expect.

use std::path::PathBuf;

use burn::prelude::*;
use data::{Preset, Rng, Transform};
use model_zoo::weights::save_safetensors;
use model_zoo::{Classifier, ModelOptions};
use trainer::BackendKind;
use trainer::eval::predict_with_weights;

#[test]
fn predict_runs_a_registry_model_with_imported_weights() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("predict-weights");
    std::fs::create_dir_all(&dir).unwrap();
    let device = Device::flex();
    device.seed(7);
    let model = model_zoo::create("resnet18", &ModelOptions::new(), &device).unwrap();
    let weights = dir.join("resnet18.safetensors");
    save_safetensors(&model, &weights).unwrap();

    // A 300×200 gradient photo.
    let pixels: Vec<u8> = (0..200u32)
        .flat_map(|y| (0..300u32).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, 128]))
        .collect();
    let photo = dir.join("photo.png");
    image::RgbImage::from_raw(300, 200, pixels)
        .unwrap()
        .save(&photo)
        .unwrap();

    let predictions = predict_with_weights(
        "resnet18",
        &ModelOptions::new(),
        &weights,
        std::slice::from_ref(&photo),
        None,
        BackendKind::Flex,
    )
    .unwrap();
    assert_eq!(predictions[0].logits.len(), 1000);
    assert_eq!(predictions[0].top5.len(), 5);

    // The same logits as the model the file came from, on the torchvision-preprocessed image.
    let decoded = data::datasets::image_folder::decode_file(&photo, 3).unwrap();
    let input = Preset::Imagenet.eval(224).apply(decoded, &mut Rng::new(0));
    assert_eq!((input.height, input.width), (224, 224));
    let input = Tensor::<4>::from_data(TensorData::new(input.data, [1, 3, 224, 224]), &device);
    let expected: Vec<f32> = model.forward(input).into_data().try_to_vec().unwrap();
    assert_eq!(predictions[0].logits, expected);

    // Weights of another model are refused with their names and a hint.
    let error = predict_with_weights(
        "resnet34",
        &ModelOptions::new(),
        &weights,
        &[photo],
        None,
        BackendKind::Flex,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("resnet18.safetensors"), "{error}");
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn importable_models_carry_torchvisions_preprocessing() {
    // torchvision's ImageNet weights: resize 256, centre crop 224, ImageNet's mean and std, RGB.
    for name in trainer::parity::IMPORTABLE {
        let info = model_zoo::info(name).unwrap();
        let preprocessing = info.preprocessing;
        assert_eq!(info.input, [3, 224, 224], "{name}");
        assert_eq!(preprocessing.resize, Some(256), "{name}");
        assert_eq!(preprocessing.mean, [0.485, 0.456, 0.406], "{name}");
        assert_eq!(preprocessing.std, [0.229, 0.224, 0.225], "{name}");
        assert_eq!(preprocessing.channel_order, "RGB", "{name}");
    }
    let cifar = model_zoo::info("cifar-resnet20").unwrap().preprocessing;
    assert_eq!(
        (cifar.resize, cifar.mean),
        (None, &[0.4914, 0.4822, 0.4465][..])
    );
    let lenet = model_zoo::info("lenet5").unwrap().preprocessing;
    assert_eq!((lenet.mean, lenet.channel_order), (&[0.1307][..], "grey"));

    // What predict does with them is torchvision's evaluation recipe, pixel for pixel.
    let image = data::Image {
        channels: 3,
        height: 300,
        width: 400,
        data: (0..3 * 300 * 400)
            .map(|i| (i % 251) as f32 / 250.0)
            .collect(),
    };
    let resnet = model_zoo::info("resnet50").unwrap();
    let ours = trainer::eval::preprocess(&resnet.preprocessing, 224)
        .apply(image.clone(), &mut Rng::new(0));
    let recipe = Preset::Imagenet.eval(224).apply(image, &mut Rng::new(0));
    assert_eq!(ours, recipe);
}
