//! "Did x reach N(0, I) at t = 1?": the forward process's end compared with a draw of the
//! prior (sliced W₂ next to its floor, and SNR(1)), computed in the background whenever the
//! schedule or the data changes.

use std::sync::Arc;

use crate::Point;
use crate::math::Schedule;
use crate::math::metrics::sliced_w2;
use crate::math::solvers::prior;
use crate::work::{self, Control, Step};

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
pub type CheckKey = (Schedule, u64);

/// The check of the schedule and data shown, computed in the background (a newer key
/// cancels an older check).
pub type NoiseChecker = work::Latest<CheckKey, NoiseCheck>;

/// The job that checks `schedule` on `points`.
pub fn check(schedule: Schedule, points: &Arc<Vec<Point>>) -> impl work::Job<Output = NoiseCheck> {
    NoiseCheckJob {
        schedule,
        points: Arc::clone(points),
        waited: false,
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
        crate::math::Process::Vp.marginal(&schedule, 1.0, &x0, &prior(n, 0xC0FFEE), &mut x1);
        let gauss = prior(n, 0xBEEF);
        Ok(Step::Done(NoiseCheck {
            sw2: sliced_w2(&x1, &gauss),
            floor: sliced_w2(&prior(n, 0xFACE), &gauss),
            alpha_end: schedule.alpha(1.0),
            snr_end: schedule.snr(1.0),
        }))
    }
}
