//! The status bar: who renders and who trains, on what, and how fast.

use std::time::Duration;

use egui::{RichText, Ui};

use crate::app::{App, style};

/// How often the bar's numbers change.
const REFRESH: Duration = Duration::from_millis(500);

/// The bar's changing numbers as shown: refreshed twice a second (at once when training
/// starts, pauses or crashes), so that the bar stands still in between and is drawn from a
/// picture (`region_cache`).
#[derive(Default)]
pub struct Readout {
    train: String,
    fps: String,
    state: String,
    /// egui's clock (`InputState::time`) at the last refresh.
    at: Option<f64>,
}

pub fn status_ui(app: &mut App, ui: &mut Ui) {
    egui::Panel::bottom("status")
        .frame(style::unfilled(egui::Frame::side_top_panel(ui.style())))
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                if app.settings.presentation {
                    // Large text everywhere else; the status line stays one line.
                    ui.style_mut().override_text_style = Some(egui::TextStyle::Small);
                }
                let render = app.gpu.as_ref().map_or("render: no wgpu".to_owned(), |g| {
                    format!("render: wgpu {} · {}", g.backend, g.adapter)
                });
                ui.label(render);
                ui.separator();
                let train = &app.train;
                let backend = train.backend.as_deref().unwrap_or("starting…");
                let state = if train.crashed.is_some() {
                    "crashed".to_owned()
                } else if train.paused {
                    "paused".to_owned()
                } else {
                    String::new()
                };
                let shown = &mut app.status;
                let key = format!("{backend}{state}");
                let rate = if state.is_empty() {
                    format!("{:.0}k samples/s", train.samples_per_sec / 1e3)
                } else {
                    state
                };
                let train_line = format!("train: {backend} · step {} · {rate}", train.step);
                let now = ui.ctx().input(|i| i.time);
                let age = shown
                    .at
                    .map(|at| Duration::from_secs_f64((now - at).max(0.0)));
                if age.is_none_or(|age| age >= REFRESH) || shown.state != key {
                    shown.train = train_line;
                    let fps = app.frame_stats.fps();
                    shown.fps = format!(
                        "{fps:.0} fps ({:.1} ms)",
                        if fps > 0.0 { 1e3 / fps } else { 0.0 }
                    );
                    shown.state = key;
                    shown.at = Some(now);
                } else if let Some(age) = age
                    && shown.train != train_line
                {
                    // Make sure newer numbers show when nothing else repaints (the frame rate
                    // alone is not worth a repaint).
                    ui.ctx().request_repaint_after(REFRESH.saturating_sub(age));
                }
                ui.label(&shown.train)
                    .on_hover_text(train.backend_why.as_deref().unwrap_or("starting"));
                ui.separator();
                ui.label(&shown.fps).on_hover_text(format!(
                    "frame work {:.1} ms, of which app UI {:.1} ms",
                    1e3 * app.frame_stats.work_secs,
                    1e3 * app.frame_stats.ui_secs
                ));
                ui.separator();
                ui.label(format!("{} particles", app.settings.particles));
                if let Some(message) = &app.train.last_message {
                    ui.separator();
                    ui.label(RichText::new(message).weak());
                }
            });
        });
}
