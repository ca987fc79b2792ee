//! The help overlay (F1 or ?): every shortcut, and one line on each part of the window.

use egui::{Grid, RichText};

use crate::app::App;

const SHORTCUTS: [(&str, &str); 11] = [
    ("Space", "play / pause"),
    ("F", "play the forward process (data → noise)"),
    ("R", "play the reverse process (noise → data)"),
    ("O", "switch between the SDE sampler and the ODE solver"),
    (". / ,", "one solver step on / back (pauses)"),
    ("← / →", "scrub the time"),
    ("P", "presentation mode"),
    ("G", "flow grid: how the ODE bends space"),
    ("Ctrl+Z", "undo the last stroke while drawing"),
    ("scroll, drag, double-click", "zoom, pan, reset the canvas"),
    ("F1 or ?", "this help (Esc closes it)"),
];

const VIEWS: [(&str, &str); 10] = [
    (
        "Canvas",
        "the particles at time t; trails follow a few of them; click one to follow it",
    ),
    ("Time scrubber", "any moment of the forward or reverse run"),
    (
        "Controls",
        "data (or draw your own), the noise schedule, the sampler, the network",
    ),
    (
        "Plots",
        "the training loss, the trainer's own check, and the schedule's α, σ, β, SNR",
    ),
    (
        "Quality vs steps",
        "how fast each sampler reaches the data, learned and exact score",
    ),
    (
        "Density",
        "p_t following the scrubber, and the model's density with its NLL",
    ),
    (
        "Memorisation",
        "the ideal denoiser of a few points gives them back",
    ),
    (
        "Guidance",
        "steer samples toward a class, with a classifier or without one",
    ),
    (
        "Why the score",
        "running time backwards without the score fails; Langevin needs annealing",
    ),
    (
        "Ablation",
        "two networks trained side by side, differing in one setting",
    ),
];

pub fn help_ui(app: &mut App, ctx: &egui::Context) {
    let mut open = true;
    egui::Window::new("Help")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            ui.label(RichText::new("Shortcuts").strong());
            Grid::new("help shortcuts").striped(true).show(ui, |ui| {
                for (key, what) in SHORTCUTS {
                    ui.label(RichText::new(key).monospace());
                    ui.label(what);
                    ui.end_row();
                }
            });
            ui.add_space(8.0);
            ui.label(RichText::new("What each part shows").strong());
            Grid::new("help views").striped(true).show(ui, |ui| {
                for (view, what) in VIEWS {
                    ui.label(RichText::new(view).strong());
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    if !open {
        app.help = false;
    }
}
