//! Quality vs steps: sliced W₂ against the number of score evaluations for every sampler,
//! for the network and for the exact score (pure discretisation error), with the
//! data-vs-data floor. Shows why higher-order ODE solvers need far fewer steps.

use egui::{RichText, Ui};
use egui_plot::{HLine, Legend, Line, LineStyle, Plot, PlotPoints};

use super::{Inputs, PALETTE, note_ui};
use crate::app::export::{ViewExport, write_table};
use crate::app::jobs::Task;
use crate::math::solvers::SamplerKind;
use crate::teach::quality_steps::{Floor, QualityConfig, QualityReport, nfe_grid, quality_vs_nfe};

pub struct QualityView {
    max_nfe: usize,
    particles: usize,
    samplers: Vec<(SamplerKind, bool)>,
    energy: bool,
    task: Task<(Option<QualityReport>, QualityReport)>,
    export: ViewExport,
}

impl Default for QualityView {
    fn default() -> Self {
        Self {
            max_nfe: 300,
            particles: 500,
            samplers: SamplerKind::ALL.iter().map(|&k| (k, true)).collect(),
            energy: false,
            task: Task::default(),
            export: ViewExport::default(),
        }
    }
}

impl QualityView {
    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs) {
        self.task.poll(ui.ctx());
        note_ui(
            ui,
            "Sample quality (sliced W₂ to held-out data, log scale) against score evaluations \
             (NFE, log scale). Solid: the learned network; dashed: the exact score, whose error \
             is the sampler's alone. The green line is the floor: two independent draws of the \
             data are this far apart.",
        );
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("quality max nfe", "max NFE")
                .selected_text(self.max_nfe.to_string())
                .show_ui(ui, |ui| {
                    for n in [30, 100, 300, 1000] {
                        ui.selectable_value(&mut self.max_nfe, n, n.to_string());
                    }
                });
            egui::ComboBox::new("quality particles", "particles")
                .selected_text(self.particles.to_string())
                .show_ui(ui, |ui| {
                    for n in [250, 500, 1000, 2000] {
                        ui.selectable_value(&mut self.particles, n, n.to_string());
                    }
                });
            ui.checkbox(&mut self.energy, "energy distance instead of sw2");
        });
        ui.horizontal_wrapped(|ui| {
            for (k, on) in &mut self.samplers {
                ui.checkbox(on, k.label());
            }
        });
        if self.task.controls_ui(ui, "Compute quality vs steps") {
            self.start(ui.ctx(), inputs);
        }
        let result = self.task.result.as_ref();
        self.export.ui(
            ui,
            "Export curves (CSV)",
            result.is_some(),
            &inputs.export_dir,
            |dir| match result {
                Some((learned, exact)) => write_table(
                    &dir.join("quality.csv"),
                    QUALITY_HEADER,
                    &quality_rows(learned.as_ref(), exact),
                ),
                None => Err("nothing computed yet".into()),
            },
        );
        if let Some((learned, exact)) = &self.task.result {
            self.plot_ui(ui, learned.as_ref(), exact);
        }
    }

    /// Lets the tests pick a small grid: (largest NFE, particles, samplers to run).
    pub fn configure(&mut self, max_nfe: usize, particles: usize, samplers: &[SamplerKind]) {
        self.max_nfe = max_nfe;
        self.particles = particles;
        for (k, on) in &mut self.samplers {
            *on = samplers.contains(k);
        }
    }

    /// The last result: (the network's curves, if there was one; the exact score's).
    pub fn result(&self) -> Option<(Option<&QualityReport>, &QualityReport)> {
        self.task.result.as_ref().map(|(l, e)| (l.as_ref(), e))
    }

    pub fn is_running(&self) -> bool {
        self.task.is_running()
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    fn start(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        let cfg = QualityConfig {
            samplers: self.samplers.iter().filter(|s| s.1).map(|s| s.0).collect(),
            nfe: nfe_grid(self.max_nfe, 4),
            particles: self.particles,
            ..QualityConfig::default()
        };
        let schedule = inputs.schedule;
        let held_out = inputs.held_out(self.particles, 0);
        let other = inputs.held_out(self.particles, 1);
        let learned = inputs.learned.clone();
        let exact = std::sync::Arc::clone(&inputs.exact);
        self.task.start(ctx, move |progress| {
            let floor = Floor::between(&held_out, &other);
            let share = if learned.is_some() { 0.5 } else { 0.0 };
            let learned = match learned {
                Some(m) => Some(quality_vs_nfe(
                    m.as_ref(),
                    schedule,
                    &held_out,
                    floor,
                    &cfg,
                    progress.sub(0.0, share),
                )?),
                None => None,
            };
            let exact = quality_vs_nfe(
                exact.as_ref(),
                schedule,
                &held_out,
                floor,
                &cfg,
                progress.sub(share, 1.0 - share),
            )?;
            Ok((learned, exact))
        });
    }

    fn plot_ui(&self, ui: &mut Ui, learned: Option<&QualityReport>, exact: &QualityReport) {
        if learned.is_none() {
            ui.label(RichText::new("No network had been trained yet: exact score only.").weak());
        }
        let energy = self.energy;
        let metric = move |p: &crate::teach::quality_steps::QualityPoint| {
            if energy { p.energy } else { p.sw2 }
        };
        let floor = if energy {
            exact.floor.energy
        } else {
            exact.floor.sw2
        };
        let height = (ui.available_height() - 10.0).clamp(260.0, 520.0);
        Plot::new("quality vs nfe")
            .height(height)
            .legend(Legend::default())
            .x_axis_label("NFE (log)")
            .y_axis_label(if energy {
                "energy distance (log)"
            } else {
                "sliced W₂ (log)"
            })
            .x_axis_formatter(|m, _| format_log(m.value))
            .y_axis_formatter(|m, _| format_log(m.value))
            .show(ui, |plot| {
                // Few-step stochastic samplers can blow up by orders of magnitude: cap the
                // view at 30 so the curves near the floor stay readable.
                let lowest = exact
                    .curves
                    .iter()
                    .chain(learned.map(|l| l.curves.iter()).into_iter().flatten())
                    .flat_map(|c| c.points.iter().map(metric))
                    .chain([floor])
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                if lowest.is_finite() {
                    plot.set_plot_bounds_y(lowest.log10() - 0.2..=30f64.log10());
                }
                for (i, curve) in exact.curves.iter().enumerate() {
                    let colour = PALETTE[i % PALETTE.len()];
                    let name = curve.sampler.label();
                    let line = |report: &QualityReport| -> PlotPoints<'static> {
                        report
                            .curve(curve.sampler)
                            .map(|c| {
                                c.points
                                    .iter()
                                    .filter(|p| metric(p) > 0.0)
                                    .map(|p| [(p.nfe as f64).log10(), metric(p).log10()])
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    if let Some(l) = learned {
                        plot.line(Line::new(name, line(l)).color(colour).width(2.0));
                    }
                    plot.line(
                        Line::new(name, line(exact))
                            .color(colour)
                            .style(LineStyle::dashed_loose()),
                    );
                }
                if floor > 0.0 {
                    plot.hline(
                        HLine::new("data floor", floor.log10())
                            .color(egui::Color32::from_rgb(110, 200, 110))
                            .width(2.0),
                    );
                }
            });
    }
}

const QUALITY_HEADER: &str = "sampler,nfe,sw2,energy,score";

/// One row per point of every curve (`score`: learned or exact), then the data floor as
/// `floor,0,sw2,energy,data`.
fn quality_rows(learned: Option<&QualityReport>, exact: &QualityReport) -> Vec<String> {
    let mut rows = Vec::new();
    for (report, score) in learned
        .map(|l| (l, "learned"))
        .into_iter()
        .chain([(exact, "exact")])
    {
        for curve in &report.curves {
            for p in &curve.points {
                rows.push(format!(
                    "{},{},{},{},{score}",
                    curve.sampler.name(),
                    p.nfe,
                    p.sw2,
                    p.energy
                ));
            }
        }
    }
    rows.push(format!(
        "floor,0,{},{},data",
        exact.floor.sw2, exact.floor.energy
    ));
    rows
}

/// A log10 axis value as the number it stands for.
fn format_log(v: f64) -> String {
    let x = 10f64.powf(v);
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.1e}")
    }
}
