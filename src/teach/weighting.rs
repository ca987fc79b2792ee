//! Same loss, different samples: the lesson the loss curve cannot teach.
//!
//! Three networks learn Gaussian data, differing only in the loss weighting: the ε-loss
//! (`w = 1`, t uniform), the score-matching weight `w = 1/σ²` (t uniform) and the same loss
//! by importance sampling (t ~ π ∝ 1/σ²). Measured on one fixed batch in the 1/σ² scale
//! their losses end close together, but the weightings that favour small t leave large t
//! under-trained, and the probability-flow ODE, which has no noise to wash an error out,
//! carries a score error at large t all the way to its samples; the reverse SDE corrects much
//! of it on the way. The data being one Gaussian, everything has a closed form: the exact
//! score at every t (so the network's error can be drawn against t) and the true covariance
//! (so the samples' error is one number).

use serde::{Deserialize, Serialize};

use super::ablation::evaluation_loss;
use super::{Progress, Sweep, TeachError};
use crate::Point;
use crate::backend::{CpuTrainer, TrainBackend};
use crate::math::ScoreModel;
use crate::math::oracle::{Component, Oracle};
use crate::math::solvers::{SamplerConfig, SamplerKind, prior};
use crate::nn::{NetModel, TrainConfig, Weighting};

/// What to train and measure.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightingConfig {
    /// Everything but the weighting (shared by the three runs).
    pub base: TrainConfig,
    /// Optimiser steps per run.
    pub steps: u64,
    /// The Gaussian the data is drawn from.
    pub data: Component,
    /// Training points.
    pub data_points: usize,
    /// Samples per sampler and model.
    pub particles: usize,
    /// Heun steps of the PF-ODE.
    pub ode_steps: usize,
    /// Euler–Maruyama steps of the reverse SDE.
    pub sde_steps: usize,
    /// Times at which the score error is measured (log-spaced from t_min to 1).
    pub error_times: usize,
    pub seed: u32,
}

impl Default for WeightingConfig {
    fn default() -> Self {
        Self {
            base: TrainConfig::default(),
            steps: 20_000,
            data: Component {
                weight: 1.0,
                mean: [0.8, -0.4],
                cov: [[1.4, 0.6], [0.6, 0.6]],
            },
            data_points: 10_000,
            particles: 4_000,
            ode_steps: 100,
            sde_steps: 500,
            error_times: 16,
            seed: 11,
        }
    }
}

/// How far a cloud's moments are from the Gaussian's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MomentError {
    /// ‖mean − μ‖.
    pub mean: f64,
    /// ‖cov − Σ‖ (Frobenius).
    pub cov: f64,
}

impl MomentError {
    pub fn of(points: &[Point], truth: &Component) -> Self {
        let n = points.len().max(2) as f64;
        let m = points.iter().fold([0.0; 2], |m, p| {
            [m[0] + p[0] as f64 / n, m[1] + p[1] as f64 / n]
        });
        // Sample covariance [[xx, xy], [xy, yy]].
        let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
        for p in points {
            let d = [p[0] as f64 - m[0], p[1] as f64 - m[1]];
            xx += d[0] * d[0] / (n - 1.0);
            xy += d[0] * d[1] / (n - 1.0);
            yy += d[1] * d[1] / (n - 1.0);
        }
        let dm = [m[0] - truth.mean[0], m[1] - truth.mean[1]];
        let s = truth.cov;
        let frob = (xx - s[0][0]).powi(2)
            + (xy - s[0][1]).powi(2)
            + (xy - s[1][0]).powi(2)
            + (yy - s[1][1]).powi(2);
        Self {
            mean: dm[0].hypot(dm[1]),
            cov: frob.sqrt(),
        }
    }
}

/// One weighting's network, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightingRow {
    pub weighting: Weighting,
    /// The DSM loss of the EMA network on one fixed batch, in the 1/σ² scale (the same batch
    /// for every row).
    pub loss: f64,
    pub ode: MomentError,
    pub sde: MomentError,
    pub ode_samples: Vec<Point>,
    pub sde_samples: Vec<Point>,
    /// (t, E‖ε̂ − ε*‖²) with ε* = −σ ∇log p_t exact, x_t drawn from p_t.
    pub score_error: Vec<(f64, f64)>,
}

/// The three rows, and what an independent draw of the data scores (the sampling noise of the
/// moment estimates: no sampler can be told from the truth below it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightingReport {
    pub rows: Vec<WeightingRow>,
    pub floor: MomentError,
}

/// `n` draws of the Gaussian (Cholesky of its covariance times standard normals).
pub fn gaussian_draws(c: &Component, n: usize, seed: u32) -> Vec<Point> {
    let [[a, b], [_, d]] = c.cov;
    let l00 = a.sqrt();
    let l10 = b / l00;
    let l11 = (d - l10 * l10).max(0.0).sqrt();
    prior(n, seed)
        .into_iter()
        .map(|z| {
            let (z0, z1) = (z[0] as f64, z[1] as f64);
            [
                (c.mean[0] + l00 * z0) as f32,
                (c.mean[1] + l10 * z0 + l11 * z1) as f32,
            ]
        })
        .collect()
}

