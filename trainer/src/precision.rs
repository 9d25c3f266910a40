//! Mixed precision training as PyTorch users run it (`torch.autocast` with `GradScaler`): the
//! forward and backward passes in bf16 or fp16, the weights, their gradients and the optimiser
//! state in `f32` (master weights, Micikevicius et al. 2018), batch-norm statistics and the loss
//! in `f32`, and for fp16 a dynamic loss scale that keeps small gradients from flushing to zero.
//!
//! Burn has float types but no autocast: the zoo's layers compute in their input's type and
//! cast their `f32` parameters to it per call (`model_zoo::blocks::precision`), so casting the
//! images ([`Precision::autocast`]) is all it takes to run a model in half precision, and
//! casting the logits back ([`Precision::logits`]) keeps the loss in `f32`. Checkpoints hold the
//! `f32` weights, whatever the precision.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

/// The float type a run computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in `f32`: PyTorch's default (which CUDA runs as TF32 on tensor cores).
    #[default]
    Fp32,
    /// bfloat16 compute: `f32`'s range, so no loss scaling (PyTorch's `autocast(dtype=bfloat16)`).
    Bf16,
    /// IEEE half compute with dynamic loss scaling ([`LossScale`]).
    Fp16,
}

impl Precision {
    /// Every precision, as the command line names them.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Bf16, Precision::Fp16];

    /// `fp32`, `bf16` or `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// The type the forward and backward passes compute in.
    pub fn compute_dtype(self) -> DType {
        match self {
            Precision::Fp32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::Fp16 => DType::F16,
        }
    }

    /// `images` in the compute type; every layer after them follows their type.
    pub fn autocast<const D: usize>(self, images: Tensor<D>) -> Tensor<D> {
        images.cast(self.compute_dtype())
    }

    /// `logits` in `f32`, for the loss and the metrics.
    pub fn logits(self, logits: Tensor<2>) -> Tensor<2> {
        logits.cast(DType::F32)
    }

    /// The dynamic loss scale this precision trains with, starting at `initial`: fp16 only.
    pub fn loss_scale(self, initial: f32) -> Option<LossScale> {
        (self == Precision::Fp16).then(|| LossScale::new(initial))
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|precision| precision.name() == name)
            .ok_or_else(|| format!("unknown precision '{name}' (expected fp32, bf16 or fp16)"))
    }
}

/// Dynamic loss scaling with PyTorch's `GradScaler` defaults: the loss is multiplied by the scale
/// before the backward pass and the gradients divided by it after. A step whose gradients are
/// not finite is skipped and halves the scale; 2,000 finite steps in a row double it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// The factor the loss is multiplied by.
    pub scale: f32,
    /// Finite steps since the scale last changed.
    pub good_steps: usize,
    /// Steps skipped so far for gradients that were not finite.
    pub skipped: usize,
}

impl LossScale {
    /// `GradScaler`'s `init_scale`, 2^16.
    pub const DEFAULT_INITIAL: f32 = 65_536.0;
    /// `GradScaler`'s `growth_interval`.
    pub const GROWTH_INTERVAL: usize = 2000;

    /// A scale starting at `initial`.
    pub fn new(initial: f32) -> Self {
        Self {
            scale: initial,
            good_steps: 0,
            skipped: 0,
        }
    }

    /// Moves the scale after a step whose unscaled gradients were `finite` (taken) or not
    /// (skipped).
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps == Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale *= 0.5;
            self.good_steps = 0;
            self.skipped += 1;
        }
    }
}

/// The gradients of `loss` for `model`'s parameters. With a loss scale (fp16), the backward pass
/// runs on the scaled loss and the gradients are unscaled; `None` means they were not finite:
/// the step is to be skipped, and the scale has been halved.
pub fn gradients<M: Module>(
    loss: Tensor<1>,
    model: &M,
    loss_scale: Option<&mut LossScale>,
) -> Option<GradientsParams> {
    let Some(loss_scale) = loss_scale else {
        return Some(GradientsParams::from_grads(loss.backward(), model));
    };
    let mut grads =
        GradientsParams::from_grads(loss.mul_scalar(loss_scale.scale).backward(), model);
    let mut unscale = Unscale {
        grads: &mut grads,
        factor: 1.0 / loss_scale.scale,
        magnitudes: Vec::new(),
    };
    model.visit(&mut unscale);
    let magnitudes = unscale.magnitudes;
    // One read for the whole model: a sum of absolute values is finite exactly when each is.
    let finite = magnitudes.is_empty()
        || Tensor::cat(magnitudes, 0)
            .sum()
            .into_scalar::<f32>()
            .is_finite();
    loss_scale.update(finite);
    finite.then_some(grads)
}

/// Divides every parameter's gradient by the loss scale, keeping each one's sum of absolute
/// values for the finiteness check.
struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
    magnitudes: Vec<Tensor<1>>,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let grad = grad.mul_scalar(self.factor);
            self.magnitudes
                .push(grad.clone().abs().sum().cast(DType::F32));
            self.grads.register(param.id, grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for precision in Precision::ALL {
            assert_eq!(precision.name().parse::<Precision>(), Ok(precision));
        }
        let error = "tf32".parse::<Precision>().unwrap_err();
        assert!(error.contains("'tf32'"), "{error}");
    }

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_the_growth_interval() {
        let mut scale = LossScale::new(LossScale::DEFAULT_INITIAL);
        scale.update(false);
        assert_eq!((scale.scale, scale.skipped), (32_768.0, 1));
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            scale.update(true);
        }
        assert_eq!(scale.scale, 32_768.0);
        scale.update(true);
        assert_eq!((scale.scale, scale.good_steps), (65_536.0, 0));
        scale.update(true);
        scale.update(false);
        assert_eq!(
            (scale.scale, scale.good_steps, scale.skipped),
            (32_768.0, 0, 2)
        );
    }

    #[test]
    fn only_fp16_scales_its_loss() {
        assert_eq!(Precision::Fp32.loss_scale(8.0), None);
        assert_eq!(Precision::Bf16.loss_scale(8.0), None);
        assert_eq!(Precision::Fp16.loss_scale(8.0), Some(LossScale::new(8.0)));
    }
}
