//! Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
//! Network"): the student also learns the softened outputs of trained teachers. The teachers
//! see the very images the student sees, augmentation and mixing included ("consistent"
//! teaching, Beyer et al. 2022), and several teachers teach as their ensemble does: by the mean
//! of their probabilities.
//!
//! The loss, as DeiT's `--distillation-type soft` and Hinton et al. §2 weigh it:
//! `(1 − α) · CE(student, labels) + α · τ² · KL(p_teachers^τ ‖ softmax(student / τ))`, the τ²
//! keeping the soft term's gradients at the hard term's scale whatever the temperature.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use data::Preset;
use data::datasets::source::DatasetSource;
use model_zoo::{Classifier, ModelOptions, ZooModel};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::transfer::with_own_head;

/// The trained networks a run distils, on the plain (inference) device.
pub(crate) struct Teachers {
    models: Vec<ZooModel>,
    /// τ, the softmax temperature.
    temperature: f32,
    /// α, the weight of the soft term.
    alpha: f32,
}

impl Teachers {
    /// The `--teacher` weights of `config` as `--teacher-model` (default: the student's model),
    /// each of which must predict the run's `classes` and, where its origin says, have been
    /// trained under the normalisation of the run's `preset`; `None` without teachers.
    pub(crate) fn load(
        config: &TrainConfig,
        options: &ModelOptions,
        classes: usize,
        preset: Preset,
        device: &Device,
    ) -> Result<Option<Self>, TrainError> {
        if config.teachers.is_empty() {
            return Ok(None);
        }
        let name = config.teacher_model.as_deref().unwrap_or(&config.model);
        let info = model_zoo::info(name).map_err(TrainError::Model)?;
        let models = config
            .teachers
            .iter()
            .map(|weights| {
                if let Some(trained) = teacher_preset(weights)?
                    && trained.normalize() != preset.normalize()
                {
                    return Err(TrainError::Config(format!(
                        "--teacher {}: trained on inputs normalised as the '{}' preset does, \
                         but this run's batches are normalised as '{}' (--augment): it would \
                         teach on images unlike any it learnt from",
                        weights.display(),
                        trained.name(),
                        preset.name()
                    )));
                }
                let model = with_own_head(info, options, weights, device)?;
                if model.num_classes() == classes {
                    Ok(model)
                } else {
                    Err(teacher_mismatch(weights, model.num_classes(), classes))
                }
            })
            .collect::<Result<_, TrainError>>()?;
        Ok(Some(Self {
            models,
            temperature: config.distillation_temperature as f32,
            alpha: config.distillation_alpha as f32,
        }))
    }

    /// The loss of a batch: the hard loss `hard` of the student's `logits` blended with the
    /// soft term against the teachers' outputs on `images` (the batch the student saw).
    pub(crate) fn loss(&self, hard: Tensor<1>, logits: Tensor<2>, images: Tensor<4>) -> Tensor<1> {
        let images = images.inner();
        let tau = f64::from(self.temperature);
        let targets = self
            .models
            .iter()
            .map(|teacher| softmax(teacher.forward(images.clone()).div_scalar(tau), 1))
            .reduce(|sum, probabilities| sum + probabilities)
            .expect("a run with teachers has one at least")
            .div_scalar(self.models.len() as f64);
        let soft = soft_loss(logits, targets, self.temperature);
        hard.mul_scalar(1.0 - self.alpha) + soft.mul_scalar(self.alpha)
    }
}

