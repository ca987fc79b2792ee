//! Which backend trains and samples: the CPU reference (`nn`) or our WGSL kernels (`gpu`).
//!
//! `--backend cpu|wgpu|auto` ([`BackendChoice`]). `auto` takes the GPU only when it is a real
//! one: a software adapter such as lavapipe (`DeviceType::Cpu`) is slower than the CPU
//! backend, so then, or with no adapter at all, the CPU trains (DESIGN §1, §6). [`select`]
//! says which, and why, in one line for stderr and the UI.
//!
//! Training goes through [`TrainBackend`], implemented by both trainers, so the app's training
//! thread and the CLI hold a `Box<dyn TrainBackend>`. [`ResilientTrainer`] wraps the GPU
//! trainer: if the device is lost or runs out of memory, the CPU backend takes over (from
//! the last weights it could read back, else from fresh ones) and the reason is kept in
//! [`TrainBackend::notice`]. A NaN/∞ loss pauses either backend with the last good weights.
//! A class-conditional network (`MlpConfig::num_classes > 0`) is CPU-only for now: the GPU
//! refuses it (`GpuError::Unsupported`) and `ResilientTrainer` trains it on the CPU, saying
//! so in its notice; labelled data goes in through `ResilientTrainer::with_labels` /
//! [`make_trainer_with_labels`] and [`TrainBackend::set_data_with_labels`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::Point;
use crate::gpu::{
    GpuContext, GpuError, GpuTrainer, GpuWeights, LossPoint, describe, enumerate_adapters,
};
use crate::math::Schedule;
use crate::nn::{NetModel, NnError, TrainConfig, Trainer, Weighting};

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    Cpu,
    Wgpu,
    /// wgpu on a real GPU, else the CPU.
    #[default]
    Auto,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] =
        [BackendChoice::Cpu, BackendChoice::Wgpu, BackendChoice::Auto];

    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Auto => "auto",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown backend name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?} (expected cpu, wgpu or auto)")]
pub struct ParseBackendError(pub String);

impl FromStr for BackendChoice {
    type Err = ParseBackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(BackendChoice::Cpu),
            "wgpu" | "gpu" => Ok(BackendChoice::Wgpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => Err(ParseBackendError(s.to_owned())),
        }
    }
}

/// The backend that will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Cpu,
    Wgpu,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

/// The outcome of [`select`]: the backend, its device (for wgpu), and one line saying which
/// and why, e.g. `backend: cpu (adapter llvmpipe (LLVM 15.0.6, 256 bits) is a CPU)`.
#[derive(Clone, Debug)]
pub struct Selection {
    pub kind: BackendKind,
    pub gpu: Option<GpuContext>,
    pub line: String,
}

impl Selection {
    fn cpu(why: String) -> Self {
        Self {
            kind: BackendKind::Cpu,
            gpu: None,
            line: format!("backend: cpu ({why})"),
        }
    }

    fn wgpu(ctx: GpuContext, note: &str) -> Self {
        Self {
            kind: BackendKind::Wgpu,
            line: format!("backend: wgpu on {}{note}", ctx.adapter_name()),
            gpu: Some(ctx),
        }
    }

    /// The adapter's name when wgpu was chosen.
    pub fn adapter(&self) -> Option<String> {
        self.gpu.as_ref().map(GpuContext::adapter_name)
    }
}

/// Chooses a backend on a device of our own (the CLI).
pub fn select(choice: BackendChoice) -> Selection {
    select_with(choice, None)
}

