//! Batch mixing: mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019), as torchvision's
//! reference script applies them to each training batch, in the loader's worker threads.

use crate::rng::Rng;

/// Mixes each image of a batch with the one before it (the first with the last, as
/// `torch.roll(1)`), with λ ~ Beta(α, α) drawn once per batch; with both α positive, each
/// batch takes one of the two at even odds (torchvision's `RandomChoice([MixUp, CutMix])`).
/// An α of 0 turns its method off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchMix {
    /// Mixup's α: the images are blended, λ · own + (1 − λ) · partner's.
    pub mixup_alpha: f64,
    /// CutMix's α: a box of about (1 − λ) of the area is pasted from the partner, and λ is the
    /// share of the image left.
    pub cutmix_alpha: f64,
}

/// What a mixed batch's loss needs: each image's second label and the share of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedLabels {
    /// The label of the image each one was mixed with.
    pub partner: Vec<i64>,
    /// λ, the weight of each image's own label (1 − λ goes to `partner`).
    pub weight: f32,
}

impl BatchMix {
    /// Whether any mixing is on.
    pub fn is_active(&self) -> bool {
        self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0
    }

    /// Mixes the NCHW `images` of `shape` in place; the labels of the mix, or `None` when
    /// mixing is off or the batch is empty.
    pub fn apply(
        &self,
        shape: [usize; 4],
        images: &mut [f32],
        labels: &[i64],
        rng: &mut Rng,
    ) -> Option<MixedLabels> {
        let [n, _, height, width] = shape;
        if !self.is_active() || n == 0 {
            return None;
        }
        let cutmix = match (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0) {
            (true, true) => rng.below(2) == 1,
            (mixup, _) => !mixup,
        };
        let alpha = if cutmix {
            self.cutmix_alpha
        } else {
            self.mixup_alpha
        };
        let lambda = rng.beta(alpha, alpha);
        let per_image = images.len() / n;
        // Image i takes from image i − 1 (the first from the last): walking down from the last,
        // each partner is still unmixed, but for the first's, which is kept aside.
        let last = images[(n - 1) * per_image..].to_vec();
        let weight = if cutmix {
            let (top, left, rows, columns) = cutmix_box(lambda, height, width, rng);
            let plane = height * width;
            for image in (0..n).rev() {
                for channel in 0..per_image / plane.max(1) {
                    for row in top..top + rows {
                        let within = channel * plane + row * width + left;
                        let to = image * per_image + within;
                        if image == 0 {
                            images[to..to + columns]
                                .copy_from_slice(&last[within..within + columns]);
                        } else {
                            images.copy_within(to - per_image..to - per_image + columns, to);
                        }
                    }
                }
            }
            1.0 - (rows * columns) as f64 / (height * width).max(1) as f64
        } else {
            let (own, other) = (lambda as f32, (1.0 - lambda) as f32);
            for image in (0..n).rev() {
                let (before, rest) = images.split_at_mut(image * per_image);
                let partner: &[f32] = if image == 0 {
                    &last
                } else {
                    &before[(image - 1) * per_image..]
                };
                for (value, &from) in rest[..per_image].iter_mut().zip(partner) {
                    *value = own * *value + other * from;
                }
            }
            lambda
        };
        let partner = (0..n).map(|i| labels[(i + n - 1) % n]).collect();
        Some(MixedLabels {
            partner,
            weight: weight as f32,
        })
    }
}

