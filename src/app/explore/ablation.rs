//! Ablation: two networks that differ in one setting (time embedding, loss weighting,
//! parameterisation) trained side by side on the same data and batches; their samples and
//! loss curves update as they train.

use std::sync::{Arc, Mutex};

use egui::{RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::weighting::WeightingView;
use super::{DATA_GREY, Inputs, PALETTE, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::export::{ViewExport, write_table};
use crate::app::jobs::Task;
use crate::math::Schedule;
use crate::math::solvers::{SamplerConfig, SamplerKind};
use crate::teach::ablation::{Ablation, Setting, presets};
use crate::teach::{Progress, Sweep, TeachError, sample_with_progress};
use crate::train::{TrainSettings, train_config};

/// Steps between loss reports (and the window they are averaged over).
const CHUNK: u64 = 50;
/// Chunks between fresh samples of both models.
const SAMPLE_EVERY: u64 = 6;
const PARTICLES: usize = 800;

/// What the training thread shares with the UI as it goes.
#[derive(Clone, Default)]
struct Live {
    labels: [String; 2],
    /// (step, mean loss over the chunk) per run.
    losses: [Vec<[f64; 2]>; 2],
    samples: [Vec<Point>; 2],
    /// The training step the samples are from.
    sampled_at: u64,
}

pub struct AblationView {
    /// The three-weighting lesson instead of a pair of settings.
    pub lesson: bool,
    pub weighting: WeightingView,
    preset: usize,
    steps: u64,
    live: Arc<Mutex<Live>>,
    task: Task<()>,
    export: ViewExport,
}

impl Default for AblationView {
    fn default() -> Self {
        Self {
            lesson: false,
            weighting: WeightingView::default(),
            preset: 0,
            steps: 3000,
            live: Arc::default(),
            task: Task::default(),
            export: ViewExport::default(),
        }
    }
}

fn pair_label((a, b): &(Setting, Setting)) -> String {
    format!("{}: {} vs {}", a.axis(), a.label(), b.label())
}

impl AblationView {
    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs, train: &TrainSettings) {
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.lesson, false, "Two settings side by side");
            ui.selectable_value(&mut self.lesson, true, "Same loss, different samples");
        });
        if self.lesson {
            self.weighting.ui(ui);
            return;
        }
        self.task.poll(ui.ctx());
        note_ui(
            ui,
            "Two networks, identical but for one setting, trained on the same data with the same \
             seed. The study note's experiment: feed t as a raw scalar instead of a sinusoidal \
             embedding. On 2D toys the plain scalar often does as well or better, and is smoother; \
             the many-frequency embedding earns its keep on harder data.",
        );
        let pairs = presets();
        self.preset = self.preset.min(pairs.len() - 1);
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("ablation pair", "compare")
                .selected_text(pair_label(&pairs[self.preset]))
                .show_ui(ui, |ui| {
                    for (i, p) in pairs.iter().enumerate() {
                        ui.selectable_value(&mut self.preset, i, pair_label(p));
                    }
                });
            ui.add(
                egui::Slider::new(&mut self.steps, 500..=20_000)
                    .logarithmic(true)
                    .text("steps"),
            );
        });
        if self.task.controls_ui(ui, "Train both") {
            self.start(ui.ctx(), inputs, train, pairs[self.preset]);
        }
        if self.task.is_running() {
            // The thread publishes as it trains: redraw to follow it.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(200));
        }
        let live = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        self.export.ui(
            ui,
            "Export loss curves (CSV)",
            !live.losses[0].is_empty(),
            &inputs.export_dir,
            |dir| {
                let rows: Vec<String> = live
                    .labels
                    .iter()
                    .zip(&live.losses)
                    .enumerate()
                    .flat_map(|(run, (label, losses))| {
                        losses
                            .iter()
                            .map(move |p| format!("{run},{},{},{}", csv_field(label), p[0], p[1]))
                    })
                    .collect();
                write_table(
                    &dir.join("ablation_losses.csv"),
                    "run,label,step,loss",
                    &rows,
                )
            },
        );
        if live.losses[0].is_empty() {
            return;
        }
        let side = canvas_side(ui, 3).min(300.0);
        let data = &inputs.data[..inputs.data.len().min(2000)];
        ui.horizontal_top(|ui| {
            for ((label, samples), colour) in live.labels.iter().zip(&live.samples).zip(PALETTE) {
                cloud_ui(
                    ui,
                    &format!("{label} · step {}", live.sampled_at),
                    side,
                    &[(data, DATA_GREY), (samples, colour)],
                );
            }
            ui.vertical(|ui| {
                ui.set_width(side);
                ui.label(RichText::new("loss (log)").strong());
                Plot::new("ablation loss")
                    .height(side)
                    .legend(Legend::default())
                    .x_axis_label("step")
                    .y_axis_formatter(|m, _| format!("{:.2}", 10f64.powf(m.value)))
                    .show(ui, |plot| {
                        for ((label, losses), colour) in
                            live.labels.iter().zip(&live.losses).zip(PALETTE)
                        {
                            let pts: PlotPoints = losses
                                .iter()
                                .filter(|p| p[1] > 0.0)
                                .map(|p| [p[0], p[1].log10()])
                                .collect();
                            plot.line(Line::new(label.clone(), pts).color(colour));
                        }
                    });
            });
        });
        note_ui(
            ui,
            "Losses under different weightings or parameterisations are on different scales: \
             compare the samples, and each curve's shape, rather than the heights.",
        );
    }

    /// Lets the tests train briefly.
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Each run's (label, (step, mean loss) per chunk) so far.
    pub fn losses(&self) -> Vec<(String, Vec<[f64; 2]>)> {
        self.live
            .lock()
            .map(|l| {
                l.labels
                    .iter()
                    .cloned()
                    .zip(l.losses.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.task.is_running()
    }

    /// Whether a run finished (rather than was cancelled or failed).
    pub fn finished(&self) -> bool {
        self.task.result.is_some()
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    fn start(
        &mut self,
        ctx: &egui::Context,
        inputs: &Inputs,
        train: &TrainSettings,
        (a, b): (Setting, Setting),
    ) {
        let base = train_config(train, inputs.schedule);
        let data = Arc::clone(&inputs.data);
        let schedule = inputs.schedule;
        let steps = self.steps;
        let live = Arc::new(Mutex::new(Live {
            labels: [a.label(), b.label()],
            ..Live::default()
        }));
        self.live = Arc::clone(&live);
        // One chunk of both runs per step (with fresh samples now and then): the curves grow
        // as they train, and in a browser the page keeps drawing.
        self.task.start_sweep(ctx, move || {
            Ok(PairTraining {
                ablation: Ablation::cpu(&base, a, b, &data)?,
                chunk: 0,
                chunks: steps.div_ceil(CHUNK),
                schedule,
                live,
            })
        });
    }
}

/// The pair in training, a chunk per step; its curves and samples go to `live` as they come.
struct PairTraining {
    ablation: Ablation,
    chunk: u64,
    chunks: u64,
    schedule: Schedule,
    live: Arc<Mutex<Live>>,
}

impl Sweep for PairTraining {
    type Output = ();

    /// One chunk of both runs, their mean losses, and now and then fresh samples of both.
    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let ablation = &mut self.ablation;
        let (k, chunks) = (self.chunk, self.chunks);
        let share = 1.0 / chunks.max(1) as f64;
        ablation.train(CHUNK, CHUNK, progress.sub(k as f64 * share, share))?;
        let mut fresh = None;
        if k % SAMPLE_EVERY == 0 || k + 1 == chunks {
            let sampler = SamplerConfig {
                kind: SamplerKind::Heun,
                steps: 25,
                ..SamplerConfig::default()
            };
            let models = ablation.models()?;
            let mut out: [Vec<Point>; 2] = Default::default();
            for (o, m) in out.iter_mut().zip(&models) {
                *o =
                    sample_with_progress(m, self.schedule, sampler, PARTICLES, Progress::none())?.0;
            }
            fresh = Some(out);
        }
        if let Ok(mut l) = self.live.lock() {
            for (curve, run) in l.losses.iter_mut().zip(&ablation.runs) {
                let tail = &run.losses[run.losses.len().saturating_sub(CHUNK as usize)..];
                let mean =
                    tail.iter().map(|p| p.loss as f64).sum::<f64>() / tail.len().max(1) as f64;
                curve.push([run.steps_done() as f64, mean]);
            }
            if let Some(s) = fresh {
                l.samples = s;
                l.sampled_at = ablation.runs[0].steps_done();
            }
        }
        self.chunk += 1;
        Ok(self.chunk >= chunks)
    }

    /// What there is to show lives in `live`.
    fn so_far(&self) -> Option<()> {
        Some(())
    }
}

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
