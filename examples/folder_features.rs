//! The features of a folder of images written to disk, as a linear probe, a retrieval index or
//! a clustering would take them: the backbone's pooled output (`forward_features`, then a
//! global average) of each image, one CSV row per file.
//!
//!     cargo run --release --example folder_features -- <folder> [model] [weights] [out.csv]
//!
//! `<folder>/<class>/*.png|jpg`; `model` defaults to resnet18, `weights` to none (a seeded
//! model; give torchvision's file, e.g. from `cargo xtask weights fetch tv:resnet18`, for real
//! features). Without arguments it runs on a stand-in folder in `target/features-example/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use data::datasets::image_folder::ImageFolder;
use data::{DataLoader, Dataset, LoaderConfig, Preset};
use example_support::{exit_on_error, stand_in_folder};
use model_zoo::weights::load_weights;
use model_zoo::{Classifier, ModelOptions};

const SIZE: usize = 224;
const BATCH: usize = 16;

fn main() {
    exit_on_error(run());
}

fn run() -> Result<(), String> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let folder = match arguments.first() {
        Some(folder) => PathBuf::from(folder),
        None => {
            let folder = Path::new("target").join("features-example").join("stripes");
            stand_in_folder(&folder, 8)?;
            folder
        }
    };
    let name = arguments.get(1).map_or("resnet18", String::as_str);
    let out = arguments
        .get(3)
        .map_or_else(|| folder.with_extension("features.csv"), PathBuf::from);

    let device = Device::flex();
    device.seed(0);
    let model =
        model_zoo::create(name, &ModelOptions::new(), &device).map_err(|e| e.to_string())?;
    let model = match arguments.get(2) {
        Some(weights) => {
            load_weights(model, name, Path::new(weights), &device).map_err(|e| e.to_string())?
        }
        None => model,
    };
    let images = Arc::new(ImageFolder::open(&folder, 3).map_err(|e| e.to_string())?);
    // torchvision's evaluation preprocessing for ImageNet weights, in the loader's threads.
    let loader = DataLoader::new(
        Arc::clone(&images) as Arc<dyn Dataset>,
        Arc::new(Preset::Imagenet.eval(SIZE)),
        LoaderConfig {
            shuffle: false,
            ..LoaderConfig::new(BATCH)
        },
    );

    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?,
    );
    let mut width = 0;
    for batch in loader.epoch(0) {
        let batch = batch.map_err(|e| e.to_string())?;
        let indices = batch.indices.clone();
        // [N, C, H, W] maps, averaged over the positions: one C-vector per image.
        let features = model
            .forward_features(batch.to_device(&device).images)
            .mean_dim(3)
            .mean_dim(2)
            .flatten::<2>(1, 3);
        if width == 0 {
            width = features.dims()[1];
            let names: Vec<String> = (0..width).map(|i| format!("f{i}")).collect();
            writeln!(csv, "file,class,{}", names.join(","))
                .map_err(|e| format!("{}: {e}", out.display()))?;
        }
        let values = features
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        for (row, index) in values.chunks(width).zip(indices) {
            let numbers: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            writeln!(
                csv,
                "{},{},{}",
                images.path(index).display(),
                images.classes()[images.label(index)],
                numbers.join(",")
            )
            .map_err(|e| format!("{}: {e}", out.display()))?;
        }
    }
    csv.flush().map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} images → {width} features each ({name}), written to {}",
        images.len(),
        out.display()
    );
    Ok(())
}
