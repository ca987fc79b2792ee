//! DSM training on the GPU: the twin of `nn::Trainer`, step for step.
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

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, channel};
use std::sync::{Arc, atomic::AtomicU64, atomic::Ordering};
use std::time::Duration;

use super::context::GpuContext;
use super::error::GpuError;
use super::kernels::{
    AdamUniform, DsmUniform, GEMM_TILE, GemmUniform, K, Kernels, MlpUniform, ScheduleUniform,
    Slots, TrainStepUniform, WG_1D, act_id, grid_1d, grid_rows, param_id, read_f32, storage_buffer,
    storage_init, uniform_bytes,
};
use crate::Point;
use crate::math::Schedule;
use crate::nn::adam::{BETA1, BETA2};
use crate::nn::dsm::{IMPORTANCE_TABLE_SIZE, ImportanceTable, MAX_BATCH};
use crate::nn::{MlpConfig, TimeEmbedding, TrainConfig, Weighting};

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
/// How long a finished mapping may take to reach its callback (run by whichever thread polls).
const MAP_CALLBACK_WAIT: Duration = Duration::from_secs(10);

/// The loss of one training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPoint {
    pub step: u64,
    pub loss: f32,
}

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
        super::error::check_supported(config)?;
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

/// Buffers whose size depends on the batch.
#[derive(Debug)]
struct BatchBuffers {
    batch: u32,
    splits: u32,
    k_split: u32,
    input: wgpu::Buffer,
    samples: wgpu::Buffer,
    /// Z_l and H_l per hidden layer, then dZ_l.
    z: Vec<wgpu::Buffer>,
    h: Vec<wgpu::Buffer>,
    dz: Vec<wgpu::Buffer>,
    out: wgpu::Buffer,
    d_out: wgpu::Buffer,
    loss_partial: wgpu::Buffer,
    /// Gradient slices, `splits` copies of the parameter layout.
    partials: wgpu::Buffer,
}

/// Every bind group of a step, in dispatch order.
#[derive(Debug)]
struct Binds {
    batch: (wgpu::BindGroup, wgpu::BindGroup),
    forward: Vec<wgpu::BindGroup>,
    head: wgpu::BindGroup,
    loss: wgpu::BindGroup,
    loss_reduce: (wgpu::BindGroup, wgpu::BindGroup),
    head_dw: wgpu::BindGroup,
    head_dx: wgpu::BindGroup,
    /// Per hidden layer l (index l): dW and, for l > 0, dX.
    backward_dw: Vec<wgpu::BindGroup>,
    backward_dx: Vec<Option<wgpu::BindGroup>>,
    adam: (wgpu::BindGroup, wgpu::BindGroup),
    /// Uniform buffers the bind groups point to.
    _uniforms: Vec<wgpu::Buffer>,
}

/// A readback in flight: the steps `[from, to)` it covers and its map result.
type InFlight = (u64, u64, Receiver<Result<(), wgpu::BufferAsyncError>>);

