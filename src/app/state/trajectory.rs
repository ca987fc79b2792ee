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
//! the trail particles (a few dozen points per step) come back to the CPU. In a browser the
//! run samples on the page's WebGPU device too, and its stored frames come back with the
//! trails, collected on later frames instead of waited for.
//!
//! A run is a `crate::work` job: one solver step (on the GPU, one chunk of steps) per step.

use std::sync::{Arc, Mutex};
use web_time::Instant;

use crate::Point;
use crate::backend::GpuSnapshot;
use crate::gpu::kernels::AsyncRead;
use crate::gpu::{GpuContext, GpuError, GpuSampler};
use crate::math::Schedule;
use crate::math::sde::em_forward_step;
use crate::math::solvers::{Sampler, SamplerConfig, prior};
use crate::train::SharedModel;
use crate::work::{self, Control, Outcome, Step, Worker};

/// Bytes of stored frames one trajectory may hold.
const FRAME_BUDGET_BYTES: usize = 96 << 20;
/// Particles drawn as trails (the first ones of the run).
pub const TRAILS: usize = 24;
/// Euler–Maruyama steps of a forward path from t = 0 to 1.
pub const FORWARD_STEPS: usize = 200;
/// GPU steps between trail read-backs (one wait for the GPU each).
const GPU_CHUNK: usize = 8;
/// How long a run waits before looking again for a read-back the GPU has not finished (only
/// in a browser).
const GPU_POLL: std::time::Duration = std::time::Duration::from_millis(2);

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

    /// The stored frames up to and including `step`, in order.
    pub fn frames_until(&self, step: usize) -> impl Iterator<Item = &Stored> {
        self.frames
            .iter()
            .take_while(move |(s, _)| *s <= step)
            .map(|(_, stored)| stored)
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

/// Most memory one run may take besides its stored frames (which `frame_stride` keeps within
/// `FRAME_BUDGET_BYTES`): the particles and the sampler's work arrays. A run that would need
/// more is refused before anything is allocated (a settings file or a slider gone wrong must
/// not end the app with an allocation failure).
const RUN_BUDGET_BYTES: usize = 1 << 30;
/// Copies of the particles a run holds at once: the state, up to four RK4 stages or
/// multistep histories, the first and last stored frames.
const PARTICLE_COPIES: usize = 8;

/// Whether a run of `particles` fits [`RUN_BUDGET_BYTES`]; if not, why not, in words.
pub fn check_request(particles: usize) -> Result<(), String> {
    let per_particle = PARTICLE_COPIES * std::mem::size_of::<Point>();
    let fits = particles
        .checked_mul(per_particle)
        .is_some_and(|bytes| bytes <= RUN_BUDGET_BYTES);
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{particles} particles would need more than {} MiB; at most {} fit",
            RUN_BUDGET_BYTES >> 20,
            RUN_BUDGET_BYTES / per_particle
        ))
    }
}

/// A running (or finished) computation; dropping it or starting another cancels it.
pub struct Runner {
    /// Unique to this run (what results computed from it are keyed by).
    id: u64,
    shared: Arc<Mutex<Trajectory>>,
    /// `None` for a run refused before it started.
    worker: Option<Worker<()>>,
}

impl Runner {
    pub fn start(job: Job) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let particles = match &job {
            Job::Forward { x0, .. } => x0.len(),
            Job::Reverse { particles, .. } => *particles,
        };
        if let Err(why) = check_request(particles) {
            let refused = Trajectory {
                failed: Some(why),
                ..Trajectory::default()
            };
            return Self {
                id,
                shared: Arc::new(Mutex::new(refused)),
                worker: None,
            };
        }
        let shared = Arc::new(Mutex::new(Trajectory::default()));
        let run = Run::new(job, Arc::clone(&shared));
        Self {
            id,
            shared,
            worker: Some(Worker::spawn("trajectory", run, work::no_repaint())),
        }
    }

    /// Unique to this run.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The last frame, once the run is done.
    pub fn last_frame(&self) -> Option<Stored> {
        self.with(|t| t.done.then(|| t.frame_at(usize::MAX)).flatten())
            .flatten()
            .map(|(_, frame)| frame)
    }

    /// Reads the trajectory (held only while `f` runs; the worker locks per step).
    pub fn with<R>(&self, f: impl FnOnce(&Trajectory) -> R) -> Option<R> {
        let mut traj = self.shared.lock().ok()?;
        if let Some(Outcome::Failed(why)) = self.worker.as_ref().and_then(Worker::take) {
            traj.failed = Some(why);
        }
        Some(f(&traj))
    }
}

