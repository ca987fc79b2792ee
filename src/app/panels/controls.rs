//! The left panel: data, schedule, network and training, sampler, view. In presentation
//! mode only what a class asks about stays: the data, β_max, the sampler and its steps.

use egui::{Color32, ComboBox, RichText, Slider, Ui};

use crate::math::Process;
use crate::math::solvers::SamplerKind;
use crate::nn::Weighting;
use crate::nn::{Activation, Embedding};
use crate::train::{BackendPref, Command, weighting_label};

use crate::app::canvas::class_colour;
use crate::app::datasets::{DRAW_CLASSES, Drawing, MIN_DRAWN, builtin_names};
use crate::app::player::Mode;
use crate::app::settings::{
    Arrows, BETA_CAP_RANGE, BETA_CONSTANT_RANGE, BETA_MAX_RANGE, BETA_MIN_RANGE, DataChoice,
    ForwardPaths, LR_RANGE, MAX_STEPS, ODE_SOLVERS, PARTICLES_RANGE, SDE_SAMPLERS, SPEED_RANGE,
    ScheduleKind, ScoreSource, Settings, ZOOM_RANGE, short_label,
};
use crate::app::{App, files, style};
use crate::data::Placement;

const WIDTHS: [usize; 5] = [32, 64, 128, 256, 512];
const BATCHES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];
const EMBEDDINGS: [Embedding; 3] = [
    Embedding::Sinusoidal { dim: 32 },
    Embedding::Sinusoidal { dim: 64 },
    Embedding::Scalar,
];

pub fn controls_ui(app: &mut App, ui: &mut Ui) {
    let presentation = app.settings.presentation;
    // Separate ids: each mode remembers its own width.
    egui::Panel::left(if presentation {
        "controls (presentation)"
    } else {
        "controls"
    })
    .frame(style::unfilled(egui::Frame::side_top_panel(ui.style())))
    .resizable(true)
    // Presentation: the canvas keeps at least three quarters of a 1280-wide window.
    .default_size(if presentation { 280.0 } else { 300.0 })
    .min_size(220.0)
    .show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.add_space(4.0);
            crate::app::teach_bar::teach_toggles_ui(app, ui);
            ui.separator();
            settings_notice_ui(app, ui);
            my_setup_ui(app, ui);
            if presentation {
                presentation_controls_ui(app, ui);
            } else {
                egui::CollapsingHeader::new("Data")
                    .default_open(true)
                    .show(ui, |ui| data_ui(app, ui));
                egui::CollapsingHeader::new("Noise schedule")
                    .default_open(true)
                    .show(ui, |ui| schedule_ui(app, ui));
                egui::CollapsingHeader::new("Sampling")
                    .default_open(true)
                    .show(ui, |ui| sampling_ui(app, ui));
                egui::CollapsingHeader::new("Network and training")
                    .default_open(true)
                    .show(ui, |ui| training_ui(app, ui));
                egui::CollapsingHeader::new("View")
                    .default_open(true)
                    .show(ui, |ui| view_ui(app, ui));
                egui::CollapsingHeader::new("Export")
                    .default_open(false)
                    .show(ui, |ui| crate::app::export::export_ui(app, ui));
            }
        });
    });
}

fn presentation_controls_ui(app: &mut App, ui: &mut Ui) {
    // Narrow rows, so the panel leaves the canvas three quarters of a 1280-wide window.
    ui.spacing_mut().slider_width = 120.0;
    data_picker_ui(app, ui);
    ui.separator();
    process_ui(app, ui);
    if app.settings.process().is_vp() {
        beta_max_ui(app, ui);
    }
    ui.separator();
    score_source_ui(app, ui);
    sampler_picker_ui(app, ui);
    steps_ui(&mut app.settings, ui);
    ui.separator();
    crash_ui(app, ui);
    if ui
        .button("Leave presentation")
        .on_hover_text("Shortcut: P")
        .clicked()
    {
        app.settings.presentation = false;
    }
}

