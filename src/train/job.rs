//! The training job: one step applies the commands waiting, trains for a slice of time, and
//! reports (progress, snapshots, quality). It runs on a [`crate::work::Worker`].

use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::backend::trained_steps;
use super::quality::Quality;
use super::{BackendFactory, TrainBackend, backend};
use super::{Command, Event, Progress, SharedModel, Snapshot, SnapshotSlot, TrainSetup};
use crate::backend::{BackendError, BackendKind};
use crate::gpu::LossPoint;
use crate::work::{Control, Job, Repaint, Step};

/// How long one batch of steps runs before the job looks at its commands again.
const SLICE: Duration = if cfg!(target_arch = "wasm32") {
    // In a browser the slice runs inside a frame.
    Duration::from_millis(8)
} else {
    Duration::from_millis(25)
};
/// How often the loss curve gets a point.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How often the sampler gets new EMA weights.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(400);
/// How long the job leaves a browser's GPU, busy with what it has queued, before it looks
/// again.
const GPU_BUSY_WAIT: Duration = Duration::from_millis(4);
/// How long a paused job waits before it looks at its commands again.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// Sends events and wakes the UI.
pub(super) struct Events {
    pub(super) tx: Sender<Event>,
    pub(super) repaint: Repaint,
}

impl Events {
    fn send(&self, event: Event) {
        // Full queue: the UI is not reading (hidden window); dropping a point is harmless.
        let _ = self.tx.try_send(event);
        (self.repaint)();
    }
}

fn message(e: BackendError) -> String {
    e.to_string()
}

pub(super) struct TrainJob {
    setup: TrainSetup,
    factory: BackendFactory,
    commands: Receiver<Command>,
    backend: Option<Box<dyn TrainBackend>>,
    /// Why the backend was chosen (from the factory), repeated when the network restarts.
    why: String,
    /// The backend's name as last told to the UI (it changes when the GPU takes over from a
    /// warm-up, or the CPU from a failed GPU).
    named: String,
    events: Events,
    snapshot: SnapshotSlot,
    quality: Quality,
    paused: bool,
    /// Built lazily in the first step, on the worker's thread.
    built: bool,
    // Loss accumulated since the last progress report.
    loss_sum: f64,
    loss_count: u32,
    samples_since: u64,
    last_progress: Instant,
    last_snapshot: Option<Instant>,
    /// The steps of the weights file loaded since the last restart, and `steps_done` then.
    loaded: Option<(u64, u64)>,
    /// Where a slice runs natively (`training_pool`); `None` runs it on the job's thread.
    pool: Option<rayon::ThreadPool>,
}

/// Natively, a pool of training's own, one low-priority thread per core, inside which each
/// slice runs whole: its steps' parallel phases then wake no thread outside the pool (a
/// caller outside it sleeps and wakes twice a step), and the reverse runs and quality checks,
/// which share the global pool, never queue training's chunks behind theirs. Beside a software
/// renderer on two cores this took training in the app from 0.60–0.73 to 0.74–0.83 M
/// samples/s. In a browser there are no threads: `None`.
fn training_pool() -> Option<rayon::ThreadPool> {
    if cfg!(target_arch = "wasm32") {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("training-{i}"))
        .start_handler(|_| crate::work::lower_priority())
        .build()
        .ok()
}

/// What one slice of training did.
#[derive(Default)]
struct Slice {
    losses: Vec<LossPoint>,
    steps: u64,
    error: Option<BackendError>,
}

