//! Creates any model of the zoo by name, with the same face for all of them.

use std::fmt;

use burn::prelude::*;
use serde::Serialize;

use std::sync::{LazyLock, RwLock};

use crate::blocks::ShortcutKind;
use crate::models::alexnet::{self, AlexNet};
use crate::models::cifar_resnet::{self, CifarResNet};
use crate::models::custom::{self, BlockNet};
use crate::models::googlenet::{self, GoogLeNet};
use crate::models::lenet::{self, LeNet5};
use crate::models::nin::{self, Nin, NinCifar};
use crate::models::resnet::{self, ResNet};
use crate::models::vgg::{self, Vgg};
use crate::models::{Classifier, FamilyEntry, ModelArgs, TrainOutput};

/// Choices that every registry entry understands; `None` keeps the entry's default.
#[derive(Config, Debug)]
pub struct ModelOptions {
    /// Number of classes (default: 1000 for ImageNet models, 10 for LeNet-5 and CIFAR models).
    #[config(default = "None")]
    pub num_classes: Option<usize>,
    /// Input channels (default: 1 for LeNet-5, 3 otherwise).
    #[config(default = "None")]
    pub in_channels: Option<usize>,
    /// Side of the square input, for the fixed-size networks (LeNet-5, the course and paper
    /// AlexNets) whose first FC layer depends on it; the others accept any size.
    #[config(default = "None")]
    pub input_size: Option<usize>,
    /// Build GoogLeNet's auxiliary classifiers.
    #[config(default = false)]
    pub aux_logits: bool,
    /// GoogLeNet re-normalises its inputs as torchvision's pretrained weights expect
    /// (`transform_input=True`).
    #[config(default = false)]
    pub transform_input: bool,
    /// Shortcut of the CIFAR ResNets where shapes change (default: option A, zero padding).
    #[config(default = "None")]
    pub shortcut: Option<ShortcutKind>,
}

/// One entry of the zoo: what it is, where it comes from, what it expects by default, and how
/// it is built. Each family's file lists its entries beside its model (`ENTRIES`), as timm's
/// `@register_model` functions sit beside theirs; [`MODELS`] gathers them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModelInfo {
    /// Registry name.
    pub name: &'static str,
    /// Builds the network with every option resolved.
    #[serde(skip)]
    builder: Builder,
    /// The paper it follows.
    pub paper: &'static str,
    /// Default input `[C, H, W]`.
    pub input: [usize; 3],
    /// Default number of classes.
    pub num_classes: usize,
    /// How images are prepared for the model's weights.
    pub preprocessing: Preprocessing,
}

/// How the images a model's weights expect are prepared (timm's `pretrained_cfg`, torchvision's
/// weight transforms): what `predict` does to an image file before the network sees it. The
/// spatial size is the entry's `input`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preprocessing {
    /// The shorter side is resized to this before the centre crop to a 224 input
    /// (torchvision's ImageNet weights: 256), in proportion for other input sides; `None`:
    /// padded or cropped to the input.
    pub resize: Option<usize>,
    /// Subtracted per channel, in `channel_order`.
    pub mean: &'static [f32],
    /// Divided per channel after the mean.
    pub std: &'static [f32],
    /// Channel order of the input.
    pub channel_order: &'static str,
}

/// torchvision's ImageNet weights: resize 256, centre crop 224, ImageNet's mean and std, RGB.
pub(crate) const IMAGENET_PREPROCESSING: Preprocessing = Preprocessing {
    resize: Some(256),
    mean: &[0.485, 0.456, 0.406],
    std: &[0.229, 0.224, 0.225],
    channel_order: "RGB",
};

/// The CIFAR models: 32 × 32 as they are, CIFAR-10's training-set mean and std.
const CIFAR_PREPROCESSING: Preprocessing = Preprocessing {
    resize: None,
    mean: &[0.4914, 0.4822, 0.4465],
    std: &[0.2470, 0.2435, 0.2616],
    channel_order: "RGB",
};

/// LeNet-5: grey digits padded to 32 × 32 (28 × 28 MNIST), MNIST's mean and std.
const MNIST_PREPROCESSING: Preprocessing = Preprocessing {
    resize: None,
    mean: &[0.1307],
    std: &[0.3081],
    channel_order: "grey",
};

