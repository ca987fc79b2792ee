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

use super::{Progress, TeachError, check_sampling, sample_with_progress};
use crate::Point;
use crate::math::ScoreModel;
use crate::math::metrics::nearest_distances;
use crate::math::oracle::Oracle;
use crate::math::schedule::Schedule;
use crate::math::solvers::{SamplerConfig, SamplerKind};

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
    check_sampling(&schedule, cfg.sampler.t_min, cfg.particles, "denoiser")?;
    if train.is_empty() || held_out.is_empty() {
        return Err(TeachError::Invalid(
            "denoiser: the training and held-out sets must not be empty".into(),
        ));
    }
    let ideal = ideal_denoiser(train, schedule);
    let (ideal_x, ideal_nfe) = sample_with_progress(
        &ideal,
        schedule,
        cfg.sampler,
        cfg.particles,
        progress.sub(0.0, 0.5),
    )?;
    let (learned_x, learned_nfe) = sample_with_progress(
        learned,
        schedule,
        cfg.sampler,
        cfg.particles,
        progress.sub(0.5, 0.45),
    )?;
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
    let report = DenoiserReport {
        ideal: side(ideal_x, d_ideal, ideal_nfe),
        learned: side(learned_x, d_learned, learned_nfe),
        held_out: side(held_out.to_vec(), d_held, 0),
    };
    progress.tick(1.0)?;
    Ok(report)
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
