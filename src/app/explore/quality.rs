//! Quality vs steps: sliced W₂ against the number of score evaluations for every sampler,
//! for the network and for the exact score (pure discretisation error), with the
//! data-vs-data floor. Shows why higher-order ODE solvers need far fewer steps.

use egui::{Color32, RichText, Ui};
use egui_plot::{HLine, Line, LineStyle, Plot, PlotPoints, Points};

use super::{Inputs, PALETTE, note_ui};
use crate::Point;
use crate::app::export::{ViewExport, write_table};
use crate::app::jobs::Task;
use crate::math::schedule::Schedule;
use crate::math::solvers::SamplerKind;
use crate::teach::quality_steps::{
    Floor, QualityComparison, QualityConfig, QualityCurve, QualityPoint, QualityReport,
    QualitySweep, Swept, nfe_grid,
};
use crate::teach::{Progress, TeachError};
use crate::train::SharedModel;

pub struct QualityView {
    max_nfe: usize,
    particles: usize,
    samplers: Vec<(SamplerKind, bool)>,
    energy: bool,
    /// The sampler drawn bold (the others faded), picked in the legend.
    highlight: Option<SamplerKind>,
    /// A lesson asked for a run (started on the next frame, with that frame's inputs).
    start_requested: bool,
    task: Task<QualityComparison>,
    export: ViewExport,
}

impl Default for QualityView {
    fn default() -> Self {
        Self {
            max_nfe: 100,
            particles: 500,
            samplers: SamplerKind::ALL.iter().map(|&k| (k, true)).collect(),
            energy: false,
            highlight: None,
            start_requested: false,
            task: Task::default(),
            export: ViewExport::default(),
        }
    }
}

/// A sampler "reaches" the data when its sliced W₂ is within this factor of the floor.
const REACH: f64 = 1.5;

