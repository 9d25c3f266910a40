//! What a run measures: the rows of `metrics.csv`, top-k counts, and evaluation over a loader.

use std::path::Path;
use std::time::Instant;

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use data::{DataError, DataLoader, MixedTargets};
use model_zoo::{Classifier, ZooModel};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// `train`, `valid` or `test`.
    pub split: String,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-1 when there are 5 classes or fewer).
    pub top5: f64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Images per second.
    pub images_per_second: f64,
    /// Wall time of the pass.
    pub seconds: f64,
}

/// Running sums of the epoch in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpochTally {
    pub(crate) seen: usize,
    pub(crate) loss_sum: f64,
    pub(crate) top1: usize,
    pub(crate) top5: usize,
    pub(crate) seconds: f64,
}

/// The training loss of a batch: the cross-entropy against its labels, or for a mixed batch
/// (mixup, CutMix) against its soft targets, `λ · CE(labels) + (1 − λ) · CE(partner)` (the same
/// as the cross-entropy with the mixed one-hot targets, smoothed or not, since it is linear in
/// the target).
pub(crate) fn batch_loss(
    loss_fn: &CrossEntropyLoss,
    logits: Tensor<2>,
    labels: &Tensor<1, Int>,
    mix: Option<&MixedTargets>,
) -> Tensor<1> {
    match mix {
        None => loss_fn.forward(logits, labels.clone()),
        Some(mix) => {
            let own = loss_fn.forward(logits.clone(), labels.clone());
            let partner = loss_fn.forward(logits, mix.partner.clone());
            own.mul_scalar(mix.weight) + partner.mul_scalar(1.0 - mix.weight)
        }
    }
}

/// The labels a batch's training accuracy counts: a mixed batch's larger share.
pub(crate) fn dominant_labels(
    labels: &Tensor<1, Int>,
    mix: Option<&MixedTargets>,
) -> Tensor<1, Int> {
    match mix {
        Some(mix) if mix.weight < 0.5 => mix.partner.clone(),
        _ => labels.clone(),
    }
}

/// Correct top-1 and top-k predictions in a batch.
pub(crate) fn correct(logits: &Tensor<2>, labels: &Tensor<1, Int>, k: usize) -> (usize, usize) {
    let [n, classes] = logits.dims();
    let k = k.min(classes);
    let labels = labels.clone().reshape([n, 1]);
    let top1 = logits.clone().argmax(1).equal(labels.clone());
    let top1 = top1.int().sum().into_scalar::<i64>() as usize;
    let topk_indices = logits.clone().topk_with_indices(k, 1).1;
    let topk = topk_indices.equal(labels.expand([n, k])).int().sum();
    (top1, topk.into_scalar::<i64>() as usize)
}

/// Loss and accuracy of `model` over `loader`'s epoch 0, on the plain device.
pub fn evaluate(
    model: &ZooModel,
    loader: &DataLoader,
    device: &Device,
    epoch: usize,
    lr: f64,
    split: &str,
) -> Result<EpochMetrics, DataError> {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let started = Instant::now();
    let (mut seen, mut loss_sum, mut top1, mut top5) = (0usize, 0.0f64, 0usize, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?.to_device(device);
        let n = batch.labels.dims()[0];
        let logits = model.forward(batch.images);
        let loss = loss_fn.forward(logits.clone(), batch.labels.clone());
        loss_sum += f64::from(loss.into_scalar::<f32>()) * n as f64;
        let (c1, c5) = correct(&logits, &batch.labels, 5);
        (seen, top1, top5) = (seen + n, top1 + c1, top5 + c5);
    }
    let seconds = started.elapsed().as_secs_f64();
    let seen_f = seen.max(1) as f64;
    Ok(EpochMetrics {
        epoch,
        split: split.to_string(),
        loss: loss_sum / seen_f,
        top1: top1 as f64 / seen_f,
        top5: top5 as f64 / seen_f,
        lr,
        images_per_second: seen as f64 / seconds,
        seconds,
    })
}

/// The rows as `metrics.csv`.
pub(crate) fn csv(metrics: &[EpochMetrics]) -> String {
    let mut out = String::from("epoch,split,loss,top1,top5,lr,images_per_second,seconds\n");
    for m in metrics {
        out.push_str(&format!(
            "{},{},{:.6},{:.6},{:.6},{:.6e},{:.1},{:.3}\n",
            m.epoch, m.split, m.loss, m.top1, m.top5, m.lr, m.images_per_second, m.seconds
        ));
    }
    out
}

/// Reads back the `metrics.csv` a run wrote.
pub fn read_metrics(out: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = out.join("metrics.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    let bad = |line: usize| {
        TrainError::Config(format!(
            "{}: line {line} is not a metrics row",
            path.display()
        ))
    };
    text.lines()
        .enumerate()
        .skip(1)
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            let [
                epoch,
                split,
                loss,
                top1,
                top5,
                lr,
                images_per_second,
                seconds,
            ] = fields[..]
            else {
                return Err(bad(index + 1));
            };
            let number = |field: &str| field.parse::<f64>().map_err(|_| bad(index + 1));
            Ok(EpochMetrics {
                epoch: epoch.parse().map_err(|_| bad(index + 1))?,
                split: split.to_string(),
                loss: number(loss)?,
                top1: number(top1)?,
                top5: number(top5)?,
                lr: number(lr)?,
                images_per_second: number(images_per_second)?,
                seconds: number(seconds)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::log_softmax;

    use super::*;

    #[test]
    fn a_mixed_batch_loss_is_the_cross_entropy_of_its_soft_targets() {
        let device = Device::default();
        let logits = Tensor::<2>::from_data([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], &device);
        let labels = Tensor::<1, Int>::from_data([0, 2], &device);
        let mix = MixedTargets {
            partner: Tensor::from_data([1, 0], &device),
            weight: 0.7,
        };
        for smoothing in [None, Some(0.1f32)] {
            let loss_fn = CrossEntropyLossConfig::new()
                .with_smoothing(smoothing)
                .init(&device);
            let mixed = batch_loss(&loss_fn, logits.clone(), &labels, Some(&mix));
            // −Σ t · log softmax, t = 0.7 · onehot(label) + 0.3 · onehot(partner), smoothed
            // as t (1 − ε) + ε / K.
            let epsilon = smoothing.unwrap_or(0.0);
            let targets = Tensor::<2>::from_data([[0.7, 0.3, 0.0], [0.3, 0.0, 0.7]], &device)
                .mul_scalar(1.0 - epsilon)
                .add_scalar(epsilon / 3.0);
            let expected = (targets * log_softmax(logits.clone(), 1))
                .sum_dim(1)
                .mean()
                .neg();
            let (mixed, expected) = (mixed.into_scalar::<f32>(), expected.into_scalar::<f32>());
            assert!(
                (mixed - expected).abs() < 1e-5,
                "{mixed} against {expected}"
            );
        }
        let plain = batch_loss(
            &CrossEntropyLossConfig::new().init(&device),
            logits,
            &labels,
            None,
        );
        assert!(plain.into_scalar::<f32>() > 0.0);
        let dominant = dominant_labels(&labels, Some(&MixedTargets { weight: 0.2, ..mix }));
        assert_eq!(
            dominant
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
            [1, 0]
        );
    }
}
