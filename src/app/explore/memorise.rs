//! Memorisation: the ideal denoiser (the exact score of the training points) reproduces its
//! training set; the network generalises. Histograms of each sample's distance to the nearest
//! training point tell them apart; shrinking the training set makes the network memorise too.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, Legend, Plot};

use super::{DATA_GREY, Inputs, PALETTE, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::jobs::Task;
use crate::teach::denoiser::{DenoiserConfig, DenoiserReport, Histogram, compare};

pub struct MemoriseView {
    train_size: usize,
    task: Task<(DenoiserReport, Vec<Point>, &'static str)>,
}

impl Default for MemoriseView {
    fn default() -> Self {
        Self {
            train_size: 10_000,
            task: Task::default(),
        }
    }
}

impl MemoriseView {
    /// Draws the view; returns a training subset when the user asks to retrain on it.
    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs) -> Option<Arc<Vec<Point>>> {
        self.task.poll(ui.ctx());
        note_ui(
            ui,
            "The ideal denoiser uses the exact score of the training points themselves: it can \
             only reproduce them. The network, trained on the same points, should generalise: \
             its samples are as far from the training set as fresh data is.",
        );
        let max = inputs.data.len().max(10);
        self.train_size = self.train_size.clamp(10, max);
        let mut retrain = None;
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::Slider::new(&mut self.train_size, 10..=max)
                    .logarithmic(true)
                    .text("training points"),
            );
            if ui
                .button("Train the network on only these")
                .on_hover_text(
                    "replace the training data by this subset (the network keeps training): \
                     with a few dozen points it starts to memorise them",
                )
                .clicked()
            {
                retrain = Some(Arc::new(inputs.data[..self.train_size].to_vec()));
            }
        });
        if self
            .task
            .controls_ui(ui, "Sample ideal denoiser and network")
        {
            self.start(ui.ctx(), inputs);
        }
        if let Some((report, train, label)) = &self.task.result {
            report_ui(ui, report, train, label);
        }
        retrain
    }

    fn start(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        // The first k points of a draw are themselves a random draw (`BuiltIn::sample`).
        let train: Vec<Point> = inputs.data[..self.train_size.min(inputs.data.len())].to_vec();
        let held_out = inputs.held_out(1000, 0);
        let (model, label) = inputs.model();
        let schedule = inputs.schedule;
        self.task.start(ctx, move |progress| {
            let cfg = DenoiserConfig::default();
            let report = compare(&train, &held_out, model.as_ref(), schedule, &cfg, progress)?;
            Ok((report, train, label))
        });
    }
}

fn report_ui(ui: &mut Ui, report: &DenoiserReport, train: &[Point], label: &str) {
    let side = canvas_side(ui, 3).min(300.0);
    let shown = &train[..train.len().min(3000)];
    ui.horizontal_top(|ui| {
        cloud_ui(
            ui,
            "ideal denoiser",
            side,
            &[(shown, DATA_GREY), (&report.ideal.samples, PALETTE[1])],
        );
        cloud_ui(
            ui,
            label,
            side,
            &[(shown, DATA_GREY), (&report.learned.samples, PALETTE[0])],
        );
        ui.vertical(|ui| {
            ui.set_width(side);
            ui.label(RichText::new("distance to the nearest training point").strong());
            histogram_ui(ui, report, side);
        });
    });
    ui.label(
        RichText::new(format!(
            "median distance ÷ that of fresh data: ideal {:.2}, {label} {:.2} \
             (≈ 1 generalises, ≈ 0 memorises) · {} training points",
            report.ideal_memorisation_ratio(),
            report.learned_memorisation_ratio(),
            train.len()
        ))
        .strong(),
    );
}

fn histogram_ui(ui: &mut Ui, report: &DenoiserReport, side: f32) {
    let bars = |h: &Histogram, name: &str, colour: Color32| {
        let w = h.bin_width() as f64;
        let total = h.counts.iter().sum::<u32>().max(1) as f64;
        let bars = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar::new((i as f64 + 0.5) * w, c as f64 / total).width(w))
            .collect();
        BarChart::new(name, bars).color(colour)
    };
    Plot::new("memorisation histogram")
        .height(side)
        .legend(Legend::default())
        .x_axis_label("distance")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.bar_chart(bars(
                &report.held_out.histogram,
                "fresh data",
                Color32::GRAY,
            ));
            plot.bar_chart(bars(&report.ideal.histogram, "ideal", PALETTE[1]));
            plot.bar_chart(bars(&report.learned.histogram, "network", PALETTE[0]));
        });
}
