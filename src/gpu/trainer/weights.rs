//! The weights: `GpuWeights` (what a sampler reads), and the trainer's own weight buffers
//! read back, replaced from the CPU, or copied into a `GpuWeights` on the GPU.

use std::sync::{Arc, atomic::AtomicU64, atomic::Ordering};

use super::GpuTrainer;
use crate::gpu::context::GpuContext;
use crate::gpu::error::GpuError;
use crate::gpu::kernels::{read_f32, storage_buffer, storage_init};
use crate::nn::MlpConfig;

/// Weights on the GPU that a sampler reads, replaced by a buffer copy; `version` counts the
/// copies, so a reader can tell when they changed.
#[derive(Debug)]
pub struct GpuWeights {
    pub config: MlpConfig,
    pub buffer: wgpu::Buffer,
    version: AtomicU64,
}

impl GpuWeights {
    /// Weights uploaded from the CPU (a loaded file, or fresh ones).
    pub fn new(
        ctx: &GpuContext,
        config: &MlpConfig,
        params: &[f32],
    ) -> Result<Arc<Self>, GpuError> {
        config.validate()?;
        crate::gpu::error::check_supported(config)?;
        config.check_params(params)?;
        let buffer = ctx.scoped("uploading weights", || {
            storage_init(ctx, "published weights", params)
        })??;
        Ok(Arc::new(Self {
            config: config.clone(),
            buffer,
            version: AtomicU64::new(1),
        }))
    }

    /// Replaces the weights from the CPU.
    pub fn upload(&self, ctx: &GpuContext, params: &[f32]) -> Result<(), GpuError> {
        self.config.check_params(params)?;
        ctx.queue
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(params));
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// How many times the weights have been replaced.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The weights back on the CPU (saving, tests).
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        read_f32(ctx, &self.buffer, 0, self.config.num_params())
    }
}

impl GpuTrainer {
    /// The weights being trained (a readback: waits for the GPU; not in a browser).
    pub fn params(&self) -> Result<Vec<f32>, GpuError> {
        if cfg!(target_arch = "wasm32") {
            return Err(GpuError::Pending("the weights"));
        }
        read_f32(&self.ctx, &self.params, 0, self.num_params)
    }

    /// Their moving average, the weights to sample with (a readback).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn ema_params(&self) -> Result<Vec<f32>, GpuError> {
        read_f32(&self.ctx, &self.ema, 0, self.num_params)
    }

    /// In a browser: the EMA weights as last read back, asking for newer ones (the app asks
    /// every few hundred milliseconds, so they lag training by about that);
    /// `GpuError::Pending` before the first arrive.
    #[cfg(target_arch = "wasm32")]
    pub fn ema_params(&self) -> Result<Vec<f32>, GpuError> {
        let mut guard = self
            .ema_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (in_flight, last) = &mut *guard;
        if let Some(read) = in_flight.as_ref()
            && let Some(result) = read.try_take()
        {
            *in_flight = None;
            *last = Some(result?);
        }
        if in_flight.is_none() {
            *in_flight = Some(crate::gpu::kernels::AsyncRead::start(
                &self.ctx,
                &self.ema,
                0,
                self.num_params,
            )?);
        }
        last.clone().ok_or(GpuError::Pending("the EMA weights"))
    }

    /// The gradient of the last step (a readback; tests).
    pub fn last_grad(&self) -> Result<Vec<f32>, GpuError> {
        read_f32(&self.ctx, &self.grad, 0, self.num_params)
    }

    /// The buffers a caller can bind or copy from: (params, ema).
    pub fn param_buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.params, &self.ema)
    }

    /// A new weights buffer holding the current EMA weights, filled by a GPU copy (no CPU
    /// round trip): what a sampler on another thread moves particles with.
    pub fn snapshot_weights(&self) -> Result<Arc<GpuWeights>, GpuError> {
        let buffer = storage_buffer(&self.ctx, "published weights", self.num_params as u64 * 4)?;
        let weights = GpuWeights {
            config: self.cfg.net.clone(),
            buffer,
            version: AtomicU64::new(0),
        };
        self.publish(&weights)?;
        Ok(Arc::new(weights))
    }

    /// Copies the EMA weights into `weights` on the GPU (no CPU round trip) and bumps its
    /// version.
    pub fn publish(&self, weights: &GpuWeights) -> Result<(), GpuError> {
        if weights.config != self.cfg.net {
            return Err(GpuError::Config(
                "published weights have another network shape".into(),
            ));
        }
        self.ctx.scoped("publishing weights", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("publish weights"),
                });
            enc.copy_buffer_to_buffer(&self.ema, 0, &weights.buffer, 0, self.num_params as u64 * 4);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        weights.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Replaces the weights (and their EMA) from the CPU, e.g. a loaded file; Adam restarts.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), GpuError> {
        self.write_weights(params, params)
    }

    /// Writes the weights and their EMA, and restarts Adam.
    fn write_weights(&mut self, params: &[f32], ema: &[f32]) -> Result<(), GpuError> {
        self.cfg.net.check_params(params)?;
        self.cfg.net.check_params(ema)?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        q.write_buffer(&self.ema, 0, bytemuck::cast_slice(ema));
        self.ctx.scoped("resetting Adam", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("reset adam"),
                });
            enc.clear_buffer(&self.moments, 0, None);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        self.adam_steps = 0;
        Ok(())
    }

    /// Continues a run another trainer began (the CPU, while this one's pipelines compiled):
    /// its weights, their moving average and its step count (so the batches go on where they
    /// were); Adam's moments restart, with their own bias correction.
    /// Only between readbacks (`losses_settled`): the losses in flight belong to the old
    /// count.
    pub fn resume_from(&mut self, params: &[f32], ema: &[f32], steps: u64) -> Result<(), GpuError> {
        if !self.losses_settled() {
            return Err(GpuError::Pending("the losses in flight"));
        }
        self.write_weights(params, ema)?;
        self.steps = steps;
        self.readback.read_to = steps;
        self.losses.clear();
        Ok(())
    }

    /// Whether every step's loss has been read back and none is on its way.
    pub fn losses_settled(&self) -> bool {
        self.readback.in_flight.is_none() && self.readback.read_to == self.steps
    }
}
