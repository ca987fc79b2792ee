//! The Explore panel, docked beside the canvas: one tab per teaching view. Each view owns its
//! settings and a background [`Task`](super::jobs::Task); this module holds what they share:
//! the models, held-out data, and small drawings (point clouds, heatmap textures).
//!
//! - `quality`: quality vs number of network evaluations, every sampler;
//! - `density`: p_t, the model's PF-ODE log-density and the exact one, with the NLL;
//! - `memorise`: the ideal denoiser of a few points reproduces them;
//! - `guidance`: classifier guidance with the exact Bayes classifier; `cfg`: classifier-free
//!   guidance with a class-conditional network; `labelled`: the labelled data both use;
//! - `why_score`: drift-only reversal, plain and annealed Langevin;
//! - `paths`: a diffusion and a flow-matching network trained alike, run from the same noise:
//!   straightness of the paths and quality vs network evaluations;
//! - `ablation`: two models trained side by side that differ in one setting, and
//!   (`weighting`) three loss weightings with the same loss and different samples.

mod ablation;
mod cfg;
pub mod density;
mod guidance;
mod labelled;
mod memorise;
pub mod paths;
pub mod quality;
mod weighting;
mod why_score;

use std::sync::Arc;

use egui::{Color32, Rect, RichText, Sense, Ui, Vec2};

use super::App;
use super::settings::{DataChoice, ExploreTab};
use crate::Point;
use crate::data::BuiltIn;
use crate::math::Schedule;
use crate::teach::density::{Heatmap, viridis};
use crate::train::SharedModel;

pub use guidance::GuidanceView;

/// Half-width of the square the small canvases and heatmaps show (standardised units).
pub const VIEW_HALF: f32 = 3.0;

/// The state of every view (results survive switching tabs).
#[derive(Default)]
pub struct Explore {
    pub quality: quality::QualityView,
    pub density: density::DensityView,
    pub memorise: memorise::MemoriseView,
    pub guidance: GuidanceView,
    pub why: why_score::WhyScoreView,
    pub ablation: ablation::AblationView,
    pub paths: paths::PathsView,
}

/// What the views compute from, gathered once per frame.
pub struct Inputs {
    pub schedule: Schedule,
    pub data: Arc<Vec<Point>>,
    pub data_label: String,
    /// `LoadedData::version` of `data`: what caches of results computed from it are keyed by.
    pub data_version: u64,
    /// The data's classes, one per point, if it has them (CSV label column, drawn colours).
    pub labels: Option<Arc<Vec<u32>>>,
    pub num_classes: u32,
    /// The built-in dataset in use, if it is one (fresh draws, labels, mixtures).
    pub builtin: Option<BuiltIn>,
    /// The newest EMA network, once training has published one.
    pub learned: Option<SharedModel>,
    /// The exact score of (a subset of) the training points.
    pub exact: SharedModel,
    /// The scrubbed time.
    pub t: f64,
    /// Where the views' Export buttons write (`settings.teach.export_dir`).
    pub export_dir: String,
}

impl Inputs {
    fn gather(app: &mut App) -> Self {
        let schedule = app.settings.schedule.schedule();
        // A moved built-in is no longer what its generator draws: held-out points then come
        // from the data itself.
        let builtin = match &app.settings.data {
            DataChoice::BuiltIn(name) if app.settings.placement.is_standard() => {
                BuiltIn::from_name(name)
            }
            _ => None,
        };
        Self {
            schedule,
            data: Arc::clone(&app.data.points),
            data_label: app.data.label.clone(),
            data_version: app.data.version,
            labels: app.data.labels.clone(),
            num_classes: app.data.num_classes,
            builtin,
            learned: app.train.model.as_ref().map(|s| Arc::clone(&s.model)),
            // The process's own exact model: the VP score or flow matching's velocity (the
            // views other than Quality vs steps and Straight paths run on VP only).
            exact: app
                .player
                .exact_model(app.settings.process(), schedule, &app.data),
            t: app.player.t,
            export_dir: app.settings.teach.export_dir.clone(),
        }
    }

