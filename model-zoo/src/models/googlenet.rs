//! GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions", Table 1): nine Inception
//! modules, global average pooling and two auxiliary classifiers used only in training.
//!
//! - [`GoogLeNetVariant::Torchvision`]: torchvision's `googlenet` — batch norm (ε = 1e-3) after
//!   every convolution, ceil-mode pools, a 3×3 kernel in the "5×5" branch, a 2×2 fourth pool,
//!   dropout 0.2: 6,624,904 parameters without the auxiliary heads, 13,004,888 with them.
//! - [`GoogLeNetVariant::Paper`]: the 2014 network — true 5×5 convolutions, Local Response
//!   Normalization after the stem's first pool and third convolution, no batch norm, dropout 0.4.

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, LocalResponseNormConfig,
};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blocks::{
    ConvUnit, ConvUnitConfig, Inception, InceptionAux, InceptionAuxConfig, InceptionConfig,
};
use crate::models::{Classifier, FamilyEntry, IMAGENET_INPUT, ModelArgs, TrainOutput};
use crate::trace::{self, Layer};

/// Which GoogLeNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoogLeNetVariant {
    /// torchvision's `googlenet`.
    Torchvision,
    /// Szegedy et al. 2014.
    Paper,
}

/// Table 1: input channels, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
const INCEPTION_3A: [usize; 7] = [192, 64, 96, 128, 16, 32, 32];
const INCEPTION_3B: [usize; 7] = [256, 128, 128, 192, 32, 96, 64];
const INCEPTION_4A: [usize; 7] = [480, 192, 96, 208, 16, 48, 64];
const INCEPTION_4B: [usize; 7] = [512, 160, 112, 224, 24, 64, 64];
const INCEPTION_4C: [usize; 7] = [512, 128, 128, 256, 24, 64, 64];
const INCEPTION_4D: [usize; 7] = [512, 112, 144, 288, 32, 64, 64];
const INCEPTION_4E: [usize; 7] = [528, 256, 160, 320, 32, 128, 128];
const INCEPTION_5A: [usize; 7] = [832, 256, 160, 320, 32, 128, 128];
const INCEPTION_5B: [usize; 7] = [832, 384, 192, 384, 48, 128, 128];

/// Configuration of [`GoogLeNet`].
#[derive(Config, Debug)]
pub struct GoogLeNetConfig {
    /// Number of classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Which GoogLeNet.
    #[config(default = "GoogLeNetVariant::Torchvision")]
    pub variant: GoogLeNetVariant,
    /// Build the two auxiliary classifiers (after 4a and 4d).
    #[config(default = false)]
    pub aux_logits: bool,
    /// Turn inputs normalised with ImageNet's mean and std into (x − 0.5) / 0.5 first, as
    /// torchvision's GoogLeNet does with its pretrained weights (`transform_input=True`): those
    /// weights were trained on that scaling.
    #[config(default = false)]
    pub transform_input: bool,
}

