//! Two training runs that differ in exactly one setting, stepped side by side.
//!
//! The settings worth comparing on toy data: the time input (sinusoidal features vs the raw
//! scalar t: in 2D the scalar often looks smoother), the loss
//! weighting (uniform with a cut-off t_min, the score-matching weight 1/σ², or the same loss
//! by importance sampling π(t) ∝ 1/σ²: the two variance remedies), and what the network
//! predicts (ε, the score, or x₀; docs/architecture.md §3). Everything else — data, seed, schedule,
//! width, optimiser — is shared, so any difference in the loss curves or the samples is that
//! setting's.

use serde::{Deserialize, Serialize};

use super::{Progress, TeachError};
use crate::Point;
use crate::backend::{CpuTrainer, TrainBackend};
use crate::gpu::LossPoint;
use crate::nn::{DsmSampler, Embedding, NetModel, Parameterization, TrainConfig, Weighting};

/// One value of one ablation axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Setting {
    Embedding(Embedding),
    Weighting(Weighting),
    Parameterization(Parameterization),
}

impl Setting {
    /// The axis, for the UI: "time embedding", "loss weighting", "parameterisation".
    pub fn axis(&self) -> &'static str {
        match self {
            Setting::Embedding(_) => "time embedding",
            Setting::Weighting(_) => "loss weighting",
            Setting::Parameterization(_) => "parameterisation",
        }
    }

    /// The `TrainConfig` field this axis sets (as [`differing_fields`] names it).
    pub fn field(&self) -> &'static str {
        match self {
            Setting::Embedding(_) => "net.embedding",
            Setting::Weighting(_) => "weighting",
            Setting::Parameterization(_) => "net.param",
        }
    }

    /// The value's name, e.g. "sinusoidal (32)", "importance", "x0".
    pub fn label(&self) -> String {
        match self {
            Setting::Embedding(Embedding::Sinusoidal { dim }) => format!("sinusoidal ({dim})"),
            Setting::Embedding(e) => e.name().to_owned(),
            Setting::Weighting(w) => w.name().to_owned(),
            Setting::Parameterization(p) => p.name().to_owned(),
        }
    }

    pub fn same_axis(&self, other: &Setting) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Writes this value into `cfg`.
    pub fn apply(&self, cfg: &mut TrainConfig) {
        match *self {
            Setting::Embedding(e) => cfg.net.embedding = e,
            Setting::Weighting(w) => cfg.weighting = w,
            Setting::Parameterization(p) => cfg.net.param = p,
        }
    }

    /// The value `cfg` has on this axis.
    pub fn read(&self, cfg: &TrainConfig) -> Setting {
        match self {
            Setting::Embedding(_) => Setting::Embedding(cfg.net.embedding),
            Setting::Weighting(_) => Setting::Weighting(cfg.weighting),
            Setting::Parameterization(_) => Setting::Parameterization(cfg.net.param),
        }
    }
}

/// The comparisons the view offers.
pub fn presets() -> Vec<(Setting, Setting)> {
    vec![
        (
            Setting::Embedding(Embedding::Sinusoidal { dim: 32 }),
            Setting::Embedding(Embedding::Scalar),
        ),
        (
            Setting::Weighting(Weighting::Uniform),
            Setting::Weighting(Weighting::InverseSigma2),
        ),
        (
            Setting::Weighting(Weighting::InverseSigma2),
            Setting::Weighting(Weighting::Importance),
        ),
        (
            Setting::Parameterization(Parameterization::Eps),
            Setting::Parameterization(Parameterization::Score),
        ),
        (
            Setting::Parameterization(Parameterization::Eps),
            Setting::Parameterization(Parameterization::X0),
        ),
    ]
}

