//! Composable, seeded transforms and the presets the trainer names.

pub mod auto_augment;
pub mod color;
pub mod crops;
pub mod erasing;
pub mod geometry;
pub mod mix;

use std::fmt;
use std::str::FromStr;

use crate::image::{Image, ImageU8};
use crate::rng::Rng;

pub use auto_augment::{AugmentOp, AutoAugment, RandAugment, TrivialAugmentWide};
pub use color::{ColorShift, Normalize, OffsetDistribution, Pca, PcaLighting};
pub use crops::{MultiCrop, Views, five_crop, ten_crop};
pub use erasing::RandomErasing;
pub use geometry::{
    CenterCrop, HorizontalFlip, Pad, PaddingMode, RandomAffine, RandomCrop, RandomResizedCrop,
    Resize,
};
pub use mix::{BatchMix, MixedLabels};

/// One step of preprocessing or augmentation; randomness comes only from `rng`.
pub trait Transform: Send + Sync + fmt::Debug {
    /// Transforms one image.
    fn apply(&self, image: Image, rng: &mut Rng) -> Image;

    /// Transforms an image as its file decoded, when this step can read the 8-bit pixels
    /// directly (crops and resizes, which keep fewer pixels than they read): the same image and
    /// the same random draws as `apply(image.to_image(), rng)`. `None`, before drawing anything,
    /// when the step needs the `f32` image.
    fn apply_u8(&self, _image: &ImageU8, _rng: &mut Rng) -> Option<Image> {
        None
    }
}

/// Transforms applied in order.
#[derive(Debug, Default)]
pub struct Compose(pub Vec<Box<dyn Transform>>);

impl Compose {
    /// No transform at all.
    pub fn identity() -> Self {
        Self(Vec::new())
    }

    /// Appends a step.
    pub fn then(mut self, step: impl Transform + 'static) -> Self {
        self.0.push(Box::new(step));
        self
    }
}

impl Transform for Compose {
    fn apply(&self, image: Image, rng: &mut Rng) -> Image {
        self.0
            .iter()
            .fold(image, |image, step| step.apply(image, rng))
    }

    /// The first step reads the 8-bit pixels when it can; the image is converted for it
    /// otherwise.
    fn apply_u8(&self, image: &ImageU8, rng: &mut Rng) -> Option<Image> {
        let Some((first, rest)) = self.0.split_first() else {
            return Some(image.to_image());
        };
        let image = first
            .apply_u8(image, rng)
            .unwrap_or_else(|| first.apply(image.to_image(), rng));
        Some(
            rest.iter()
                .fold(image, |image, step| step.apply(image, rng)),
        )
    }
}

/// Named recipes, for training and for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Nothing but padding/cropping to the input size.
    None,
    /// MNIST: zero-pad to the input size (28→32 for LeNet-5), rotate and shear by up to 10°
    /// (training only), normalise.
    Mnist,
    /// CIFAR: random crop with 4 pixels of zero padding, mirror, normalise (He et al. §4.2).
    Cifar,
    /// Small images of any subject (an image folder of at most
    /// [`Preset::SMALL_IMAGE_SIDE`]-pixel images): random crop with 4 pixels of zero padding,
    /// normalise with ImageNet's statistics. No mirror, unlike CIFAR's: digits and text are not
    /// mirror-symmetric (`cifar` adds it).
    Small,
    /// ImageNet: random-resized crop, mirror, normalise; evaluation resizes to 256/224 of the
    /// input and centre-crops.
    Imagenet,
    /// AlexNet: resize to 256/224 of the input, random crop, mirror, PCA lighting (σ = 0.1),
    /// normalise (Krizhevsky et al. §4.1).
    Alexnet,
}

