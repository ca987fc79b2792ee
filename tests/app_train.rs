//! The training thread: it trains from the first moment, reports progress and weights,
//! keeps its weights through lr / weighting / schedule changes, pauses on a NaN loss, and
//! survives a panicking backend with a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diffusion_playground::Point;
use diffusion_playground::data::BuiltIn;
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{MlpConfig, Weighting};
use diffusion_playground::train::{
    Backend, BackendFactory, Command, Event, SharedModel, TrainHandle, TrainSettings, TrainSetup,
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
    let handle = TrainHandle::spawn(small_setup(), || {}).expect("spawn");
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
    let mut handle = TrainHandle::spawn(small_setup(), || {}).expect("spawn");
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 30));
    assert!(ok);
    handle.send(Command::SetLr(5e-4));
    handle.send(Command::SetWeighting(Weighting::Importance));
    handle.send(Command::SetSchedule(Schedule::Linear {
        beta_min: 0.1,
        beta_max: 5.0,
    }));
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
fn reset_starts_over_and_bad_commands_report_errors() {
    let mut handle = TrainHandle::spawn(small_setup(), || {}).expect("spawn");
    let (_, ok) = wait_for(&handle, 30.0, |e| progress_step(e).is_some_and(|s| s > 30));
    assert!(ok);
    handle.send(Command::SetBatch(0));
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
    let mut handle = TrainHandle::spawn(small_setup(), || {}).expect("spawn");
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
}

impl Backend for Faulty {
    fn name(&self) -> String {
        "faulty".into()
    }
    fn num_params(&self) -> usize {
        0
    }
    fn step(&mut self) -> f32 {
        self.steps += 1;
        if self.panic_at == Some(self.steps) {
            panic!("kernel exploded at step {}", self.steps);
        }
        if self.steps > 20 { f32::NAN } else { 1.0 }
    }
    fn steps_done(&self) -> u64 {
        self.steps
    }
    fn batch(&self) -> usize {
        1
    }
    fn model(&self) -> Result<SharedModel, String> {
        Err("no model".into())
    }
    fn set_data(&mut self, _: &[Point]) -> Result<(), String> {
        Ok(())
    }
    fn set_schedule(&mut self, _: Schedule) -> Result<(), String> {
        Ok(())
    }
    fn set_lr(&mut self, _: f32) -> Result<(), String> {
        Ok(())
    }
    fn set_weighting(&mut self, _: Weighting) -> Result<(), String> {
        Ok(())
    }
    fn set_batch(&mut self, _: usize) -> Result<(), String> {
        Ok(())
    }
    fn reset(&mut self, _: u32) -> Result<(), String> {
        self.steps = 0;
        Ok(())
    }
    fn save(
        &self,
        _: &std::path::Path,
        _: &str,
        _: diffusion_playground::data::Normalization,
    ) -> Result<(), String> {
        Ok(())
    }
    fn load(&mut self, _: &std::path::Path) -> Result<MlpConfig, String> {
        Err("no".into())
    }
}

fn faulty(panic_at: Option<u64>) -> BackendFactory {
    Arc::new(move |_: &TrainSettings, _: Schedule, _: &[Point]| {
        Ok(Box::new(Faulty { steps: 0, panic_at }) as Box<dyn Backend>)
    })
}

#[test]
fn a_nan_loss_pauses_with_a_reason() {
    let handle = TrainHandle::spawn_with(small_setup(), faulty(None), || {}).expect("spawn");
    let (events, ok) = wait_for(&handle, 10.0, |e| matches!(e, Event::Paused { .. }));
    assert!(ok, "{events:?}");
    let reason = events.iter().find_map(|e| match e {
        Event::Paused { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.is_some_and(|r| r.contains("NaN")));
}

#[test]
fn a_panic_is_reported_and_the_handle_survives() {
    let mut handle = TrainHandle::spawn_with(small_setup(), faulty(Some(5)), || {}).expect("spawn");
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
