//! DSM training on the GPU: the twin of `nn::Trainer`, step for step.
//!
//! - `mod.rs` (this file): `GpuTrainer` itself: construction, `train`/`step`/`flush`, the
//!   settings (`apply`, `set_*`), `reset`, pausing and resuming;
//! - `buffers`: the batch-sized buffers (`BatchBuffers`) and the importance table;
//! - `binds`: every bind group of a step and its uniforms (`Binds`, `rebind`);
//! - `encode`: recording a submission's steps into one command encoder (`submit_steps`);
//! - `readback`: the loss ring read back by `map_async`, and the pause on a non-finite loss;
//! - `weights`: `GpuWeights`, and the trainer's weights read, replaced, published.
//!
//! One training step is 3·depth + 6 dispatches in one compute pass, with no CPU round trip:
//!
//! ```text
//! dsm::batch        (x₀, t, ε) from the counter RNG → input rows [x_t, emb(t)], samples
//! matmul::forward   Z_l = H_{l−1}·W_l + b_l, H_l = act(Z_l)               l = 0..depth
//! mlp::head         o = H·W_out + b_out
//! dsm::loss         r = ε̂ − ε, Σ w‖r‖² per workgroup, dO = (2/B) w (∂ε̂/∂o) r
//! dsm::loss_reduce  (1/B)·Σ into the loss ring; a NaN/∞ sets the sticky status word
//! mlp::head_dw      [dW_out; db_out] = [H, 1]ᵀ·dO                         (split-K slices)
//! mlp::head_dx      dZ = (dO·W_outᵀ) ⊙ act′(Z)
//! matmul::backward_dw, backward_dx   for l = depth−1 … 0                  (split-K slices)
//! adam::adam        Σ slices → g; Adam; EMA; the last good weights kept
//! ```
//!
//! Up to `STEPS_PER_SUBMIT` steps share one command encoder, each reading its own uniform
//! slot (step index, Adam's bias corrections, EMA decay) by a dynamic offset. The loss of
//! every step lands in a ring buffer that is copied to a staging buffer and mapped
//! asynchronously every `loss_every` steps; training never waits for it. The weights reach the
//! sampler by a buffer copy (`publish`), never through the CPU.

mod binds;
mod buffers;
mod encode;
mod readback;
mod weights;

use std::collections::VecDeque;
use std::sync::Arc;

use self::binds::Binds;
use self::buffers::{BatchBuffers, batch_buffers, table_buffer};
use self::readback::Readback;
use super::context::GpuContext;
use super::error::GpuError;
use super::kernels::{Kernels, Slots, storage_buffer, storage_init};
use crate::Point;
use crate::math::Schedule;
use crate::nn::{ConfigChange, Setting, TimeEmbedding, TrainConfig, Weighting};

pub use self::readback::LossPoint;
pub use self::weights::GpuWeights;

/// Steps recorded into one command encoder.
pub const STEPS_PER_SUBMIT: u32 = 32;
/// Submissions (of up to `STEPS_PER_SUBMIT` steps) allowed in flight before `train` waits.
pub const MAX_IN_FLIGHT: usize = 3;
/// Entries of the loss ring (steps whose loss is kept on the GPU until read back).
pub const LOSS_RING: u32 = 4096;
/// Batch rows per split-K slice of the weight gradients, at least: a slice is one
/// workgroup's share of the batch reduction; at most `MAX_SPLITS` slices.
pub const SPLIT_ROWS: u32 = 256;
pub const MAX_SPLITS: u32 = 64;