/// One colour per sampler, the same in both charts and the legend.
fn colour(kind: SamplerKind) -> Color32 {
    let i = SamplerKind::ALL
        .iter()
        .position(|&k| k == kind)
        .unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

impl QualityView {
    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs) {
        self.task.poll(ui.ctx());
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
        // Under flow matching the VP-only kinds would only repeat their counterparts
        // (`SamplerKind::on`) under another name, so they are not offered.
        let process = inputs.exact.process();
        ui.horizontal_wrapped(|ui| {
            ui.label("run:");
            for (k, on) in self.samplers.iter_mut().filter(|s| s.0.supports(process)) {
                ui.checkbox(on, k.label());
            }
        });
        if self.task.controls_ui(ui, "Compute quality vs steps") || self.start_requested {
            self.start_requested = false;
            self.start(ui.ctx(), inputs);
        }
        if let Some(c) = self.task.shown().cloned() {
            self.legend_ui(ui, &c);
            self.charts_ui(ui, &c);
        }
        note_ui(
            ui,
            "Sample quality (sliced W₂ to held-out data) against score evaluations (NFE), both \
             on log scales. Solid: the learned network; dashed: the exact score (under flow matching \
             the exact velocity), whose error is \
             the sampler's alone. Green: the floor, the spread between independent draws of the \
             data; a dot marks where a curve first comes within 1.5 × of it. Click a sampler \
             above the charts to pick it out.",
        );
        let result = self.task.result.as_ref();
        self.export.ui(
            ui,
            "Export curves (CSV)",
            result.is_some(),
            &inputs.export_dir,
            |dir| match result {
                Some(c) => write_table(
                    &dir.join("quality.csv"),
                    QUALITY_HEADER,
                    &quality_rows(c.learned.as_ref(), &c.exact),
                ),
                None => Err("nothing computed yet".into()),
            },
        );
    }

    /// Lets the tests pick a small grid: (largest NFE, particles, samplers to run).
    pub fn configure(&mut self, max_nfe: usize, particles: usize, samplers: &[SamplerKind]) {
        self.max_nfe = max_nfe;
        self.particles = particles;
        for (k, on) in &mut self.samplers {
            *on = samplers.contains(k);
        }
    }

    /// Starts the computation on the next frame (a lesson that shows this view).
    pub fn request_start(&mut self) {
        if !self.task.is_running() {
            self.start_requested = true;
        }
    }

    /// The last result: (the network's curves, if there was one; the exact score's).
    pub fn result(&self) -> Option<(Option<&QualityReport>, &QualityReport)> {
        self.task
            .result
            .as_ref()
            .map(|c| (c.learned.as_ref(), &c.exact))
    }

    /// The curves drawn now (partial while a run is in progress).
    pub fn shown(&self) -> Option<&QualityComparison> {
        self.task.shown()
    }

    pub fn is_running(&self) -> bool {
        self.task.is_running()
    }

    /// Picks out one sampler in the charts (None: all alike).
    pub fn highlight(&mut self, kind: Option<SamplerKind>) {
        self.highlight = kind;
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    fn start(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        let run = self.run_for(inputs);
        // One point per job step: the curves grow as they are measured, and in a browser the
        // sweep shares the frames instead of freezing the page.
        self.task.start_sweep(ctx, move || run.into_sweep());
    }

    /// The run the view's settings ask for on these inputs.
    pub fn run_for(&self, inputs: &Inputs) -> QualityRun {
        QualityRun {
            cfg: QualityConfig {
                samplers: self
                    .samplers
                    .iter()
                    .filter(|s| s.1 && s.0.supports(inputs.exact.process()))
                    .map(|s| s.0)
                    .collect(),
                nfe: nfe_grid(self.max_nfe, 4),
                particles: self.particles,
                ..QualityConfig::default()
            },
            schedule: inputs.schedule,
            held_out: inputs.held_out(self.particles, 0),
            other: inputs.held_out(self.particles, 1),
            learned: inputs.learned.clone(),
            exact: std::sync::Arc::clone(&inputs.exact),
        }
    }

    /// The samplers as buttons in their colours, each with the NFE at which it reaches
    /// 1.5 × the floor; a click picks one out.
    fn legend_ui(&mut self, ui: &mut Ui, c: &QualityComparison) {
        let report = c.learned.as_ref().unwrap_or(&c.exact);
        let reach = REACH * report.floor.sw2;
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new("NFE to reach 1.5 × floor:").small());
            for curve in &report.curves {
                let kind = curve.sampler;
                let at = curve
                    .nfe_to_reach(reach)
                    .map_or("never".to_string(), |n| format!("{n}"));
                let text = RichText::new(format!("━ {}: {at}", kind.label())).color(colour(kind));
                let on = self.highlight == Some(kind);
                if ui
                    .selectable_label(on, text)
                    .on_hover_text("Evaluations to reach 1.5 × the floor. Click to pick it out.")
                    .clicked()
                {
                    self.highlight = if on { None } else { Some(kind) };
                }
            }
        });
    }

    /// Two charts: the stochastic samplers, then the deterministic (ODE) solvers.
    fn charts_ui(&self, ui: &mut Ui, c: &QualityComparison) {
        if c.learned.is_none() {
            ui.label(RichText::new("No network had been trained yet: exact score only.").weak());
        }
        let height = ((ui.available_height() - 120.0) / 2.0).clamp(170.0, 320.0);
        for (title, stochastic) in [
            ("SDE samplers (stochastic)", true),
            ("ODE solvers (deterministic)", false),
        ] {
            ui.label(RichText::new(title).strong());
            self.chart_ui(ui, c, stochastic, height);
        }
    }

    fn chart_ui(&self, ui: &mut Ui, c: &QualityComparison, stochastic: bool, height: f32) {
        let energy = self.energy;
        let metric = move |p: &QualityPoint| if energy { p.energy } else { p.sw2 };
        let floor = if energy {
            c.exact.floor.energy
        } else {
            c.exact.floor.sw2
        };
        let in_group = |curve: &&QualityCurve| curve.sampler.is_stochastic() == stochastic;
        let learned = c.learned.as_ref();
        let faded = |kind: SamplerKind, col: Color32| match self.highlight {
            Some(h) if h != kind => col.gamma_multiply(0.2),
            _ => col,
        };
        let width = |kind: SamplerKind| {
            if self.highlight == Some(kind) {
                3.5
            } else {
                2.0
            }
        };
        Plot::new(("quality vs nfe", stochastic))
            .height(height)
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
                let lowest = c
                    .exact
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
                let log_points = |curve: &QualityCurve| -> PlotPoints<'static> {
                    curve
                        .points
                        .iter()
                        .filter(|p| metric(p) > 0.0)
                        .map(|p| [(p.nfe as f64).log10(), metric(p).log10()])
                        .collect()
                };
                for curve in c.exact.curves.iter().filter(in_group) {
                    let kind = curve.sampler;
                    let col = faded(kind, colour(kind));
                    let name = kind.label();
                    let reached = learned.and_then(|l| l.curve(kind)).unwrap_or(curve);
                    if let Some(l) = learned.and_then(|l| l.curve(kind)) {
                        plot.line(Line::new(name, log_points(l)).color(col).width(width(kind)));
                    }
                    plot.line(
                        Line::new(format!("{name} (exact)"), log_points(curve))
                            .color(col)
                            .width(width(kind) * 0.6)
                            .style(LineStyle::dashed_loose()),
                    );
                    if !energy
                        && let Some(p) = reached.points.iter().find(|p| p.sw2 <= REACH * floor)
                    {
                        plot.points(
                            Points::new(
                                format!("{name} reaches 1.5 × floor"),
                                vec![[(p.nfe as f64).log10(), p.sw2.log10()]],
                            )
                            .color(col)
                            .radius(5.0),
                        );
                    }
                }
                if floor > 0.0 {
                    let green = Color32::from_rgb(110, 200, 110);
                    plot.hline(
                        HLine::new("data floor", floor.log10())
                            .color(green)
                            .width(2.0),
                    );
                    if !energy {
                        plot.hline(
                            HLine::new("1.5 × floor", (REACH * floor).log10())
                                .color(green.gamma_multiply(0.5))
                                .style(LineStyle::dotted_dense()),
                        );
                    }
                }
            });
    }
}

/// Everything one run needs, moved to its thread (`bench --explore` runs the same).
pub struct QualityRun {
    pub cfg: QualityConfig,
    pub schedule: Schedule,
    pub held_out: Vec<Point>,
    /// A second independent draw of the data, for the floor.
    pub other: Vec<Point>,
    pub learned: Option<SharedModel>,
    pub exact: SharedModel,
}

impl QualityRun {
    /// The sweep this run measures (the floor from the two draws of the data first).
    pub fn into_sweep(self) -> Result<QualitySweep, TeachError> {
        let floor = Floor::between(&self.held_out, &self.other);
        QualitySweep::new(
            self.learned,
            self.exact,
            self.schedule,
            self.held_out,
            floor,
            self.cfg,
        )
    }

    /// The whole run in one call (`bench --explore`).
    pub fn run(
        self,
        progress: Progress<'_>,
        on_sampler: &mut dyn FnMut(&QualityComparison),
    ) -> Result<QualityComparison, TeachError> {
        let mut sweep = self.into_sweep()?;
        loop {
            match sweep.advance(progress)? {
                Swept::Point => {}
                Swept::Sampler => on_sampler(sweep.so_far()),
                Swept::Done => return Ok(sweep.into_result()),
            }
        }
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