    /// The network if there is one, else the exact score, with a word saying which.
    pub fn model(&self) -> (SharedModel, &'static str) {
        match &self.learned {
            Some(m) => (Arc::clone(m), "learned network"),
            None => (Arc::clone(&self.exact), "exact score (no network yet)"),
        }
    }

    /// `n` points the network never saw: a fresh draw of a built-in dataset, else every
    /// other point of the data (so the views still work on CSV and drawn data).
    pub fn held_out(&self, n: usize, seed: u64) -> Vec<Point> {
        match self.builtin {
            Some(b) => b.sample(n, 1000 + seed).points,
            None => {
                let stride = (self.data.len() / n.max(1)).max(1);
                let offset = seed as usize % stride;
                self.data
                    .iter()
                    .skip(offset)
                    .step_by(stride)
                    .take(n)
                    .copied()
                    .collect()
            }
        }
    }
}

/// The Explore views, docked to the right of the canvas (which keeps the rest of the width):
/// a split, so a view's results and the canvas are both in sight. Call before the central
/// panel.
pub fn explore_ui(app: &mut App, ui: &mut Ui) {
    if !app.settings.teach.explore {
        return;
    }
    let inputs = Inputs::gather(app);
    let mut explore = std::mem::take(&mut app.explore);
    let width = ui.available_width();
    egui::Panel::right("explore")
        .frame(super::style::unfilled(egui::Frame::side_top_panel(
            ui.style(),
        )))
        .resizable(true)
        .default_size((width * 0.55).max(360.0))
        .min_size(320.0)
        .max_size((width - 360.0).max(320.0))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new("Explore").strong());
                for tab in ExploreTab::ALL {
                    ui.selectable_value(&mut app.settings.teach.tab, tab, tab.label());
                }
                if ui.button("✕").on_hover_text("Close Explore").clicked() {
                    app.settings.teach.explore = false;
                }
            });
            ui.separator();
            let fm = !app.settings.process().is_vp();
            egui::ScrollArea::vertical().show(ui, |ui| match app.settings.teach.tab {
                ExploreTab::Paths => explore.paths.ui(ui, &inputs, &app.settings.train),
                // Quality vs steps runs either process (its samplers are the process's own).
                ExploreTab::Quality => explore.quality.ui(ui, &inputs),
                tab if fm => note_ui(
                    ui,
                    &format!(
                        "{} studies the diffusion (VP-SDE) process, and the network now learns \
                         flow matching. Switch Process to Diffusion under Noise schedule to use \
                         it; Quality vs steps and Straight paths work on both.",
                        tab.label()
                    ),
                ),
                ExploreTab::Density => explore.density.ui(ui, &inputs),
                ExploreTab::Memorisation => {
                    if let Some(subset) = explore.memorise.ui(ui, &inputs) {
                        app.train_on_subset(subset);
                    }
                }
                ExploreTab::Guidance => {
                    explore
                        .guidance
                        .ui(ui, &inputs, &app.settings.sampler, &app.settings.train)
                }
                ExploreTab::WhyScore => explore.why.ui(ui, &inputs),
                ExploreTab::Ablation => explore.ablation.ui(ui, &inputs, &app.settings.train),
            });
        });
    app.explore = explore;
}

/// Colours for classes and samplers (tab10).
pub const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// Pale grey for the training data behind samples.
pub const DATA_GREY: Color32 = Color32::from_rgba_premultiplied(110, 110, 110, 110);

/// A square canvas of side `size` showing `layers` of points (drawn in order) over
/// [−VIEW_HALF, VIEW_HALF]², with a caption above it. Points outside are skipped.
pub fn cloud_ui(ui: &mut Ui, caption: &str, size: f32, layers: &[(&[Point], Color32)]) {
    ui.vertical(|ui| {
        ui.set_width(size);
        ui.label(RichText::new(caption).strong());
        let (rect, _) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, Color32::from_rgb(18, 18, 24));
        let radius = (size / 220.0).clamp(1.0, 2.5);
        for (points, colour) in layers {
            for p in points.iter() {
                if let Some(pos) = to_screen(rect, *p) {
                    painter.circle_filled(pos, radius, *colour);
                }
            }
        }
    });
}

