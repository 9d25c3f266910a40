//! Published pretrained weights by name, as torchvision's weight enums list them
//! (`ResNet50_Weights.IMAGENET1K_V2`): where each file is, the SHA-256 prefix its name carries
//! (what `torch.hub`'s `check_hash` checks), the accuracy its recipe reached, its preprocessing
//! and its classes. Names are `tv:<model>` for torchvision's default weights of a model and
//! `tv:<model>.<tag>` for any of them (`tv:resnet50.imagenet1k_v1`).
//!
//! This module only describes the files; `trainer::hub` downloads, checks and caches them.

use crate::registry::Preprocessing;

/// The classes a set of weights predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassNames {
    /// ImageNet-1K's 1,000 classes, in torchvision's order and words
    /// ([`imagenet_classes`]).
    Imagenet1k,
    /// The digits 0 to 9 (MNIST).
    Digits,
    /// CIFAR-10's classes in label order, which is also their folders' sorted order.
    Cifar10,
}

impl ClassNames {
    /// The class names, index by index.
    pub fn names(self) -> Vec<String> {
        match self {
            ClassNames::Imagenet1k => imagenet_classes(),
            ClassNames::Digits => (0..10).map(|digit| digit.to_string()).collect(),
            ClassNames::Cifar10 => [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]
            .map(str::to_string)
            .to_vec(),
        }
    }
}

/// One published weights file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedWeights {
    /// The registry entry it loads into.
    pub model: &'static str,
    /// torchvision's enum member, lower case (`imagenet1k_v1`).
    pub tag: &'static str,
    /// Whether torchvision names it `DEFAULT` for its model.
    pub default: bool,
    /// Where it is published.
    pub url: &'static str,
    /// The start of its SHA-256, hex, as the file name carries it.
    pub sha256_prefix: &'static str,
    /// ImageNet-1K validation top-1 and top-5 (%), as torchvision publishes them.
    pub top1: f64,
    pub top5: f64,
    /// Shorter side before the 224 centre crop: 256, or 232 for the V2 recipe.
    pub resize: usize,
    /// GoogLeNet's weights expect `transform_input=True`.
    pub transform_input: bool,
    /// What it predicts.
    pub classes: ClassNames,
}

impl PublishedWeights {
    /// `tv:<model>.<tag>`.
    pub fn name(&self) -> String {
        format!("tv:{}.{}", self.model, self.tag)
    }

    /// The file's name, the last part of its URL.
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }

    /// The evaluation preprocessing of its recipe: ImageNet's statistics, RGB, resized to
    /// [`Self::resize`] then centre-cropped to 224.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            resize: Some(self.resize),
            ..crate::registry::IMAGENET_PREPROCESSING
        }
    }
}

const fn tv(
    model: &'static str,
    tag: &'static str,
    default: bool,
    url: &'static str,
    sha256_prefix: &'static str,
    [top1, top5]: [f64; 2],
    resize: usize,
) -> PublishedWeights {
    PublishedWeights {
        model,
        tag,
        default,
        url,
        sha256_prefix,
        top1,
        top5,
        resize,
        transform_input: false,
        classes: ClassNames::Imagenet1k,
    }
}

macro_rules! url {
    ($file:literal) => {
        concat!("https://download.pytorch.org/models/", $file)
    };
}

