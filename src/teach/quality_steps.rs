//! Sample quality against the number of score evaluations (NFE), for every sampler.
//!
//! Run with the learned network, the curve mixes two errors: the network's (a floor no solver
//! can go below) and the solver's discretisation error (which falls with NFE). Run with the
//! exact score of a mixture (`math::oracle`), only the second is left, so the two curves side
//! by side tell them apart. This is where the claim of DDIM and DPM-Solver shows: a
//! second-order ODE solver (Heun, DPM-Solver++(2M)) reaches a quality with fewer evaluations
//! than Euler–Maruyama, a first-order method that must also average out its own noise.
//!
//! Quality is sliced W₂ and energy distance against held-out data, always next to their floor:
//! the same distance between two independent draws of the data of the same size. With a
//! thousand particles that floor is coarse (on 8 Gaussians, Euler–Maruyama reaches it at about
//! 20 NFE, DPM-Solver++(2M) at about 10), so [`discretisation_error`] adds the measurement
//! without sample noise: the distance to a converged solve from the same starting noise, whose
//! log-log slope is the solver's order.

use serde::{Deserialize, Serialize};

use super::{Progress, Sweep, TeachError, check_sampling, sample_with_progress};
use crate::Point;
use crate::math::ScoreModel;
use crate::math::metrics::{energy_distance, sliced_w2};
use crate::math::schedule::Schedule;
use crate::math::solvers::{SamplerConfig, SamplerKind};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityConfig {
    pub samplers: Vec<SamplerKind>,
    /// Target NFEs (a sampler with k evaluations per step runs ⌊NFE/k⌋ steps; too few: skipped).
    pub nfe: Vec<usize>,
    /// Particles per run (compare with held-out data of the same size).
    pub particles: usize,
    pub t_min: f64,
    /// DDIM's η.
    pub eta: f64,
    /// The corrector's signal-to-noise ratio (predictor–corrector).
    pub snr: f64,
    /// The same starting noise for every run, so curves differ only by the sampler.
    pub seed: u32,
    /// Runs per point (seeds `seed`, `seed + 1`, …), averaged: smoother curves for the same
    /// particle count, at `repeats` times the cost.
    pub repeats: usize,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            samplers: SamplerKind::ALL.to_vec(),
            nfe: nfe_grid(1000, 4),
            particles: 1000,
            t_min: 1e-3,
            eta: 0.0,
            snr: 0.16,
            seed: 0,
            repeats: 1,
        }
    }
}

/// About `per_decade` log-spaced integers from 1 to `max_nfe` (both included), rounded and
/// without repeats: the x axis of the chart.
pub fn nfe_grid(max_nfe: usize, per_decade: usize) -> Vec<usize> {
    let max_nfe = max_nfe.max(1);
    let per_decade = per_decade.max(1) as f64;
    let decades = (max_nfe as f64).log10();
    let points = (decades * per_decade).ceil() as usize;
    let mut grid: Vec<usize> = (0..=points)
        .map(|i| {
            let v = 10f64.powf(i as f64 / per_decade).round() as usize;
            v.clamp(1, max_nfe)
        })
        .collect();
    grid.push(max_nfe);
    grid.sort_unstable();
    grid.dedup();
    grid
}

/// The distances between two independent draws of the data: the best any sampler can show.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    pub sw2: f64,
    pub energy: f64,
}

impl Floor {
    /// The floor between `held_out` and another independent draw of the same size.
    pub fn between(held_out: &[Point], other_draw: &[Point]) -> Self {
        Self {
            sw2: sliced_w2(held_out, other_draw),
            energy: energy_distance(held_out, other_draw),
        }
    }

    /// The mean floor over several independent draws (use as many as
    /// [`QualityConfig::repeats`], so the floor is averaged like the curves).
    pub fn between_many(held_out: &[Point], other_draws: &[Vec<Point>]) -> Self {
        let k = other_draws.len().max(1) as f64;
        let each: Vec<Floor> = other_draws
            .iter()
            .map(|d| Floor::between(held_out, d))
            .collect();
        Self {
            sw2: each.iter().map(|f| f.sw2).sum::<f64>() / k,
            energy: each.iter().map(|f| f.energy).sum::<f64>() / k,
        }
    }
}

/// One run of one sampler.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityPoint {
    pub steps: usize,
    /// Evaluations actually spent (per run).
    pub nfe: usize,
    /// Means over the repeats.
    pub sw2: f64,
    pub energy: f64,
}