/// While a lesson's or a view's preset stands in for the user's setup: the way back.
pub fn my_setup_ui(app: &mut App, ui: &mut Ui) {
    if app.settings.my_setup.is_none() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("↩ Back to my setup")
            .on_hover_text(
                "A lesson or a view changed the data and settings: put back yours (data, \
                 drawing, schedule, network, sampler, views)",
            )
            .clicked()
        {
            app.back_to_my_setup();
        }
        if ui
            .small_button("keep this one")
            .on_hover_text("Forget the setup from before the lesson")
            .clicked()
        {
            app.settings.my_setup = None;
        }
    });
}

/// Moving the data off the origin or widening it: what skipping standardisation does to a
/// diffusion model whose schedule is short. Applied when a slider is let go (each change
/// restarts training).
fn placement_ui(app: &mut App, ui: &mut Ui) {
    egui::CollapsingHeader::new("Move the data (why standardise?)")
        .id_salt("placement")
        .default_open(!app.settings.placement.is_standard())
        .show(ui, |ui| {
            let mut p = app.placement_draft.unwrap_or(app.settings.placement);
            let shift = ui
                .add(Slider::new(&mut p.shift, Placement::SHIFT_RANGE).text("centre x"))
                .on_hover_text("Move the data's centre away from the origin, where N(0, I) is");
            let scale = ui
                .add(
                    Slider::new(&mut p.scale, Placement::SCALE_RANGE)
                        .logarithmic(true)
                        .text("spread ×"),
                )
                .on_hover_text("Make the data wider (or narrower) than N(0, I)");
            let dragging = shift.dragged() || scale.dragged();
            app.placement_draft = dragging.then_some(p);
            let mut apply = !dragging && p != app.settings.placement;
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!p.is_standard(), egui::Button::new("standard"))
                    .on_hover_text("Centre 0, spread 1: what the models expect")
                    .clicked()
                {
                    p = Placement::STANDARD;
                    apply = true;
                }
            });
            if apply {
                app.set_placement(p);
            }
        });
}

/// The last file of a kind, where a dialog starts (None before the first).
pub fn last(path: &str) -> Option<&std::path::Path> {
    let path = path.trim();
    (!path.is_empty()).then(|| std::path::Path::new(path))
}

fn error_ui(ui: &mut Ui, message: &str) {
    ui.label(RichText::new(message).color(ui.visuals().error_fg_color));
}

/// Why the saved settings were not used as they were (shown in every mode until dismissed).
fn settings_notice_ui(app: &mut App, ui: &mut Ui) {
    if let Some(message) = app.settings_notice.clone() {
        ui.horizontal_wrapped(|ui| error_ui(ui, &message));
        if ui.small_button("dismiss").clicked() {
            app.settings_notice = None;
        }
        ui.separator();
    }
}

fn data_picker_ui(app: &mut App, ui: &mut Ui) {
    let current = match &app.settings.data {
        DataChoice::BuiltIn(name) => name.clone(),
        DataChoice::Csv(_) => format!("CSV: {}", app.data.label),
        DataChoice::Drawn(..) => "my drawing".to_owned(),
    };
    let current = if app.drawing.is_some() {
        "drawing…".to_owned()
    } else {
        current
    };
    let mut pick: Option<DataChoice> = None;
    let mut start_drawing = false;
    ComboBox::new("dataset", "Dataset")
        .selected_text(current)
        .show_ui(ui, |ui| {
            for name in builtin_names() {
                let selected = app.settings.data == DataChoice::BuiltIn(name.to_owned());
                if ui.selectable_label(selected, name).clicked() {
                    pick = Some(DataChoice::BuiltIn(name.to_owned()));
                }
            }
            ui.separator();
            if ui.selectable_label(false, "draw your own…").clicked() {
                start_drawing = true;
            }
        });
    if let Some(choice) = pick {
        app.drawing = None;
        app.set_data(choice);
    }
    if start_drawing {
        app.drawing = Some(Drawing::default());
    }
}

