//! Why the score, and why the reverse SDE.
//!
//! (a) **Naive reversal.** Running the forward process backwards without the score,
//! `dx = −½β x dt` from t = 1 down to t_min (optionally with its noise `√β dW̄`), is the
//! inverse heat equation: the forward process damps every Fourier mode k of the density by
//! about e^{−k² t}, so undoing it multiplies by e^{+k² t} and amplifies any error at high
//! frequency without bound — an ill-posed problem. Here the drift alone just rescales the
//! noise by α(t_min)/α(1) (about 150 for the default schedule): the particles fly apart
//! instead of forming the data. Anderson's reverse SDE adds the term −β ∇log p_t, which
//! supplies exactly the information the forward process destroyed.
//!
//! (b) **Langevin dynamics.** `x ← x + δ s(x) + √(2δ) z` samples from p when run long enough,
//! but with the score at t_min only it fails twice: the learned score is poor
//! in low-density regions, and particles cannot cross between separated modes, so the mode
//! weights come out as the share of the start that fell into each basin. Annealed Langevin
//! (Song & Ermon 2019) runs a few steps at each of a decreasing sequence of noise levels
//! (uniform in λ = log(α/σ)), with step δ_l ∝ σ_l²: at high noise the modes overlap and the weights equilibrate, and they
//! are carried down as the noise shrinks. The reverse SDE does the same job in one pass.

use serde::{Deserialize, Serialize};

use super::{Progress, Sweep, TeachError, ZeroScore, check_sampling};
use crate::Point;
use crate::math::ScoreModel;
use crate::math::rng::normal2;
use crate::math::schedule::Schedule;
use crate::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use crate::train::SharedModel;

/// The RNG stream of annealed Langevin's noise (`math::rng` keys draws by stream; this one is
/// far from the streams listed there).
pub const STREAM_ANNEALED: u32 = 0x414E_4E4C;

/// One sampler run: the final particles and a few snapshots for the animation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReverseRun {
    pub samples: Vec<Point>,
    /// (t, particles) after every few steps, starting with the prior; empty unless asked for.
    pub frames: Vec<(f64, Vec<Point>)>,
    pub nfe: usize,
}

/// The naive reversal next to the reverse SDE.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveConfig {
    pub steps: usize,
    pub particles: usize,
    pub t_min: f64,
    /// Both runs start from the prior of this seed and (with noise) use the same increments.
    pub seed: u32,
    /// Also add the forward noise √β dW̄ to the naive run (the reverse SDE with s = 0).
    pub with_noise: bool,
    /// Snapshots to keep of each run (0: none).
    pub frames: usize,
}

impl Default for NaiveConfig {
    fn default() -> Self {
        Self {
            steps: 500,
            particles: 2000,
            t_min: 1e-3,
            seed: 0,
            with_noise: false,
            frames: 0,
        }
    }
}

/// The factor by which the drift alone scales the prior going back from 1 to t_min:
/// x(t_min) = x(1) · α(t_min)/α(1), since d log x = −½β dt integrates to ½(B(1) − B(t_min)).
pub fn naive_spread(schedule: &Schedule, t_min: f64) -> f64 {
    schedule.alpha(t_min) / schedule.alpha(1.0)
}

/// One run of a comparison, advanced a step at a time: a sampler keeping about `frames`
/// snapshots, or annealed Langevin.
enum Run {
    Sampled {
        sampler: Sampler,
        x: Vec<Point>,
        kept: Vec<(f64, Vec<Point>)>,
        /// A snapshot every this many steps (0: none).
        every: usize,
        /// Run with the zero score (the naive reversal), not the model.
        scoreless: bool,
    },
    Annealed {
        schedule: Schedule,
        levels: Vec<f64>,
        cfg: LangevinConfig,
        x: Vec<Point>,
        eps: Vec<Point>,
        /// Steps taken.
        k: usize,
    },
}

impl Run {
    fn sampled(schedule: Schedule, cfg: SamplerConfig, n: usize, frames: usize) -> Self {
        let sampler = Sampler::new(schedule, cfg);
        let x = prior(n, cfg.seed);
        let every = match frames {
            0 => 0,
            f => sampler.config().steps.div_ceil(f).max(1),
        };
        let kept = if every > 0 {
            vec![(sampler.t(), x.clone())]
        } else {
            Vec::new()
        };
        Self::Sampled {
            sampler,
            x,
            kept,
            every,
            scoreless: false,
        }
    }

    fn scoreless(mut self) -> Self {
        if let Self::Sampled { scoreless, .. } = &mut self {
            *scoreless = true;
        }
        self
    }

    fn annealed(schedule: &Schedule, cfg: &LangevinConfig, x: Vec<Point>) -> Self {
        Self::Annealed {
            schedule: *schedule,
            levels: noise_levels(schedule, cfg.levels, cfg.t_min),
            cfg: *cfg,
            eps: vec![[0.0; 2]; x.len()],
            x,
            k: 0,
        }
    }