/// The names of the `TrainConfig` fields in which `a` and `b` differ.
pub fn differing_fields(a: &TrainConfig, b: &TrainConfig) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 12] = [
        ("net.width", a.net.width == b.net.width),
        ("net.depth", a.net.depth == b.net.depth),
        ("net.activation", a.net.activation == b.net.activation),
        ("net.embedding", a.net.embedding == b.net.embedding),
        ("net.param", a.net.param == b.net.param),
        ("schedule", a.schedule == b.schedule),
        ("lr", a.lr == b.lr),
        ("batch", a.batch == b.batch),
        ("seed", a.seed == b.seed),
        ("t_min", a.t_min == b.t_min),
        ("weighting", a.weighting == b.weighting),
        ("ema_decay", a.ema_decay == b.ema_decay),
    ];
    checks
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect()
}

/// The two configs of an ablation: `base` with `a`, and `base` with `b`.
pub fn configs(base: &TrainConfig, a: Setting, b: Setting) -> Result<[TrainConfig; 2], TeachError> {
    if !a.same_axis(&b) {
        return Err(TeachError::Invalid(format!(
            "ablation: {} and {} are different axes",
            a.axis(),
            b.axis()
        )));
    }
    if a == b {
        return Err(TeachError::Invalid(format!(
            "ablation: both runs use {} = {}",
            a.axis(),
            a.label()
        )));
    }
    let (mut ca, mut cb) = (base.clone(), base.clone());
    a.apply(&mut ca);
    b.apply(&mut cb);
    ca.validate()?;
    cb.validate()?;
    Ok([ca, cb])
}

/// One side of the comparison.
pub struct AblationRun {
    pub setting: Setting,
    backend: Box<dyn TrainBackend>,
    /// Every loss so far, in step order.
    pub losses: Vec<LossPoint>,
}

impl AblationRun {
    pub fn config(&self) -> &TrainConfig {
        self.backend.config()
    }

    pub fn steps_done(&self) -> u64 {
        self.backend.steps_done()
    }

    /// The EMA weights as a model to sample from.
    pub fn ema_model(&self) -> Result<NetModel, TeachError> {
        Ok(self.backend.ema_model()?)
    }

    /// The weights being optimised (not averaged) as a model.
    pub fn current_model(&self) -> Result<NetModel, TeachError> {
        let cfg = self.backend.config();
        Ok(NetModel::new(
            cfg.net.clone(),
            cfg.schedule,
            self.backend.params()?,
        )?)
    }

    /// The mean of the last `window` losses (a readable number beside a noisy curve).
    pub fn recent_loss(&self, window: usize) -> Option<f32> {
        let w = window.max(1).min(self.losses.len());
        (w > 0).then(|| {
            self.losses[self.losses.len() - w..]
                .iter()
                .map(|l| l.loss)
                .sum::<f32>()
                / w as f32
        })
    }

    pub fn backend_name(&self) -> String {
        self.backend.name()
    }
}

/// Two runs stepped side by side.
pub struct Ablation {
    pub runs: [AblationRun; 2],
}

impl Ablation {
    /// Both runs on the CPU backend.
    pub fn cpu(
        base: &TrainConfig,
        a: Setting,
        b: Setting,
        data: &[Point],
    ) -> Result<Self, TeachError> {
        let [ca, cb] = configs(base, a, b)?;
        Self::with_backends(
            (a, Box::new(CpuTrainer::new(ca, data)?)),
            (b, Box::new(CpuTrainer::new(cb, data)?)),
        )
    }

    /// Runs on any backends (e.g. from `backend::make_trainer` with configs from
    /// [`configs`]); refused unless their configs differ in exactly the setting's field.
    pub fn with_backends(
        a: (Setting, Box<dyn TrainBackend>),
        b: (Setting, Box<dyn TrainBackend>),
    ) -> Result<Self, TeachError> {
        let fields = differing_fields(a.1.config(), b.1.config());
        if !a.0.same_axis(&b.0) || fields != [a.0.field()] {
            return Err(TeachError::Invalid(format!(
                "ablation: the runs must differ only in {} (they differ in {fields:?})",
                a.0.field()
            )));
        }
        if a.0.read(a.1.config()) != a.0 || b.0.read(b.1.config()) != b.0 {
            return Err(TeachError::Invalid(
                "ablation: a backend's config does not have its setting".into(),
            ));
        }
        let run = |(setting, backend): (Setting, Box<dyn TrainBackend>)| AblationRun {
            setting,
            backend,
            losses: Vec::new(),
        };
        Ok(Self {
            runs: [run(a), run(b)],
        })
    }

