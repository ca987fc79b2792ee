//! The loop of the training thread.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::quality::QualityThread;
use super::{BackendFactory, TrainBackend, backend};
use super::{Command, Event, Progress, SharedModel, Snapshot, SnapshotSlot, TrainSetup};
use crate::backend::{BackendError, BackendKind};

/// How long one batch of steps runs before the thread looks at its commands again.
const SLICE: Duration = Duration::from_millis(25);
/// How often the loss curve gets a point.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// How often the sampler gets new EMA weights.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(400);
/// How long a paused thread sleeps between looks at its commands.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Sends events and wakes the UI.
#[derive(Clone)]
pub(super) struct Events {
    tx: Sender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Events {
    pub(super) fn send(&self, event: Event) {
        // Full queue: the UI is not reading (hidden window); dropping a point is harmless.
        let _ = self.tx.try_send(event);
        (self.repaint)();
    }
}

pub(super) fn spawn(
    setup: TrainSetup,
    factory: BackendFactory,
    commands: Receiver<Command>,
    tx: Sender<Event>,
    snapshot: SnapshotSlot,
    repaint: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("training".into())
        .spawn(move || {
            super::lower_priority();
            let events = Events { tx, repaint };
            let run =
                AssertUnwindSafe(|| Trainer::new(setup, factory, &events, snapshot).run(&commands));
            if let Err(payload) = catch_unwind(run) {
                events.send(Event::Crashed(panic_message(payload.as_ref())));
            }
        })
}

fn message(e: BackendError) -> String {
    e.to_string()
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

struct Trainer<'a> {
    setup: TrainSetup,
    factory: BackendFactory,
    backend: Option<Box<dyn TrainBackend>>,
    events: &'a Events,
    snapshot: SnapshotSlot,
    quality: QualityThread,
    paused: bool,
    // Loss accumulated since the last progress report.
    loss_sum: f64,
    loss_count: u32,
    samples_since: u64,
    last_progress: Instant,
    last_snapshot: Option<Instant>,
}

impl<'a> Trainer<'a> {
    fn new(
        setup: TrainSetup,
        factory: BackendFactory,
        events: &'a Events,
        snapshot: SnapshotSlot,
    ) -> Self {
        let paused = setup.paused;
        let mut this = Self {
            setup,
            factory,
            backend: None,
            events,
            snapshot,
            quality: QualityThread::spawn(events.clone()),
            paused,
            loss_sum: 0.0,
            loss_count: 0,
            samples_since: 0,
            last_progress: Instant::now(),
            last_snapshot: None,
        };
        this.build();
        this
    }

    /// (Re)creates the backend from the setup; on failure training waits for a new command.
    fn build(&mut self) {
        self.backend = None;
        match (self.factory)(&self.setup.settings, self.setup.schedule, &self.setup.data) {
            Ok(built) => {
                let trainer = built.trainer;
                self.events.send(Event::Started {
                    backend: trainer.name(),
                    params: trainer.config().net.num_params(),
                    why: built.why,
                });
                self.backend = Some(trainer);
                self.restarted();
            }
            Err(e) => self.events.send(Event::Error(e)),
        }
    }

    fn restarted(&mut self) {
        self.loss_sum = 0.0;
        self.loss_count = 0;
        self.samples_since = 0;
        self.last_progress = Instant::now();
        self.last_snapshot = None;
        self.events.send(Event::Restarted);
        self.publish();
    }

    fn run(mut self, commands: &Receiver<Command>) {
        loop {
            // Idle: wait for a command; training: only look.
            let idle = self.paused || self.backend.is_none();
            let first = if idle {
                match commands.recv_timeout(IDLE_WAIT) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            };
            let mut next = first;
            while let Some(command) = next {
                if command == Command::Shutdown {
                    return;
                }
                self.apply(command);
                next = commands.try_recv().ok();
            }
            if !self.paused && self.backend.is_some() {
                self.train_slice();
            }
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
            (Command::Rebuild(settings), _) => {
                self.setup.settings = settings;
                self.build();
                Ok(())
            }
            (Command::SetData(data), backend) => {
                self.setup.data = data;
                self.quality.reset();
                backend.map_or(Ok(()), |b| b.set_data(&self.setup.data).map_err(message))
            }
            (Command::SetSchedule(schedule), backend) => {
                self.setup.schedule = schedule;
                backend.map_or(Ok(()), |b| b.set_schedule(schedule).map_err(message))
            }
            (Command::SetLr(lr), backend) => {
                self.setup.settings.lr = lr;
                backend.map_or(Ok(()), |b| b.set_lr(lr).map_err(message))
            }
            (Command::SetWeighting(w), backend) => {
                self.setup.settings.weighting = w;
                backend.map_or(Ok(()), |b| b.set_weighting(w).map_err(message))
            }
            (Command::SetBatch(batch), backend) => {
                self.setup.settings.batch = batch;
                backend.map_or(Ok(()), |b| b.set_batch(batch).map_err(message))
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
            ) => backend::save(b.as_ref(), &path, &dataset, normalization)
                .map(|()| self.events.send(Event::Saved(path))),
            (Command::Save { .. }, None) => {
                Err("no network to save: fix the settings first".to_owned())
            }
            (Command::LoadParams { path, params }, Some(b)) => b
                .set_params(&params)
                .map_err(|e| format!("{}: not loaded: {e}", path.display()))
                .map(|()| {
                    self.events
                        .send(Event::Notice(format!("loaded {}", path.display())));
                    // Show the loaded weights at once rather than at the next snapshot.
                    self.publish();
                }),
            (Command::LoadParams { .. }, None) => {
                Err("no network to load into: fix the settings first".to_owned())
            }
            (Command::Shutdown, _) => Ok(()),
        };
        if let Err(e) = result {
            self.events.send(Event::Error(e));
        }
    }

    fn train_slice(&mut self) {
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        // The GPU queues several steps per call and reports their losses a little later.
        let per_call = match backend.kind() {
            BackendKind::Cpu => 1,
            BackendKind::Wgpu => 8,
        };
        let batch = backend.config().batch as u64;
        let start = Instant::now();
        while start.elapsed() < SLICE {
            match backend.train(per_call) {
                Ok(losses) => {
                    for point in losses {
                        self.loss_sum += point.loss as f64;
                        self.loss_count += 1;
                    }
                    self.samples_since += per_call * batch;
                }
                Err(e) => {
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
                    return;
                }
            }
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
        if self
            .last_snapshot
            .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY)
        {
            self.publish();
        }
    }

    /// Puts the EMA weights into the UI's slot and offers them to the quality thread.
    fn publish(&mut self) {
        let Some(backend) = self.backend.as_ref() else {
            return;
        };
        self.last_snapshot = Some(Instant::now());
        let model: SharedModel = match backend.ema_model() {
            Ok(model) => Arc::new(model),
            Err(e) => {
                self.events
                    .send(Event::Error(format!("cannot snapshot the weights: {e}")));
                return;
            }
        };
        let snapshot = Snapshot {
            step: backend.steps_done(),
            model,
            gpu: backend.gpu_weights(),
        };
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = Some(snapshot.clone());
        }
        (self.events.repaint)();
        self.quality
            .offer(snapshot, self.setup.schedule, Arc::clone(&self.setup.data));
    }
}