impl GoogLeNetConfig {
    /// Builds the network.
    pub fn init(&self, device: &Device) -> GoogLeNet {
        let torchvision = self.variant == GoogLeNetVariant::Torchvision;
        let unit = |channels: [usize; 2], kernel: usize, stride: usize| {
            ConvUnitConfig::new(channels, kernel)
                .with_stride(stride)
                .with_padding(kernel / 2)
                .with_batch_norm(torchvision)
                .with_bn_epsilon(1e-3)
                .init(device)
        };
        let inception = |[c, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj]: [usize; 7]| {
            InceptionConfig::new(c, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
                .with_kernel_5x5(if torchvision { 3 } else { 5 })
                .with_batch_norm(torchvision)
                .init(device)
        };
        let pool = |kernel: usize| {
            MaxPool2dConfig::new([kernel, kernel])
                .with_strides([2, 2])
                .with_ceil_mode(true)
                .init()
        };
        // Caffe's LRN (local_size 5, α = 1e-4, β = 0.75) divides α by the size, as Burn does.
        let lrn = || (!torchvision).then(|| LocalResponseNormConfig::new(5).init());
        let aux = |in_channels: usize| {
            self.aux_logits.then(|| {
                InceptionAuxConfig::new(in_channels, self.num_classes)
                    .with_batch_norm(torchvision)
                    .init(device)
            })
        };
        GoogLeNet {
            conv1: unit([self.in_channels, 64], 7, 2),
            maxpool1: pool(3),
            lrn1: lrn(),
            conv2: unit([64, 64], 1, 1),
            conv3: unit([64, 192], 3, 1),
            lrn2: lrn(),
            maxpool2: pool(3),
            inception3a: inception(INCEPTION_3A),
            inception3b: inception(INCEPTION_3B),
            maxpool3: pool(3),
            inception4a: inception(INCEPTION_4A),
            inception4b: inception(INCEPTION_4B),
            inception4c: inception(INCEPTION_4C),
            inception4d: inception(INCEPTION_4D),
            inception4e: inception(INCEPTION_4E),
            maxpool4: pool(if torchvision { 2 } else { 3 }),
            inception5a: inception(INCEPTION_5A),
            inception5b: inception(INCEPTION_5B),
            aux1: aux(INCEPTION_4B[0]),
            aux2: aux(INCEPTION_4E[0]),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(if torchvision { 0.2 } else { 0.4 }).init(),
            fc: LinearConfig::new(1024, self.num_classes).init(device),
            transform_input: self.transform_input,
        }
    }
}

/// ImageNet's per-channel mean and standard deviation, which torchvision's
/// `GoogLeNet._transform_input` undoes.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// torchvision's `_transform_input`: per channel, x · (std / 0.5) + (mean − 0.5) / 0.5, so an
/// input normalised with ImageNet's statistics becomes (raw − 0.5) / 0.5.
pub fn transform_input(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let dtype = x.dtype();
    let per_channel = |values: [f32; 3]| {
        Tensor::<1>::from_floats(values, &device)
            .cast(dtype)
            .reshape([1, 3, 1, 1])
    };
    let scale = per_channel(IMAGENET_STD.map(|std| std / 0.5));
    let shift = per_channel([0, 1, 2].map(|c| (IMAGENET_MEAN[c] - 0.5) / 0.5));
    x * scale + shift
}

/// GoogLeNet with torchvision's field names.
#[derive(Module, Debug)]
pub struct GoogLeNet {
    /// 7×7/2, 64.
    pub conv1: ConvUnit,
    /// 3×3/2 max pool.
    pub maxpool1: MaxPool2d,
    /// LRN (paper only).
    pub lrn1: Option<LocalResponseNorm>,
    /// 1×1, 64.
    pub conv2: ConvUnit,
    /// 3×3, 192.
    pub conv3: ConvUnit,
    /// LRN (paper only).
    pub lrn2: Option<LocalResponseNorm>,
    /// 3×3/2 max pool.
    pub maxpool2: MaxPool2d,
    /// Inception (3a).
    pub inception3a: Inception,
    /// Inception (3b).
    pub inception3b: Inception,
    /// 3×3/2 max pool.
    pub maxpool3: MaxPool2d,
    /// Inception (4a).
    pub inception4a: Inception,
    /// Inception (4b).
    pub inception4b: Inception,
    /// Inception (4c).
    pub inception4c: Inception,
    /// Inception (4d).
    pub inception4d: Inception,
    /// Inception (4e).
    pub inception4e: Inception,
    /// 2×2/2 (torchvision) or 3×3/2 (paper) max pool.
    pub maxpool4: MaxPool2d,
    /// Inception (5a).
    pub inception5a: Inception,
    /// Inception (5b).
    pub inception5b: Inception,
    /// Auxiliary classifier on 4a's output.
    pub aux1: Option<InceptionAux>,
    /// Auxiliary classifier on 4d's output.
    pub aux2: Option<InceptionAux>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before the FC.
    pub dropout: Dropout,
    /// FC 1024 → classes.
    pub fc: Linear,
    /// Re-normalise inputs first (torchvision's pretrained weights expect it).
    pub transform_input: bool,
}

fn optional(layer: &Option<LocalResponseNorm>, x: Tensor<4>) -> Tensor<4> {
    match layer {
        Some(layer) => layer.run(x),
        None => x,
    }
}

impl GoogLeNet {
    /// The trunk up to inception 5b; with `with_aux`, also the auxiliary logits.
    /// The layers before the head, with the auxiliary heads' logits when `with_aux`, showing
    /// `seen` the map after each stage.
    fn trunk(
        &self,
        x: Tensor<4>,
        with_aux: bool,
        seen: &mut dyn FnMut(&Tensor<4>),
    ) -> (Tensor<4>, Vec<Tensor<2>>) {
        let mut step = |x: Tensor<4>| {
            seen(&x);
            x
        };
        let mut aux_logits = Vec::new();
        let mut aux = |head: &Option<InceptionAux>, x: &Tensor<4>| {
            if let (true, Some(head)) = (with_aux, head) {
                aux_logits.push(head.forward(x.clone()));
            }
        };
        let x = if self.transform_input {
            transform_input(x)
        } else {
            x
        };
        let x = step(self.conv1.forward(x));
        let x = step(optional(&self.lrn1, self.maxpool1.run(x)));
        let x = step(self.conv3.forward(self.conv2.forward(x)));
        let x = step(self.maxpool2.run(optional(&self.lrn2, x)));
        let x = step(self.inception3b.forward(self.inception3a.forward(x)));
        let x = step(self.inception4a.forward(self.maxpool3.run(x)));
        aux(&self.aux1, &x);
        let x = self
            .inception4d
            .forward(self.inception4c.forward(self.inception4b.forward(x)));
        aux(&self.aux2, &x);
        let x = step(self.inception4e.forward(x));
        let x = self.maxpool4.run(x);
        let x = self.inception5b.forward(self.inception5a.forward(x));
        (x, aux_logits)
    }
}

impl Classifier for GoogLeNet {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        self.trunk(x, false, seen).0
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = trace::flatten(self.avgpool.run(features));
        self.fc.run(self.dropout.run(x))
    }

