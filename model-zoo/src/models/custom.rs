//! Networks of one's own from the zoo's blocks: convolution units (the chapter's 1×1 bottleneck
//! among them), Inception modules, Network in Network's mlpconv and max pools in any order,
//! ending in global average pooling and a linear head. Registered by name
//! ([`crate::registry::register`], as timm's `@register_model`), such a network is created,
//! trained, checkpointed, resumed and evaluated like any zoo model.

use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::blocks::{ConvUnit, ConvUnitConfig, Inception, InceptionConfig, MlpConv, MlpConvConfig};
use crate::models::{Classifier, FamilyEntry};
use crate::trace::{self, Layer};

/// One block of a [`BlockNet`], by its configuration.
#[derive(Debug, Clone)]
pub enum BlockConfig {
    /// A convolution unit (convolution, optional batch norm, ReLU);
    /// `ConvUnitConfig::pointwise(64, 16)` is a 1×1 bottleneck.
    Conv(ConvUnitConfig),
    /// An Inception module with 1×1 bottlenecks (Szegedy et al. 2014, figure 2b).
    Inception(InceptionConfig),
    /// Network in Network's mlpconv (Lin et al. 2014).
    MlpConv(MlpConvConfig),
    /// A max pool: `[kernel, stride]`.
    MaxPool([usize; 2]),
}

impl BlockConfig {
    /// The channels the block gives out; `None` for a pool, which keeps its input's.
    fn out_channels(&self) -> Option<usize> {
        match self {
            BlockConfig::Conv(config) => Some(config.channels[1]),
            BlockConfig::Inception(config) => Some(config.out_channels()),
            BlockConfig::MlpConv(config) => Some(config.channels[2]),
            BlockConfig::MaxPool(_) => None,
        }
    }

    fn init(&self, device: &Device) -> Block {
        match self {
            BlockConfig::Conv(config) => Block::Conv(config.init(device)),
            BlockConfig::Inception(config) => Block::Inception(config.init(device)),
            BlockConfig::MlpConv(config) => Block::MlpConv(config.init(device)),
            BlockConfig::MaxPool([kernel, stride]) => Block::MaxPool(
                MaxPool2dConfig::new([*kernel; 2])
                    .with_strides([*stride; 2])
                    .init(),
            ),
        }
    }
}

/// One block of a [`BlockNet`].
// Burn derives `Module` for enums of modules but not for boxes; a network holds a handful of
// blocks, built once, so the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// A convolution unit.
    Conv(ConvUnit),
    /// An Inception module.
    Inception(Inception),
    /// An mlpconv.
    MlpConv(MlpConv),
    /// A max pool.
    MaxPool(MaxPool2d),
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::Conv(unit) => unit.forward(x),
            Block::Inception(module) => module.forward(x),
            Block::MlpConv(block) => block.forward(x),
            Block::MaxPool(pool) => pool.run(x),
        }
    }
}

/// Configuration of a [`BlockNet`]: its blocks in order, and its classes.
#[derive(Debug, Clone)]
pub struct BlockNetConfig {
    /// The blocks, input first; each one's input channels must be the previous one's output.
    pub blocks: Vec<BlockConfig>,
    /// Number of classes.
    pub num_classes: usize,
}

impl BlockNetConfig {
    /// `blocks` ending in a head for `num_classes`.
    pub fn new(blocks: Vec<BlockConfig>, num_classes: usize) -> Self {
        Self {
            blocks,
            num_classes,
        }
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If no block gives out channels (a network of pools alone has nothing to learn).
    pub fn init(&self, device: &Device) -> BlockNet {
        let features = self
            .blocks
            .iter()
            .rev()
            .find_map(BlockConfig::out_channels)
            .expect("a BlockNet needs a convolution, an Inception module or an mlpconv");
        BlockNet {
            blocks: self.blocks.iter().map(|block| block.init(device)).collect(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(features, self.num_classes).init(device),
        }
    }
}

/// A network of the zoo's blocks, global average pooling and a linear head.
#[derive(Module, Debug)]
pub struct BlockNet {
    /// The blocks, input first.
    pub blocks: Vec<Block>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// FC to the classes.
    pub fc: Linear,
}

impl Classifier for BlockNet {
    fn forward_stages(&self, x: Tensor<4>, seen: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, block| {
            let x = block.forward(x);
            seen(&x);
            x
        })
    }

    fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
        self.fc.run(trace::flatten(self.avgpool.run(features)))
    }

    fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc = LinearConfig::new(self.fc.weight.dims()[0], num_classes).init(device);
        self
    }
}

/// None built in: networks of one's own join the registry at run time
/// ([`crate::registry::register`]).
pub(crate) const ENTRIES: &[FamilyEntry<BlockNet>] = &[];
