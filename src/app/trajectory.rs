//! Particle trajectories computed off the UI thread. A reverse run with the network costs
//! 10–100 ms per step on a laptop CPU, so the canvas never computes one itself: a worker
//! steps the particles and stores frames, and the player shows the frame nearest the time
//! it is at (waiting at the newest frame while the worker is behind).
//!
//! Frames are kept within a memory budget (every k-th step at 100 k particles × 1000 steps);
//! the few particles drawn as trails keep every step.
//!
//! When training runs on the GPU that renders the window, a reverse run samples there: the
//! particles and their stored frames stay in GPU buffers that the canvas draws from, and only
//! the trail particles (a few dozen points per step) come back to the CPU.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::Point;
use crate::backend::GpuSnapshot;
use crate::gpu::{GpuContext, GpuError, GpuSampler};
use crate::math::Schedule;
use crate::math::sde::em_forward_step;
use crate::math::solvers::{Sampler, SamplerConfig, prior};
use crate::train::SharedModel;

/// Bytes of stored frames one trajectory may hold.
const FRAME_BUDGET_BYTES: usize = 96 << 20;
/// Particles drawn as trails (the first ones of the run).
pub const TRAILS: usize = 24;
/// Euler–Maruyama steps of a forward path from t = 0 to 1.
pub const FORWARD_STEPS: usize = 200;
/// GPU steps between trail read-backs (one wait for the GPU each).
const GPU_CHUNK: usize = 8;

/// What to compute.
#[derive(Clone)]
pub enum Job {
    /// Euler–Maruyama paths of the forward SDE from the given x₀.
    Forward {
        schedule: Schedule,
        x0: Arc<Vec<Point>>,
        seed: u32,
    },
    /// A reverse sampler run from N(0, I) (the start depends only on the seed, so SDE and
    /// ODE runs share it).
    Reverse {
        schedule: Schedule,
        model: SharedModel,
        cfg: SamplerConfig,
        particles: usize,
        /// The same weights on the rendering GPU: sample there (`model` if that fails).
        gpu: Option<Box<GpuSnapshot>>,
    },
}

/// One stored frame: points on the CPU, or a range of a GPU buffer the canvas draws from.
#[derive(Clone)]
pub enum Stored {
    Cpu(Arc<Vec<Point>>),
    Gpu(GpuFrame),
}

/// The GPU buffer holding a run's stored frames, and its device.
pub struct FrameStore {
    pub ctx: GpuContext,
    pub buffer: wgpu::Buffer,
}

/// `len` particles (`vec2<f32>` each) at byte `offset` of a run's frame store.
#[derive(Clone)]
pub struct GpuFrame {
    pub store: Arc<FrameStore>,
    pub offset: u64,
    pub len: usize,
}

impl GpuFrame {
    /// The particles on the CPU (an export, not the animation).
    pub fn read(&self) -> Result<Vec<Point>, GpuError> {
        let (ctx, buffer) = (&self.store.ctx, &self.store.buffer);
        let flat = crate::gpu::kernels::read_f32(ctx, buffer, self.offset / 4, 2 * self.len)?;
        Ok(flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
    }
}

/// The frames computed so far.
#[derive(Default)]
pub struct Trajectory {
    /// Time of every computed step (ascending forward, descending in reverse).
    pub times: Vec<f64>,
    /// Frame j holds step `j * stride` (the last frame is the last step).
    frames: Vec<(usize, Stored)>,
    stride: usize,
    /// The first [`TRAILS`] particles at every computed step.
    pub trails: Vec<Vec<Point>>,
    pub total_steps: usize,
    pub nfe: usize,
    pub done: bool,
    pub failed: Option<String>,
    pub compute_secs: f64,
    /// The run samples on the GPU.
    pub on_gpu: bool,
    /// Why a GPU run went on on the CPU, if it did.
    pub gpu_failure: Option<String>,
}

impl Trajectory {
    /// Steps computed so far (step 0 is the start).
    pub fn steps_done(&self) -> usize {
        self.times.len().saturating_sub(1)
    }