fn data_ui(app: &mut App, ui: &mut Ui) {
    data_picker_ui(app, ui);
    let units = if app.settings.placement.is_standard() {
        "standardised".to_owned()
    } else {
        format!("standardised, then{}", app.settings.placement.describe())
    };
    ui.label(format!(
        "{} points, {units}, {}",
        app.data.points.len(),
        app.data.classes_text()
    ))
    .on_hover_text("Classes come from a CSV file's label column or a drawing's colours");

    placement_ui(app, ui);
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Open CSV…")
            .on_hover_text(
                "x,y per line (optional header and label column). Or drop the file on the window.",
            )
            .clicked()
            && let Some(path) = files::pick_open(files::Kind::Csv, last(&app.settings.csv_path))
        {
            app.open_file(&path);
        }
        if let DataChoice::Drawn(points, labels) = &app.settings.data
            && ui
                .button("Save drawing as CSV…")
                .on_hover_text("x,y,label per line, in canvas units; open it again with Open CSV…")
                .clicked()
            && let Some(path) = files::pick_save(
                files::Kind::Csv,
                "drawing.csv",
                last(&app.settings.csv_path),
            )
        {
            let labels = (labels.len() == points.len()).then_some(labels.as_slice());
            app.data_error = match crate::data::write_csv(&path, points, labels) {
                Ok(()) => {
                    app.settings.csv_path = path.display().to_string();
                    None
                }
                Err(e) => Some(format!("the drawing was not saved: {e}")),
            };
        }
    });
    if let Some(message) = app.data_error.clone() {
        ui.horizontal_wrapped(|ui| {
            error_ui(ui, &message);
        });
        ui.label(
            RichText::new(format!("still using {}", app.data.label))
                .small()
                .weak(),
        );
        if ui.small_button("dismiss").clicked() {
            app.data_error = None;
        }
    }

    if let Some(drawing) = app.drawing.as_mut() {
        ui.add_space(4.0);
        ui.label(
            RichText::new("Drag on the canvas to paint points.")
                .color(Color32::from_rgb(255, 190, 90)),
        );
        ui.horizontal_wrapped(|ui| {
            ui.label("colour (class)").on_hover_text(
                "A point's class is the colour it is painted in; two or more colours let the \
                 Guidance view steer samples toward one of them",
            );
            for c in 0..DRAW_CLASSES {
                let text = RichText::new(format!("● {c}"))
                    .color(class_colour(c))
                    .strong();
                ui.selectable_value(&mut drawing.class, c, text);
            }
        });
        let counts = drawing.counts();
        let used = counts.iter().filter(|&&n| n > 0).count();
        let shares = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c}: {n}"))
            .collect::<Vec<_>>()
            .join(" · ");
        ui.label(if used > 1 {
            format!("{} points drawn ({shares})", drawing.len())
        } else {
            format!("{} points drawn", drawing.len())
        });
        let mut train_now = false;
        let mut cancel = false;
        ui.horizontal(|ui| {
            if ui.button("Clear").clicked() {
                drawing.clear();
            }
            if ui
                .add_enabled(
                    !drawing.strokes.is_empty(),
                    egui::Button::new("Undo stroke"),
                )
                .on_hover_text("Shortcut: Ctrl+Z")
                .clicked()
            {
                drawing.undo_stroke();
            }
            train_now = ui
                .add_enabled(
                    drawing.len() >= MIN_DRAWN,
                    egui::Button::new("Train on drawing"),
                )
                .on_disabled_hover_text(format!("draw at least {MIN_DRAWN} points"))
                .clicked();
            cancel = ui.button("Cancel").clicked();
        });
        if train_now {
            let drawing = app.drawing.take().unwrap_or_default();
            app.set_data(DataChoice::Drawn(drawing.points, drawing.labels));
        } else if cancel {
            app.drawing = None;
        }
    }
}

