//! Same loss, different samples (inside the Ablation tab): three networks that differ only
//! in the loss weighting reach the same loss, yet their PF-ODE samples differ by an order of
//! magnitude; the reverse SDE hides most of it. Rows arrive as each network is done.

use egui::{Color32, Grid, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::{DATA_GREY, PALETTE, canvas_side, cloud_ui, note_ui};
use crate::app::jobs::Task;
use crate::nn::Weighting;
use crate::teach::weighting::{
    WeightingComparison, WeightingConfig, WeightingReport, gaussian_draws,
};

pub struct WeightingView {
    steps: u64,
    start_requested: bool,
    task: Task<WeightingReport>,
}

impl Default for WeightingView {
    fn default() -> Self {
        Self {
            steps: 20_000,
            start_requested: false,
            task: Task::default(),
        }
    }
}

fn label(w: Weighting) -> &'static str {
    match w {
        Weighting::Uniform => "ε-loss (w = 1)",
        Weighting::Importance => "t ~ π ∝ 1/σ²",
        Weighting::InverseSigma2 => "w = 1/σ²",
    }
}

fn colour(w: Weighting) -> Color32 {
    match w {
        Weighting::Uniform => PALETTE[0],
        Weighting::Importance => PALETTE[1],
        Weighting::InverseSigma2 => PALETTE[3],
    }
}

impl WeightingView {
    pub fn ui(&mut self, ui: &mut Ui) {
        self.task.poll(ui.ctx());
        note_ui(
            ui,
            "Three networks learn the same Gaussian (not your data: here the exact score and \
             covariance are known), differing only in how the loss weighs the times t. Their \
             losses, measured on one fixed batch in the 1/σ² scale, end almost equal. Their \
             samples do not: weightings that favour small t leave large t under-trained, and the \
             probability-flow ODE, with no noise to wash an error out, carries it to the samples. \
             The reverse SDE forgets much of it on the way.",
        );
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("weighting steps", "steps each")
                .selected_text(self.steps.to_string())
                .show_ui(ui, |ui| {
                    for n in [5_000, 10_000, 20_000] {
                        ui.selectable_value(&mut self.steps, n, n.to_string());
                    }
                });
        });
        if self.task.controls_ui(ui, "Train the three weightings")
            || std::mem::take(&mut self.start_requested)
        {
            let cfg = WeightingConfig {
                steps: self.steps,
                ..WeightingConfig::default()
            };
            // In steps (a chunk of training, one network's measurement): each row shows as it
            // comes, and in a browser the page keeps drawing.
            self.task
                .start_sweep(ui.ctx(), move || WeightingComparison::new(&cfg));
        }
        if let Some(report) = self.task.shown().cloned() {
            table_ui(ui, &report);
            error_plot_ui(ui, &report);
            clouds_ui(ui, &report);
        }
    }

    /// Starts the lesson's computation on the next frame.
    pub fn request_start(&mut self) {
        if !self.task.is_running() {
            self.start_requested = true;
        }
    }

    /// The rows drawn now (partial while training).
    pub fn shown(&self) -> Option<&WeightingReport> {
        self.task.shown()
    }

    pub fn is_running(&self) -> bool {
        self.task.is_running()
    }

    /// Lets the tests pick a small run.
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}

fn table_ui(ui: &mut Ui, report: &WeightingReport) {
    Grid::new("weighting table").striped(true).show(ui, |ui| {
        for head in [
            "weighting",
            "loss (1/σ² scale)",
            "PF-ODE ‖cov − Σ‖",
            "reverse SDE ‖cov − Σ‖",
        ] {
            ui.label(RichText::new(head).strong());
        }
        ui.end_row();
        for row in &report.rows {
            ui.label(RichText::new(label(row.weighting)).color(colour(row.weighting)));
            ui.label(format!("{:.3}", row.loss));
            ui.label(format!("{:.3}", row.ode.cov));
            ui.label(format!("{:.3}", row.sde.cov));
            ui.end_row();
        }
        ui.label(RichText::new("a fresh draw of the data").weak())
            .on_hover_text(
                "The sampling noise of the estimate: no sampler can be told apart below it",
            );
        ui.label("");
        ui.label(RichText::new(format!("{:.3}", report.floor.cov)).weak());
        ui.label(RichText::new(format!("{:.3}", report.floor.cov)).weak());
        ui.end_row();
    });
}

fn clouds_ui(ui: &mut Ui, report: &WeightingReport) {
    let data = gaussian_draws(&WeightingConfig::default().data, 400, 5);
    ui.label(
        RichText::new("Samples over the data (grey): PF-ODE (Heun 100) above, reverse SDE (Euler–Maruyama 500) below")
            .small(),
    );
    let side = canvas_side(ui, 3).min(200.0);
    for (what, ode) in [("ODE", true), ("SDE", false)] {
        ui.horizontal_top(|ui| {
            for row in &report.rows {
                let samples = if ode {
                    &row.ode_samples
                } else {
                    &row.sde_samples
                };
                // A software renderer pays for every disc: a sample of each cloud.
                let shown = &samples[..samples.len().min(600)];
                cloud_ui(
                    ui,
                    &format!("{what}: {}", label(row.weighting)),
                    side,
                    &[(&data, DATA_GREY), (shown, colour(row.weighting))],
                );
            }
        });
    }
}

fn error_plot_ui(ui: &mut Ui, report: &WeightingReport) {
    ui.label(RichText::new("The network's error against the exact score, by t").strong());
    Plot::new("weighting score error")
        .height(170.0)
        .legend(Legend::default())
        .x_axis_label("t (log)")
        .y_axis_label("E‖ε̂ − ε*‖² (log)")
        .x_axis_formatter(|m, _| format!("{:.3}", 10f64.powf(m.value)))
        .y_axis_formatter(|m, _| format!("{:.0e}", 10f64.powf(m.value)))
        .show(ui, |plot| {
            for row in &report.rows {
                let points: PlotPoints<'static> = row
                    .score_error
                    .iter()
                    .filter(|(_, e)| *e > 0.0)
                    .map(|(t, e)| [t.log10(), e.log10()])
                    .collect();
                plot.line(
                    Line::new(label(row.weighting), points)
                        .color(colour(row.weighting))
                        .width(2.0),
                );
            }
        });
}