/// The staging copy of the loss ring and status word, mapped asynchronously.
#[derive(Debug)]
struct Readback {
    staging: wgpu::Buffer,
    in_flight: Option<InFlight>,
    /// Losses of steps before this one have been read.
    read_to: u64,
}

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
            submissions: VecDeque::new(),
            paused: None,
            cfg,
        };
        trainer.rebind()?;
        Ok(trainer)
    }

    /// Rebuilds the uniforms and bind groups (after the batch, data, schedule or weighting
    /// changed). The weights and Adam's state stay.
    fn rebind(&mut self) -> Result<(), GpuError> {
        let binds = self
            .ctx
            .scoped("binding the training buffers", || self.make_binds())??;
        self.binds = Some(binds);
        Ok(())
    }

    fn make_binds(&self) -> Result<Binds, GpuError> {
        let device = &self.ctx.device;
        let k = &self.kernels;
        let net = &self.cfg.net;
        let layers = net.layers();
        let depth = net.depth;
        let width = net.width as u32;
        let in_ld = net.input_dim() as u32;
        let act = act_id(net.activation);
        let b = &self.bufs;
        let batch = b.batch;
        let p = self.num_params as u32;
        let mut uniforms = Vec::new();
        let mut uni = |label: &str, bytes: &[u8]| {
            let buf = uniform_bytes(&self.ctx, label, bytes);
            uniforms.push(buf);
            uniforms.len() - 1
        };

        // DSM: batch construction and loss.
        let emb_half = TimeEmbedding::new(net.embedding).freqs().len() as u32;
        let (weighting, table_weight) = match self.cfg.weighting {
            Weighting::Uniform => (0, 1.0),
            Weighting::InverseSigma2 => (1, 1.0),
            Weighting::Importance => (
                2,
                ImportanceTable::new(&self.cfg.schedule, self.cfg.t_min).weight,
            ),
        };
        let dsm = DsmUniform {
            batch,
            n_data: self.n_data as u32,
            seed: self.cfg.seed,
            weighting,
            t_min: self.cfg.t_min,
            table_weight,
            table_n: IMPORTANCE_TABLE_SIZE as u32,
            param: param_id(net.param),
            emb_half,
            in_ld,
            _pad: [0; 2],
            schedule: ScheduleUniform::new(&self.cfg.schedule),
        };
        let dsm_u = uni("dsm uniform", bytemuck::bytes_of(&dsm));

        // Forward GEMMs.
        let mut fwd_u = Vec::new();
        for (l, layer) in layers.iter().enumerate().take(depth) {
            let g = GemmUniform {
                m: batch,
                n: width,
                k: layer.fan_in as u32,
                lda: layer.fan_in as u32,
                ldb: width,
                ldc: width,
                ld_aux: width,
                b_off: layer.weight_offset as u32,
                bias_off: layer.bias_offset as u32,
                act,
                flag: 1,
                ..GemmUniform::default()
            };
            fwd_u.push(uni(
                &format!("forward layer {l} uniform"),
                bytemuck::bytes_of(&g),
            ));
        }
        let out_layer = layers[depth];
        let head = MlpUniform {
            rows: batch,
            width,
            ld: width,
            act,
            w_off: out_layer.weight_offset as u32,
            b_off: out_layer.bias_offset as u32,
            k_split: b.k_split,
            split_stride: p,
            ..MlpUniform::default()
        };
        let head_u = uni("head uniform", bytemuck::bytes_of(&head));
        // Backward GEMMs.
        let mut dw_u = Vec::new();
        let mut dx_u = Vec::new();
        for (l, layer) in layers.iter().enumerate().take(depth) {
            let dw = GemmUniform {
                m: layer.fan_in as u32 + 1,
                n: width,
                k: batch,
                lda: layer.fan_in as u32,
                ldb: width,
                ldc: width,
                c_off: layer.weight_offset as u32,
                flag: 1,
                k_split: b.k_split,
                c_split_stride: p,
                ..GemmUniform::default()
            };
            dw_u.push(uni(
                &format!("backward dW layer {l} uniform"),
                bytemuck::bytes_of(&dw),
            ));
            let dx = GemmUniform {
                m: batch,
                n: width,
                k: width,
                lda: width,
                ldb: width,
                ldc: width,
                ld_aux: width,
                b_off: layer.weight_offset as u32,
                act,
                ..GemmUniform::default()
            };
            dx_u.push(uni(
                &format!("backward dX layer {l} uniform"),
                bytemuck::bytes_of(&dx),
            ));
        }
        let adam = AdamUniform {
            n: p,
            splits: b.splits,
            split_stride: p,
            _pad: 0,
        };
        let adam_u = uni("adam uniform", bytemuck::bytes_of(&adam));
        let u = |i: usize| &uniforms[i];

        let slot = |kernel: K, label: &str| {
            k.get(kernel)
                .bind_slots(device, label, &self.slots)
                .ok_or_else(|| GpuError::Config(format!("{label}: kernel has no slot layout")))
        };
        let batch_bind = k.get(K::DsmBatch).bind(
            device,
            "dsm batch",
            &[
                u(dsm_u),
                &self.data,
                &self.table,
                &self.freqs,
                &b.input,
                &b.samples,
            ],
        );
        let forward = (0..depth)
            .map(|l| {
                let src = if l == 0 { &b.input } else { &b.h[l - 1] };
                k.get(K::GemmForward).bind(
                    device,
                    &format!("forward layer {l}"),
                    &[u(fwd_u[l]), src, &self.params, &b.z[l], &b.h[l]],
                )
            })
            .collect();
        let head_bind = k.get(K::Head).bind(
            device,
            "head",
            &[
                u(head_u),
                &self.params,
                &b.h[depth - 1],
                &b.out,
                &self.dummy,
                &self.freqs,
            ],
        );
        let loss = k.get(K::DsmLoss).bind(
            device,
            "dsm loss",
            &[u(dsm_u), &b.samples, &b.out, &b.d_out, &b.loss_partial],
        );
        let loss_reduce = k.get(K::DsmLossReduce).bind(
            device,
            "dsm loss reduce",
            &[u(dsm_u), &b.loss_partial, &self.ring, &self.status],
        );
        let head_dw = k.get(K::HeadDw).bind(
            device,
            "head dW",
            &[
                u(head_u),
                &self.params,
                &b.d_out,
                &b.partials,
                &b.h[depth - 1],
                &self.freqs,
            ],
        );
        let head_dx = k.get(K::HeadDx).bind(
            device,
            "head dX",
            &[
                u(head_u),
                &self.params,
                &b.d_out,
                &b.dz[depth - 1],
                &b.z[depth - 1],
                &self.freqs,
            ],
        );
        let backward_dw = (0..depth)
            .map(|l| {
                let a = if l == 0 { &b.input } else { &b.h[l - 1] };
                k.get(K::GemmBackwardDw).bind(
                    device,
                    &format!("backward dW layer {l}"),
                    &[u(dw_u[l]), a, &b.dz[l], &b.partials, &self.dummy],
                )
            })
            .collect();
        let backward_dx = (0..depth)
            .map(|l| {
                (l > 0).then(|| {
                    k.get(K::GemmBackwardDx).bind(
                        device,
                        &format!("backward dX layer {l}"),
                        &[
                            u(dx_u[l]),
                            &b.dz[l],
                            &self.params,
                            &b.dz[l - 1],
                            &b.z[l - 1],
                        ],
                    )
                })
            })
            .collect();
        let adam_bind = k.get(K::Adam).bind(
            device,
            "adam",
            &[
                u(adam_u),
                &self.params,
                &self.moments,
                &self.ema,
                &b.partials,
                &self.grad,
                &self.backup,
                &self.status,
            ],
        );
        Ok(Binds {
            batch: (batch_bind, slot(K::DsmBatch, "dsm batch slots")?),
            forward,
            head: head_bind,
            loss,
            loss_reduce: (loss_reduce, slot(K::DsmLossReduce, "loss reduce slots")?),
            head_dw,
            head_dx,
            backward_dw,
            backward_dx,
            adam: (adam_bind, slot(K::Adam, "adam slots")?),
            _uniforms: uniforms,
        })
    }

    /// The per-step uniform of the next step (`self.steps + offset`), mirroring
    /// `nn::adam::{Adam::step, Ema::current_decay}` in the same float types.
    fn step_uniform(&self, offset: u64) -> TrainStepUniform {
        let step = self.steps + offset;
        let k = (self.adam_steps + offset + 1).min(i32::MAX as u64) as i32;
        let c1 = (1.0 - (BETA1 as f64).powi(k)) as f32;
        let c2 = (1.0 - (BETA2 as f64).powi(k)) as f32;
        let updates = (self.adam_steps + offset) as f32;
        let ema_decay = self.cfg.ema_decay.min((1.0 + updates) / (10.0 + updates));
        TrainStepUniform {
            step: step as u32,
            slot: (step % u64::from(LOSS_RING)) as u32,
            step_size: self.cfg.lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
            ema_decay,
            _pad: [0; 3],
        }
    }

    /// Records one training step reading slot `slot`.
    fn encode_step(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32) {
        let k = &self.kernels;
        let b = &self.bufs;
        let Some(bi) = &self.binds else {
            return;
        };
        let off = [Slots::offset(slot)];
        let net = &self.cfg.net;
        let depth = net.depth;
        let width = net.width as u32;
        let batch = b.batch;
        let rows_1d = batch.div_ceil(WG_1D);
        // (x₀, t, ε) → input rows and samples.
        pass.set_pipeline(&k.get(K::DsmBatch).pipeline);
        pass.set_bind_group(0, &bi.batch.0, &[]);
        pass.set_bind_group(1, &bi.batch.1, &off);
        pass.dispatch_workgroups(rows_1d, 1, 1);
        // Forward through the hidden layers, keeping Z and H for the backward pass.
        pass.set_pipeline(&k.get(K::GemmForward).pipeline);
        for bind in &bi.forward {
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(width.div_ceil(GEMM_TILE), batch.div_ceil(GEMM_TILE), 1);
        }
        // o = H·W_out + b_out.
        pass.set_pipeline(&k.get(K::Head).pipeline);
        pass.set_bind_group(0, &bi.head, &[]);
        let (gx, gy) = grid_1d(batch, WG_1D);
        pass.dispatch_workgroups(gx, gy, 1);
        // Loss, dO, and the batch mean into the ring.
        pass.set_pipeline(&k.get(K::DsmLoss).pipeline);
        pass.set_bind_group(0, &bi.loss, &[]);
        pass.dispatch_workgroups(rows_1d, 1, 1);
        pass.set_pipeline(&k.get(K::DsmLossReduce).pipeline);
        pass.set_bind_group(0, &bi.loss_reduce.0, &[]);
        pass.set_bind_group(1, &bi.loss_reduce.1, &off);
        pass.dispatch_workgroups(1, 1, 1);
        // Output layer backward.
        pass.set_pipeline(&k.get(K::HeadDw).pipeline);
        pass.set_bind_group(0, &bi.head_dw, &[]);
        pass.dispatch_workgroups((width + 1).div_ceil(64), b.splits, 1);
        pass.set_pipeline(&k.get(K::HeadDx).pipeline);
        pass.set_bind_group(0, &bi.head_dx, &[]);
        let (gy, gz) = grid_rows(batch);
        pass.dispatch_workgroups(width.div_ceil(64), gy, gz);
        // Hidden layers backward, top down.
        let layers = net.layers();
        for l in (0..depth).rev() {
            let fan_in = layers[l].fan_in as u32;
            pass.set_pipeline(&k.get(K::GemmBackwardDw).pipeline);
            pass.set_bind_group(0, &bi.backward_dw[l], &[]);
            pass.dispatch_workgroups(
                width.div_ceil(GEMM_TILE),
                (fan_in + 1).div_ceil(GEMM_TILE),
                b.splits,
            );
            if let Some(dx) = &bi.backward_dx[l] {
                pass.set_pipeline(&k.get(K::GemmBackwardDx).pipeline);
                pass.set_bind_group(0, dx, &[]);
                pass.dispatch_workgroups(width.div_ceil(GEMM_TILE), batch.div_ceil(GEMM_TILE), 1);
            }
        }
        // Σ slices, Adam, EMA.
        pass.set_pipeline(&k.get(K::Adam).pipeline);
        pass.set_bind_group(0, &bi.adam.0, &[]);
        pass.set_bind_group(1, &bi.adam.1, &off);
        let (ax, ay) = grid_1d(self.num_params as u32, WG_1D);
        pass.dispatch_workgroups(ax, ay, 1);
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
            self.submit_steps(n)?;
            left -= u64::from(n);
            self.poll_losses(false)?;
            if let Some(e) = &self.paused {
                return Err(e.clone());
            }
        }
        Ok(self.losses.drain(..).collect())
    }

    fn submit_steps(&mut self, n: u32) -> Result<(), GpuError> {
        // Never let the ring wrap over losses not yet read back.
        if self.steps + u64::from(n) - self.readback.read_to
            > u64::from(LOSS_RING - STEPS_PER_SUBMIT)
        {
            self.poll_losses(true)?;
            self.start_readback()?;
            self.poll_losses(true)?;
        }
        let uniforms: Vec<TrainStepUniform> =
            (0..u64::from(n)).map(|i| self.step_uniform(i)).collect();
        self.slots.write(&self.ctx.queue, 0, &uniforms);
        let index = self.ctx.scoped("recording training steps", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("training steps"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("dsm step"),
                    timestamp_writes: None,
                });
                for i in 0..n {
                    self.encode_step(&mut pass, i);
                }
            }
            self.ctx.queue.submit([enc.finish()])
        })?;
        self.ctx
            .throttle(&mut self.submissions, index, MAX_IN_FLIGHT)?;
        self.steps += u64::from(n);
        self.adam_steps += u64::from(n);
        if self.steps - self.readback.read_to >= self.loss_every
            && self.readback.in_flight.is_none()
        {
            self.start_readback()?;
        }
        Ok(())
    }

    /// Copies the status word and the loss ring to the staging buffer and asks to map it.
    fn start_readback(&mut self) -> Result<(), GpuError> {
        if self.readback.in_flight.is_some() || self.readback.read_to >= self.steps {
            return Ok(());
        }
        let staging = self.readback.staging.clone();
        self.ctx.scoped("reading back the losses", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("loss readback"),
                });
            enc.copy_buffer_to_buffer(&self.status, 0, &staging, 0, 4);
            enc.copy_buffer_to_buffer(&self.ring, 0, &staging, 4, u64::from(LOSS_RING) * 4);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        let (tx, rx) = channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.readback.in_flight = Some((self.readback.read_to, self.steps, rx));
        Ok(())
    }

    /// Polls the device (firing map and device-lost callbacks), then collects the readback
    /// in flight if it is mapped (`wait`: block until it is).
    fn poll_losses(&mut self, wait: bool) -> Result<(), GpuError> {
        let poll = if wait && self.readback.in_flight.is_some() {
            wgpu::PollType::wait_indefinitely()
        } else {
            wgpu::PollType::Poll
        };
        self.ctx.device.poll(poll).map_err(|e| GpuError::Device {
            what: "polling the GPU".into(),
            message: e.to_string(),
        })?;
        self.ctx.check_alive()?;
        let Some((from, to, rx)) = self.readback.in_flight.take() else {
            return Ok(());
        };
        // After a blocking poll the mapping is done, but when the device is shared another
        // thread's poll may be the one running our callback: wait for it rather than miss it.
        let received = if wait {
            rx.recv_timeout(MAP_CALLBACK_WAIT).map_err(|e| {
                // A mapping still pending would block the next readback: drop it.
                self.readback.staging.unmap();
                GpuError::Readback(match e {
                    RecvTimeoutError::Timeout => "the loss readback never completed".into(),
                    RecvTimeoutError::Disconnected => "map callback dropped".into(),
                })
            })
        } else {
            match rx.try_recv() {
                Err(TryRecvError::Empty) => {
                    self.readback.in_flight = Some((from, to, rx));
                    return Ok(());
                }
                Err(TryRecvError::Disconnected) => {
                    Err(GpuError::Readback("map callback dropped".into()))
                }
                Ok(r) => Ok(r),
            }
        }?;
        received.map_err(|e| GpuError::Readback(e.to_string()))?;
        let (status, ring) = {
            let view = self
                .readback
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let ring: Vec<f32> = bytemuck::cast_slice(&words[1..]).to_vec();
            (words[0], ring)
        };
        self.readback.staging.unmap();
        for step in from..to {
            let loss = ring[(step % u64::from(LOSS_RING)) as usize];
            self.losses.push_back(LossPoint { step, loss });
        }
        self.readback.read_to = to;
        if status != 0 && self.paused.is_none() {
            self.pause_on_non_finite(u64::from(status - 1))?;
        }
        Ok(())
    }

    /// Restores the weights of the last finite step, zeroes Adam's moments, and pauses.
    fn pause_on_non_finite(&mut self, step: u64) -> Result<(), GpuError> {
        let p_bytes = self.num_params as u64 * 4;
        self.ctx.scoped("restoring the last good weights", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("restore last good weights"),
                });
            enc.copy_buffer_to_buffer(&self.backup, 0, &self.params, 0, p_bytes);
            enc.copy_buffer_to_buffer(&self.backup, p_bytes, &self.ema, 0, p_bytes);
            enc.clear_buffer(&self.moments, 0, None);
            self.ctx.queue.submit([enc.finish()]);
        })?;
        self.adam_steps = 0;
        // The steps after the bad one did nothing (the status word gates Adam).
        self.steps = step + 1;
        self.readback.read_to = self.readback.read_to.min(self.steps);
        self.losses.retain(|l| l.step <= step);
        self.paused = Some(GpuError::NonFinite { step });
        Ok(())
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

    /// Waits for the GPU and returns every loss not yet returned.
    pub fn flush(&mut self) -> Result<Vec<LossPoint>, GpuError> {
        self.poll_losses(true)?;
        self.start_readback()?;
        self.poll_losses(true)?;
        Ok(self.losses.drain(..).collect())
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

    /// The weights being trained (a readback: waits for the GPU).
    pub fn params(&self) -> Result<Vec<f32>, GpuError> {
        read_f32(&self.ctx, &self.params, 0, self.num_params)
    }

    /// Their moving average, the weights to sample with (a readback).
    pub fn ema_params(&self) -> Result<Vec<f32>, GpuError> {
        read_f32(&self.ctx, &self.ema, 0, self.num_params)
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
        self.cfg.net.check_params(params)?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        q.write_buffer(&self.ema, 0, bytemuck::cast_slice(params));
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

    /// Starts over from fresh weights drawn with `seed` (which also seeds the batches).
    pub fn reset(&mut self, seed: u32) -> Result<(), GpuError> {
        self.flush()?;
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

/// The importance sampler's inverse CDF (or a one-entry placeholder).
fn table_buffer(ctx: &GpuContext, cfg: &TrainConfig) -> Result<wgpu::Buffer, GpuError> {
    let table = match cfg.weighting {
        Weighting::Importance => ImportanceTable::new(&cfg.schedule, cfg.t_min).t_of_u,
        _ => vec![0.0; IMPORTANCE_TABLE_SIZE + 1],
    };
    ctx.scoped("uploading the importance table", || {
        storage_init(ctx, "importance table", &table)
    })?
}

/// The buffers of one batch size, checked against the device's limits before allocating.
fn batch_buffers(
    ctx: &GpuContext,
    net: &MlpConfig,
    batch: usize,
    num_params: usize,
) -> Result<BatchBuffers, GpuError> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(GpuError::Config(format!(
            "batch must be in 1..={MAX_BATCH} (got {batch})"
        )));
    }
    let b = batch as u64;
    let width = net.width as u64;
    let in_ld = net.input_dim() as u64;
    // Split-K: slices of at least SPLIT_ROWS rows, a multiple of the tile depth, at most
    // MAX_SPLITS of them.
    let per = (b.div_ceil(u64::from(MAX_SPLITS))).max(u64::from(SPLIT_ROWS).min(b));
    let k_split = per.next_multiple_of(16);
    let splits = b.div_ceil(k_split) as u32;
    let act_bytes = b * width * 4;
    // Check every size first, so a huge request fails before anything is allocated.
    for (what, bytes) in [
        ("the network input of a batch", b * in_ld * 4),
        ("one layer's activations of a batch", act_bytes),
        (
            "the gradient slices",
            u64::from(splits) * num_params as u64 * 4,
        ),
    ] {
        ctx.check_buffer_size(what, bytes)?;
    }
    ctx.scoped("allocating the batch buffers", || {
        let depth = net.depth;
        let layer = |name: &str| -> Result<Vec<wgpu::Buffer>, GpuError> {
            (0..depth)
                .map(|l| storage_buffer(ctx, &format!("{name} {l}"), act_bytes))
                .collect()
        };
        Ok::<_, GpuError>(BatchBuffers {
            batch: batch as u32,
            splits,
            k_split: k_split as u32,
            input: storage_buffer(ctx, "network input rows", b * in_ld * 4)?,
            samples: storage_buffer(ctx, "dsm samples", b * 32)?,
            z: layer("pre-activation Z")?,
            h: layer("activation H")?,
            dz: layer("gradient dZ")?,
            out: storage_buffer(ctx, "raw output o", b * 8)?,
            d_out: storage_buffer(ctx, "output gradient dO", b * 8)?,
            loss_partial: storage_buffer(
                ctx,
                "loss partial sums",
                b.div_ceil(u64::from(WG_1D)) * 4,
            )?,
            partials: storage_buffer(
                ctx,
                "gradient slices",
                u64::from(splits) * num_params as u64 * 4,
            )?,
        })
    })?
}
