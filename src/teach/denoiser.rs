//! The ideal denoiser and memorisation.
//!
//! The exact score of the training points themselves (`Oracle::empirical`: a mixture of
//! Gaussians N(α x_i, σ² I), one per point) is the minimiser of the DSM loss on that training
//! set. Sampling with it gives the training points back (up to σ(t_min)): a perfect optimiser
//! memorises. A network generalises because it cannot fit that score exactly. The distance
//! from each sample to its nearest training point shows which of the two happens: compared
//! with fresh data from the same distribution (whose distance is set by the data's density),
//! memorised samples sit much closer, and shrinking the training set makes a network drift
//! toward that side.

use serde::{Deserialize, Serialize};

use super::{Progress, Sweep, TeachError, check_sampling};
use crate::Point;
use crate::math::ScoreModel;
use crate::math::metrics::nearest_distances;
use crate::math::oracle::Oracle;
use crate::math::schedule::Schedule;
use crate::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use crate::train::SharedModel;

/// The exact score of the training set: the "ideal denoiser".
pub fn ideal_denoiser(train: &[Point], schedule: Schedule) -> Oracle {
    Oracle::empirical(train, schedule)
}

/// Counts of values in `bins` equal bins over `[0, max]`; larger values are `overflow`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub max: f32,
    pub counts: Vec<u32>,
    pub overflow: u32,
}

impl Histogram {
    pub fn new(values: &[f32], bins: usize, max: f32) -> Self {
        let bins = bins.max(1);
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let mut counts = vec![0u32; bins];
        let mut overflow = 0;
        for &v in values {
            let k = (v / max * bins as f32).floor();
            if k >= 0.0 && (k as usize) < bins {
                counts[k as usize] += 1;
            } else if k >= 0.0 {
                overflow += 1;
            }
        }
        Self {
            max,
            counts,
            overflow,
        }
    }

    pub fn bin_width(&self) -> f32 {
        self.max / self.counts.len() as f32
    }
}

/// Quantiles of the nearest-training-point distances.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistanceSummary {
    pub median: f32,
    pub p90: f32,
    pub mean: f32,
}

impl DistanceSummary {
    pub fn of(distances: &[f32]) -> Self {
        let mut d: Vec<f32> = distances
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if d.is_empty() {
            return Self {
                median: f32::NAN,
                p90: f32::NAN,
                mean: f32::NAN,
            };
        }
        d.sort_unstable_by(f32::total_cmp);
        let q = |p: f32| d[((p * d.len() as f32) as usize).min(d.len() - 1)];
        Self {
            median: q(0.5),
            p90: q(0.9),
            mean: d.iter().sum::<f32>() / d.len() as f32,
        }
    }
}

/// One column of the view: points and how far they are from the training set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub samples: Vec<Point>,
    pub distances: Vec<f32>,
    pub summary: DistanceSummary,
    pub histogram: Histogram,
    /// Score evaluations spent (0 for data).
    pub nfe: usize,
}

/// What to sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenoiserConfig {
    /// The same sampler and noise for both models.
    pub sampler: SamplerConfig,
    pub particles: usize,
    pub bins: usize,
}

impl Default for DenoiserConfig {
    fn default() -> Self {
        Self {
            // DPM-Solver++ integrates the linear part exactly and steps evenly in λ, so the
            // stiff pull of the point masses near t_min (a score ~ 1/σ²) needs no tiny steps.
            sampler: SamplerConfig {
                kind: SamplerKind::Dpm2m,
                steps: 50,
                ..SamplerConfig::default()
            },
            particles: 1000,
            bins: 40,
        }
    }
}

/// The ideal denoiser, the network, and fresh data, each measured against the training set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenoiserReport {
    pub ideal: Side,
    pub learned: Side,
    /// Held-out data: how far genuinely new points are from the training set.
    pub held_out: Side,
}

impl DenoiserReport {
    /// Median distance of the network's samples over that of fresh data: about 1 when it
    /// generalises, near 0 when it reproduces its training points.
    pub fn learned_memorisation_ratio(&self) -> f32 {
        self.learned.summary.median / self.held_out.summary.median
    }

    /// The same ratio for the ideal denoiser (near 0 by construction).
    pub fn ideal_memorisation_ratio(&self) -> f32 {
        self.ideal.summary.median / self.held_out.summary.median
    }
}

/// Samples with the ideal denoiser and with `learned` (same sampler, same starting noise)
/// and measures each point's distance to the nearest of `train`. The histograms share their
/// range (the 99th percentile of all distances) so they can be drawn on one axis.
pub fn compare(
    train: &[Point],
    held_out: &[Point],
    learned: &dyn ScoreModel,
    schedule: Schedule,
    cfg: &DenoiserConfig,
    progress: Progress<'_>,
) -> Result<DenoiserReport, TeachError> {
    check(train, held_out, &schedule, cfg)?;
    let ideal = ideal_denoiser(train, schedule);
    let mut runs = Runs::new(schedule, cfg);
    progress.tick(0.0)?;
    while !runs.step(&ideal, learned) {
        progress.tick(0.95 * runs.fraction())?;
    }
    let report = runs.report(train, held_out, cfg);
    progress.tick(1.0)?;
    Ok(report)
}

