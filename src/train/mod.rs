//! Training in the background: a job (`job`, on a `crate::work::Worker`) owns the network
//! backend and trains without ever making the UI wait. The UI sends [`Command`]s and drains
//! [`Event`]s each frame (docs/architecture.md §1):
//!
//! - commands go over an unbounded channel (a person clicks a few times a second);
//! - progress, quality and errors come back over a bounded channel, sent with `try_send`, so
//!   a UI that stops reading (a hidden window) costs dropped points, not memory;
//! - weights are not queued at all: the thread puts the newest EMA snapshot into a
//!   latest-wins slot, which the UI takes when it wants it.
//!
//! After every send the job calls `request_repaint`, so an idle UI wakes up for news.
//! A panic in the job is caught and reported as [`Event::Crashed`]; the UI offers a
//! restart, which starts a fresh job from the same [`TrainSetup`].
//!
//! - `backend`: the user's backend choice and the factory that builds trainers for it;
//! - `job`: the training loop, one step at a time;
//! - `quality`: the trainer's own quality curve, measured by jobs of their own.

mod backend;
mod job;
mod quality;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::Point;
use crate::backend::GpuSnapshot;
use crate::data::Normalization;
use crate::math::{Schedule, ScoreModel};
use crate::nn::{Activation, Embedding, MlpConfig, Weighting};

pub use crate::backend::TrainBackend;
pub use backend::{BackendPref, Built, factory, train_config};

use crate::work::{Outcome, Repaint, Worker};
use job::{Events, TrainJob};

/// A network (or any ε̂ model) the sampler can run from another thread.
pub type SharedModel = Arc<dyn ScoreModel + Send + Sync>;

/// Label of a loss weighting for the UI.
pub fn weighting_label(w: Weighting) -> &'static str {
    match w {
        Weighting::Uniform => "ε-loss (w = 1)",
        Weighting::InverseSigma2 => "score loss (w = 1/σ²)",
        Weighting::Importance => "1/σ², importance-sampled t",
    }
}

/// Everything that defines a training run besides the data and the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub net: MlpConfig,
    pub lr: f32,
    pub batch: usize,
    pub weighting: Weighting,
    pub seed: u32,
    /// Which backend trains; `Auto` picks one for the machine (docs/architecture.md §1).
    pub backend: BackendPref,
}

impl Default for TrainSettings {
    fn default() -> Self {
        // Tuned for seconds on two CPU cores: a 64-wide net learns the swiss roll about as
        // well per step as a 128-wide one (sw2 ≈ 1.2 × floor after 4000 steps), at under
        // half the cost per step.
        Self {
            net: MlpConfig {
                width: 64,
                depth: 3,
                activation: Activation::Gelu,
                embedding: Embedding::Sinusoidal { dim: 32 },
                ..MlpConfig::default()
            },
            lr: 4e-3,
            batch: 512,
            weighting: Weighting::Uniform,
            seed: 0,
            backend: BackendPref::Auto,
        }
    }
}

/// What the UI asks of the training thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Train on new (standardised) data from the current weights.
    SetData(Arc<Vec<Point>>),
    /// New settings: those training continues under (learning rate, weighting, batch,
    /// schedule) take effect on the current weights; a new network shape, seed or backend
    /// starts over (see `TrainBackend::apply`).
    Configure {
        settings: TrainSettings,
        schedule: Schedule,
    },
    Pause,
    Resume,
    /// Fresh weights from this seed, step 0.
    Reset {
        seed: u32,
    },
    /// Save the EMA weights (safetensors) with the data's name and units.
    Save {
        path: PathBuf,
        dataset: String,
        normalization: Normalization,
    },
    /// Continue from these weights (a file the UI has already read and checked).
    LoadParams {
        path: PathBuf,
        params: Arc<Vec<f32>>,
        /// The steps the file says trained them.
        steps: u64,
    },
    /// End the job.
    Shutdown,
}