/// One sampler's curve, by increasing NFE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityCurve {
    pub sampler: SamplerKind,
    pub points: Vec<QualityPoint>,
}

impl QualityCurve {
    /// The fewest evaluations at which sliced W₂ is at most `sw2`, if any run got there.
    pub fn nfe_to_reach(&self, sw2: f64) -> Option<usize> {
        self.points.iter().find(|p| p.sw2 <= sw2).map(|p| p.nfe)
    }
}

/// Every curve and the floor they are drawn against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub curves: Vec<QualityCurve>,
    pub floor: Floor,
}

impl QualityReport {
    pub fn curve(&self, sampler: SamplerKind) -> Option<&QualityCurve> {
        self.curves.iter().find(|c| c.sampler == sampler)
    }
}

/// Step counts to run for one sampler: one per target NFE it can meet, no repeats.
fn steps_for(kind: SamplerKind, nfe: &[usize]) -> Vec<usize> {
    let per = kind.nfe_per_step();
    let mut steps: Vec<usize> = nfe.iter().map(|n| n / per).filter(|&s| s >= 1).collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Samples `cfg.particles` points with each sampler at each NFE of the grid (`cfg.repeats`
/// times) and measures them against `held_out`. Progress is proportional to the evaluations
/// spent.
pub fn quality_vs_nfe(
    model: &dyn ScoreModel,
    schedule: Schedule,
    held_out: &[Point],
    floor: Floor,
    cfg: &QualityConfig,
    progress: Progress<'_>,
) -> Result<QualityReport, TeachError> {
    check_sampling(&schedule, cfg.t_min, cfg.particles, "quality vs steps")?;
    if held_out.is_empty() {
        return Err(TeachError::Invalid(
            "quality vs steps: no held-out data".into(),
        ));
    }
    let plan: Vec<(SamplerKind, Vec<usize>)> = cfg
        .samplers
        .iter()
        .map(|&k| (k, steps_for(k, &cfg.nfe)))
        .collect();
    let total: usize = plan
        .iter()
        .map(|(k, s)| s.iter().sum::<usize>() * k.nfe_per_step())
        .sum();
    let repeats = cfg.repeats.max(1);
    let total = (total * repeats).max(1) as f64;
    let mut done = 0usize;
    let mut curves = Vec::with_capacity(plan.len());
    for (kind, steps) in plan {
        let mut points = Vec::with_capacity(steps.len());
        for steps in steps {
            let work = steps * kind.nfe_per_step() * repeats;
            let sub = progress.sub(done as f64 / total, work as f64 / total);
            points.push(quality_point(
                model, schedule, held_out, kind, steps, cfg, sub,
            )?);
            done += work;
        }
        curves.push(QualityCurve {
            sampler: kind,
            points,
        });
    }
    progress.tick(1.0)?;
    Ok(QualityReport { curves, floor })
}

/// One point of a curve: `kind` with `steps` steps, `cfg.repeats` runs averaged.
pub fn quality_point(
    model: &dyn ScoreModel,
    schedule: Schedule,
    held_out: &[Point],
    kind: SamplerKind,
    steps: usize,
    cfg: &QualityConfig,
    progress: Progress<'_>,
) -> Result<QualityPoint, TeachError> {
    let repeats = cfg.repeats.max(1);
    let (mut sw2, mut energy, mut nfe) = (0.0, 0.0, 0);
    for r in 0..repeats {
        let sub = progress.sub(r as f64 / repeats as f64, 1.0 / repeats as f64);
        let sampler = SamplerConfig {
            kind,
            steps,
            t_min: cfg.t_min,
            eta: cfg.eta,
            snr: cfg.snr,
            langevin_step: None,
            seed: cfg.seed.wrapping_add(r as u32),
        };
        let (x, spent) = sample_with_progress(model, schedule, sampler, cfg.particles, sub)?;
        sw2 += sliced_w2(&x, held_out) / repeats as f64;
        energy += energy_distance(&x, held_out) / repeats as f64;
        nfe = spent;
    }
    Ok(QualityPoint {
        steps,
        nfe,
        sw2,
        energy,
    })
}

/// The two charts of the view: the learned network (once there is one) and the exact score,
/// same grid and noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityComparison {
    pub learned: Option<QualityReport>,
    pub exact: QualityReport,
}

/// A shared score model (the app's networks and exact scores).
pub type SharedScore = std::sync::Arc<dyn ScoreModel + Send + Sync>;

/// What one [`QualitySweep::advance`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swept {
    /// Measured one point of a curve.
    Point,
    /// Measured the last point of a sampler: its curves (learned and exact) are complete.
    Sampler,
    /// Nothing was left.
    Done,
}