/// [`compare`] as a [`Sweep`]: both runs take one solver step per `advance` (in a browser the
/// page keeps drawing meanwhile), then the distances are measured.
pub struct DenoiserSweep {
    train: Vec<Point>,
    held_out: Vec<Point>,
    learned: SharedModel,
    ideal: Oracle,
    cfg: DenoiserConfig,
    runs: Option<Runs>,
    report: Option<DenoiserReport>,
}

impl DenoiserSweep {
    pub fn new(
        train: Vec<Point>,
        held_out: Vec<Point>,
        learned: SharedModel,
        schedule: Schedule,
        cfg: DenoiserConfig,
    ) -> Result<Self, TeachError> {
        check(&train, &held_out, &schedule, &cfg)?;
        Ok(Self {
            ideal: ideal_denoiser(&train, schedule),
            runs: Some(Runs::new(schedule, &cfg)),
            train,
            held_out,
            learned,
            cfg,
            report: None,
        })
    }
}

impl Sweep for DenoiserSweep {
    type Output = DenoiserReport;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let Some(runs) = self.runs.as_mut() else {
            return Ok(true);
        };
        if !runs.step(&self.ideal, self.learned.as_ref()) {
            progress.tick(0.95 * runs.fraction())?;
            return Ok(false);
        }
        if let Some(runs) = self.runs.take() {
            self.report = Some(runs.report(&self.train, &self.held_out, &self.cfg));
        }
        Ok(true)
    }

    fn so_far(&self) -> Option<DenoiserReport> {
        self.report.clone()
    }
}

fn check(
    train: &[Point],
    held_out: &[Point],
    schedule: &Schedule,
    cfg: &DenoiserConfig,
) -> Result<(), TeachError> {
    check_sampling(schedule, cfg.sampler.t_min, cfg.particles, "denoiser")?;
    if train.is_empty() || held_out.is_empty() {
        return Err(TeachError::Invalid(
            "denoiser: the training and held-out sets must not be empty".into(),
        ));
    }
    Ok(())
}

/// The ideal denoiser's run and the learned model's, from the same noise with the same
/// sampler, advanced together.
struct Runs {
    ideal: (Sampler, Vec<Point>),
    learned: (Sampler, Vec<Point>),
}

impl Runs {
    fn new(schedule: Schedule, cfg: &DenoiserConfig) -> Self {
        let run = || {
            (
                Sampler::new(schedule, cfg.sampler),
                prior(cfg.particles, cfg.sampler.seed),
            )
        };
        Self {
            ideal: run(),
            learned: run(),
        }
    }

    /// One solver step of each; true once both are done.
    fn step(&mut self, ideal: &dyn ScoreModel, learned: &dyn ScoreModel) -> bool {
        for ((sampler, x), model) in [(&mut self.ideal, ideal), (&mut self.learned, learned)] {
            if !sampler.is_done() {
                sampler.step(model, x);
            }
        }
        self.ideal.0.is_done() && self.learned.0.is_done()
    }

    fn fraction(&self) -> f64 {
        self.ideal.0.steps_done() as f64 / self.ideal.0.config().steps.max(1) as f64
    }

    fn report(self, train: &[Point], held_out: &[Point], cfg: &DenoiserConfig) -> DenoiserReport {
        let (ideal_nfe, learned_nfe) = (self.ideal.0.nfe(), self.learned.0.nfe());
        let (ideal_x, learned_x) = (self.ideal.1, self.learned.1);
        let d_ideal = nearest_distances(&ideal_x, train);
        let d_learned = nearest_distances(&learned_x, train);
        let d_held = nearest_distances(held_out, train);
        let mut all: Vec<f32> = d_ideal
            .iter()
            .chain(&d_learned)
            .chain(&d_held)
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        all.sort_unstable_by(f32::total_cmp);
        let max = all
            .get(((all.len() as f32 * 0.99) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(1.0);
        let side = |samples: Vec<Point>, distances: Vec<f32>, nfe: usize| Side {
            summary: DistanceSummary::of(&distances),
            histogram: Histogram::new(&distances, cfg.bins, max),
            samples,
            distances,
            nfe,
        };
        DenoiserReport {
            ideal: side(ideal_x, d_ideal, ideal_nfe),
            learned: side(learned_x, d_learned, learned_nfe),
            held_out: side(held_out.to_vec(), d_held, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_and_overflow() {
        let h = Histogram::new(&[0.0, 0.1, 0.49, 0.5, 0.99, 1.0, 7.0, f32::NAN], 2, 1.0);
        assert_eq!(h.counts, vec![3, 2]);
        assert_eq!(h.overflow, 2);
        assert_eq!(h.bin_width(), 0.5);
    }

    #[test]
    fn summary_quantiles() {
        let v: Vec<f32> = (1..=10).map(|i| i as f32).collect();
        let s = DistanceSummary::of(&v);
        assert_eq!(s.median, 6.0);
        assert_eq!(s.p90, 10.0);
        assert_eq!(s.mean, 5.5);
        assert!(DistanceSummary::of(&[]).median.is_nan());
    }
}
