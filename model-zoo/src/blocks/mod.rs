//! Building blocks shared by the model families: convolution units, mixed precision's rule
//! (layers compute in their input's float type) and (with the `kernels`
//! feature) how convolutions, batch normalisation, pooling, fully connected layers and tanh are
//! computed, the Sequential-style layer lists that AlexNet and VGG share with torchvision, VGG's
//! enlarging average pool folded into the layer after it, residual blocks, Inception modules and
//! Network-in-Network's mlpconv.

pub mod conv;
pub mod inception;
pub mod mlpconv;
pub mod pooled_linear;
pub mod precision;
pub mod residual;
pub mod sequential;

// The one hook to the CPU kernels (the `zoo-kernels` crate): every layer that has one reaches it
// by these paths.
#[cfg(feature = "kernels")]
pub use zoo_kernels::{batch_norm, linear, lowering, pool, tanh};

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
#[cfg(feature = "kernels")]
pub use zoo_kernels::{ConvLowering, conv_lowering, conv2d_as_gemm, set_conv_lowering};
