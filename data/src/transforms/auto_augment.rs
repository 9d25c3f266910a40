//! Automatic augmentation: TrivialAugment (Müller & Hutter 2021) and RandAugment (Cubuk et al.
//! 2020), with torchvision's operations and magnitude ranges (`TrivialAugmentWide`,
//! `RandAugment`), on images in [0, 1] before normalisation.
//!
//! Geometric operations sample bilinearly (torchvision's default is nearest) and fill with zero.

use crate::image::Image;
use crate::rng::Rng;
use crate::transforms::Transform;
use crate::transforms::geometry::{affine, resample};

/// One image operation of the policies, in torchvision's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AugmentOp {
    /// The image unchanged.
    Identity,
    /// Horizontal shear `x + m·y` about the top-left corner (PIL's convention).
    ShearX,
    /// Vertical shear `y + m·x` about the top-left corner.
    ShearY,
    /// A horizontal shift by whole pixels.
    TranslateX,
    /// A vertical shift by whole pixels.
    TranslateY,
    /// A rotation by `m` degrees about the centre.
    Rotate,
    /// Brightness times `1 + m`.
    Brightness,
    /// Saturation: a blend with the grey image, factor `1 + m`.
    Color,
    /// A blend with the mean grey level, factor `1 + m`.
    Contrast,
    /// A blend with a 3 × 3 smoothed image (PIL's kernel), factor `1 + m`.
    Sharpness,
    /// Keep the `m` high bits of each 8-bit value.
    Posterize,
    /// Invert the values at or above the threshold `m`.
    Solarize,
    /// Stretch each channel to [0, 1].
    AutoContrast,
    /// Histogram equalisation of each channel (PIL's algorithm).
    Equalize,
}

impl AugmentOp {
    /// The operations both policies draw from, uniformly.
    pub const ALL: [AugmentOp; 14] = [
        AugmentOp::Identity,
        AugmentOp::ShearX,
        AugmentOp::ShearY,
        AugmentOp::TranslateX,
        AugmentOp::TranslateY,
        AugmentOp::Rotate,
        AugmentOp::Brightness,
        AugmentOp::Color,
        AugmentOp::Contrast,
        AugmentOp::Sharpness,
        AugmentOp::Posterize,
        AugmentOp::Solarize,
        AugmentOp::AutoContrast,
        AugmentOp::Equalize,
    ];

    /// Whether the magnitude's sign is drawn at random.
    fn signed(self) -> bool {
        matches!(
            self,
            AugmentOp::ShearX
                | AugmentOp::ShearY
                | AugmentOp::TranslateX
                | AugmentOp::TranslateY
                | AugmentOp::Rotate
                | AugmentOp::Brightness
                | AugmentOp::Color
                | AugmentOp::Contrast
                | AugmentOp::Sharpness
        )
    }

    /// Whether the operation has a magnitude at all.
    fn has_magnitude(self) -> bool {
        !matches!(
            self,
            AugmentOp::Identity | AugmentOp::AutoContrast | AugmentOp::Equalize
        )
    }
}

/// The two magnitude ranges torchvision defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    /// `TrivialAugmentWide`'s wide ranges.
    Wide,
    /// RandAugment's ranges (the paper's, as torchvision sets them).
    Rand,
}

/// The (unsigned) magnitude of `op` at `bin` of `bins` for a `height × width` image: bin 0 is
/// the weakest, `bins - 1` the strongest.
fn magnitude(
    op: AugmentOp,
    space: Space,
    bin: usize,
    bins: usize,
    (height, width): (usize, usize),
) -> f32 {
    let step = bin as f32 / (bins.max(2) - 1) as f32;
    let wide = space == Space::Wide;
    match op {
        AugmentOp::ShearX | AugmentOp::ShearY => step * if wide { 0.99 } else { 0.3 },
        AugmentOp::TranslateX if !wide => step * 150.0 / 331.0 * width as f32,
        AugmentOp::TranslateY if !wide => step * 150.0 / 331.0 * height as f32,
        AugmentOp::TranslateX | AugmentOp::TranslateY => step * 32.0,
        AugmentOp::Rotate => step * if wide { 135.0 } else { 30.0 },
        AugmentOp::Brightness | AugmentOp::Color | AugmentOp::Contrast | AugmentOp::Sharpness => {
            step * if wide { 0.99 } else { 0.9 }
        }
        // 8 bits down to 2 (wide) or 4, in torchvision's rounding of `bin / ((bins - 1) / k)`.
        AugmentOp::Posterize => 8.0 - (step * if wide { 6.0 } else { 4.0 }).round(),
        AugmentOp::Solarize => 1.0 - step,
        AugmentOp::Identity | AugmentOp::AutoContrast | AugmentOp::Equalize => 0.0,
    }
}

