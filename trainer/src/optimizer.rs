//! The run's optimiser: parameter groups for weight decay and for a pretrained backbone's rate.

use burn::module::{ParamGroup, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, DynOptimizer, DynState, LearningRate, ModuleOptimizer, Optimizer,
    StateSink, StateSource,
};
use burn::prelude::*;
use burn::tensor::kind::BridgeTensor;
use model_zoo::ZooModel;

use crate::config::{OptimizerKind, TrainConfig};
use crate::sgd::MomentumSgd;

/// Parameters spared from weight decay unless asked: biases and BatchNorm's γ and β, as timm and
/// torchvision's reference scripts do (decaying a normalisation's scale fights the normalisation).
const UNDECAYED_PARAMS: &str = r"(^|\.)(bias|gamma|beta)$";

/// An optimiser whose learning rate is a fixed multiple of the run's: `--backbone-lr-mult`
/// trains a pretrained backbone more gently than its new head.
struct ScaledLr<O> {
    inner: O,
    factor: f64,
}

impl<O: DynOptimizer> DynOptimizer for ScaledLr<O> {
    fn step_dyn(
        &self,
        rank: usize,
        lr: LearningRate,
        tensor: BridgeTensor,
        grad: BridgeTensor,
        state: Option<DynState>,
    ) -> (BridgeTensor, Option<DynState>) {
        self.inner
            .step_dyn(rank, lr * self.factor, tensor, grad, state)
    }

    fn to_device_dyn(&self, state: DynState, device: &Device) -> DynState {
        self.inner.to_device_dyn(state, device)
    }

    fn state_flatten(&self, prefix: &str, state: &DynState, out: &mut StateSink) {
        self.inner.state_flatten(prefix, state, out);
    }

    fn state_unflatten(
        &self,
        rank: usize,
        prefix: &str,
        src: &mut StateSource,
        device: &Device,
    ) -> Option<DynState> {
        self.inner.state_unflatten(rank, prefix, src, device)
    }
}

/// Where `--backbone-lr-mult` applies: (factor, backbone weights, backbone biases and norms).
type Backbone = (f64, Vec<ParamId>, Vec<ParamId>);

/// `decayed` for every parameter; `undecayed` for biases and BatchNorm's γ and β when `spared`;
/// both at a multiple of the rate on the backbone's parameters.
fn grouped<O: Optimizer + 'static>(
    decayed: impl Fn() -> O,
    undecayed: impl Fn() -> O,
    spared: bool,
    backbone: Option<Backbone>,
) -> ModuleOptimizer {
    let mut optim = ModuleOptimizer::from(decayed());
    if spared {
        let group = ParamGroup::from_regex(UNDECAYED_PARAMS).expect("a valid pattern");
        optim = optim.with_group(group, undecayed(), None);
    }
    if let Some((factor, weights, others)) = backbone {
        let scaled = ScaledLr {
            inner: decayed(),
            factor,
        };
        optim = optim.with_group(ParamGroup::from_ids(weights), scaled, None);
        if spared {
            let scaled = ScaledLr {
                inner: undecayed(),
                factor,
            };
            optim = optim.with_group(ParamGroup::from_ids(others), scaled, None);
        }
    }
    optim
}

/// The run's optimiser for `model`.
pub(crate) fn optimizer(
    config: &TrainConfig,
    model: &ZooModel,
    device: &Device,
) -> ModuleOptimizer {
    let decay = (config.weight_decay > 0.0).then_some(config.weight_decay);
    let spared = decay.is_some() && !config.decay_norm_and_bias;
    let backbone = (config.backbone_lr_mult != 1.0).then(|| {
        let undecayed = ParamGroup::from_regex(UNDECAYED_PARAMS).expect("a valid pattern");
        let (mut weights, mut others) = (Vec::new(), Vec::new());
        for (id, path) in crate::transfer::backbone_parameters(model, device) {
            if spared && undecayed.matches(&id, Some(&path)) {
                others.push(id);
            } else {
                weights.push(id);
            }
        }
        (config.backbone_lr_mult, weights, others)
    });
    let sgd = |decay: Option<f64>| MomentumSgd {
        momentum: (config.momentum > 0.0).then_some(config.momentum as f32),
        nesterov: config.nesterov,
        weight_decay: decay.unwrap_or(0.0) as f32,
    };
    let adam = |decay: Option<f64>| {
        AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay.map(|d| WeightDecayConfig::new(d as f32)))
            .build()
    };
    let adamw = |decay: Option<f64>| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay.unwrap_or(0.0) as f32)
            .build()
    };
    match config.optimizer {
        OptimizerKind::Sgd => grouped(|| sgd(decay), || sgd(None), spared, backbone),
        OptimizerKind::Adam => grouped(|| adam(decay), || adam(None), spared, backbone),
        OptimizerKind::AdamW => grouped(|| adamw(decay), || adamw(None), spared, backbone),
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use model_zoo::{Classifier, ModelOptions};

    use super::*;

    #[derive(Default)]
    struct Weights(Vec<(usize, Vec<f32>)>);

    impl ModuleVisitor for Weights {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push((D, param.val().into_data().try_to_vec::<f32>().unwrap()));
        }
    }

    /// LeNet-5's parameters after one SGD step of learning rate 1 on a zero gradient with weight
    /// decay 0.5: every decayed value is exactly halved, every spared one unchanged.
    fn after_decay_step(decay_norm_and_bias: bool) -> (Weights, Weights) {
        let device = Device::flex().autodiff();
        let model = model_zoo::create("lenet5", &ModelOptions::new(), &device).unwrap();
        let mut before = Weights::default();
        model.visit(&mut before);
        let config = TrainConfig {
            momentum: 0.0,
            weight_decay: 0.5,
            decay_norm_and_bias,
            ..TrainConfig::new("lenet5")
        };
        let logits = model.forward(Tensor::ones([2, 1, 32, 32], &device));
        let zero_loss = logits.mul_scalar(0.0).sum();
        let grads = GradientsParams::from_grads(zero_loss.backward(), &model);
        let model = optimizer(&config, &model, &device).step(1.0, model, grads);
        let mut after = Weights::default();
        model.visit(&mut after);
        (before, after)
    }

    #[test]
    fn weight_decay_spares_biases_unless_asked() {
        for decay_norm_and_bias in [false, true] {
            let (before, after) = after_decay_step(decay_norm_and_bias);
            assert_eq!(before.0.len(), 10);
            for ((rank, old), (_, new)) in before.0.iter().zip(&after.0) {
                let halved: Vec<f32> = old.iter().map(|v| v * 0.5).collect();
                if *rank == 1 && !decay_norm_and_bias {
                    assert_eq!(new, old, "a bias was decayed");
                } else {
                    assert_eq!(new, &halved, "a rank-{rank} parameter was not decayed");
                }
            }
        }
    }
}
