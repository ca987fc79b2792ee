//! The seam between the training loop and whatever computes gradients: the CPU reference
//! backend today, the WGSL backend when it lands. The loop only sees [`Backend`].

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{SharedModel, TrainSettings};
use crate::Point;
use crate::data::Normalization;
use crate::math::Schedule;
use crate::nn::{MlpConfig, NnError, SavedModel, TrainConfig, Trainer, Weighting, weights};

/// Which implementation trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendKind {
    /// Plain Rust on the CPU (the reference, always available).
    Cpu,
}

impl BackendKind {
    pub const ALL: [BackendKind; 1] = [BackendKind::Cpu];

    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Cpu => "CPU",
        }
    }
}

/// A trainer of the score network. Errors are messages for the user.
pub trait Backend: Send {
    /// Shown in the status bar, e.g. "cpu (2 threads)".
    fn name(&self) -> String;
    fn num_params(&self) -> usize;
    /// One optimiser step; returns the batch's loss (NaN if it was not finite, in which case
    /// the weights were left as they were).
    fn step(&mut self) -> f32;
    fn steps_done(&self) -> u64;
    fn batch(&self) -> usize;
    /// The EMA weights as a model the samplers can run on another thread.
    fn model(&self) -> Result<SharedModel, String>;
    fn set_data(&mut self, data: &[Point]) -> Result<(), String>;
    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), String>;
    fn set_lr(&mut self, lr: f32) -> Result<(), String>;
    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), String>;
    fn set_batch(&mut self, batch: usize) -> Result<(), String>;
    /// Fresh weights from `seed`, step 0.
    fn reset(&mut self, seed: u32) -> Result<(), String>;
    /// Saves the EMA weights with what they were trained on.
    fn save(&self, path: &Path, dataset: &str, normalization: Normalization) -> Result<(), String>;
    /// Loads weights and returns the network shape they came with.
    fn load(&mut self, path: &Path) -> Result<MlpConfig, String>;
}

/// Builds the backend the settings ask for.
pub fn make_backend(
    settings: &TrainSettings,
    schedule: Schedule,
    data: &[Point],
) -> Result<Box<dyn Backend>, String> {
    match settings.backend.unwrap_or(BackendKind::Cpu) {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::new(settings, schedule, data)?)),
    }
}

fn message(e: NnError) -> String {
    e.to_string()
}

/// `nn::Trainer`: DSM with Adam and an EMA copy, in plain Rust.
struct CpuBackend {
    trainer: Trainer,
}

impl CpuBackend {
    fn new(settings: &TrainSettings, schedule: Schedule, data: &[Point]) -> Result<Self, String> {
        let cfg = TrainConfig {
            net: settings.net.clone(),
            schedule,
            lr: settings.lr,
            batch: settings.batch,
            seed: settings.seed,
            weighting: settings.weighting,
            ..TrainConfig::default()
        };
        let trainer = Trainer::new(cfg, Arc::<[Point]>::from(data)).map_err(message)?;
        Ok(Self { trainer })
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn num_params(&self) -> usize {
        self.trainer.params().len()
    }

    fn step(&mut self) -> f32 {
        self.trainer.step().unwrap_or(f32::NAN)
    }

    fn steps_done(&self) -> u64 {
        self.trainer.steps_done()
    }

    fn batch(&self) -> usize {
        self.trainer.config().batch
    }

    fn model(&self) -> Result<SharedModel, String> {
        let model = self.trainer.model(true).map_err(message)?;
        Ok(Arc::new(model))
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), String> {
        self.trainer
            .set_data(Arc::<[Point]>::from(data))
            .map_err(message)
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), String> {
        self.trainer.set_schedule(schedule).map_err(message)
    }

    fn set_lr(&mut self, lr: f32) -> Result<(), String> {
        self.trainer.set_lr(lr).map_err(message)
    }

    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), String> {
        self.trainer.set_weighting(weighting);
        Ok(())
    }

    fn set_batch(&mut self, batch: usize) -> Result<(), String> {
        self.trainer.set_batch(batch).map_err(message)
    }

    fn reset(&mut self, seed: u32) -> Result<(), String> {
        self.trainer.reset(seed);
        Ok(())
    }

    fn save(&self, path: &Path, dataset: &str, normalization: Normalization) -> Result<(), String> {
        let cfg = self.trainer.config();
        let saved = SavedModel {
            config: cfg.net.clone(),
            schedule: cfg.schedule,
            t_min: cfg.t_min,
            dataset: dataset.to_owned(),
            normalization,
            steps: self.trainer.steps_done(),
            params: self.trainer.ema_params().to_vec(),
        };
        weights::save(path, &saved).map_err(|e| e.to_string())
    }

    fn load(&mut self, path: &Path) -> Result<MlpConfig, String> {
        let saved = weights::load(path).map_err(|e| e.to_string())?;
        // The trainer starts from fresh weights only; loading into it needs nn support.
        Err(format!(
            "{}: read a {}×{} network, but continuing training from saved weights is not \
             supported yet",
            path.display(),
            saved.config.width,
            saved.config.depth
        ))
    }
}
