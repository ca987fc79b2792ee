//! The settings of a training run ([`TrainConfig`]), their validation, and what a change of
//! them means for a run in progress ([`ConfigChange`]): most settings take effect on the
//! running weights; a new network shape or seed starts over.

use serde::{Deserialize, Serialize};

use super::NnError;
use super::mlp::MlpConfig;
use crate::Point;
use crate::math::{Process, Schedule};

/// Largest batch accepted.
pub const MAX_BATCH: usize = 1 << 20;

/// How the loss weighs times, and how t is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weighting {
    /// `w = 1`, `t ~ U[t_min, 1]`: the usual ε-loss (DDPM's "simple" loss).
    #[default]
    Uniform,
    /// `w = 1/σ²`, `t ~ U[t_min, 1]`: the score-matching loss of the lecture,
    /// `E‖s_θ − ∇log p(x_t|x₀)‖²` written in ε; its variance explodes as t → 0.
    InverseSigma2,
    /// The same loss, but `t ~ π(t) ∝ 1/σ(t)²` on [t_min, 1] with per-sample weight
    /// `w/π = Z/(1 − t_min)`, a constant (`Z = ∫ σ⁻² dt`): small t are drawn often instead of
    /// amplified. The factor 1/(1 − t_min) makes its expectation equal `InverseSigma2`'s.
    Importance,
}

impl Weighting {
    pub const ALL: [Weighting; 3] = [
        Weighting::Uniform,
        Weighting::InverseSigma2,
        Weighting::Importance,
    ];

    /// Name used on the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Weighting::Uniform => "uniform",
            Weighting::InverseSigma2 => "inverse-sigma2",
            Weighting::Importance => "importance",
        }
    }
}

/// Everything a training run needs besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub net: MlpConfig,
    pub schedule: Schedule,
    /// Adam's learning rate.
    pub lr: f32,
    pub batch: usize,
    pub seed: u32,
    /// Smallest training time (docs/architecture.md §3).
    pub t_min: f32,
    pub weighting: Weighting,
    /// Decay of the weights' moving average (with warm-up, see `adam::Ema`).
    pub ema_decay: f32,
    /// Probability p ∈ [0, 1] that a sample's class is replaced by the null class ∅ (classifier-
    /// free guidance's label dropout; used only by conditional networks with labelled data).
    pub class_dropout: f32,
}

/// The usual label dropout of classifier-free guidance.
pub const DEFAULT_CLASS_DROPOUT: f32 = 0.1;

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            net: MlpConfig::default(),
            schedule: Schedule::default(),
            lr: 2e-3,
            batch: 256,
            seed: 0,
            t_min: 1e-3,
            weighting: Weighting::Uniform,
            ema_decay: 0.999,
            class_dropout: DEFAULT_CLASS_DROPOUT,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), NnError> {
        self.net.validate()?;
        self.schedule
            .validate()
            .map_err(|e| NnError::InvalidTraining(e.to_string()))?;
        check_lr(self.lr)?;
        check_batch(self.batch)?;
        check_t_min(self.t_min)?;
        check_ema_decay(self.ema_decay)?;
        check_class_dropout(self.class_dropout)?;
        Ok(())
    }

    /// The weighting a step uses: flow matching's loss is the plain squared error with t
    /// uniform, so there it is always `Uniform`.
    pub fn weighting_used(&self) -> Weighting {
        match self.net.process {
            Process::Vp => self.weighting,
            Process::Fm => Weighting::Uniform,
        }
    }
}

pub(crate) fn check_class_dropout(p: f32) -> Result<(), NnError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "class dropout must be in [0, 1] (got {p})"
        )))
    }
}