    fn forward_train(&self, x: Tensor<4>) -> TrainOutput {
        let (features, aux_logits) = self.trunk(x, true, &mut |_| {});
        TrainOutput {
            logits: self.forward_head(features),
            aux_logits,
        }
    }

    fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc = LinearConfig::new(1024, num_classes).init(device);
        self.aux1 = self
            .aux1
            .map(|head| head.with_num_classes(num_classes, device));
        self.aux2 = self
            .aux2
            .map(|head| head.with_num_classes(num_classes, device));
        self
    }
}

/// The zoo's GoogLeNets: torchvision's (batch norm, 3 × 3 in the "5 × 5" branch) and the
/// paper's.
pub(crate) const ENTRIES: &[FamilyEntry<GoogLeNet>] = &[
    entry("googlenet", |args, device| {
        build(GoogLeNetVariant::Torchvision, args, device)
    }),
    entry("googlenet-paper", |args, device| {
        build(GoogLeNetVariant::Paper, args, device)
    }),
];

const fn entry(
    name: &'static str,
    build: fn(&ModelArgs, &Device) -> GoogLeNet,
) -> FamilyEntry<GoogLeNet> {
    FamilyEntry {
        name,
        paper: "Szegedy et al. 2014",
        input: IMAGENET_INPUT,
        num_classes: 1000,
        build,
    }
}

fn build(variant: GoogLeNetVariant, args: &ModelArgs, device: &Device) -> GoogLeNet {
    GoogLeNetConfig::new()
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .with_variant(variant)
        .with_aux_logits(args.aux_logits)
        .with_transform_input(args.transform_input)
        .init(device)
}
