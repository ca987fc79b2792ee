//! Memorisation: the ideal denoiser (the exact score of the training points) reproduces its
//! training set; the network generalises. Histograms of each sample's distance to the nearest
//! training point tell them apart; shrinking the training set makes the network memorise too.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};
use egui_plot::{Bar, BarChart, Legend, Plot};

use super::{DATA_GREY, Inputs, PALETTE, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::export::{ViewExport, write_table};
use crate::app::jobs::Task;
use crate::teach::MapSweep;
use crate::teach::denoiser::{DenoiserConfig, DenoiserReport, DenoiserSweep, Histogram};

pub struct MemoriseView {
    train_size: usize,
    task: Task<(DenoiserReport, Vec<Point>, &'static str)>,
    export: ViewExport,
}

impl Default for MemoriseView {
    fn default() -> Self {
        Self {
            train_size: 10_000,
            task: Task::default(),
            export: ViewExport::default(),
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
        let result = self.task.result.as_ref();
        self.export.ui(
            ui,
            "Export samples and histogram (CSV)",
            result.is_some(),
            &inputs.export_dir,
            |dir| match result {
                Some((report, _, _)) => export_report(dir, report),
                None => Err("nothing computed yet".into()),
            },
        );
        if let Some((report, train, label)) = &self.task.result {
            report_ui(ui, report, train, label);
        }
        retrain
    }

    /// Lets the tests use a small training set.
    pub fn set_train_size(&mut self, n: usize) {
        self.train_size = n;
    }

    /// The last comparison, once computed.
    pub fn report(&self) -> Option<&DenoiserReport> {
        self.task.result.as_ref().map(|r| &r.0)
    }

    pub fn is_running(&self) -> bool {
        self.task.is_running()
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    fn start(&mut self, ctx: &egui::Context, inputs: &Inputs) {
        // The first k points of a draw are themselves a random draw (`BuiltIn::sample`).
        let train: Vec<Point> = inputs.data[..self.train_size.min(inputs.data.len())].to_vec();
        let held_out = inputs.held_out(1000, 0);
        let (model, label) = inputs.model();
        let schedule = inputs.schedule;
        // Both runs take one solver step per job step (a browser keeps drawing meanwhile).
        self.task.start_sweep(ctx, move || {
            let sweep = DenoiserSweep::new(
                train.clone(),
                held_out,
                model,
                schedule,
                DenoiserConfig::default(),
            )?;
            Ok(MapSweep {
                sweep,
                f: move |report| (report, train.clone(), label),
            })
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

/// `memorisation.csv`: every point (`ideal`, `learned`, `held_out`) with its distance to the
/// nearest training point; `memorisation_histogram.csv`: the three histograms' counts per
/// bin, the last row (`bin_lo` = max, `bin_hi` = inf) the overflow.
fn export_report(dir: &std::path::Path, report: &DenoiserReport) -> Result<String, String> {
    let sides = [
        ("ideal", &report.ideal),
        ("learned", &report.learned),
        ("held_out", &report.held_out),
    ];
    let mut rows = Vec::new();
    for (name, side) in sides {
        for (p, d) in side.samples.iter().zip(&side.distances) {
            rows.push(format!("{name},{},{},{d}", p[0], p[1]));
        }
    }
    let samples = write_table(
        &dir.join("memorisation.csv"),
        "which,x,y,nearest_distance",
        &rows,
    )?;
    let h = &report.ideal.histogram;
    let w = h.bin_width();
    let count = |s: &Histogram, i: usize| s.counts.get(i).copied().unwrap_or(0);
    let mut bins: Vec<String> = (0..h.counts.len())
        .map(|i| {
            format!(
                "{},{},{},{},{}",
                i as f32 * w,
                (i + 1) as f32 * w,
                count(&report.ideal.histogram, i),
                count(&report.learned.histogram, i),
                count(&report.held_out.histogram, i)
            )
        })
        .collect();
    bins.push(format!(
        "{},inf,{},{},{}",
        h.max,
        report.ideal.histogram.overflow,
        report.learned.histogram.overflow,
        report.held_out.histogram.overflow
    ));
    let hist = write_table(
        &dir.join("memorisation_histogram.csv"),
        "bin_lo,bin_hi,ideal,learned,held_out",
        &bins,
    )?;
    Ok(format!("{samples}; {hist}"))
}