/// E‖ε̂ − ε*‖² at each of `times`, over x_t = α x₀ + σ ε with x₀ from `data`.
pub fn score_error(
    model: &dyn ScoreModel,
    exact: &Oracle,
    data: &[Point],
    times: &[f64],
    seed: u32,
) -> Vec<(f64, f64)> {
    let schedule = *exact.schedule();
    times
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let (a, s) = (schedule.alpha(t), schedule.sigma(t));
            let noise = prior(data.len(), seed.wrapping_add(k as u32));
            let xs: Vec<Point> = data
                .iter()
                .zip(&noise)
                .map(|(x, e)| {
                    [
                        (a * x[0] as f64 + s * e[0] as f64) as f32,
                        (a * x[1] as f64 + s * e[1] as f64) as f32,
                    ]
                })
                .collect();
            let mut learned = vec![[0.0f32; 2]; xs.len()];
            let mut truth = vec![[0.0f32; 2]; xs.len()];
            model.eps(&xs, t as f32, &mut learned);
            exact.eps(&xs, t as f32, &mut truth);
            let mse = learned
                .iter()
                .zip(&truth)
                .map(|(l, e)| {
                    let d = [(l[0] - e[0]) as f64, (l[1] - e[1]) as f64];
                    d[0] * d[0] + d[1] * d[1]
                })
                .sum::<f64>()
                / xs.len().max(1) as f64;
            (t, mse)
        })
        .collect()
}

/// Log-spaced times from `t_min` to 1.
pub fn error_times(t_min: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n)
        .map(|i| (t_min.ln() * (1.0 - i as f64 / (n - 1) as f64)).exp())
        .collect()
}

/// The three weightings, in the order of the lesson.
const ORDER: [Weighting; 3] = [
    Weighting::Uniform,
    Weighting::Importance,
    Weighting::InverseSigma2,
];
/// Training steps per `WeightingComparison::advance`.
const TRAIN_CHUNK: u64 = 250;

/// Trains the three networks one after another and measures each, in steps (a chunk of
/// training, or the measurement of one network), so that a browser's frame loop keeps
/// drawing; the report grows by a row after each network.
pub struct WeightingComparison {
    cfg: WeightingConfig,
    data: Vec<Point>,
    exact: Oracle,
    times: Vec<f64>,
    probe: Vec<Point>,
    report: WeightingReport,
    /// The run under way (index into `ORDER`) and its trainer.
    trainer: Option<CpuTrainer>,
}

impl WeightingComparison {
    pub fn new(cfg: &WeightingConfig) -> Result<Self, TeachError> {
        cfg.base.validate()?;
        if cfg.particles < 2 || cfg.data_points < 2 {
            return Err(TeachError::Invalid(
                "weighting lesson: too few particles or points".into(),
            ));
        }
        Ok(Self {
            data: gaussian_draws(&cfg.data, cfg.data_points, cfg.seed),
            exact: Oracle::new(vec![cfg.data], cfg.base.schedule),
            times: error_times(cfg.base.t_min as f64, cfg.error_times),
            probe: gaussian_draws(&cfg.data, 2_000, cfg.seed.wrapping_add(7)),
            report: WeightingReport {
                rows: Vec::new(),
                floor: MomentError::of(
                    &gaussian_draws(&cfg.data, cfg.particles, cfg.seed.wrapping_add(3)),
                    &cfg.data,
                ),
            },
            trainer: None,
            cfg: cfg.clone(),
        })
    }

    /// The rows measured so far.
    pub fn report(&self) -> &WeightingReport {
        &self.report
    }
}

impl Sweep for WeightingComparison {
    type Output = WeightingReport;

