//! A decoded image: channels × height × width, `f32` values (in [0, 1] until normalised), and
//! the 8-bit interleaved pixels files decode to.

/// `UNIT[b] = b / 255`: an 8-bit value in [0, 1] by one table read instead of a division,
/// exactly the same number.
pub(crate) const UNIT: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut value = 0;
    while value < 256 {
        table[value] = value as f32 / 255.0;
        value += 1;
    }
    table
};

/// Panics unless the window (top, left, height, width) lies inside an image of `size`.
fn assert_window(size: (usize, usize), (top, left, height, width): (usize, usize, usize, usize)) {
    assert!(
        top + height <= size.0 && left + width <= size.1,
        "crop {height}×{width} at ({top}, {left}) leaves a {}×{} image",
        size.0,
        size.1
    );
}

/// An image as a file decodes: 8-bit values, interleaved (HWC). Crops and resizes read these
/// bytes directly and convert only the pixels they keep (a 224 crop of a 500 × 375 photo is a
/// quarter of its pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageU8 {
    /// Channels (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height × width × channels` values, pixel by pixel.
    pub pixels: Vec<u8>,
}

impl ImageU8 {
    /// Every pixel in [0, 1], planar.
    pub fn to_image(&self) -> Image {
        Image::from_hwc_u8(self.channels, self.height, self.width, &self.pixels)
    }

    /// The `height × width` window whose top-left corner is (`top`, `left`), in [0, 1], planar:
    /// `self.to_image().crop(…)` without converting the rest.
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Image {
        assert_window((self.height, self.width), (top, left, height, width));
        let channels = self.channels;
        let mut data = Vec::with_capacity(channels * height * width);
        for channel in 0..channels {
            for row in top..top + height {
                let start = (row * self.width + left) * channels + channel;
                data.extend(
                    self.pixels[start..]
                        .iter()
                        .step_by(channels)
                        .take(width)
                        .map(|&byte| UNIT[usize::from(byte)]),
                );
            }
        }
        Image {
            channels,
            height,
            width,
            data,
        }
    }
}

/// A CHW image of `f32` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Channels (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels × height × width` values, channel-major.
    pub data: Vec<f32>,
}

impl Image {
    /// A black image.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// An image from 8-bit interleaved (HWC) pixels, scaled to [0, 1].
    pub fn from_hwc_u8(channels: usize, height: usize, width: usize, pixels: &[u8]) -> Self {
        debug_assert_eq!(pixels.len(), channels * height * width);
        let plane = height * width;
        let mut data = vec![0.0; channels * plane];
        if channels == 3 {
            // One sequential read, three sequential writes: the RGB case is the hot one.
            let (red, rest) = data.split_at_mut(plane);
            let (green, blue) = rest.split_at_mut(plane);
            for (((pixel, r), g), b) in pixels.chunks_exact(3).zip(red).zip(green).zip(blue) {
                *r = UNIT[usize::from(pixel[0])];
                *g = UNIT[usize::from(pixel[1])];
                *b = UNIT[usize::from(pixel[2])];
            }
        } else {
            for (channel, values) in data.chunks_exact_mut(plane).enumerate() {
                let source = pixels.iter().skip(channel).step_by(channels);
                for (value, &byte) in values.iter_mut().zip(source) {
                    *value = UNIT[usize::from(byte)];
                }
            }
        }
        Self {
            channels,
            height,
            width,
            data,
        }
    }

    /// An image from 8-bit planar (CHW) pixels, scaled to [0, 1].
    pub fn from_chw_u8(channels: usize, height: usize, width: usize, pixels: &[u8]) -> Self {
        debug_assert_eq!(pixels.len(), channels * height * width);
        Self {
            channels,
            height,
            width,
            data: pixels
                .iter()
                .map(|&value| UNIT[usize::from(value)])
                .collect(),
        }
    }

    /// The value at (`channel`, `row`, `column`).
    pub fn at(&self, channel: usize, row: usize, column: usize) -> f32 {
        self.data[(channel * self.height + row) * self.width + column]
    }

    /// The `height × width` window whose top-left corner is (`top`, `left`).
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Image {
        assert_window((self.height, self.width), (top, left, height, width));
        let mut data = Vec::with_capacity(self.channels * height * width);
        for channel in 0..self.channels {
            for row in top..top + height {
                let start = (channel * self.height + row) * self.width + left;
                data.extend_from_slice(&self.data[start..start + width]);
            }
        }
        Image {
            channels: self.channels,
            height,
            width,
            data,
        }
    }

    /// The image mirrored left to right.
    pub fn mirrored(&self) -> Image {
        let mut image = self.clone();
        image.mirror();
        image
    }

    /// Mirrors the image left to right in place.
    pub fn mirror(&mut self) {
        for row in self.data.chunks_exact_mut(self.width) {
            row.reverse();
        }
    }
}