impl Preset {
    /// Every preset with its name.
    pub const ALL: [(&'static str, Preset); 6] = [
        ("none", Preset::None),
        ("mnist", Preset::Mnist),
        ("cifar", Preset::Cifar),
        ("small", Preset::Small),
        ("imagenet", Preset::Imagenet),
        ("alexnet", Preset::Alexnet),
    ];

    /// The largest side of images that [`Preset::for_image_side`] treats as small: CIFAR's and
    /// MNIST's 28–32 pixels and their like, well below what the ImageNet recipe's random-resized
    /// crop (down to 8 % of the area, then upscaled) suits.
    pub const SMALL_IMAGE_SIDE: usize = 64;

    /// The default recipe for an image folder whose largest images have `side` pixels on their
    /// longer side: [`Preset::Small`] up to [`Preset::SMALL_IMAGE_SIDE`], [`Preset::Imagenet`]
    /// above.
    pub fn for_image_side(side: usize) -> Preset {
        if side <= Self::SMALL_IMAGE_SIDE {
            Preset::Small
        } else {
            Preset::Imagenet
        }
    }

    /// The preset's command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, preset)| *preset == self)
            .map(|(name, _)| *name)
            .expect("every preset is in Preset::ALL")
    }

    fn resize_side(size: usize) -> usize {
        size * 256 / 224
    }

    /// The training recipe for `size × size` inputs.
    pub fn train(self, size: usize) -> Compose {
        self.train_with(size, &ExtraAugmentation::default())
    }

    /// The training recipe with `extra` augmentation, where torchvision's reference script puts
    /// it: the automatic policy after the crops and flips (on [0, 1] values), random erasing
    /// after normalisation.
    pub fn train_with(self, size: usize, extra: &ExtraAugmentation) -> Compose {
        let mut steps = match self {
            // CenterCrop zero-pads MNIST's 28×28 evenly to 32×32 before cropping.
            Preset::None => Compose::identity().then(CenterCrop { size }),
            Preset::Mnist => Compose::identity()
                .then(CenterCrop { size })
                .then(RandomAffine {
                    degrees: 10.0,
                    shear: 10.0,
                }),
            Preset::Cifar => Compose::identity()
                .then(RandomCrop {
                    size,
                    padding: 4,
                    mode: PaddingMode::Zero,
                })
                .then(HorizontalFlip { probability: 0.5 }),
            Preset::Small => Compose::identity().then(RandomCrop {
                size,
                padding: 4,
                mode: PaddingMode::Zero,
            }),
            Preset::Imagenet => Compose::identity()
                .then(RandomResizedCrop::new(size))
                .then(HorizontalFlip { probability: 0.5 }),
            Preset::Alexnet => Compose::identity()
                .then(Resize {
                    size: Self::resize_side(size),
                })
                .then(RandomCrop {
                    size,
                    padding: 0,
                    mode: PaddingMode::Zero,
                })
                .then(HorizontalFlip { probability: 0.5 }),
        };
        if let Some(policy) = extra.auto_augment {
            steps = steps.then(policy);
        }
        if self == Preset::Alexnet {
            steps = steps.then(PcaLighting {
                std: 0.1,
                pca: Pca::IMAGENET,
            });
        }
        if let Some(normalize) = self.normalize() {
            steps = steps.then(normalize);
        }
        if extra.random_erase > 0.0 {
            steps = steps.then(RandomErasing::new(extra.random_erase));
        }
        steps
    }

    /// The evaluation recipe for `size × size` inputs (deterministic).
    pub fn eval(self, size: usize) -> Compose {
        let steps = match self {
            Preset::None | Preset::Mnist | Preset::Cifar | Preset::Small => {
                Compose::identity().then(CenterCrop { size })
            }
            Preset::Imagenet | Preset::Alexnet => Compose::identity()
                .then(Resize {
                    size: Self::resize_side(size),
                })
                .then(CenterCrop { size }),
        };
        match self.normalize() {
            Some(normalize) => steps.then(normalize),
            None => steps,
        }
    }

    /// The normalisation the preset ends with, in training and evaluation alike: what a network
    /// trained under it expects of its inputs (`None`: pixels in [0, 1] as decoded).
    pub fn normalize(self) -> Option<Normalize> {
        match self {
            Preset::None => None,
            Preset::Mnist => Some(Normalize::mnist()),
            Preset::Cifar => Some(Normalize::cifar10()),
            Preset::Small | Preset::Imagenet | Preset::Alexnet => Some(Normalize::imagenet()),
        }
    }
}

