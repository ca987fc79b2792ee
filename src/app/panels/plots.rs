//! The right panel: training curves and the schedule's β, α, σ and log SNR, each with the
//! current time marked.
//!
//! Both halves are cached regions (`region_cache`): the training curves take new data twice
//! a second, and the time marker is drawn over the schedule plots' picture, so on most
//! frames neither half sends egui's renderer a triangle.

use std::time::Duration;

use crate::math::Process;
use egui::{Color32, RichText, Stroke, Ui};
use egui_plot::{HLine, Legend, Line, Plot, PlotPoints};

use crate::app::training::{self, TrainState};
use crate::app::{App, style};

/// How often the training curves take in new points.
const CURVE_REFRESH: Duration = Duration::from_millis(500);
const NOW_COLOUR: Color32 = Color32::from_gray(140);

const SCHEDULE_SAMPLES: usize = 200;
/// Points drawn per training curve (a long run is thinned for drawing).
const CURVE_DRAWN: usize = 600;
const ORANGE: Color32 = Color32::from_rgb(255, 150, 60);
const BLUE: Color32 = Color32::from_rgb(110, 180, 255);
const GREEN: Color32 = Color32::from_rgb(110, 200, 110);

pub fn plots_ui(app: &mut App, ui: &mut Ui) {
    egui::Panel::right("plots")
        .frame(style::unfilled(egui::Frame::side_top_panel(ui.style())))
        .resizable(true)
        .default_size(300.0)
        .min_size(220.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                let height = ((ui.available_height() - 150.0) / 5.0).clamp(90.0, 170.0);
                app.curves.refresh(&app.train, ui.ctx());
                app.cached_region(ui, "training plots", |app, ui| {
                    training_plots_ui(&app.curves, app.settings.process(), ui, height)
                });
                ui.separator();
                let frames = app.cached_region(ui, "schedule plots", |app, ui| {
                    schedule_plots_ui(app, ui, height)
                });
                // Over the cached picture: the marker moves on every frame of playback.
                for (frame, x) in frames {
                    ui.painter().with_clip_rect(frame).vline(
                        x,
                        frame.y_range(),
                        Stroke::new(1.0, NOW_COLOUR),
                    );
                }
            });
        });
}

/// The training curves as drawn: a copy of the training state's, refreshed every
/// `CURVE_REFRESH` (at once after a reset).
#[derive(Default)]
pub struct Curves {
    loss: Vec<[f64; 2]>,
    quality: Vec<[f64; 2]>,
    floor: Option<f64>,
    floor_band: Option<(f64, f64)>,
    /// egui's clock (`InputState::time`) at the last refresh.
    refreshed: Option<f64>,
}

impl Curves {
    fn refresh(&mut self, train: &TrainState, ctx: &egui::Context) {
        let now = ctx.input(|i| i.time);
        let age = self
            .refreshed
            .map(|at| Duration::from_secs_f64((now - at).max(0.0)));
        let due = age.is_none_or(|age| age >= CURVE_REFRESH);
        let reset = train.loss.len() < self.loss.len() || train.quality.len() < self.quality.len();
        if due || reset {
            self.loss.clone_from(&train.loss);
            self.quality.clone_from(&train.quality);
            self.floor = train.quality_floor;
            self.floor_band = train.quality_floor_band;
            self.refreshed = Some(now);
        } else if let Some(age) = age
            && (self.loss.last() != train.loss.last()
                || self.quality.last() != train.quality.last()
                || self.floor != train.quality_floor)
        {
            // Newer points wait for the next refresh: make sure it comes when nothing else
            // repaints (training paused, playback stopped).
            ctx.request_repaint_after(CURVE_REFRESH.saturating_sub(age));
        }
    }
}

