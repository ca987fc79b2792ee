//! Density: the forward density p_t following the time scrubber (exact: the training points
//! noised to time t are a Gaussian mixture), and the model's log-density along the PF-ODE
//! beside the exact one, with the held-out NLL in nats.

use egui::{RichText, Ui};

use super::{Inputs, VIEW_HALF, canvas_side, colour_bar_ui, heatmap_texture, note_ui, texture_ui};
use crate::Point;
use crate::app::export::{ViewExport, write_scaled_png, write_table};
use crate::app::jobs::Task;
use crate::math::likelihood::LikelihoodConfig;
use crate::math::oracle::{Component, Oracle};
use crate::math::schedule::Schedule;
use crate::teach::density::{
    ForwardDensity, Grid, Heatmap, MAP_CHUNK, Nll, exact_log_density, held_out_nll,
    log_density_chunk,
};
use crate::teach::{Progress, Sweep, TeachError};
use crate::train::SharedModel;

/// Nats of log-density the colour map spans below the peak.
const DEPTH: f64 = 10.0;
/// Training points the exact forward density is built from (its cost is cells × points).
const FORWARD_POINTS: usize = 1500;

#[derive(Clone)]
pub struct Comparison {
    pub model: Heatmap,
    pub exact: Heatmap,
    pub exact_is_mixture: bool,
    /// None until the heatmap is done (the NLL comes last).
    pub nll: Option<Nll>,
    /// The exact NLL of the same held-out points, where the data is a known mixture.
    pub exact_nll: Option<f64>,
    pub model_label: &'static str,
}

pub struct DensityView {
    forward: Task<Heatmap>,
    forward_texture: Option<egui::TextureHandle>,
    /// The time (and schedule) the forward heatmap is for.
    forward_key: Option<(f64, String)>,
    compare_t: f64,
    cells: usize,
    compare: Task<Comparison>,
    /// A lesson asked for a comparison (started on the next frame, with its inputs).
    start_requested: bool,
    textures: Option<[egui::TextureHandle; 2]>,
    export: ViewExport,
}

impl Default for DensityView {
    fn default() -> Self {
        Self {
            forward: Task::default(),
            forward_texture: None,
            forward_key: None,
            compare_t: 0.01,
            cells: 48,
            compare: Task::default(),
            start_requested: false,
            textures: None,
            export: ViewExport::default(),
        }
    }
}