/// CutMix's box (top, left, rows, columns) for λ: sides √(1 − λ) of the image's around a
/// uniform centre, clipped to the image (torchvision's `_cutmix`).
fn cutmix_box(
    lambda: f64,
    height: usize,
    width: usize,
    rng: &mut Rng,
) -> (usize, usize, usize, usize) {
    let (centre_y, centre_x) = (rng.below(height.max(1)), rng.below(width.max(1)));
    let half = 0.5 * (1.0 - lambda).sqrt();
    let (half_rows, half_columns) = (
        (half * height as f64) as usize,
        (half * width as f64) as usize,
    );
    let (top, left) = (
        centre_y.saturating_sub(half_rows),
        centre_x.saturating_sub(half_columns),
    );
    let (bottom, right) = (
        (centre_y + half_rows).min(height),
        (centre_x + half_columns).min(width),
    );
    (top, left, bottom - top, right - left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `n` images of `shape`, image i filled with the value i.
    fn batch(n: usize, channels: usize, side: usize) -> ([usize; 4], Vec<f32>, Vec<i64>) {
        let per_image = channels * side * side;
        let images = (0..n * per_image).map(|i| (i / per_image) as f32).collect();
        ([n, channels, side, side], images, (0..n as i64).collect())
    }

    #[test]
    fn alpha_zero_is_the_identity() {
        let (shape, images, labels) = batch(4, 3, 8);
        let mut mixed = images.clone();
        let off = BatchMix::default();
        assert_eq!(
            off.apply(shape, &mut mixed, &labels, &mut Rng::new(1)),
            None
        );
        assert_eq!(mixed, images);
    }

    #[test]
    fn mixup_blends_each_image_with_the_one_before() {
        let (shape, images, labels) = batch(4, 3, 8);
        let mix = BatchMix {
            mixup_alpha: 0.2,
            cutmix_alpha: 0.0,
        };
        let mut weights = Vec::new();
        for seed in 0..2_000 {
            let mut mixed = images.clone();
            let labels_of_mix = mix
                .apply(shape, &mut mixed, &labels, &mut Rng::new(seed))
                .unwrap();
            assert_eq!(labels_of_mix.partner, [3, 0, 1, 2]);
            let lambda = labels_of_mix.weight;
            for (image, partner) in [(0, 3), (1, 0), (2, 1), (3, 2)] {
                let expected = lambda * image as f32 + (1.0 - lambda) * partner as f32;
                let pixels = &mixed[image * 192..(image + 1) * 192];
                assert!(pixels.iter().all(|v| (v - expected).abs() < 1e-5));
            }
            weights.push(f64::from(lambda));
        }
        // Beta(0.2, 0.2): mean ½, variance 1/5.6, most draws near 0 or 1.
        let mean = weights.iter().sum::<f64>() / weights.len() as f64;
        let var = weights.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / weights.len() as f64;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert!((var - 1.0 / 5.6).abs() < 0.015, "{var}");
    }

    #[test]
    fn cutmix_pastes_one_box_whose_area_is_one_minus_lambda() {
        let (shape, images, labels) = batch(3, 2, 16);
        let mix = BatchMix {
            mixup_alpha: 0.0,
            cutmix_alpha: 1.0,
        };
        let mut pasted_somewhere = 0;
        for seed in 0..500 {
            let mut mixed = images.clone();
            let labels_of_mix = mix
                .apply(shape, &mut mixed, &labels, &mut Rng::new(seed))
                .unwrap();
            assert_eq!(labels_of_mix.partner, [2, 0, 1]);
            for (image, partner) in [(0usize, 2f32), (1, 0.0), (2, 1.0)] {
                let pixels = &mixed[image * 512..(image + 1) * 512];
                // Each pixel is its own image's or its partner's, the same in both channels.
                assert!(pixels.iter().all(|&v| v == image as f32 || v == partner));
                assert_eq!(pixels[..256], pixels[256..]);
                let pasted = pixels[..256].iter().filter(|&&v| v == partner).count();
                let own_share = 1.0 - pasted as f32 / 256.0;
                assert!((own_share - labels_of_mix.weight).abs() < 1e-6);
                pasted_somewhere += usize::from(pasted > 0);
            }
        }
        assert!(pasted_somewhere > 1_000, "{pasted_somewhere}");
    }

    #[test]
    fn both_methods_take_turns() {
        let (shape, images, labels) = batch(2, 1, 8);
        let mix = BatchMix {
            mixup_alpha: 1.0,
            cutmix_alpha: 1.0,
        };
        let mut blended = 0;
        for seed in 0..1_000 {
            let mut mixed = images.clone();
            mix.apply(shape, &mut mixed, &labels, &mut Rng::new(seed));
            // Mixup leaves values between 0 and 1; CutMix only 0s and 1s.
            blended += usize::from(mixed.iter().any(|v| *v > 0.0 && *v < 1.0));
        }
        assert!((450..550).contains(&blended), "{blended}");
    }
}