/// DSM training on the GPU. Not `Sync` (one thread trains); `Send`, so it can live on the
/// training thread.
#[derive(Debug)]
pub struct GpuTrainer {
    ctx: GpuContext,
    kernels: Arc<Kernels>,
    cfg: TrainConfig,
    n_data: usize,
    num_params: usize,
    steps: u64,
    /// Adam updates since the moments were last reset (its bias-correction count).
    adam_steps: u64,
    /// Losses read back every this many steps.
    loss_every: u64,
    params: wgpu::Buffer,
    moments: wgpu::Buffer,
    ema: wgpu::Buffer,
    grad: wgpu::Buffer,
    backup: wgpu::Buffer,
    status: wgpu::Buffer,
    ring: wgpu::Buffer,
    data: wgpu::Buffer,
    table: wgpu::Buffer,
    freqs: wgpu::Buffer,
    dummy: wgpu::Buffer,
    slots: Slots,
    bufs: BatchBuffers,
    /// Made right after construction, remade when a setting changes.
    binds: Option<Binds>,
    readback: Readback,
    losses: VecDeque<LossPoint>,
    submissions: VecDeque<wgpu::SubmissionIndex>,
    /// Set when a non-finite loss paused training.
    paused: Option<GpuError>,
    /// In a browser: the EMA weights as last read back, and the read on its way.
    #[cfg(target_arch = "wasm32")]
    ema_read: std::sync::Mutex<(Option<crate::gpu::kernels::AsyncRead>, Option<Vec<f32>>)>,
}

impl GpuTrainer {
    /// A fresh run on the GPU: the same initial weights, batches and updates as
    /// `nn::Trainer::new(cfg, data)`.
    ///
    /// A class-conditional network is refused (`GpuError::Unsupported`): the kernels have no
    /// class inputs, so `backend::ResilientTrainer` trains it on the CPU.
    pub fn new(ctx: &GpuContext, cfg: TrainConfig, data: &[Point]) -> Result<Self, GpuError> {
        cfg.validate()?;
        super::error::check_supported(&cfg.net)?;
        check_data(data)?;
        let kernels = ctx.kernels()?;
        let num_params = cfg.net.num_params();
        let params0 = cfg.net.init_params(cfg.seed);
        let p_bytes = num_params as u64 * 4;
        let emb = TimeEmbedding::new(cfg.net.embedding);
        let made = ctx.scoped("allocating the training buffers", || {
            let params = storage_init(ctx, "params", &params0)?;
            let moments = storage_buffer(ctx, "adam moments m, v", 2 * p_bytes)?;
            let ema = storage_init(ctx, "ema params", &params0)?;
            let grad = storage_buffer(ctx, "gradient", p_bytes)?;
            let backup = storage_buffer(ctx, "last good params, ema", 2 * p_bytes)?;
            let status = storage_buffer(ctx, "status (first non-finite step + 1)", 4)?;
            let ring = storage_buffer(ctx, "loss ring", u64::from(LOSS_RING) * 4)?;
            let data_buf = storage_init(ctx, "training data", data)?;
            let table = table_buffer(ctx, &cfg)?;
            let freqs = storage_init(ctx, "embedding frequencies", emb.freqs())?;
            let dummy = storage_buffer(ctx, "unused binding", 4)?;
            let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("loss ring staging"),
                size: 4 + u64::from(LOSS_RING) * 4,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            Ok::<_, GpuError>((
                params, moments, ema, grad, backup, status, ring, data_buf, table, freqs, dummy,
                staging,
            ))
        })??;
        let (
            params,
            moments,
            ema,
            grad,
            backup,
            status,
            ring,
            data_buf,
            table,
            freqs,
            dummy,
            staging,
        ) = made;
        let slots = Slots::new(&ctx.device, "train step slots", 32, STEPS_PER_SUBMIT);
        let bufs = batch_buffers(ctx, &cfg.net, cfg.batch, num_params)?;
        let mut trainer = Self {
            ctx: ctx.clone(),
            kernels,
            n_data: data.len(),
            num_params,
            steps: 0,
            adam_steps: 0,
            loss_every: 16,
            params,
            moments,
            ema,
            grad,
            backup,
            status,
            ring,
            data: data_buf,
            table,
            freqs,
            dummy,
            slots,
            binds: None,
            bufs,
            readback: Readback {
                staging,
                in_flight: None,
                read_to: 0,
            },
            losses: VecDeque::new(),
            #[cfg(target_arch = "wasm32")]
            ema_read: Default::default(),
            submissions: VecDeque::new(),
            paused: None,
            cfg,
        };
        trainer.rebind()?;
        Ok(trainer)
    }