    /// The stored frame nearest before `step`, and the step it holds.
    pub fn frame_at(&self, step: usize) -> Option<(usize, Stored)> {
        let i = self.frames.partition_point(|(s, _)| *s <= step);
        self.frames.get(i.saturating_sub(1)).cloned()
    }

    /// The computed step whose time is nearest `t`.
    pub fn step_near(&self, t: f64) -> usize {
        self.times
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - t).abs().total_cmp(&(b.1 - t).abs()))
            .map_or(0, |(i, _)| i)
    }
}

/// A running (or finished) computation; dropping it or starting another cancels it.
pub struct Runner {
    shared: Arc<Mutex<Trajectory>>,
    cancel: Arc<AtomicBool>,
}

impl Runner {
    pub fn start(job: Job) -> Self {
        let shared = Arc::new(Mutex::new(Trajectory::default()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (s, c) = (Arc::clone(&shared), Arc::clone(&cancel));
        let spawned = std::thread::Builder::new()
            .name("trajectory".into())
            .spawn(move || {
                crate::train::lower_priority();
                let result = catch_unwind(AssertUnwindSafe(|| compute(job, &s, &c)));
                if let Err(payload) = result {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    if let Ok(mut t) = s.lock() {
                        t.failed = Some(message);
                    }
                }
            });
        if let Err(e) = spawned
            && let Ok(mut t) = shared.lock()
        {
            t.failed = Some(format!("cannot start a thread: {e}"));
        }
        Self { shared, cancel }
    }

    /// Reads the trajectory (held only while `f` runs; the worker locks per step).
    pub fn with<R>(&self, f: impl FnOnce(&Trajectory) -> R) -> Option<R> {
        self.shared.lock().ok().map(|t| f(&t))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn compute(job: Job, shared: &Mutex<Trajectory>, cancel: &AtomicBool) {
    let start = Instant::now();
    let (mut x, total_steps) = match &job {
        Job::Forward { x0, .. } => (x0.as_ref().clone(), FORWARD_STEPS),
        Job::Reverse { cfg, particles, .. } => (prior(*particles, cfg.seed), cfg.steps.max(1)),
    };
    let stride = frame_stride(total_steps, x.len());
    let record = |step: usize, t: f64, x: &[Point], nfe: usize, done: bool| {
        let keep = step.is_multiple_of(stride) || done;
        let frame = keep.then(|| Stored::Cpu(Arc::new(x.to_vec())));
        let Ok(mut traj) = shared.lock() else { return };
        traj.times.push(t);
        traj.trails.push(x.iter().take(TRAILS).copied().collect());
        if let Some(frame) = frame {
            traj.frames.push((step, frame));
        }
        traj.nfe = nfe;
        traj.done = done;
        traj.compute_secs = start.elapsed().as_secs_f64();
    };
    if let Ok(mut traj) = shared.lock() {
        traj.stride = stride;
        traj.total_steps = total_steps;
    }
    match job {
        Job::Forward { schedule, seed, .. } => {
            let dt = 1.0 / total_steps as f64;
            record(0, 0.0, &x, 0, false);
            for k in 0..total_steps {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                em_forward_step(&schedule, k as f64 * dt, dt, &mut x, seed, k as u32);
                let done = k + 1 == total_steps;
                record(k + 1, (k + 1) as f64 * dt, &x, 0, done);
            }
        }
        Job::Reverse {
            schedule,
            model,
            cfg,
            particles,
            gpu,
        } => {
            if let Some(gpu) = gpu {
                match reverse_on_gpu(&gpu, schedule, cfg, particles, shared, cancel) {
                    Ok(()) => return,
                    Err(e) => {
                        // Start over on the CPU, from the same noise.
                        if let Ok(mut traj) = shared.lock() {
                            *traj = Trajectory {
                                stride,
                                total_steps,
                                gpu_failure: Some(e.to_string()),
                                ..Trajectory::default()
                            };
                        }
                    }
                }
            }
            let mut sampler = Sampler::new(schedule, cfg);
            record(0, sampler.t(), &x, 0, false);
            let mut step = 0;
            while !sampler.is_done() {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                sampler.step(model.as_ref(), &mut x);
                step += 1;
                record(step, sampler.t(), &x, sampler.nfe(), sampler.is_done());
            }
        }
    }
}

/// Store every `stride`-th frame so that a whole run fits `FRAME_BUDGET_BYTES`.
fn frame_stride(total_steps: usize, particles: usize) -> usize {
    let frame_bytes = particles * std::mem::size_of::<Point>();
    ((total_steps + 1) * frame_bytes)
        .div_ceil(FRAME_BUDGET_BYTES)
        .max(1)
}

/// A reverse run on the GPU: after each step the particles are copied (on the GPU) into the
/// frame buffer when the step is stored, and the trail particles into a small buffer read
/// back every `GPU_CHUNK` steps; a chunk's frames are published once that read-back shows the
/// GPU has finished them.
fn reverse_on_gpu(
    gpu: &GpuSnapshot,
    schedule: Schedule,
    cfg: SamplerConfig,
    particles: usize,
    shared: &Mutex<Trajectory>,
    cancel: &AtomicBool,
) -> Result<(), GpuError> {
    let start = Instant::now();
    let ctx = &gpu.ctx;
    let mut sampler = GpuSampler::new(ctx, Arc::clone(&gpu.weights), schedule, cfg, particles)?;
    let total_steps = cfg.steps.max(1);
    let stride = frame_stride(total_steps, particles);
    let frame_bytes = particles as u64 * 8;
    let stored = (total_steps / stride + 2) as u64;
    ctx.check_buffer_size("the stored frames", stored * frame_bytes)?;
    let traced = TRAILS.min(particles);
    let trail_bytes = traced as u64 * 8;
    let (frames, trails) = ctx.scoped("allocating the stored frames", || {
        let frames = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stored frames"),
            size: stored * frame_bytes,
            usage: wgpu::BufferUsages::VERTEX
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let trails = crate::gpu::kernels::storage_buffer(
            ctx,
            "trail particles",
            GPU_CHUNK as u64 * trail_bytes,
        );
        let store = FrameStore {
            ctx: ctx.clone(),
            buffer: frames,
        };
        (Arc::new(store), trails)
    })?;
    let trails = trails?;
    if let Ok(mut traj) = shared.lock() {
        traj.stride = stride;
        traj.total_steps = total_steps;
        traj.on_gpu = true;
    }
    let mut slot = 0u64;
    let mut step = 0usize;
    let mut started = false;
    loop {
        // A chunk: step 0 alone, then up to GPU_CHUNK steps.
        let mut chunk = Vec::new();
        while chunk.len() < GPU_CHUNK {
            if cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            if started {
                sampler.step()?;
                step += 1;
            }
            started = true;
            let j = chunk.len() as u64;
            let done = sampler.is_done();
            let keep = step.is_multiple_of(stride) || done;
            let offset = slot * frame_bytes;
            ctx.scoped("storing a frame", || {
                let mut enc = ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("store frame"),
                    });
                let x = sampler.particles_buffer();
                enc.copy_buffer_to_buffer(x, 0, &trails, j * trail_bytes, trail_bytes);
                if keep {
                    enc.copy_buffer_to_buffer(x, 0, &frames.buffer, offset, frame_bytes);
                }
                ctx.queue.submit([enc.finish()]);
            })?;
            let frame = keep.then(|| {
                slot += 1;
                GpuFrame {
                    store: Arc::clone(&frames),
                    offset,
                    len: particles,
                }
            });
            chunk.push((step, sampler.t(), frame, sampler.nfe(), done));
            if step == 0 || done {
                break;
            }
        }
        let flat = crate::gpu::kernels::read_f32(ctx, &trails, 0, chunk.len() * traced * 2)?;
        let Ok(mut traj) = shared.lock() else {
            return Ok(());
        };
        for ((step, t, frame, nfe, done), row) in chunk.into_iter().zip(flat.chunks(traced * 2)) {
            traj.times.push(t);
            traj.trails
                .push(row.chunks_exact(2).map(|p| [p[0], p[1]]).collect());
            if let Some(frame) = frame {
                traj.frames.push((step, Stored::Gpu(frame)));
            }
            traj.nfe = nfe;
            traj.done = done;
        }
        traj.compute_secs = start.elapsed().as_secs_f64();
        if traj.done {
            return Ok(());
        }
    }
}
