//! The readers under fuzz, each with seed files made by the project's own writers.

use std::io::{Cursor, Write};
use std::path::Path;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::prelude::*;
use data::Dataset;
use data::datasets::cifar::{CifarDataset, CifarKind, write_cifar10_batch};
use data::datasets::idx::{IdxDataset, Split, read_idx};
use data::datasets::image_folder::{ImageFolder, decode_file_u8};
use image::{ImageFormat, RgbImage};
use model_zoo::ModelOptions;
use trainer::config::{Progress, TrainConfig, TrainControl};

use crate::{Scratch, Target};

/// Every reader, in the order the command line runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "idx",
        about: "MNIST's IDX files, raw or gzip (data::datasets::idx: read_idx, IdxDataset)",
        seeds: idx_seeds,
        read: read_idx_input,
    },
    Target {
        name: "cifar",
        about: "CIFAR-10 binary batches (data::datasets::cifar::CifarDataset)",
        seeds: cifar_seeds,
        read: read_cifar_input,
    },
    Target {
        name: "image",
        about: "PNG, JPEG and BMP files (data::datasets::image_folder::decode_file_u8)",
        seeds: image_seeds,
        read: read_image_input,
    },
    Target {
        name: "image-folder",
        about: "image-folder trees: class names, files, extensions, links (ImageFolder)",
        seeds: folder_seeds,
        read: read_folder_input,
    },
    Target {
        name: "pth",
        about: "torchvision .pth state dicts, zip and legacy pickles (weights::load_module_weights)",
        seeds: pth_seeds,
        read: read_pth_input,
    },
    Target {
        name: "safetensors",
        about: ".safetensors weights (transfer::with_own_head)",
        seeds: safetensors_seeds,
        read: read_safetensors_input,
    },
    Target {
        name: "burnpack",
        about: "the zoo's .bpk weights, head size read first (transfer::with_own_head)",
        seeds: burnpack_seeds,
        read: read_burnpack_input,
    },
    Target {
        name: "run-files",
        about: "a run's checkpoint.json, config.json and manifest.json (Checkpoint::read, \
                config::load, manifest::verify_run)",
        seeds: run_file_seeds,
        read: read_run_file_input,
    },
    Target {
        name: "recipe",
        about: "recipe files, read and applied to a run's configuration (trainer::recipe)",
        seeds: recipe_seeds,
        read: read_recipe_input,
    },
    Target {
        name: "tar-gz",
        about: "dataset archives (data::datasets::fetch::unpack), which must stay inside their folder",
        seeds: tar_seeds,
        read: read_tar_input,
    },
];

fn joined(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(" | "))
    }
}

