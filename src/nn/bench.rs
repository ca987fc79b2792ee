//! Throughput figures for the CLI's `bench` command. Nothing is printed here and nothing is
//! asserted: timings are reported, never tested.

use std::time::Duration;

use web_time::Instant;

use super::NnError;
use super::dsm::Trainer;
use super::mlp::MlpConfig;
use super::model::NetModel;
use super::train_config::TrainConfig;
use crate::math::solvers::prior;
use crate::math::{Schedule, ScoreModel};

/// How long to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchSettings {
    /// Untimed work first (thread pools, caches, CPU clocks).
    pub warmup: Duration,
    /// Timed runs; the median is reported.
    pub runs: usize,
    /// Target length of one timed run.
    pub run: Duration,
}

impl Default for BenchSettings {
    fn default() -> Self {
        Self {
            warmup: Duration::from_millis(300),
            runs: 5,
            run: Duration::from_millis(300),
        }
    }
}

/// Median of the per-run rates of `work(n)`, which does `n` units (and, on a GPU, waits for
/// them); `n` is sized from the warm-up so each run lasts about `settings.run`. The GPU
/// benchmarks use it too.
pub fn measure<E>(
    settings: &BenchSettings,
    mut work: impl FnMut(usize) -> Result<(), E>,
) -> Result<f64, E> {
    let start = Instant::now();
    let mut done = 0usize;
    while done < 2 || start.elapsed() < settings.warmup {
        work(1)?;
        done += 1;
    }
    let per_unit = start.elapsed().as_secs_f64() / done as f64;
    let n = ((settings.run.as_secs_f64() / per_unit).ceil() as usize).max(1);
    let mut rates = Vec::with_capacity(settings.runs.max(1));
    for _ in 0..settings.runs.max(1) {
        let t = Instant::now();
        work(n)?;
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Training throughput of the CPU backend in samples per second (batch × steps / s) for a
/// net at a batch size, with the default schedule and weighting.
pub fn train_samples_per_sec(
    net: &MlpConfig,
    batch: usize,
    settings: &BenchSettings,
) -> Result<f64, NnError> {
    let cfg = TrainConfig {
        net: net.clone(),
        batch,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, prior(4096, 1))?;
    let steps_per_sec = measure(settings, |n| {
        for _ in 0..n {
            trainer.step()?;
        }
        Ok(())
    })?;
    Ok(steps_per_sec * batch as f64)
}

/// PF-ODE Euler throughput in particle-steps per second: each step is one `NetModel::eps` over
/// all particles at one t and the update `x ← x + h·½β(t)(x − ε̂/σ(t))` (the ODE
/// `dx/dt = −½β(x + s)` with `s = −ε̂/σ`, integrated from t = 1 down). Random weights: the
/// cost does not depend on their values.
pub fn sample_particle_steps_per_sec(
    net: &MlpConfig,
    particles: usize,
    settings: &BenchSettings,
) -> Result<f64, NnError> {
    let schedule = Schedule::default();
    let model = NetModel::new(net.clone(), schedule, net.init_params(7))?;
    let mut xs = prior(particles, 2);
    let mut eps = vec![[0.0f32; 2]; particles];
    let steps = 100usize;
    let (t_min, h) = (1e-3f64, (1.0 - 1e-3) / steps as f64);
    let mut k = 0usize;
    let steps_per_sec = measure(settings, |n| {
        for _ in 0..n {
            let t = 1.0 - (k % steps) as f64 * h;
            k += 1;
            model.eps(&xs, t as f32, &mut eps);
            let (half_beta, inv_sigma) = (
                0.5 * schedule.beta(t) as f32,
                1.0 / schedule.sigma(t.max(t_min)) as f32,
            );
            let gain = h as f32 * half_beta;
            for (x, e) in xs.iter_mut().zip(&eps) {
                x[0] += gain * (x[0] - e[0] * inv_sigma);
                x[1] += gain * (x[1] - e[1] * inv_sigma);
            }
            if k.is_multiple_of(steps) {
                xs = prior(particles, k as u32);
            }
        }
        Ok(())
    })?;
    Ok(steps_per_sec * particles as f64)
}