/// Chooses a backend; `shared` is a device already open (eframe's), used instead of opening
/// one when wgpu is chosen.
pub fn select_with(choice: BackendChoice, shared: Option<GpuContext>) -> Selection {
    let open = |shared: Option<GpuContext>| match shared {
        Some(ctx) => Ok(ctx),
        None => GpuContext::new(),
    };
    match choice {
        BackendChoice::Cpu => Selection::cpu("asked for".into()),
        BackendChoice::Wgpu => match open(shared) {
            Ok(ctx) if ctx.is_software() => {
                Selection::wgpu(ctx, " (a CPU adapter: slower than the cpu backend)")
            }
            Ok(ctx) => Selection::wgpu(ctx, ""),
            Err(e) => Selection::cpu(format!("wgpu asked for, but {e}")),
        },
        BackendChoice::Auto => {
            // Look before opening a device: a software adapter is not worth one.
            let best = match &shared {
                Some(ctx) => Some(ctx.info.clone()),
                None => best_adapter(),
            };
            match best {
                None => Selection::cpu("no GPU adapter found".into()),
                Some(info) if info.device_type == wgpu::DeviceType::Cpu => {
                    Selection::cpu(format!("adapter {} is a CPU", describe_short(&info)))
                }
                Some(_) => match open(shared) {
                    Ok(ctx) => Selection::wgpu(ctx, ""),
                    Err(e) => Selection::cpu(e.to_string()),
                },
            }
        }
    }
}

fn best_adapter() -> Option<wgpu::AdapterInfo> {
    let mut all = enumerate_adapters();
    all.sort_by_key(|i| i.device_type == wgpu::DeviceType::Cpu);
    all.into_iter().next()
}

fn describe_short(info: &wgpu::AdapterInfo) -> String {
    let full = describe(info);
    match full.rfind(" (") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

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
    fn set_lr(&mut self, lr: f32) -> Result<(), BackendError>;
    fn set_batch(&mut self, batch: usize) -> Result<(), BackendError>;
    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), BackendError>;
    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), BackendError>;
    fn set_t_min(&mut self, t_min: f32) -> Result<(), BackendError>;
    fn set_ema_decay(&mut self, decay: f32) -> Result<(), BackendError>;
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

    fn set_lr(&mut self, lr: f32) -> Result<(), BackendError> {
        Ok(self.trainer.set_lr(lr)?)
    }

    fn set_batch(&mut self, batch: usize) -> Result<(), BackendError> {
        Ok(self.trainer.set_batch(batch)?)
    }

    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), BackendError> {
        self.trainer.set_weighting(weighting);
        Ok(())
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), BackendError> {
        Ok(self.trainer.set_schedule(schedule)?)
    }

    fn set_t_min(&mut self, t_min: f32) -> Result<(), BackendError> {
        Ok(self.trainer.set_t_min(t_min)?)
    }

    fn set_ema_decay(&mut self, decay: f32) -> Result<(), BackendError> {
        Ok(self.trainer.set_ema_decay(decay)?)
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

impl TrainBackend for GpuTrainer {
    fn name(&self) -> String {
        format!("wgpu on {}", self.context().adapter_name())
    }

    fn gpu_weights(&self) -> Option<GpuSnapshot> {
        // A failed copy only means the app samples on the CPU this time.
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

    fn set_lr(&mut self, lr: f32) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_lr(self, lr)?)
    }

    fn set_batch(&mut self, batch: usize) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_batch(self, batch)?)
    }

    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_weighting(self, weighting)?)
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_schedule(self, schedule)?)
    }

    fn set_t_min(&mut self, t_min: f32) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_t_min(self, t_min)?)
    }

    fn set_ema_decay(&mut self, decay: f32) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_ema_decay(self, decay)?)
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
        Ok(GpuTrainer::set_data(self, data)?)
    }

    fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
        Ok(GpuTrainer::reset(self, seed)?)
    }
}

/// Whether a GPU error means the device cannot go on, or cannot do what was asked (so the
/// CPU should take over), as opposed to a bad setting or a NaN pause.
fn is_device_failure(e: &BackendError) -> bool {
    matches!(
        e,
        BackendError::Gpu(
            GpuError::Unsupported(_)
                | GpuError::DeviceLost(_)
                | GpuError::OutOfMemory(_)
                | GpuError::TooLarge { .. }
                | GpuError::Device { .. }
                | GpuError::Readback(_)
                | GpuError::NoAdapter(_)
                | GpuError::RequestDevice { .. }
        )
    )
}

/// A trainer that starts on the GPU and moves to the CPU if the GPU fails.
pub struct ResilientTrainer {
    inner: Box<dyn TrainBackend>,
    data: Arc<[Point]>,
    labels: Option<Arc<[u32]>>,
    notice: Option<String>,
}