    /// Runs `steps` training steps, `STEPS_PER_SUBMIT` per command encoder, without waiting
    /// for the GPU. Returns the losses that have come back since the last call (they lag the
    /// steps a little). After a non-finite loss, training pauses: this returns
    /// `GpuError::NonFinite` (the weights of the last finite step restored) until `resume`.
    pub fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, GpuError> {
        if let Some(e) = &self.paused {
            return Err(e.clone());
        }
        let mut left = steps;
        while left > 0 {
            let n = left.min(u64::from(STEPS_PER_SUBMIT)) as u32;
            if cfg!(target_arch = "wasm32") && self.must_wait(n) {
                // A browser cannot wait for the GPU: fewer steps now, more on the next frame.
                break;
            }
            self.submit_steps(n)?;
            left -= u64::from(n);
            self.poll_losses(false)?;
            if let Some(e) = &self.paused {
                return Err(e.clone());
            }
        }
        Ok(self.losses.drain(..).collect())
    }

    /// One step submitted at once, whatever else is in flight on the device (the self-check
    /// shares a browser's device with the app's own training, which keeps it busy).
    pub fn step_now(&mut self) -> Result<(), GpuError> {
        if let Some(e) = &self.paused {
            return Err(e.clone());
        }
        self.submit_steps(1)
    }

    /// Why training is paused, if it is.
    pub fn paused(&self) -> Option<&GpuError> {
        self.paused.as_ref()
    }

    /// Clears a pause on a non-finite loss (after the user changed something, e.g. the
    /// learning rate).
    pub fn resume(&mut self) {
        if self.paused.take().is_some() {
            self.ctx.queue.write_buffer(&self.status, 0, &[0u8; 4]);
        }
    }

    /// Waits for the GPU and returns every loss not yet returned (in a browser, which cannot
    /// wait: those back so far, asking for the rest).
    pub fn flush(&mut self) -> Result<Vec<LossPoint>, GpuError> {
        let wait = !cfg!(target_arch = "wasm32");
        self.poll_losses(wait)?;
        self.start_readback()?;
        self.poll_losses(wait)?;
        Ok(self.losses.drain(..).collect())
    }

    /// Whether submitting `n` more steps would have to wait: `MAX_IN_FLIGHT` submissions
    /// unfinished, or losses not yet read back where the ring would overwrite them.
    fn must_wait(&mut self, n: u32) -> bool {
        let ring_full = self.steps + u64::from(n) - self.readback.read_to
            > u64::from(LOSS_RING - STEPS_PER_SUBMIT);
        if ring_full && self.readback.in_flight.is_none() {
            // Ask for the losses now, so that the ring has room on a later frame.
            let _ = self.start_readback();
        }
        ring_full || self.ctx.in_flight() >= MAX_IN_FLIGHT as u64
    }

    /// One step, waiting for its loss (tests, simple loops). As `nn::Trainer::step`.
    pub fn step(&mut self) -> Result<f32, GpuError> {
        self.train(1)?;
        let losses = self.flush()?;
        if let Some(e) = &self.paused {
            return Err(e.clone());
        }
        losses
            .last()
            .map(|l| l.loss)
            .ok_or_else(|| GpuError::Readback("no loss came back".into()))
    }