fn training_plots_ui(curves: &Curves, process: Process, ui: &mut Ui, height: f32) {
    let loss = curves
        .loss
        .last()
        .map_or("–".to_owned(), |p| format!("{:.3}", p[1]));
    let (name, formula) = match process {
        Process::Vp => ("DSM", "E‖ε_θ(α x₀ + σ ε, t) − ε‖²"),
        // Its floor is E Var[ε − x₀ | x_t], far from 0: the target is noisy at every t.
        Process::Fm => ("flow matching", "E‖v_θ((1 − t) x₀ + t ε, t) − (ε − x₀)‖²"),
    };
    ui.label(RichText::new(format!("Loss ({name}) · {loss}")).strong())
        .on_hover_text(format!("{formula}, averaged between reports; log scale"));
    // Log scale by hand: plot log10 and label the axis with powers of ten.
    let stride = (curves.loss.len() / CURVE_DRAWN).max(1);
    let points: PlotPoints = curves
        .loss
        .iter()
        .step_by(stride)
        .filter(|p| p[1] > 0.0)
        .map(|p| [p[0], p[1].log10()])
        .collect();
    Plot::new("loss")
        .height(height)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .show_background(false)
        .y_axis_formatter(|mark, _| format!("{:.2}", 10f64.powf(mark.value)))
        .x_axis_label("step")
        .show(ui, |plot| {
            if let Some((lo, hi)) = robust_range(points.points().iter().map(|p| p.y), None) {
                plot.set_plot_bounds_y(lo..=hi);
            }
            plot.line(Line::new("loss", points).color(ORANGE));
        });

    let ratio = training::quality_ratio(&curves.quality, curves.floor)
        .map_or("–".to_owned(), |r| format!("{r:.2} × floor"));
    ui.label(RichText::new(format!("Trainer's check (Heun 25) · sw2 = {ratio}")).strong())
        .on_hover_text(
            "The trainer's own check, not the run on the canvas: sliced W₂ between 1000 \
             samples (Heun, 25 steps, EMA weights) and the data, measured beside training. \
             The dashed lines bound the floor: the same distance between disjoint subsets of \
             the data, over four pairs (no sampler can do reliably better).",
        );
    // Log scale too: an untrained network is orders of magnitude off.
    let quality: PlotPoints = curves
        .quality
        .iter()
        .filter(|p| p[1] > 0.0)
        .map(|p| [p[0], p[1].log10()])
        .collect();
    let floor = curves.floor.filter(|f| *f > 0.0);
    Plot::new("quality")
        .height(height)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .show_background(false)
        .y_axis_formatter(|mark, _| format!("{:.2}", 10f64.powf(mark.value)))
        .x_axis_label("step")
        .show(ui, |plot| {
            let floor_log = floor.map(f64::log10);
            if let Some((lo, hi)) = robust_range(quality.points().iter().map(|p| p.y), floor_log) {
                plot.set_plot_bounds_y(lo..=hi);
            }
            plot.line(Line::new("sw2", quality).color(BLUE));
            // The floor as a band: its spread over pairs of subsets, so that a noisy point
            // under a single line does not read as "better than the data".
            let band = curves.floor_band.filter(|(lo, _)| *lo > 0.0);
            let lines = match (band, floor) {
                (Some((lo, hi)), _) => vec![lo, hi],
                (None, Some(floor)) => vec![floor],
                (None, None) => Vec::new(),
            };
            for y in lines {
                plot.hline(
                    HLine::new("floor", y.log10())
                        .color(GREEN)
                        .style(egui_plot::LineStyle::dashed_dense()),
                );
            }
        });
}

/// A y range for a training curve that ignores its first tenth: the untrained start is
/// orders of magnitude off and would flatten everything after it.
fn robust_range(ys: impl Iterator<Item = f64>, include: Option<f64>) -> Option<(f64, f64)> {
    let ys: Vec<f64> = ys.collect();
    if ys.len() < 4 {
        return None;
    }
    let skip = ys.len() / 10 + 1;
    let (mut lo, mut hi) = ys[skip..]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &y| {
            (lo.min(y), hi.max(y))
        });
    if let Some(y) = include {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    let pad = 0.1 * (hi - lo).max(0.05);
    (lo.is_finite() && hi.is_finite()).then_some((lo - pad, hi + pad))
}

fn curve(f: impl Fn(f64) -> f64) -> PlotPoints<'static> {
    (0..=SCHEDULE_SAMPLES)
        .map(|i| {
            let t = i as f64 / SCHEDULE_SAMPLES as f64;
            [t, f(t)]
        })
        .filter(|p| p[1].is_finite())
        .collect()
}

/// The schedule's plots; returns each one's frame and the x of the current time in it, for
/// the caller to mark.
fn schedule_plots_ui(app: &App, ui: &mut Ui, height: f32) -> Vec<(egui::Rect, f32)> {
    let schedule = app.settings.schedule.schedule();
    let process = app.settings.process();
    let alpha = move |t: f64| process.alpha_sigma(&schedule, t).0;
    let sigma = move |t: f64| process.alpha_sigma(&schedule, t).1;
    let t_now = app.player.t;
    let mut frames = Vec::new();
    let mut small =
        |ui: &mut Ui, id: &str, title: &str, lines: Vec<Line<'static>>, legend: bool| {
            ui.label(RichText::new(title).strong())
                .on_hover_text("The grey line marks the time t shown on the canvas.");
            let mut plot = Plot::new(id)
                .height(height)
                .allow_scroll(false)
                .allow_drag(false)
                .allow_zoom(false)
                .show_background(false)
                .include_x(0.0)
                .include_x(1.0)
                .x_axis_label("t");
            if legend {
                plot = plot.legend(Legend::default());
            }
            let shown = plot.show(ui, |plot| {
                for line in lines {
                    plot.line(line);
                }
            });
            let x = shown.transform.position_from_point_x(t_now);
            frames.push((*shown.transform.frame(), x));
        };
    small(
        ui,
        "alpha sigma",
        match process {
            Process::Vp => "α(t) and σ(t)",
            Process::Fm => "α(t) = 1 − t and σ(t) = t (flow matching)",
        },
        vec![
            Line::new("α", curve(alpha)).color(ORANGE),
            Line::new("σ", curve(sigma)).color(BLUE),
        ],
        true,
    );
    // β belongs to the VP-SDE; the straight path has none.
    if process.is_vp() {
        small(
            ui,
            "beta",
            "β(t)",
            vec![Line::new("β", curve(|t| schedule.beta(t))).color(GREEN)],
            false,
        );
    }
    small(
        ui,
        "log snr",
        "log SNR(t) = log α²/σ²",
        vec![
            Line::new(
                "log SNR",
                curve(move |t| (alpha(t) / sigma(t)).powi(2).ln()),
            )
            .color(Color32::from_rgb(200, 140, 255)),
        ],
        false,
    );
    frames
}