/// Reads every sample of `dataset` (decoding each), collecting the errors.
fn read_all(dataset: &dyn Dataset, problems: &mut Vec<String>) {
    for index in 0..dataset.len() {
        let label = dataset.label(index);
        if label >= dataset.classes().len() {
            panic!(
                "sample {index} has label {label} of {} classes",
                dataset.classes().len()
            );
        }
        if let Err(e) = dataset.get(index) {
            problems.push(e.to_string());
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writes to memory");
    encoder.finish().expect("writes to memory")
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

const IDX_IMAGES: usize = 4;

fn idx_seeds(scratch: &Scratch) -> Vec<Vec<u8>> {
    let pixels: Vec<u8> = (0..IDX_IMAGES * 28 * 28)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let images = idx(&[IDX_IMAGES as u32, 28, 28], &pixels);
    let labels = idx(&[IDX_IMAGES as u32], &[3, 0, 9, 1]);
    scratch.write("images-ubyte", &images);
    scratch.write("labels-ubyte", &labels);
    vec![images.clone(), labels.clone(), gzip(&images), gzip(&labels)]
}

/// The input as an IDX array, then as the images and as the labels of a dataset whose other
/// half is whole.
fn read_idx_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let path = scratch.write("input-ubyte", input);
    let array = read_idx(&path).map_err(|e| e.to_string())?;
    let images = scratch.path("images-ubyte");
    let labels = scratch.path("labels-ubyte");
    let as_images = IdxDataset::open(&path, &labels, 10);
    let as_labels = IdxDataset::open(&images, &path, 10);
    let mut problems = Vec::new();
    for opened in [as_images, as_labels] {
        match opened {
            Ok(dataset) => read_all(&dataset, &mut problems),
            Err(e) => problems.push(e.to_string()),
        }
    }
    // One of the two readings fails by design: only both failing is a refusal.
    if problems.len() == 2 && !array.dims.is_empty() {
        joined(problems)
    } else {
        Ok(())
    }
}

fn cifar_seeds(scratch: &Scratch) -> Vec<Vec<u8>> {
    let records: Vec<(u8, Vec<u8>)> = (0..3u8)
        .map(|label| (label * 3, (0..3072).map(|i| (i as u8) ^ label).collect()))
        .collect();
    let path = scratch.path("seed.bin");
    write_cifar10_batch(&path, &records).expect("the scratch folder is writable");
    vec![std::fs::read(&path).expect("just written")]
}

fn read_cifar_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    scratch.write("cifar/test_batch.bin", input);
    let dataset = CifarDataset::open(&scratch.path("cifar"), CifarKind::Cifar10, Split::Test)
        .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    read_all(&dataset, &mut problems);
    joined(problems)
}

fn encoded(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, format)
        .expect("encodes to memory");
    bytes.into_inner()
}

fn image_seeds(_: &Scratch) -> Vec<Vec<u8>> {
    let image = RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 128]));
    let gray = image::DynamicImage::ImageRgb8(image.clone()).into_luma16();
    let mut gray_png = Cursor::new(Vec::new());
    gray.write_to(&mut gray_png, ImageFormat::Png)
        .expect("encodes to memory");
    vec![
        encoded(&image, ImageFormat::Png),
        encoded(&image, ImageFormat::Jpeg),
        encoded(&image, ImageFormat::Bmp),
        gray_png.into_inner(),
    ]
}

fn read_image_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let path = scratch.write("input-image", input);
    let mut problems = Vec::new();
    for channels in [1, 3] {
        match decode_file_u8(&path, channels) {
            Ok(image) => assert_eq!(
                image.pixels.len(),
                image.channels * image.height * image.width,
                "decoded pixels must fill the image"
            ),
            Err(e) => problems.push(e.to_string()),
        }
    }
    joined(problems)
}

/// Reads a folder tree out of bytes: a class count, then per class a name and its files (an
/// extension and the file's bytes), then whether to add a link back to the root.
struct TreeBytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl TreeBytes<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.bytes.len());
        let end = (start + n).min(self.bytes.len());
        self.at = start + n;
        &self.bytes[start..end]
    }
}

const TREE_EXTENSIONS: [&str; 7] = ["png", "jpg", "JPEG", "bmp", "txt", "gif", ""];

/// A class of a folder tree: its name and its files, each an extension's index and the bytes.
type ClassFiles<'a> = (&'a str, Vec<(u8, Vec<u8>)>);

fn tree_bytes(classes: &[ClassFiles]) -> Vec<u8> {
    let mut bytes = vec![classes.len() as u8 - 1];
    for (name, files) in classes {
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(files.len() as u8);
        for (extension, content) in files {
            bytes.push(*extension);
            bytes.extend_from_slice(&(content.len() as u16).to_le_bytes());
            bytes.extend_from_slice(content);
        }
    }
    bytes.push(1);
    bytes
}

fn folder_seeds(_: &Scratch) -> Vec<Vec<u8>> {
    let image = RgbImage::from_fn(6, 5, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 9]));
    let png = encoded(&image, ImageFormat::Png);
    let jpeg = encoded(&image, ImageFormat::Jpeg);
    vec![tree_bytes(&[
        ("cat", vec![(0, png.clone()), (1, jpeg.clone())]),
        (
            "dog",
            vec![(3, encoded(&image, ImageFormat::Bmp)), (0, png)],
        ),
    ])]
}

