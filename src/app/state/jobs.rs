//! Heavy teaching computations in the background: the UI polls a [`Task`] each frame for its
//! progress and result, and can cancel it (the computation checks the flag as it goes).
//! Each run is a `crate::work` job. A run may publish partial results as it goes
//! ([`Partial`]): a view then fills in (a curve per sampler, rows of a heatmap) instead of
//! staying blank until the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use egui::{Color32, RichText, Ui};

use crate::teach::{Progress, Sweep, TeachError};
use crate::work::{Control, Job, Once, Outcome, Step, Worker};

/// A computation the user can start, watch, cancel and read the result of.
pub struct Task<T> {
    worker: Option<Worker<Result<T, TeachError>>>,
    /// Where the run in progress leaves its newest partial result.
    slot: Arc<Mutex<Option<T>>>,
    /// The newest partial result of the run in progress.
    partial: Option<T>,
    pub result: Option<T>,
    pub error: Option<String>,
    /// Seconds the last finished run took.
    pub last_secs: f64,
}

impl<T> Default for Task<T> {
    fn default() -> Self {
        Self {
            worker: None,
            slot: Arc::new(Mutex::new(None)),
            partial: None,
            result: None,
            error: None,
            last_secs: 0.0,
        }
    }
}

/// Hands a running computation's partial results to its [`Task`] (the newest one wins).
pub struct Partial<T> {
    slot: Arc<Mutex<Option<T>>>,
    repaint: egui::Context,
}

impl<T> Partial<T> {
    pub fn publish(&self, value: T) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(value);
        }
        self.repaint.request_repaint();
    }
}

impl<T: Send + 'static> Task<T> {
    /// Starts `work` in the background (cancelling any run in progress).
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        work: impl FnOnce(Progress<'_>) -> Result<T, TeachError> + Send + 'static,
    ) {
        self.start_progressive(ctx, move |progress, _| work(progress));
    }

    /// Like [`Task::start`], and the run can show what it has so far through its [`Partial`].
    pub fn start_progressive(
        &mut self,
        ctx: &egui::Context,
        work: impl FnOnce(Progress<'_>, &Partial<T>) -> Result<T, TeachError> + Send + 'static,
    ) {
        // One step: the computation reports its progress and looks at the cancel flag itself,
        // through `teach::Progress`.
        self.start_job(ctx, move |partial| {
            Once::new(move |ctl: &Control| {
                let report = |f: f64| ctl.set_progress(f);
                Ok(work(Progress::new(ctl.cancel_flag(), &report), &partial))
            })
        });
    }

    /// Starts a job that advances in steps (so it also runs in time slices where there are
    /// no threads); `make` gets the handle for its partial results.
    pub fn start_job<J>(&mut self, ctx: &egui::Context, make: impl FnOnce(Partial<T>) -> J)
    where
        J: crate::work::Job<Output = Result<T, TeachError>>,
    {
        self.cancel();
        self.error = None;
        // A fresh slot: a cancelled run still holding the old one cannot publish into this one.
        self.slot = Arc::new(Mutex::new(None));
        let job = make(Partial {
            slot: Arc::clone(&self.slot),
            repaint: ctx.clone(),
        });
        let repaint = ctx.clone();
        self.worker = Some(Worker::spawn(
            "teach",
            job,
            Arc::new(move || repaint.request_repaint()),
        ));
    }

    /// Starts a [`Sweep`]: `make` builds it on the job's first step (building may be work
    /// too), then one `advance` per step, with what it has so far published after each.
    pub fn start_sweep<S>(
        &mut self,
        ctx: &egui::Context,
        make: impl FnOnce() -> Result<S, TeachError> + Send + 'static,
    ) where
        S: Sweep<Output = T>,
    {
        self.start_job(ctx, move |partial| SweepJob {
            make: Some(Box::new(make)),
            sweep: None,
            partial,
        });
    }

    /// Collects a finished run; true when a new result arrived this frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let Some(worker) = &self.worker else {
            return false;
        };
        let Some(outcome) = worker.take() else {
            if let Some(p) = self.slot.lock().ok().and_then(|mut s| s.take()) {
                self.partial = Some(p);
            }
            // Keep the progress bar moving without waking the UI from the worker each step.
            ctx.request_repaint_after(Duration::from_millis(100));
            return false;
        };
        self.last_secs = worker.elapsed().as_secs_f64();
        self.worker = None;
        self.partial = None;
        match outcome {
            Outcome::Done(Ok(value)) => {
                self.result = Some(value);
                self.error = None;
                true
            }
            Outcome::Done(Err(TeachError::Cancelled)) | Outcome::Cancelled => {
                self.error = Some("cancelled".into());
                false
            }
            Outcome::Done(Err(e)) => {
                self.error = Some(e.to_string());
                false
            }
            Outcome::Failed(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.worker.is_some()
    }

    /// What to draw: the run in progress's partial result while one runs (never the previous
    /// run's numbers beside a new run's progress bar), else the last result.
    pub fn shown(&self) -> Option<&T> {
        if self.is_running() {
            self.partial.as_ref()
        } else {
            self.result.as_ref()
        }
    }

    /// The fraction done of the run in progress.
    pub fn progress(&self) -> Option<f64> {
        self.worker.as_ref().map(Worker::progress)
    }

    /// Asks the run in progress to stop (it ends at its next check; the result is dropped).
    pub fn cancel(&mut self) {
        // Dropping the worker cancels it.
        self.worker = None;
        self.partial = None;
    }

    /// A "Compute" button, or a progress bar with "Cancel" while running, and the last
    /// error. True when the user asked to start.
    pub fn controls_ui(&mut self, ui: &mut Ui, label: &str) -> bool {
        let mut start = false;
        ui.horizontal(|ui| {
            if let Some(f) = self.progress() {
                if ui.button("Cancel").clicked() {
                    self.cancel();
                    self.error = Some("cancelled".into());
                }
                let elapsed = self
                    .worker
                    .as_ref()
                    .map_or(0.0, |w| w.elapsed().as_secs_f32());
                ui.add(
                    egui::ProgressBar::new(f as f32)
                        .desired_width(220.0)
                        .text(format!("{:.0} % · {elapsed:.0} s", 100.0 * f)),
                );
            } else {
                start = ui.button(label).clicked();
                if self.result.is_some() && self.last_secs > 0.0 {
                    ui.label(RichText::new(format!("took {:.1} s", self.last_secs)).weak());
                }
            }
        });
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(Color32::from_rgb(255, 120, 100)));
        }
        start
    }
}