    fn total(&self) -> usize {
        match self {
            Self::Sampled { sampler, .. } => sampler.config().steps,
            Self::Annealed { levels, cfg, .. } => levels.len() * cfg.steps_per_level,
        }
        .max(1)
    }

    fn done(&self) -> usize {
        match self {
            Self::Sampled { sampler, .. } => sampler.steps_done(),
            Self::Annealed { k, .. } => *k,
        }
    }

    /// One step, with `model` as the score unless the run is scoreless; true once done.
    fn step(&mut self, model: &dyn ScoreModel) -> bool {
        let total = self.total();
        match self {
            Self::Sampled {
                sampler,
                x,
                kept,
                every,
                scoreless,
            } => {
                if sampler.is_done() {
                    return true;
                }
                let model = if *scoreless { &ZeroScore } else { model };
                sampler.step(model, x);
                let k = sampler.steps_done();
                if *every > 0 && (k.is_multiple_of(*every) || sampler.is_done()) {
                    kept.push((sampler.t(), x.clone()));
                }
                sampler.is_done()
            }
            Self::Annealed {
                schedule,
                levels,
                cfg,
                x,
                eps,
                k,
            } => {
                if *k >= total {
                    return true;
                }
                // x ← x + δ_l s(x, t_l) + √(2δ_l) z with s = −ε̂/σ, δ_l = scale · σ_l².
                let t = levels[*k / cfg.steps_per_level];
                let sigma = schedule.sigma(t);
                let delta = cfg.step_scale * sigma * sigma;
                let (cs, cz) = ((-delta / sigma) as f32, (2.0 * delta).sqrt() as f32);
                model.eps(x, t as f32, eps);
                for (i, (p, e)) in x.iter_mut().zip(eps.iter()).enumerate() {
                    let z = normal2(cfg.seed, *k as u32, i as u32, STREAM_ANNEALED);
                    p[0] += cs * e[0] + cz * z[0];
                    p[1] += cs * e[1] + cz * z[1];
                }
                *k += 1;
                *k >= total
            }
        }
    }

    fn finish(self) -> ReverseRun {
        match self {
            Self::Sampled {
                sampler, x, kept, ..
            } => ReverseRun {
                samples: x,
                frames: kept,
                nfe: sampler.nfe(),
            },
            Self::Annealed { x, k, .. } => ReverseRun {
                samples: x,
                frames: Vec::new(),
                nfe: k,
            },
        }
    }
}

/// Runs `runs` in turn to the end, ticking `progress` over all of them.
fn run_all(
    runs: Vec<Run>,
    model: &dyn ScoreModel,
    progress: Progress<'_>,
) -> Result<Vec<ReverseRun>, TeachError> {
    let mut sweep = Runs::new(runs);
    while !sweep.step(model) {
        progress.tick(sweep.fraction())?;
    }
    Ok(sweep.finish())
}

/// A comparison's runs, one step of the current run at a time.
struct Runs {
    runs: Vec<Run>,
    current: usize,
}

impl Runs {
    fn new(runs: Vec<Run>) -> Self {
        Self { runs, current: 0 }
    }

    /// One step; true once every run is done.
    fn step(&mut self, model: &dyn ScoreModel) -> bool {
        if let Some(run) = self.runs.get_mut(self.current)
            && run.step(model)
        {
            self.current += 1;
        }
        self.current >= self.runs.len()
    }

    /// Steps done over steps in all.
    fn fraction(&self) -> f64 {
        let total: usize = self.runs.iter().map(Run::total).sum();
        let done: usize = self.runs.iter().map(Run::done).sum();
        done as f64 / total.max(1) as f64
    }

    fn finish(self) -> Vec<ReverseRun> {
        self.runs.into_iter().map(Run::finish).collect()
    }
}

/// A comparison as a [`Sweep`]: its runs a step at a time (in a browser the page keeps drawing
/// meanwhile), then `make` puts them together.
pub struct ComparisonSweep<T> {
    model: SharedModel,
    runs: Option<Runs>,
    make: fn(Vec<ReverseRun>) -> T,
    result: Option<T>,
}

impl<T> ComparisonSweep<T> {
    fn new(model: SharedModel, runs: Vec<Run>, make: fn(Vec<ReverseRun>) -> T) -> Self {
        Self {
            model,
            runs: Some(Runs::new(runs)),
            make,
            result: None,
        }
    }
}