fn beta_max_ui(app: &mut App, ui: &mut Ui) {
    let s = &mut app.settings.schedule;
    match s.kind {
        ScheduleKind::Linear => {
            ui.add(
                Slider::new(&mut s.beta_max, BETA_MAX_RANGE)
                    .logarithmic(true)
                    .text("β_max"),
            )
            .on_hover_text("β at t = 1. Too small and the data never becomes noise.");
        }
        ScheduleKind::Cosine => {
            ui.add(
                Slider::new(&mut s.beta_cap, BETA_CAP_RANGE)
                    .logarithmic(true)
                    .text("β cap"),
            );
        }
        ScheduleKind::Constant => {
            ui.add(
                Slider::new(&mut s.beta_constant, BETA_CONSTANT_RANGE)
                    .logarithmic(true)
                    .text("β"),
            );
        }
    }
    noise_check_ui(app, ui);
}

/// The forward check: did x at t = 1 become N(0, I)?
fn noise_check_ui(app: &App, ui: &mut Ui) {
    let Some(check) = app.player.noise_check() else {
        ui.label(RichText::new("checking x₁ against N(0, I)…").weak());
        return;
    };
    let (text, color) = if check.reached_noise() {
        (
            format!(
                "x₁ ≈ N(0, I): SNR(1) = {:.0e}, sw2 = {:.1} × floor",
                check.snr_end,
                check.ratio()
            ),
            Color32::from_rgb(110, 200, 110),
        )
    } else {
        (
            format!(
                "x₁ is NOT N(0, I): α(1) = {:.2}, SNR(1) = {:.2}, sw2 = {:.1} × floor",
                check.alpha_end,
                check.snr_end,
                check.ratio()
            ),
            ui.visuals().error_fg_color,
        )
    };
    ui.label(RichText::new(text).color(color)).on_hover_text(
        "Reverse sampling starts from N(0, I), so the forward process must end there. SNR(1) = \
         α(1)²/σ(1)² is the share of the data left in x at t = 1 (it must be below 0.01); sw2 \
         is the sliced W₂ between x₁ (20 000 points) and a fresh N(0, I) draw, as a multiple of \
         the same distance between two N(0, I) draws.",
    );
}

/// Diffusion or flow matching: what the network learns and the canvas shows. A switch starts
/// training over (the network learns another target).
fn process_ui(app: &mut App, ui: &mut Ui) {
    let current = app.settings.process();
    ui.horizontal_wrapped(|ui| {
        ui.label("Process");
        for (p, short, hover) in [
            (
                Process::Vp,
                "Diffusion",
                "The VP-SDE: data dissolves along a curved path set by β(t); the network learns \
                 the noise ε̂ (the score)",
            ),
            (
                Process::Fm,
                "Flow matching",
                "Straight paths x_t = (1 − t)·x₀ + t·ε; the network learns the velocity \
                 v = ε − x₀. Training starts over.",
            ),
        ] {
            if ui
                .selectable_label(current == p, short)
                .on_hover_text(hover)
                .clicked()
                && current != p
            {
                app.settings.set_process(p);
            }
        }
    });
}

fn schedule_ui(app: &mut App, ui: &mut Ui) {
    process_ui(app, ui);
    if app.settings.process() == Process::Fm {
        ui.label(
            RichText::new(
                "Flow matching has no β: x_t = (1 − t)·x₀ + t·ε, so x₁ is exactly N(0, I) and \
                 the network learns v = ε − x₀. Diffusion's β schedule is kept for when you switch back.",
            )
            .small()
            .weak(),
        );
        return;
    }
    let s = &mut app.settings.schedule;
    ui.horizontal(|ui| {
        for kind in ScheduleKind::ALL {
            ui.selectable_value(&mut s.kind, kind, kind.label());
        }
    });
    match s.kind {
        ScheduleKind::Linear => {
            ui.add(
                Slider::new(&mut s.beta_min, BETA_MIN_RANGE)
                    .logarithmic(true)
                    .text("β_min"),
            )
            .on_hover_text("β at t = 0");
            if s.beta_max < s.beta_min {
                s.beta_max = s.beta_min;
            }
            ui.label(
                RichText::new("β(t) = β_min + t (β_max − β_min)")
                    .small()
                    .weak(),
            );
        }
        ScheduleKind::Cosine => {
            let cap_time = s.schedule().cap_time().unwrap_or(1.0);
            ui.label(
                RichText::new(format!(
                    "cosine β diverges at t = 1: capped at {:.0} from t = {:.3}",
                    s.beta_cap, cap_time
                ))
                .small()
                .weak(),
            );
        }
        ScheduleKind::Constant => {
            ui.label(
                RichText::new("constant β: the Ornstein–Uhlenbeck process")
                    .small()
                    .weak(),
            );
        }
    }
    beta_max_ui(app, ui);
}