#[cfg(unix)]
fn file_name(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

#[cfg(not(unix))]
fn file_name(bytes: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

fn read_folder_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let root = scratch.path("tree");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("the scratch folder is writable");
    let mut tree = TreeBytes {
        bytes: input,
        at: 0,
    };
    for class in 0..1 + tree.byte() % 3 {
        let length = usize::from(tree.byte() % 9);
        let name: Vec<u8> = tree
            .take(length)
            .iter()
            .map(|&b| if b == 0 || b == b'/' { b'_' } else { b })
            .collect();
        let name = match &name[..] {
            b"" | b"." | b".." => format!("class{class}").into_bytes(),
            _ => name,
        };
        let dir = root.join(file_name(&name));
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        for file in 0..tree.byte() % 4 {
            let extension = TREE_EXTENSIONS[usize::from(tree.byte()) % TREE_EXTENSIONS.len()];
            let length = u16::from_le_bytes([tree.byte(), tree.byte()]);
            let content = tree.take(usize::from(length)).to_vec();
            let path = dir.join(format!("{file}.{extension}"));
            std::fs::write(path, content).expect("the scratch folder is writable");
        }
    }
    #[cfg(unix)]
    if tree.byte().is_multiple_of(2) {
        let _ = std::os::unix::fs::symlink(&root, root.join("loop"));
    }
    let mut problems = Vec::new();
    for channels in [3, 1] {
        match ImageFolder::open(&root, channels) {
            Ok(folder) => {
                read_all(&folder, &mut problems);
                if let Err(e) = folder.largest_side(4) {
                    problems.push(e.to_string());
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    joined(problems)
}

fn lenet5(device: &Device) -> model_zoo::ZooModel {
    model_zoo::create("lenet5", &ModelOptions::new(), device).expect("lenet5 is in the zoo")
}

/// Loads the input as weights for LeNet-5, the way `--weights FILE` does.
fn read_weights(scratch: &Scratch, input: &[u8], extension: &str) -> Result<(), String> {
    let path = scratch.write(&format!("weights/input.{extension}"), input);
    let device = Device::flex();
    let info = model_zoo::info("lenet5").expect("lenet5 is in the zoo");
    trainer::transfer::with_own_head(info, &ModelOptions::new(), &path, &device)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn pth_seeds(_: &Scratch) -> Vec<Vec<u8>> {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../model-zoo/tests/fixtures/weights");
    ["linear_head.pth", "linear-legacy.pth"]
        .iter()
        .map(|name| std::fs::read(fixtures.join(name)).expect("the repository's fixtures"))
        .collect()
}

/// The repository's torchvision fixtures hold linear layers (16 → 5 in torch's zip format,
/// 4 → 3 in its legacy one): the input is read into both, through the pickle check.
fn read_pth_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let path = scratch.write("input.pth", input);
    let device = Device::flex();
    let mut problems = Vec::new();
    for [inputs, outputs] in [[16, 5], [4, 3]] {
        let linear = LinearConfig::new(inputs, outputs).init(&device);
        match model_zoo::weights::load_module_weights(linear, &path) {
            Ok(_) => return Ok(()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    joined(problems)
}

fn safetensors_seeds(scratch: &Scratch) -> Vec<Vec<u8>> {
    let path = scratch.path("seed.safetensors");
    model_zoo::weights::save_safetensors(&lenet5(&Device::flex()), &path)
        .expect("the scratch folder is writable");
    vec![std::fs::read(&path).expect("just written")]
}

fn read_safetensors_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    read_weights(scratch, input, "safetensors")
}

fn burnpack_seeds(scratch: &Scratch) -> Vec<Vec<u8>> {
    let path = scratch.path("seed.bpk");
    lenet5(&Device::flex())
        .save_file(&path)
        .expect("the scratch folder is writable");
    vec![std::fs::read(&path).expect("just written")]
}

fn read_burnpack_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    read_weights(scratch, input, "bpk")
}

/// A real run, stopped after its first step: its `checkpoint.json`, `config.json` and
/// `manifest.json` are the seeds; the run folder stays as the companion of each input.
fn run_file_seeds(scratch: &Scratch) -> Vec<Vec<u8>> {
    let out = scratch.path("run");
    let config = TrainConfig {
        epochs: 1,
        batch_size: 16,
        limit: Some(64),
        test_per_class: Some(1),
        workers: 1,
        progress: Progress::Quiet,
        out: out.clone(),
        ..TrainConfig::new("lenet5")
    };
    let control = TrainControl {
        stop_after_steps: Some(1),
        ..TrainControl::default()
    };
    trainer::train::train(&config, &control).expect("a one-step run of LeNet-5");
    let seeds = ["checkpoint.json", "config.json", "manifest.json"]
        .map(|name| std::fs::read(out.join(name)).expect("the run wrote it"));
    std::fs::create_dir_all(scratch.path("input")).expect("the scratch folder is writable");
    seeds.to_vec()
}

/// The input as each of a run's three JSON files in turn, beside the run's other files.
fn read_run_file_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let run = scratch.path("run");
    let input_run = scratch.path("input");
    let mut accepted = 0;
    let mut problems = Vec::new();
    for name in ["checkpoint.json", "config.json", "manifest.json"] {
        for entry in std::fs::read_dir(&run).expect("the seed run") {
            let entry = entry.expect("the seed run");
            std::fs::copy(entry.path(), input_run.join(entry.file_name()))
                .expect("the scratch folder is writable");
        }
        std::fs::write(input_run.join(name), input).expect("the scratch folder is writable");
        let read = match name {
            "checkpoint.json" => trainer::checkpoint::Checkpoint::read(&input_run).map(|_| ()),
            "config.json" => trainer::config::load(&input_run).map(|_| ()),
            _ => trainer::manifest::verify_run(&input_run).map(|_| ()),
        };
        match read {
            Ok(()) => accepted += 1,
            Err(e) => problems.push(e.to_string()),
        }
    }
    // A seed is one of the three files: it is accepted when one reading accepts it.
    if accepted > 0 {
        Ok(())
    } else {
        joined(problems)
    }
}

fn tar_seeds(_: &Scratch) -> Vec<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("data/cat/0.png", &b"not really an image"[..]),
        ("data/dog/1.png", b"nor this"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, path, content)
            .expect("writes to memory");
    }
    vec![gzip(&archive.into_inner().expect("writes to memory"))]
}

/// Unpacks into `unpacked/inside`; anything that appears beside `inside` escaped.
fn read_tar_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let archive = scratch.write("input.tar.gz", input);
    let outer = scratch.path("unpacked");
    let _ = std::fs::remove_dir_all(&outer);
    let inside = outer.join("inside");
    std::fs::create_dir_all(&inside).expect("the scratch folder is writable");
    let unpacked = data::datasets::fetch::unpack(&archive, &inside).map_err(|e| e.to_string());
    let escaped: Vec<_> = std::fs::read_dir(&outer)
        .expect("just made")
        .map(|entry| entry.expect("listable").file_name())
        .filter(|name| name != "inside")
        .collect();
    assert!(
        escaped.is_empty(),
        "the archive wrote outside its folder: {escaped:?}"
    );
    unpacked
}

fn recipe_seeds(_: &Scratch) -> Vec<Vec<u8>> {
    trainer::recipe::BUILT_IN
        .iter()
        .map(|(_, text)| text.as_bytes().to_vec())
        .collect()
}

/// Reads the input as a recipe file and applies it over the defaults; what it accepts must make
/// a configuration that a run accepts too, or is refused there with a reason.
fn read_recipe_input(scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    let path = scratch.write("recipe.toml", input);
    let recipe =
        trainer::recipe::Recipe::find(&path.display().to_string()).map_err(|e| e.to_string())?;
    let config = recipe
        .apply(TrainConfig::new("lenet5"), |_| false)
        .map_err(|e| e.to_string())?;
    config.check().map_err(|e| e.to_string())
}
