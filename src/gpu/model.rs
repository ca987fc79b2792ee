//! The GPU network as a `ScoreModel`, so every CPU sampler (and the likelihood) can drive it.
//!
//! Each `eps` call uploads the points, runs the forward pass and the ε̂ conversion, and reads
//! ε̂ back: a round trip per call, fine for the CLI and tests. For animation, `GpuSampler`
//! keeps the particles on the GPU instead. A GPU failure never aborts: the model switches to
//! its CPU twin (`NetModel`) for good and remembers why.

use std::sync::{Arc, Mutex, PoisonError};

use super::context::GpuContext;
use super::error::GpuError;
use super::kernels::{K, Slots, StageUniform, WG_1D, grid_1d, param_id, read_f32};
use super::net::{Forward, eval_time};
use super::trainer::GpuWeights;
use crate::Point;
use crate::math::{Schedule, ScoreModel};
use crate::nn::{MlpConfig, NetModel};

/// Buffers for one point count.
#[derive(Debug)]
struct State {
    n: u32,
    x: wgpu::Buffer,
    eps: wgpu::Buffer,
    /// The raw output and an unused binding (kept with the bind groups that use them).
    _work: [wgpu::Buffer; 2],
    eval_slots: Slots,
    stage_slots: Slots,
    forward: Forward,
    bind: wgpu::BindGroup,
    slot_bind: wgpu::BindGroup,
}

/// ε̂(x, t) of the network, computed on the GPU.
#[derive(Debug)]
pub struct GpuModel {
    ctx: GpuContext,
    weights: Arc<GpuWeights>,
    schedule: Schedule,
    fallback: NetModel,
    state: Mutex<Option<State>>,
    failure: Mutex<Option<GpuError>>,
}

impl GpuModel {
    /// The network `config` with weights `params` under `schedule`.
    pub fn new(
        ctx: &GpuContext,
        config: MlpConfig,
        schedule: Schedule,
        params: Vec<f32>,
    ) -> Result<Self, GpuError> {
        super::error::check_samples(&config)?;
        let weights = GpuWeights::new(ctx, &config, &params)?;
        let fallback = NetModel::new(config, schedule, params)?;
        Ok(Self {
            ctx: ctx.clone(),
            weights,
            schedule,
            fallback,
            state: Mutex::new(None),
            failure: Mutex::new(None),
        })
    }

    /// The GPU error that made the model fall back to the CPU, if one did.
    pub fn failure(&self) -> Option<GpuError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The weights on the GPU (e.g. for a `GpuSampler`).
    pub fn weights(&self) -> &Arc<GpuWeights> {
        &self.weights
    }

    fn state_for(&self, n: u32) -> Result<State, GpuError> {
        let ctx = &self.ctx;
        let kernels = ctx.kernels()?;
        let bytes = u64::from(n) * 8;
        ctx.check_buffer_size("the points", bytes)?;
        let (x, out, eps, acc) = ctx.scoped("allocating the model's buffers", || {
            let buf = |label: &str, usage: wgpu::BufferUsages| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let st = wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST;
            (
                buf("model points", st),
                buf("model raw output", st),
                buf("model eps", st),
                buf("model unused", st),
            )
        })?;
        let eval_slots = Slots::new(&ctx.device, "model eval time", 16, 1);
        let stage_slots = Slots::new(&ctx.device, "model eps conversion", 64, 1);
        let forward = Forward::new(
            ctx,
            &self.weights.config,
            &self.weights.buffer,
            &[&x],
            &out,
            n,
            &eval_slots,
        )?;
        let (bind, slot_bind) = ctx.scoped("binding the model", || {
            let k = kernels.get(K::EpsOut);
            (
                k.bind(&ctx.device, "model eps_out", &[&x, &out, &eps, &acc]),
                k.bind_slots(&ctx.device, "model eps_out slot", &stage_slots),
            )
        })?;
        let slot_bind =
            slot_bind.ok_or_else(|| GpuError::Config("eps_out has no slot layout".into()))?;
        Ok(State {
            n,
            x,
            eps,
            _work: [out, acc],
            eval_slots,
            stage_slots,
            forward,
            bind,
            slot_bind,
        })
    }

    /// ε̂ on the GPU.
    pub fn try_eps(&self, xs: &[Point], t: f32, out: &mut [Point]) -> Result<(), GpuError> {
        if xs.len() != out.len() {
            return Err(GpuError::Config("eps: xs and out differ in length".into()));
        }
        if xs.is_empty() {
            return Ok(());
        }
        let n = u32::try_from(xs.len()).map_err(|_| GpuError::Config("too many points".into()))?;
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.as_ref().is_none_or(|s| s.n != n) {
            *guard = Some(self.state_for(n)?);
        }
        let Some(st) = guard.as_ref() else {
            return Err(GpuError::Config("model state missing".into()));
        };
        let ctx = &self.ctx;
        let kernels = ctx.kernels()?;
        ctx.queue.write_buffer(&st.x, 0, bytemuck::cast_slice(xs));
        st.eval_slots.write(&ctx.queue, 0, &[eval_time(t)]);
        let uniform = StageUniform {
            param: param_id(self.weights.config.param),
            n,
            alpha: self.schedule.alpha(t as f64) as f32,
            sigma: self.schedule.sigma(t as f64) as f32,
            ..StageUniform::default()
        };
        st.stage_slots.write(&ctx.queue, 0, &[uniform]);
        ctx.scoped("evaluating the network", || {
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("model eps"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("model eps"),
                    timestamp_writes: None,
                });
                st.forward.encode(&mut pass, 0, 0);
                pass.set_pipeline(&kernels.get(K::EpsOut).pipeline);
                pass.set_bind_group(0, &st.bind, &[]);
                pass.set_bind_group(1, &st.slot_bind, &[0]);
                let (gx, gy) = grid_1d(n, WG_1D);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            ctx.queue.submit([enc.finish()]);
        })?;
        let flat = read_f32(ctx, &st.eps, 0, 2 * xs.len())?;
        for (o, e) in out.iter_mut().zip(flat.chunks_exact(2)) {
            *o = [e[0], e[1]];
        }
        Ok(())
    }
}

impl ScoreModel for GpuModel {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        let failed = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !failed {
            match self.try_eps(xs, t, out) {
                Ok(()) => return,
                Err(e) => {
                    eprintln!("GPU model failed ({e}); continuing on the CPU");
                    *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                }
            }
        }
        self.fallback.eps(xs, t, out);
    }
}
