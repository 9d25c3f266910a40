//! Multi-crop evaluation (the chapter's "10-crop"): the centre and four corners, of the image
//! and of its mirror, in torchvision's order.

use std::fmt;
use std::str::FromStr;

use crate::image::Image;
use crate::rng::Rng;
use crate::transforms::geometry::pad_to;
use crate::transforms::{Transform, named};

/// Top-left, top-right, bottom-left, bottom-right and centre `size × size` crops.
pub fn five_crop(image: &Image, size: usize) -> [Image; 5] {
    assert!(
        size <= image.height && size <= image.width,
        "a {size}×{size} crop of a {}×{} image",
        image.height,
        image.width
    );
    let (bottom, right) = (image.height - size, image.width - size);
    [
        image.crop(0, 0, size, size),
        image.crop(0, right, size, size),
        image.crop(bottom, 0, size, size),
        image.crop(bottom, right, size, size),
        image.crop(bottom / 2, right / 2, size, size),
    ]
}

/// The five crops of the image, then the five of its mirror.
pub fn ten_crop(image: &Image, size: usize) -> [Image; 10] {
    let [a, b, c, d, e] = five_crop(image, size);
    let [f, g, h, i, j] = five_crop(&image.mirrored(), size);
    [a, b, c, d, e, f, g, h, i, j]
}

/// Which views of an image test-time augmentation averages the model's outputs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    /// The centre crop alone (plain evaluation).
    Single,
    /// The centre crop and its mirror.
    Flip,
    /// [`five_crop`].
    FiveCrop,
    /// [`ten_crop`] (Krizhevsky et al. 2012, §4.1).
    TenCrop,
}

impl Views {
    /// Every choice with its command-line name.
    pub const ALL: [(&'static str, Views); 4] = [
        ("none", Views::Single),
        ("flip", Views::Flip),
        ("five-crop", Views::FiveCrop),
        ("ten-crop", Views::TenCrop),
    ];

    /// Views per image: forward passes per image per model.
    pub fn count(self) -> usize {
        match self {
            Views::Single => 1,
            Views::Flip => 2,
            Views::FiveCrop => 5,
            Views::TenCrop => 10,
        }
    }

    /// The index of the centre crop among the views: what plain evaluation sees.
    pub fn centre(self) -> usize {
        match self {
            Views::Single | Views::Flip => 0,
            Views::FiveCrop | Views::TenCrop => 4,
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Views::ALL
            .iter()
            .find(|(_, views)| *views == self)
            .map(|(name, _)| *name)
            .expect("every variant is named")
    }

    /// The `size × size` views of `image`, which is zero-padded evenly first if smaller.
    pub fn of(self, image: &Image, size: usize) -> Vec<Image> {
        let image = pad_to(image.clone(), size, size);
        let centre = || {
            let (top, left) = ((image.height - size) / 2, (image.width - size) / 2);
            image.crop(top, left, size, size)
        };
        match self {
            Views::Single => vec![centre()],
            Views::Flip => {
                let centre = centre();
                let mirrored = centre.mirrored();
                vec![centre, mirrored]
            }
            Views::FiveCrop => five_crop(&image, size).into(),
            Views::TenCrop => ten_crop(&image, size).into(),
        }
    }
}

impl fmt::Display for Views {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Views {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        named(&Views::ALL, name, "test-time augmentation")
    }
}

/// Cuts the [`Views`] of an image and stacks them along the channels, view after view, so that
/// a batch of `N` such images, `[N, V·C, H, W]`, reshapes to the `[N·V, C, H, W]` batch a model
/// evaluates in one forward pass.
#[derive(Debug, Clone)]
pub struct MultiCrop {
    /// Which views.
    pub views: Views,
    /// Side of each crop.
    pub size: usize,
}

impl Transform for MultiCrop {
    fn apply(&self, image: Image, _rng: &mut Rng) -> Image {
        let views = self.views.of(&image, self.size);
        let channels = image.channels * views.len();
        let mut data = Vec::with_capacity(channels * self.size * self.size);
        for view in views {
            data.extend_from_slice(&view.data);
        }
        Image {
            channels,
            height: self.size,
            width: self.size,
            data,
        }
    }
}