/// Where a run is.
enum Stage {
    Forward {
        schedule: Schedule,
        seed: u32,
        /// Steps taken.
        k: usize,
    },
    /// Waiting to start on the GPU (set up in the first step), with the CPU run to fall
    /// back on.
    GpuStart(Box<GpuSnapshot>, Schedule, Box<Stage>),
    Gpu(Box<GpuRun>, Box<Stage>),
    Cpu {
        model: SharedModel,
        sampler: Box<Sampler>,
        step: usize,
    },
}

/// A trajectory being computed, one step at a time.
struct Run {
    shared: Arc<Mutex<Trajectory>>,
    stage: Option<Stage>,
    x: Vec<Point>,
    stride: usize,
    total_steps: usize,
    started: Instant,
}

impl Run {
    fn new(job: Job, shared: Arc<Mutex<Trajectory>>) -> Self {
        let (x, total_steps, stage) = match job {
            Job::Forward { schedule, x0, seed } => (
                x0.as_ref().clone(),
                FORWARD_STEPS,
                Stage::Forward {
                    schedule,
                    seed,
                    k: 0,
                },
            ),
            Job::Reverse {
                schedule,
                model,
                cfg,
                particles,
                gpu,
            } => {
                let cpu = Stage::Cpu {
                    model,
                    sampler: Box::new(Sampler::new(schedule, cfg)),
                    step: 0,
                };
                let stage = match gpu {
                    Some(gpu) => Stage::GpuStart(gpu, schedule, Box::new(cpu)),
                    None => cpu,
                };
                (prior(particles, cfg.seed), cfg.steps.max(1), stage)
            }
        };
        let stride = frame_stride(total_steps, x.len());
        if let Ok(mut traj) = shared.lock() {
            traj.stride = stride;
            traj.total_steps = total_steps;
        }
        Self {
            shared,
            stage: Some(stage),
            x,
            stride,
            total_steps,
            started: Instant::now(),
        }
    }

    /// Appends step `step` (at time `t`) of the particles on the CPU.
    fn record(&self, step: usize, t: f64, nfe: usize, done: bool) {
        let keep = step.is_multiple_of(self.stride) || done;
        let frame = keep.then(|| Stored::Cpu(Arc::new(self.x.clone())));
        let Ok(mut traj) = self.shared.lock() else {
            return;
        };
        traj.times.push(t);
        traj.trails
            .push(self.x.iter().take(TRAILS).copied().collect());
        if let Some(frame) = frame {
            traj.frames.push((step, frame));
        }
        traj.nfe = nfe;
        traj.done = done;
        traj.compute_secs = self.started.elapsed().as_secs_f64();
    }

    /// The GPU failed: start over on the CPU, from the same noise.
    fn restart_on_cpu(&mut self, cpu: Stage, why: &GpuError) -> Stage {
        if let Ok(mut traj) = self.shared.lock() {
            *traj = Trajectory {
                stride: self.stride,
                total_steps: self.total_steps,
                gpu_failure: Some(why.to_string()),
                ..Trajectory::default()
            };
        }
        cpu
    }
}

impl work::Job for Run {
    type Output = ();

    fn step(&mut self, _ctl: &Control) -> Result<Step<()>, String> {
        let Some(stage) = self.stage.take() else {
            return Ok(Step::Done(()));
        };
        let next = match stage {
            Stage::Forward { schedule, seed, k } => {
                let dt = 1.0 / self.total_steps as f64;
                if k == 0 && self.shared.lock().is_ok_and(|t| t.times.is_empty()) {
                    self.record(0, 0.0, 0, false);
                }
                em_forward_step(&schedule, k as f64 * dt, dt, &mut self.x, seed, k as u32);
                let done = k + 1 == self.total_steps;
                self.record(k + 1, (k + 1) as f64 * dt, 0, done);
                (!done).then_some(Stage::Forward {
                    schedule,
                    seed,
                    k: k + 1,
                })
            }
            Stage::GpuStart(gpu, schedule, cpu) => {
                let cfg = match cpu.as_ref() {
                    Stage::Cpu { sampler, .. } => *sampler.config(),
                    _ => return Err("a GPU run without its CPU twin".into()),
                };
                match GpuRun::new(&gpu, schedule, cfg, self.x.len(), &self.shared) {
                    Ok(run) => Some(Stage::Gpu(Box::new(run), cpu)),
                    Err(e) => Some(self.restart_on_cpu(*cpu, &e)),
                }
            }
            Stage::Gpu(mut run, cpu) => match run.chunk(&self.shared) {
                Ok(Some(true)) => None,
                Ok(Some(false)) => Some(Stage::Gpu(run, cpu)),
                Ok(None) => {
                    self.stage = Some(Stage::Gpu(run, cpu));
                    return Ok(Step::Wait(GPU_POLL));
                }
                Err(e) => Some(self.restart_on_cpu(*cpu, &e)),
            },
            Stage::Cpu {
                model,
                mut sampler,
                step,
            } => {
                if step == 0 && self.shared.lock().is_ok_and(|t| t.times.is_empty()) {
                    self.record(0, sampler.t(), 0, sampler.is_done());
                }
                if sampler.is_done() {
                    None
                } else {
                    sampler.step(model.as_ref(), &mut self.x);
                    self.record(step + 1, sampler.t(), sampler.nfe(), sampler.is_done());
                    Some(Stage::Cpu {
                        model,
                        sampler,
                        step: step + 1,
                    })
                }
            }
        };
        self.stage = next;
        Ok(if self.stage.is_some() {
            Step::Continue
        } else {
            Step::Done(())
        })
    }
}

