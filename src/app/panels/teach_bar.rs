//! The switches for the teaching panels, shown in the controls in every mode.

use egui::Ui;

use crate::app::{App, lessons};

pub fn teach_toggles_ui(app: &mut App, ui: &mut Ui) {
    ui.horizontal_wrapped(|ui| {
        let t = &mut app.settings.teach;
        ui.toggle_value(&mut t.formulas, "Formulas")
            .on_hover_text("the SDEs and the PF-ODE with the numbers at the scrubbed t");
        let lessons_before = t.lessons;
        ui.toggle_value(&mut t.lessons, "Lessons")
            .on_hover_text("a guided tour: forward, score, reverse SDE, ODE, solvers, guidance");
        ui.toggle_value(&mut t.explore, "Explore").on_hover_text(
            "quality vs steps, density, memorisation, guidance, why the score, ablation",
        );
        let lessons_on = t.lessons && !lessons_before;
        ui.toggle_value(&mut app.help, "?")
            .on_hover_text("Help: shortcuts and what each view shows (F1)");
        if lessons_on {
            lessons::apply_current(app);
        }
    });
}
