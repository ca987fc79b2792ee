//! "Did x reach N(0, I) at t = 1?": the forward process's end compared with a draw of the
//! prior (sliced W₂ next to its floor, and SNR(1)), computed in the background whenever the
//! schedule or the data changes.

use std::sync::Arc;

use crate::Point;
use crate::math::metrics::sliced_w2;
use crate::math::solvers::prior;
use crate::math::{Schedule, sde};
use crate::work::{self, Control, Outcome, Step, Worker};

/// Points in the check: enough that the floor (the sw2 of two N(0, I) draws, ~1/√n) is
/// small next to what a schedule stopping at α(1) ≈ 0.3 leaves.
const CHECK_POINTS: usize = 20_000;
/// How long the schedule must rest before it is checked.
const CHECK_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(250);

/// The "did x reach N(0, I) at t = 1?" readout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseCheck {
    /// Sliced W₂ between x₁ and a fresh N(0, I) draw.
    pub sw2: f64,
    /// The same between two N(0, I) draws.
    pub floor: f64,
    /// α(1): how much of the data survives at t = 1.
    pub alpha_end: f64,
    /// SNR(1) = α²/σ² at t = 1.
    pub snr_end: f64,
}

/// Largest SNR(1) that counts as "the data is gone": under it the data carries less than
/// 1 % of x₁'s variance. (Standardised data has the prior's variance, so the sw2 of x₁ to
/// N(0, I) barely moves until α(1) is large; the SNR is the sharper test.)
pub const MAX_END_SNR: f64 = 0.01;

impl NoiseCheck {
    /// Whether x₁ is indistinguishable from noise at this sample size.
    pub fn reached_noise(&self) -> bool {
        self.snr_end <= MAX_END_SNR && self.ratio() <= 1.5
    }

    /// sw2 as a multiple of its floor.
    pub fn ratio(&self) -> f64 {
        self.sw2 / self.floor.max(1e-12)
    }
}

/// What a check is of: the schedule and the data's version (`LoadedData::version`).
type CheckKey = (Schedule, u64);

/// The check being computed (dropping it cancels it) and the last one computed.
#[derive(Default)]
pub struct NoiseChecker {
    checking: Option<(CheckKey, Worker<NoiseCheck>)>,
    checked: Option<(CheckKey, NoiseCheck)>,
    /// Wakes the UI when a check finishes (egui's `request_repaint`).
    pub repaint: Option<work::Repaint>,
}

impl NoiseChecker {
    /// Starts the check of this schedule and data, unless it is known or under way.
    pub fn ensure(&mut self, schedule: Schedule, data_version: u64, points: &Arc<Vec<Point>>) {
        let key = (schedule, data_version);
        self.collect();
        let known = self.checked.as_ref().is_some_and(|(k, _)| *k == key);
        let under_way = self.checking.as_ref().is_some_and(|(k, _)| *k == key);
        if known || under_way {
            return;
        }
        // A superseded check is cancelled by dropping its worker.
        let job = NoiseCheckJob {
            schedule,
            points: Arc::clone(points),
            waited: false,
        };
        let repaint = self.repaint.clone().unwrap_or_else(work::no_repaint);
        self.checking = Some((key, Worker::spawn("noise check", job, repaint)));
    }

    /// Takes in a finished check.
    pub fn collect(&mut self) {
        if let Some((k, worker)) = &self.checking
            && let Some(outcome) = worker.take()
        {
            if let Outcome::Done(check) = outcome {
                self.checked = Some((*k, check));
            }
            self.checking = None;
        }
    }

    /// Drops the check under way and the last result (new data).
    pub fn forget(&mut self) {
        self.checking = None;
        self.checked = None;
    }

    /// The check of what was last asked for, once computed.
    pub fn get(&self) -> Option<NoiseCheck> {
        let (key, check) = self.checked.as_ref()?;
        let wanted = self.checking.as_ref().map(|(k, _)| k);
        (wanted.is_none_or(|w| w == key)).then_some(*check)
    }
}

/// Whether the forward process reached N(0, I): half a second of sorting, off the UI thread.
/// It first waits [`CHECK_DEBOUNCE`], so that while a slider moves only the schedule it
/// rests on is measured (a superseded check is cancelled while it waits).
struct NoiseCheckJob {
    schedule: Schedule,
    points: Arc<Vec<Point>>,
    waited: bool,
}

impl work::Job for NoiseCheckJob {
    type Output = NoiseCheck;

    fn step(&mut self, _ctl: &Control) -> Result<Step<NoiseCheck>, String> {
        if !self.waited {
            self.waited = true;
            return Ok(Step::Wait(CHECK_DEBOUNCE));
        }
        let (schedule, points, n) = (self.schedule, &self.points, CHECK_POINTS);
        let x0: Vec<Point> = (0..n).map(|i| points[i % points.len()]).collect();
        let mut x1 = vec![[0.0; 2]; n];
        sde::marginal(&schedule, 1.0, &x0, &prior(n, 0xC0FFEE), &mut x1);
        let gauss = prior(n, 0xBEEF);
        Ok(Step::Done(NoiseCheck {
            sw2: sliced_w2(&x1, &gauss),
            floor: sliced_w2(&prior(n, 0xFACE), &gauss),
            alpha_end: schedule.alpha(1.0),
            snr_end: schedule.snr(1.0),
        }))
    }
}