    pub fn steps_done(&self) -> u64 {
        self.steps
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn num_params(&self) -> usize {
        self.num_params
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Reads every this many steps (default 16); 1 reads after every submission.
    pub fn set_loss_every(&mut self, steps: u64) {
        self.loss_every = steps.max(1);
    }

    pub fn set_lr(&mut self, lr: f32) -> Result<(), GpuError> {
        let cfg = TrainConfig {
            lr,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    pub fn set_ema_decay(&mut self, decay: f32) -> Result<(), GpuError> {
        let cfg = TrainConfig {
            ema_decay: decay,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    pub fn set_weighting(&mut self, weighting: Weighting) -> Result<(), GpuError> {
        self.cfg.weighting = weighting;
        self.table = table_buffer(&self.ctx, &self.cfg)?;
        self.rebind()
    }

    pub fn set_schedule(&mut self, schedule: Schedule) -> Result<(), GpuError> {
        let cfg = TrainConfig {
            schedule,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        self.cfg = cfg;
        self.table = table_buffer(&self.ctx, &self.cfg)?;
        self.rebind()
    }

    pub fn set_t_min(&mut self, t_min: f32) -> Result<(), GpuError> {
        let cfg = TrainConfig {
            t_min,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        self.cfg = cfg;
        self.table = table_buffer(&self.ctx, &self.cfg)?;
        self.rebind()
    }

    /// Trains on new data from the next step on, keeping the weights.
    pub fn set_data(&mut self, data: &[Point]) -> Result<(), GpuError> {
        check_data(data)?;
        self.data = self.ctx.scoped("uploading training data", || {
            storage_init(&self.ctx, "training data", data)
        })??;
        self.n_data = data.len();
        self.rebind()
    }

    /// A new batch size: the batch-sized buffers are reallocated (checked against the
    /// device's limits first); on failure the old batch stays.
    pub fn set_batch(&mut self, batch: usize) -> Result<(), GpuError> {
        let cfg = TrainConfig {
            batch,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        let bufs = batch_buffers(&self.ctx, &self.cfg.net, batch, self.num_params)?;
        self.flush()?;
        self.bufs = bufs;
        self.cfg = cfg;
        self.rebind()
    }

    /// Takes the settings of `cfg` that training continues under (see `ConfigChange`); a new
    /// seed starts over with fresh weights (`reset`), a new network shape needs a new
    /// trainer and is refused. The batch goes first: it is the one change the device can
    /// refuse, and then nothing has changed.
    pub fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, GpuError> {
        cfg.validate()?;
        let change = ConfigChange::between(&self.cfg, cfg);
        if cfg.net != self.cfg.net {
            return Err(GpuError::Unsupported(
                "a new network shape on a running GPU trainer".into(),
            ));
        }
        if change.continued.contains(&Setting::Batch) {
            self.set_batch(cfg.batch)?;
        }
        let table = [Setting::Weighting, Setting::Schedule, Setting::TMin]
            .iter()
            .any(|s| change.continued.contains(s));
        self.cfg = TrainConfig {
            seed: self.cfg.seed,
            ..cfg.clone()
        };
        if table {
            self.table = table_buffer(&self.ctx, &self.cfg)?;
            self.rebind()?;
        }
        if change.restarts {
            self.reset(cfg.seed)?;
        }
        Ok(change)
    }

    /// Starts over from fresh weights drawn with `seed` (which also seeds the batches).
    pub fn reset(&mut self, seed: u32) -> Result<(), GpuError> {
        self.flush()?;
        // In a browser the flush could not wait: losses of the old run still on their way
        // must not land in the new one.
        if self.readback.in_flight.take().is_some() {
            self.readback.staging.unmap();
        }
        self.cfg.seed = seed;
        let params = self.cfg.net.init_params(seed);
        self.set_params(&params)?;
        self.steps = 0;
        self.readback.read_to = 0;
        self.losses.clear();
        self.resume();
        self.rebind()
    }
}

/// Data must be non-empty, finite, and indexable by u32.
fn check_data(data: &[Point]) -> Result<(), GpuError> {
    if data.is_empty() {
        return Err(GpuError::Config("the training data is empty".into()));
    }
    if data.len() > u32::MAX as usize / 2 {
        return Err(GpuError::Config(
            "too many training points for the GPU backend".into(),
        ));
    }
    if let Some(index) = data
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        return Err(GpuError::Config(format!(
            "training point {index} is NaN or infinite"
        )));
    }
    Ok(())
}
