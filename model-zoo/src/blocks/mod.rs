//! Building blocks shared by the model families: convolution units, mixed precision's rule
//! (layers compute in their input's float type) and (with the `kernels`
//! feature) how convolutions, batch normalisation, pooling, fully connected layers and tanh are
//! computed, the Sequential-style layer lists that AlexNet and VGG share with torchvision, VGG's
//! enlarging average pool folded into the layer after it, residual blocks, Inception modules and
//! Network-in-Network's mlpconv.

#[cfg(feature = "kernels")]
pub mod batch_norm;
pub mod conv;
pub mod inception;
#[cfg(feature = "kernels")]
mod kernel_support;
#[cfg(feature = "kernels")]
pub mod linear;
// The extension names burn's ndarray backend, deprecated upstream but still one the trainer
// offers.
#[allow(deprecated)]
#[cfg(feature = "kernels")]
pub mod lowering;
pub mod mlpconv;
#[cfg(feature = "kernels")]
pub mod pool;
pub mod pooled_linear;
pub mod precision;
pub mod residual;
pub mod sequential;
#[cfg(feature = "kernels")]
pub mod tanh;

pub use conv::{ConvUnit, ConvUnitConfig, he_normal_conv};
pub use inception::{
    Inception, InceptionAux, InceptionAuxConfig, InceptionConfig, NaiveInception,
    NaiveInceptionConfig,
};
#[cfg(feature = "kernels")]
pub use lowering::{ConvLowering, conv_lowering, conv2d_as_gemm, set_conv_lowering};
pub use mlpconv::{MlpConv, MlpConvConfig};
pub use residual::{
    BasicBlock, Bottleneck, Projection, ResidualBlock, ResidualBlockConfig, Shortcut, ShortcutKind,
    ZeroPadShortcut,
};
pub use sequential::{ClassifierLayer, FeatureLayer};