/// Labels, if given, must be one per point and below `num_classes` (for a conditional
/// network; an unconditional one ignores them).
pub(crate) fn check_labels(
    labels: Option<&[u32]>,
    points: usize,
    num_classes: u32,
) -> Result<(), NnError> {
    let Some(labels) = labels else {
        return Ok(());
    };
    if labels.len() != points {
        return Err(NnError::InvalidLabels(format!(
            "{} labels for {points} points",
            labels.len()
        )));
    }
    if num_classes > 0
        && let Some(index) = labels.iter().position(|&l| l >= num_classes)
    {
        return Err(NnError::InvalidLabels(format!(
            "point {index} has label {}, but the network has {num_classes} classes",
            labels[index]
        )));
    }
    Ok(())
}

pub(crate) fn check_lr(lr: f32) -> Result<(), NnError> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "learning rate must be finite and positive (got {lr})"
        )))
    }
}

pub(crate) fn check_batch(batch: usize) -> Result<(), NnError> {
    if (1..=MAX_BATCH).contains(&batch) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "batch must be in 1..={MAX_BATCH} (got {batch})"
        )))
    }
}

pub(crate) fn check_t_min(t_min: f32) -> Result<(), NnError> {
    if t_min > 0.0 && t_min < 1.0 {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "t_min must be in (0, 1) (got {t_min})"
        )))
    }
}

pub(crate) fn check_ema_decay(decay: f32) -> Result<(), NnError> {
    if (0.0..1.0).contains(&decay) {
        Ok(())
    } else {
        Err(NnError::InvalidTraining(format!(
            "EMA decay must be in [0, 1) (got {decay})"
        )))
    }
}

/// Data must be non-empty and finite.
pub(crate) fn check_data(data: &[Point]) -> Result<(), NnError> {
    if data.is_empty() {
        return Err(NnError::EmptyData);
    }
    match data
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        Some(index) => Err(NnError::NonFiniteData { index }),
        None => Ok(()),
    }
}

/// A setting that can change while training goes on from the current weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    LearningRate,
    Batch,
    Weighting,
    Schedule,
    TMin,
    EmaDecay,
    ClassDropout,
}

/// What moving a run from one config to another means: the settings that change and take
/// effect on the running weights, and whether the run starts over (a new network shape or
/// seed: fresh weights, step 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub continued: Vec<Setting>,
    pub restarts: bool,
}

impl ConfigChange {
    /// Compares `old` with `new`.
    pub fn between(old: &TrainConfig, new: &TrainConfig) -> Self {
        let mut continued = Vec::new();
        let mut note = |changed: bool, setting| {
            if changed {
                continued.push(setting);
            }
        };
        note(old.lr != new.lr, Setting::LearningRate);
        note(old.batch != new.batch, Setting::Batch);
        note(old.weighting != new.weighting, Setting::Weighting);
        note(old.schedule != new.schedule, Setting::Schedule);
        note(old.t_min != new.t_min, Setting::TMin);
        note(old.ema_decay != new.ema_decay, Setting::EmaDecay);
        note(
            old.class_dropout != new.class_dropout,
            Setting::ClassDropout,
        );
        Self {
            continued,
            restarts: old.net != new.net || old.seed != new.seed,
        }
    }

    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        self.continued.is_empty() && !self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_says_what_continues_and_what_restarts() {
        let old = TrainConfig::default();
        assert!(ConfigChange::between(&old, &old).is_empty());
        let new = TrainConfig {
            lr: 1e-4,
            batch: 64,
            ema_decay: 0.99,
            ..old.clone()
        };
        let change = ConfigChange::between(&old, &new);
        assert_eq!(
            change.continued,
            [Setting::LearningRate, Setting::Batch, Setting::EmaDecay]
        );
        assert!(!change.restarts);
        let wider = TrainConfig {
            net: MlpConfig {
                width: old.net.width * 2,
                ..old.net.clone()
            },
            weighting: Weighting::Importance,
            ..old.clone()
        };
        let change = ConfigChange::between(&old, &wider);
        assert!(change.restarts);
        assert_eq!(change.continued, [Setting::Weighting]);
        let reseeded = TrainConfig {
            seed: 9,
            ..old.clone()
        };
        assert!(ConfigChange::between(&old, &reseeded).restarts);
    }
}
