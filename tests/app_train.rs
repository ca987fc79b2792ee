//! The training thread: it trains from the first moment, reports progress and weights,
//! keeps its weights through lr / weighting / schedule changes, pauses on a NaN loss, and
//! survives a panicking backend with a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diffusion_playground::Point;
use diffusion_playground::backend::{BackendError, BackendKind, TrainBackend};
use diffusion_playground::data::BuiltIn;
use diffusion_playground::gpu::LossPoint;
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::{ConfigChange, MlpConfig, NnError, TrainConfig, Weighting};
use diffusion_playground::train::{
    BackendFactory, Built, Command, Event, TrainHandle, TrainSettings, TrainSetup,
};

fn small_setup() -> TrainSetup {
    TrainSetup {
        settings: TrainSettings {
            net: MlpConfig {
                width: 32,
                depth: 2,
                ..MlpConfig::default()
            },
            batch: 64,
            ..TrainSettings::default()
        },
        schedule: Schedule::default(),
        data: Arc::new(BuiltIn::SwissRoll.sample(2000, 0).points),
        paused: false,
    }
}

/// Collects events until `done` says so (or the time runs out).
fn wait_for(
    handle: &TrainHandle,
    secs: f64,
    mut done: impl FnMut(&Event) -> bool,
) -> (Vec<Event>, bool) {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed().as_secs_f64() < secs {
        for e in handle.drain() {
            let hit = done(&e);
            seen.push(e);
            if hit {
                return (seen, true);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (seen, false)
}

fn progress_step(e: &Event) -> Option<u64> {
    match e {
        Event::Progress(p) => Some(p.step),
        _ => None,
    }
}

#[test]
fn trains_at_once_and_publishes_weights() {
    let handle = TrainHandle::spawn(small_setup(), || {});
    let (events, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 50));
    assert!(ok, "no progress past step 50: {events:?}");
    assert!(matches!(events.first(), Some(Event::Started { .. })));
    let snapshot = handle.take_snapshot().expect("weights published");
    let mut out = vec![[0.0; 2]; 3];
    snapshot
        .model
        .eps(&[[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]], 0.5, &mut out);
    assert!(out.iter().flatten().all(|v| v.is_finite()));
    // Latest-wins: taking empties the slot until the next publication.
    assert!(handle.take_snapshot().is_none());
}

#[test]
fn lr_weighting_and_schedule_changes_keep_the_weights() {
    let mut handle = TrainHandle::spawn(small_setup(), || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 30));
    assert!(ok);
    let setup = small_setup();
    handle.send(Command::Configure {
        settings: TrainSettings {
            lr: 5e-4,
            weighting: Weighting::Importance,
            batch: setup.settings.batch / 2,
            ..setup.settings
        },
        schedule: Schedule::Linear {
            beta_min: 0.1,
            beta_max: 5.0,
        },
    });
    let mut last = 0;
    let (events, ok) = wait_for(&handle, 30.0, |e| {
        if let Some(s) = progress_step(e) {
            last = s;
        }
        last > 80
    });
    assert!(ok, "training stopped: {events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Restarted | Event::Error(_))),
        "no reset, no error: {events:?}"
    );
}

#[test]
fn a_new_network_shape_starts_over_with_its_parameter_count() {
    let mut handle = TrainHandle::spawn(small_setup(), || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 30));
    assert!(ok);
    let setup = small_setup();
    let mut settings = setup.settings.clone();
    settings.net.width = 48;
    let params = settings.net.num_params();
    handle.send(Command::Configure {
        settings,
        schedule: setup.schedule,
    });
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Restarted));
    assert!(ok, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Started { params: p, .. } if *p == params)),
        "the new network is announced: {events:?}"
    );
}