/// Quality vs NFE for the network and the exact score, one point at a time: each
/// [`QualitySweep::advance`] samples one sampler at one step count (all repeats), so the
/// sweep can run in time slices (a browser tab's frames) and show its curves as they grow.
/// For each sampler the network's curve comes first, then the exact score's.
pub struct QualitySweep {
    learned: Option<SharedScore>,
    exact: SharedScore,
    schedule: Schedule,
    held_out: Vec<Point>,
    cfg: QualityConfig,
    /// (sampler, on the network?, steps) in order.
    plan: Vec<(SamplerKind, bool, usize)>,
    next: usize,
    done_work: usize,
    total_work: usize,
    so_far: QualityComparison,
}

impl QualitySweep {
    pub fn new(
        learned: Option<SharedScore>,
        exact: SharedScore,
        schedule: Schedule,
        held_out: Vec<Point>,
        floor: Floor,
        cfg: QualityConfig,
    ) -> Result<Self, TeachError> {
        check_sampling(&schedule, cfg.t_min, cfg.particles, "quality vs steps")?;
        if held_out.is_empty() {
            return Err(TeachError::Invalid(
                "quality vs steps: no held-out data".into(),
            ));
        }
        let models: &[bool] = if learned.is_some() {
            &[true, false]
        } else {
            &[false]
        };
        let mut plan: Vec<(SamplerKind, bool, usize)> = Vec::new();
        for &kind in &cfg.samplers {
            for &on_network in models {
                for steps in steps_for(kind, &cfg.nfe) {
                    plan.push((kind, on_network, steps));
                }
            }
        }
        let work = |&(k, _, s): &(SamplerKind, bool, usize)| s * k.nfe_per_step();
        let total_work = plan.iter().map(work).sum::<usize>().max(1);
        let so_far = QualityComparison {
            learned: learned.is_some().then(|| QualityReport {
                curves: Vec::new(),
                floor,
            }),
            exact: QualityReport {
                curves: Vec::new(),
                floor,
            },
        };
        Ok(Self {
            learned,
            exact,
            schedule,
            held_out,
            cfg,
            plan,
            next: 0,
            done_work: 0,
            total_work,
            so_far,
        })
    }

    /// Measures the next point; `progress` covers the whole sweep.
    pub fn advance(&mut self, progress: Progress<'_>) -> Result<Swept, TeachError> {
        let Some(&(kind, on_network, steps)) = self.plan.get(self.next) else {
            progress.tick(1.0)?;
            return Ok(Swept::Done);
        };
        let work = steps * kind.nfe_per_step();
        let sub = progress.sub(
            self.done_work as f64 / self.total_work as f64,
            work as f64 / self.total_work as f64,
        );
        let model = match (&self.learned, on_network) {
            (Some(m), true) => m,
            _ => &self.exact,
        };
        let point = quality_point(
            model.as_ref(),
            self.schedule,
            &self.held_out,
            kind,
            steps,
            &self.cfg,
            sub,
        )?;
        let report = match (&mut self.so_far.learned, on_network) {
            (Some(r), true) => r,
            _ => &mut self.so_far.exact,
        };
        match report.curves.last_mut() {
            Some(c) if c.sampler == kind => c.points.push(point),
            _ => report.curves.push(QualityCurve {
                sampler: kind,
                points: vec![point],
            }),
        }
        self.next += 1;
        self.done_work += work;
        let sampler_done = self.plan.get(self.next).is_none_or(|p| p.0 != kind);
        Ok(if sampler_done {
            Swept::Sampler
        } else {
            Swept::Point
        })
    }

    /// The curves measured so far.
    pub fn so_far(&self) -> &QualityComparison {
        &self.so_far
    }

    pub fn into_result(self) -> QualityComparison {
        self.so_far
    }
}

/// As a view's job: done once nothing is left; every curve so far to show.
impl Sweep for QualitySweep {
    type Output = QualityComparison;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        Ok(QualitySweep::advance(self, progress)? == Swept::Done)
    }

    fn so_far(&self) -> Option<QualityComparison> {
        Some(QualitySweep::so_far(self).clone())
    }
}

