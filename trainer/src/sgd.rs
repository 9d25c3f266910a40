//! SGD with momentum and weight decay (PyTorch's `torch.optim.SGD`, no dampening), with each
//! parameter's update on flex in `f32` as two passes over contiguous buffers, written in place
//! where the tensor is not shared.
//!
//! Why: Burn 0.22.1's `Sgd` composes the step from tensor operations (scale the gradient, scale
//! the velocity, add, scale by the rate, subtract; five passes over every parameter, each into a
//! new buffer). VGG-16 at 32×32 carries 138 M parameters, and those passes took 23–30 % of
//! its training step on this project's 2-core VM (`benches/RESULTS.md`). The state records under
//! the same names as Burn's `SgdState` (`momentum.velocity`), so optimiser checkpoints of either
//! load into the other. Other backends, other float types and Nesterov momentum take the same
//! formulas as tensor operations.

use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::prelude::*;
use burn::tensor::{Bytes, DType};
use rayon::prelude::*;

/// Elements per rayon task in the flex passes: large enough that scheduling is negligible.
const CHUNK: usize = 1 << 16;

/// SGD: `v ← μ·v + g + λ·p`, `p ← p − lr·v` (the velocity starts as the first `g + λ·p`), or
/// `p ← p − lr·(g + λ·p)` without momentum; Nesterov steps along `g + λ·p + μ·v` instead.
#[derive(Clone, Debug)]
pub struct MomentumSgd {
    /// μ; `None` for plain SGD.
    pub momentum: Option<f32>,
    /// Nesterov's look-ahead (only with momentum).
    pub nesterov: bool,
    /// λ, the L2 penalty added to the gradient; 0 for none.
    pub weight_decay: f32,
}

/// The state of one parameter: its velocity, recorded under the name Burn's `SgdState` gives
/// it (`momentum.velocity`).
#[derive(Clone)]
pub struct MomentumSgdState<const D: usize> {
    velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for MomentumSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                velocity.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let momentum = join_path(prefix, "momentum");
        let velocity = match src.has_under(&momentum) {
            true => Some(Tensor::from_data(
                src.take_tensor(&momentum, "velocity")?,
                device,
            )),
            false => None,
        };
        Some(Self { velocity })
    }
}

/// The two passes of a step, for backends whose buffers the zoo can reach (flex).
#[backend_extension(Flex)]
pub trait SgdOps: Backend {
    /// `μ·velocity + grad + λ·param`, in `velocity`'s buffer when it is not shared.
    fn zoo_sgd_velocity(
        velocity: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        param: FloatTensor<Self>,
        momentum: f32,
        weight_decay: f32,
    ) -> FloatTensor<Self>;

    /// `param − lr·(direction + λ·param)`, in `param`'s buffer when it is not shared.
    fn zoo_sgd_descend(
        param: FloatTensor<Self>,
        direction: FloatTensor<Self>,
        lr: f32,
        weight_decay: f32,
    ) -> FloatTensor<Self>;
}

/// `target[k] = update(target[k], [inputs[0][k], …])` for every element of `target`, in its
/// own buffer when that is contiguous and not shared, else into a new one.
fn update_in_place<const N: usize>(
    mut target: FlexTensor,
    inputs: [&FlexTensor; N],
    update: impl Fn(f32, [f32; N]) -> f32 + Sync,
) -> FlexTensor {
    let inputs = inputs.map(contiguous_values);
    let len = target.layout().num_elements();
    let apply = |values: &mut [f32], offset: usize| {
        let count = values.len();
        let chunks = inputs.each_ref().map(|input| &input[offset..][..count]);
        for index in 0..count {
            values[index] = update(values[index], chunks.map(|chunk| chunk[index]));
        }
    };
    let contiguous = target
        .as_slice::<f32>()
        .is_some_and(|values| values.len() == len);
    let own_buffer = match contiguous {
        true => target
            .try_storage_mut::<f32>()
            .filter(|storage| storage.len() == len),
        false => None,
    };
    if let Some(storage) = own_buffer {
        storage
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, values)| apply(values, chunk * CHUNK));
        return target;
    }
    let mut values = contiguous_values(&target).into_owned();
    values
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| apply(values, chunk * CHUNK));
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(target.layout().shape().clone()),
        DType::F32,
    )
}

/// The elements of `tensor` in row-major order (a copy only when it is not contiguous).
fn contiguous_values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => values.into(),
        None => tensor
            .to_contiguous()
            .as_slice::<f32>()
            .expect("a contiguous f32 tensor has a slice")
            .to_vec()
            .into(),
    }
}