impl DensityView {
    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs) {
        let ctx = ui.ctx().clone();
        if self.forward.poll(&ctx)
            && let Some(map) = &self.forward.result
        {
            self.forward_texture = Some(heatmap_texture(&ctx, "forward density", map, None, DEPTH));
        }
        let was_partial = self.compare.is_running();
        let arrived = self.compare.poll(&ctx);
        // A partial map changes while a run goes on: redraw its texture every frame then.
        if (arrived || was_partial)
            && let Some(c) = self.compare.shown()
        {
            // One colour scale for both: the exact map's peak.
            let top = c.exact.range().map(|r| r.1);
            self.textures = Some([
                heatmap_texture(&ctx, "model density", &c.model, top, DEPTH),
                heatmap_texture(&ctx, "exact density", &c.exact, top, DEPTH),
            ]);
        }
        self.follow_scrubber(&ctx, inputs);

        let side = canvas_side(ui, 3);
        ui.horizontal_top(|ui| {
            let shown_t = self.forward.result.as_ref().map_or(inputs.t, |m| m.t);
            texture_ui(
                ui,
                &format!("p_t at t = {shown_t:.3} (exact)"),
                side,
                self.forward_texture.as_ref(),
            );
            if let (Some([model, exact]), Some(c)) = (&self.textures, self.compare.shown()) {
                texture_ui(
                    ui,
                    &format!("model log p_t, t = {:.3}", c.model.t),
                    side,
                    Some(model),
                );
                let what = if c.exact_is_mixture {
                    "mixture"
                } else {
                    "training points"
                };
                texture_ui(ui, &format!("exact ({what})"), side, Some(exact));
            }
        });
        ui.horizontal_wrapped(|ui| {
            if let Some((_, top)) = self.forward.result.as_ref().and_then(Heatmap::range) {
                ui.label(RichText::new("p_t:").small());
                colour_bar_ui(ui, side * 0.6, top, DEPTH);
            }
            if let Some((_, top)) = self.compare.shown().and_then(|c| c.exact.range()) {
                ui.label(RichText::new("model and exact:").small());
                colour_bar_ui(ui, side * 0.6, top, DEPTH);
            }
        });
        note_ui(
            ui,
            "Left: the Fokker–Planck picture. The density of x_t follows the time scrubber: \
             the data blurs and shrinks toward N(0, I) as t grows. Colours span the top 10 nats.",
        );
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::Slider::new(&mut self.compare_t, 1e-3..=0.5)
                    .logarithmic(true)
                    .text("compare at t"),
            );
            egui::ComboBox::new("density cells", "grid")
                .selected_text(format!("{0}×{0}", self.cells))
                .show_ui(ui, |ui| {
                    for n in [32, 48, 64, 96] {
                        ui.selectable_value(&mut self.cells, n, format!("{n}×{n}"));
                    }
                });
        });
        if self
            .compare
            .controls_ui(ui, "Compute model density and NLL")
            || std::mem::take(&mut self.start_requested)
        {
            self.start_compare(&ctx, inputs);
        }
        if let Some(c) = self.compare.shown() {
            let exact = c
                .exact_nll
                .map_or(String::new(), |e| format!("   exact: {e:.3} nats"));
            let text = match &c.nll {
                Some(nll) => format!(
                    "held-out NLL ({}): {:.3} ± {:.3} nats over {} points, {} evaluations each{exact}",
                    c.model_label, nll.nats, nll.std_error, nll.n, nll.nfe
                ),
                None => format!("held-out NLL ({}): …", c.model_label),
            };
            ui.label(RichText::new(text).strong());
        }
        let mut maps: Vec<(&str, &Heatmap)> = Vec::new();
        if let Some(m) = &self.forward.result {
            maps.push(("forward", m));
        }
        if let Some(c) = &self.compare.result {
            maps.push(("model", &c.model));
            maps.push(("exact", &c.exact));
        }
        self.export.ui(
            ui,
            "Export heatmaps (PNG + CSV)",
            !maps.is_empty(),
            &inputs.export_dir,
            |dir| export_maps(dir, &maps),
        );
        note_ui(
            ui,
            "The model's log-density comes from carrying each grid cell along the probability-flow \
             ODE to t = 1 and adding up the exact 2D divergence of the drift on the way.",
        );
    }

    /// The forward p_t heatmap shown, once computed.
    pub fn forward(&self) -> Option<&Heatmap> {
        self.forward.result.as_ref()
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    /// Recomputes p_t when the scrubbed time or the schedule moved (one run at a time).
    fn follow_scrubber(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        let t = inputs.t.clamp(1e-3, 1.0);
        let key = (t, format!("{:?}#{}", inputs.schedule, inputs.data_version));
        let stale = self
            .forward_key
            .as_ref()
            .is_none_or(|(t0, s)| (t0 - t).abs() > 2e-3 || *s != key.1);
        if !stale || self.forward.is_running() {
            return;
        }
        let schedule = inputs.schedule;
        let stride = (inputs.data.len() / FORWARD_POINTS).max(1);
        let points: Vec<Point> = inputs.data.iter().step_by(stride).copied().collect();
        self.forward_key = Some(key);
        // Rows of cells per job step: in a browser the page keeps drawing (the last map stays
        // on screen until the new one is complete).
        self.forward.start_sweep(ctx, move || {
            ForwardDensity::new(&points, schedule, Grid::square(VIEW_HALF, 96)?, t)
        });
    }

    /// Starts the model-vs-exact comparison on the next frame (a lesson that shows this view).
    pub fn request_start(&mut self) {
        if !self.compare.is_running() {
            self.start_requested = true;
        }
    }

    /// The comparison drawn now (partial while a run is in progress).
    pub fn comparison(&self) -> Option<&Comparison> {
        self.compare.shown()
    }

    pub fn is_running(&self) -> bool {
        self.compare.is_running()
    }

    fn start_compare(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        let run = self.run_for(inputs);
        // A chunk of cells per job step: the map fills in row by row, and in a browser the
        // computation shares the frames instead of freezing the page.
        self.compare
            .start_sweep(ctx, move || DensitySweep::new(run));
    }

    /// The comparison the view's settings ask for on these inputs.
    pub fn run_for(&self, inputs: &Inputs) -> DensityRun {
        let (model, model_label) = inputs.model();
        let stride = (inputs.data.len() / FORWARD_POINTS).max(1);
        DensityRun {
            model,
            model_label,
            schedule: inputs.schedule,
            t: self.compare_t,
            cells: self.cells,
            mixture: inputs.builtin.and_then(|b| b.mixture()),
            held_out: inputs.held_out(500, 0),
            points: inputs.data.iter().step_by(stride).copied().collect(),
        }
    }
}

