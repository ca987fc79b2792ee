//! Heavy teaching computations in the background: the UI polls a [`Task`] each frame for its
//! progress and result, and can cancel it (the computation checks the flag as it goes).
//! Each run is a `crate::work` job.

use std::sync::Arc;
use std::time::Duration;

use egui::{Color32, RichText, Ui};

use crate::teach::{Progress, TeachError};
use crate::work::{Control, Once, Outcome, Worker};

/// A computation the user can start, watch, cancel and read the result of.
pub struct Task<T> {
    worker: Option<Worker<Result<T, TeachError>>>,
    pub result: Option<T>,
    pub error: Option<String>,
    /// Seconds the last finished run took.
    pub last_secs: f64,
}

impl<T> Default for Task<T> {
    fn default() -> Self {
        Self {
            worker: None,
            result: None,
            error: None,
            last_secs: 0.0,
        }
    }
}

impl<T: Send + 'static> Task<T> {
    /// Starts `work` in the background (cancelling any run in progress).
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        work: impl FnOnce(Progress<'_>) -> Result<T, TeachError> + Send + 'static,
    ) {
        self.cancel();
        self.error = None;
        let repaint = ctx.clone();
        // One step: the computation reports its progress and looks at the cancel flag itself,
        // through `teach::Progress`.
        let job = Once::new(move |ctl: &Control| {
            let report = |f: f64| ctl.set_progress(f);
            Ok(work(Progress::new(ctl.cancel_flag(), &report)))
        });
        self.worker = Some(Worker::spawn(
            "teach",
            job,
            Arc::new(move || repaint.request_repaint()),
        ));
    }

    /// Collects a finished run; true when a new result arrived this frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let Some(worker) = &self.worker else {
            return false;
        };
        let Some(outcome) = worker.take() else {
            // Keep the progress bar moving without waking the UI from the worker each step.
            ctx.request_repaint_after(Duration::from_millis(100));
            return false;
        };
        self.last_secs = worker.elapsed().as_secs_f64();
        self.worker = None;
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

    /// The fraction done of the run in progress.
    pub fn progress(&self) -> Option<f64> {
        self.worker.as_ref().map(Worker::progress)
    }

    /// Asks the run in progress to stop (it ends at its next check; the result is dropped).
    pub fn cancel(&mut self) {
        // Dropping the worker cancels it.
        self.worker = None;
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
