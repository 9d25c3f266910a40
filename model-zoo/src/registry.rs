//! Creates any model of the zoo by name, with the same face for all of them.

use std::fmt;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blocks::ShortcutKind;
use crate::models::Classifier;
use crate::models::TrainOutput;
use crate::models::alexnet::{AlexNet, AlexNetConfig, AlexNetVariant};
use crate::models::cifar_resnet::{CifarResNet, CifarResNetConfig};
use crate::models::googlenet::{GoogLeNet, GoogLeNetConfig, GoogLeNetVariant};
use crate::models::lenet::{LeNet5, LeNet5Config};
use crate::models::nin::{Nin, NinCifar, NinCifarConfig, NinConfig};
use crate::models::resnet::{ResNet, ResNetConfig};
use crate::models::vgg::{Vgg, VggConfig};

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

/// What a registry entry builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// LeNet-5, 1998 (tanh, average pool) or modern (ReLU, max pool).
    LeNet5 {
        /// ReLU and max pooling.
        modern: bool,
    },
    /// AlexNet.
    AlexNet(AlexNetVariant),
    /// VGG.
    Vgg {
        /// 11, 13, 16 or 19.
        depth: usize,
        /// Batch norm after each convolution.
        batch_norm: bool,
    },
    /// An ImageNet ResNet or its plain twin.
    ResNet {
        /// 18, 34, 50, 101 or 152.
        depth: usize,
        /// Skip connections (false: the plain twin).
        residual: bool,
    },
    /// A CIFAR ResNet or its plain twin.
    CifarResNet {
        /// 6n+2.
        depth: usize,
        /// Skip connections (false: the plain twin).
        residual: bool,
    },
    /// Network in Network for ImageNet.
    Nin,
    /// Network in Network for CIFAR-10.
    NinCifar,
    /// GoogLeNet.
    GoogLeNet(GoogLeNetVariant),
}

/// One entry of the zoo: what it is, where it comes from, and what it expects by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Registry name.
    pub name: &'static str,
    /// What it builds.
    pub architecture: Architecture,
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

const LECUN_1998: &str = "LeCun et al. 1998";
const KRIZHEVSKY_2012: &str = "Krizhevsky et al. 2012";
const SIMONYAN_2015: &str = "Simonyan & Zisserman 2015";
const HE_2016: &str = "He et al. 2016";
const LIN_2014: &str = "Lin et al. 2014";
const SZEGEDY_2014: &str = "Szegedy et al. 2014";

const IMAGENET: [usize; 3] = [3, 224, 224];
const CIFAR: [usize; 3] = [3, 32, 32];

const fn entry(
    name: &'static str,
    architecture: Architecture,
    paper: &'static str,
    input: [usize; 3],
    num_classes: usize,
) -> ModelInfo {
    ModelInfo {
        name,
        architecture,
        paper,
        input,
        num_classes,
        preprocessing: match input {
            [1, ..] => MNIST_PREPROCESSING,
            [_, 32, 32] => CIFAR_PREPROCESSING,
            _ => IMAGENET_PREPROCESSING,
        },
    }
}

const fn vgg(name: &'static str, depth: usize, batch_norm: bool) -> ModelInfo {
    entry(
        name,
        Architecture::Vgg { depth, batch_norm },
        SIMONYAN_2015,
        IMAGENET,
        1000,
    )
}

const fn resnet(name: &'static str, depth: usize, residual: bool) -> ModelInfo {
    entry(
        name,
        Architecture::ResNet { depth, residual },
        HE_2016,
        IMAGENET,
        1000,
    )
}

const fn cifar_resnet(name: &'static str, depth: usize, residual: bool) -> ModelInfo {
    entry(
        name,
        Architecture::CifarResNet { depth, residual },
        HE_2016,
        CIFAR,
        10,
    )
}

