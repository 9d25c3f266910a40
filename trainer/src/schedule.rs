//! Learning-rate schedules, with the state a resumed run needs to continue them exactly.

use serde::{Deserialize, Serialize};

/// The learning-rate schedule over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// × `lr_gamma` every `lr_step_epochs` epochs (torchvision's ImageNet recipe: ÷10 every 30).
    Step,
    /// Cosine decay from the rate to zero over the run (Loshchilov & Hutter 2017).
    Cosine,
    /// × `lr_gamma` when validation accuracy has not improved for `plateau_patience` epochs: the
    /// "divide by 10 when the validation error stops improving" of AlexNet (Krizhevsky et al.
    /// 2012, §5) and VGG (Simonyan & Zisserman 2015, §3.1).
    Plateau,
    /// × `lr_gamma` at each of `lr_milestones`, counted in iterations: He et al. 2016's CIFAR
    /// recipe (÷10 at 32k and 48k iterations).
    #[value(name = "multistep")]
    MultiStep,
}

/// The numbers a schedule is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// Which schedule.
    pub kind: Schedule,
    /// Peak learning rate.
    pub lr: f64,
    /// Epochs in the run.
    pub epochs: usize,
    /// Step schedule: epochs between cuts.
    pub step_epochs: usize,
    /// Step and plateau schedules: the factor of each cut.
    pub gamma: f64,
    /// Plateau schedule: epochs without a better validation accuracy before a cut.
    pub patience: usize,
    /// Epochs of linear warm-up from 0 to the rate, counted in steps (Goyal et al. 2017).
    pub warmup_epochs: usize,
    /// Multi-step schedule: the iterations (optimiser steps from the start) of each cut.
    pub milestones: Vec<usize>,
}

/// Where a schedule stands; saved in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Factor the plateau schedule has cut the rate by so far.
    pub plateau_scale: f64,
    /// Best validation accuracy seen by the plateau schedule.
    pub plateau_best: Option<f64>,
    /// Epochs since that best.
    pub plateau_waited: usize,
}

impl Default for ScheduleState {
    fn default() -> Self {
        Self {
            plateau_scale: 1.0,
            plateau_best: None,
            plateau_waited: 0,
        }
    }
}

impl ScheduleConfig {
    /// The rate of step `step` (of `steps_per_epoch`) in epoch `epoch` (0-based).
    pub fn lr(&self, state: &ScheduleState, epoch: usize, step: usize, steps: usize) -> f64 {
        let done = epoch * steps + step;
        let base = match self.kind {
            Schedule::Constant => self.lr,
            Schedule::Step => self.lr * self.gamma.powi((epoch / self.step_epochs.max(1)) as i32),
            Schedule::Cosine => {
                let progress = epoch as f64 / self.epochs.max(1) as f64;
                0.5 * self.lr * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Plateau => self.lr * state.plateau_scale,
            Schedule::MultiStep => {
                let cuts = self.milestones.iter().filter(|&&at| done >= at).count();
                self.lr * self.gamma.powi(cuts as i32)
            }
        };
        let warmup_steps = self.warmup_epochs * steps;
        if done < warmup_steps {
            base * (done + 1) as f64 / warmup_steps as f64
        } else {
            base
        }
    }

    /// Takes an epoch's validation accuracy into the plateau schedule; true when it cut the rate.
    pub fn observe(&self, state: &mut ScheduleState, valid_top1: f64) -> bool {
        if self.kind != Schedule::Plateau {
            return false;
        }
        if state.plateau_best.is_none_or(|best| valid_top1 > best) {
            state.plateau_best = Some(valid_top1);
            state.plateau_waited = 0;
            return false;
        }
        state.plateau_waited += 1;
        if state.plateau_waited > self.patience {
            state.plateau_scale *= self.gamma;
            state.plateau_waited = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: Schedule) -> ScheduleConfig {
        ScheduleConfig {
            kind,
            lr: 0.1,
            epochs: 90,
            step_epochs: 30,
            gamma: 0.1,
            patience: 2,
            warmup_epochs: 0,
            milestones: vec![32_000, 48_000],
        }
    }

    #[test]
    fn multi_step_cuts_at_the_iteration_milestones() {
        let multi = config(Schedule::MultiStep);
        let state = ScheduleState::default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // 391 iterations an epoch (50,000 images in batches of 128): iteration 32,000 is step
        // 329 of epoch 81 (0-based), 81 · 391 + 329; 48,000 is step 298 of epoch 122.
        assert!(close(multi.lr(&state, 81, 328, 391), 0.1));
        assert!(close(multi.lr(&state, 81, 329, 391), 0.01));
        assert!(close(multi.lr(&state, 122, 297, 391), 0.01));
        assert!(close(multi.lr(&state, 122, 298, 391), 0.001));
    }

    #[test]
    fn step_divides_by_ten_every_thirty_epochs() {
        let step = config(Schedule::Step);
        let state = ScheduleState::default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(step.lr(&state, 29, 0, 10), 0.1));
        assert!(close(step.lr(&state, 30, 0, 10), 0.01));
        assert!(close(step.lr(&state, 89, 9, 10), 0.001));
    }

    #[test]
    fn plateau_cuts_after_patience_epochs_without_improvement() {
        let plateau = config(Schedule::Plateau);
        let mut state = ScheduleState::default();
        let cuts: Vec<bool> = [0.5, 0.6, 0.6, 0.59, 0.6, 0.61, 0.5]
            .into_iter()
            .map(|acc| plateau.observe(&mut state, acc))
            .collect();
        // 0.6 best at epoch 2; three epochs without a better one (patience 2) cut the rate.
        assert_eq!(cuts, [false, false, false, false, true, false, false]);
        assert!((plateau.lr(&state, 7, 0, 10) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn warmup_rises_linearly_per_step_then_hands_over() {
        let warm = ScheduleConfig {
            warmup_epochs: 2,
            ..config(Schedule::Constant)
        };
        let state = ScheduleState::default();
        assert!((warm.lr(&state, 0, 0, 10) - 0.005).abs() < 1e-12);
        assert!((warm.lr(&state, 1, 4, 10) - 0.075).abs() < 1e-12);
        assert!((warm.lr(&state, 1, 9, 10) - 0.1).abs() < 1e-12);
        assert!((warm.lr(&state, 2, 0, 10) - 0.1).abs() < 1e-12);
    }
}