/// News from the training thread.
#[derive(Clone, Debug)]
pub enum Event {
    /// The backend is ready (once per start or rebuild): its name, its parameter count, and
    /// why it was chosen.
    Started {
        backend: String,
        params: usize,
        why: String,
    },
    /// Something the user should know that is not an error (the GPU failed and the CPU
    /// took over, say).
    Notice(String),
    Progress(Progress),
    /// Sample quality of the EMA weights: sliced W₂ of a small sample to held-out data.
    Quality {
        step: u64,
        sw2: f64,
        /// The mean over a few pairs of disjoint subsets, and its lowest and highest.
        floor: f64,
        floor_band: (f64, f64),
    },
    /// Training stopped by itself (e.g. a NaN loss); `Resume` continues.
    Paused {
        reason: String,
    },
    /// A command failed; training goes on as before.
    Error(String),
    /// The thread panicked; it is gone until restarted.
    Crashed(String),
    /// Weights were reset or rebuilt: curves start over.
    Restarted,
    Saved(PathBuf),
    /// In a browser: the saved weights file, to offer as a download.
    #[cfg(target_arch = "wasm32")]
    Download {
        name: String,
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub step: u64,
    /// Mean loss since the previous report.
    pub loss: f32,
    pub samples_per_sec: f64,
}

/// The newest EMA weights: the thread overwrites, the UI takes.
#[derive(Clone)]
pub struct Snapshot {
    /// Steps this run has trained.
    pub step: u64,
    /// Training steps behind these weights: `step`, or for a run that continued from a
    /// weights file, the file's steps and this run's since.
    pub trained_steps: u64,
    pub model: SharedModel,
    /// The same weights on the training GPU, when it trains there: the app's reverse runs
    /// then sample on the GPU too.
    pub gpu: Option<GpuSnapshot>,
}

pub type SnapshotSlot = Arc<Mutex<Option<Snapshot>>>;

/// Builds a backend from the settings, schedule and data (at start, rebuild and restart).
pub type BackendFactory =
    Arc<dyn Fn(&TrainSettings, Schedule, &[Point]) -> Result<Built, String> + Send + Sync>;

/// What a (re)started thread begins with.
#[derive(Clone, Debug)]
pub struct TrainSetup {
    pub settings: TrainSettings,
    pub schedule: Schedule,
    pub data: Arc<Vec<Point>>,
    /// Start paused (tests, or a user who paused before a restart).
    pub paused: bool,
}

/// Commands kept for inspection (tests, the debug view).
const SENT_LOG: usize = 256;
/// Events that may wait for the UI before new ones are dropped.
const EVENT_QUEUE: usize = 1024;

/// The UI's end of the training job.
pub struct TrainHandle {
    commands: Sender<Command>,
    events: Receiver<Event>,
    snapshot: SnapshotSlot,
    worker: Option<Worker<()>>,
    sent: VecDeque<Command>,
}

impl TrainHandle {
    /// Starts training with the backend the settings pick; `repaint` wakes the UI after
    /// each event.
    pub fn spawn(setup: TrainSetup, repaint: impl Fn() + Send + Sync + 'static) -> Self {
        Self::spawn_with(setup, factory(None), repaint)
    }

    /// Starts training with backends from `factory` (another backend, or a failing one in
    /// tests). A thread that cannot start shows as [`Event::Crashed`].
    pub fn spawn_with(
        setup: TrainSetup,
        factory: BackendFactory,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let snapshot: SnapshotSlot = Arc::default();
        let repaint: Repaint = Arc::new(repaint);
        let job = TrainJob::new(
            setup,
            factory,
            command_rx,
            Events {
                tx,
                repaint: Arc::clone(&repaint),
            },
            Arc::clone(&snapshot),
        );
        Self {
            commands,
            events,
            snapshot,
            // In a browser training has as much of the page's time as the other jobs together
            // (a reverse run and the quality check).
            worker: Some(Worker::spawn_weighted("training", job, repaint, 2)),
            sent: VecDeque::new(),
        }
    }

    /// A handle with no job behind it: commands are only logged. For UI tests.
    pub fn detached() -> Self {
        let (commands, _) = crossbeam_channel::unbounded();
        let (_, events) = crossbeam_channel::bounded(1);
        Self {
            commands,
            events,
            snapshot: Arc::default(),
            worker: None,
            sent: VecDeque::new(),
        }
    }

    pub fn is_detached(&self) -> bool {
        self.worker.is_none()
    }

    /// Sends a command; never blocks. A dead job is noticed through its events.
    pub fn send(&mut self, command: Command) {
        if self.sent.len() == SENT_LOG {
            self.sent.pop_front();
        }
        self.sent.push_back(command.clone());
        // An error means the job is gone; the UI already shows why.
        let _ = self.commands.send(command);
    }

    /// Commands sent so far (the last [`SENT_LOG`]), oldest first.
    pub fn sent(&self) -> impl DoubleEndedIterator<Item = &Command> {
        self.sent.iter()
    }

    /// Every event waiting now, then [`Event::Crashed`] if the job failed; never blocks.
    pub fn drain(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self.events.try_iter().collect();
        if let Some(Outcome::Failed(why)) = self.worker.as_ref().and_then(Worker::take) {
            events.push(Event::Crashed(why));
        }
        events
    }

    /// The newest weights, if new ones arrived since the last call.
    pub fn take_snapshot(&self) -> Option<Snapshot> {
        self.snapshot.lock().ok().and_then(|mut s| s.take())
    }

    /// Whether the job has ended (crashed or shut down).
    pub fn is_finished(&self) -> bool {
        self.worker.as_ref().is_some_and(Worker::is_finished)
    }
}

impl Drop for TrainHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(worker) = &mut self.worker {
            worker.cancel();
            // A step takes milliseconds, so this returns promptly; a panic was reported.
            worker.join();
        }
    }
}