#[test]
fn reset_starts_over_and_bad_commands_report_errors() {
    let mut handle = TrainHandle::spawn(small_setup(), || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 30));
    assert!(ok);
    let setup = small_setup();
    handle.send(Command::Configure {
        settings: TrainSettings {
            batch: 0,
            ..setup.settings
        },
        schedule: setup.schedule,
    });
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Error(_)));
    assert!(ok, "a zero batch is refused: {events:?}");
    // Paused, so that nothing trains between the reset and the look at the weights.
    handle.send(Command::Pause);
    handle.send(Command::Reset { seed: 3 });
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Restarted));
    assert!(ok, "{events:?}");
    let snapshot = handle.take_snapshot().expect("fresh weights are published");
    assert_eq!(snapshot.step, 0, "counting from 0 again");
}

#[test]
fn pause_stops_and_resume_continues() {
    let mut handle = TrainHandle::spawn(small_setup(), || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some());
    assert!(ok);
    handle.send(Command::Pause);
    std::thread::sleep(Duration::from_millis(300));
    handle.drain();
    let (events, _) = wait_for(&handle, 0.6, |_| false);
    assert!(
        !events.iter().any(|e| progress_step(e).is_some()),
        "paused, yet {events:?}"
    );
    handle.send(Command::Resume);
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some());
    assert!(ok, "resumed");
}

/// A backend whose loss turns NaN after a few steps, or which panics.
struct Faulty {
    steps: u64,
    panic_at: Option<u64>,
    cfg: TrainConfig,
}

impl TrainBackend for Faulty {
    fn name(&self) -> String {
        "faulty".into()
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn train(&mut self, steps: u64) -> Result<Vec<LossPoint>, BackendError> {
        let mut out = Vec::new();
        for _ in 0..steps {
            self.steps += 1;
            if self.panic_at == Some(self.steps) {
                panic!("kernel exploded at step {}", self.steps);
            }
            if self.steps > 20 {
                return Err(NnError::NonFinite { step: self.steps }.into());
            }
            out.push(LossPoint {
                step: self.steps,
                loss: 1.0,
            });
        }
        Ok(out)
    }
    fn flush(&mut self) -> Result<Vec<LossPoint>, BackendError> {
        Ok(Vec::new())
    }
    fn steps_done(&self) -> u64 {
        self.steps
    }
    fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    fn paused(&self) -> Option<String> {
        None
    }
    fn resume(&mut self) {}
    fn params(&self) -> Result<Vec<f32>, BackendError> {
        Err(BackendError::Paused("no weights".into()))
    }
    fn ema_params(&self) -> Result<Vec<f32>, BackendError> {
        Err(BackendError::Paused("no weights".into()))
    }
    fn apply(&mut self, cfg: &TrainConfig) -> Result<ConfigChange, BackendError> {
        let change = ConfigChange::between(&self.cfg, cfg);
        self.cfg = cfg.clone();
        Ok(change)
    }
    fn set_data(&mut self, _: &[Point]) -> Result<(), BackendError> {
        Ok(())
    }
    fn reset(&mut self, _: u32) -> Result<(), BackendError> {
        self.steps = 0;
        Ok(())
    }
}

fn faulty(panic_at: Option<u64>) -> BackendFactory {
    Arc::new(move |_: &TrainSettings, _: Schedule, _: &[Point]| {
        Ok(Built {
            trainer: Box::new(Faulty {
                steps: 0,
                panic_at,
                cfg: TrainConfig::default(),
            }),
            why: "a test backend".into(),
        })
    })
}

/// Backends of which only the first panics (at step 3).
fn faulty_once() -> BackendFactory {
    let built = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Arc::new(move |_: &TrainSettings, _: Schedule, _: &[Point]| {
        let first = built.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        Ok(Built {
            trainer: Box::new(Faulty {
                steps: 0,
                panic_at: first.then_some(3),
                cfg: TrainConfig::default(),
            }),
            why: "a test backend".into(),
        })
    })
}

#[test]
fn a_nan_loss_pauses_with_a_reason() {
    let handle = TrainHandle::spawn_with(small_setup(), faulty(None), || {});
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Paused { .. }));
    assert!(ok, "{events:?}");
    let reason = events.iter().find_map(|e| match e {
        Event::Paused { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("NaN")),
        "reason: {reason:?}"
    );
}

