//! `cargo xtask bench data`: images/s of the data pipeline beside torchvision's `DataLoader`
//! (`benches/python/data_bench.py`) on the same files, with 1 and 2 workers.
//!
//! (a) CIFAR-10 JPEGs at 32×32: random crop (pad 4), mirror, normalise.
//! (b) 500×375 JPEGs (CIFAR images upscaled and saved, quality 90): random-resized crop to 224,
//!     mirror, colour shift, PCA lighting, normalise.
//!
//! Each figure is the median of three full passes, ours and torchvision's interleaved. Then,
//! where the time of (b) goes: each step timed alone on one thread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use data::datasets::image_folder::ImageFolder;
use data::transforms::{
    ColorShift, HorizontalFlip, Normalize, OffsetDistribution, PaddingMode, Pca, PcaLighting,
    RandomCrop, RandomResizedCrop,
};
use data::{Compose, DataError, DataLoader, Dataset, LoaderConfig, Rng, Subset, Transform};
use serde::{Deserialize, Serialize};

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataBenchRow {
    /// `cifar32` or `jpeg224`.
    pub workload: String,
    /// Worker threads (ours) or processes (torchvision's).
    pub workers: usize,
    /// Images per second through this project's pipeline.
    pub images_per_second: f64,
    /// Images per second through torchvision's DataLoader, when it ran.
    pub torchvision_images_per_second: Option<f64>,
}

/// One step of the 224 workload, timed alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRow {
    /// What the step does.
    pub stage: String,
    /// Milliseconds per image on one thread.
    pub ms_per_image: f64,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct DataBenchConfig {
    /// The CIFAR-10 JPEG tarball (class-per-folder inside).
    pub cifar_tarball: PathBuf,
    /// Where to extract it and write the large JPEGs.
    pub work_dir: PathBuf,
    /// Images per measurement for the 32×32 workload.
    pub small_images: usize,
    /// Images per measurement (and files written) for the 224 workload.
    pub large_images: usize,
    /// Python with torch and torchvision, if any.
    pub python: Option<PathBuf>,
}

const BATCH: usize = 128;

/// Passes per measurement, ours and torchvision's interleaved; the median is reported (the
/// machine is shared and noisy).
const REPEATS: usize = 3;

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn extract(tarball: &Path, into: &Path) -> Result<PathBuf, DataError> {
    let root = into.join("cifar10");
    if !root.join("train").is_dir() {
        let file =
            std::fs::File::open(tarball).map_err(|e| DataError::io(tarball, "cannot open", e))?;
        tar::Archive::new(flate2::read::GzDecoder::new(file))
            .unpack(into)
            .map_err(|e| DataError::new(tarball, format!("cannot extract: {e}")))?;
    }
    Ok(root.join("train"))
}

/// Writes `count` 500×375 JPEGs made by upscaling CIFAR images, one folder per class.
fn write_large_jpegs(source: &ImageFolder, dir: &Path, count: usize) -> Result<PathBuf, DataError> {
    let root = dir.join("jpeg500x375");
    let marker = root.join(format!(".complete-{count}"));
    if marker.is_file() {
        return Ok(root);
    }
    let step = (source.len() / count).max(1);
    for (written, index) in (0..source.len()).step_by(step).take(count).enumerate() {
        let path = source.path(index);
        let class = &source.classes()[source.label(index)];
        let class_dir = root.join(class);
        std::fs::create_dir_all(&class_dir)
            .map_err(|e| DataError::io(&class_dir, "cannot create", e))?;
        let small = image::open(path).map_err(|e| DataError::new(path, e.to_string()))?;
        let large = small
            .resize_exact(500, 375, image::imageops::FilterType::Triangle)
            .into_rgb8();
        let target = class_dir.join(format!("{written:05}.jpg"));
        let mut file = std::fs::File::create(&target)
            .map_err(|e| DataError::io(&target, "cannot write", e))?;
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 90)
            .encode_image(&large)
            .map_err(|e| DataError::new(&target, e.to_string()))?;
    }
    std::fs::write(&marker, b"").map_err(|e| DataError::io(&marker, "cannot write", e))?;
    Ok(root)
}