/// A [`Sweep`] as a job.
struct SweepJob<S: Sweep> {
    make: Option<Box<dyn FnOnce() -> Result<S, TeachError> + Send>>,
    sweep: Option<S>,
    partial: Partial<S::Output>,
}

impl<S: Sweep> Job for SweepJob<S> {
    type Output = Result<S::Output, TeachError>;

    fn step(&mut self, ctl: &Control) -> Result<Step<Self::Output>, String> {
        if let Some(make) = self.make.take() {
            return Ok(match make() {
                Ok(sweep) => {
                    self.sweep = Some(sweep);
                    Step::Continue
                }
                Err(e) => Step::Done(Err(e)),
            });
        }
        let Some(sweep) = self.sweep.as_mut() else {
            return Err("the computation ran after it ended".into());
        };
        let report = |f: f64| ctl.set_progress(f);
        match sweep.advance(Progress::new(ctl.cancel_flag(), &report)) {
            Ok(true) => Ok(Step::Done(sweep.so_far().ok_or_else(|| {
                TeachError::Invalid("the computation ended with nothing to show".into())
            }))),
            Ok(false) => {
                if let Some(so_far) = sweep.so_far() {
                    self.partial.publish(so_far);
                }
                Ok(Step::Continue)
            }
            Err(e) => Ok(Step::Done(Err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn wait_for(task: &mut Task<u32>, ctx: &egui::Context, what: impl Fn(&Task<u32>) -> bool) {
        let start = web_time::Instant::now();
        while !what(task) {
            task.poll(ctx);
            assert!(start.elapsed().as_secs() < 10, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn partial_results_show_while_running_and_the_result_replaces_them() {
        let ctx = egui::Context::default();
        let mut task = Task::<u32> {
            result: Some(7),
            ..Task::default()
        };
        let (go_on, wait) = mpsc::channel::<()>();
        task.start_progressive(&ctx, move |_, partial| {
            partial.publish(1);
            wait.recv().ok();
            Ok(2)
        });
        // The previous run's result is not shown beside a new run's progress.
        assert_eq!(task.shown(), None);
        wait_for(&mut task, &ctx, |t| t.shown() == Some(&1));
        assert!(task.is_running());
        go_on.send(()).ok();
        wait_for(&mut task, &ctx, |t| !t.is_running());
        assert_eq!(task.shown(), Some(&2));
    }
}
