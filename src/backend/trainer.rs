//! The trainer seam: [`TrainBackend`], which the app's training job and the CLI hold as a
//! `Box<dyn TrainBackend>`, and its CPU implementation (the reference, `nn::Trainer`, with
//! the NaN pause). The GPU's implementation is in `gpu_trainer`, the fallback in `resilient`.

use std::sync::Arc;

use crate::Point;
use crate::gpu::{GpuContext, GpuError, GpuWeights, LossPoint};
use crate::nn::{ConfigChange, NetModel, NnError, TrainConfig, Trainer};

use super::BackendKind;

/// A training failure, as a message for the user.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Nn(#[from] NnError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// Training is paused (a non-finite loss) until `resume`.
    #[error("training is paused: {0}")]
    Paused(String),
}

impl BackendError {
    /// A readback not arrived yet (in a browser): nothing is wrong, ask again later.
    pub fn is_pending(&self) -> bool {
        matches!(self, BackendError::Gpu(GpuError::Pending(_)))
    }

    /// Whether this is the NaN/∞ pause (the weights of the last finite step are kept).
    pub fn is_non_finite(&self) -> bool {
        matches!(
            self,
            BackendError::Nn(NnError::NonFinite { .. })
                | BackendError::Gpu(GpuError::NonFinite { .. })
                | BackendError::Paused(_)
        )
    }
}

/// Trained weights on a GPU and the device they live on.
#[derive(Clone, Debug)]
pub struct GpuSnapshot {
    pub ctx: GpuContext,
    pub weights: Arc<GpuWeights>,
}

/// A DSM trainer: the CPU reference or the GPU.
pub trait TrainBackend: Send {
    /// E.g. "cpu (2 threads)" or "wgpu on NVIDIA H100 (Vulkan, discrete GPU)".
    fn name(&self) -> String;
    fn kind(&self) -> BackendKind;
    /// Runs `steps` optimiser steps. Returns the losses that became known: all of them on the
    /// CPU; on the GPU those read back so far (a few steps behind; `flush` waits for the
    /// rest). A NaN/∞ loss pauses training: an error now and on every call until `resume`,
    /// the weights of the last finite step kept.
    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError>;
    /// Every loss not yet returned (waits for the GPU).
    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError>;
    fn steps_done(&self) -> u64;
    fn config(&self) -> &TrainConfig;
    /// Why training is paused, if it is.
    fn paused(&self) -> Option<String>;
    /// Clears a pause (after the user changed the learning rate, say).
    fn resume(&mut self);
    /// The weights being trained (the GPU reads them back).
    fn params(&self) -> Result<Vec<f32>, BackendError>;
    /// Their EMA: the weights to sample with.
    fn ema_params(&self) -> Result<Vec<f32>, BackendError>;
    /// Continues from given weights (a loaded file): checked against the layout first, so a
    /// refused set leaves the running weights untouched; Adam and the EMA restart.
    fn set_params(&mut self, _params: &[f32]) -> Result<(), BackendError> {
        Err(GpuError::Unsupported("loading weights".into()).into())
    }
    /// The EMA weights copied into a new GPU buffer on the training device, for a GPU
    /// sampler on another thread; `None` for a CPU backend.
    fn gpu_weights(&self) -> Option<GpuSnapshot> {
        None
    }
    /// The EMA weights as a CPU model (for samplers on another thread, saving).
    fn ema_model(&self) -> Result<NetModel, BackendError> {
        let cfg = self.config();
        Ok(NetModel::new(
            cfg.net.clone(),
            cfg.schedule,
            self.ema_params()?,
        )?)
    }
    /// Moves the run to `cfg` (docs/architecture.md §1): the settings listed in the returned
    /// change's `continued` take effect on the running weights; a new network shape or seed
    /// (`restarts`) starts over from fresh weights at step 0. A refused config leaves the
    /// run as it was.
    fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError>;
    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError>;
    /// New data with one class label per point (for a class-conditional network; an
    /// unconditional one ignores them). The default, for backends without classes, accepts
    /// labels only for an unconditional network.
    fn set_data_with_labels(
        &mut self,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<(), BackendError> {
        if labels.is_some() && self.config().net.is_conditional() {
            return Err(GpuError::Unsupported("class labels".into()).into());
        }
        self.set_data(data)
    }
    /// Fresh weights from `seed`, step 0.
    fn reset(&mut self, seed: u32) -> Result<(), BackendError>;
    /// A message for the user about a change of backend (a GPU failure), once.
    fn notice(&mut self) -> Option<String> {
        None
    }
}

/// The CPU reference trainer (`nn::Trainer`) as a backend, with the NaN pause.
pub struct CpuTrainer {
    trainer: Trainer,
    paused: Option<String>,
}

impl CpuTrainer {
    pub fn new(cfg: TrainConfig, data: &[Point]) -> Result<Self, BackendError> {
        Self::with_labels(cfg, data, None)
    }