/// The whole [`QualitySweep`] in one call; `on_sampler` gets every curve so far after each
/// sampler (learned and exact).
#[allow(clippy::too_many_arguments)]
pub fn learned_and_exact(
    learned: Option<SharedScore>,
    exact: SharedScore,
    schedule: Schedule,
    held_out: &[Point],
    floor: Floor,
    cfg: &QualityConfig,
    progress: Progress<'_>,
    on_sampler: &mut dyn FnMut(&QualityComparison),
) -> Result<QualityComparison, TeachError> {
    let mut sweep = QualitySweep::new(
        learned,
        exact,
        schedule,
        held_out.to_vec(),
        floor,
        cfg.clone(),
    )?;
    loop {
        match sweep.advance(progress)? {
            Swept::Point => {}
            Swept::Sampler => on_sampler(sweep.so_far()),
            Swept::Done => return Ok(sweep.into_result()),
        }
    }
}

/// The pure discretisation error of a deterministic sampler: the root-mean-square distance
/// between its particles after N steps and after `reference_steps` steps, from the same prior.
/// No data and no sample noise enter, so the log-log slope against NFE is the solver's order
/// (Euler and DDIM 1, Heun and DPM-Solver++(2M) 2, RK4 4) once the steps are small enough.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorPoint {
    pub steps: usize,
    pub nfe: usize,
    pub rms_error: f64,
}

/// [`ErrorPoint`]s of `kind` at each step count (stochastic samplers are refused: their
/// noise differs between step counts, so they have no common path to compare).
#[allow(clippy::too_many_arguments)]
pub fn discretisation_error(
    model: &dyn ScoreModel,
    schedule: Schedule,
    kind: SamplerKind,
    steps: &[usize],
    reference_steps: usize,
    particles: usize,
    t_min: f64,
    progress: Progress<'_>,
) -> Result<Vec<ErrorPoint>, TeachError> {
    check_sampling(&schedule, t_min, particles, "discretisation error")?;
    if kind.is_stochastic() {
        return Err(TeachError::Invalid(format!(
            "discretisation error: {} is stochastic",
            kind.label()
        )));
    }
    let cfg = |steps: usize| SamplerConfig {
        kind,
        steps,
        t_min,
        eta: 0.0,
        ..SamplerConfig::default()
    };
    let (reference, _) = sample_with_progress(
        model,
        schedule,
        cfg(reference_steps.max(1)),
        particles,
        progress.sub(0.0, 0.5),
    )?;
    let mut out = Vec::with_capacity(steps.len());
    for (i, &n) in steps.iter().enumerate() {
        let sub = progress.sub(
            0.5 + 0.5 * i as f64 / steps.len() as f64,
            0.5 / steps.len() as f64,
        );
        let (x, nfe) = sample_with_progress(model, schedule, cfg(n.max(1)), particles, sub)?;
        let mse = x
            .iter()
            .zip(&reference)
            .map(|(a, b)| ((a[0] - b[0]) as f64).powi(2) + ((a[1] - b[1]) as f64).powi(2))
            .sum::<f64>()
            / particles as f64;
        out.push(ErrorPoint {
            steps: n.max(1),
            nfe,
            rms_error: mse.sqrt(),
        });
    }
    Ok(out)
}

