//! The WGSL trainer (`gpu::GpuTrainer`) behind the [`TrainBackend`] seam.

use crate::Point;
use crate::gpu::{GpuTrainer, LossPoint};
use crate::nn::{ConfigChange, TrainConfig};

use super::{BackendError, BackendKind, GpuSnapshot, TrainBackend};

impl TrainBackend for GpuTrainer {
    fn name(&self) -> String {
        format!("wgpu on {}", self.context().adapter_name())
    }

    fn gpu_weights(&self) -> Option<GpuSnapshot> {
        // A failed copy only means the app samples on the CPU.
        let weights = self.snapshot_weights().ok()?;
        Some(GpuSnapshot {
            ctx: self.context().clone(),
            weights,
        })
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
        Ok(GpuTrainer::train(self, steps)?)
    }

    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
        Ok(GpuTrainer::flush(self)?)
    }

    fn steps_done(&self) -> u64 {
        GpuTrainer::steps_done(self)
    }

    fn config(&self) -> &TrainConfig {
        GpuTrainer::config(self)
    }

    fn paused(&self) -> Option<String> {
        GpuTrainer::paused(self).map(ToString::to_string)
    }

    fn resume(&mut self) {
        GpuTrainer::resume(self)
    }

    fn params(&self) -> Result<Vec<f32>, BackendError> {
        Ok(GpuTrainer::params(self)?)
    }

    fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
        Ok(GpuTrainer::ema_params(self)?)
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_params(self, params)?)
    }

    fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError> {
        Ok(GpuTrainer::apply(self, cfg)?)
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_data(self, data)?)
    }

    fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
        Ok(GpuTrainer::reset(self, seed)?)
    }
}