/// The reverse sampler as an explicit pair: an SDE sampler and an ODE solver, both shown,
/// one running. The toggle (here, on the canvas, or O) flips between the two on the same time
/// grid and from the same noise; it changes nothing else.
fn sampler_picker_ui(app: &mut App, ui: &mut Ui) {
    let process = app.settings.process();
    let s = &mut app.settings.sampler;
    let sde = s.is_sde();
    let mut side = |ui: &mut Ui, is_sde: bool| {
        let (name, id, list, choice) = if is_sde {
            ("SDE", "sampler", &SDE_SAMPLERS[..], s.sde_choice())
        } else {
            ("ODE", "solver", &ODE_SOLVERS[..], s.ode_choice())
        };
        // Wrapped: in presentation mode the large text must not widen the panel (the canvas
        // keeps three quarters of the window).
        ui.horizontal_wrapped(|ui| {
            let hover = match (is_sde, process) {
                (true, Process::Vp) => {
                    "Run the stochastic sampler: noise is injected at every step (jagged paths)"
                }
                (false, Process::Vp) => {
                    "Run the deterministic solver of the probability-flow ODE (smooth paths)"
                }
                (true, Process::Fm) => {
                    "Run the reverse SDE of the same path (score from the velocity, noise \
                     √(2t)): jagged paths, the same marginals"
                }
                (false, Process::Fm) => {
                    "Integrate the learned velocity dx/dt = v (smooth, nearly straight paths)"
                }
            };
            if ui
                .selectable_label(sde == is_sde, name)
                .on_hover_text(format!("{hover}. Shortcut: O"))
                .clicked()
            {
                s.set_family(is_sde);
            }
            // Flow matching offers the kinds defined on its path; a VP-only choice runs as its
            // counterpart there (`SamplerKind::on`), which is what the box shows.
            let mut kind = choice.on(process);
            let shown = kind;
            ComboBox::new(id, id)
                .selected_text(short_label(kind))
                .show_ui(ui, |ui| {
                    for k in list.iter().filter(|k| k.supports(process)) {
                        ui.selectable_value(&mut kind, *k, short_label(*k));
                    }
                });
            let kind = if kind == shown { choice } else { kind };
            if kind != choice {
                if is_sde {
                    s.choose_sde(kind);
                } else {
                    s.choose_ode(kind);
                }
            }
        });
    };
    side(ui, true);
    side(ui, false);
    if s.kind.on(process) == SamplerKind::Ddim {
        ui.add(Slider::new(&mut s.eta, 0.0..=1.0).text("η"))
            .on_hover_text("0: deterministic (an ODE solver); 1: DDPM's noise");
    }
}

fn steps_ui(settings: &mut Settings, ui: &mut Ui) {
    ui.add(
        Slider::new(&mut settings.sampler.steps, 1..=MAX_STEPS)
            .logarithmic(true)
            .text("steps"),
    )
    .on_hover_text("Sampler steps from t = 1 to t_min");
}

fn score_source_ui(app: &mut App, ui: &mut Ui) {
    ui.horizontal(|ui| {
        ui.label("Score");
        ui.selectable_value(
            &mut app.settings.score_source,
            ScoreSource::Learned,
            "learned",
        )
        .on_hover_text("The network being trained (its EMA weights)");
        ui.selectable_value(&mut app.settings.score_source, ScoreSource::Exact, "exact")
            .on_hover_text(
                "The exact score of the training points: the ideal denoiser. It reproduces \
                 the training points themselves (memorisation).",
            );
    });
}