/// `magnitude` with a random sign where `op` takes one (shears, shifts, rotations and the
/// enhancements), as it is.
fn draw_sign(op: AugmentOp, magnitude: f32, rng: &mut Rng) -> f32 {
    if op.signed() && rng.below(2) == 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// TrivialAugment, wide ranges: one operation per image, drawn uniformly, at a magnitude
/// drawn uniformly from `bins` (torchvision's `TrivialAugmentWide()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrivialAugmentWide {
    /// Magnitude bins (31 in the paper and torchvision).
    pub bins: usize,
}

impl Default for TrivialAugmentWide {
    fn default() -> Self {
        Self { bins: 31 }
    }
}

impl TrivialAugmentWide {
    /// The operation and signed magnitude for one `height × width` image.
    pub fn draw(&self, size: (usize, usize), rng: &mut Rng) -> (AugmentOp, f32) {
        let op = AugmentOp::ALL[rng.below(AugmentOp::ALL.len())];
        let bin = if op.has_magnitude() {
            rng.below(self.bins.max(1))
        } else {
            0
        };
        let unsigned = magnitude(op, Space::Wide, bin, self.bins, size);
        (op, draw_sign(op, unsigned, rng))
    }
}

impl Transform for TrivialAugmentWide {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        let (op, magnitude) = self.draw((image.height, image.width), rng);
        apply_op(image, op, magnitude)
    }
}

/// RandAugment: `num_ops` operations per image, each drawn uniformly, all at the fixed
/// `magnitude` of `bins` (torchvision's `RandAugment()`: 2 operations, magnitude 9 of 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandAugment {
    /// Operations applied in a row.
    pub num_ops: usize,
    /// The magnitude bin, below `bins`.
    pub magnitude: usize,
    /// Magnitude bins.
    pub bins: usize,
}

impl Default for RandAugment {
    fn default() -> Self {
        Self {
            num_ops: 2,
            magnitude: 9,
            bins: 31,
        }
    }
}

impl RandAugment {
    /// The operations and signed magnitudes for one `height × width` image, in order.
    pub fn draw(&self, size: (usize, usize), rng: &mut Rng) -> Vec<(AugmentOp, f32)> {
        (0..self.num_ops)
            .map(|_| {
                let op = AugmentOp::ALL[rng.below(AugmentOp::ALL.len())];
                let unsigned = magnitude(op, Space::Rand, self.magnitude, self.bins, size);
                (op, draw_sign(op, unsigned, rng))
            })
            .collect()
    }
}

impl Transform for RandAugment {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        self.draw((image.height, image.width), rng)
            .into_iter()
            .fold(image, |image, (op, magnitude)| {
                apply_op(image, op, magnitude)
            })
    }
}

/// An automatic augmentation policy by its torchvision reference-script name
/// (`--auto-augment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoAugment {
    /// `ta_wide`.
    TrivialAugmentWide(TrivialAugmentWide),
    /// `ra`, at `--ra-magnitude`.
    RandAugment(RandAugment),
}