impl<T: Clone + Send + 'static> Sweep for ComparisonSweep<T> {
    type Output = T;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let Some(runs) = self.runs.as_mut() else {
            return Ok(true);
        };
        if !runs.step(self.model.as_ref()) {
            progress.tick(runs.fraction())?;
            return Ok(false);
        }
        if let Some(runs) = self.runs.take() {
            self.result = Some((self.make)(runs.finish()));
        }
        Ok(true)
    }

    fn so_far(&self) -> Option<T> {
        self.result.clone()
    }
}

/// The naive reversal and the real reverse SDE (`model` as its score), same noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveComparison {
    pub naive: ReverseRun,
    pub reverse_sde: ReverseRun,
}

/// (a): time run backwards without the score, beside the reverse SDE from the same prior.
pub fn naive_vs_reverse(
    model: &dyn ScoreModel,
    schedule: Schedule,
    cfg: &NaiveConfig,
    progress: Progress<'_>,
) -> Result<NaiveComparison, TeachError> {
    let runs = run_all(naive_runs(schedule, cfg)?, model, progress)?;
    Ok(naive_comparison(runs))
}

/// [`naive_vs_reverse`] a step at a time.
pub fn naive_sweep(
    model: SharedModel,
    schedule: Schedule,
    cfg: &NaiveConfig,
) -> Result<ComparisonSweep<NaiveComparison>, TeachError> {
    Ok(ComparisonSweep::new(
        model,
        naive_runs(schedule, cfg)?,
        naive_comparison,
    ))
}

fn naive_runs(schedule: Schedule, cfg: &NaiveConfig) -> Result<Vec<Run>, TeachError> {
    check_sampling(&schedule, cfg.t_min, cfg.particles, "naive reverse")?;
    let sde = SamplerConfig {
        kind: SamplerKind::Em,
        steps: cfg.steps.max(1),
        t_min: cfg.t_min,
        seed: cfg.seed,
        ..SamplerConfig::default()
    };
    // With s = 0, Euler on the PF-ODE is the forward drift backwards, and Euler–Maruyama on
    // the reverse SDE adds the forward noise: the naive runs are the real samplers, scoreless.
    let naive_cfg = SamplerConfig {
        kind: if cfg.with_noise {
            SamplerKind::Em
        } else {
            SamplerKind::OdeEuler
        },
        ..sde
    };
    Ok(vec![
        Run::sampled(schedule, naive_cfg, cfg.particles, cfg.frames).scoreless(),
        Run::sampled(schedule, sde, cfg.particles, cfg.frames),
    ])
}

fn naive_comparison(runs: Vec<ReverseRun>) -> NaiveComparison {
    let [naive, reverse_sde] = runs.try_into().unwrap_or_default();
    NaiveComparison { naive, reverse_sde }
}

/// (b): plain Langevin at t_min, annealed Langevin and the reverse SDE.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LangevinConfig {
    /// Noise levels of annealed Langevin, uniform in λ from t = 1 down to t_min.
    pub levels: usize,
    pub steps_per_level: usize,
    /// δ_l = step_scale · σ_l² (Song & Ermon's ε/σ_L²). Plain Langevin uses the last level's.
    pub step_scale: f64,
    /// Euler–Maruyama steps of the reverse SDE.
    pub reverse_steps: usize,
    pub particles: usize,
    pub t_min: f64,
    pub seed: u32,
}

impl Default for LangevinConfig {
    fn default() -> Self {
        Self {
            levels: 20,
            steps_per_level: 30,
            step_scale: 0.2,
            reverse_steps: 500,
            particles: 2000,
            t_min: 1e-3,
            seed: 0,
        }
    }
}

/// The times of the annealing levels, uniform in λ = log(α/σ) from t = 1 to t_min.
///
/// Song & Ermon anneal a variance-exploding process y = x₀ + σ_VE z geometrically in σ_VE.
/// Our VP marginal is x = α y with σ_VE = σ/α = e^{−λ}, so the same annealing is uniform in
/// λ. (Geometric in the VP σ would not do: σ saturates at 1, so such levels jump straight from
/// pure noise to separated modes, and the mode weights never get a level to equilibrate at.)
pub fn noise_levels(schedule: &Schedule, levels: usize, t_min: f64) -> Vec<f64> {
    let levels = levels.max(1);
    if levels == 1 {
        return vec![t_min];
    }
    let (l1, l0) = (schedule.lambda(1.0), schedule.lambda(t_min));
    (0..levels)
        .map(|l| match l {
            0 => 1.0,
            l if l == levels - 1 => t_min,
            l => schedule.t_of_lambda(l1 + (l0 - l1) * l as f64 / (levels - 1) as f64),
        })
        .collect()
}

