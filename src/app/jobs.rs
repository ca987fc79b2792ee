//! Heavy teaching computations on their own thread: the UI polls a [`Task`] each frame for
//! its progress and result, and can cancel it (the computation checks the flag each step).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::{Color32, RichText, Ui};

use crate::teach::{Progress, TeachError};

type Slot<T> = Arc<Mutex<Option<Result<T, TeachError>>>>;

/// One running computation.
struct Job<T> {
    cancel: Arc<AtomicBool>,
    /// The fraction done, as `f64` bits (written by the worker, read by the UI).
    progress: Arc<AtomicU64>,
    result: Slot<T>,
    started: Instant,
}

/// A computation the user can start, watch, cancel and read the result of.
pub struct Task<T> {
    job: Option<Job<T>>,
    pub result: Option<T>,
    pub error: Option<String>,
    /// Seconds the last finished run took.
    pub last_secs: f64,
}

impl<T> Default for Task<T> {
    fn default() -> Self {
        Self {
            job: None,
            result: None,
            error: None,
            last_secs: 0.0,
        }
    }
}

impl<T: Send + 'static> Task<T> {
    /// Starts `work` on a new low-priority thread (cancelling any run in progress).
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        work: impl FnOnce(Progress<'_>) -> Result<T, TeachError> + Send + 'static,
    ) {
        self.cancel();
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
        let result: Slot<T> = Arc::default();
        let (c, p, r, repaint) = (
            Arc::clone(&cancel),
            Arc::clone(&progress),
            Arc::clone(&result),
            ctx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("teach".into())
            .spawn(move || {
                crate::train::lower_priority();
                let report = |f: f64| p.store(f.to_bits(), Ordering::Relaxed);
                let out = work(Progress::new(&c, &report));
                if let Ok(mut slot) = r.lock() {
                    *slot = Some(out);
                }
                repaint.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.error = None;
                self.job = Some(Job {
                    cancel,
                    progress,
                    result,
                    started: Instant::now(),
                });
            }
            Err(e) => self.error = Some(format!("cannot start a worker thread: {e}")),
        }
    }

    /// Collects a finished run; true when a new result arrived this frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let Some(job) = &self.job else {
            return false;
        };
        let finished = job.result.lock().ok().and_then(|mut s| s.take());
        let Some(outcome) = finished else {
            // Keep the progress bar moving without waking the UI from the worker each step.
            ctx.request_repaint_after(Duration::from_millis(100));
            return false;
        };
        self.last_secs = job.started.elapsed().as_secs_f64();
        self.job = None;
        match outcome {
            Ok(value) => {
                self.result = Some(value);
                self.error = None;
                true
            }
            Err(TeachError::Cancelled) => {
                self.error = Some("cancelled".into());
                false
            }
            Err(e) => {
                self.error = Some(e.to_string());
                false
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// The fraction done of the run in progress.
    pub fn progress(&self) -> Option<f64> {
        self.job
            .as_ref()
            .map(|j| f64::from_bits(j.progress.load(Ordering::Relaxed)))
    }

    /// Asks the run in progress to stop (it ends at its next step; the result is dropped).
    pub fn cancel(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel.store(true, Ordering::Relaxed);
        }
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
                    .job
                    .as_ref()
                    .map_or(0.0, |j| j.started.elapsed().as_secs_f32());
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

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(job) = &self.job {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }
}