#[test]
fn a_panic_is_reported_and_the_handle_survives() {
    let mut handle = TrainHandle::spawn_with(small_setup(), faulty(Some(5)), || {});
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Crashed(_)));
    assert!(ok, "{events:?}");
    let message = events.iter().find_map(|e| match e {
        Event::Crashed(m) => Some(m.clone()),
        _ => None,
    });
    assert!(message.is_some_and(|m| m.contains("kernel exploded at step 5")));
    // Sending to a dead thread neither blocks nor panics.
    handle.send(Command::Pause);
    let start = Instant::now();
    while !handle.is_finished() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(handle.is_finished());
}

#[test]
fn save_writes_weights_the_cli_can_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.safetensors");
    let mut handle = TrainHandle::spawn(small_setup(), || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 20));
    assert!(ok);
    handle.send(Command::Save {
        path: path.clone(),
        dataset: "swiss-roll".into(),
        normalization: Default::default(),
    });
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Saved(_)));
    assert!(ok, "{events:?}");
    let saved = diffusion_playground::nn::weights::load(&path).expect("loads");
    assert_eq!(saved.config.width, 32);
    assert_eq!(saved.dataset, "swiss-roll");
    assert!(saved.steps > 20);
}

/// A loaded network counts the steps its file says trained it: the app samples with it at once
/// (reverse waits for `MIN_REVERSE_STEPS` of training), and saving it again adds this run's.
#[test]
fn a_loaded_network_keeps_the_steps_behind_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("again.safetensors");
    let setup = small_setup();
    let params = setup.settings.net.init_params(3);
    let mut handle = TrainHandle::spawn(setup, || {});
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 20));
    assert!(ok);
    handle.send(Command::Pause);
    handle.send(Command::LoadParams {
        path: "trained.safetensors".into(),
        params: Arc::new(params),
        steps: 300,
    });
    let (events, ok) = wait_for(
        &handle,
        10.0,
        |e| matches!(e, Event::Notice(m) if m.contains("loaded")),
    );
    assert!(ok, "{events:?}");
    let snapshot = handle
        .take_snapshot()
        .expect("the loaded weights are shown at once");
    assert_eq!(snapshot.trained_steps, 300, "run at step {}", snapshot.step);
    handle.send(Command::Save {
        path: path.clone(),
        dataset: "swiss-roll".into(),
        normalization: Default::default(),
    });
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Saved(_)));
    assert!(ok, "{events:?}");
    let saved = diffusion_playground::nn::weights::load(&path).expect("loads");
    assert_eq!(saved.steps, 300, "paused: no step since the load");
    // A new network starts from nothing again.
    handle.send(Command::Reset { seed: 9 });
    let (_, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Restarted));
    assert!(ok);
    let fresh = handle.take_snapshot().expect("the fresh weights are shown");
    assert_eq!(fresh.trained_steps, fresh.step);
}

/// The window survives a crashed training thread: the message shows, and the restart button
/// brings a new thread.
#[test]
fn the_app_shows_a_crash_and_restarts_training() {
    use diffusion_playground::app::{App, Settings};
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    let settings = Settings {
        particles: 500,
        ..Settings::default()
    };
    // The first backend panics at its third step; the restarted one does not.
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| App::with_backends(settings, &cc.egui_ctx, faulty_once()));
    let start = Instant::now();
    while h.state().train.crashed.is_none() && start.elapsed() < Duration::from_secs(10) {
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let message = h
        .state()
        .train
        .crashed
        .clone()
        .expect("the crash is reported");
    assert!(message.contains("kernel exploded"), "{message}");
    h.run_steps(1);
    assert!(h.query_by_label_contains("Training crashed").is_some());
    // The button may sit below the fold of the controls: scroll to it, then press it.
    h.get_by_label("Restart training").scroll_to_me();
    h.run_steps(2);
    h.get_by_label("Restart training").click_accesskit();
    h.run_steps(2);
    let start = Instant::now();
    while h.state().train.backend.is_none() && start.elapsed() < Duration::from_secs(10) {
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(h.state().train.crashed.is_none(), "restarted");
    assert_eq!(h.state().train.backend.as_deref(), Some("faulty"));
}
