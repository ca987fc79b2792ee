//! The self-check a page runs before trusting our kernels on its WebGPU device (the result is
//! `gpu_check` in `window.diffusionPlayground.status()`): one GPU training step against the
//! CPU step on the same batch, as `tests/gpu_train.rs` does natively. It never waits: `poll`
//! advances it and says when it is done, so a browser's frame loop can drive it.
//!
//! This runs our WGSL through the browser's own shader compiler, a second one besides naga.

use super::kernels::AsyncRead;
use super::{GpuContext, GpuTrainer};
use crate::Point;
use crate::math::rng::normal2;
use crate::nn::{Activation, Embedding, MlpConfig, TrainConfig, Trainer};

/// A check in progress.
pub struct SelfCheck {
    ctx: GpuContext,
    gpu: GpuTrainer,
    cpu_params: Vec<f32>,
    cpu_grad: Vec<f32>,
    lr: f32,
    read: Option<AsyncRead>,
}

/// The small network and batch of the check (width and batch not multiples of the 64 tile,
/// SiLU, the sinusoidal embedding).
fn config() -> TrainConfig {
    TrainConfig {
        net: MlpConfig {
            width: 24,
            depth: 2,
            activation: Activation::Silu,
            embedding: Embedding::Sinusoidal { dim: 8 },
            ..MlpConfig::default()
        },
        batch: 96,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn data() -> Vec<Point> {
    (0..300)
        .map(|i| {
            let z = normal2(5, 9, i, 0);
            [1.5 * z[0] + 0.5, 0.7 * z[1] - 0.25]
        })
        .collect()
}

impl SelfCheck {
    /// Builds both trainers and takes the CPU step; the GPU step follows in `poll`.
    pub fn start(ctx: &GpuContext) -> Result<Self, String> {
        let (cfg, data) = (config(), data());
        let mut cpu = Trainer::new(cfg.clone(), data.clone()).map_err(|e| e.to_string())?;
        cpu.step().map_err(|e| e.to_string())?;
        let gpu = GpuTrainer::new(ctx, cfg.clone(), &data).map_err(|e| e.to_string())?;
        Ok(Self {
            ctx: ctx.clone(),
            gpu,
            cpu_params: cpu.params().to_vec(),
            cpu_grad: cpu.last_grad().to_vec(),
            lr: cfg.lr,
            read: None,
        })
    }

    /// Advances the check: `None` while it runs, then whether the GPU's weights after one
    /// step match the CPU's (`Err` names the worst weight).
    pub fn poll(&mut self) -> Option<Result<(), String>> {
        if let Err(e) = self.ctx.check_alive() {
            return Some(Err(e.to_string()));
        }
        if self.gpu.steps_done() == 0
            && let Err(e) = self.gpu.step_now()
        {
            return Some(Err(e.to_string()));
        }
        if self.read.is_none() {
            let (params, _) = self.gpu.param_buffers();
            match AsyncRead::start(&self.ctx, params, 0, self.cpu_params.len()) {
                Ok(read) => self.read = Some(read),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        let gpu = match self.read.as_ref()?.try_take()? {
            Ok(values) => values,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(compare(&gpu, &self.cpu_params, &self.cpu_grad, self.lr))
    }
}

/// Adam's first step moves each weight by about ±lr, so the weights agree closely wherever
/// the gradient is clearly nonzero (|g| > 10⁻³ max|g|: 10⁻⁵) and to 2·lr where its sign is a
/// rounding matter.
pub fn compare(gpu: &[f32], cpu: &[f32], grad: &[f32], lr: f32) -> Result<(), String> {
    if gpu.len() != cpu.len() {
        return Err(format!(
            "{} weights came back, not {}",
            gpu.len(),
            cpu.len()
        ));
    }
    let g_max = grad.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let mut worst: Option<(usize, f32, f32)> = None;
    for (i, ((a, b), g)) in gpu.iter().zip(cpu).zip(grad).enumerate() {
        let tol = if g.abs() > 1e-3 * g_max {
            1e-5
        } else {
            2.0 * lr
        };
        // A NaN counts as the worst mismatch there is.
        let excess = match (a - b).abs() / tol {
            e if e.is_nan() => f32::INFINITY,
            e => e,
        };
        if excess > 1.0 && worst.is_none_or(|(_, e, _)| excess > e) {
            worst = Some((i, excess, *a));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _, a)) => Err(format!(
            "weight {i} after one step: GPU {a} vs CPU {} (gradient {})",
            cpu[i], grad[i]
        )),
    }
}
