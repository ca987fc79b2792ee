//! Which trainer the thread runs: the CPU reference or the WGSL backend, behind the crate's
//! `TrainBackend` seam (`crate::backend`). On a real GPU the WGSL trainer shares eframe's
//! device; on a software adapter (lavapipe) `auto` picks the CPU (docs/architecture.md §1, §6).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{BackendFactory, TrainSettings};
use crate::Point;
use crate::backend::{BackendChoice, ResilientTrainer, TrainBackend, select_with};
use crate::data::Normalization;
use crate::gpu::GpuContext;
use crate::math::Schedule;
use crate::nn::{SavedModel, TrainConfig};

/// The user's choice of training backend, as saved in the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendPref {
    /// wgpu on a real GPU, else the CPU.
    #[default]
    Auto,
    Cpu,
    Wgpu,
}

impl BackendPref {
    pub const ALL: [BackendPref; 3] = [BackendPref::Auto, BackendPref::Cpu, BackendPref::Wgpu];

    pub fn choice(self) -> BackendChoice {
        match self {
            BackendPref::Auto => BackendChoice::Auto,
            BackendPref::Cpu => BackendChoice::Cpu,
            BackendPref::Wgpu => BackendChoice::Wgpu,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendPref::Auto => "auto (GPU if real, else CPU)",
            BackendPref::Cpu => "CPU",
            BackendPref::Wgpu => "GPU (wgpu)",
        }
    }
}

/// A trainer and the line that says which one runs and why.
pub struct Built {
    pub trainer: Box<dyn TrainBackend>,
    pub why: String,
}

/// The backends the settings ask for, sharing `shared` (eframe's device) when the GPU trains.
pub fn factory(shared: Option<GpuContext>) -> BackendFactory {
    Arc::new(
        move |settings: &TrainSettings, schedule: Schedule, data: &[Point]| {
            let selection = select_with(settings.backend.choice(), shared.clone());
            let cfg = train_config(settings, schedule);
            let trainer =
                ResilientTrainer::new(&selection, cfg, data).map_err(|e| e.to_string())?;
            Ok(Built {
                trainer: Box::new(trainer),
                why: selection.line,
            })
        },
    )
}

/// The `nn` configuration of the app's settings.
pub fn train_config(settings: &TrainSettings, schedule: Schedule) -> TrainConfig {
    TrainConfig {
        net: settings.net.clone(),
        schedule,
        lr: settings.lr,
        batch: settings.batch,
        seed: settings.seed,
        weighting: settings.weighting,
        ..TrainConfig::default()
    }
}

/// Saves the EMA weights with what they were trained on (safetensors, written atomically by
/// `nn::weights`).
#[cfg(not(target_arch = "wasm32"))]
pub fn save(
    trainer: &dyn TrainBackend,
    path: &std::path::Path,
    dataset: &str,
    normalization: Normalization,
    loaded: Option<(u64, u64)>,
) -> Result<(), String> {
    let saved = saved_model(trainer, dataset, normalization, loaded)?;
    crate::nn::weights::save(path, &saved).map_err(|e| e.to_string())
}

/// The EMA weights with what they were trained on, as a weights file holds them (`loaded`: the
/// steps of a weights file the run continued from, and the run's steps then).
pub fn saved_model(
    trainer: &dyn TrainBackend,
    dataset: &str,
    normalization: Normalization,
    loaded: Option<(u64, u64)>,
) -> Result<SavedModel, String> {
    let cfg = trainer.config();
    Ok(SavedModel {
        config: cfg.net.clone(),
        schedule: cfg.schedule,
        t_min: cfg.t_min,
        dataset: dataset.to_owned(),
        normalization,
        steps: trained_steps(loaded, trainer.steps_done()),
        params: trainer.ema_params().map_err(|e| e.to_string())?,
    })
}

/// Training steps behind a run's weights after `done` steps: `done`, or when it continued from
/// a weights file (`loaded`: the file's steps and `done` then), the file's and those since.
pub fn trained_steps(loaded: Option<(u64, u64)>, done: u64) -> u64 {
    match loaded {
        Some((file, at)) => file + done.saturating_sub(at),
        None => done,
    }
}
