//! The status bar: who renders and who trains, on what, and how fast.

use egui::{RichText, Ui};

use super::{App, style};

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
                let state = if train.crashed.is_some() {
                    "crashed".to_owned()
                } else if train.paused {
                    "paused".to_owned()
                } else {
                    format!("{:.0}k samples/s", train.samples_per_sec / 1e3)
                };
                ui.label(format!(
                    "train: {} · step {} · {state}",
                    train.backend.as_deref().unwrap_or("starting…"),
                    train.step,
                ))
                .on_hover_text(train.backend_why.as_deref().unwrap_or("starting"));
                ui.separator();
                let fps = app.frame_stats.fps();
                ui.label(format!(
                    "{fps:.0} fps ({:.1} ms)",
                    if fps > 0.0 { 1e3 / fps } else { 0.0 }
                ))
                .on_hover_text(format!(
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