/// The preset a teacher was trained under, where its weights tell: a shipped file's recipe's,
/// ImageNet's for torchvision's, or that of the run whose folder (with its `config.json`) holds
/// the file; `None` for a file on its own.
fn teacher_preset(weights: &Path) -> Result<Option<Preset>, TrainError> {
    let name = weights.to_string_lossy();
    if name.starts_with("zoo:") {
        let shipped = model_zoo::pretrained::find_shipped(&name).map_err(TrainError::Config)?;
        return shipped
            .augment
            .parse()
            .map(Some)
            .map_err(TrainError::Config);
    }
    if name.starts_with("tv:") {
        return Ok(Some(Preset::Imagenet));
    }
    let Some(run) = weights
        .parent()
        .filter(|run| crate::run_folder::holds_run(run))
    else {
        return Ok(None);
    };
    let trained = crate::config::load(run)?;
    // An image folder's presets for small and large images normalise alike, so which one the
    // run chose (from its images' size) does not matter here.
    crate::setup::preset(
        trained.augment.as_deref(),
        &DatasetSource::parse(&trained.dataset),
        true,
    )
    .map(Some)
}

fn teacher_mismatch(weights: &Path, predicted: usize, classes: usize) -> TrainError {
    TrainError::Config(format!(
        "--teacher {}: its head predicts {predicted} classes, the run's dataset has {classes}: \
         a teacher must have been trained on the same classes",
        weights.display()
    ))
}

/// `τ² · KL(targets ‖ softmax(logits / τ))`, summed over the classes and averaged over the
/// batch: zero exactly when the student's softened outputs are the targets. Its gradient with
/// respect to the logits is `τ · (softmax(logits / τ) − targets) / N`.
pub(crate) fn soft_loss(logits: Tensor<2>, targets: Tensor<2>, temperature: f32) -> Tensor<1> {
    let [n, _] = logits.dims();
    let tau = f64::from(temperature);
    let student = log_softmax(logits.div_scalar(tau), 1);
    // Σ t · log t is constant for the student; a target of 0 adds 0, not 0 · log 0.
    let entropy_term = targets.clone() * targets.clone().clamp_min(1e-30).log();
    (entropy_term - targets * student)
        .sum()
        .mul_scalar(tau * tau / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn device() -> Device {
        crate::BackendKind::Flex.open().unwrap()
    }

    #[test]
    fn soft_loss_is_kl_divergence_and_its_gradient_is_hintons() {
        let device = device().autodiff();
        let raw = [[2.0f32, -1.0, 0.5], [0.0, 3.0, -2.0]];
        let targets_raw = [[0.7f32, 0.2, 0.1], [0.0, 0.5, 0.5]];
        let tau = 2.0f32;
        let logits = Tensor::<2>::from_data(TensorData::from(raw), &device).require_grad();
        let targets = Tensor::<2>::from_data(TensorData::from(targets_raw), &device);
        let loss = soft_loss(logits.clone(), targets, tau);
        let value = loss.clone().into_scalar::<f32>();
        let grads = loss.backward();
        let grad = logits
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut expected = 0.0f64;
        for (row, (x, t)) in raw.iter().zip(&targets_raw).enumerate() {
            let z: f64 = x.iter().map(|&v| (f64::from(v / tau)).exp()).sum();
            for c in 0..3 {
                let p = f64::from(x[c] / tau).exp() / z;
                let t = f64::from(t[c]);
                if t > 0.0 {
                    expected += t * (t / p).ln();
                }
                // τ · (p − t) / N, Hinton et al.'s equation (2) over a batch of 2.
                let want = f64::from(tau) * (p - t) / 2.0;
                let got = f64::from(grad[row * 3 + c]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "∂/∂x[{row}][{c}]: {got} vs {want}"
                );
            }
        }
        let expected = expected * f64::from(tau * tau) / 2.0;
        assert!(
            (f64::from(value) - expected).abs() < 1e-5,
            "{value} vs {expected}"
        );
    }

    #[test]
    fn soft_loss_vanishes_where_the_student_matches_its_teacher() {
        let device = device();
        let logits = Tensor::<2>::from_data(
            TensorData::from([[1.0f32, 2.0, -3.0], [0.5, 0.5, 4.0]]),
            &device,
        );
        let tau = 4.0;
        let targets = softmax(logits.clone().div_scalar(f64::from(tau)), 1);
        let loss = soft_loss(logits, targets, tau).into_scalar::<f32>();
        assert!(loss.abs() < 1e-5, "{loss}");
    }
}
