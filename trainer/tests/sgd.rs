//! The zoo's SGD against Burn's `Sgd` configured the PyTorch way (no dampening): the same
//! parameters, bit for bit, after several steps, on flex (the fused passes) and on ndarray (tensor
//! operations), with and without momentum, weight decay and Nesterov; and the same names for
//! the recorded velocity; and the flex passes write into a buffer only its tensor holds.

use burn::backend::flex::{Flex, FlexTensor};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::{MomentumConfig, MomentumState};
use burn::optim::{
    GradientsParams, ModuleOptimizer, Optimizer, RecordState, SgdConfig, SgdState, StateSink,
};
use burn::prelude::*;
use burn::tensor::Distribution;
use trainer::sgd::{MomentumSgd, SgdOps};

/// A two-layer network whose weights are large enough to be split into several rayon chunks.
#[derive(Module, Debug)]
struct Net {
    first: Linear,
    second: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Self {
            first: LinearConfig::new(300, 400).init(device),
            second: LinearConfig::new(400, 10).init(device),
        }
    }

    fn loss(&self, input: Tensor<2>) -> Tensor<1> {
        let hidden = burn::tensor::activation::relu(self.first.forward(input));
        self.second.forward(hidden).powi_scalar(2).mean()
    }
}

/// The flattened parameters of `net` after `steps` steps of `optimizer` on fixed inputs.
fn train(device: &Device, mut optimizer: ModuleOptimizer, steps: usize) -> Vec<f32> {
    let mut net = Net::new(device);
    let input = Tensor::<2>::random([16, 300], Distribution::Normal(0.0, 1.0), device);
    for _ in 0..steps {
        let grads = GradientsParams::from_grads(net.loss(input.clone()).backward(), &net);
        net = optimizer.step(0.05, net, grads);
    }
    [
        net.first.weight.val().flatten::<1>(0, 1),
        net.second.bias.unwrap().val(),
    ]
    .into_iter()
    .flat_map(|tensor| {
        tensor
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 parameters")
    })
    .collect()
}

fn burn_sgd(momentum: Option<f64>, nesterov: bool, decay: f32) -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(momentum.map(|momentum| {
            MomentumConfig::new()
                .with_momentum(momentum)
                .with_dampening(0.0)
                .with_nesterov(nesterov)
        }))
        .with_weight_decay((decay > 0.0).then(|| WeightDecayConfig::new(decay)))
        .init()
}

fn zoo_sgd(momentum: Option<f64>, nesterov: bool, decay: f32) -> ModuleOptimizer {
    ModuleOptimizer::from(MomentumSgd {
        momentum: momentum.map(|momentum| momentum as f32),
        nesterov,
        weight_decay: decay,
    })
}

#[test]
fn steps_match_burns_sgd_on_flex_and_ndarray() {
    let settings = [
        (Some(0.9), false, 5e-4),
        (Some(0.9), false, 0.0),
        (Some(0.9), true, 5e-4),
        (None, false, 5e-4),
    ];
    #[allow(deprecated)] // ndarray stays a backend users compare; it takes the tensor operations
    let devices = [Device::flex(), Device::ndarray()];
    for device in devices {
        for (momentum, nesterov, decay) in settings {
            let autodiff = device.clone().autodiff();
            autodiff.seed(7);
            let expected = train(&autodiff, burn_sgd(momentum, nesterov, decay), 4);
            autodiff.seed(7);
            let actual = train(&autodiff, zoo_sgd(momentum, nesterov, decay), 4);
            let case =
                format!("{device:?}, momentum {momentum:?}, nesterov {nesterov}, decay {decay}");
            assert_eq!(expected.len(), actual.len(), "{case}");
            let worst = expected
                .iter()
                .zip(&actual)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst == 0.0, "{case}: parameters differ by up to {worst}");
            let moved = train(&autodiff, zoo_sgd(momentum, nesterov, decay), 0);
            assert!(
                moved.iter().zip(&actual).any(|(a, b)| a != b),
                "{case}: the steps moved nothing"
            );
        }
    }
}

#[test]
fn the_velocity_is_recorded_under_burns_name() {
    let device = Device::flex();
    let velocity = Tensor::<1>::from_floats([1.0, -2.0], &device);
    let mut burn = StateSink::default();
    SgdState::new(Some(MomentumState::new(velocity.clone()))).state_flatten("p", &mut burn);
    let optimizer = MomentumSgd {
        momentum: Some(0.9),
        nesterov: false,
        weight_decay: 0.0,
    };
    let (_, state) = optimizer.step(0.1, velocity.clone(), velocity.clone(), None);
    let mut zoo = StateSink::default();
    state.expect("a state").state_flatten("p", &mut zoo);
    let names = |sink: &StateSink| {
        sink.tensors
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&zoo), names(&burn));
    assert_eq!(names(&zoo), ["p.momentum.velocity"]);
}

#[test]
fn a_buffer_nobody_else_holds_is_updated_in_place() {
    let tensor = |values: [f32; 3]| FlexTensor::from_data(TensorData::from(values));
    let direction = tensor([1.0, 1.0, 1.0]);
    let param = tensor([1.0, 2.0, 3.0]);
    let address = param.bytes().as_ptr();
    let updated = <Flex as SgdOps>::zoo_sgd_descend(param, direction.clone(), 0.5, 0.0);
    assert_eq!(updated.bytes().as_ptr(), address);
    assert_eq!(updated.as_slice::<f32>(), Some(&[0.5f32, 1.5, 2.5][..]));

    let param = tensor([1.0, 2.0, 3.0]);
    let held = param.clone();
    let updated = <Flex as SgdOps>::zoo_sgd_descend(param, direction, 0.5, 0.1);
    assert_ne!(updated.bytes().as_ptr(), held.bytes().as_ptr());
    assert_eq!(held.as_slice::<f32>(), Some(&[1.0f32, 2.0, 3.0][..]));
    assert_eq!(updated.as_slice::<f32>(), Some(&[0.45f32, 1.4, 2.35][..]));
}
