//! The formulas panel: the forward SDE, its marginal, the reverse SDE, the PF-ODE and the
//! score (or flow matching's path, loss, ODE, score and SDE), each written in general and
//! with the numbers at the scrubbed t, in type large enough for a projector.

use egui::{RichText, Ui};

use crate::app::{App, style};
use crate::math::Process;
use crate::teach::formulas::{flow_formulas, formulas};

/// Text size relative to the body text: the panel is read from the back of a room.
const SCALE: f32 = 1.25;

pub fn formulas_ui(app: &mut App, ui: &mut Ui) {
    egui::Panel::bottom("formulas")
        .frame(style::unfilled(egui::Frame::side_top_panel(ui.style())))
        .resizable(false)
        .show(ui, |ui| {
            let size = SCALE * style::body_size(ui.ctx());
            // t = 0 has σ = 0 and an infinite score factor: show the first sampled time.
            let t = app.player.t.clamp(1e-3, 1.0);
            let f = formulas(&app.settings.schedule.schedule(), t);
            let flow = (app.settings.process() == Process::Fm).then(|| flow_formulas(t));
            ui.horizontal(|ui| {
                ui.label(RichText::new("Formulas").size(size).strong());
                let values = flow.as_ref().map_or(&f.values, |g| &g.values);
                ui.label(RichText::new(values).size(size).monospace().strong());
                if ui
                    .small_button("×")
                    .on_hover_text("hide the formulas")
                    .clicked()
                {
                    app.settings.teach.formulas = false;
                }
            });
            ui.label(
                RichText::new(match flow {
                    Some(_) => {
                        "Flow matching: straight paths from the data to N(0, I); the \
                                network learns the velocity v"
                    }
                    None => &f.schedule,
                })
                .weak(),
            );
            egui::Grid::new("formula rows")
                .num_columns(3)
                .spacing([24.0, 2.0])
                .show(ui, |ui| {
                    let rows = match &flow {
                        Some(g) => g.rows(),
                        None => [
                            ("forward SDE", &f.forward_sde),
                            ("marginal", &f.marginal),
                            ("reverse SDE", &f.reverse_sde),
                            ("PF-ODE", &f.pf_ode),
                            ("score", &f.score),
                        ],
                    };
                    for (name, [general, now]) in rows {
                        ui.label(RichText::new(name).size(size).weak());
                        ui.label(RichText::new(general).size(size));
                        ui.label(RichText::new(now).size(size).strong());
                        ui.end_row();
                    }
                });
        });
}