/// The least-squares slope of log error against log NFE, negated: the observed order.
pub fn observed_order(points: &[ErrorPoint]) -> f64 {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.rms_error > 0.0 && p.nfe > 0)
        .map(|p| ((p.nfe as f64).ln(), p.rms_error.ln()))
        .collect();
    let n = xy.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    -sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_measures_one_point_per_advance_and_matches_the_whole_run() {
        use crate::math::oracle::{Component, Oracle};
        let schedule = Schedule::default();
        let exact: SharedScore = std::sync::Arc::new(Oracle::new(
            vec![Component {
                weight: 1.0,
                mean: [0.2, 0.1],
                cov: [[0.5, 0.0], [0.0, 0.5]],
            }],
            schedule,
        ));
        let held_out = crate::math::solvers::prior(150, 3);
        let cfg = QualityConfig {
            samplers: vec![SamplerKind::Heun, SamplerKind::Em],
            nfe: vec![2, 6, 12],
            particles: 150,
            ..QualityConfig::default()
        };
        let floor = Floor::between(&held_out, &crate::math::solvers::prior(150, 4));
        let mut sweep = QualitySweep::new(
            None,
            std::sync::Arc::clone(&exact),
            schedule,
            held_out.clone(),
            floor,
            cfg.clone(),
        )
        .unwrap();
        let mut points = 0;
        loop {
            let step = sweep.advance(Progress::none()).unwrap();
            if step == Swept::Done {
                break;
            }
            points += 1;
            let measured: usize = sweep
                .so_far()
                .exact
                .curves
                .iter()
                .map(|c| c.points.len())
                .sum();
            assert_eq!(measured, points);
        }
        // Heun: 1, 3, 6 steps; Euler–Maruyama: 2, 6, 12.
        assert_eq!(points, 6);
        let whole = quality_vs_nfe(
            exact.as_ref(),
            schedule,
            &held_out,
            floor,
            &cfg,
            Progress::none(),
        )
        .unwrap();
        assert_same_report(&sweep.into_result().exact, &whole);
    }

    /// The metrics sum in parallel, so two runs of the same sampling agree to rounding only.
    fn assert_same_curve(a: &QualityCurve, b: &QualityCurve) {
        assert_eq!(a.sampler, b.sampler);
        assert_eq!(a.points.len(), b.points.len());
        for (p, q) in a.points.iter().zip(&b.points) {
            assert_eq!((p.steps, p.nfe), (q.steps, q.nfe));
            for (x, y) in [(p.sw2, q.sw2), (p.energy, q.energy)] {
                assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{p:?} vs {q:?}");
            }
        }
    }

    fn assert_same_report(a: &QualityReport, b: &QualityReport) {
        assert_eq!(a.floor, b.floor);
        assert_eq!(a.curves.len(), b.curves.len());
        for (c, d) in a.curves.iter().zip(&b.curves) {
            assert_same_curve(c, d);
        }
    }

    #[test]
    fn learned_and_exact_hands_over_each_sampler_as_it_finishes() {
        use crate::math::oracle::{Component, Oracle};
        let schedule = Schedule::default();
        let gaussian = || {
            Oracle::new(
                vec![Component {
                    weight: 1.0,
                    mean: [0.5, -0.5],
                    cov: [[0.3, 0.0], [0.0, 0.3]],
                }],
                schedule,
            )
        };
        let (learned, exact): (SharedScore, SharedScore) = (
            std::sync::Arc::new(gaussian()),
            std::sync::Arc::new(gaussian()),
        );
        let held_out = crate::math::solvers::prior(200, 9);
        let cfg = QualityConfig {
            samplers: vec![SamplerKind::Heun, SamplerKind::Em, SamplerKind::Ddim],
            nfe: vec![4, 10],
            particles: 200,
            ..QualityConfig::default()
        };
        let floor = Floor::between(&held_out, &crate::math::solvers::prior(200, 10));
        let mut seen = Vec::new();
        let all = learned_and_exact(
            Some(learned),
            exact,
            schedule,
            &held_out,
            floor,
            &cfg,
            Progress::none(),
            &mut |c| seen.push(c.clone()),
        )
        .unwrap();
        let sizes: Vec<_> = seen.iter().map(|c| c.exact.curves.len()).collect();
        assert_eq!(sizes, [1, 2, 3]);
        assert_eq!(seen.last(), Some(&all));
        let learned = all.learned.as_ref().unwrap();
        for (i, k) in cfg.samplers.iter().enumerate() {
            assert_eq!(learned.curves[i].sampler, *k);
            // The same model on both sides, same noise: the same curve.
            assert_same_curve(&learned.curves[i], &all.exact.curves[i]);
        }
    }

    #[test]
    fn grid_is_log_spaced_and_covers_the_range() {
        let g = nfe_grid(1000, 3);
        assert_eq!(g.first(), Some(&1));
        assert_eq!(g.last(), Some(&1000));
        assert!(g.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(g, vec![1, 2, 5, 10, 22, 46, 100, 215, 464, 1000]);
        assert_eq!(nfe_grid(0, 0), vec![1]);
    }

    #[test]
    fn two_evaluation_samplers_skip_nfe_one() {
        assert_eq!(steps_for(SamplerKind::Heun, &[1, 2, 5]), vec![1, 2]);
        assert_eq!(steps_for(SamplerKind::Rk4, &[1, 2, 5, 10]), vec![1, 2]);
        assert_eq!(steps_for(SamplerKind::Em, &[1, 2, 2, 5]), vec![1, 2, 5]);
    }
}
