//! Straight paths: diffusion's probability-flow ODE and flow matching carry the same noise to
//! the data; their paths side by side, how straight each is, and sample quality against
//! network evaluations (`teach::paths`). The view trains one small network per process with
//! the app's network settings and the same number of steps, so they compare at equal training.

use egui::{Color32, RichText, Sense, Stroke, Ui, Vec2};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoints};

use super::{Inputs, PALETTE, VIEW_HALF, canvas_side, note_ui};
use crate::app::jobs::Task;
use crate::teach::paths::{PathReport, PathsComparison, PathsResult, SOLVERS};
use crate::train::{TrainSettings, train_config};

/// Training steps of each network.
const TRAIN_STEPS: u64 = 2000;
/// Particles of each run (and held-out points of the metric).
const PARTICLES: usize = 600;
/// The noise every model starts from.
const SEED: u32 = 11;

#[derive(Default)]
pub struct PathsView {
    task: Task<PathsResult>,
    start_requested: bool,
}

impl PathsView {
    /// Starts the comparison on the next frame (the lesson on flow matching).
    pub fn request_start(&mut self) {
        if !self.task.is_running() {
            self.start_requested = true;
        }
    }

    /// The last finished comparison.
    pub fn result(&self) -> Option<&PathsResult> {
        self.task.result.as_ref()
    }

    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs, train: &TrainSettings) {
        let ctx = ui.ctx().clone();
        self.task.poll(&ctx);
        ui.label(RichText::new("Straight paths: diffusion's ODE beside flow matching").heading());
        note_ui(
            ui,
            "Both carry N(0, I) at t = 1 to the data at t = 0 along an ODE, from the same noise. \
             Flow matching trains on straight lines x_t = (1 − t)·x₀ + t·ε, one per pair, but \
             its ODE follows their average: the cloud contracts to √½ of its size at t = ½ and \
             re-expands, while diffusion's path keeps the variance. Straightness S = mean path \
             length / mean distance between the ends (1 = straight); the chart shows which \
             solver reaches the data in how many network evaluations.",
        );
        if self.task.controls_ui(ui, "Compare from the same noise")
            || std::mem::take(&mut self.start_requested)
        {
            let comparison = PathsComparison::new(
                train_config(train, inputs.schedule),
                inputs.data.as_slice().into(),
                TRAIN_STEPS,
                inputs.held_out(PARTICLES, 0),
                &inputs.held_out(PARTICLES, 1),
                SEED,
            );
            // In steps (a slice of training, one measurement), each report shown as it comes.
            self.task.start_sweep(&ctx, move || Ok(comparison));
        }
        if let Some(e) = &self.task.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let Some((reports, floor)) = self.task.shown() else {
            note_ui(
                ui,
                &format!(
                    "Trains a diffusion and a flow-matching network ({TRAIN_STEPS} steps each, \
                     the network settings under Network and training), then runs both from the \
                     same {PARTICLES} noise points."
                ),
            );
            return;
        };
        ui.horizontal_wrapped(|ui| {
            let side = canvas_side(ui, reports.len());
            for (i, r) in reports.iter().enumerate() {
                paths_ui(ui, r, side, PALETTE[i % PALETTE.len()]);
            }
        });
        quality_plot_ui(ui, reports, *floor);
    }
}

/// A square of the paths of one report, with its straightness as the caption.
fn paths_ui(ui: &mut Ui, r: &PathReport, size: f32, colour: Color32) {
    ui.vertical(|ui| {
        ui.set_width(size);
        ui.label(RichText::new(format!("{}: S = {:.3}", r.label, r.straightness)).strong());
        let (rect, _) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_rgb(18, 18, 24));
        let to_screen = |p: &crate::Point| {
            rect.min
                + Vec2::new(
                    (p[0] + VIEW_HALF) / (2.0 * VIEW_HALF) * rect.width(),
                    (VIEW_HALF - p[1]) / (2.0 * VIEW_HALF) * rect.height(),
                )
        };
        for path in &r.paths {
            let line: Vec<egui::Pos2> = path.iter().map(to_screen).collect();
            painter.add(egui::Shape::line(line, Stroke::new(1.2, colour)));
            if let Some(end) = path.last() {
                painter.circle_filled(to_screen(end), 2.0, Color32::WHITE);
            }
        }
    });
}

/// sw2 / floor against network evaluations, both on log scales: one colour per model, solid
/// Heun, dashed Euler.
fn quality_plot_ui(ui: &mut Ui, reports: &[PathReport], floor: f64) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Sample quality vs network evaluations").strong());
        // The legend shows colours only; the line style is the solver.
        ui.label(RichText::new("solid: Heun · dashed: Euler").weak());
    });
    Plot::new("paths quality")
        .height(220.0)
        .legend(Legend::default())
        .x_axis_label("log₂ NFE")
        .y_axis_label("log₁₀ (sw2 / floor)")
        .show(ui, |plot| {
            for (i, r) in reports.iter().enumerate() {
                for (kind, curve) in &r.curves {
                    let points: PlotPoints = curve
                        .iter()
                        .map(|&(nfe, sw2)| [(nfe as f64).log2(), (sw2 / floor).log10()])
                        .collect();
                    let style = if *kind == SOLVERS[0] {
                        LineStyle::dashed_loose()
                    } else {
                        LineStyle::Solid
                    };
                    plot.line(
                        Line::new(format!("{} · {}", r.label, kind.label()), points)
                            .color(PALETTE[i % PALETTE.len()])
                            .style(style),
                    );
                }
            }
            plot.hline(HLine::new("floor", 0.0).color(Color32::GRAY));
        });
}