impl AutoAugment {
    /// The policies' names, as torchvision's reference script spells them.
    pub const NAMES: [&'static str; 2] = ["ta_wide", "ra"];

    /// The policy named `name`; `ra_magnitude` is RandAugment's magnitude bin (of 31).
    pub fn named(name: &str, ra_magnitude: usize) -> Result<Self, String> {
        match name {
            "ta_wide" => Ok(Self::TrivialAugmentWide(TrivialAugmentWide::default())),
            "ra" => {
                let policy = RandAugment {
                    magnitude: ra_magnitude,
                    ..RandAugment::default()
                };
                if ra_magnitude >= policy.bins {
                    return Err(format!(
                        "RandAugment's magnitude {ra_magnitude} must be below its {} bins",
                        policy.bins
                    ));
                }
                Ok(Self::RandAugment(policy))
            }
            _ => Err(format!(
                "unknown automatic augmentation '{name}' (expected one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

impl Transform for AutoAugment {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        match self {
            Self::TrivialAugmentWide(policy) => policy.apply(image, rng),
            Self::RandAugment(policy) => policy.apply(image, rng),
        }
    }
}

/// `ratio · a + (1 − ratio) · b`, clamped to [0, 1] (PIL's `ImageEnhance` blend).
fn blend(image: &mut Image, degenerate: impl Fn(usize) -> f32, ratio: f32) {
    for (index, value) in image.data.iter_mut().enumerate() {
        *value = (ratio * *value + (1.0 - ratio) * degenerate(index)).clamp(0.0, 1.0);
    }
}

/// The grey level of each pixel (ITU-R 601-2 luma, as PIL and torchvision); a grey image's own.
fn grey(image: &Image) -> Vec<f32> {
    let plane = image.height * image.width;
    if image.channels < 3 {
        return image.data[..plane].to_vec();
    }
    (0..plane)
        .map(|i| {
            0.2989 * image.data[i]
                + 0.587 * image.data[plane + i]
                + 0.114 * image.data[2 * plane + i]
        })
        .collect()
}

fn to_byte(value: f32) -> u8 {
    (value * 255.0).round().clamp(0.0, 255.0) as u8
}

/// PIL's sharpness "degenerate": the 3 × 3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 inside,
/// the border pixels as they are.
fn smoothed(image: &Image) -> Image {
    let mut out = image.clone();
    let (height, width) = (image.height, image.width);
    for channel in 0..image.channels {
        for row in 1..height.saturating_sub(1) {
            for column in 1..width.saturating_sub(1) {
                let mut sum = 4.0 * image.at(channel, row, column);
                for dy in 0..3 {
                    for dx in 0..3 {
                        sum += image.at(channel, row + dy - 1, column + dx - 1);
                    }
                }
                out.data[(channel * height + row) * width + column] = sum / 13.0;
            }
        }
    }
    out
}

/// PIL's histogram equalisation of one channel of 8-bit values (torchvision's
/// `_scale_channel`): unchanged when all but the most frequent value are too few to spread.
fn equalize_channel(values: &mut [f32]) {
    let bytes: Vec<u8> = values.iter().map(|&v| to_byte(v)).collect();
    let mut histogram = [0usize; 256];
    for &byte in &bytes {
        histogram[usize::from(byte)] += 1;
    }
    let nonzero: Vec<usize> = histogram.iter().copied().filter(|&n| n > 0).collect();
    let step = nonzero[..nonzero.len().saturating_sub(1)]
        .iter()
        .sum::<usize>()
        / 255;
    if step == 0 {
        return;
    }
    let mut lut = [0usize; 256];
    let mut cumulative = 0;
    for (value, &count) in histogram.iter().enumerate() {
        lut[value] = ((cumulative + step / 2) / step).min(255);
        cumulative += count;
    }
    for (value, byte) in values.iter_mut().zip(bytes) {
        *value = lut[usize::from(byte)] as f32 / 255.0;
    }
}

/// Applies `op` at the signed `magnitude` (as [`TrivialAugmentWide::draw`] gives it).
pub fn apply_op(mut image: Image, op: AugmentOp, magnitude: f32) -> Image {
    let plane = image.height * image.width;
    match op {
        AugmentOp::Identity => image,
        AugmentOp::ShearX => resample(&image, image.height, image.width, |row, column| {
            (row, column + magnitude * (row + 0.5))
        }),
        AugmentOp::ShearY => resample(&image, image.height, image.width, |row, column| {
            (row + magnitude * (column + 0.5), column)
        }),
        AugmentOp::TranslateX => {
            let shift = magnitude.trunc();
            resample(&image, image.height, image.width, |row, column| {
                (row, column - shift)
            })
        }
        AugmentOp::TranslateY => {
            let shift = magnitude.trunc();
            resample(&image, image.height, image.width, |row, column| {
                (row - shift, column)
            })
        }
        AugmentOp::Rotate => affine(&image, f64::from(magnitude), 0.0),
        AugmentOp::Brightness => {
            blend(&mut image, |_| 0.0, 1.0 + magnitude);
            image
        }
        AugmentOp::Color => {
            let grey = grey(&image);
            blend(&mut image, |index| grey[index % plane], 1.0 + magnitude);
            image
        }
        AugmentOp::Contrast => {
            let grey = grey(&image);
            let mean = grey.iter().sum::<f32>() / grey.len().max(1) as f32;
            blend(&mut image, |_| mean, 1.0 + magnitude);
            image
        }
        AugmentOp::Sharpness => {
            let degenerate = smoothed(&image);
            blend(&mut image, |index| degenerate.data[index], 1.0 + magnitude);
            image
        }
        AugmentOp::Posterize => {
            // The top `bits` of a byte: 0xff00 >> bits, low byte.
            let mask = (0xff00u32 >> (magnitude as u32).min(8)) as u8;
            for value in &mut image.data {
                *value = f32::from(to_byte(*value) & mask) / 255.0;
            }
            image
        }
        AugmentOp::Solarize => {
            for value in &mut image.data {
                if *value >= magnitude {
                    *value = 1.0 - *value;
                }
            }
            image
        }
        AugmentOp::AutoContrast => {
            for channel in image.data.chunks_exact_mut(plane.max(1)) {
                let low = channel.iter().copied().fold(f32::INFINITY, f32::min);
                let high = channel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if high > low {
                    for value in channel {
                        *value = ((*value - low) / (high - low)).clamp(0.0, 1.0);
                    }
                }
            }
            image
        }
        AugmentOp::Equalize => {
            for channel in image.data.chunks_exact_mut(plane.max(1)) {
                equalize_channel(channel);
            }
            image
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn image(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Image {
        Image {
            channels,
            height,
            width,
            data,
        }
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn trivial_augment_draws_every_op_and_bin_uniformly() {
        let policy = TrivialAugmentWide::default();
        let mut rng = Rng::new(3);
        let draws = 140_000;
        let mut ops: HashMap<AugmentOp, usize> = HashMap::new();
        let mut rotations = Vec::new();
        for _ in 0..draws {
            let (op, magnitude) = policy.draw((32, 32), &mut rng);
            *ops.entry(op).or_default() += 1;
            if op == AugmentOp::Rotate {
                rotations.push(magnitude);
            }
        }
        // 10,000 expected each; 4 standard deviations is ±386.
        for op in AugmentOp::ALL {
            let count = ops[&op];
            assert!(
                (9_600..10_400).contains(&count),
                "{op:?} drawn {count} times"
            );
        }
        // Rotations: 31 bins of 4.5° up to 135°, signs balanced, mean |angle| 67.5°.
        assert!(rotations.iter().all(|r| r.abs() <= 135.0 + 1e-3));
        assert!(
            rotations
                .iter()
                .all(|r| (r / 4.5 - (r / 4.5).round()).abs() < 1e-3)
        );
        let negative = rotations.iter().filter(|&&r| r < 0.0).count() as f64;
        let share = negative / rotations.len() as f64;
        assert!((share - 0.5).abs() < 0.02, "{share}");
        let mean = rotations.iter().map(|r| r.abs()).sum::<f32>() / rotations.len() as f32;
        assert!((mean - 67.5).abs() < 1.5, "{mean}");
    }

    #[test]
    fn rand_augment_uses_its_fixed_magnitude() {
        let policy = RandAugment::default();
        let mut rng = Rng::new(5);
        for _ in 0..1_000 {
            let drawn = policy.draw((32, 64), &mut rng);
            assert_eq!(drawn.len(), 2);
            for (op, magnitude) in drawn {
                let expected = match op {
                    AugmentOp::Rotate => 9.0,
                    AugmentOp::ShearX | AugmentOp::ShearY => 0.09,
                    AugmentOp::TranslateX => 0.3 * 150.0 / 331.0 * 64.0,
                    AugmentOp::TranslateY => 0.3 * 150.0 / 331.0 * 32.0,
                    AugmentOp::Brightness
                    | AugmentOp::Color
                    | AugmentOp::Contrast
                    | AugmentOp::Sharpness => 0.27,
                    AugmentOp::Posterize => 7.0,
                    AugmentOp::Solarize => 0.7,
                    _ => 0.0,
                };
                assert!(
                    (magnitude.abs() - expected).abs() < 1e-4,
                    "{op:?} {magnitude}"
                );
            }
        }
    }

    #[test]
    fn the_policies_are_seeded() {
        let input = image(3, 8, 8, (0..192).map(|i| (i % 17) as f32 / 16.0).collect());
        for policy in [
            AutoAugment::named("ta_wide", 9).unwrap(),
            AutoAugment::named("ra", 9).unwrap(),
        ] {
            let outputs: Vec<Image> = (0..20)
                .map(|seed| policy.apply(input.clone(), &mut Rng::new(seed)))
                .collect();
            let again: Vec<Image> = (0..20)
                .map(|seed| policy.apply(input.clone(), &mut Rng::new(seed)))
                .collect();
            assert_eq!(outputs, again);
            assert!(outputs.iter().any(|output| output != &input));
            assert!(
                outputs
                    .iter()
                    .all(|output| output.data.iter().all(|v| (0.0..=1.0).contains(v)))
            );
        }
        assert!(AutoAugment::named("ra", 31).is_err());
        assert!(AutoAugment::named("augmix", 9).is_err());
    }

    #[test]
    fn pixel_operations_match_pil() {
        let values = image(1, 1, 4, vec![0.2, 0.4, 0.6, 200.0 / 255.0]);
        let solarized = apply_op(values.clone(), AugmentOp::Solarize, 0.5);
        assert!(close(&solarized.data, &[0.2, 0.4, 0.4, 55.0 / 255.0]));
        let posterized = apply_op(values.clone(), AugmentOp::Posterize, 2.0);
        assert!(close(
            &posterized.data,
            &[0.0, 64.0 / 255.0, 128.0 / 255.0, 192.0 / 255.0]
        ));
        let stretched = apply_op(values.clone(), AugmentOp::AutoContrast, 0.0);
        let top = 200.0 / 255.0 - 0.2;
        assert!(close(&stretched.data, &[0.0, 0.2 / top, 0.4 / top, 1.0]));
        let brighter = apply_op(values.clone(), AugmentOp::Brightness, 0.5);
        assert!(close(&brighter.data, &[0.3, 0.6, 0.9, 1.0]));
        let grey = image(3, 1, 1, vec![0.6, 0.6, 0.6]);
        // A grey pixel stays grey (to the luma weights' sum, 0.9999).
        let saturated = apply_op(grey.clone(), AugmentOp::Color, 0.9);
        assert!(saturated.data.iter().all(|v| (v - 0.6).abs() < 1e-4));
        // Contrast 0 (m = −1) is the mean grey everywhere.
        let flat = apply_op(values, AugmentOp::Contrast, -1.0);
        let mean = (0.2 + 0.4 + 0.6 + 200.0 / 255.0) / 4.0;
        assert!(close(&flat.data, &[mean; 4]));
    }

    #[test]
    fn equalize_spreads_the_histogram_as_pil_does() {
        // 255 pixels each of 10, 20, 30 and 40: step 765 / 255 = 3, so the four levels land
        // on 0, 85, 170 and 255.
        let data: Vec<f32> = [10.0f32, 20.0, 30.0, 40.0]
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v / 255.0, 255))
            .collect();
        let equalized = apply_op(image(1, 4, 255, data), AugmentOp::Equalize, 0.0);
        for (level, expected) in [0.0f32, 85.0, 170.0, 255.0].iter().enumerate() {
            assert!((equalized.data[level * 255] - expected / 255.0).abs() < 1e-6);
        }
        // Too few pixels to spread: unchanged.
        let few = image(1, 1, 3, vec![0.1, 0.5, 0.9]);
        assert_eq!(apply_op(few.clone(), AugmentOp::Equalize, 0.0), few);
    }

    #[test]
    fn geometric_operations_move_pixels_where_they_should() {
        let mut dot = Image::zeros(1, 8, 8);
        dot.data[2 * 8 + 3] = 1.0;
        let moved = apply_op(dot.clone(), AugmentOp::TranslateX, 2.7);
        assert_eq!(moved.at(0, 2, 5), 1.0);
        assert_eq!(moved.data.iter().sum::<f32>(), 1.0);
        let moved = apply_op(dot.clone(), AugmentOp::TranslateY, -2.0);
        assert_eq!(moved.at(0, 0, 3), 1.0);
        // Shearing by 1 reads column + (row + ½): the dot at (2, 3) reappears half in each of
        // columns 0 and 1 of row 2.
        let sheared = apply_op(dot.clone(), AugmentOp::ShearX, 1.0);
        assert!((sheared.at(0, 2, 0) - 0.5).abs() < 1e-6);
        assert!((sheared.at(0, 2, 1) - 0.5).abs() < 1e-6);
        // A half turn about the centre maps (2, 3) to (5, 4).
        let turned = apply_op(dot, AugmentOp::Rotate, 180.0);
        assert!((turned.at(0, 5, 4) - 1.0).abs() < 1e-5);
    }
}
