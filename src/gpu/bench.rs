//! Throughput of the WGSL backend for the CLI's `bench` command. Nothing is printed and
//! nothing asserted: timings are reported, never tested. Timed like `nn::bench` (warm-up,
//! then the median of several runs), each run ending with a wait for the GPU.

use std::time::Instant;

use super::context::GpuContext;
use super::error::GpuError;
use super::sampler::GpuSampler;
use super::trainer::{GpuTrainer, GpuWeights};
use crate::Point;
use crate::math::Schedule;
use crate::math::rng::{STREAM_PRIOR, normal2};
use crate::math::solvers::{SamplerConfig, SamplerKind};
use crate::nn::bench::BenchSettings;
use crate::nn::{MlpConfig, TrainConfig};

/// One measured rate.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuRate {
    /// `describe(adapter)`, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, cpu)".
    pub adapter: String,
    /// Training samples per second, or particle-steps per second.
    pub per_sec: f64,
    /// FLOPs of one unit (a training sample: forward + backward; a particle-step: one
    /// forward pass), as `MlpConfig` counts them.
    pub flops_per_unit: usize,
}

impl GpuRate {
    /// Achieved GFLOP/s.
    pub fn gflops_per_sec(&self) -> f64 {
        self.per_sec * self.flops_per_unit as f64 * 1e-9
    }
}

/// Median rate of `work(n)` (n units, then a wait), n sized from the warm-up so a run lasts
/// about `settings.run`.
fn measure(
    ctx: &GpuContext,
    settings: &BenchSettings,
    mut work: impl FnMut(u64) -> Result<(), GpuError>,
) -> Result<f64, GpuError> {
    let start = Instant::now();
    let mut done = 0u64;
    while done < 2 || start.elapsed() < settings.warmup {
        work(1)?;
        ctx.wait()?;
        done += 1;
    }
    let per_unit = start.elapsed().as_secs_f64() / done as f64;
    let n = ((settings.run.as_secs_f64() / per_unit).ceil() as u64).max(1);
    let mut rates = Vec::with_capacity(settings.runs.max(1));
    for _ in 0..settings.runs.max(1) {
        let t = Instant::now();
        work(n)?;
        ctx.wait()?;
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

fn normal_points(n: usize, seed: u32) -> Vec<Point> {
    (0..n as u32)
        .map(|i| normal2(seed, 0, i, STREAM_PRIOR))
        .collect()
}

/// GPU training throughput in samples per second (batch × steps / s) for `net` at `batch`
/// (default schedule, weighting and learning rate), losses read back every 64 steps.
pub fn train_samples_per_sec(
    ctx: &GpuContext,
    net: &MlpConfig,
    batch: usize,
    settings: &BenchSettings,
) -> Result<GpuRate, GpuError> {
    let cfg = TrainConfig {
        net: net.clone(),
        batch,
        lr: 1e-4,
        ..TrainConfig::default()
    };
    let mut trainer = GpuTrainer::new(ctx, cfg, &normal_points(4096, 1))?;
    trainer.set_loss_every(64);
    let steps_per_sec = measure(ctx, settings, |n| {
        trainer.train(n)?;
        Ok(())
    })?;
    Ok(GpuRate {
        adapter: ctx.adapter_name(),
        per_sec: steps_per_sec * batch as f64,
        flops_per_unit: net.train_flops_per_sample(),
    })
}

/// PF-ODE Euler throughput on GPU-resident particles in particle-steps per second (random
/// weights: the cost does not depend on their values). Each step is one network evaluation
/// of every particle and the update, 32 steps per command encoder.
pub fn sample_particle_steps_per_sec(
    ctx: &GpuContext,
    net: &MlpConfig,
    particles: usize,
    settings: &BenchSettings,
) -> Result<GpuRate, GpuError> {
    let weights = GpuWeights::new(ctx, net, &net.init_params(7))?;
    let cfg = SamplerConfig {
        kind: SamplerKind::OdeEuler,
        steps: 1000,
        ..SamplerConfig::default()
    };
    let mut sampler = GpuSampler::new(ctx, weights, Schedule::default(), cfg, particles)?;
    let steps_per_sec = measure(ctx, settings, |n| {
        let mut left = n as usize;
        while left > 0 {
            if sampler.is_done() {
                sampler.reset_to_prior()?;
            }
            let k = left.min(cfg.steps - sampler.steps_done());
            sampler.steps(k)?;
            left -= k;
        }
        Ok(())
    })?;
    Ok(GpuRate {
        adapter: ctx.adapter_name(),
        per_sec: steps_per_sec * particles as f64,
        flops_per_unit: net.forward_flops_per_sample(),
    })
}
