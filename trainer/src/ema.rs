//! An exponential moving average of the weights (Polyak & Juditsky 1992), as torchvision's
//! reference script (`--model-ema`, `use_buffers=True`) and timm's `ModelEmaV2` keep one: after
//! every optimiser step, `average ← decay · average + (1 − decay) · model`, over the parameters
//! and the batch-norm statistics alike. It is evaluated and saved beside the raw weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use model_zoo::ZooModel;

/// The average of a training model's weights, an inference model on the plain device.
#[derive(Debug, Clone)]
pub struct WeightAverage {
    /// The averaged model.
    pub model: ZooModel,
    /// The weight the average keeps at each step.
    pub decay: f64,
}

/// Every float tensor of a module (parameters and running statistics), flattened, in the
/// order the module visits them.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().flatten(0, D - 1));
    }
}

/// Blends each float tensor of the average with the model's, taken in the same order.
struct Blend {
    model: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .model
            .next()
            .expect("the average and the model have the same tensors");
        let decay = self.decay as f32;
        param.map(|average| {
            let current = current.reshape(average.dims());
            average.mul_scalar(decay) + current.mul_scalar(1.0 - decay)
        })
    }
}

impl WeightAverage {
    /// An average starting at `model` (a training model; the average holds its inference copy).
    pub fn new(model: &ZooModel, decay: f64) -> Self {
        Self {
            model: model.valid(),
            decay,
        }
    }

    /// One step of the average towards `model`.
    pub fn update(&mut self, model: &ZooModel) {
        let mut current = Collect(Vec::new());
        model.valid().visit(&mut current);
        let mut blend = Blend {
            model: current.0.into_iter(),
            decay: self.decay,
        };
        self.model = self.model.clone().map(&mut blend);
    }

    /// Starts the average again at `model` (torchvision's reference restarts it during the
    /// learning-rate warm-up, whose early weights are not worth keeping).
    pub fn reset(&mut self, model: &ZooModel) {
        self.model = model.valid();
    }
}

#[cfg(test)]
mod tests {
    use model_zoo::ModelOptions;

    use super::*;

    fn tensors(model: &ZooModel) -> Vec<Vec<f32>> {
        let mut all = Collect(Vec::new());
        model.visit(&mut all);
        all.0
            .into_iter()
            .map(|tensor| tensor.into_data().convert::<f32>().try_to_vec().unwrap())
            .collect()
    }

    fn cifar_resnet20(seed: u64) -> ZooModel {
        let device = Device::default();
        device.seed(seed);
        model_zoo::info("cifar-resnet20")
            .unwrap()
            .build(&ModelOptions::new(), &device)
    }

    #[test]
    fn the_average_of_a_constant_model_is_that_model() {
        let model = cifar_resnet20(1);
        let mut average = WeightAverage::new(&model, 0.9);
        for _ in 0..5 {
            average.update(&model);
        }
        let (expected, averaged) = (tensors(&model), tensors(&average.model));
        assert!(expected.len() > 60, "{} tensors", expected.len());
        for (a, b) in expected.iter().zip(&averaged) {
            assert!(
                a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-6 * x.abs().max(1.0))
            );
        }
    }

    #[test]
    fn each_step_moves_the_average_by_one_minus_decay() {
        let (start, target) = (cifar_resnet20(1), cifar_resnet20(2));
        let mut average = WeightAverage::new(&start, 0.75);
        average.update(&target);
        average.update(&target);
        // Two steps: 0.75² of the start, 1 − 0.75² of the target, batch-norm statistics too.
        let (a, b, averaged) = (tensors(&start), tensors(&target), tensors(&average.model));
        for ((a, b), c) in a.iter().zip(&b).zip(&averaged) {
            for ((x, y), z) in a.iter().zip(b).zip(c) {
                let expected = 0.5625 * x + 0.4375 * y;
                assert!((expected - z).abs() < 1e-5, "{expected} against {z}");
            }
        }
        average.reset(&target);
        assert_eq!(tensors(&average.model), b);
    }
}
