//! Geometric transforms: resizing, crops, padding, mirroring, and affine warps (rotation,
//! shear) with bilinear sampling.

use crate::image::{Image, ImageU8, UNIT};
use crate::rng::Rng;
use crate::transforms::Transform;

/// Bilinear sample of `image` over the output grid `height × width`, where output pixel
/// (row, column) reads the source at `source(row, column)` (pixel-centre coordinates);
/// outside the image reads zero.
pub(crate) fn resample(
    image: &Image,
    height: usize,
    width: usize,
    source: impl Fn(f32, f32) -> (f32, f32),
) -> Image {
    let mut out = Image::zeros(image.channels, height, width);
    let plane_in = image.height * image.width;
    let plane_out = height * width;
    for row in 0..height {
        for column in 0..width {
            let (y, x) = source(row as f32, column as f32);
            let (y0, x0) = (y.floor(), x.floor());
            let (dy, dx) = (y - y0, x - x0);
            let (y0, x0) = (y0 as isize, x0 as isize);
            let taps = [
                (y0, x0, (1.0 - dy) * (1.0 - dx)),
                (y0, x0 + 1, (1.0 - dy) * dx),
                (y0 + 1, x0, dy * (1.0 - dx)),
                (y0 + 1, x0 + 1, dy * dx),
            ];
            for (ty, tx, weight) in taps {
                if weight == 0.0
                    || ty < 0
                    || tx < 0
                    || ty as usize >= image.height
                    || tx as usize >= image.width
                {
                    continue;
                }
                let offset = ty as usize * image.width + tx as usize;
                for channel in 0..image.channels {
                    out.data[channel * plane_out + row * width + column] +=
                        weight * image.data[channel * plane_in + offset];
                }
            }
        }
    }
    out
}

/// For each output position along one axis: the two source indices and the weight of the
/// second, for a window starting at `start` of `length` source pixels resized to `out` pixels
/// (half-pixel centres, as `align_corners=False`), clamped to `0..size`.
fn axis_taps(start: f32, length: f32, out: usize, size: usize) -> Taps {
    let scale = length / out as f32;
    let last = (size - 1) as f32;
    (0..out)
        .map(|i| {
            let position = (start + (i as f32 + 0.5) * scale - 0.5).clamp(0.0, last);
            let low = position.floor();
            let high = (low + 1.0).min(last);
            (low as usize, high as usize, position - low)
        })
        .collect()
}

/// Taps of one axis: (first source index, second, weight of the second) per output position.
type Taps = Vec<(usize, usize, f32)>;

/// The row and column taps that resize the window `region` (top, left, height, width) of a
/// `size` (height, width) image to `out` (height, width).
fn region_taps(
    (top, left, height, width): (f32, f32, f32, f32),
    size: (usize, usize),
    out: (usize, usize),
) -> (Taps, Taps) {
    (
        axis_taps(top, height, out.0, size.0),
        axis_taps(left, width, out.1, size.1),
    )
}

/// One bilinear output value from the four neighbours `(upper[x0], upper[x1], lower[x0],
/// lower[x1])`; the `f32` and 8-bit resizes share it, so both give the same numbers.
#[inline(always)]
fn bilinear(upper: (f32, f32), lower: (f32, f32), wx: f32, wy: f32) -> f32 {
    let top_value = upper.0 + (upper.1 - upper.0) * wx;
    let bottom_value = lower.0 + (lower.1 - lower.0) * wx;
    top_value + (bottom_value - top_value) * wy
}

/// Bilinear resize of the window (top, left, height, width) of `image` to `out_h × out_w`
/// (half-pixel centres, as `align_corners=False`), clamping at the borders.
pub fn resize_region(
    image: &Image,
    region: (f32, f32, f32, f32),
    out_h: usize,
    out_w: usize,
) -> Image {
    let (rows, columns) = region_taps(region, (image.height, image.width), (out_h, out_w));
    let mut data = Vec::with_capacity(image.channels * out_h * out_w);
    let plane = image.height * image.width;
    for channel in 0..image.channels {
        let source = &image.data[channel * plane..(channel + 1) * plane];
        for &(y0, y1, wy) in &rows {
            let upper = &source[y0 * image.width..(y0 + 1) * image.width];
            let lower = &source[y1 * image.width..(y1 + 1) * image.width];
            data.extend(columns.iter().map(|&(x0, x1, wx)| {
                bilinear((upper[x0], upper[x1]), (lower[x0], lower[x1]), wx, wy)
            }));
        }
    }
    Image {
        channels: image.channels,
        height: out_h,
        width: out_w,
        data,
    }
}

/// Source rows resampled across, with the source row each holds.
type RowCache = [(usize, Vec<f32>); 2];