fn to_screen(rect: Rect, p: Point) -> Option<egui::Pos2> {
    let u = (p[0] + VIEW_HALF) / (2.0 * VIEW_HALF);
    let v = (VIEW_HALF - p[1]) / (2.0 * VIEW_HALF);
    ((0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v))
        .then(|| rect.min + Vec2::new(u * rect.width(), v * rect.height()))
}

/// A heatmap as a texture: viridis over `[top − depth, top]` nats of log-density (cells
/// without a value in the background colour), where
/// `top` defaults to the map's own maximum. Passing the exact map's maximum puts a model's
/// map on the same scale (and keeps a single diverged cell from darkening the rest).
pub fn heatmap_texture(
    ctx: &egui::Context,
    name: &str,
    map: &Heatmap,
    top: Option<f64>,
    depth: f64,
) -> egui::TextureHandle {
    let top = top.or_else(|| map.range().map(|r| r.1)).unwrap_or(0.0);
    let (nx, ny) = (map.grid.nx, map.grid.ny);
    let mut rgb = Vec::with_capacity(3 * nx * ny);
    // Rows from the top (largest y) down, as images are stored.
    for j in (0..ny).rev() {
        for i in 0..nx {
            let v = map.at(i, j);
            // A cell with no value (not computed yet, or diverged) shows the background.
            rgb.extend_from_slice(&if v.is_finite() {
                viridis(((v - (top - depth)) / depth).clamp(0.0, 1.0))
            } else {
                [18, 18, 24]
            });
        }
    }
    let image = egui::ColorImage::from_rgb([nx, ny], &rgb);
    ctx.load_texture(name, image, egui::TextureOptions::LINEAR)
}

/// A texture drawn as a square of side `size` with a caption above.
pub fn texture_ui(ui: &mut Ui, caption: &str, size: f32, texture: Option<&egui::TextureHandle>) {
    ui.vertical(|ui| {
        ui.set_width(size);
        ui.label(RichText::new(caption).strong());
        match texture {
            Some(t) => {
                ui.add(egui::Image::new((t.id(), Vec2::splat(size))).corner_radius(4.0));
            }
            None => {
                let (rect, _) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
                ui.painter()
                    .rect_filled(rect, 4.0, Color32::from_rgb(18, 18, 24));
            }
        }
    });
}

/// The key to [`heatmap_texture`]'s colours: a viridis strip from `top − depth` to `top`
/// (log-density in nats), its ends labelled.
pub fn colour_bar_ui(ui: &mut Ui, width: f32, top: f64, depth: f64) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("{:.1}", top - depth)).small());
        let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 12.0), Sense::hover());
        let painter = ui.painter_at(rect);
        let n = 64;
        for k in 0..n {
            let u = (k as f64 + 0.5) / n as f64;
            let [r, g, b] = viridis(u);
            let x0 = rect.left() + rect.width() * k as f32 / n as f32;
            let x1 = rect.left() + rect.width() * (k + 1) as f32 / n as f32;
            painter.rect_filled(
                Rect::from_x_y_ranges(x0..=x1 + 0.5, rect.y_range()),
                0.0,
                Color32::from_rgb(r, g, b),
            );
        }
        ui.label(RichText::new(format!("{top:.1} nats (log p)")).small());
    });
}

/// The side of a canvas when `n` of them share the width available.
pub fn canvas_side(ui: &Ui, n: usize) -> f32 {
    let spacing = ui.spacing().item_spacing.x;
    ((ui.available_width() - spacing * (n as f32 - 1.0)) / n as f32).clamp(120.0, 420.0)
}

/// A short explanatory paragraph.
pub fn note_ui(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).weak());
}