impl ResilientTrainer {
    /// Trains on `selection`'s backend; if the GPU trainer cannot even be built (no device,
    /// a batch too large for it), the CPU trains and `notice` says why.
    pub fn new(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
    ) -> Result<Self, BackendError> {
        Self::with_labels(selection, cfg, data, None)
    }

    /// As `new`, with one class label per point if given. A class-conditional config is
    /// refused by the GPU and trains on the CPU (with a notice).
    pub fn with_labels(
        selection: &Selection,
        cfg: TrainConfig,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<Self, BackendError> {
        cfg.validate()?;
        let data: Arc<[Point]> = data.into();
        let labels: Option<Arc<[u32]>> = labels.map(Into::into);
        let mut notice = None;
        let inner: Box<dyn TrainBackend> = match &selection.gpu {
            Some(ctx) if selection.kind == BackendKind::Wgpu => {
                match GpuTrainer::new(ctx, cfg.clone(), &data) {
                    Ok(t) => Box::new(t),
                    Err(e) => {
                        let e = BackendError::from(e);
                        if !is_device_failure(&e) {
                            return Err(e);
                        }
                        notice = Some(format!(
                            "the GPU could not train ({e}); training on the CPU instead"
                        ));
                        Box::new(CpuTrainer::with_labels(cfg, &data, labels.as_deref())?)
                    }
                }
            }
            _ => Box::new(CpuTrainer::with_labels(cfg, &data, labels.as_deref())?),
        };
        Ok(Self {
            inner,
            data,
            labels,
            notice,
        })
    }

    /// Runs `op` on the inner trainer; on a GPU device failure, moves to the CPU (from the
    /// last weights readable... a fresh CPU run when none are) and runs `op` there.
    fn guarded<T>(
        &mut self,
        mut op: impl FnMut(&mut dyn TrainBackend) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        match op(self.inner.as_mut()) {
            Err(e) if self.inner.kind() == BackendKind::Wgpu && is_device_failure(&e) => {
                self.fall_back(&e)?;
                op(self.inner.as_mut())
            }
            other => other,
        }
    }

    fn fall_back(&mut self, why: &BackendError) -> Result<(), BackendError> {
        let cfg = self.inner.config().clone();
        let steps = self.inner.steps_done();
        let cpu = CpuTrainer::with_labels(cfg, &self.data, self.labels.as_deref())?;
        self.notice = Some(format!(
            "the GPU failed at step {steps} ({why}); the CPU backend takes over (fresh weights: the \
             CPU trainer cannot adopt the GPU's)"
        ));
        self.inner = Box::new(cpu);
        Ok(())
    }
}

impl TrainBackend for ResilientTrainer {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
        self.guarded(|t| t.train(steps))
    }

    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
        self.guarded(|t| t.flush())
    }

    fn steps_done(&self) -> u64 {
        self.inner.steps_done()
    }

    fn config(&self) -> &TrainConfig {
        self.inner.config()
    }

    fn paused(&self) -> Option<String> {
        self.inner.paused()
    }

    fn resume(&mut self) {
        self.inner.resume()
    }

    fn params(&self) -> Result<Vec<f32>, BackendError> {
        self.inner.params()
    }

    fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
        self.inner.ema_params()
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), BackendError> {
        self.guarded(|t| t.set_params(params))
    }

    fn gpu_weights(&self) -> Option<GpuSnapshot> {
        self.inner.gpu_weights()
    }

    fn ema_model(&self) -> Result<NetModel, BackendError> {
        self.inner.ema_model()
    }

    fn set_lr(&mut self, lr: f32) -> Result<(), BackendError> {
        self.guarded(|t| t.set_lr(lr))
    }

    fn set_batch(&mut self, batch: usize) -> Result<(), BackendError> {
        self.guarded(|t| t.set_batch(batch))
    }

    fn set_weighting(&mut self, weighting: Weighting) -> Result<(), BackendError> {
        self.guarded(|t| t.set_weighting(weighting))
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), BackendError> {
        self.guarded(|t| t.set_schedule(schedule))
    }

    fn set_t_min(&mut self, t_min: f32) -> Result<(), BackendError> {
        self.guarded(|t| t.set_t_min(t_min))
    }

    fn set_ema_decay(&mut self, decay: f32) -> Result<(), BackendError> {
        self.guarded(|t| t.set_ema_decay(decay))
    }

    fn set_data(&mut self, data: &[Point]) -> Result<(), BackendError> {
        let r = self.guarded(|t| t.set_data(data));
        if r.is_ok() {
            self.data = data.into();
            self.labels = None;
        }
        r
    }

    fn set_data_with_labels(
        &mut self,
        data: &[Point],
        labels: Option<&[u32]>,
    ) -> Result<(), BackendError> {
        let r = self.guarded(|t| t.set_data_with_labels(data, labels));
        if r.is_ok() {
            self.data = data.into();
            self.labels = labels.map(Into::into);
        }
        r
    }

    fn reset(&mut self, seed: u32) -> Result<(), BackendError> {
        self.guarded(|t| t.reset(seed))
    }

    fn notice(&mut self) -> Option<String> {
        self.notice.take()
    }
}

