//! Fine-tuning a torchvision file on a folder of images with a Burn loop of one's own, on
//! model-zoo and the data crate (no trainer): load the state dict, give the model a head for the
//! folder's classes, train on augmented batches from the data pipeline, save the result under
//! torchvision's names.
//!
//!     cargo run --release --example finetune_folder -- <weights.pth|.safetensors> <folder> [model]
//!
//! `<folder>/<class>/*.png|jpg`, as torchvision's `ImageFolder`; `model` defaults to resnet18.
//! `cargo xtask weights fetch tv:resnet18` downloads and checks torchvision's file. Without
//! arguments the example runs offline on stand-ins written to `target/finetune-example/`: a
//! seeded ResNet-18 saved under torchvision's names (where the downloaded file would be), and a
//! folder of horizontally and vertically striped images. From the stand-in's random weights the
//! evaluation-mode figure trails the training one (batch norm's running statistics start from
//! nothing); a torchvision file brings its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use data::datasets::image_folder::ImageFolder;
use data::{Compose, DataLoader, Dataset, LoaderConfig, Preset};
use example_support::{exit_on_error, stand_in_folder};
use model_zoo::weights::{load_weights, save_safetensors};
use model_zoo::{Classifier, ModelOptions};

/// Half of torchvision's 224, to keep a CPU run short; the ResNets take any size.
const SIZE: usize = 112;
const BATCH: usize = 8;
const EPOCHS: usize = 8;

fn main() {
    exit_on_error(run());
}

fn run() -> Result<(), String> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let name = arguments.get(2).map_or("resnet18", String::as_str);
    let device = Device::flex();
    let (weights, folder) = match &arguments[..] {
        [weights, folder, ..] => (PathBuf::from(weights), PathBuf::from(folder)),
        [] => stand_ins(name, &device)?,
        [_] => return Err("give both the weights file and the image folder, or neither".into()),
    };

    let images = ImageFolder::open(&folder, 3).map_err(|e| e.to_string())?;
    let classes = images.classes().to_vec();
    let count = images.len();
    println!(
        "{count} images of {} classes ({}) from {}",
        classes.len(),
        classes.join(", "),
        folder.display()
    );
    // torchvision's ImageNet recipes, as the weights expect: random-resized crops and mirroring
    // to train, resize and centre crop to evaluate; batches built by the loader's threads.
    let images: Arc<dyn Dataset> = Arc::new(images);
    let loader = |preset: Compose, shuffle: bool| {
        let config = LoaderConfig {
            shuffle,
            ..LoaderConfig::new(BATCH)
        };
        DataLoader::new(Arc::clone(&images), Arc::new(preset), config)
    };
    let training = loader(Preset::Imagenet.train(SIZE), true);
    let evaluation = loader(Preset::Imagenet.eval(SIZE), false);

    // The model lives on the autodiff device while it trains.
    let autodiff = device.clone().autodiff();
    let model =
        model_zoo::create(name, &ModelOptions::new(), &autodiff).map_err(|e| e.to_string())?;
    let model = load_weights(model, name, &weights, &autodiff).map_err(|e| e.to_string())?;
    let mut model = model.with_num_classes(classes.len(), &autodiff);
    println!(
        "{name} from {}, with a new {}-class head",
        weights.display(),
        classes.len()
    );

    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    for epoch in 1..=EPOCHS {
        let (mut loss_sum, mut correct) = (0.0, 0);
        for batch in training.epoch(epoch) {
            let batch = batch.map_err(|e| e.to_string())?.to_device(&autodiff);
            let n = batch.labels.dims()[0];
            let logits = model.forward(batch.images);
            correct += right(&logits, &batch.labels);
            let loss = loss_fn.forward(logits, batch.labels);
            loss_sum += f64::from(loss.clone().into_scalar::<f32>()) * n as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.01, model, grads);
        }
        println!(
            "epoch {epoch}: loss {:.4}, training accuracy {:.1}%",
            loss_sum / count as f64,
            100.0 * correct as f64 / count as f64
        );
    }

    // Evaluation mode: batch norm uses its running statistics.
    let trained = model.valid();
    let mut correct = 0;
    for batch in evaluation.epoch(0) {
        let batch = batch.map_err(|e| e.to_string())?.to_device(&device);
        correct += right(&trained.forward(batch.images), &batch.labels);
    }
    println!("in evaluation mode: {correct} of {count} right");
    let out = folder.with_extension("finetuned.safetensors");
    save_safetensors(&trained, &out).map_err(|e| e.to_string())?;
    println!(
        "fine-tuned weights, under torchvision's names: {}",
        out.display()
    );
    Ok(())
}

/// How many of `logits`' top predictions are `labels`.
fn right(logits: &Tensor<2>, labels: &Tensor<1, Int>) -> i64 {
    logits
        .clone()
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels.clone())
        .int()
        .sum()
        .into_scalar::<i64>()
}

/// Offline stand-ins for a downloaded torchvision file and a user's folder.
fn stand_ins(name: &str, device: &Device) -> Result<(PathBuf, PathBuf), String> {
    let root = Path::new("target").join("finetune-example");
    let folder = root.join("stripes");
    stand_in_folder(&folder, 16)?;
    let weights = root.join(format!("{name}.safetensors"));
    if !weights.is_file() {
        device.seed(0);
        let model =
            model_zoo::create(name, &ModelOptions::new(), device).map_err(|e| e.to_string())?;
        save_safetensors(&model, &weights).map_err(|e| e.to_string())?;
    }
    println!(
        "no arguments: stand-ins in {} (a seeded {name} under torchvision's names; pass a real \
         file and folder to fine-tune those)",
        root.display()
    );
    Ok((weights, folder))
}