/// Trains `per_call` steps at a time for up to `SLICE`.
fn run_slice(backend: &mut dyn TrainBackend, per_call: u64) -> Slice {
    let start = Instant::now();
    let mut out = Slice::default();
    while start.elapsed() < SLICE {
        let before = backend.steps_done();
        match backend.train(per_call) {
            Ok(losses) => {
                out.losses.extend(losses);
                let done = backend.steps_done().saturating_sub(before);
                out.steps += done;
                if done == 0 {
                    // A GPU in a browser has enough queued: the rest of the frame is not ours.
                    break;
                }
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

impl TrainJob {
    pub(super) fn new(
        setup: TrainSetup,
        factory: BackendFactory,
        commands: Receiver<Command>,
        events: Events,
        snapshot: SnapshotSlot,
    ) -> Self {
        let paused = setup.paused;
        let quality = Quality::new(Arc::clone(&events.repaint));
        Self {
            setup,
            factory,
            commands,
            backend: None,
            why: String::new(),
            named: String::new(),
            events,
            snapshot,
            quality,
            paused,
            built: false,
            loss_sum: 0.0,
            loss_count: 0,
            samples_since: 0,
            last_progress: Instant::now(),
            last_snapshot: None,
            loaded: None,
            pool: training_pool(),
        }
    }

    /// (Re)creates the backend from the setup; on failure training waits for a new command.
    fn build(&mut self) {
        self.backend = None;
        match (self.factory)(&self.setup.settings, self.setup.schedule, &self.setup.data) {
            Ok(built) => {
                self.backend = Some(built.trainer);
                self.why = built.why;
                self.restarted();
            }
            Err(e) => self.events.send(Event::Error(e)),
        }
    }

    /// Fresh weights: say which network trains, start the curves over, show the weights.
    fn restarted(&mut self) {
        self.named.clear();
        self.tell_backend();
        self.loss_sum = 0.0;
        self.loss_count = 0;
        self.samples_since = 0;
        self.last_progress = Instant::now();
        self.last_snapshot = None;
        self.loaded = None;
        self.events.send(Event::Restarted);
        self.publish();
    }

    /// Says which backend trains, when that is news.
    fn tell_backend(&mut self) {
        let Some(trainer) = &self.backend else {
            return;
        };
        let name = trainer.name();
        if name != self.named {
            self.events.send(Event::Started {
                backend: name.clone(),
                params: trainer.config().net.num_params(),
                why: self.why.clone(),
            });
            self.named = name;
        }
    }

    fn apply(&mut self, command: Command) {
        let result = match (command, self.backend.as_mut()) {
            (Command::Pause, _) => {
                self.paused = true;
                Ok(())
            }
            (Command::Resume, backend) => {
                if let Some(b) = backend {
                    b.resume();
                }
                self.paused = false;
                self.last_progress = Instant::now();
                self.samples_since = 0;
                Ok(())
            }
            (Command::Configure { settings, schedule }, backend) => {
                let same_backend = settings.backend == self.setup.settings.backend;
                match backend {
                    Some(b) if same_backend => {
                        let cfg = super::train_config(&settings, schedule);
                        b.apply(&cfg).map_err(message).map(|change| {
                            self.setup.settings = settings;
                            self.setup.schedule = schedule;
                            if change.restarts {
                                self.restarted();
                            }
                        })
                    }
                    _ => {
                        self.setup.settings = settings;
                        self.setup.schedule = schedule;
                        self.build();
                        Ok(())
                    }
                }
            }
            (Command::SetData(data), backend) => {
                self.setup.data = data;
                self.quality.reset();
                backend.map_or(Ok(()), |b| b.set_data(&self.setup.data).map_err(message))
            }
            (Command::Reset { seed }, backend) => {
                self.setup.settings.seed = seed;
                match backend {
                    Some(b) => b.reset(seed).map_err(message).map(|()| self.restarted()),
                    None => {
                        self.build();
                        Ok(())
                    }
                }
            }
            (
                Command::Save {
                    path,
                    dataset,
                    normalization,
                },
                Some(b),
            ) => {
                // In a browser the file is a download, named by the path's last part.
                #[cfg(target_arch = "wasm32")]
                let saved = backend::saved_model(b.as_ref(), &dataset, normalization, self.loaded)
                    .and_then(|m| {
                        let bytes = crate::nn::weights::to_bytes(&m).map_err(|e| e.to_string())?;
                        let name = path.file_name().map_or_else(
                            || "playground.safetensors".to_owned(),
                            |n| n.to_string_lossy().into_owned(),
                        );
                        self.events.send(Event::Download { name, bytes });
                        Ok(())
                    });
                #[cfg(not(target_arch = "wasm32"))]
                let saved = backend::save(b.as_ref(), &path, &dataset, normalization, self.loaded)
                    .map(|()| self.events.send(Event::Saved(path)));
                saved
            }
            (Command::Save { .. }, None) => {
                Err("no network to save: fix the settings first".to_owned())
            }
            (
                Command::LoadParams {
                    path,
                    params,
                    steps,
                },
                Some(b),
            ) => match b.set_params(&params) {
                Err(e) => Err(format!("{}: not loaded: {e}", path.display())),
                Ok(()) => {
                    // A trained network: the app samples with it at once (the steps of
                    // this run alone would hold reverse back until they add up).
                    self.loaded = Some((steps, b.steps_done()));
                    // Show the loaded weights at once rather than at the next snapshot
                    // (before saying so: whoever hears it finds them).
                    self.publish();
                    self.events
                        .send(Event::Notice(format!("loaded {}", path.display())));
                    Ok(())
                }
            },
            (Command::LoadParams { .. }, None) => {
                Err("no network to load into: fix the settings first".to_owned())
            }
            (Command::Shutdown, _) => Ok(()),
        };
        if let Err(e) = result {
            self.events.send(Event::Error(e));
        }
    }

    /// Trains for one slice; whether any step was taken (in a browser the GPU may have all
    /// the work it may queue).
    fn train_slice(&mut self) -> bool {
        let Some(backend) = self.backend.as_mut() else {
            return false;
        };
        let first = backend.steps_done();
        // The GPU queues several steps per call and reports their losses a little later.
        let per_call = match backend.kind() {
            BackendKind::Cpu => 1,
            BackendKind::Wgpu => 8,
        };
        let batch = backend.config().batch as u64;
        let slice = match &self.pool {
            Some(pool) => pool.install(|| run_slice(backend.as_mut(), per_call)),
            None => run_slice(backend.as_mut(), per_call),
        };
        for point in slice.losses {
            self.loss_sum += point.loss as f64;
            self.loss_count += 1;
        }
        self.samples_since += slice.steps * batch;
        if let Some(e) = slice.error {
            self.paused = true;
            let reason = if e.is_non_finite() {
                format!(
                    "{e}; at step {}: lower the learning rate, then resume or reset",
                    backend.steps_done()
                )
            } else {
                message(e)
            };
            self.events.send(Event::Paused { reason });
            return true;
        }
        if let Some(notice) = backend.notice() {
            self.events.send(Event::Notice(notice));
        }
        let since = self.last_progress.elapsed();
        if since >= PROGRESS_EVERY && self.loss_count > 0 {
            self.events.send(Event::Progress(Progress {
                step: backend.steps_done(),
                loss: (self.loss_sum / self.loss_count as f64) as f32,
                samples_per_sec: self.samples_since as f64 / since.as_secs_f64(),
            }));
            self.loss_sum = 0.0;
            self.loss_count = 0;
            self.samples_since = 0;
            self.last_progress = Instant::now();
        }
        self.tell_backend();
        if self
            .last_snapshot
            .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY)
        {
            self.publish();
        }
        self.backend
            .as_ref()
            .is_some_and(|b| b.steps_done() > first)
    }

    /// Puts the EMA weights into the UI's slot and offers them to the quality measurement.
    fn publish(&mut self) {
        let Some(backend) = self.backend.as_ref() else {
            return;
        };
        self.last_snapshot = Some(Instant::now());
        let model: SharedModel = match backend.ema_model() {
            Ok(model) => Arc::new(model),
            // In a browser the GPU's weights arrive a frame or more after they are asked for.
            Err(e) if e.is_pending() => return,
            Err(e) => {
                self.events
                    .send(Event::Error(format!("cannot snapshot the weights: {e}")));
                return;
            }
        };
        let snapshot = Snapshot {
            step: backend.steps_done(),
            trained_steps: trained_steps(self.loaded, backend.steps_done()),
            model,
            gpu: backend.gpu_weights(),
        };
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = Some(snapshot.clone());
        }
        (self.events.repaint)();
        self.quality
            .offer(&snapshot, self.setup.schedule, Arc::clone(&self.setup.data));
    }
}

impl Job for TrainJob {
    type Output = ();

    /// Applies every command waiting, then trains for one slice (or, paused, waits a little).
    fn step(&mut self, _ctl: &Control) -> Result<Step<()>, String> {
        if !self.built {
            self.built = true;
            self.build();
        }
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                    return Ok(Step::Done(()));
                }
                Ok(command) => self.apply(command),
                Err(TryRecvError::Empty) => break,
            }
        }
        match self.quality.poll() {
            Some(Ok(m)) => self.events.send(Event::Quality {
                step: m.step,
                sw2: m.sw2,
                floor: m.floor,
                floor_band: m.floor_band,
            }),
            Some(Err(e)) => self.events.send(Event::Error(e)),
            None => {}
        }
        if self.paused || self.backend.is_none() {
            return Ok(Step::Wait(IDLE_WAIT));
        }
        if self.train_slice() {
            Ok(Step::Continue)
        } else {
            // A GPU in a browser has all the work it may queue: give the frame to others.
            Ok(Step::Wait(GPU_BUSY_WAIT))
        }
    }
}