    /// As `new`, with one class label per point if given (see `nn::Trainer::with_labels`).
    pub fn with_labels(
        cfg: TrainConfig,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<Self, BackendError> {
        let trainer = match labels {
            Some(labels) => Trainer::with_labels(cfg, data.to_vec(), labels.to_vec())?,
            None => Trainer::new(cfg, data.to_vec())?,
        };
        Ok(Self {
            trainer,
            paused: None,
        })
    }

    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Continues a run another trainer began (see `nn::Trainer::resume_from`).
    pub fn resume_from(
        &mut self,
        params: Vec<f32>,
        ema: &[f32],
        steps: u64,
    ) -> Result<(), BackendError> {
        self.trainer.resume_from(params, ema, steps)?;
        self.paused = None;
        Ok(())
    }
}

impl TrainBackend for CpuTrainer {
    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
        if let Some(why) = &self.paused {
            return Err(BackendError::Paused(why.clone()));
        }
        let mut out = Vec::with_capacity(steps as usize);
        for _ in 0..steps {
            let step = self.trainer.steps_done();
            match self.trainer.step() {
                Ok(loss) => out.push(LossPoint { step, loss }),
                Err(e) => {
                    // `Trainer::step` skipped the update: the weights are the last good ones.
                    self.paused = Some(e.to_string());
                    return Err(e.into());
                }
            }
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
        Ok(Vec::new())
    }

    fn steps_done(&self) -> u64 {
        self.trainer.steps_done()
    }

    fn config(&self) -> &TrainConfig {
        self.trainer.config()
    }

    fn paused(&self) -> Option<String> {
        self.paused.clone()
    }

    fn resume(&mut self) {
        self.paused = None;
    }

    fn params(&self) -> Result<Vec<f32>, BackendError> {
        Ok(self.trainer.params().to_vec())
    }

    fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
        Ok(self.trainer.ema_params().to_vec())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), BackendError> {
        Ok(self.trainer.set_params(params.to_vec())?)
    }

    fn ema_model(&self) -> Result<NetModel, BackendError> {
        Ok(self.trainer.model(true)?)
    }

    fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError> {
        let change = ConfigChange::between(self.trainer.config(), cfg);
        if change.restarts {
            let data = Arc::clone(self.trainer.data());
            self.trainer = match self.trainer.labels() {
                Some(labels) => Trainer::with_labels(cfg.clone(), data, Arc::clone(labels))?,
                None => Trainer::new(cfg.clone(), data)?,
            };
            self.paused = None;
        } else {
            self.trainer.apply(cfg)?;
        }
        Ok(change)
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
        Ok(self.trainer.set_data(data.to_vec())?)
    }

    fn set_data_with_labels(
        &mut self,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<(), BackendError> {
        Ok(self
            .trainer
            .set_data_with_labels(data.to_vec(), labels.map(<[u32]>::to_vec))?)
    }

    fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
        self.trainer.reset(seed);
        self.paused = None;
        Ok(())
    }
}