/// Everything one model-vs-exact comparison needs, moved to its thread (`bench --explore`
/// runs the same).
pub struct DensityRun {
    pub model: SharedModel,
    pub model_label: &'static str,
    pub schedule: Schedule,
    pub t: f64,
    pub cells: usize,
    /// The data's components where it is a known mixture; else the exact map is that of
    /// `points`.
    pub mixture: Option<Vec<Component>>,
    pub held_out: Vec<Point>,
    pub points: Vec<Point>,
}

impl DensityRun {
    /// The comparison, all at once; `on_partial` sees each stage (`bench --explore`).
    pub fn run(
        self,
        progress: Progress<'_>,
        on_partial: &mut dyn FnMut(&Comparison),
    ) -> Result<Comparison, TeachError> {
        let mut sweep = DensitySweep::new(self)?;
        on_partial(&sweep.comparison);
        while !sweep.advance(progress)? {
            on_partial(&sweep.comparison);
        }
        Ok(sweep.comparison)
    }
}

/// The likelihood integration both the map and the NLL use.
fn likelihood_config() -> LikelihoodConfig {
    LikelihoodConfig {
        steps: 50,
        ..LikelihoodConfig::default()
    }
}

/// The comparison in steps: the exact map (cheap) at once, then a chunk of the model's cells
/// per [`DensitySweep::advance`], then the NLL, so it can run in time slices and its map can
/// be shown as it fills in.
struct DensitySweep {
    run: DensityRun,
    comparison: Comparison,
    /// The grid's cell centres, and the first whose log-density is still to compute.
    cells: Vec<Point>,
    next: usize,
}

impl DensitySweep {
    fn new(run: DensityRun) -> Result<Self, TeachError> {
        let grid = Grid::square(VIEW_HALF, run.cells)?;
        run.schedule.validate()?;
        let exact_is_mixture = run.mixture.is_some();
        let oracle = match &run.mixture {
            Some(components) => Oracle::new(components.clone(), run.schedule),
            None => Oracle::empirical(&run.points, run.schedule),
        };
        let exact = exact_log_density(&oracle, &grid, run.t)?;
        let exact_nll = exact_is_mixture.then(|| {
            let ll = oracle.log_density(&run.held_out, likelihood_config().t_min);
            -ll.iter().sum::<f64>() / ll.len().max(1) as f64
        });
        let comparison = Comparison {
            model: Heatmap {
                grid,
                t: run.t,
                log_density: vec![f64::NAN; grid.len()],
            },
            exact,
            exact_is_mixture,
            nll: None,
            exact_nll,
            model_label: run.model_label,
        };
        Ok(Self {
            run,
            comparison,
            cells: grid.points(),
            next: 0,
        })
    }
}