fn cifar_transform() -> Compose {
    Compose::identity()
        .then(RandomCrop {
            size: 32,
            padding: 4,
            mode: PaddingMode::Zero,
        })
        .then(HorizontalFlip { probability: 0.5 })
        .then(Normalize::cifar10())
}

fn large_transform() -> Compose {
    Compose::identity()
        .then(RandomResizedCrop::new(224))
        .then(HorizontalFlip { probability: 0.5 })
        .then(ColorShift {
            distribution: OffsetDistribution::Normal { std: 0.05 },
        })
        .then(PcaLighting {
            std: 0.1,
            pca: Pca::IMAGENET,
        })
        .then(Normalize::imagenet())
}

/// Images/s of one full pass over `dataset` with `workers` threads.
fn measure(
    dataset: Arc<dyn Dataset>,
    transform: Compose,
    workers: usize,
) -> Result<f64, DataError> {
    let config = LoaderConfig {
        workers,
        prefetch: 2 * workers,
        ..LoaderConfig::new(BATCH)
    };
    let images = dataset.len();
    let loader = DataLoader::new(dataset, Arc::new(transform), config);
    let started = Instant::now();
    for batch in loader.epoch(0) {
        std::hint::black_box(batch?);
    }
    Ok(images as f64 / started.elapsed().as_secs_f64())
}

fn torchvision(
    python: &Path,
    folder: &Path,
    workload: &str,
    images: usize,
    workers: usize,
) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/data_bench.py");
    let output = Command::new(python)
        .arg(script)
        .args(["--folder", &folder.display().to_string()])
        .args(["--workload", workload])
        .args(["--images", &images.to_string()])
        .args(["--workers", &workers.to_string()])
        .args(["--batch-size", &BATCH.to_string()])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "torchvision run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    json["images_per_second"].as_f64()
}

/// Each step of the 224 workload timed alone on one thread over `dataset`, with the older path
/// (convert the whole photo to `f32`, then crop) beside the one the pipeline takes (crop from
/// the decoded bytes).
pub fn stages(dataset: &dyn Dataset) -> Result<Vec<StageRow>, DataError> {
    let crop = RandomResizedCrop::new(224);
    let colour: [(&str, Box<dyn Transform>); 4] = [
        ("mirror", Box::new(HorizontalFlip { probability: 1.0 })),
        (
            "colour shift",
            Box::new(ColorShift {
                distribution: OffsetDistribution::Normal { std: 0.05 },
            }),
        ),
        (
            "PCA lighting",
            Box::new(PcaLighting {
                std: 0.1,
                pca: Pca::IMAGENET,
            }),
        ),
        ("normalise", Box::new(Normalize::imagenet())),
    ];
    let mut seconds = [0.0; 8];
    let mut timed =
        |slot: usize, started: Instant| seconds[slot] += started.elapsed().as_secs_f64();
    for index in 0..dataset.len() {
        let started = Instant::now();
        let Some(sample) = dataset.get_u8(index) else {
            return Err(DataError::new(
                "stage timing",
                "the dataset does not offer decoded bytes",
            ));
        };
        let sample = sample?;
        timed(0, started);
        let started = Instant::now();
        let converted = std::hint::black_box(sample.image.to_image());
        timed(1, started);
        let started = Instant::now();
        std::hint::black_box(crop.apply(converted, &mut Rng::new(index as u64)));
        timed(2, started);
        let started = Instant::now();
        let mut image = crop
            .apply_u8(&sample.image, &mut Rng::new(index as u64))
            .expect("a random-resized crop reads bytes");
        timed(3, started);
        for (slot, (_, step)) in colour.iter().enumerate() {
            let started = Instant::now();
            image = step.apply(image, &mut Rng::new(index as u64));
            timed(4 + slot, started);
        }
        std::hint::black_box(image);
    }
    let names = [
        "read and decode the JPEG to 8-bit RGB",
        "old path: convert the whole photo to f32",
        "old path: random-resized crop of the f32 photo",
        "random-resized crop straight from the bytes",
    ]
    .into_iter()
    .chain(colour.iter().map(|(name, _)| *name));
    Ok(names
        .zip(seconds)
        .map(|(stage, total)| StageRow {
            stage: stage.to_string(),
            ms_per_image: 1e3 * total / dataset.len().max(1) as f64,
        })
        .collect())
}

