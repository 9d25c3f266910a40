//! One sub-folder per class, as torchvision's `ImageFolder`: classes sorted by name, files
//! sorted by name within each, JPEG / PNG / BMP decoded with `image` and converted to the
//! channels asked for (grey, palette and RGBA included).

use std::path::{Path, PathBuf};

use crate::datasets::{Dataset, Sample, SampleU8};
use crate::error::DataError;
use crate::image::{Image, ImageU8};

const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// Images found under a root folder.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    files: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    channels: usize,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, "cannot list folder", e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DataError::io(dir, "cannot list folder", e))?;
    entries.sort();
    Ok(entries)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

impl ImageFolder {
    /// Scans `root`; images decode to `channels` (1 or 3) channels.
    pub fn open(root: &Path, channels: usize) -> Result<Self, DataError> {
        if channels != 1 && channels != 3 {
            return Err(DataError::new(
                root,
                format!("{channels} channels asked; 1 or 3 supported"),
            ));
        }
        let mut classes = Vec::new();
        let mut files = Vec::new();
        for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len();
            classes.push(
                class_dir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for file in sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| is_image(p))
            {
                files.push((file, label));
            }
        }
        if files.is_empty() {
            return Err(DataError::new(
                root,
                "no images found: expected one sub-folder per class holding .jpg, .png or .bmp files",
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            files,
            classes,
            channels,
        })
    }

    /// The folder scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of sample `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.files[index].0
    }

    /// The longer side of the largest of up to `samples` images spread evenly over the folder
    /// (every class, in order), read from the files' headers without decoding them: what a
    /// default recipe is chosen by.
    pub fn largest_side(&self, samples: usize) -> Result<usize, DataError> {
        let step = self.files.len().div_ceil(samples.max(1)).max(1);
        let mut largest = 0;
        for (path, _) in self.files.iter().step_by(step) {
            let (width, height) = image::image_dimensions(path)
                .map_err(|e| DataError::new(path, format!("cannot read the image's size: {e}")))?;
            largest = largest.max(width.max(height) as usize);
        }
        Ok(largest)
    }
}

/// Decodes an image file into `channels` channels (1: luma, 3: RGB).
pub fn decode_file(path: &Path, channels: usize) -> Result<Image, DataError> {
    decode_file_u8(path, channels).map(|image| image.to_image())
}

/// Decodes an image file into `channels` channels (1: luma, 3: RGB) of 8-bit pixels.
pub fn decode_file_u8(path: &Path, channels: usize) -> Result<ImageU8, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read image", e))?;
    if bytes.is_empty() {
        return Err(DataError::new(path, "empty file (0 bytes), not an image"));
    }
    let decoded = image::load_from_memory(&bytes)
        .map_err(|e| DataError::new(path, format!("cannot decode image: {e}")))?;
    let (height, width) = (decoded.height() as usize, decoded.width() as usize);
    let (channels, pixels) = match channels {
        1 => (1, decoded.into_luma8().into_raw()),
        _ => (3, decoded.into_rgb8().into_raw()),
    };
    Ok(ImageU8 {
        channels,
        height,
        width,
        pixels,
    })
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn label(&self, index: usize) -> usize {
        self.files[index].1
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let (path, label) = &self.files[index];
        Ok(Sample {
            image: decode_file(path, self.channels)?,
            label: *label,
        })
    }

    fn get_u8(&self, index: usize) -> Option<Result<SampleU8, DataError>> {
        let (path, label) = &self.files[index];
        Some(decode_file_u8(path, self.channels).map(|image| SampleU8 {
            image,
            label: *label,
        }))
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }
}
