//! The quality curve, computed beside training so that neither the UI nor the optimiser
//! waits for it: sample a small batch from the EMA weights and measure its sliced W₂ to the
//! data, next to the floor (the same distance between disjoint subsets of the data).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::worker::{Events, panic_message};
use super::{Event, Snapshot};
use crate::Point;
use crate::math::Schedule;
use crate::math::metrics::sliced_w2;
use crate::math::solvers::{SamplerConfig, SamplerKind, sample};

/// Particles in the quality sample (and in each half of the floor).
const SAMPLE: usize = 1000;
/// Heun with 25 steps (50 evaluations) is close to converged on these toy sets.
const STEPS: usize = 25;
/// At most one measurement this often: it shares the CPU with training.
const EVERY: Duration = Duration::from_millis(2500);

struct Job {
    snapshot: Snapshot,
    schedule: Schedule,
    data: Arc<Vec<Point>>,
}

/// A thread measuring quality of the weights it is offered, at most one job queued.
pub(super) struct QualityThread {
    jobs: Option<Sender<Job>>,
    last: Option<Instant>,
}

impl QualityThread {
    pub(super) fn spawn(events: Events) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(1);
        let spawned = std::thread::Builder::new()
            .name("quality".into())
            .spawn(move || {
                super::lower_priority();
                run(&rx, &events);
            });
        Self {
            // Without the thread there is no quality curve; training is unaffected.
            jobs: spawned.ok().map(|_| tx),
            last: None,
        }
    }

    /// Offers new weights; ignored if measured recently or a job is already waiting.
    pub(super) fn offer(&mut self, snapshot: Snapshot, schedule: Schedule, data: Arc<Vec<Point>>) {
        if self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        let Some(jobs) = &self.jobs else { return };
        match jobs.try_send(Job {
            snapshot,
            schedule,
            data,
        }) {
            Ok(()) => self.last = Some(Instant::now()),
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => self.jobs = None,
        }
    }

    /// New data: measure the next weights at once.
    pub(super) fn reset(&mut self) {
        self.last = None;
    }
}

fn run(jobs: &Receiver<Job>, events: &Events) {
    let mut floor_of: Option<(Arc<Vec<Point>>, f64)> = None;
    for job in jobs {
        let measured = catch_unwind(AssertUnwindSafe(|| {
            let groups = groups(&job.data);
            let reference = &groups[0];
            let floor = match &floor_of {
                Some((data, floor)) if Arc::ptr_eq(data, &job.data) => *floor,
                _ => {
                    // The sw2 of two small draws varies by ±50 %: average a few pairs.
                    let floor = groups[1..]
                        .iter()
                        .map(|g| sliced_w2(g, reference))
                        .sum::<f64>()
                        / (groups.len() - 1) as f64;
                    floor_of = Some((Arc::clone(&job.data), floor));
                    floor
                }
            };
            let cfg = SamplerConfig {
                kind: SamplerKind::Heun,
                steps: STEPS,
                seed: 0x0A11_7E57,
                ..SamplerConfig::default()
            };
            let (samples, _) = sample(
                job.snapshot.model.as_ref(),
                job.schedule,
                cfg,
                reference.len(),
            );
            (sliced_w2(&samples, reference), floor)
        }));
        match measured {
            Ok((sw2, floor)) => events.send(Event::Quality {
                step: job.snapshot.step,
                sw2,
                floor,
            }),
            Err(payload) => {
                events.send(Event::Error(format!(
                    "quality measurement failed: {}",
                    panic_message(payload.as_ref())
                )));
                return;
            }
        }
    }
}

/// Disjoint subsets of the data, each at most [`SAMPLE`] points: the first is the
/// reference, the others measure the floor. Interleaved (every k-th point), so that ordered
/// data (a drawn stroke) is covered evenly.
fn groups(data: &[Point]) -> Vec<Vec<Point>> {
    const GROUPS: usize = 5;
    let size = (data.len() / GROUPS).clamp(1, SAMPLE);
    (0..GROUPS)
        .map(|g| {
            (0..size)
                .map(|i| data[(i * GROUPS + g).min(data.len() - 1)])
                .collect()
        })
        .collect()
}
