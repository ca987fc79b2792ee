//! Particles that live on the GPU, stepped by the sampler kernels (`shaders/sampler.wgsl`):
//! the twin of `math::solvers::Sampler`, step for step, for all samplers (docs/architecture.md §3).
//!
//! A step is one or more *stages*; a stage is one network evaluation (`net::Forward`, which
//! writes the raw output o of every particle) followed by an update kernel. Every
//! coefficient common to all particles is computed on the CPU in f64, exactly as the CPU
//! sampler computes it, and written to a per-stage uniform slot, so many steps can be
//! recorded into one command encoder. The particle buffer can be bound as a vertex buffer by
//! the renderer: no readback during an animation.

use std::sync::Arc;

use super::context::GpuContext;
use super::error::GpuError;
use super::kernels::{K, Kernels, Slots, StageUniform, WG_1D, grid_1d, param_id, read_f32};
use super::net::{Forward, eval_time};
use super::trainer::GpuWeights;
use crate::Point;
use crate::math::rng::{STREAM_CORRECTOR, STREAM_STEP};
use crate::math::solvers::{SamplerConfig, SamplerKind, time_grid};
use crate::math::{Process, Schedule};

/// Stage slots per submission (RK4 uses 4 per step).
pub const STAGE_SLOTS: u32 = 64;

/// What a stage runs after the network.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Update {
    Affine,
    OdeStage,
    Dpm2m,
    /// Langevin corrector: norms, reduce, correct.
    Corrector,
}

/// One stage: evaluate the network on `source` (0 = x, 1 = xs) at `t`, then `update`.
#[derive(Clone, Copy, Debug)]
struct Stage {
    t: f64,
    source: usize,
    update: Update,
    uniform: StageUniform,
}

/// Particles on the GPU and a sampler moving them.
#[derive(Debug)]
pub struct GpuSampler {
    ctx: GpuContext,
    kernels: Arc<Kernels>,
    weights: Arc<GpuWeights>,
    schedule: Schedule,
    cfg: SamplerConfig,
    n: u32,
    /// Particles `[n][2]` (also usable as a vertex buffer).
    x: wgpu::Buffer,
    /// Stage points or previous data predictions `xs`, the stage accumulator, and the raw
    /// output o (bound in `bind` and `forward`; kept here with the sampler).
    _work: [wgpu::Buffer; 3],
    eval_slots: Slots,
    stage_slots: Slots,
    forward: Forward,
    bind: wgpu::BindGroup,
    /// Group-1 bind groups of the sampler kernels (one layout per kernel).
    slot_binds: Vec<(K, wgpu::BindGroup)>,
    grid: Vec<f64>,
    step: usize,
    nfe: usize,
    /// DPM-Solver++(2M): the λ step of the previous step, once there is one.
    prev_h: Option<f64>,
    submissions: std::collections::VecDeque<wgpu::SubmissionIndex>,
}

