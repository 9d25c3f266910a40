//! Colour transforms: per-channel shifts, AlexNet's PCA lighting, normalisation.

use serde::{Deserialize, Serialize};

use crate::datasets::Dataset;
use crate::error::DataError;
use crate::image::Image;
use crate::rng::Rng;
use crate::transforms::Transform;

/// A distribution of per-channel offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OffsetDistribution {
    /// Uniform in ±`max`.
    Uniform {
        /// Largest offset.
        max: f64,
    },
    /// Normal with standard deviation `std`.
    Normal {
        /// Standard deviation.
        std: f64,
    },
}

/// The chapter's colour shifting: add a random offset to each of R, G and B (values stay in
/// [0, 1]).
#[derive(Debug, Clone)]
pub struct ColorShift {
    /// Where each channel's offset comes from.
    pub distribution: OffsetDistribution,
}

impl Transform for ColorShift {
    fn apply(&self, mut image: Image, rng: &mut Rng) -> Image {
        let plane = image.height * image.width;
        for channel in image.data.chunks_exact_mut(plane) {
            let offset = match self.distribution {
                OffsetDistribution::Uniform { max } => rng.uniform_range(-max, max),
                OffsetDistribution::Normal { std } => std * rng.normal(),
            } as f32;
            for value in channel {
                *value = (*value + offset).clamp(0.0, 1.0);
            }
        }
        image
    }
}

/// Principal components of RGB pixel values: eigenvalues and unit eigenvectors (columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Eigenvalues, largest first.
    pub eigenvalues: [f64; 3],
    /// `eigenvectors[c][k]`: channel `c` of the `k`-th eigenvector.
    pub eigenvectors: [[f64; 3]; 3],
}

impl Pca {
    /// ImageNet's published components for pixels in [0, 1] (as fb.resnet.torch and timm use).
    pub const IMAGENET: Pca = Pca {
        eigenvalues: [0.2175, 0.0188, 0.0045],
        eigenvectors: [
            [-0.5675, 0.7192, 0.4009],
            [-0.5808, -0.0045, -0.8140],
            [-0.5836, -0.6948, 0.4203],
        ],
    };

    /// Components of the RGB covariance of up to `samples` images of `dataset` (evenly spaced).
    pub fn from_dataset(dataset: &dyn Dataset, samples: usize) -> Result<Pca, DataError> {
        let n = dataset.len();
        let step = (n / samples.max(1)).max(1);
        let (mut sum, mut outer, mut count) = ([0.0f64; 3], [[0.0f64; 3]; 3], 0usize);
        for index in (0..n).step_by(step).take(samples) {
            let image = dataset.get(index)?.image;
            let plane = image.height * image.width;
            if image.channels != 3 {
                return Err(DataError::new(
                    "dataset",
                    format!(
                        "PCA lighting needs RGB images; sample {index} has {} channels",
                        image.channels
                    ),
                ));
            }
            for p in 0..plane {
                let rgb = [
                    image.data[p],
                    image.data[plane + p],
                    image.data[2 * plane + p],
                ];
                for i in 0..3 {
                    sum[i] += f64::from(rgb[i]);
                    for j in 0..3 {
                        outer[i][j] += f64::from(rgb[i]) * f64::from(rgb[j]);
                    }
                }
            }
            count += plane;
        }
        let count = count.max(1) as f64;
        let mut covariance = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                covariance[i][j] = outer[i][j] / count - sum[i] * sum[j] / (count * count);
            }
        }
        Ok(symmetric_eigen(covariance))
    }
}

/// Eigen-decomposition of a symmetric 3×3 matrix by Jacobi rotations.
// Index loops keep the rotation as written in the textbook algorithm.
#[allow(clippy::needless_range_loop)]
pub fn symmetric_eigen(mut a: [[f64; 3]; 3]) -> Pca {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..50 {
        let (mut p, mut q, mut largest) = (0, 1, 0.0);
        for i in 0..3 {
            for j in i + 1..3 {
                if a[i][j].abs() > largest {
                    (p, q, largest) = (i, j, a[i][j].abs());
                }
            }
        }
        if largest < 1e-15 {
            break;
        }
        let theta = 0.5 * (2.0 * a[p][q]).atan2(a[q][q] - a[p][p]);
        let (c, s) = (theta.cos(), theta.sin());
        for k in 0..3 {
            let (akp, akq) = (a[k][p], a[k][q]);
            a[k][p] = c * akp - s * akq;
            a[k][q] = s * akp + c * akq;
        }
        for k in 0..3 {
            let (apk, aqk) = (a[p][k], a[q][k]);
            a[p][k] = c * apk - s * aqk;
            a[q][k] = s * apk + c * aqk;
        }
        for row in &mut v {
            let (vp, vq) = (row[p], row[q]);
            row[p] = c * vp - s * vq;
            row[q] = s * vp + c * vq;
        }
    }
    let mut order = [0, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    Pca {
        eigenvalues: order.map(|k| a[k][k]),
        eigenvectors: [0, 1, 2].map(|c| order.map(|k| v[c][k])),
    }
}

/// AlexNet's "fancy PCA" (Krizhevsky et al. 2012, §4.1): add Σ_k α_k λ_k p_k to every RGB pixel,
/// with α_k ~ N(0, `std`) drawn once per image (0.1 in the paper).
#[derive(Debug, Clone)]
pub struct PcaLighting {
    /// Standard deviation of the α_k.
    pub std: f64,
    /// The components.
    pub pca: Pca,
}

impl PcaLighting {
    /// The RGB offset for one draw of the α_k.
    pub fn offset(&self, rng: &mut Rng) -> [f32; 3] {
        let alpha: [f64; 3] = [0, 1, 2].map(|_| self.std * rng.normal());
        [0, 1, 2].map(|c| {
            (0..3)
                .map(|k| self.pca.eigenvectors[c][k] * alpha[k] * self.pca.eigenvalues[k])
                .sum::<f64>() as f32
        })
    }
}

impl Transform for PcaLighting {
    fn apply(&self, mut image: Image, rng: &mut Rng) -> Image {
        if image.channels != 3 {
            return image;
        }
        let offset = self.offset(rng);
        let plane = image.height * image.width;
        for (channel, values) in image.data.chunks_exact_mut(plane).enumerate() {
            for value in values {
                *value += offset[channel];
            }
        }
        image
    }
}

/// (x − mean) / std per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// Per-channel means.
    pub mean: Vec<f32>,
    /// Per-channel standard deviations.
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet's statistics (torchvision's).
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// CIFAR-10's training-set statistics.
    pub fn cifar10() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// MNIST's training-set statistics.
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }

    fn channel(&self, channel: usize) -> (f32, f32) {
        let pick = |values: &[f32]| values[channel.min(values.len() - 1)];
        (pick(&self.mean), pick(&self.std))
    }

    /// Undoes the normalisation.
    pub fn invert(&self, mut image: Image) -> Image {
        let plane = image.height * image.width;
        for (c, values) in image.data.chunks_exact_mut(plane).enumerate() {
            let (mean, std) = self.channel(c);
            values.iter_mut().for_each(|v| *v = *v * std + mean);
        }
        image
    }
}

impl Transform for Normalize {
    fn apply(&self, mut image: Image, _rng: &mut Rng) -> Image {
        let plane = image.height * image.width;
        for (c, values) in image.data.chunks_exact_mut(plane).enumerate() {
            let (mean, std) = self.channel(c);
            values.iter_mut().for_each(|v| *v = (*v - mean) / std);
        }
        image
    }
}
