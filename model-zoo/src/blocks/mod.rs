//! Building blocks shared by the model families: convolution units, the Sequential-style layer
//! lists that AlexNet and VGG share with torchvision, residual blocks, Inception modules and
//! Network-in-Network's mlpconv.

pub mod conv;
pub mod inception;
pub mod mlpconv;
pub mod residual;
pub mod sequential;

pub use conv::{ConvUnit, ConvUnitConfig, he_normal_conv};
pub use inception::{
    Inception, InceptionAux, InceptionAuxConfig, InceptionConfig, NaiveInception,
    NaiveInceptionConfig,
};
pub use mlpconv::{MlpConv, MlpConvConfig};
pub use residual::{
    BasicBlock, Bottleneck, Projection, ResidualBlock, ResidualBlockConfig, Shortcut, ShortcutKind,
    ZeroPadShortcut,
};
pub use sequential::{ClassifierLayer, FeatureLayer};