/// The slot of `cache` holding source row `y`; when neither does, `y` is resampled into the
/// slot that is not `keep` (without one: the slot of the higher, older row).
fn cached_row(
    cache: &mut RowCache,
    y: usize,
    keep: Option<usize>,
    resample: &impl Fn(usize, &mut [f32]),
) -> usize {
    if let Some(slot) = cache.iter().position(|(row, _)| *row == y) {
        return slot;
    }
    let slot = match keep {
        Some(kept) => 1 - kept,
        None => usize::from(cache[1].0 < cache[0].0),
    };
    resample(y, &mut cache[slot].1);
    cache[slot].0 = y;
    slot
}

/// `resize_region` of the 8-bit image, reading only the pixels the window needs:
/// `resize_region(&image.to_image(), …)` without converting the whole image first, and the
/// same numbers. Each source row is resampled across once (two are kept, for consecutive output
/// rows that share one), then the two rows around each output row are blended.
pub fn resize_region_u8(
    image: &ImageU8,
    region: (f32, f32, f32, f32),
    out_h: usize,
    out_w: usize,
) -> Image {
    let (rows, columns) = region_taps(region, (image.height, image.width), (out_h, out_w));
    let channels = image.channels;
    // Byte offsets of each output column's two source pixels.
    let columns: Taps = columns
        .into_iter()
        .map(|(x0, x1, wx)| (x0 * channels, x1 * channels, wx))
        .collect();
    let stride = image.width * channels;
    let resample_row = |y: usize, into: &mut [f32]| {
        let line = &image.pixels[y * stride..(y + 1) * stride];
        if channels == 3 {
            // RGB, the hot case: one sweep reads each pixel pair once for all three planes.
            let (red, rest) = into.split_at_mut(out_w);
            let (green, blue) = rest.split_at_mut(out_w);
            let planes = red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut());
            for (((r, g), b), &(o0, o1, wx)) in planes.zip(&columns) {
                let (first, second) = (&line[o0..o0 + 3], &line[o1..o1 + 3]);
                let lerp = |c: usize| {
                    let left_value = UNIT[usize::from(first[c])];
                    let right_value = UNIT[usize::from(second[c])];
                    left_value + (right_value - left_value) * wx
                };
                (*r, *g, *b) = (lerp(0), lerp(1), lerp(2));
            }
            return;
        }
        for (channel, out) in into.chunks_exact_mut(out_w).enumerate() {
            for (value, &(o0, o1, wx)) in out.iter_mut().zip(&columns) {
                let left_value = UNIT[usize::from(line[o0 + channel])];
                let right_value = UNIT[usize::from(line[o1 + channel])];
                *value = left_value + (right_value - left_value) * wx;
            }
        }
    };
    let mut cached: RowCache = [
        (usize::MAX, vec![0.0; channels * out_w]),
        (usize::MAX, vec![0.0; channels * out_w]),
    ];
    let plane = out_h * out_w;
    let mut data = vec![0.0; channels * plane];
    for (row, &(y0, y1, wy)) in rows.iter().enumerate() {
        let upper = cached_row(&mut cached, y0, None, &resample_row);
        let lower = cached_row(&mut cached, y1, Some(upper), &resample_row);
        let (upper, lower) = (&cached[upper].1, &cached[lower].1);
        for channel in 0..channels {
            let out = &mut data[channel * plane + row * out_w..][..out_w];
            let line = channel * out_w..(channel + 1) * out_w;
            for ((value, &top_value), &bottom_value) in
                out.iter_mut().zip(&upper[line.clone()]).zip(&lower[line])
            {
                *value = top_value + (bottom_value - top_value) * wy;
            }
        }
    }
    Image {
        channels,
        height: out_h,
        width: out_w,
        data,
    }
}

/// Resizes so that the shorter side is `size` (torchvision's `Resize(int)`), bilinear.
#[derive(Debug, Clone)]
pub struct Resize {
    /// Target length of the shorter side.
    pub size: usize,
}

impl Resize {
    /// The output size for an `h × w` image.
    fn output(&self, h: usize, w: usize) -> (usize, usize) {
        if h <= w {
            (self.size, (w * self.size + h / 2) / h)
        } else {
            ((h * self.size + w / 2) / w, self.size)
        }
    }
}

impl Transform for Resize {
    fn apply(&self, image: Image, _rng: &mut Rng) -> Image {
        let (h, w) = (image.height, image.width);
        let (out_h, out_w) = self.output(h, w);
        if (out_h, out_w) == (h, w) {
            return image;
        }
        resize_region(&image, (0.0, 0.0, h as f32, w as f32), out_h, out_w)
    }