/// Store every `stride`-th frame so that a whole run fits `FRAME_BUDGET_BYTES`.
fn frame_stride(total_steps: usize, particles: usize) -> usize {
    let frame_bytes = particles * std::mem::size_of::<Point>();
    ((total_steps + 1) * frame_bytes)
        .div_ceil(FRAME_BUDGET_BYTES)
        .max(1)
}

/// A reverse run on the GPU. After each step the trail particles are copied (on the GPU) into
/// a small buffer read back every `GPU_CHUNK` steps; a stored step's particles are copied into
/// the frame buffer that the canvas draws from. A chunk is published once its read-back shows
/// the GPU has finished it. In a browser nothing may wait: the read-backs are collected on a
/// later frame, and stored frames come back to the CPU with them (the canvas there draws
/// points from the CPU).
struct GpuRun {
    sampler: GpuSampler,
    /// The stored frames on the GPU (natively).
    frames: Option<Arc<FrameStore>>,
    trails: wgpu::Buffer,
    stride: usize,
    frame_bytes: u64,
    traced: usize,
    /// The next free frame of `frames`.
    slot: u64,
    step: usize,
    started: bool,
    in_flight: Option<InFlight>,
    clock: Instant,
}

/// A chunk submitted to the GPU, waiting for its read-backs.
struct InFlight {
    steps: Vec<ChunkStep>,
    trails: Fetch,
}

struct ChunkStep {
    step: usize,
    t: f64,
    frame: Option<ChunkFrame>,
    nfe: usize,
    done: bool,
}

enum ChunkFrame {
    Resident(GpuFrame),
    Fetching(Fetch),
}

/// A read-back polled until it arrives, then kept.
struct Fetch {
    read: AsyncRead,
    values: Option<Vec<f32>>,
}

impl Fetch {
    fn new(read: AsyncRead) -> Self {
        Self { read, values: None }
    }

    /// Whether the values have arrived.
    fn ready(&mut self, ctx: &GpuContext) -> Result<bool, GpuError> {
        if self.values.is_none() {
            match self.read.poll(ctx) {
                None => return Ok(false),
                Some(values) => self.values = Some(values?),
            }
        }
        Ok(true)
    }

    fn points(&mut self) -> Vec<Point> {
        let flat = self.values.take().unwrap_or_default();
        flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
    }
}

impl GpuRun {
    fn new(
        gpu: &GpuSnapshot,
        schedule: Schedule,
        cfg: SamplerConfig,
        particles: usize,
        shared: &Mutex<Trajectory>,
    ) -> Result<Self, GpuError> {
        let clock = Instant::now();
        let ctx = &gpu.ctx;
        let sampler = GpuSampler::new(ctx, Arc::clone(&gpu.weights), schedule, cfg, particles)?;
        let total_steps = cfg.steps.max(1);
        let stride = frame_stride(total_steps, particles);
        let frame_bytes = particles as u64 * 8;
        let stored = (total_steps / stride + 2) as u64;
        let resident = !cfg!(target_arch = "wasm32");
        if resident {
            ctx.check_buffer_size("the stored frames", stored * frame_bytes)?;
        }
        let traced = TRAILS.min(particles);
        let trail_bytes = traced as u64 * 8;
        let (frames, trails) = ctx.scoped("allocating the stored frames", || {
            let frames = resident.then(|| {
                let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("stored frames"),
                    size: stored * frame_bytes,
                    usage: wgpu::BufferUsages::VERTEX
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                Arc::new(FrameStore {
                    ctx: ctx.clone(),
                    buffer,
                })
            });
            let trails = crate::gpu::kernels::storage_buffer(
                ctx,
                "trail particles",
                GPU_CHUNK as u64 * trail_bytes,
            );
            (frames, trails)
        })?;
        let trails = trails?;
        if let Ok(mut traj) = shared.lock() {
            traj.stride = stride;
            traj.total_steps = total_steps;
            traj.on_gpu = true;
        }
        Ok(Self {
            sampler,
            frames,
            trails,
            stride,
            frame_bytes,
            traced,
            slot: 0,
            step: 0,
            started: false,
            in_flight: None,
            clock,
        })
    }