impl GpuSampler {
    /// `n` particles drawn from the prior N(0, I) with `cfg.seed` (the same start as
    /// `math::solvers::prior`), to be moved with `weights` under `schedule`.
    pub fn new(
        ctx: &GpuContext,
        weights: Arc<GpuWeights>,
        schedule: Schedule,
        cfg: SamplerConfig,
        n: usize,
    ) -> Result<Self, GpuError> {
        super::error::check_supported(&weights.config)?;
        // Flow matching runs the kind's counterpart, on the grid the CPU sampler then uses.
        let cfg = SamplerConfig {
            kind: cfg.kind.on(weights.config.process),
            ..cfg
        };
        schedule
            .validate()
            .map_err(|e| GpuError::Config(e.to_string()))?;
        if n == 0 || n > (u32::MAX / 2) as usize {
            return Err(GpuError::Config(format!(
                "particle count must be in 1..2³¹ (got {n})"
            )));
        }
        let kernels = ctx.kernels()?;
        let n32 = n as u32;
        let bytes = n as u64 * 8;
        ctx.check_buffer_size("the particles", bytes)?;
        let made = ctx.scoped("allocating the particles", || {
            let buf = |label: &str, vertex: bool| {
                let mut usage = wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST;
                if vertex {
                    usage |= wgpu::BufferUsages::VERTEX;
                }
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes.max(8),
                    usage,
                    mapped_at_creation: false,
                })
            };
            (
                buf("particles x", true),
                buf("stage points / previous x0", false),
                buf("stage accumulator", false),
                buf("raw output o", false),
            )
        })?;
        let (x, xs, acc, out) = made;
        let eval_slots = Slots::new(&ctx.device, "sampler eval times", 16, STAGE_SLOTS);
        let stage_slots = Slots::new(&ctx.device, "sampler stages", 64, STAGE_SLOTS);
        let forward = Forward::new(
            ctx,
            &weights.config,
            &weights.buffer,
            &[&x, &xs],
            &out,
            n32,
            &eval_slots,
        )?;
        let (bind, slot_binds) = ctx.scoped("binding the sampler", || {
            let bind = kernels
                .get(K::Affine)
                .bind(&ctx.device, "sampler", &[&x, &out, &xs, &acc]);
            let slot_binds = [
                K::Prior,
                K::Affine,
                K::OdeStage,
                K::Dpm2m,
                K::PcNorms,
                K::PcReduce,
                K::PcCorrect,
                K::EpsOut,
            ]
            .into_iter()
            .filter_map(|k| {
                kernels
                    .get(k)
                    .bind_slots(&ctx.device, "sampler stage slot", &stage_slots)
                    .map(|b| (k, b))
            })
            .collect::<Vec<_>>();
            (bind, slot_binds)
        })?;
        let mut s = Self {
            ctx: ctx.clone(),
            kernels,
            weights,
            schedule,
            grid: time_grid(&schedule, &cfg),
            cfg: SamplerConfig {
                steps: cfg.steps.max(1),
                ..cfg
            },
            n: n32,
            x,
            _work: [xs, acc, out],
            eval_slots,
            stage_slots,
            forward,
            bind,
            slot_binds,
            step: 0,
            nfe: 0,
            prev_h: None,
            submissions: std::collections::VecDeque::new(),
        };
        s.reset_to_prior()?;
        Ok(s)
    }

    fn slot_bind(&self, k: K) -> Option<&wgpu::BindGroup> {
        self.slot_binds
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|(_, b)| b)
    }

    /// Back to step 0 with fresh prior particles (same seed: the same particles).
    pub fn reset_to_prior(&mut self) -> Result<(), GpuError> {
        self.step = 0;
        self.nfe = 0;
        self.prev_h = None;
        let u = StageUniform {
            n: self.n,
            seed: self.cfg.seed,
            ..StageUniform::default()
        };
        self.stage_slots.write(&self.ctx.queue, 0, &[u]);
        self.ctx.scoped("drawing the prior", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("prior"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("prior"),
                    timestamp_writes: None,
                });
                self.dispatch_update(&mut pass, K::Prior, 0);
            }
            self.ctx.queue.submit([enc.finish()]);
        })
    }

    /// Starts from given particles instead (e.g. the data, to watch the forward process).
    pub fn set_particles(&mut self, xs: &[Point]) -> Result<(), GpuError> {
        if xs.len() != self.n as usize {
            return Err(GpuError::Config(format!(
                "{} particles given, the sampler has {}",
                xs.len(),
                self.n
            )));
        }
        self.ctx
            .queue
            .write_buffer(&self.x, 0, bytemuck::cast_slice(xs));
        self.step = 0;
        self.nfe = 0;
        self.prev_h = None;
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.cfg.steps
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The time the particles are at now.
    pub fn t(&self) -> f64 {
        self.grid[self.step.min(self.grid.len() - 1)]
    }

    /// Network evaluations so far.
    pub fn nfe(&self) -> usize {
        self.nfe
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.n as usize
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The device the run is on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The particle buffer, `[n]` × `vec2<f32>`, usable as storage or vertex buffer.
    pub fn particles_buffer(&self) -> &wgpu::Buffer {
        &self.x
    }

    /// The version of the weights the sampler reads (they change under it when the trainer
    /// publishes: the next step uses the new ones).
    pub fn weights_version(&self) -> u64 {
        self.weights.version()
    }

    /// Reads the particles back (tests, CLI output, metrics).
    pub fn read_particles(&self) -> Result<Vec<Point>, GpuError> {
        let flat = read_f32(&self.ctx, &self.x, 0, 2 * self.n as usize)?;
        Ok(flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
    }

    /// Advances one step (recorded and submitted; does not wait).
    pub fn step(&mut self) -> Result<(), GpuError> {
        self.steps(1)
    }

    /// Advances up to `k` steps, as many per command encoder as the stage slots allow.
    pub fn steps(&mut self, k: usize) -> Result<(), GpuError> {
        let mut left = k.min(self.cfg.steps - self.step.min(self.cfg.steps));
        while left > 0 {
            let mut stages = Vec::new();
            let mut taken = 0;
            while taken < left {
                let next = self.stages_of(self.step + taken);
                if stages.len() + next.len() > STAGE_SLOTS as usize {
                    break;
                }
                stages.extend(next);
                taken += 1;
            }
            self.submit(&stages)?;
            self.step += taken;
            left -= taken;
        }
        Ok(())
    }

    /// Runs every remaining step and waits for the GPU.
    pub fn run(&mut self) -> Result<(), GpuError> {
        self.steps(self.cfg.steps)?;
        self.ctx.wait()
    }

    /// Records and submits stages, each with its own slot.
    fn submit(&mut self, stages: &[Stage]) -> Result<(), GpuError> {
        let times: Vec<_> = stages.iter().map(|s| eval_time(s.t as f32)).collect();
        let uniforms: Vec<_> = stages.iter().map(|s| s.uniform).collect();
        self.eval_slots.write(&self.ctx.queue, 0, &times);
        self.stage_slots.write(&self.ctx.queue, 0, &uniforms);
        let index = self.ctx.scoped("recording sampler steps", || {
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("sampler steps"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("sampler steps"),
                    timestamp_writes: None,
                });
                for (i, stage) in stages.iter().enumerate() {
                    let slot = i as u32;
                    // ε̂ of every particle at the stage's point and time.
                    self.forward.encode(&mut pass, stage.source, slot);
                    match stage.update {
                        Update::Affine => self.dispatch_update(&mut pass, K::Affine, slot),
                        Update::OdeStage => self.dispatch_update(&mut pass, K::OdeStage, slot),
                        Update::Dpm2m => self.dispatch_update(&mut pass, K::Dpm2m, slot),
                        Update::Corrector => {
                            self.dispatch_update(&mut pass, K::PcNorms, slot);
                            self.dispatch_one(&mut pass, K::PcReduce, slot);
                            self.dispatch_update(&mut pass, K::PcCorrect, slot);
                        }
                    }
                }
            }
            self.ctx.queue.submit([enc.finish()])
        })?;
        // At most two submissions ahead of the GPU.
        self.ctx.throttle(&mut self.submissions, index, 2)?;
        self.nfe += stages.len();
        Ok(())
    }

    /// One thread per particle.
    fn dispatch_update(&self, pass: &mut wgpu::ComputePass<'_>, k: K, slot: u32) {
        let Some(slot_bind) = self.slot_bind(k) else {
            return;
        };
        pass.set_pipeline(&self.kernels.get(k).pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_bind_group(1, slot_bind, &[Slots::offset(slot)]);
        let (gx, gy) = grid_1d(self.n, WG_1D);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// One workgroup.
    fn dispatch_one(&self, pass: &mut wgpu::ComputePass<'_>, k: K, slot: u32) {
        let Some(slot_bind) = self.slot_bind(k) else {
            return;
        };
        pass.set_pipeline(&self.kernels.get(k).pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_bind_group(1, slot_bind, &[Slots::offset(slot)]);
        pass.dispatch_workgroups(1, 1, 1);
    }

    /// The stages of step `step`, with the coefficients of `math::solvers` (f64, then f32).
    fn stages_of(&mut self, step: usize) -> Vec<Stage> {
        let sch = self.schedule;
        // Flow matching (docs/architecture.md §3.9, the twin of `Sampler::fm_step`): the raw
        // output is the velocity v (the ε slot, so `eps_hat` passes it through), and
        // `SamplerKind::on` has left only the reverse SDE and the Runge–Kutta solvers.
        let process = self.weights.config.process;
        let (t, s) = (self.grid[step], self.grid[step + 1]);
        let h = s - t;
        let k = step as u32;
        let base = StageUniform {
            param: param_id(self.weights.config.param),
            n: self.n,
            seed: self.cfg.seed,
            step: k,
            stream: STREAM_STEP,
            ..StageUniform::default()
        };
        let at = |time: f64| {
            let (alpha, sigma) = process.alpha_sigma(&sch, time);
            (alpha as f32, sigma as f32)
        };
        let affine = |time: f64, c: [f32; 3]| {
            let (alpha, sigma) = at(time);
            Stage {
                t: time,
                source: 0,
                update: Update::Affine,
                uniform: StageUniform {
                    alpha,
                    sigma,
                    c: [c[0], c[1], c[2], 0.0, 0.0, 0.0],
                    ..base
                },
            }
        };
        let em = |time: f64, h: f64| {
            let c = match process {
                // x ← x + h (−½βx + β ε̂/σ) + √(β|h|) z.
                Process::Vp => {
                    let beta = sch.beta(time);
                    [
                        1.0 - 0.5 * beta * h,
                        h * beta / sch.sigma(time),
                        (beta * -h).sqrt(),
                    ]
                }
                // x ← x + h (v + x + (1 − t) v) + √(2t|h|) z.
                Process::Fm => [1.0 + h, h * (2.0 - time), (2.0 * time * -h).sqrt()],
            };
            affine(time, c.map(|v| v as f32))
        };
        // One Runge–Kutta stage on the ODE drift d = c_x x + c_e o: the PF-ODE's
        // −½β x + ½(β/σ) ε̂, or flow matching's v.
        let ode =
            |time: f64, source: usize, w: f32, next: f64, fin: f64, first: bool, last: bool| {
                let (c_x, c_e) = match process {
                    Process::Vp => {
                        let beta = sch.beta(time);
                        (-0.5 * beta, 0.5 * beta / sch.sigma(time))
                    }
                    Process::Fm => (0.0, 1.0),
                };
                let (alpha, sigma) = at(time);
                Stage {
                    t: time,
                    source,
                    update: Update::OdeStage,
                    uniform: StageUniform {
                        alpha,
                        sigma,
                        first: u32::from(first),
                        last: u32::from(last),
                        c: [c_x as f32, c_e as f32, w, next as f32, fin as f32, 0.0],
                        ..base
                    },
                }
            };
        match self.cfg.kind {
            SamplerKind::Em => vec![em(t, h)],
            SamplerKind::OdeEuler => vec![ode(t, 0, 1.0, 0.0, h, true, true)],
            SamplerKind::Heun => vec![
                ode(t, 0, 1.0, h, 0.0, true, false),
                ode(t + h, 1, 1.0, 0.0, 0.5 * h, false, true),
            ],
            SamplerKind::Rk4 => vec![
                ode(t, 0, 1.0, 0.5 * h, 0.0, true, false),
                ode(t + 0.5 * h, 1, 2.0, 0.5 * h, 0.0, false, false),
                ode(t + 0.5 * h, 1, 2.0, h, 0.0, false, false),
                ode(t + h, 1, 1.0, 0.0, h / 6.0, false, true),
            ],
            SamplerKind::Ddpm | SamplerKind::Ddim => {
                let eta = if self.cfg.kind == SamplerKind::Ddpm {
                    1.0
                } else {
                    self.cfg.eta
                };
                let (a_t, g_t, a_s, g_s) = (sch.alpha(t), sch.sigma(t), sch.alpha(s), sch.sigma(s));
                let c = eta * (g_s / g_t) * (1.0 - (a_t / a_s).powi(2)).max(0.0).sqrt();
                let dir = (g_s * g_s - c * c).max(0.0).sqrt();
                let (ca, cg, cd, cc) = (
                    (a_s / a_t) as f32,
                    (a_s * g_t / a_t) as f32,
                    dir as f32,
                    c as f32,
                );
                vec![affine(t, [ca, cd - cg, cc])]
            }
            SamplerKind::Dpm2m => {
                let (a_t, g_t, a_s, g_s) = (sch.alpha(t), sch.sigma(t), sch.alpha(s), sch.sigma(s));
                let hl = sch.lambda(s) - sch.lambda(t);
                let (w_now, w_prev, has_prev) = match self.prev_h {
                    Some(h_prev) => {
                        let r = h_prev / hl;
                        (1.0 + 0.5 / r, -0.5 / r, 1)
                    }
                    None => (1.0, 0.0, 0),
                };
                self.prev_h = Some(hl);
                let (alpha, sigma) = at(t);
                vec![Stage {
                    t,
                    source: 0,
                    update: Update::Dpm2m,
                    uniform: StageUniform {
                        alpha,
                        sigma,
                        has_prev,
                        c: [
                            a_t as f32,
                            g_t as f32,
                            (g_s / g_t) as f32,
                            (-a_s * (-hl).exp_m1()) as f32,
                            w_now as f32,
                            w_prev as f32,
                        ],
                        ..base
                    },
                }]
            }
            SamplerKind::Pc => {
                let (alpha, sigma) = at(s);
                vec![
                    em(t, h),
                    Stage {
                        t: s,
                        source: 0,
                        update: Update::Corrector,
                        uniform: StageUniform {
                            alpha,
                            sigma,
                            stream: STREAM_CORRECTOR,
                            c: [0.0, self.cfg.snr as f32, 0.0, 0.0, 0.0, 0.0],
                            ..base
                        },
                    },
                ]
            }
            SamplerKind::Langevin => {
                let sigma = sch.sigma(t);
                let delta = self.cfg.langevin_step.unwrap_or(sigma * sigma);
                vec![affine(
                    t,
                    [1.0, (-delta / sigma) as f32, (2.0 * delta).sqrt() as f32],
                )]
            }
        }
    }
}

/// Samples `n` particles of a CPU model's weights entirely on the GPU (prior and every step;
/// one readback at the end): the GPU twin of `math::solvers::sample`.
pub fn sample(
    ctx: &GpuContext,
    model: &crate::nn::NetModel,
    cfg: SamplerConfig,
    n: usize,
) -> Result<(Vec<Point>, usize), GpuError> {
    let weights = GpuWeights::new(ctx, model.config(), model.params())?;
    let mut s = GpuSampler::new(ctx, weights, *model.schedule(), cfg, n)?;
    s.run()?;
    Ok((s.read_particles()?, s.nfe()))
}
