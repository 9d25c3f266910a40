//! Random erasing (Zhong et al. 2020): a random rectangle of the normalised image set to a
//! constant, as torchvision's `RandomErasing`.

use crate::image::Image;
use crate::rng::Rng;
use crate::transforms::Transform;

/// Erases one rectangle of `scale` of the area and aspect ratio in `ratio` (log-uniform), with
/// probability `probability`; placed after normalisation, so `value` 0 is the mean colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomErasing {
    /// Chance that an image is erased at all.
    pub probability: f64,
    /// Smallest and largest share of the area erased.
    pub scale: (f64, f64),
    /// Smallest and largest height / width of the rectangle.
    pub ratio: (f64, f64),
    /// What the rectangle is set to.
    pub value: f32,
}

impl RandomErasing {
    /// Tries for a rectangle that fits before the image is left as it is (torchvision's 10).
    const ATTEMPTS: usize = 10;

    /// torchvision's defaults (the paper's): 2–33 % of the area, ratios 0.3–3.3, zeros.
    pub fn new(probability: f64) -> Self {
        Self {
            probability,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            value: 0.0,
        }
    }

    /// The rectangle (top, left, height, width) to erase in a `height × width` image, or `None`
    /// when no drawn rectangle fits in [`RandomErasing::ATTEMPTS`] tries.
    pub fn window(
        &self,
        height: usize,
        width: usize,
        rng: &mut Rng,
    ) -> Option<(usize, usize, usize, usize)> {
        let area = (height * width) as f64;
        let (low, high) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..Self::ATTEMPTS {
            let erased = area * rng.uniform_range(self.scale.0, self.scale.1);
            let aspect = rng.uniform_range(low, high).exp();
            let rows = (erased * aspect).sqrt().round() as usize;
            let columns = (erased / aspect).sqrt().round() as usize;
            if rows == 0 || columns == 0 || rows >= height || columns >= width {
                continue;
            }
            let top = rng.below(height - rows + 1);
            let left = rng.below(width - columns + 1);
            return Some((top, left, rows, columns));
        }
        None
    }
}

impl Transform for RandomErasing {
    fn apply(&self, mut image: Image, rng: &mut Rng) -> Image {
        if !rng.chance(self.probability) {
            return image;
        }
        let Some((top, left, rows, columns)) = self.window(image.height, image.width, rng) else {
            return image;
        };
        let (height, width) = (image.height, image.width);
        for channel in image.data.chunks_exact_mut(height * width) {
            for row in top..top + rows {
                channel[row * width + left..row * width + left + columns].fill(self.value);
            }
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erases_one_rectangle_of_the_drawn_size_as_often_as_asked() {
        let erasing = RandomErasing::new(0.5);
        let (height, width) = (32, 32);
        let ones = Image {
            channels: 3,
            height,
            width,
            data: vec![1.0; 3 * height * width],
        };
        let trials = 4_000;
        let mut erased_images = 0;
        let mut shares = Vec::new();
        for seed in 0..trials {
            let out = erasing.apply(ones.clone(), &mut Rng::new(seed));
            let zeros: Vec<(usize, usize)> = (0..height)
                .flat_map(|r| (0..width).map(move |c| (r, c)))
                .filter(|&(r, c)| out.at(0, r, c) == 0.0)
                .collect();
            if zeros.is_empty() {
                continue;
            }
            erased_images += 1;
            // Every channel alike, and the zeros fill their bounding box: one rectangle.
            assert!(zeros.iter().all(|&(r, c)| out.at(2, r, c) == 0.0));
            let rows = zeros.iter().map(|z| z.0).max().unwrap() - zeros[0].0 + 1;
            let columns = zeros.iter().map(|z| z.1).max().unwrap()
                - zeros.iter().map(|z| z.1).min().unwrap()
                + 1;
            assert_eq!(rows * columns, zeros.len());
            let share = zeros.len() as f64 / (height * width) as f64;
            // Rounding the sides moves the area a little past the drawn 2–33 %.
            assert!((0.01..0.37).contains(&share), "{share}");
            shares.push(share);
        }
        let rate = erased_images as f64 / trials as f64;
        assert!((rate - 0.5).abs() < 0.03, "erased {rate}");
        // Uniform in [0.02, 0.33] has mean 0.175; the largest, tall or wide, rectangles do not
        // fit and are drawn again, which lowers it a little.
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        assert!((0.14..0.18).contains(&mean), "mean erased share {mean}");
    }

    #[test]
    fn gives_up_on_images_too_small_for_any_rectangle() {
        let one = Image::zeros(1, 1, 1);
        let mut rng = Rng::new(0);
        assert_eq!(RandomErasing::new(1.0).window(1, 1, &mut rng), None);
        assert_eq!(RandomErasing::new(1.0).apply(one.clone(), &mut rng), one);
    }
}
