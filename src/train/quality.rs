//! The trainer's quality curve, measured beside training so that neither the UI nor the
//! optimiser waits for it: sample a small batch from the EMA weights and measure its sliced
//! W₂ to the data, next to the floor (the same distance between disjoint subsets of the
//! data). Each measurement is a job of its own (`crate::work`), at most one at a time.

use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use super::Snapshot;
use crate::Point;
use crate::math::Schedule;
use crate::math::metrics::sliced_w2;
use crate::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use crate::work::{Control, Job, Outcome, Repaint, Step, Worker};

/// Particles in the quality sample (and in each half of the floor).
const SAMPLE: usize = 1000;
/// Heun with 25 steps (50 evaluations) is close to converged on these toy sets.
const STEPS: usize = 25;
/// At most one measurement this often: it shares the CPU with training.
const EVERY: Duration = Duration::from_millis(2500);
/// The noise the quality sample starts from (the same for every measurement).
const SEED: u32 = 0x0A11_7E57;

/// One point of the quality curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Measured {
    pub step: u64,
    pub sw2: f64,
    /// The floor's mean over the pairs of subsets, and its lowest and highest.
    pub floor: f64,
    pub floor_band: (f64, f64),
}

/// Measures the weights it is offered, one job at a time, at most every [`EVERY`].
pub(super) struct Quality {
    worker: Option<Worker<(Measured, Arc<Vec<Point>>)>>,
    last: Option<Instant>,
    /// The floor (mean, band) of the data it was measured on (the `Arc` keeps that data
    /// alive, so the pointer comparison cannot match a new allocation).
    floor: Option<(Arc<Vec<Point>>, Floor)>,
    repaint: Repaint,
}

impl Quality {
    pub(super) fn new(repaint: Repaint) -> Self {
        Self {
            worker: None,
            last: None,
            floor: None,
            repaint,
        }
    }

    /// Offers new weights; ignored if measured recently or a measurement is running.
    pub(super) fn offer(&mut self, snapshot: &Snapshot, schedule: Schedule, data: Arc<Vec<Point>>) {
        if self.worker.is_some() || self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        let floor = match &self.floor {
            Some((of, floor)) if Arc::ptr_eq(of, &data) => Some(*floor),
            _ => None,
        };
        let job = Measure::new(snapshot.clone(), schedule, data, floor);
        self.worker = Some(Worker::spawn("quality", job, Arc::clone(&self.repaint)));
        self.last = Some(Instant::now());
    }

    /// A finished measurement, or why it failed.
    pub(super) fn poll(&mut self) -> Option<Result<Measured, String>> {
        let outcome = self.worker.as_ref()?.take()?;
        self.worker = None;
        match outcome {
            Outcome::Done((measured, data)) => {
                let floor = Floor {
                    mean: measured.floor,
                    band: measured.floor_band,
                };
                self.floor = Some((data, floor));
                Some(Ok(measured))
            }
            Outcome::Failed(e) => Some(Err(format!("quality measurement failed: {e}"))),
            Outcome::Cancelled => None,
        }
    }

    /// New data: drop a measurement of the old, measure the next weights at once.
    pub(super) fn reset(&mut self) {
        self.worker = None;
        self.last = None;
    }
}

/// One measurement, in steps: the floor (unless known), then one sampler step at a time.
/// The data-vs-data floor: its mean over pairs of subsets, and their lowest and highest.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Floor {
    mean: f64,
    band: (f64, f64),
}

struct Measure {
    snapshot: Snapshot,
    data: Arc<Vec<Point>>,
    reference: Vec<Point>,
    floor: Option<Floor>,
    sampler: Sampler,
    x: Vec<Point>,
}

impl Measure {
    fn new(
        snapshot: Snapshot,
        schedule: Schedule,
        data: Arc<Vec<Point>>,
        floor: Option<Floor>,
    ) -> Self {
        let reference = group(&data, 0);
        let cfg = SamplerConfig {
            kind: SamplerKind::Heun,
            steps: STEPS,
            seed: SEED,
            ..SamplerConfig::default()
        };
        let x = prior(reference.len(), cfg.seed);
        Self {
            snapshot,
            data,
            reference,
            floor,
            sampler: Sampler::new(schedule, cfg),
            x,
        }
    }
}

impl Job for Measure {
    type Output = (Measured, Arc<Vec<Point>>);

    fn step(&mut self, ctl: &Control) -> Result<Step<Self::Output>, String> {
        let Some(floor) = self.floor else {
            // The sw2 of two small draws varies by ±50 %: average a few pairs, keep the band.
            let pairs: Vec<f64> = (1..GROUPS)
                .map(|g| sliced_w2(&group(&self.data, g), &self.reference))
                .collect();
            self.floor = Some(Floor {
                mean: pairs.iter().sum::<f64>() / pairs.len() as f64,
                band: (
                    pairs.iter().copied().fold(f64::INFINITY, f64::min),
                    pairs.iter().copied().fold(0.0, f64::max),
                ),
            });
            return Ok(Step::Continue);
        };
        if !self.sampler.is_done() {
            self.sampler.step(self.snapshot.model.as_ref(), &mut self.x);
            ctl.set_progress(self.sampler.nfe() as f64 / (2 * STEPS) as f64);
            return Ok(Step::Continue);
        }
        let measured = Measured {
            step: self.snapshot.step,
            sw2: sliced_w2(&self.x, &self.reference),
            floor: floor.mean,
            floor_band: floor.band,
        };
        Ok(Step::Done((measured, Arc::clone(&self.data))))
    }
}

/// Disjoint subsets of the data: the first is the reference, the others measure the floor.
const GROUPS: usize = 5;

/// Subset `g` of [`GROUPS`], at most [`SAMPLE`] points, interleaved (every k-th point), so
/// that ordered data (a drawn stroke) is covered evenly.
fn group(data: &[Point], g: usize) -> Vec<Point> {
    let size = (data.len() / GROUPS).clamp(1, SAMPLE);
    (0..size)
        .map(|i| data[(i * GROUPS + g).min(data.len() - 1)])
        .collect()
}