/// torchvision's ImageNet-1K classification weights for the zoo's importable models (torchvision
/// 0.29's weight enums; accuracies from their `_metrics`).
#[rustfmt::skip]
pub const TORCHVISION: &[PublishedWeights] = &[
    tv("alexnet", "imagenet1k_v1", true, url!("alexnet-owt-7be5be79.pth"), "7be5be79", [56.522, 79.066], 256),
    tv("vgg11", "imagenet1k_v1", true, url!("vgg11-8a719046.pth"), "8a719046", [69.020, 88.628], 256),
    tv("vgg11_bn", "imagenet1k_v1", true, url!("vgg11_bn-6002323d.pth"), "6002323d", [70.370, 89.810], 256),
    tv("vgg13", "imagenet1k_v1", true, url!("vgg13-19584684.pth"), "19584684", [69.928, 89.246], 256),
    tv("vgg13_bn", "imagenet1k_v1", true, url!("vgg13_bn-abd245e5.pth"), "abd245e5", [71.586, 90.374], 256),
    tv("vgg16", "imagenet1k_v1", true, url!("vgg16-397923af.pth"), "397923af", [71.592, 90.382], 256),
    tv("vgg16_bn", "imagenet1k_v1", true, url!("vgg16_bn-6c64b313.pth"), "6c64b313", [73.360, 91.516], 256),
    tv("vgg19", "imagenet1k_v1", true, url!("vgg19-dcbb9e9d.pth"), "dcbb9e9d", [72.376, 90.876], 256),
    tv("vgg19_bn", "imagenet1k_v1", true, url!("vgg19_bn-c79401a0.pth"), "c79401a0", [74.218, 91.842], 256),
    tv("resnet18", "imagenet1k_v1", true, url!("resnet18-f37072fd.pth"), "f37072fd", [69.758, 89.078], 256),
    tv("resnet34", "imagenet1k_v1", true, url!("resnet34-b627a593.pth"), "b627a593", [73.314, 91.420], 256),
    tv("resnet50", "imagenet1k_v1", false, url!("resnet50-0676ba61.pth"), "0676ba61", [76.130, 92.862], 256),
    tv("resnet50", "imagenet1k_v2", true, url!("resnet50-11ad3fa6.pth"), "11ad3fa6", [80.858, 95.434], 232),
    tv("resnet101", "imagenet1k_v1", false, url!("resnet101-63fe2227.pth"), "63fe2227", [77.374, 93.546], 256),
    tv("resnet101", "imagenet1k_v2", true, url!("resnet101-cd907fc2.pth"), "cd907fc2", [81.886, 95.780], 232),
    tv("resnet152", "imagenet1k_v1", false, url!("resnet152-394f9c45.pth"), "394f9c45", [78.312, 94.046], 256),
    tv("resnet152", "imagenet1k_v2", true, url!("resnet152-f82ba261.pth"), "f82ba261", [82.284, 96.002], 232),
    PublishedWeights {
        transform_input: true,
        ..tv("googlenet", "imagenet1k_v1", true, url!("googlenet-1378be20.pth"), "1378be20", [69.778, 89.530], 256)
    },
];

/// Weights this project trained with its own commands and ships inside this crate
/// (`model-zoo/weights/`, with `manifest.json`): `zoo:<model>.<dataset>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShippedWeights {
    /// The registry entry it loads into.
    pub model: &'static str,
    /// What it was trained on.
    pub dataset: &'static str,
    /// The burnpack file, in `model-zoo/weights/`.
    pub file_name: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its SHA-256, hex (checked by a test against the bytes and `weights/manifest.json`).
    pub sha256: &'static str,
    /// Test top-1 (%) on the dataset's test split.
    pub top1: f64,
    /// The command that trained it.
    pub command: &'static str,
    /// Its recipe's `--augment` preset, whose evaluation half (the normalisation above all) the
    /// weights expect.
    pub augment: &'static str,
    /// What it predicts.
    pub classes: ClassNames,
}

impl ShippedWeights {
    /// `zoo:<model>.<dataset>`.
    pub fn name(&self) -> String {
        format!("zoo:{}.{}", self.model, self.dataset)
    }
}

/// The weights this project ships.
pub const SHIPPED: &[ShippedWeights] = &[
    ShippedWeights {
        model: "lenet5",
        dataset: "mnist",
        file_name: "lenet5-mnist.bpk",
        bytes: include_bytes!("../weights/lenet5-mnist.bpk"),
        sha256: "776ac9714a04c1b89de363fe037adae99a5474da2efd766ec6c804d987c52fef",
        // Measured on MNIST's 10,000 test digits when it was trained (`weights/manifest.json`).
        top1: 99.19,
        // The recipe reproduces the file's tensors byte for byte (`weights/manifest.json`).
        command: "cargo xtask train --recipe lenet5-mnist --data-dir ../shared/datasets/mnist",
        augment: "mnist",
        classes: ClassNames::Digits,
    },
    ShippedWeights {
        model: "cifar-resnet20",
        dataset: "cifar10",
        file_name: "cifar-resnet20-cifar10.bpk",
        bytes: include_bytes!("../weights/cifar-resnet20-cifar10.bpk"),
        sha256: "84331bf010459ec8584ebeee497801c53f50b07031332395e59a8329a09e7c72",
        // The last weights after the second distillation round's 32 epochs, on the 10,000 JPEG
        // test images (`weights/manifest.json`); He et al. report 91.25 % on the binary set
        // after 64k iterations.
        top1: 89.93,
        command: "cargo xtask train --recipe cifar-resnet20-distilled-2",
        augment: "cifar",
        classes: ClassNames::Cifar10,
    },
];

/// The shipped weights of `model`, if the project ships some: what `predict --model` uses when
/// given no weights.
pub fn shipped_for(model: &str) -> Option<&'static ShippedWeights> {
    SHIPPED.iter().find(|weights| weights.model == model)
}