impl Sweep for DensitySweep {
    type Output = Comparison;

    /// The next chunk of the model's map, or the NLL once the map is done; true when the
    /// comparison is complete. `progress` covers the whole sweep (the map 60 %, the NLL 40 %).
    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let run = &self.run;
        if self.next < self.cells.len() {
            progress.tick(0.6 * self.next as f64 / self.cells.len() as f64)?;
            let end = (self.next + MAP_CHUNK).min(self.cells.len());
            let cfg = LikelihoodConfig {
                t_min: run.t,
                ..likelihood_config()
            };
            let (values, _) = log_density_chunk(
                run.model.as_ref(),
                &run.schedule,
                &self.cells[self.next..end],
                &cfg,
            );
            self.comparison.model.log_density[self.next..end].copy_from_slice(&values);
            self.next = end;
            return Ok(false);
        }
        self.comparison.nll = Some(held_out_nll(
            run.model.as_ref(),
            run.schedule,
            &run.held_out,
            &likelihood_config(),
            progress.sub(0.6, 0.4),
        )?);
        Ok(true)
    }

    fn so_far(&self) -> Option<Comparison> {
        Some(self.comparison.clone())
    }
}

/// Each map as `density_<name>.png` (colours as on screen: the top 10 nats, each cell 6×6
/// pixels) and all of them in `density.csv` as `map,t,x,y,log_density` (cell centres).
fn export_maps(dir: &std::path::Path, maps: &[(&str, &Heatmap)]) -> Result<String, String> {
    let mut rows = Vec::new();
    let mut written = Vec::new();
    for (name, map) in maps {
        let file = format!("density_{name}.png");
        let (nx, ny) = (map.grid.nx, map.grid.ny);
        write_scaled_png(&dir.join(&file), nx, ny, &map.to_rgb(DEPTH), 6)?;
        written.push(file);
        for j in 0..ny {
            for i in 0..nx {
                let c = map.grid.centre(i, j);
                rows.push(format!(
                    "{name},{},{},{},{}",
                    map.t,
                    c[0],
                    c[1],
                    map.at(i, j)
                ));
            }
        }
    }
    let csv = write_table(&dir.join("density.csv"), "map,t,x,y,log_density", &rows)?;
    Ok(format!("{csv}; {}", written.join(", ")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::math::oracle::Component;

    fn run() -> DensityRun {
        let schedule = Schedule::default();
        let mixture = vec![Component {
            weight: 1.0,
            mean: [0.4, -0.2],
            cov: [[0.5, 0.1], [0.1, 0.3]],
        }];
        DensityRun {
            model: Arc::new(Oracle::new(mixture.clone(), schedule)),
            model_label: "exact",
            schedule,
            t: 0.05,
            cells: 24,
            mixture: Some(mixture),
            held_out: crate::math::solvers::prior(64, 1),
            points: Vec::new(),
        }
    }

    #[test]
    fn the_job_gives_the_one_call_comparison_and_fills_the_map_as_it_goes() {
        let whole = run().run(Progress::none(), &mut |_| {}).unwrap();
        let ctx = egui::Context::default();
        let mut task = Task::<Comparison>::default();
        task.start_sweep(&ctx, || DensitySweep::new(run()));
        let start = web_time::Instant::now();
        let mut filled = Vec::new();
        while task.is_running() {
            task.poll(&ctx);
            if let Some(c) = task.shown() {
                filled.push(c.model.log_density.iter().filter(|v| v.is_finite()).count());
            }
            assert!(start.elapsed().as_secs() < 60, "timed out");
        }
        let done = task.result.as_ref().expect("a result");
        assert_eq!(done.model.log_density, whole.model.log_density);
        assert_eq!(done.nll, whole.nll);
        assert!(
            filled.windows(2).all(|w| w[0] <= w[1]),
            "cells went away: {filled:?}"
        );
    }
}
