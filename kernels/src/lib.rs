//! # zoo-kernels
//!
//! How the zoo's layers compute, as Burn backend extensions: each function takes Burn's own
//! modules and tensors, runs the zoo's kernel on flex in `f32` (forward and backward, through
//! autodiff) and Burn's operation on every other backend and float type. model-zoo reaches them
//! through one hook, `model_zoo::blocks`'s re-export with its `kernels` feature; the tests check
//! every kernel against Burn's operation, outputs and gradients. Why each exists and what it
//! gained is in `docs/kernels.md`.

pub mod batch_norm;
pub mod linear;
// The extension names burn's ndarray backend, deprecated upstream but still one the trainer
// offers.
#[allow(deprecated)]
pub mod lowering;
pub mod pool;
mod support;
pub mod tanh;

pub use lowering::{ConvLowering, conv_lowering, conv2d_as_gemm, set_conv_lowering};