/// The shipped weights `spec` names (`zoo:lenet5.mnist`, or `zoo:lenet5` for the model's).
pub fn find_shipped(spec: &str) -> Result<&'static ShippedWeights, String> {
    let rest = spec.strip_prefix("zoo:").unwrap_or(spec);
    let (model, dataset) = rest.split_once('.').unwrap_or((rest, ""));
    SHIPPED
        .iter()
        .find(|w| w.model == model && (dataset.is_empty() || w.dataset == dataset))
        .ok_or_else(|| {
            let names: Vec<String> = SHIPPED.iter().map(ShippedWeights::name).collect();
            format!(
                "no shipped weights named '{spec}' (shipped: {})",
                names.join(", ")
            )
        })
}

/// Whether `spec` names published weights (`tv:…`) or shipped ones (`zoo:…`) rather than a file.
pub fn is_published_name(spec: &str) -> bool {
    spec.starts_with("tv:") || spec.starts_with("zoo:")
}

/// The published weights `spec` names: `tv:<model>` (torchvision's default for that model) or
/// `tv:<model>.<tag>`. An unknown name is an error listing what there is.
pub fn find(spec: &str) -> Result<&'static PublishedWeights, String> {
    let unknown = || {
        let names: Vec<String> = TORCHVISION.iter().map(PublishedWeights::name).collect();
        format!(
            "no published weights named '{spec}' (known: tv:<model> for the default, or one of {})",
            names.join(", ")
        )
    };
    let rest = spec.strip_prefix("tv:").ok_or_else(unknown)?;
    let (model, tag) = match rest.split_once('.') {
        Some((model, tag)) => (model, Some(tag.to_ascii_lowercase())),
        None => (rest, None),
    };
    TORCHVISION
        .iter()
        .find(|weights| {
            weights.model == model
                && match &tag {
                    Some(tag) => weights.tag == tag,
                    None => weights.default,
                }
        })
        .ok_or_else(unknown)
}

/// ImageNet-1K's class names in torchvision's order and words (`weights.meta["categories"]`),
/// shipped once in `model-zoo/assets/imagenet_classes.txt`.
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../assets/imagenet_classes.txt")
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn names_find_the_default_or_the_tagged_weights() {
        assert_eq!(find("tv:resnet50").unwrap().tag, "imagenet1k_v2");
        assert_eq!(
            find("tv:resnet50.IMAGENET1K_V1").unwrap().file_name(),
            "resnet50-0676ba61.pth"
        );
        let error = find("tv:resnet51").unwrap_err();
        assert!(error.contains("tv:resnet50.imagenet1k_v1"), "{error}");
        assert!(find("resnet50").is_err());
    }

    #[test]
    fn every_entry_is_a_registry_model_with_one_default_and_a_hash_in_its_file_name() {
        for weights in TORCHVISION {
            assert!(crate::info(weights.model).is_ok(), "{}", weights.model);
            assert!(
                weights
                    .url
                    .starts_with("https://download.pytorch.org/models/"),
                "{}",
                weights.url
            );
            let stem = weights.file_name().trim_end_matches(".pth");
            assert!(stem.ends_with(&format!("-{}", weights.sha256_prefix)));
            assert_eq!(weights.sha256_prefix.len(), 8);
            let defaults = TORCHVISION
                .iter()
                .filter(|w| w.model == weights.model && w.default)
                .count();
            assert_eq!(defaults, 1, "{}", weights.model);
        }
    }

    #[test]
    fn shipped_weights_match_their_manifest() {
        let manifest: serde_json::Value =
            serde_json::from_str(include_str!("../weights/manifest.json")).unwrap();
        for weights in SHIPPED {
            let entry = &manifest["files"][weights.file_name];
            let digest: String = sha2::Sha256::digest(weights.bytes)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(digest, weights.sha256, "{}", weights.file_name);
            assert_eq!(entry["sha256"], weights.sha256);
            assert_eq!(entry["bytes"], weights.bytes.len());
            assert_eq!(entry["test_top1"], weights.top1);
            assert_eq!(entry["model"], weights.model);
            assert!(crate::info(weights.model).is_ok());
        }
        assert_eq!(find_shipped("zoo:lenet5").unwrap().dataset, "mnist");
        assert_eq!(shipped_for("lenet5").unwrap().name(), "zoo:lenet5.mnist");
        assert_eq!(
            find_shipped("zoo:cifar-resnet20.cifar10")
                .unwrap()
                .classes
                .names()[3],
            "cat"
        );
        assert!(find_shipped("zoo:vgg16").is_err());
    }

    #[test]
    fn imagenet_has_a_thousand_distinct_classes() {
        let classes = imagenet_classes();
        assert_eq!(classes.len(), 1000);
        assert_eq!(
            (classes[0].as_str(), classes[999].as_str()),
            ("tench", "toilet tissue")
        );
        let distinct: std::collections::HashSet<_> = classes.iter().collect();
        assert_eq!(distinct.len(), 1000);
    }
}
