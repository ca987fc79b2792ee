//! What the UI knows about training: the latest progress, the curves, the newest weights and
//! any message from the thread. Filled from [`Event`]s once per frame.

use crate::train::{Event, Snapshot};

/// Points kept per curve before old ones are thinned (every other one dropped).
const CURVE_POINTS: usize = 4000;

#[derive(Default)]
pub struct TrainState {
    pub backend: Option<String>,
    /// Why that backend trains (e.g. "backend: cpu (adapter llvmpipe … is a CPU)").
    pub backend_why: Option<String>,
    pub params: usize,
    pub step: u64,
    pub samples_per_sec: f64,
    pub paused: bool,
    /// Why training paused by itself (a NaN loss).
    pub paused_reason: Option<String>,
    /// The last error from a command; shown until dismissed.
    pub error: Option<String>,
    /// The thread panicked with this message; a restart button is offered.
    pub crashed: Option<String>,
    /// (step, loss).
    pub loss: Vec<[f64; 2]>,
    /// (step, sw2).
    pub quality: Vec<[f64; 2]>,
    /// The data-vs-data floor of the latest quality measurement.
    pub quality_floor: Option<f64>,
    /// The lowest and highest floor over the pairs of subsets it averages.
    pub quality_floor_band: Option<(f64, f64)>,
    /// The newest EMA weights and how many arrived so far (a version number).
    pub model: Option<Snapshot>,
    pub model_version: u64,
    pub last_message: Option<String>,
}

impl TrainState {
    /// Applies one event.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                backend,
                params,
                why,
            } => {
                self.backend = Some(backend);
                self.backend_why = Some(why);
                self.params = params;
                self.crashed = None;
                self.error = None;
            }
            Event::Progress(p) => {
                self.step = p.step;
                self.samples_per_sec = p.samples_per_sec;
                if p.loss.is_finite() {
                    push_thinned(&mut self.loss, [p.step as f64, p.loss as f64]);
                }
            }
            Event::Quality {
                step,
                sw2,
                floor,
                floor_band,
            } => {
                self.quality_floor_band = Some(floor_band);
                if sw2.is_finite() {
                    push_thinned(&mut self.quality, [step as f64, sw2]);
                }
                self.quality_floor = Some(floor);
            }
            Event::Paused { reason } => {
                self.paused = true;
                self.paused_reason = Some(reason);
            }
            Event::Error(message) => self.error = Some(message),
            Event::Notice(message) => self.last_message = Some(message),
            Event::Crashed(message) => self.crashed = Some(message),
            Event::Restarted => {
                self.loss.clear();
                self.quality.clear();
                self.step = 0;
            }
            Event::Saved(path) => {
                self.last_message = Some(format!("saved {}", path.display()));
            }
            #[cfg(target_arch = "wasm32")]
            Event::Download { name, bytes } => {
                self.last_message = Some(format!("{name}: a download link follows"));
                crate::app::files::download(&name, bytes);
            }
        }
    }

    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.step = self.step.max(snapshot.step);
        self.model = Some(snapshot);
        self.model_version += 1;
    }

    /// The latest quality as a multiple of its floor (1 is as good as data).
    pub fn quality_ratio(&self) -> Option<f64> {
        quality_ratio(&self.quality, self.quality_floor)
    }
}

/// The last quality of a curve as a multiple of `floor`.
pub fn quality_ratio(quality: &[[f64; 2]], floor: Option<f64>) -> Option<f64> {
    let sw2 = quality.last()?[1];
    let floor = floor?;
    (floor > 0.0).then(|| sw2 / floor)
}

/// Appends, halving the resolution of the history when it is full, so a long session keeps
/// its whole curve in bounded memory.
fn push_thinned(curve: &mut Vec<[f64; 2]>, point: [f64; 2]) {
    if curve.len() >= CURVE_POINTS {
        let mut i = 0;
        curve.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
    curve.push(point);
}