impl ModelInfo {
    /// The registry's entry for a family's `entry`; its preprocessing follows its input: grey
    /// images are MNIST's, 32 × 32 ones CIFAR's, the rest ImageNet's.
    fn new<M>(entry: &FamilyEntry<M>, builder: Builder) -> Self {
        Self {
            name: entry.name,
            builder,
            paper: entry.paper,
            input: entry.input,
            num_classes: entry.num_classes,
            preprocessing: match entry.input {
                [1, ..] => MNIST_PREPROCESSING,
                [_, 32, 32] => CIFAR_PREPROCESSING,
                _ => IMAGENET_PREPROCESSING,
            },
        }
    }
}

/// Every registry name.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|info| info.name).collect()
}

/// A name the registry does not know, with the names it resembles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel {
    /// The name asked for.
    pub name: String,
    /// Registry names close to it, closest first.
    pub close_matches: Vec<&'static str>,
}

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown model '{}'", self.name)?;
        if !self.close_matches.is_empty() {
            write!(f, "; did you mean {}?", self.close_matches.join(", "))?;
        }
        write!(
            f,
            " (the zoo has {} models: {})",
            MODELS.len(),
            names().join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The registry entry called `name`.
pub fn info(name: &str) -> Result<&'static ModelInfo, UnknownModel> {
    let wanted = name.to_lowercase();
    if let Some(info) = MODELS.iter().find(|info| info.name == wanted) {
        return Ok(info);
    }
    let registered = REGISTERED
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(info) = registered.iter().find(|info| info.name == wanted) {
        return Ok(info);
    }
    let mut scored: Vec<(usize, &'static str)> = MODELS
        .iter()
        .map(|info| (edit_distance(&wanted, info.name), info.name))
        .filter(|(distance, candidate)| {
            *distance <= 2 + wanted.len() / 6 || (wanted.len() >= 3 && candidate.contains(&wanted))
        })
        .collect();
    scored.sort();
    Err(UnknownModel {
        name: name.to_string(),
        close_matches: scored.into_iter().take(5).map(|(_, name)| name).collect(),
    })
}

/// Builds the model called `name` on `device`.
///
/// ```
/// use burn::prelude::*;
/// use model_zoo::{Classifier, ModelOptions};
///
/// let device = Device::flex();
/// let model = model_zoo::create("cifar-resnet20", &ModelOptions::new(), &device).unwrap();
/// let logits = model.forward(Tensor::zeros([2, 3, 32, 32], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// ```
pub fn create(
    name: &str,
    options: &ModelOptions,
    device: &Device,
) -> Result<ZooModel, UnknownModel> {
    Ok(info(name)?.build(options, device))
}

impl ModelInfo {
    /// Builds this entry with `options` on `device`.
    pub fn build(&self, options: &ModelOptions, device: &Device) -> ZooModel {
        let args = ModelArgs {
            num_classes: options.num_classes.unwrap_or(self.num_classes),
            in_channels: options.in_channels.unwrap_or(self.input[0]),
            input_size: options.input_size.unwrap_or(self.input[1]),
            aux_logits: options.aux_logits,
            transform_input: options.transform_input,
            shortcut: options.shortcut.unwrap_or(ShortcutKind::ZeroPad),
        };
        self.builder.build(&args, device)
    }
}

/// The zoo's families: `Variant(Model) entries`. Adding a family is its model file (with its
/// `ENTRIES`) and one line here, which makes the [`ZooModel`] variant, its share of the
/// [`Classifier`] dispatch and its place in [`MODELS`].
macro_rules! zoo {
    ($($(#[$doc:meta])* $variant:ident($model:ty) entries $entries:path;)*) => {
        /// A family's builder, for the variant it makes.
        #[derive(Debug, Clone, Copy)]
        enum Builder {
            $($variant(fn(&ModelArgs, &Device) -> $model),)*
        }

        impl Builder {
            fn build(self, args: &ModelArgs, device: &Device) -> ZooModel {
                match self {
                    $(Builder::$variant(build) => ZooModel::$variant(build(args, device)),)*
                }
            }
        }

        /// Any model of the zoo.
        // Burn derives `Module` for enums of modules but not for boxes; a model holds a handful
        // of these, built once, so the size difference costs nothing worth boxing for.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum ZooModel {
            $($(#[$doc])* $variant($model),)*
        }

        impl Classifier for ZooModel {
            fn forward_stages(
                &self,
                x: Tensor<4>,
                seen: &mut dyn FnMut(&Tensor<4>),
            ) -> Tensor<4> {
                match self {
                    $(ZooModel::$variant(model) => model.forward_stages(x, seen),)*
                }
            }

            fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
                match self {
                    $(ZooModel::$variant(model) => model.forward_features(x),)*
                }
            }

            fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
                match self {
                    $(ZooModel::$variant(model) => model.forward_head(features),)*
                }
            }

            fn forward(&self, x: Tensor<4>) -> Tensor<2> {
                match self {
                    $(ZooModel::$variant(model) => model.forward(x),)*
                }
            }

            fn forward_train(&self, x: Tensor<4>) -> TrainOutput {
                match self {
                    $(ZooModel::$variant(model) => model.forward_train(x),)*
                }
            }

            fn num_classes(&self) -> usize {
                match self {
                    $(ZooModel::$variant(model) => model.num_classes(),)*
                }
            }

            fn with_num_classes(self, num_classes: usize, device: &Device) -> Self {
                match self {
                    $(ZooModel::$variant(model) => {
                        ZooModel::$variant(model.with_num_classes(num_classes, device))
                    })*
                }
            }
        }

        /// Every entry of the zoo, in the chapter's order.
        pub static MODELS: LazyLock<Vec<ModelInfo>> = LazyLock::new(|| {
            let mut models = Vec::new();
            $(models.extend(
                $entries
                    .iter()
                    .map(|entry| ModelInfo::new(entry, Builder::$variant(entry.build))),
            );)*
            models
        });
    };
}

zoo! {
    /// LeNet-5.
    LeNet5(LeNet5) entries lenet::ENTRIES;
    /// AlexNet.
    AlexNet(AlexNet) entries alexnet::ENTRIES;
    /// VGG.
    Vgg(Vgg) entries vgg::ENTRIES;
    /// ImageNet ResNet.
    ResNet(ResNet) entries resnet::ENTRIES;
    /// CIFAR ResNet.
    CifarResNet(CifarResNet) entries cifar_resnet::ENTRIES;
    /// Network in Network (ImageNet).
    Nin(Nin) entries nin::ENTRIES;
    /// Network in Network (CIFAR-10).
    NinCifar(NinCifar) entries nin::CIFAR_ENTRIES;
    /// GoogLeNet.
    GoogLeNet(GoogLeNet) entries googlenet::ENTRIES;
    /// A network of one's own from the zoo's blocks ([`register`]).
    Custom(BlockNet) entries custom::ENTRIES;
}

/// The networks [`register`] added, in the order they came.
static REGISTERED: RwLock<Vec<&'static ModelInfo>> = RwLock::new(Vec::new());

/// Adds a network of one's own, made of the zoo's blocks, to the registry for this process, as
/// timm's `@register_model` does: [`create`], [`info`] and the trainer then take it by `entry`'s
/// name. A name the registry holds already is refused.
///
/// ```
/// use burn::prelude::*;
/// use model_zoo::blocks::ConvUnitConfig;
/// use model_zoo::models::custom::{BlockConfig, BlockNetConfig};
/// use model_zoo::models::FamilyEntry;
/// use model_zoo::{Classifier, ModelOptions};
///
/// model_zoo::register(FamilyEntry {
///     name: "tiny-net",
///     paper: "a doc example",
///     input: [3, 32, 32],
///     num_classes: 10,
///     build: |args, device| {
///         BlockNetConfig::new(
///             vec![
///                 BlockConfig::Conv(ConvUnitConfig::new([args.in_channels, 8], 3).with_padding(1)),
///                 BlockConfig::MaxPool([2, 2]),
///                 BlockConfig::Conv(ConvUnitConfig::pointwise(8, 4)),
///             ],
///             args.num_classes,
///         )
///         .init(device)
///     },
/// })
/// .unwrap();
/// let device = Device::flex();
/// let model = model_zoo::create("tiny-net", &ModelOptions::new(), &device).unwrap();
/// assert_eq!(model.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 10]);
/// ```
pub fn register(entry: FamilyEntry<BlockNet>) -> Result<(), String> {
    let mut registered = REGISTERED
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if MODELS
        .iter()
        .chain(registered.iter().copied())
        .any(|info| info.name == entry.name)
    {
        return Err(format!(
            "the registry holds a model named '{}' already",
            entry.name
        ));
    }
    let info = ModelInfo::new(&entry, Builder::Custom(entry.build));
    registered.push(Box::leak(Box::new(info)));
    Ok(())
}
