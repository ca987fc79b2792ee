//! Why the score, and why the reverse SDE: (a) running time backwards with the drift alone
//! (the ill-posed inverse heat equation) beside the reverse SDE from the same noise, as an
//! animation; (b) plain Langevin at t_min, annealed Langevin and the reverse SDE.

use egui::{RichText, Ui};

use super::{DATA_GREY, Inputs, PALETTE, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::export::ViewExport;
use crate::app::jobs::Task;
use crate::teach::MapSweep;
use crate::teach::export::{View, render_points, write_gif};
use crate::teach::naive::{
    LangevinComparison, LangevinConfig, NaiveComparison, NaiveConfig, ReverseRun, langevin_sweep,
    naive_spread, naive_sweep,
};

const PARTICLES: usize = 1000;
const FRAMES: usize = 48;

#[derive(Default)]
pub struct WhyScoreView {
    naive: Task<(NaiveComparison, &'static str)>,
    frame: usize,
    playing: bool,
    /// Seconds into the animation (frames advance with the clock).
    clock: f64,
    langevin: Task<(LangevinComparison, &'static str)>,
    export: ViewExport,
    /// A lesson asked for the drift-only comparison (started on the next frame).
    start_requested: bool,
}

impl WhyScoreView {
    /// Starts the drift-only comparison on the next frame (the lesson on it).
    pub fn request_start(&mut self) {
        if !self.naive.is_running() {
            self.start_requested = true;
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, inputs: &Inputs) {
        let ctx = ui.ctx().clone();
        if self.naive.poll(&ctx) {
            self.frame = 0;
            self.clock = 0.0;
            self.playing = true;
        }
        self.langevin.poll(&ctx);
        let data = &inputs.data[..inputs.data.len().min(2000)];

        ui.label(RichText::new("Running time backwards without the score").heading());
        note_ui(
            ui,
            &format!(
                "Left: undo the forward drift alone, dx = −½β x dt backwards. It only rescales the \
                 noise (by {:.0}× here): nothing pulls particles onto the data. Right: the reverse \
                 SDE from the same noise adds −β·score, which restores the structure.",
                naive_spread(&inputs.schedule, 1e-3)
            ),
        );
        if self.naive.controls_ui(ui, "Run both from the same noise")
            || std::mem::take(&mut self.start_requested)
        {
            let (model, label) = inputs.model();
            let schedule = inputs.schedule;
            // A solver step at a time (a browser keeps drawing meanwhile).
            self.naive.start_sweep(&ctx, move || {
                let cfg = NaiveConfig {
                    particles: PARTICLES,
                    frames: FRAMES,
                    ..NaiveConfig::default()
                };
                Ok(MapSweep {
                    sweep: naive_sweep(model, schedule, &cfg)?,
                    f: move |c| (c, label),
                })
            });
        }
        let count = self.naive.result.as_ref().map_or(0, |(c, _)| {
            c.naive.frames.len().min(c.reverse_sde.frames.len())
        });
        let result = self.naive.result.as_ref();
        self.export.ui(
            ui,
            "Export frames (GIF)",
            result.is_some(),
            &inputs.export_dir,
            |dir| match result {
                Some((c, _)) => export_gif(&dir.join("why_score.gif"), c, data),
                None => Err("nothing computed yet".into()),
            },
        );
        self.animate(ui, count);
        if let Some((c, label)) = &self.naive.result {
            let side = canvas_side(ui, 2).min(360.0);
            let k = self.frame.min(count.saturating_sub(1));
            let (t, naive) = frame_at(&c.naive, k);
            let (_, sde) = frame_at(&c.reverse_sde, k);
            ui.horizontal_top(|ui| {
                cloud_ui(
                    ui,
                    &format!("drift only · t = {t:.3} · rms {:.1}", rms(naive)),
                    side,
                    &[(data, DATA_GREY), (naive, PALETTE[3])],
                );
                cloud_ui(
                    ui,
                    &format!("reverse SDE ({label}) · t = {t:.3}"),
                    side,
                    &[(data, DATA_GREY), (sde, PALETTE[0])],
                );
            });
        }
        ui.separator();
        ui.label(RichText::new("Langevin dynamics: plain, annealed, reverse SDE").heading());
        note_ui(
            ui,
            "Plain Langevin follows the score at t_min only: where the data has no mass the \
             score is unknown, so particles started far away get stuck or mix slowly between \
             modes. Annealing from large noise down to t_min, or the reverse SDE, fixes it.",
        );
        if self.langevin.controls_ui(ui, "Run the three samplers") {
            let (model, label) = inputs.model();
            let schedule = inputs.schedule;
            self.langevin.start_sweep(&ctx, move || {
                let cfg = LangevinConfig {
                    particles: PARTICLES,
                    ..LangevinConfig::default()
                };
                Ok(MapSweep {
                    sweep: langevin_sweep(model, schedule, &cfg)?,
                    f: move |c| (c, label),
                })
            });
        }
        if let Some((c, label)) = &self.langevin.result {
            let side = canvas_side(ui, 3).min(300.0);
            ui.horizontal_top(|ui| {
                let runs = [
                    ("plain Langevin at t_min", &c.plain, PALETTE[3]),
                    ("annealed Langevin", &c.annealed, PALETTE[1]),
                    ("reverse SDE", &c.reverse_sde, PALETTE[0]),
                ];
                for (name, run, colour) in runs {
                    cloud_ui(
                        ui,
                        &format!("{name} · {} NFE", run.nfe),
                        side,
                        &[(data, DATA_GREY), (&run.samples, colour)],
                    );
                }
            });
            ui.label(RichText::new(format!("score: {label}")).weak());
        }
    }

    /// The last naive-vs-reverse run, once computed.
    pub fn naive_result(&self) -> Option<&NaiveComparison> {
        self.naive.result.as_ref().map(|r| &r.0)
    }

    pub fn is_running(&self) -> bool {
        self.naive.is_running() || self.langevin.is_running()
    }

    /// The last export's outcome.
    pub fn export_message(&self) -> Option<&Result<String, String>> {
        self.export.message.as_ref()
    }

    /// A frame slider with play/pause; frames advance at ~12 per second while playing.
    fn animate(&mut self, ui: &mut Ui, count: usize) {
        if count == 0 {
            return;
        }
        ui.horizontal(|ui| {
            let label = if self.playing { "Pause" } else { "▶ Play" };
            if ui.button(label).clicked() {
                self.playing = !self.playing;
                if self.playing && self.frame + 1 >= count {
                    self.frame = 0;
                    self.clock = 0.0;
                }
            }
            let slider = ui.add(egui::Slider::new(&mut self.frame, 0..=count - 1).text("frame"));
            if slider.changed() {
                self.playing = false;
                self.clock = self.frame as f64 / 12.0;
            }
        });
        if self.playing {
            self.clock += ui.input(|i| i.unstable_dt as f64).min(0.1);
            self.frame = ((self.clock * 12.0) as usize).min(count - 1);
            if self.frame + 1 >= count {
                self.playing = false;
            }
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(40));
        }
    }
}

fn frame_at(run: &ReverseRun, k: usize) -> (f64, &[Point]) {
    run.frames
        .get(k)
        .map_or((1.0, &[][..]), |(t, x)| (*t, x.as_slice()))
}

fn rms(points: &[Point]) -> f32 {
    let n = points.len().max(1) as f32;
    (points
        .iter()
        .map(|p| p[0] * p[0] + p[1] * p[1])
        .sum::<f32>()
        / n)
        .sqrt()
}

/// Side of each half of a GIF frame (pixels).
const GIF_SIDE: usize = 240;

/// The animation as a looping GIF: the drift-only run on the left, the reverse SDE on the
/// right, the data in grey behind both, one frame per snapshot.
fn export_gif(
    path: &std::path::Path,
    c: &NaiveComparison,
    data: &[Point],
) -> Result<String, String> {
    let view = View {
        min: [-super::VIEW_HALF; 2],
        max: [super::VIEW_HALF; 2],
    };
    let count = c.naive.frames.len().min(c.reverse_sde.frames.len());
    if count == 0 {
        return Err("the run kept no frames".into());
    }
    // Palette indices of `teach::export::PALETTE`: 7 grey, 3 red, 0 blue.
    let half = |points: &[Point], colour: u32| -> Vec<u8> {
        let mut all: Vec<Point> = data.to_vec();
        all.extend_from_slice(points);
        let mut labels = vec![7u32; data.len()];
        labels.resize(all.len(), colour);
        render_points(&all, Some(&labels), view, GIF_SIDE, GIF_SIDE, 1)
    };
    let frames: Vec<Vec<u8>> = (0..count)
        .map(|k| {
            let left = half(frame_at(&c.naive, k).1, 3);
            let right = half(frame_at(&c.reverse_sde, k).1, 0);
            let mut rgb = Vec::with_capacity(2 * left.len());
            for (l, r) in left
                .chunks_exact(3 * GIF_SIDE)
                .zip(right.chunks_exact(3 * GIF_SIDE))
            {
                rgb.extend_from_slice(l);
                rgb.extend_from_slice(r);
            }
            rgb
        })
        .collect();
    write_gif(path, 2 * GIF_SIDE as u16, GIF_SIDE as u16, &frames, 8)
        .map(|()| format!("wrote {} ({count} frames)", path.display()))
        .map_err(|e| e.to_string())
}