    fn apply_u8(&self, image: &ImageU8, _rng: &mut Rng) -> Option<Image> {
        let (h, w) = (image.height, image.width);
        let (out_h, out_w) = self.output(h, w);
        Some(if (out_h, out_w) == (h, w) {
            image.to_image()
        } else {
            resize_region_u8(image, (0.0, 0.0, h as f32, w as f32), out_h, out_w)
        })
    }
}

/// The central `size × size` window (padded with zeros if the image is smaller).
#[derive(Debug, Clone)]
pub struct CenterCrop {
    /// Side of the crop.
    pub size: usize,
}

impl Transform for CenterCrop {
    fn apply(&self, image: Image, _rng: &mut Rng) -> Image {
        let image = pad_to(image, self.size, self.size);
        let top = (image.height - self.size) / 2;
        let left = (image.width - self.size) / 2;
        image.crop(top, left, self.size, self.size)
    }

    fn apply_u8(&self, image: &ImageU8, _rng: &mut Rng) -> Option<Image> {
        // Smaller images are padded first, which the f32 path does.
        (image.height >= self.size && image.width >= self.size).then(|| {
            let top = (image.height - self.size) / 2;
            let left = (image.width - self.size) / 2;
            image.crop(top, left, self.size, self.size)
        })
    }
}

/// How padding fills the new border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingMode {
    /// Zeros.
    Zero,
    /// Mirror the image without repeating the edge (`reflect`).
    Reflect,
}

/// Pads every side by `padding` pixels.
pub fn pad(image: &Image, padding: usize, mode: PaddingMode) -> Image {
    let (h, w) = (image.height + 2 * padding, image.width + 2 * padding);
    let mut out = Image::zeros(image.channels, h, w);
    let reflect = |i: isize, n: usize| -> Option<usize> {
        let n = n as isize;
        match mode {
            PaddingMode::Zero => (0..n).contains(&i).then_some(i as usize),
            PaddingMode::Reflect => {
                let period = 2 * (n - 1).max(1);
                let m = i.rem_euclid(period);
                Some((if m < n { m } else { period - m }) as usize)
            }
        }
    };
    for channel in 0..image.channels {
        for row in 0..h {
            let Some(source_row) = reflect(row as isize - padding as isize, image.height) else {
                continue;
            };
            for column in 0..w {
                if let Some(source_column) =
                    reflect(column as isize - padding as isize, image.width)
                {
                    out.data[(channel * h + row) * w + column] =
                        image.at(channel, source_row, source_column);
                }
            }
        }
    }
    out
}

/// Zero-pads evenly up to at least `height × width`.
pub fn pad_to(image: Image, height: usize, width: usize) -> Image {
    if image.height >= height && image.width >= width {
        return image;
    }
    let (h, w) = (height.max(image.height), width.max(image.width));
    let (top, left) = ((h - image.height) / 2, (w - image.width) / 2);
    let mut out = Image::zeros(image.channels, h, w);
    for channel in 0..image.channels {
        for row in 0..image.height {
            let start = (channel * h + top + row) * w + left;
            let source = (channel * image.height + row) * image.width;
            out.data[start..start + image.width]
                .copy_from_slice(&image.data[source..source + image.width]);
        }
    }
    out
}

/// Zero-pads evenly up to at least `size × size`, then `padding` pixels more on every side: the
/// canvas multi-crop evaluation cuts its corners from (CIFAR: the 40 × 40 of "pad 4, crop 32").
#[derive(Debug, Clone)]
pub struct Pad {
    /// Smallest side before the border.
    pub size: usize,
    /// Zeros added to every side.
    pub padding: usize,
}

impl Transform for Pad {
    fn apply(&self, image: Image, _rng: &mut Rng) -> Image {
        let image = pad_to(image, self.size, self.size);
        if self.padding == 0 {
            image
        } else {
            pad(&image, self.padding, PaddingMode::Zero)
        }
    }
}

/// A random `size × size` window after padding every side (the CIFAR recipe: pad 4, crop 32).
#[derive(Debug, Clone)]
pub struct RandomCrop {
    /// Side of the crop.
    pub size: usize,
    /// Padding added to every side first.
    pub padding: usize,
    /// How the padding is filled.
    pub mode: PaddingMode,
}

impl Transform for RandomCrop {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        let image = if self.padding > 0 {
            pad(&image, self.padding, self.mode)
        } else {
            image
        };
        let image = pad_to(image, self.size, self.size);
        let top = rng.below(image.height - self.size + 1);
        let left = rng.below(image.width - self.size + 1);
        image.crop(top, left, self.size, self.size)
    }

    fn apply_u8(&self, image: &ImageU8, rng: &mut Rng) -> Option<Image> {
        // Padding is left to the f32 path (the CIFAR recipe); AlexNet's crops need none.
        if self.padding > 0 || image.height < self.size || image.width < self.size {
            return None;
        }
        let top = rng.below(image.height - self.size + 1);
        let left = rng.below(image.width - self.size + 1);
        Some(image.crop(top, left, self.size, self.size))
    }
}

