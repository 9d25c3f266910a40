//! LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document
//! recognition") in the chapter's form: 32×32×1 → conv 6@5×5 → avg-pool 2/2 → conv 16@5×5 →
//! avg-pool 2/2 → FC 120 → FC 84 → 10 outputs, with tanh. The 1998 network's sparse C3
//! connections and RBF output are simplified to full connections and a linear layer, as the
//! chapter does; that gives 61,706 parameters and 416,520 MACs.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
#[cfg(not(feature = "kernels"))]
use burn::tensor::activation::tanh;

use crate::blocks::he_normal_conv;
#[cfg(feature = "kernels")]
use crate::blocks::tanh::tanh;
use crate::models::{Classifier, FamilyEntry, ModelArgs};
use crate::trace::{self, Layer};

/// Configuration of [`LeNet5`].
#[derive(Config, Debug)]
pub struct LeNet5Config {
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input channels (1 for MNIST).
    #[config(default = 1)]
    pub in_channels: usize,
    /// Side of the square input; the chapter pads MNIST's 28×28 to 32×32.
    #[config(default = 32)]
    pub input_size: usize,
    /// ReLU and max pooling instead of 1998's tanh and average pooling.
    #[config(default = false)]
    pub modern: bool,
}

impl LeNet5Config {
    /// Side of the feature maps after the second pooling (5 for a 32×32 input).
    fn feature_side(&self) -> usize {
        assert!(
            self.input_size >= 16,
            "LeNet-5 needs an input of at least 16×16, got {}",
            self.input_size
        );
        ((self.input_size - 4) / 2 - 4) / 2
    }

    /// Builds the network.
    pub fn init(&self, device: &Device) -> LeNet5 {
        let side = self.feature_side();
        let subsampling = if self.modern {
            Subsampling::Max(MaxPool2dConfig::new([2, 2]).init())
        } else {
            Subsampling::Average(AvgPool2dConfig::new([2, 2]).init())
        };
        LeNet5 {
            conv1: he_normal_conv([self.in_channels, 6], 5, 1, 0, true).init(device),
            conv2: he_normal_conv([6, 16], 5, 1, 0, true).init(device),
            pool: subsampling,
            fc1: LinearConfig::new(16 * side * side, 120).init(device),
            fc2: LinearConfig::new(120, 84).init(device),
            fc3: LinearConfig::new(84, self.num_classes).init(device),
            modern: self.modern,
        }
    }
}

/// LeNet-5's subsampling layers: average pooling in 1998, max pooling in the modern variant.
#[derive(Module, Debug)]
pub enum Subsampling {
    /// 2×2 average pooling.
    Average(AvgPool2d),
    /// 2×2 max pooling.
    Max(MaxPool2d),
}

impl Subsampling {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Average(pool) => pool.run(x),
            Self::Max(pool) => pool.run(x),
        }
    }
}

/// LeNet-5.
#[derive(Module, Debug)]
pub struct LeNet5 {
    /// C1: 6 filters 5×5.
    pub conv1: Conv2d,
    /// C3: 16 filters 5×5.
    pub conv2: Conv2d,
    /// S2 and S4.
    pub pool: Subsampling,
    /// C5 / F5: 400 → 120.
    pub fc1: Linear,
    /// F6: 120 → 84.
    pub fc2: Linear,
    /// Output: 84 → classes.
    pub fc3: Linear,
    /// ReLU (true) or tanh (false).
    pub modern: bool,
}

impl LeNet5 {
    fn activation<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.modern { relu(x) } else { tanh(x) }
    }
}

impl Classifier for LeNet5 {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let x = self.activation(self.conv1.run(x));
        seen(&x);
        let x = self.pool.forward(x);
        seen(&x);
        let x = self.activation(self.conv2.run(x));
        seen(&x);
        self.pool.forward(x)
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        let x = self.activation(self.fc1.run(trace::flatten(features)));
        let x = self.activation(self.fc2.run(x));
        self.fc3.run(x)
    }

    fn num_classes(&self) -> usize {
        self.fc3.weight.dims()[1]
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc3 = LinearConfig::new(84, num_classes).init(device);
        self
    }
}

/// The zoo's LeNet-5 entries: the 1998 network (tanh, average pooling) and its modern twin
/// (ReLU, max pooling).
pub(crate) const ENTRIES: &[FamilyEntry<LeNet5>] = &[
    entry("lenet5", build::<false>),
    entry("lenet5-modern", build::<true>),
];

const fn entry(
    name: &'static str,
    build: fn(&ModelArgs, &Device) -> LeNet5,
) -> FamilyEntry<LeNet5> {
    FamilyEntry {
        name,
        paper: "LeCun et al. 1998",
        input: [1, 32, 32],
        num_classes: 10,
        build,
    }
}

fn build<const MODERN: bool>(args: &ModelArgs, device: &Device) -> LeNet5 {
    LeNet5Config::new()
        .with_num_classes(args.num_classes)
        .with_in_channels(args.in_channels)
        .with_input_size(args.input_size)
        .with_modern(MODERN)
        .init(device)
}