fn sampling_ui(app: &mut App, ui: &mut Ui) {
    score_source_ui(app, ui);
    sampler_picker_ui(app, ui);
    steps_ui(&mut app.settings, ui);
    ui.horizontal(|ui| {
        let label = ui.label("Noise seed");
        ui.add(egui::DragValue::new(&mut app.settings.sampler.seed))
            .labelled_by(label.id)
            .on_hover_text("The same seed gives SDE and ODE runs the same starting noise");
    });
    ui.add(
        Slider::new(&mut app.settings.particles, PARTICLES_RANGE)
            .logarithmic(true)
            .text("particles"),
    );
    ui.add(
        Slider::new(&mut app.settings.speed, SPEED_RANGE)
            .logarithmic(true)
            .text("speed"),
    );
    ui.checkbox(&mut app.settings.auto_loop, "Loop forward ↔ reverse")
        .on_hover_text("Play forward, then reverse, then again");
    ui.horizontal(|ui| {
        ui.label("Forward");
        ui.selectable_value(
            &mut app.settings.forward_paths,
            ForwardPaths::Exact,
            "exact marginals",
        )
        .on_hover_text("x_t = α(t) x₀ + σ(t) ε with one ε per particle");
        ui.selectable_value(
            &mut app.settings.forward_paths,
            ForwardPaths::EulerMaruyama,
            "EM paths",
        )
        .on_hover_text("Euler–Maruyama paths of dx = −½β x dt + √β dW");
    });
}

/// The network and optimiser settings. Each edits `app.settings.train` only: the app's
/// `sync_training` hands the change to the trainer, which keeps training or starts over.
fn training_ui(app: &mut App, ui: &mut Ui) {
    let train = &mut app.settings.train;
    ComboBox::new("width", "Width")
        .selected_text(train.net.width.to_string())
        .show_ui(ui, |ui| {
            for w in WIDTHS {
                ui.selectable_value(&mut train.net.width, w, w.to_string());
            }
        });
    ComboBox::new("depth", "Hidden layers")
        .selected_text(train.net.depth.to_string())
        .show_ui(ui, |ui| {
            for d in 1..=6 {
                ui.selectable_value(&mut train.net.depth, d, d.to_string());
            }
        });
    ComboBox::new("activation", "Activation")
        .selected_text(train.net.activation.name())
        .show_ui(ui, |ui| {
            for a in Activation::ALL {
                ui.selectable_value(&mut train.net.activation, a, a.name());
            }
        });
    ComboBox::new("embedding", "Time embedding")
        .selected_text(embedding_label(train.net.embedding))
        .show_ui(ui, |ui| {
            for e in EMBEDDINGS {
                ui.selectable_value(&mut train.net.embedding, e, embedding_label(e));
            }
        });
    ComboBox::new("batch", "Batch")
        .selected_text(train.batch.to_string())
        .show_ui(ui, |ui| {
            for b in BATCHES {
                ui.selectable_value(&mut train.batch, b, b.to_string());
            }
        });
    ComboBox::new("backend", "Trains on")
        .selected_text(train.backend.label())
        .show_ui(ui, |ui| {
            for b in BackendPref::ALL {
                ui.selectable_value(&mut train.backend, b, b.label());
            }
        })
        .response
        .on_hover_text(
            "auto: the GPU when it is a real one; a software adapter such as lavapipe is \
             slower than the CPU backend. Changing it starts over.",
        );
    ui.add_enabled_ui(app.settings.process().is_vp(), |ui| {
        loss_weighting_ui(ui, &mut app.settings.train.weighting)
    })
    .response
    .on_disabled_hover_text("Flow matching's loss is the plain squared error, t uniform");
    let train = &mut app.settings.train;
    ui.add(
        Slider::new(&mut train.lr, LR_RANGE)
            .logarithmic(true)
            .text("learning rate"),
    )
    .on_hover_text("Takes effect at once; training goes on from the current weights");

    ui.horizontal(|ui| {
        let paused = app.train.paused;
        if ui
            .button(if paused { "▶ Resume" } else { "Pause" })
            .on_hover_text("Pause or resume training")
            .clicked()
        {
            app.train.paused = !paused;
            app.train.paused_reason = None;
            app.training.send(if paused {
                Command::Resume
            } else {
                Command::Pause
            });
        }
        if ui
            .button("Reset")
            .on_hover_text("Start over from fresh weights drawn with this seed")
            .clicked()
        {
            app.reset_training();
        }
        let label = ui.label("seed");
        ui.add(egui::DragValue::new(&mut app.settings.train.seed))
            .labelled_by(label.id);
    });
    if let Some(reason) = app.train.paused_reason.clone() {
        error_ui(ui, &format!("Training paused: {reason}"));
    }
    if let Some(message) = app.train.error.clone() {
        ui.horizontal_wrapped(|ui| error_ui(ui, &message));
        if ui.small_button("dismiss").clicked() {
            app.train.error = None;
        }
    }
    crash_ui(app, ui);
    crate::app::export::weights_ui(app, ui);
    ui.label(
        RichText::new(format!(
            "{} parameters · EMA weights drive sampling",
            app.train.params
        ))
        .small()
        .weak(),
    );
}