/// Every entry of the zoo, in the chapter's order.
#[rustfmt::skip]
pub static MODELS: &[ModelInfo] = &[
    entry("lenet5", Architecture::LeNet5 { modern: false }, LECUN_1998, [1, 32, 32], 10),
    entry("lenet5-modern", Architecture::LeNet5 { modern: true }, LECUN_1998, [1, 32, 32], 10),
    entry("alexnet", Architecture::AlexNet(AlexNetVariant::Torchvision), KRIZHEVSKY_2012, IMAGENET, 1000),
    entry("alexnet-course", Architecture::AlexNet(AlexNetVariant::Course), KRIZHEVSKY_2012, [3, 227, 227], 1000),
    entry("alexnet-paper", Architecture::AlexNet(AlexNetVariant::Paper), KRIZHEVSKY_2012, [3, 227, 227], 1000),
    vgg("vgg11", 11, false), vgg("vgg11_bn", 11, true),
    vgg("vgg13", 13, false), vgg("vgg13_bn", 13, true),
    vgg("vgg16", 16, false), vgg("vgg16_bn", 16, true),
    vgg("vgg19", 19, false), vgg("vgg19_bn", 19, true),
    resnet("resnet18", 18, true), resnet("resnet34", 34, true), resnet("resnet50", 50, true),
    resnet("resnet101", 101, true), resnet("resnet152", 152, true),
    resnet("plain-resnet18", 18, false), resnet("plain-resnet34", 34, false),
    resnet("plain-resnet50", 50, false), resnet("plain-resnet101", 101, false),
    resnet("plain-resnet152", 152, false),
    cifar_resnet("cifar-resnet20", 20, true), cifar_resnet("cifar-resnet32", 32, true),
    cifar_resnet("cifar-resnet44", 44, true), cifar_resnet("cifar-resnet56", 56, true),
    cifar_resnet("cifar-resnet110", 110, true),
    cifar_resnet("plain-cifar-resnet20", 20, false), cifar_resnet("plain-cifar-resnet32", 32, false),
    cifar_resnet("plain-cifar-resnet44", 44, false), cifar_resnet("plain-cifar-resnet56", 56, false),
    cifar_resnet("plain-cifar-resnet110", 110, false),
    entry("nin", Architecture::Nin, LIN_2014, IMAGENET, 1000),
    entry("nin-cifar", Architecture::NinCifar, LIN_2014, CIFAR, 10),
    entry("googlenet", Architecture::GoogLeNet(GoogLeNetVariant::Torchvision), SZEGEDY_2014, IMAGENET, 1000),
    entry("googlenet-paper", Architecture::GoogLeNet(GoogLeNetVariant::Paper), SZEGEDY_2014, IMAGENET, 1000),
];

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
        let num_classes = options.num_classes.unwrap_or(self.num_classes);
        let in_channels = options.in_channels.unwrap_or(self.input[0]);
        let input_size = options.input_size.unwrap_or(self.input[1]);
        match self.architecture {
            Architecture::LeNet5 { modern } => ZooModel::LeNet5(
                LeNet5Config::new()
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .with_input_size(input_size)
                    .with_modern(modern)
                    .init(device),
            ),
            Architecture::AlexNet(variant) => ZooModel::AlexNet(
                AlexNetConfig::new()
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .with_variant(variant)
                    .with_input_size(input_size)
                    .init(device),
            ),
            Architecture::Vgg { depth, batch_norm } => ZooModel::Vgg(
                VggConfig::new(depth)
                    .with_batch_norm(batch_norm)
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .init(device),
            ),
            Architecture::ResNet { depth, residual } => ZooModel::ResNet(
                ResNetConfig::depth(depth)
                    .with_residual(residual)
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .init(device),
            ),
            Architecture::CifarResNet { depth, residual } => ZooModel::CifarResNet(
                CifarResNetConfig::new(depth)
                    .with_shortcut(options.shortcut.unwrap_or(ShortcutKind::ZeroPad))
                    .with_residual(residual)
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .init(device),
            ),
            Architecture::Nin => ZooModel::Nin(
                NinConfig::new()
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .init(device),
            ),
            Architecture::NinCifar => ZooModel::NinCifar(
                NinCifarConfig::new()
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .init(device),
            ),
            Architecture::GoogLeNet(variant) => ZooModel::GoogLeNet(
                GoogLeNetConfig::new()
                    .with_num_classes(num_classes)
                    .with_in_channels(in_channels)
                    .with_variant(variant)
                    .with_aux_logits(options.aux_logits)
                    .with_transform_input(options.transform_input)
                    .init(device),
            ),
        }
    }
}

/// Any model of the zoo.
// Burn derives `Module` for enums of modules but not for boxes; a model holds a handful of
// these, built once, so the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ZooModel {
    /// LeNet-5.
    LeNet5(LeNet5),
    /// AlexNet.
    AlexNet(AlexNet),
    /// VGG.
    Vgg(Vgg),
    /// ImageNet ResNet.
    ResNet(ResNet),
    /// CIFAR ResNet.
    CifarResNet(CifarResNet),
    /// Network in Network (ImageNet).
    Nin(Nin),
    /// Network in Network (CIFAR-10).
    NinCifar(NinCifar),
    /// GoogLeNet.
    GoogLeNet(GoogLeNet),
}

macro_rules! each_model {
    ($value:expr, $model:ident => $body:expr) => {
        match $value {
            ZooModel::LeNet5($model) => $body,
            ZooModel::AlexNet($model) => $body,
            ZooModel::Vgg($model) => $body,
            ZooModel::ResNet($model) => $body,
            ZooModel::CifarResNet($model) => $body,
            ZooModel::Nin($model) => $body,
            ZooModel::NinCifar($model) => $body,
            ZooModel::GoogLeNet($model) => $body,
        }
    };
}

macro_rules! each_model_into {
    ($value:expr, $model:ident => $body:expr) => {
        match $value {
            ZooModel::LeNet5($model) => ZooModel::LeNet5($body),
            ZooModel::AlexNet($model) => ZooModel::AlexNet($body),
            ZooModel::Vgg($model) => ZooModel::Vgg($body),
            ZooModel::ResNet($model) => ZooModel::ResNet($body),
            ZooModel::CifarResNet($model) => ZooModel::CifarResNet($body),
            ZooModel::Nin($model) => ZooModel::Nin($body),
            ZooModel::NinCifar($model) => ZooModel::NinCifar($body),
            ZooModel::GoogLeNet($model) => ZooModel::GoogLeNet($body),
        }
    };
}

impl Classifier for ZooModel {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        each_model!(self, model => model.forward_stages(x, seen))
    }

    fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        each_model!(self, model => model.forward_features(x))
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        each_model!(self, model => model.forward_head(features))
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        each_model!(self, model => model.forward(x))
    }

    fn forward_train(&self, x: Tensor<4>) -> TrainOutput {
        each_model!(self, model => model.forward_train(x))
    }

    fn num_classes(&self) -> usize {
        each_model!(self, model => model.num_classes())
    }

    fn with_num_classes(self, num_classes: usize, device: &Device) -> Self {
        each_model_into!(self, model => model.with_num_classes(num_classes, device))
    }
}