    /// One step; true when the three rows are in.
    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let k = self.report.rows.len();
        let Some(&weighting) = ORDER.get(k) else {
            return Ok(true);
        };
        let share = 1.0 / ORDER.len() as f64;
        let part = progress.sub(k as f64 * share, share);
        let cfg = &self.cfg;
        let Some(trainer) = self.trainer.as_mut() else {
            let run_cfg = TrainConfig {
                weighting,
                ..cfg.base.clone()
            };
            self.trainer = Some(CpuTrainer::new(run_cfg, &self.data)?);
            return Ok(false);
        };
        if trainer.steps_done() < cfg.steps {
            trainer.train(TRAIN_CHUNK.min(cfg.steps - trainer.steps_done()))?;
            part.tick(0.8 * trainer.steps_done() as f64 / cfg.steps.max(1) as f64)?;
            return Ok(false);
        }
        trainer.flush()?;
        let model: NetModel = trainer.ema_model()?;
        self.trainer = None;
        // One fixed batch in the 1/σ² scale measures all three.
        let judge = TrainConfig {
            weighting: Weighting::InverseSigma2,
            ..cfg.base.clone()
        };
        let loss = evaluation_loss(&model, &judge, &self.data, 20_000, cfg.seed ^ 0xE7A1)?;
        let run = |kind: SamplerKind, steps: usize| {
            crate::teach::sample_with_progress(
                &model,
                cfg.base.schedule,
                SamplerConfig {
                    kind,
                    steps,
                    t_min: cfg.base.t_min as f64,
                    seed: cfg.seed.wrapping_add(100),
                    ..SamplerConfig::default()
                },
                cfg.particles,
                Progress::none(),
            )
            .map(|(x, _)| x)
        };
        let ode_samples = run(SamplerKind::Heun, cfg.ode_steps)?;
        part.tick(0.9)?;
        let sde_samples = run(SamplerKind::Em, cfg.sde_steps)?;
        let score_error = score_error(
            &model,
            &self.exact,
            &self.probe,
            &self.times,
            cfg.seed ^ 0x5C0E,
        );
        self.report.rows.push(WeightingRow {
            weighting,
            loss,
            ode: MomentError::of(&ode_samples, &cfg.data),
            sde: MomentError::of(&sde_samples, &cfg.data),
            ode_samples,
            sde_samples,
            score_error,
        });
        part.tick(1.0)?;
        Ok(self.report.rows.len() == ORDER.len())
    }

    fn so_far(&self) -> Option<WeightingReport> {
        (!self.report.rows.is_empty()).then(|| self.report.clone())
    }
}

/// `WeightingComparison` run to the end; `on_row` gets the report after each row.
pub fn compare_weightings(
    cfg: &WeightingConfig,
    progress: Progress<'_>,
    on_row: &mut dyn FnMut(&WeightingReport),
) -> Result<WeightingReport, TeachError> {
    let mut cmp = WeightingComparison::new(cfg)?;
    loop {
        let rows = cmp.report().rows.len();
        let done = cmp.advance(progress)?;
        if cmp.report().rows.len() > rows {
            on_row(cmp.report());
        }
        if done {
            return Ok(cmp.report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_draws_have_the_asked_moments() {
        let c = WeightingConfig::default().data;
        let x = gaussian_draws(&c, 200_000, 3);
        let e = MomentError::of(&x, &c);
        assert!(e.mean < 0.01 && e.cov < 0.02, "{e:?}");
    }

    #[test]
    fn the_exact_score_has_no_error_and_times_span_t_min_to_one() {
        let c = WeightingConfig::default().data;
        let schedule = crate::math::Schedule::default();
        let exact = Oracle::new(vec![c], schedule);
        let times = error_times(1e-3, 5);
        assert!((times[0] - 1e-3).abs() < 1e-12 && (times[4] - 1.0).abs() < 1e-12);
        let data = gaussian_draws(&c, 500, 1);
        for (_, e) in score_error(&exact, &exact, &data, &times, 2) {
            assert!(e < 1e-10, "{e}");
        }
    }

    /// The lesson's numbers at its default size (about a minute on 2 cores):
    /// `cargo test --release --lib weighting_numbers -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn weighting_numbers() {
        let cfg = WeightingConfig::default();
        let start = web_time::Instant::now();
        let r = compare_weightings(&cfg, Progress::none(), &mut |_| {}).unwrap();
        println!("floor: mean {:.3} cov {:.3}", r.floor.mean, r.floor.cov);
        for row in &r.rows {
            let err: Vec<String> = row
                .score_error
                .iter()
                .map(|(t, e)| format!("{t:.3}:{e:.4}"))
                .collect();
            println!(
                "{:<15} loss {:.3}  ODE cov {:.3} mean {:.3}  SDE cov {:.3} mean {:.3}\n  {}",
                row.weighting.name(),
                row.loss,
                row.ode.cov,
                row.ode.mean,
                row.sde.cov,
                row.sde.mean,
                err.join(" ")
            );
        }
        println!("{:.1} s", start.elapsed().as_secs_f64());
    }

    #[test]
    fn three_rows_arrive_one_at_a_time() {
        let cfg = WeightingConfig {
            steps: 20,
            data_points: 300,
            particles: 200,
            ode_steps: 5,
            sde_steps: 5,
            error_times: 3,
            ..WeightingConfig::default()
        };
        let mut sizes = Vec::new();
        let r =
            compare_weightings(&cfg, Progress::none(), &mut |r| sizes.push(r.rows.len())).unwrap();
        assert_eq!(sizes, [1, 2, 3]);
        let names: Vec<_> = r.rows.iter().map(|r| r.weighting).collect();
        assert_eq!(
            names,
            [
                Weighting::Uniform,
                Weighting::Importance,
                Weighting::InverseSigma2
            ]
        );
        for row in &r.rows {
            assert_eq!(row.ode_samples.len(), 200);
            assert_eq!(row.score_error.len(), 3);
            assert!(row.loss.is_finite());
        }
    }
}
