//! The guided tour: each lesson is a preset applied to the whole app plus two or three
//! sentences; previous/next walk through them and the position is saved.

use egui::{RichText, Ui};

use crate::app::settings::{Arrows, DataChoice, ScheduleKind};
use crate::app::{App, Mode, style};
use crate::math::Schedule;
use crate::teach::lessons::Preset;

use crate::app::settings::ExploreTab;

pub fn lessons_ui(app: &mut App, ui: &mut Ui) {
    egui::Panel::top("lessons")
        .frame(style::unfilled(egui::Frame::side_top_panel(ui.style())))
        .show(ui, |ui| {
            let cursor = app.settings.teach.lesson;
            let lesson = cursor.current();
            let (index, count) = cursor.position();
            ui.horizontal(|ui| {
                let prev = ui.add_enabled(!cursor.is_first(), egui::Button::new("◀ Previous"));
                if prev.clicked() && app.settings.teach.lesson.previous_lesson() {
                    apply_current(app);
                }
                let next = ui.add_enabled(!cursor.is_last(), egui::Button::new("Next ▶"));
                if next.clicked() && app.settings.teach.lesson.next_lesson() {
                    apply_current(app);
                }
                ui.label(RichText::new(format!("{}/{count}", index + 1)).weak());
                ui.heading(lesson.title);
                if ui
                    .small_button("apply again")
                    .on_hover_text("set the app back to this lesson's preset")
                    .clicked()
                {
                    apply_current(app);
                }
                if ui
                    .small_button("×")
                    .on_hover_text("hide the lessons")
                    .clicked()
                {
                    app.settings.teach.lessons = false;
                }
            });
            ui.label(RichText::new(lesson.text).size(1.15 * style::body_size(ui.ctx())));
        });
}

/// Applies the lesson under the cursor.
pub fn apply_current(app: &mut App) {
    let preset = app.settings.teach.lesson.current().preset;
    apply_preset(app, &preset);
}

/// Puts the app in the state a lesson describes: data, schedule, sampler, what is shown.
pub fn apply_preset(app: &mut App, preset: &Preset) {
    app.keep_my_setup();
    let name = preset.dataset.name().to_owned();
    let moved = app.settings.placement != preset.placement;
    app.settings.placement = preset.placement;
    if moved || app.settings.data != DataChoice::BuiltIn(name.clone()) {
        app.set_data(DataChoice::BuiltIn(name));
    }
    if moved {
        app.frame_data();
    }
    let s = &mut app.settings;
    match preset.schedule {
        Schedule::Linear { beta_min, beta_max } => {
            s.schedule.kind = ScheduleKind::Linear;
            s.schedule.beta_min = beta_min;
            s.schedule.beta_max = beta_max;
        }
        Schedule::Cosine { beta_cap } => {
            s.schedule.kind = ScheduleKind::Cosine;
            s.schedule.beta_cap = beta_cap;
        }
        Schedule::Constant { beta } => {
            s.schedule.kind = ScheduleKind::Constant;
            s.schedule.beta_constant = beta;
        }
    }
    s.set_process(preset.process);
    s.sampler.select(preset.sampler);
    s.sampler.steps = preset.steps;
    let v = preset.views;
    s.show_trails = v.trajectories;
    s.show_mesh = v.flow_grid;
    s.arrows = match (v.score_field, v.exact_score) {
        (false, _) => Arrows::Off,
        (true, true) => Arrows::Exact,
        (true, false) => Arrows::Learned,
    };
    let tab = if v.quality_chart {
        Some(ExploreTab::Quality)
    } else if v.density {
        Some(ExploreTab::Density)
    } else if v.naive_reverse {
        Some(ExploreTab::WhyScore)
    } else if v.guidance {
        Some(ExploreTab::Guidance)
    } else if v.weighting {
        Some(ExploreTab::Ablation)
    } else if v.paths {
        Some(ExploreTab::Paths)
    } else {
        None
    };
    s.teach.explore = tab.is_some();
    if let Some(tab) = tab {
        s.teach.tab = tab;
        // The view the lesson talks about computes itself (its results fill in as they come).
        match tab {
            ExploreTab::Quality => app.explore.quality.request_start(),
            ExploreTab::Density => app.explore.density.request_start(),
            ExploreTab::WhyScore => app.explore.why.request_start(),
            ExploreTab::Paths => app.explore.paths.request_start(),
            ExploreTab::Ablation if v.weighting => {
                app.explore.ablation.lesson = true;
                app.explore.ablation.weighting.request_start();
            }
            _ => {}
        }
    }
    if let Some(class) = preset.class {
        app.explore.guidance.class = class;
    }
    app.explore.guidance.scale = preset.guidance_scale;
    app.player.play_mode(if v.forward {
        Mode::Forward
    } else {
        Mode::Reverse
    });
}
