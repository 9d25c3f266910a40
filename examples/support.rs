//! What the examples share: a folder of images read as torchvision's `ImageFolder` reads one,
//! and a small stand-in folder for running them offline.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;

/// ImageNet's channel statistics, which torchvision's pretrained weights expect.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A folder of images, one sub-folder per class (`root/cat/1.jpg`), as torchvision's
/// `ImageFolder`: classes in sorted order, each image resized to `size × size`, normalised.
pub struct ImageFolder {
    /// The class names, sorted; a label is an index into them.
    pub classes: Vec<String>,
    /// Each image's file.
    pub files: Vec<PathBuf>,
    /// Each image's class.
    pub labels: Vec<usize>,
    /// CHW pixels of each image.
    pub pixels: Vec<Vec<f32>>,
    /// The side images were resized to.
    pub size: usize,
}

impl ImageFolder {
    /// Reads every PNG, JPEG and BMP under `root`'s class folders; an unreadable image is an
    /// error naming its file.
    pub fn read(root: &Path, size: usize) -> Result<Self, String> {
        let listing = |dir: &Path| -> Result<Vec<PathBuf>, String> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            entries.sort();
            Ok(entries)
        };
        let class_dirs: Vec<PathBuf> = listing(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            return Err(format!("{}: no class folders", root.display()));
        }
        let mut folder = Self {
            classes: Vec::new(),
            files: Vec::new(),
            labels: Vec::new(),
            pixels: Vec::new(),
            size,
        };
        for (label, dir) in class_dirs.iter().enumerate() {
            folder.classes.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for file in listing(dir)? {
                let extension = file
                    .extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                if !["png", "jpg", "jpeg", "bmp"].contains(&extension.as_str()) {
                    continue;
                }
                let image = image::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                let image = image
                    .resize_exact(
                        size as u32,
                        size as u32,
                        image::imageops::FilterType::Triangle,
                    )
                    .to_rgb8();
                let plane = size * size;
                let mut chw = vec![0.0; 3 * plane];
                for (index, pixel) in image.pixels().enumerate() {
                    for channel in 0..3 {
                        let value = f32::from(pixel[channel]) / 255.0;
                        chw[channel * plane + index] = (value - MEAN[channel]) / STD[channel];
                    }
                }
                folder.files.push(file);
                folder.labels.push(label);
                folder.pixels.push(chw);
            }
        }
        if folder.files.is_empty() {
            return Err(format!("{}: no PNG, JPEG or BMP images", root.display()));
        }
        Ok(folder)
    }

    /// The images `indices` as one NCHW batch, and their labels.
    pub fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let pixels: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.pixels[i].iter().copied())
            .collect();
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        let shape = [indices.len(), 3, self.size, self.size];
        (
            Tensor::from_data(TensorData::new(pixels, shape), device),
            Tensor::from_data(TensorData::new(labels, [indices.len()]), device),
        )
    }
}

/// Ends the example with the error's message and exit status 1 when `result` is one.
pub fn exit_on_error(result: Result<(), String>) {
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// Writes a stand-in image folder into `root` (unless it is there): two classes of striped
/// images, `horizontal` and `vertical`, with stripes of random width, phase and colours.
pub fn stand_in_folder(root: &Path, per_class: usize) -> Result<(), String> {
    if root.is_dir() {
        return Ok(());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |bound: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(bound)) as u32
    };
    for class in ["horizontal", "vertical"] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for index in 0..per_class {
            let (width, phase) = (2 + next(6), next(8));
            let colours = [[0u8; 3], [0; 3]].map(|_| [0, 1, 2].map(|_| next(256) as u8));
            let image = image::RgbImage::from_fn(48, 48, |x, y| {
                let along = if class == "horizontal" { y } else { x };
                image::Rgb(colours[(((along + phase) / width) % 2) as usize])
            });
            let file = dir.join(format!("{index}.png"));
            image
                .save(&file)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok(())
}
