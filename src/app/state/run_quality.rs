//! The quality of the run on the canvas: when a reverse run ends, its particles are measured
//! against held-out data (sliced W₂), next to the floor at the same number of points — the
//! same distance between independent draws of the data, redrawn a few times so the floor
//! shows as a band, not a line a noisy run could dip under. Computed in the background.

use std::sync::Arc;

use super::trajectory::Stored;
use crate::Point;
use crate::data::BuiltIn;
use crate::math::metrics::sliced_w2;
use crate::math::rng::uniform;
use crate::work::{self, Control, Step};

/// Most points measured: a larger run is measured on every k-th particle (the floor at the
/// same n), so a measurement costs at most about a second.
const MAX_POINTS: usize = 20_000;
/// Pairs of independent draws behind the floor band.
const REDRAWS: usize = 5;
/// Seeds of the held-out draws (the app trains on seed 0 of a built-in).
const HELD_OUT_SEED: u64 = 0x4E1D_0007;
/// Stream of the resampling of data that has no generator (a CSV, a drawing).
const RESAMPLE_STREAM: u32 = 0x5E5A_3B1E;

/// Where held-out points come from.
#[derive(Clone)]
pub enum HeldOut {
    /// Fresh draws of a built-in dataset, never the ones trained on.
    BuiltIn(BuiltIn),
    /// Data without a generator: draws with replacement from its points (the run is then
    /// compared with the points it was trained on).
    Resample(Arc<Vec<Point>>),
}

impl HeldOut {
    fn draw(&self, n: usize, seed: u64) -> Vec<Point> {
        match self {
            HeldOut::BuiltIn(b) => b.sample(n, seed).points,
            HeldOut::Resample(points) => (0..n)
                .map(|i| {
                    let u = uniform(seed as u32, (seed >> 32) as u32, i as u32, RESAMPLE_STREAM);
                    points[((u * points.len() as f32) as usize).min(points.len() - 1)]
                })
                .collect(),
        }
    }

    /// Whether the comparison is with data the model never saw.
    pub fn is_held_out(&self) -> bool {
        matches!(self, HeldOut::BuiltIn(_))
    }
}

/// The measured quality of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunQuality {
    /// Points measured (the run's, or every k-th of them).
    pub n: usize,
    /// sliced W₂ of the run's particles to held-out data; ∞ when the run diverged.
    pub sw2: f64,
    /// The floor at the same n: mean, lowest and highest over [`REDRAWS`] pairs of draws.
    pub floor: f64,
    pub floor_lo: f64,
    pub floor_hi: f64,
    /// Whether the reference was held out (a fresh draw) or the training points.
    pub held_out: bool,
}

impl RunQuality {
    /// sw2 as a multiple of the mean floor.
    pub fn ratio(&self) -> f64 {
        self.sw2 / self.floor.max(1e-12)
    }

    /// What the number is measured against, in one short line.
    pub fn detail(&self) -> String {
        let against = if self.held_out {
            "held-out data"
        } else {
            "the training points"
        };
        format!(
            "{} points vs {against} · floor {:.3}–{:.3} over {REDRAWS} redraws",
            self.n, self.floor_lo, self.floor_hi
        )
    }

    /// One line for the canvas.
    pub fn caption(&self) -> String {
        if !self.sw2.is_finite() {
            return "this run diverged (particles went to infinity)".to_owned();
        }
        let against = if self.held_out {
            "held-out data"
        } else {
            "the training points"
        };
        format!(
            "this run: sw2 = {:.1} × floor  (vs {against}; floor {:.3}–{:.3} over {REDRAWS} \
             redraws of {} points)",
            self.ratio(),
            self.floor_lo,
            self.floor_hi,
            self.n
        )
    }
}

/// The measurement of the last run asked for (by its `Runner::id`), in the background.
pub type RunQualityState = work::Latest<u64, RunQuality>;

/// The job that measures a run whose last frame is `last`.
pub fn measure(last: Stored, held_out: HeldOut) -> impl work::Job<Output = RunQuality> {
    Measure {
        last: Some(last),
        held_out,
        particles: Vec::new(),
        reference: Vec::new(),
        floors: Vec::new(),
    }
}

/// The quality of run `run`: `Ok(None)` while it is measured (or not asked for).
pub fn of(state: &RunQualityState, run: u64) -> Result<Option<RunQuality>, String> {
    if state.wanted() != Some(&run) {
        return Ok(None);
    }
    match state.latest() {
        Some(Ok(q)) => Ok(Some(*q)),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(None),
    }
}

/// The measurement, one distance per step.
struct Measure {
    last: Option<Stored>,
    held_out: HeldOut,
    particles: Vec<Point>,
    reference: Vec<Point>,
    floors: Vec<f64>,
}

impl work::Job for Measure {
    type Output = RunQuality;

    fn step(&mut self, ctl: &Control) -> Result<Step<RunQuality>, String> {
        if let Some(last) = self.last.take() {
            let all = match last {
                Stored::Cpu(points) => points.as_ref().clone(),
                Stored::Gpu(frame) => frame.read().map_err(|e| e.to_string())?,
            };
            if all.iter().any(|p| !(p[0].is_finite() && p[1].is_finite())) {
                return Ok(Step::Done(RunQuality {
                    n: all.len(),
                    sw2: f64::INFINITY,
                    floor: 0.0,
                    floor_lo: 0.0,
                    floor_hi: 0.0,
                    held_out: self.held_out.is_held_out(),
                }));
            }
            let stride = all.len().div_ceil(MAX_POINTS).max(1);
            self.particles = all.into_iter().step_by(stride).collect();
            return Ok(Step::Continue);
        }
        let n = self.particles.len().max(1);
        if self.reference.is_empty() {
            self.reference = self.held_out.draw(n, HELD_OUT_SEED);
            return Ok(Step::Continue);
        }
        if self.floors.len() < REDRAWS {
            let k = self.floors.len() as u64;
            let a = self.held_out.draw(n, HELD_OUT_SEED + 1 + 2 * k);
            let b = self.held_out.draw(n, HELD_OUT_SEED + 2 + 2 * k);
            self.floors.push(sliced_w2(&a, &b));
            ctl.set_progress(self.floors.len() as f64 / (REDRAWS + 1) as f64);
            return Ok(Step::Continue);
        }
        let floor = self.floors.iter().sum::<f64>() / REDRAWS as f64;
        Ok(Step::Done(RunQuality {
            n,
            sw2: sliced_w2(&self.particles, &self.reference),
            floor,
            floor_lo: self.floors.iter().copied().fold(f64::INFINITY, f64::min),
            floor_hi: self.floors.iter().copied().fold(0.0, f64::max),
            held_out: self.held_out.is_held_out(),
        }))
    }
}