/// torchvision's `RandomResizedCrop`: a window of random area (fraction `scale`) and aspect
/// ratio (`ratio`, log-uniform), resized to `size × size`; ten tries, then the central window.
#[derive(Debug, Clone)]
pub struct RandomResizedCrop {
    /// Output side.
    pub size: usize,
    /// Range of the window's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the window's width / height.
    pub ratio: (f64, f64),
}

impl RandomResizedCrop {
    /// Inception-style defaults: scale (0.08, 1), ratio (3/4, 4/3).
    pub fn new(size: usize) -> Self {
        Self {
            size,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        }
    }

    /// The window (top, left, height, width) chosen for an `h × w` image.
    pub fn window(&self, h: usize, w: usize, rng: &mut Rng) -> (usize, usize, usize, usize) {
        let area = (h * w) as f64;
        let (log_low, log_high) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.uniform_range(self.scale.0, self.scale.1);
            let aspect = rng.uniform_range(log_low, log_high).exp();
            let cw = (target * aspect).sqrt().round() as usize;
            let ch = (target / aspect).sqrt().round() as usize;
            if (1..=w).contains(&cw) && (1..=h).contains(&ch) {
                return (rng.below(h - ch + 1), rng.below(w - cw + 1), ch, cw);
            }
        }
        let aspect = w as f64 / h as f64;
        let (ch, cw) = if aspect < self.ratio.0 {
            ((w as f64 / self.ratio.0).round() as usize, w)
        } else if aspect > self.ratio.1 {
            (h, (h as f64 * self.ratio.1).round() as usize)
        } else {
            (h, w)
        };
        ((h - ch) / 2, (w - cw) / 2, ch, cw)
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        let (top, left, h, w) = self.window(image.height, image.width, rng);
        resize_region(
            &image,
            (top as f32, left as f32, h as f32, w as f32),
            self.size,
            self.size,
        )
    }

    fn apply_u8(&self, image: &ImageU8, rng: &mut Rng) -> Option<Image> {
        let (top, left, h, w) = self.window(image.height, image.width, rng);
        Some(resize_region_u8(
            image,
            (top as f32, left as f32, h as f32, w as f32),
            self.size,
            self.size,
        ))
    }
}

/// Mirrors left to right with probability `probability`.
#[derive(Debug, Clone)]
pub struct HorizontalFlip {
    /// Chance of mirroring.
    pub probability: f64,
}

impl Transform for HorizontalFlip {
    fn apply(&self, mut image: Image, rng: &mut Rng) -> Image {
        if rng.chance(self.probability) {
            image.mirror();
        }
        image
    }
}

/// A random rotation and horizontal shear about the centre, bilinear, zero outside
/// (torchvision's `RandomAffine(degrees, shear)`).
#[derive(Debug, Clone)]
pub struct RandomAffine {
    /// Rotation drawn uniformly from ±`degrees`.
    pub degrees: f64,
    /// Horizontal shear angle drawn uniformly from ±`shear` degrees.
    pub shear: f64,
}

/// Rotates by `rotation` degrees (counter-clockwise) and shears by `shear` degrees about the
/// centre.
pub fn affine(image: &Image, rotation: f64, shear: f64) -> Image {
    let (theta, phi) = (rotation.to_radians(), shear.to_radians());
    // Forward map M = R(θ)·S(φ) with S = [[1, tan φ], [0, 1]]; each output pixel reads M⁻¹.
    let (cos, sin, tan) = (theta.cos(), theta.sin(), phi.tan());
    let m = [[cos, cos * tan - sin], [sin, sin * tan + cos]];
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let inverse = [
        [m[1][1] / det, -m[0][1] / det],
        [-m[1][0] / det, m[0][0] / det],
    ];
    let cy = (image.height as f64 - 1.0) / 2.0;
    let cx = (image.width as f64 - 1.0) / 2.0;
    resample(image, image.height, image.width, |row, column| {
        let (dx, dy) = (f64::from(column) - cx, f64::from(row) - cy);
        let x = inverse[0][0] * dx + inverse[0][1] * dy + cx;
        let y = inverse[1][0] * dx + inverse[1][1] * dy + cy;
        (y as f32, x as f32)
    })
}

impl Transform for RandomAffine {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        let rotation = rng.uniform_range(-self.degrees, self.degrees);
        let shear = rng.uniform_range(-self.shear, self.shear);
        affine(&image, rotation, shear)
    }
}