    /// `steps` more optimiser steps for each run, alternating in chunks of `chunk` so that
    /// both advance together (and a cancel leaves them at nearly the same step).
    pub fn train(
        &mut self,
        steps: u64,
        chunk: u64,
        progress: Progress<'_>,
    ) -> Result<(), TeachError> {
        let chunk = chunk.max(1);
        let mut done = 0;
        progress.tick(0.0)?;
        while done < steps {
            let now = chunk.min(steps - done);
            for run in &mut self.runs {
                let losses = run.backend.train(now)?;
                run.losses.extend(losses);
            }
            done += now;
            progress.tick(done as f64 / steps.max(1) as f64)?;
        }
        for run in &mut self.runs {
            let losses = run.backend.flush()?;
            run.losses.extend(losses);
        }
        Ok(())
    }

    /// The two EMA models, in run order.
    pub fn models(&self) -> Result<[NetModel; 2], TeachError> {
        Ok([self.runs[0].ema_model()?, self.runs[1].ema_model()?])
    }
}

/// The DSM loss `(1/B) Σ w‖ε̂ − ε‖²` of `model` under `cfg`'s schedule, t_min and weighting,
/// on one fixed batch drawn with `seed` (not one of training's batches). Evaluated on the same
/// batch before and after training, the noise of the batch cancels: a clean "did the loss go
/// down" even for weightings whose loss is mostly irreducible.
pub fn evaluation_loss(
    model: &NetModel,
    cfg: &TrainConfig,
    data: &[Point],
    batch: usize,
    seed: u32,
) -> Result<f64, TeachError> {
    if data.is_empty() || batch == 0 {
        return Err(TeachError::Invalid(
            "evaluation loss: no data or an empty batch".into(),
        ));
    }
    let samples =
        DsmSampler::new(seed, cfg.schedule, cfg.t_min, cfg.weighting).draw_batch(data, 0, batch);
    let xs: Vec<Point> = samples.iter().map(|s| s.x_t).collect();
    let ts: Vec<f32> = samples.iter().map(|s| s.t).collect();
    let mut eps = vec![[0.0f32; 2]; batch];
    model.eps_per_point(&xs, &ts, &mut eps);
    let total: f64 = samples
        .iter()
        .zip(&eps)
        .map(|(s, e)| {
            let r = [(e[0] - s.eps[0]) as f64, (e[1] - s.eps[1]) as f64];
            s.weight as f64 * (r[0] * r[0] + r[1] * r[1])
        })
        .sum();
    Ok(total / batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_pairs() {
        let base = TrainConfig::default();
        for (a, b) in presets() {
            let [ca, cb] = configs(&base, a, b).unwrap();
            assert_eq!(differing_fields(&ca, &cb), vec![a.field()]);
            assert_eq!(a.read(&ca), a);
            assert_eq!(b.read(&cb), b);
        }
    }

    #[test]
    fn mismatched_or_equal_settings_are_refused() {
        let base = TrainConfig::default();
        let w = Setting::Weighting(Weighting::Uniform);
        let e = Setting::Embedding(Embedding::Scalar);
        assert!(configs(&base, w, e).is_err());
        assert!(configs(&base, w, w).is_err());
        assert!(
            configs(
                &base,
                Setting::Embedding(Embedding::Sinusoidal { dim: 3 }),
                e
            )
            .is_err()
        );
    }
}