/// Annealed Langevin from the particles `x`: at each level t_l, `steps_per_level` steps
/// x ← x + δ_l s(x, t_l) + √(2δ_l) z with s = −ε̂/σ. Returns the evaluations spent.
pub fn annealed_langevin(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    cfg: &LangevinConfig,
    x: &mut [Point],
    progress: Progress<'_>,
) -> Result<usize, TeachError> {
    let run = Run::annealed(schedule, cfg, x.to_vec());
    let annealed = run_all(vec![run], model, progress)?.remove(0);
    x.copy_from_slice(&annealed.samples);
    Ok(annealed.nfe)
}

/// The three Langevin-family samplers from the same start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LangevinComparison {
    pub plain: ReverseRun,
    pub annealed: ReverseRun,
    pub reverse_sde: ReverseRun,
}

/// (b): plain Langevin on s(x, t_min) with as many evaluations as annealed Langevin, annealed
/// Langevin, and the reverse SDE, all from the prior of `cfg.seed`.
pub fn langevin_comparison(
    model: &dyn ScoreModel,
    schedule: Schedule,
    cfg: &LangevinConfig,
    progress: Progress<'_>,
) -> Result<LangevinComparison, TeachError> {
    let runs = run_all(langevin_runs(schedule, cfg)?, model, progress)?;
    Ok(langevin_from(runs))
}

/// [`langevin_comparison`] a step at a time.
pub fn langevin_sweep(
    model: SharedModel,
    schedule: Schedule,
    cfg: &LangevinConfig,
) -> Result<ComparisonSweep<LangevinComparison>, TeachError> {
    Ok(ComparisonSweep::new(
        model,
        langevin_runs(schedule, cfg)?,
        langevin_from,
    ))
}

fn langevin_runs(schedule: Schedule, cfg: &LangevinConfig) -> Result<Vec<Run>, TeachError> {
    check_sampling(&schedule, cfg.t_min, cfg.particles, "Langevin")?;
    if cfg.levels == 0 || cfg.steps_per_level == 0 {
        return Err(TeachError::Invalid(
            "Langevin: need at least one level and one step per level".into(),
        ));
    }
    if !(cfg.step_scale.is_finite() && cfg.step_scale > 0.0) {
        return Err(TeachError::Invalid(format!(
            "Langevin: step scale must be positive (got {})",
            cfg.step_scale
        )));
    }
    let budget = cfg.levels * cfg.steps_per_level;
    let sigma_min = schedule.sigma(cfg.t_min);
    let plain = SamplerConfig {
        kind: SamplerKind::Langevin,
        steps: budget,
        t_min: cfg.t_min,
        langevin_step: Some(cfg.step_scale * sigma_min * sigma_min),
        seed: cfg.seed,
        ..SamplerConfig::default()
    };
    let sde = SamplerConfig {
        kind: SamplerKind::Em,
        steps: cfg.reverse_steps.max(1),
        t_min: cfg.t_min,
        seed: cfg.seed,
        ..SamplerConfig::default()
    };
    Ok(vec![
        Run::sampled(schedule, plain, cfg.particles, 0),
        Run::annealed(&schedule, cfg, prior(cfg.particles, cfg.seed)),
        Run::sampled(schedule, sde, cfg.particles, 0),
    ])
}

fn langevin_from(runs: Vec<ReverseRun>) -> LangevinComparison {
    let [plain, annealed, reverse_sde] = runs.try_into().unwrap_or_default();
    LangevinComparison {
        plain,
        annealed,
        reverse_sde,
    }
}

/// The fraction of samples nearest to each mode: the mode weights a sampler recovered.
pub fn mode_weights(samples: &[Point], modes: &[Point]) -> Vec<f64> {
    let mut counts = vec![0usize; modes.len()];
    for p in samples {
        let nearest = modes
            .iter()
            .enumerate()
            .map(|(k, m)| (k, (p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((k, _)) = nearest {
            counts[k] += 1;
        }
    }
    let n = samples.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_geometric_in_noise_to_signal_and_decreasing_in_t() {
        let s = Schedule::default();
        let t = noise_levels(&s, 6, 1e-3);
        assert_eq!(t.len(), 6);
        assert_eq!((t[0], t[5]), (1.0, 1e-3));
        assert!(t.windows(2).all(|w| w[0] > w[1]));
        let ve: Vec<f64> = t.iter().map(|&t| s.sigma(t) / s.alpha(t)).collect();
        let ratios: Vec<f64> = ve.windows(2).map(|w| w[1] / w[0]).collect();
        for r in &ratios {
            assert!((r - ratios[0]).abs() < 1e-6, "{ratios:?}");
        }
        assert_eq!(noise_levels(&s, 1, 0.01), vec![0.01]);
    }

    #[test]
    fn mode_weights_count_nearest_modes() {
        let w = mode_weights(
            &[[0.9, 0.0], [1.1, 0.0], [-1.0, 0.0], [5.0, 0.0]],
            &[[1.0, 0.0], [-1.0, 0.0]],
        );
        assert_eq!(w, vec![0.75, 0.25]);
    }
}