/// Runs both workloads with 1 and 2 workers, beside torchvision when `python` is given, then
/// times the 224 workload's steps.
pub fn run(config: &DataBenchConfig) -> Result<(Vec<DataBenchRow>, Vec<StageRow>), DataError> {
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|e| DataError::io(&config.work_dir, "cannot create", e))?;
    let cifar_root = extract(&config.cifar_tarball, &config.work_dir)?;
    let cifar = Arc::new(ImageFolder::open(&cifar_root, 3)?);
    let large_root = write_large_jpegs(&cifar, &config.work_dir, config.large_images)?;
    let large: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&large_root, 3)?);
    // Evenly spread over the classes, as the Python side's sampler does.
    let step = (cifar.len() / config.small_images).max(1);
    let picks: Vec<usize> = (0..cifar.len())
        .step_by(step)
        .take(config.small_images)
        .collect();
    let small: Arc<dyn Dataset> = Arc::new(Subset::new(cifar, picks));

    let mut rows = Vec::new();
    for (workload, dataset, folder, images) in [
        ("cifar32", &small, &cifar_root, config.small_images),
        ("jpeg224", &large, &large_root, config.large_images),
    ] {
        for workers in [1, 2] {
            let mut ours = Vec::with_capacity(REPEATS);
            let mut theirs = Vec::with_capacity(REPEATS);
            for _ in 0..REPEATS {
                let transform = if workload == "cifar32" {
                    cifar_transform()
                } else {
                    large_transform()
                };
                ours.push(measure(Arc::clone(dataset), transform, workers)?);
                if let Some(python) = config.python.as_deref() {
                    theirs.extend(torchvision(python, folder, workload, images, workers));
                }
            }
            let ours = median(&mut ours).expect("at least one measurement");
            let theirs = median(&mut theirs);
            rows.push(DataBenchRow {
                workload: workload.to_string(),
                workers,
                images_per_second: ours,
                torchvision_images_per_second: theirs,
            });
        }
    }
    Ok((rows, stages(large.as_ref())?))
}

/// The steps as a markdown table.
pub fn stage_table(stages: &[StageRow]) -> String {
    let mut out =
        String::from("| step of the 224 workload | ms per image, one thread |\n|---|---|\n");
    for row in stages {
        out.push_str(&format!("| {} | {:.3} |\n", row.stage, row.ms_per_image));
    }
    out
}

/// The rows as a markdown table with ratios.
pub fn table(rows: &[DataBenchRow]) -> String {
    let mut out = String::from(
        "| workload | workers | ours (images/s) | torchvision (images/s) | ratio | ours vs 1 worker |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in rows {
        let single = rows
            .iter()
            .find(|r| r.workload == row.workload && r.workers == 1)
            .map_or(f64::NAN, |r| r.images_per_second);
        let (theirs, ratio) = match row.torchvision_images_per_second {
            Some(t) => (
                format!("{t:.0}"),
                format!("{:.2}×", row.images_per_second / t),
            ),
            None => ("—".into(), "—".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {:.0} | {theirs} | {ratio} | {:.2}× |\n",
            row.workload,
            row.workers,
            row.images_per_second,
            row.images_per_second / single
        ));
    }
    out
}