/// Augmentation added to a preset's training recipe (torchvision reference script's
/// `--auto-augment` and `--random-erase`); the default adds none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExtraAugmentation {
    /// An automatic policy, applied after the preset's crops and flips.
    pub auto_augment: Option<AutoAugment>,
    /// The chance of [`RandomErasing`] after normalisation; 0 for none.
    pub random_erase: f64,
}

/// Where multi-crop evaluation cuts its views from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiCropGeometry {
    /// Side of each crop (the model's input).
    pub crop: usize,
    /// Resize the shorter side to this first (`None`: keep the size).
    pub resize: Option<usize>,
    /// Zeros added to every side after resizing.
    pub padding: usize,
}

impl Preset {
    /// Where this preset's multi-crop evaluation cuts `crop × crop` views from: the ImageNet
    /// recipes resize the shorter side to 256/224 of the crop (torchvision's `Resize(256)`,
    /// `TenCrop(224)`); the small-image ones keep the size and pad every side by 4, so the
    /// corners are the largest shifts that training's "pad 4, random crop" showed the model.
    pub fn multi_crop_geometry(self, crop: usize) -> MultiCropGeometry {
        match self {
            Preset::Imagenet | Preset::Alexnet => MultiCropGeometry {
                crop,
                resize: Some(Self::resize_side(crop)),
                padding: 0,
            },
            Preset::None => MultiCropGeometry {
                crop,
                resize: None,
                padding: 0,
            },
            Preset::Mnist | Preset::Cifar | Preset::Small => MultiCropGeometry {
                crop,
                resize: None,
                padding: 4,
            },
        }
    }

    /// The evaluation recipe with test-time augmentation: each image becomes its `views`,
    /// normalised and stacked along the channels ([`MultiCrop`]). With [`Views::Single`] and
    /// this preset's geometry the one view equals [`Preset::eval`]'s output.
    pub fn multi_crop(self, geometry: MultiCropGeometry, views: Views) -> Compose {
        let mut steps = Compose::identity();
        if let Some(size) = geometry.resize {
            steps = steps.then(Resize { size });
        }
        steps = steps.then(Pad {
            size: geometry.crop,
            padding: geometry.padding,
        });
        if let Some(normalize) = self.normalize() {
            steps = steps.then(normalize);
        }
        steps.then(MultiCrop {
            views,
            size: geometry.crop,
        })
    }
}

/// The value named `name` in a table of command-line names, or an error listing the names.
pub(crate) fn named<T: Copy>(table: &[(&str, T)], name: &str, what: &str) -> Result<T, String> {
    table
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown {what} '{name}' (expected one of: {})",
                names.join(", ")
            )
        })
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        named(&Preset::ALL, name, "augmentation preset")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_names(steps: &Compose) -> Vec<String> {
        steps
            .0
            .iter()
            .map(|step| {
                let debug = format!("{step:?}");
                debug
                    .split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn extra_augmentation_goes_where_torchvision_puts_it() {
        let extra = ExtraAugmentation {
            auto_augment: Some(AutoAugment::named("ta_wide", 9).unwrap()),
            random_erase: 0.25,
        };
        assert_eq!(
            step_names(&Preset::Cifar.train_with(32, &extra)),
            [
                "RandomCrop",
                "HorizontalFlip",
                "TrivialAugmentWide",
                "Normalize",
                "RandomErasing"
            ]
        );
        assert_eq!(
            step_names(&Preset::Alexnet.train_with(224, &extra))[3..],
            [
                "TrivialAugmentWide",
                "PcaLighting",
                "Normalize",
                "RandomErasing"
            ]
        );
        assert_eq!(
            step_names(&Preset::Cifar.train(32)),
            ["RandomCrop", "HorizontalFlip", "Normalize"]
        );
    }
}
