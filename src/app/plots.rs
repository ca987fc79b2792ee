//! The right panel: training curves and the schedule's β, α, σ and log SNR, each with the
//! current time marked.

use egui::{Color32, RichText, Ui};
use egui_plot::{HLine, Legend, Line, Plot, PlotPoints, VLine};

use super::{App, style};

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
                training_plots_ui(app, ui, height);
                ui.separator();
                schedule_plots_ui(app, ui, height);
            });
        });
}

fn training_plots_ui(app: &App, ui: &mut Ui, height: f32) {
    let loss = app
        .train
        .loss
        .last()
        .map_or("–".to_owned(), |p| format!("{:.3}", p[1]));
    ui.label(RichText::new(format!("Loss (DSM) · {loss}")).strong())
        .on_hover_text("E‖ε_θ(α x₀ + σ ε, t) − ε‖², averaged between reports; log scale");
    // Log scale by hand: plot log10 and label the axis with powers of ten.
    let stride = (app.train.loss.len() / CURVE_DRAWN).max(1);
    let points: PlotPoints = app
        .train
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

    let ratio = app
        .train
        .quality_ratio()
        .map_or("–".to_owned(), |r| format!("{r:.2} × floor"));
    ui.label(RichText::new(format!("Sample quality · sw2 = {ratio}")).strong())
        .on_hover_text(
            "Sliced W₂ between 1000 samples (Heun, 25 steps, EMA weights) and the data, \
             measured beside training. The dashed line is the floor: the same distance \
             between disjoint subsets of the data (no sampler can do better).",
        );
    // Log scale too: an untrained network is orders of magnitude off.
    let quality: PlotPoints = app
        .train
        .quality
        .iter()
        .filter(|p| p[1] > 0.0)
        .map(|p| [p[0], p[1].log10()])
        .collect();
    let floor = app.train.quality_floor.filter(|f| *f > 0.0);
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
            if let Some(floor) = floor {
                plot.hline(
                    HLine::new("floor", floor.log10())
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

fn schedule_plots_ui(app: &App, ui: &mut Ui, height: f32) {
    let schedule = app.settings.schedule.schedule();
    let t_now = app.player.t;
    let small = |ui: &mut Ui, id: &str, title: &str, lines: Vec<Line<'static>>, legend: bool| {
        ui.label(RichText::new(title).strong());
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
        plot.show(ui, |plot| {
            for line in lines {
                plot.line(line);
            }
            plot.vline(VLine::new("now", t_now).color(Color32::from_gray(140)));
        });
    };
    small(
        ui,
        "alpha sigma",
        "α(t) and σ(t)",
        vec![
            Line::new("α", curve(|t| schedule.alpha(t))).color(ORANGE),
            Line::new("σ", curve(|t| schedule.sigma(t))).color(BLUE),
        ],
        true,
    );
    small(
        ui,
        "beta",
        "β(t)",
        vec![Line::new("β", curve(|t| schedule.beta(t))).color(GREEN)],
        false,
    );
    small(
        ui,
        "log snr",
        "log SNR(t) = log α²/σ²",
        vec![
            Line::new("log SNR", curve(|t| schedule.snr(t).ln()))
                .color(Color32::from_rgb(200, 140, 255)),
        ],
        false,
    );
}