fn loss_weighting_ui(ui: &mut Ui, weighting: &mut Weighting) {
    ComboBox::new("weighting", "Loss weighting")
        .selected_text(weighting_label(*weighting))
        .show_ui(ui, |ui| {
            for w in Weighting::ALL {
                ui.selectable_value(weighting, w, weighting_label(w));
            }
        });
}

/// A crashed training thread: its message and a way back (shown in every mode).
fn crash_ui(app: &mut App, ui: &mut Ui) {
    if let Some(message) = app.train.crashed.clone() {
        error_ui(ui, &format!("Training crashed: {message}"));
        if ui.button("Restart training").clicked() {
            let ctx = ui.ctx().clone();
            app.restart_training(&ctx);
        }
    }
}

fn embedding_label(e: Embedding) -> String {
    match e {
        Embedding::Sinusoidal { dim } => format!("sinusoidal {dim}"),
        Embedding::Scalar => "scalar t".to_owned(),
    }
}

fn view_ui(app: &mut App, ui: &mut Ui) {
    let s = &mut app.settings;
    ui.checkbox(&mut s.show_data, "Show the data faintly");
    ui.checkbox(&mut s.show_trails, "Trajectories of a few particles");
    ui.checkbox(&mut s.show_mesh, "Flow grid (how the ODE bends space)")
        .on_hover_text(
            "A grid of lines at t = 1 carried by the ODE flow to the time shown: straight lines \
             bend where the flow gathers noise onto the data. Shortcut: G",
        );
    ui.checkbox(&mut s.axis_ticks, "Axis ticks")
        .on_hover_text("Numbers on the canvas grid, in the model's (standardised) units");
    ComboBox::new("arrows", "Score arrows")
        .selected_text(s.arrows.label())
        .show_ui(ui, |ui| {
            for a in Arrows::ALL {
                ui.selectable_value(&mut s.arrows, a, a.label());
            }
        })
        .response
        .on_hover_text("σ·∇log p_t (= −ε_θ) on a grid at the current t");
    ui.add(
        Slider::new(&mut s.zoom, ZOOM_RANGE)
            .logarithmic(true)
            .text("zoom"),
    )
    .on_hover_text("Or scroll on the canvas; double-click it to reset");
    ui.horizontal(|ui| {
        ui.checkbox(&mut s.dark, "Dark");
        ui.checkbox(&mut s.presentation, "Presentation")
            .on_hover_text("Large text, large canvas, fewer controls. Shortcut: P");
    });
    ui.add_space(6.0);
    ui.label(
        RichText::new(
            "Keys: space play/pause · F forward · R reverse · O ODE/SDE · ←/→ scrub · \
             . / , one step · G flow grid · P presentation · F1 or ? help",
        )
        .small()
        .weak(),
    );
    if ui
        .small_button("Reset all settings")
        .on_hover_text("Back to the defaults (training restarts)")
        .clicked()
    {
        let presentation = app.settings.presentation;
        app.settings = Settings {
            presentation,
            ..Settings::default()
        };
        app.sync_training();
        app.reset_training();
        app.set_data(app.settings.data.clone());
        app.player.play_mode(Mode::Forward);
    }
}