    /// Advances the run: submits a chunk (step 0 alone, then up to `GPU_CHUNK` steps) and
    /// publishes it once read back. `None` while the GPU has not finished it (only in a
    /// browser), else whether the run is done.
    fn chunk(&mut self, shared: &Mutex<Trajectory>) -> Result<Option<bool>, GpuError> {
        let mut flight = match self.in_flight.take() {
            Some(flight) => flight,
            None => self.submit()?,
        };
        let ctx = self.sampler.context();
        let mut ready = flight.trails.ready(ctx)?;
        for s in &mut flight.steps {
            if let Some(ChunkFrame::Fetching(fetch)) = &mut s.frame {
                ready &= fetch.ready(ctx)?;
            }
        }
        if !ready {
            self.in_flight = Some(flight);
            return Ok(None);
        }
        let flat = flight.trails.values.take().unwrap_or_default();
        let Ok(mut traj) = shared.lock() else {
            return Ok(Some(true));
        };
        for (s, row) in flight.steps.into_iter().zip(flat.chunks(self.traced * 2)) {
            traj.times.push(s.t);
            traj.trails
                .push(row.chunks_exact(2).map(|p| [p[0], p[1]]).collect());
            match s.frame {
                Some(ChunkFrame::Resident(frame)) => traj.frames.push((s.step, Stored::Gpu(frame))),
                Some(ChunkFrame::Fetching(mut fetch)) => {
                    let points = Arc::new(fetch.points());
                    traj.frames.push((s.step, Stored::Cpu(points)));
                }
                None => {}
            }
            traj.nfe = s.nfe;
            traj.done = s.done;
        }
        traj.compute_secs = self.clock.elapsed().as_secs_f64();
        Ok(Some(traj.done))
    }

    /// Records and submits the next chunk's steps and the copies after each, and asks for
    /// the read-backs.
    fn submit(&mut self) -> Result<InFlight, GpuError> {
        let ctx = self.sampler.context().clone();
        let trail_bytes = self.traced as u64 * 8;
        let mut steps = Vec::new();
        while steps.len() < GPU_CHUNK {
            if self.started {
                self.sampler.step()?;
                self.step += 1;
            }
            self.started = true;
            let j = steps.len() as u64;
            let done = self.sampler.is_done();
            let keep = self.step.is_multiple_of(self.stride) || done;
            let offset = self.slot * self.frame_bytes;
            let x = self.sampler.particles_buffer();
            ctx.scoped("storing a frame", || {
                let mut enc = ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("store frame"),
                    });
                enc.copy_buffer_to_buffer(x, 0, &self.trails, j * trail_bytes, trail_bytes);
                if let Some(store) = self.frames.as_ref().filter(|_| keep) {
                    enc.copy_buffer_to_buffer(x, 0, &store.buffer, offset, self.frame_bytes);
                }
                ctx.queue.submit([enc.finish()]);
            })?;
            let frame = match (&self.frames, keep) {
                (_, false) => None,
                (Some(store), true) => {
                    self.slot += 1;
                    Some(ChunkFrame::Resident(GpuFrame {
                        store: Arc::clone(store),
                        offset,
                        len: (self.frame_bytes / 8) as usize,
                    }))
                }
                (None, true) => {
                    let len = (self.frame_bytes / 4) as usize;
                    Some(ChunkFrame::Fetching(Fetch::new(AsyncRead::start(
                        &ctx, x, 0, len,
                    )?)))
                }
            };
            steps.push(ChunkStep {
                step: self.step,
                t: self.sampler.t(),
                frame,
                nfe: self.sampler.nfe(),
                done,
            });
            if self.step == 0 || done {
                break;
            }
        }
        let len = steps.len() * self.traced * 2;
        let trails = Fetch::new(AsyncRead::start(&ctx, &self.trails, 0, len)?);
        Ok(InFlight { steps, trails })
    }
}
