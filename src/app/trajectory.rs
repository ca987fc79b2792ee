//! Particle trajectories computed off the UI thread. A reverse run with the network costs
//! 10–100 ms per step on a laptop CPU, so the canvas never computes one itself: a worker
//! steps the particles and stores frames, and the player shows the frame nearest the time
//! it is at (waiting at the newest frame while the worker is behind).
//!
//! Frames are kept within a memory budget (every k-th step at 100 k particles × 1000 steps);
//! the few particles drawn as trails keep every step.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::Point;
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
    },
}

/// The frames computed so far.
#[derive(Default)]
pub struct Trajectory {
    /// Time of every computed step (ascending forward, descending in reverse).
    pub times: Vec<f64>,
    /// Frame j holds step `j * stride` (the last frame is the last step).
    frames: Vec<(usize, Arc<Vec<Point>>)>,
    stride: usize,
    /// The first [`TRAILS`] particles at every computed step.
    pub trails: Vec<Vec<Point>>,
    pub total_steps: usize,
    pub nfe: usize,
    pub done: bool,
    pub failed: Option<String>,
    pub compute_secs: f64,
}

impl Trajectory {
    /// Steps computed so far (step 0 is the start).
    pub fn steps_done(&self) -> usize {
        self.times.len().saturating_sub(1)
    }

    /// The stored frame nearest before `step`, and the step it holds.
    pub fn frame_at(&self, step: usize) -> Option<(usize, Arc<Vec<Point>>)> {
        let i = self.frames.partition_point(|(s, _)| *s <= step);
        self.frames
            .get(i.saturating_sub(1))
            .map(|(s, f)| (*s, Arc::clone(f)))
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
    let frame_bytes = x.len() * std::mem::size_of::<Point>();
    let stride = ((total_steps + 1) * frame_bytes)
        .div_ceil(FRAME_BUDGET_BYTES)
        .max(1);
    let record = |step: usize, t: f64, x: &[Point], nfe: usize, done: bool| {
        let keep = step.is_multiple_of(stride) || done;
        let frame = keep.then(|| Arc::new(x.to_vec()));
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
            ..
        } => {
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