/// A trainer on the selected backend, falling back to the CPU as `ResilientTrainer` does.
pub fn make_trainer(
    selection: &Selection,
    cfg: TrainConfig,
    data: &[Point],
) -> Result<Box<dyn TrainBackend>, BackendError> {
    Ok(Box::new(ResilientTrainer::new(selection, cfg, data)?))
}

/// As [`make_trainer`], with one class label per point if given (a class-conditional
/// network trains on the CPU).
pub fn make_trainer_with_labels(
    selection: &Selection,
    cfg: TrainConfig,
    data: &[Point],
    labels: Option<&[u32]>,
) -> Result<Box<dyn TrainBackend>, BackendError> {
    Ok(Box::new(ResilientTrainer::with_labels(
        selection, cfg, data, labels,
    )?))
}

/// Samples `n` particles on the selected backend: GPU-resident particles on wgpu (falling
/// back to the CPU sampler if the GPU fails, with the reason), the CPU sampler otherwise.
/// Returns the particles, the network evaluations, and a notice if the GPU failed.
pub fn sample(
    selection: &Selection,
    model: &NetModel,
    cfg: crate::math::solvers::SamplerConfig,
    n: usize,
) -> (Vec<Point>, usize, Option<String>) {
    if let (BackendKind::Wgpu, Some(ctx)) = (selection.kind, &selection.gpu) {
        match crate::gpu::sampler::sample(ctx, model, cfg, n) {
            Ok((x, nfe)) => return (x, nfe, None),
            Err(e) => {
                let (x, nfe) = crate::math::solvers::sample(model, *model.schedule(), cfg, n);
                return (
                    x,
                    nfe,
                    Some(format!("the GPU sampler failed ({e}); sampled on the CPU")),
                );
            }
        }
    }
    let (x, nfe) = crate::math::solvers::sample(model, *model.schedule(), cfg, n);
    (x, nfe, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        for c in BackendChoice::ALL {
            assert_eq!(c.name().parse::<BackendChoice>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(" WGPU ".parse::<BackendChoice>(), Ok(BackendChoice::Wgpu));
        assert!("cuda".parse::<BackendChoice>().is_err());
    }

    #[test]
    fn cpu_choice_needs_no_device() {
        let s = select(BackendChoice::Cpu);
        assert_eq!(s.kind, BackendKind::Cpu);
        assert!(s.gpu.is_none());
        assert_eq!(s.line, "backend: cpu (asked for)");
    }

    #[test]
    fn cpu_trainer_pauses_on_nan() {
        let cfg = TrainConfig {
            batch: 8,
            lr: 1e30,
            net: crate::nn::MlpConfig {
                width: 4,
                depth: 1,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let data: Vec<Point> = (0..20).map(|i| [i as f32 * 0.1, 1.0]).collect();
        let mut t = CpuTrainer::new(cfg, &data).expect("trainer");
        let mut failed = false;
        for _ in 0..50 {
            if let Err(e) = t.train(1) {
                assert!(e.is_non_finite(), "{e}");
                failed = true;
                break;
            }
        }
        assert!(failed, "lr 1e30 must give a non-finite loss");
        assert!(t.paused().is_some());
        assert!(t.train(1).is_err());
        assert!(t.params().expect("params").iter().all(|p| p.is_finite()));
        t.resume();
        assert!(t.paused().is_none());
    }
}