impl SgdOps for Flex {
    fn zoo_sgd_velocity(
        velocity: FlexTensor,
        grad: FlexTensor,
        param: FlexTensor,
        momentum: f32,
        weight_decay: f32,
    ) -> FlexTensor {
        // The terms a zero μ or λ drop are left out, not multiplied by zero, so results match
        // Burn's `Sgd` bit for bit (an infinite value times zero would be NaN).
        update_in_place(velocity, [&grad, &param], |v, [g, p]| {
            let g = if weight_decay == 0.0 {
                g
            } else {
                g + weight_decay * p
            };
            if momentum == 0.0 { g } else { momentum * v + g }
        })
    }

    fn zoo_sgd_descend(
        param: FlexTensor,
        direction: FlexTensor,
        lr: f32,
        weight_decay: f32,
    ) -> FlexTensor {
        update_in_place(param, [&direction], |p, [d]| {
            let d = if weight_decay == 0.0 {
                d
            } else {
                d + weight_decay * p
            };
            p - lr * d
        })
    }
}

/// Whether a step of `tensor` can take the flex passes.
fn on_flex_f32<const D: usize>(tensor: &Tensor<D>) -> bool {
    let device = tensor.device();
    !device.is_autodiff()
        && matches!(device.as_dispatch(), DispatchDevice::Flex(_))
        && tensor.dtype() == DType::F32
}

impl MomentumSgd {
    /// The velocity after this step: `μ·v + g + λ·p`, or `g + λ·p` on the first step.
    fn velocity<const D: usize>(
        &self,
        momentum: f32,
        previous: Option<Tensor<D>>,
        grad: Tensor<D>,
        param: &Tensor<D>,
    ) -> Tensor<D> {
        if on_flex_f32(param) {
            let (velocity, momentum) = match previous {
                Some(velocity) => (velocity, momentum),
                None => (grad.clone(), 0.0),
            };
            return Tensor::from_dispatch(Dispatch::zoo_sgd_velocity(
                velocity.into_dispatch(),
                grad.into_dispatch(),
                param.clone().into_dispatch(),
                momentum,
                self.weight_decay,
            ));
        }
        accumulate(momentum, previous, self.decayed(grad, param))
    }

    /// `g + λ·p`.
    fn decayed<const D: usize>(&self, grad: Tensor<D>, param: &Tensor<D>) -> Tensor<D> {
        match self.weight_decay {
            0.0 => grad,
            decay => param.clone().mul_scalar(decay).add(grad),
        }
    }
}

impl Optimizer for MomentumSgd {
    type State<const D: usize> = MomentumSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let lr = lr as f32;
        let previous = state.and_then(|state| state.velocity);
        let Some(momentum) = self.momentum else {
            let param = descend(tensor, grad, lr, self.weight_decay);
            return (param, Some(MomentumSgdState { velocity: None }));
        };
        if self.nesterov {
            let grad = self.decayed(grad, &tensor);
            let velocity = accumulate(momentum, previous, grad.clone());
            let direction = velocity.clone().mul_scalar(momentum).add(grad);
            let param = tensor - direction.mul_scalar(lr);
            return (param, Some(state_of(velocity)));
        }
        let velocity = self.velocity(momentum, previous, grad, &tensor);
        let param = descend(tensor, velocity.clone(), lr, 0.0);
        (param, Some(state_of(velocity)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        MomentumSgdState {
            velocity: state.velocity.map(|velocity| velocity.to_device(device)),
        }
    }
}

/// `μ·v + g` from tensor operations, or `g` on the first step.
fn accumulate<const D: usize>(
    momentum: f32,
    previous: Option<Tensor<D>>,
    grad: Tensor<D>,
) -> Tensor<D> {
    match previous {
        Some(velocity) => velocity.mul_scalar(momentum).add(grad),
        None => grad,
    }
}

fn state_of<const D: usize>(velocity: Tensor<D>) -> MomentumSgdState<D> {
    MomentumSgdState {
        velocity: Some(velocity),
    }
}

/// `p − lr·(d + λ·p)`.
fn descend<const D: usize>(
    param: Tensor<D>,
    direction: Tensor<D>,
    lr: f32,
    weight_decay: f32,
) -> Tensor<D> {
    if on_flex_f32(&param) {
        return Tensor::from_dispatch(Dispatch::zoo_sgd_descend(
            param.into_dispatch(),
            direction.into_dispatch(),
            lr,
            weight_decay,
        ));
    }
    let direction = match weight_decay {
        0.0 => direction,
        decay => param.clone().mul_scalar(decay).add(direction),
    };
    param - direction.mul_scalar(lr)
}
