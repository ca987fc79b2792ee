//! Throughput of the WGSL backend for the CLI's `bench` command. Nothing is printed and
//! nothing asserted: timings are reported, never tested. Timed like `nn::bench` (warm-up,
//! then the median of several runs), each run ending with a wait for the GPU.

use super::context::GpuContext;
use super::error::GpuError;
use super::sampler::GpuSampler;
use super::trainer::{GpuTrainer, GpuWeights};
use crate::math::Schedule;
use crate::math::solvers::{SamplerConfig, SamplerKind, prior};
use crate::nn::bench::{BenchSettings, measure};
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
    let mut trainer = GpuTrainer::new(ctx, cfg, &prior(4096, 1))?;
    trainer.set_loss_every(64);
    let steps_per_sec = measure(settings, |n| {
        trainer.train(n as u64)?;
        ctx.wait()
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
    let steps_per_sec = measure(settings, |n| {
        let mut left = n;
        while left > 0 {
            if sampler.is_done() {
                sampler.reset_to_prior()?;
            }
            let k = left.min(cfg.steps - sampler.steps_done());
            sampler.steps(k)?;
            left -= k;
        }
        ctx.wait()
    })?;
    Ok(GpuRate {
        adapter: ctx.adapter_name(),
        per_sec: steps_per_sec * particles as f64,
        flops_per_unit: net.forward_flops_per_sample(),
    })
}
