//! Export from the UI: the canvas as PNG, the animation as GIF, the particles as CSV, and
//! the network's weights saved or loaded (safetensors). A bad file is refused with its reason
//! before anything reaches the trainer, so the running model stays as it was.

use std::path::PathBuf;
use std::sync::Arc;

use egui::{Color32, RichText, Ui};

use crate::Point;
use crate::app::jobs::Task;
use crate::app::player::Colors;
use crate::app::{App, Mode, files};
use crate::teach::export::{BACKGROUND, View, encode_gif, encode_png, write_png};
use crate::train::Command;

const PNG_SIDE: usize = 900;
const GIF_SIDE: usize = 420;
const GIF_FRAMES: usize = 40;
/// GIF frame delay in hundredths of a second.
const GIF_DELAY_CS: u16 = 8;

#[derive(Default)]
pub struct ExportState {
    /// The last outcome: Ok(what was written) or Err(why not).
    pub message: Option<Result<String, String>>,
    task: Task<String>,
    /// Where a screen capture leaves its outcome (it completes a frame later).
    captured: Arc<std::sync::Mutex<Option<Result<String, String>>>>,
}

/// One frame to rasterise: particles and their colours.
struct Still {
    points: Arc<Vec<Point>>,
    colors: Colors,
}

pub fn export_ui(app: &mut App, ui: &mut Ui) {
    if app.export.task.poll(ui.ctx())
        && let Some(done) = app.export.task.result.take()
    {
        app.export.message = Some(Ok(done));
    }
    if let Some(e) = app.export.task.error.take() {
        app.export.message = Some(Err(e));
    }
    if let Some(done) = app.export.captured.lock().ok().and_then(|mut c| c.take()) {
        app.export.message = Some(done);
    }
    ui.horizontal_wrapped(|ui| {
        let dir = absolute(&app.settings.teach.export_dir);
        ui.label("Folder")
            .on_hover_text("Where exports are written");
        ui.label(RichText::new(dir.display().to_string()).weak());
        if ui.small_button("Choose…").clicked()
            && let Some(folder) = files::pick_folder(Some(&dir))
        {
            app.settings.teach.export_dir = folder.display().to_string();
        }
    });
    ui.horizontal_wrapped(|ui| {
        let busy = app.export.task.is_running();
        if ui
            .add_enabled(!busy, egui::Button::new("Screen PNG"))
            .on_hover_text("Exactly what the canvas shows now, captions and all")
            .clicked()
        {
            export_screen(app, ui.ctx());
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Canvas PNG"))
            .on_hover_text("The particles alone, redrawn at 900 × 900")
            .clicked()
        {
            export_png(app, ui.ctx());
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Animation GIF"))
            .clicked()
        {
            export_gif(app, ui.ctx());
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Samples CSV"))
            .clicked()
        {
            export_csv(app);
        }
    });
    if let Some(f) = app.export.task.progress() {
        ui.add(egui::ProgressBar::new(f as f32).text("writing…"));
    }
    message_ui(app, ui);
}

/// The weights row: save and load through the system's dialogs (or drop a file on the
/// window); the last file is named.
pub fn weights_ui(app: &mut App, ui: &mut Ui) {
    ui.horizontal(|ui| {
        let last = absolute(&app.settings.weights_path);
        if ui
            .button("Save weights…")
            .on_hover_text("A safetensors file; `diffusion-playground sample --model` reads it")
            .clicked()
            && let Some(path) = save_weights_to(&last)
        {
            app.settings.weights_path = path.display().to_string();
            app.training.send(Command::Save {
                path,
                dataset: app.data.label.clone(),
                normalization: app.data.normalization,
            });
            app.export.message = None;
        }
        if ui
            .button("Load weights…")
            .on_hover_text("A network saved by the app. Or drop the file on the window.")
            .clicked()
            && let Some(path) = files::pick_open(files::Kind::Weights, Some(&last))
        {
            app.open_file(&path);
        }
    });
    message_ui(app, ui);
}

/// Where "Save weights…" writes: the system's save dialog, or in a browser a download.
fn save_weights_to(last: &std::path::Path) -> Option<PathBuf> {
    let name = file_name(last, "playground.safetensors");
    if cfg!(target_arch = "wasm32") {
        Some(PathBuf::from(name))
    } else {
        files::pick_save(files::Kind::Weights, &name, Some(last))
    }
}

/// A path as the user should see it: absolute (a relative one is under the launch folder).
fn absolute(path: &str) -> PathBuf {
    let path = PathBuf::from(path.trim());
    std::path::absolute(&path).unwrap_or(path)
}

fn file_name(path: &std::path::Path, default: &str) -> String {
    path.file_name()
        .map_or_else(|| default.to_owned(), |n| n.to_string_lossy().into_owned())
}

fn message_ui(app: &App, ui: &mut Ui) {
    match &app.export.message {
        Some(Ok(m)) => {
            ui.label(RichText::new(m).weak());
        }
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(Color32::from_rgb(255, 120, 100)));
        }
        None => {}
    }
}

/// Reads a weights file and hands its parameters to the trainer. The file is checked here
/// first (format, layout, finite values), so a bad one never reaches the running model.
pub fn load_weights(app: &mut App) {
    let path = PathBuf::from(app.settings.weights_path.trim());
    let file = path.display().to_string();
    let parsed = crate::nn::weights::load(&path).map_err(|e| e.to_string());
    adopt_weights(app, &file, path, parsed);
}

/// The same for a file's bytes (a browser hands over bytes, not a path).
#[cfg(target_arch = "wasm32")]
pub fn load_weights_bytes(app: &mut App, name: &str, bytes: &[u8]) {
    let parsed = crate::nn::weights::from_bytes(bytes, name).map_err(|e| e.to_string());
    adopt_weights(app, name, PathBuf::from(name), parsed);
}

/// Hands a checked weights file to the trainer, or says why not (the model stays as it was).
fn adopt_weights(
    app: &mut App,
    file: &str,
    path: PathBuf,
    parsed: Result<crate::nn::SavedModel, String>,
) {
    let refused = |why: String| {
        Err(format!(
            "not loaded: {why} (the running model is unchanged)"
        ))
    };
    let checked = parsed.and_then(|saved| {
        crate::nn::NetModel::from_saved(&saved)
            .map(|_| saved)
            .map_err(|e| format!("{file}: {e}"))
    });
    let outcome = match checked {
        Err(e) => refused(e),
        Ok(saved) if saved.config.is_conditional() => refused(format!(
            "{file} holds a class-conditional network; the app trains unconditional ones"
        )),
        Ok(saved) => {
            let mut note = String::new();
            if saved.config.process != app.settings.process() {
                note.push_str(&format!(" (switched to {})", saved.config.process.label()));
            }
            if saved.config != app.settings.train.net {
                // Adopt the file's architecture (and process): rebuild, then load into the
                // new network.
                app.settings.train.net = saved.config.clone();
                app.sync_training();
                note.push_str(" (network settings taken from the file)");
            }
            if saved.schedule != app.settings.schedule.schedule() {
                note.push_str(&format!("; it was trained with {:?}", saved.schedule));
            }
            let (steps, dataset) = (saved.steps, saved.dataset.clone());
            app.training.send(Command::LoadParams {
                path,
                params: Arc::new(saved.params),
                steps,
            });
            // The file's dataset name is only shown, never opened: the app trains on the
            // data chosen in the data panel. Anything but a built-in name is the file's own
            // text, so it is shown escaped and cut short.
            let dataset = match crate::data::BuiltIn::from_name(&dataset) {
                Some(builtin) => builtin.name().to_owned(),
                None => crate::fsutil::quoted(&dataset, 40),
            };
            Ok(format!("loading {file} ({steps} steps on {dataset}){note}"))
        }
    };
    app.export.message = Some(outcome);
}

#[cfg(not(target_arch = "wasm32"))]
fn out_path(app: &App, name: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(app.settings.teach.export_dir.trim());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    Ok(dir.join(name))
}

fn still(app: &App) -> Result<Still, String> {
    let frame = app.player.frame(&app.settings);
    // Particles on the GPU come back once, for the file.
    let points = match &frame.resident {
        Some(gpu) => std::sync::Arc::new(
            gpu.read()
                .map_err(|e| format!("cannot read the particles from the GPU: {e}"))?,
        ),
        None => frame.points,
    };
    Ok(Still {
        points,
        colors: frame.colors,
    })
}

/// Exactly what is on screen in the canvas (particles, trails, arrows, captions): egui's
/// capture of the next frame, cropped to the canvas, as `screen-NNN.png` (never over an
/// earlier one).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn export_screen(app: &mut App, ctx: &egui::Context) {
    let Some(rect) = app.canvas_rect() else {
        return app.export.message = Some(Err("the canvas has not been drawn yet".into()));
    };
    let path = match out_path(app, "").map(|dir| free_name(&dir, "screen", "png")) {
        Ok(p) => p,
        Err(e) => return app.export.message = Some(Err(e)),
    };
    let slot = Arc::clone(&app.export.captured);
    let ppp = ctx.pixels_per_point();
    let repaint = ctx.clone();
    app.export.message = Some(Ok("capturing the screen…".into()));
    ctx.request_screenshot(move |image| {
        let outcome = write_capture(&path, &image, rect, ppp);
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(outcome);
        }
        repaint.request_repaint();
    });
}

/// In a browser: the same picture, offered as a download.
#[cfg(target_arch = "wasm32")]
pub(crate) fn export_screen(app: &mut App, ctx: &egui::Context) {
    let Some(rect) = app.canvas_rect() else {
        return app.export.message = Some(Err("the canvas has not been drawn yet".into()));
    };
    let ppp = ctx.pixels_per_point();
    app.export.message = Some(Ok("capturing the screen: a download link follows".into()));
    ctx.request_screenshot(move |image| {
        if let Ok((w, h, rgb)) = capture_rgb(&image, rect, ppp)
            && let Ok(png) = crate::teach::export::encode_png(w, h, &rgb)
        {
            files::download("screen.png", png);
        }
    });
}

/// The part of a screen capture under `rect` (in points), as a PNG.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_capture(
    path: &std::path::Path,
    image: &egui::ColorImage,
    rect: egui::Rect,
    pixels_per_point: f32,
) -> Result<String, String> {
    let (w, h, rgb) = capture_rgb(image, rect, pixels_per_point)?;
    write_png(path, w, h, &rgb).map_err(|e| e.to_string())?;
    Ok(format!("wrote {}", path.display()))
}

/// The part of a screen capture under `rect` (in points) as RGB bytes, with its size.
fn capture_rgb(
    image: &egui::ColorImage,
    rect: egui::Rect,
    pixels_per_point: f32,
) -> Result<(u32, u32, Vec<u8>), String> {
    let screen = egui::Rect::from_min_size(
        egui::Pos2::ZERO,
        egui::vec2(image.width() as f32, image.height() as f32) / pixels_per_point,
    );
    let rect = rect.intersect(screen);
    if !rect.is_positive() {
        return Err("the canvas is not on screen".into());
    }
    let part = image.region(&rect, Some(pixels_per_point));
    let rgb = part
        .pixels
        .iter()
        .flat_map(|c| [c.r(), c.g(), c.b()])
        .collect();
    Ok((part.width() as u32, part.height() as u32, rgb))
}

/// `dir/stem-NNN.ext` with the first number not taken.
#[cfg(not(target_arch = "wasm32"))]
fn free_name(dir: &std::path::Path, stem: &str, ext: &str) -> PathBuf {
    (1..)
        .map(|n| dir.join(format!("{stem}-{n:03}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("{stem}.{ext}")))
}

/// Where an export goes: a file in the export folder, or in a browser a download.
enum Target {
    #[cfg(not(target_arch = "wasm32"))]
    File(PathBuf),
    #[cfg(target_arch = "wasm32")]
    Download(&'static str),
}

impl Target {
    fn named(app: &App, name: &'static str) -> Result<Self, String> {
        #[cfg(not(target_arch = "wasm32"))]
        return out_path(app, name).map(Target::File);
        #[cfg(target_arch = "wasm32")]
        {
            let _ = app;
            Ok(Target::Download(name))
        }
    }

    /// Writes the bytes (atomically) or offers them; says what happened.
    fn deliver(self, bytes: Vec<u8>) -> Result<String, crate::teach::TeachError> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Target::File(path) => {
                crate::teach::export::write_bytes(&path, &bytes)?;
                Ok(format!("wrote {}", path.display()))
            }
            #[cfg(target_arch = "wasm32")]
            Target::Download(name) => {
                files::download(name, bytes);
                Ok(format!("{name}: a download link follows"))
            }
        }
    }
}

pub(crate) fn export_png(app: &mut App, ctx: &egui::Context) {
    let target = match Target::named(app, "canvas.png") {
        Ok(t) => t,
        Err(e) => return app.export.message = Some(Err(e)),
    };
    let s = match still(app) {
        Ok(s) => s,
        Err(e) => return app.export.message = Some(Err(e)),
    };
    app.export.task.start(ctx, move |_| {
        let rgb = rasterise(&s, PNG_SIDE, 2);
        target.deliver(encode_png(PNG_SIDE as u32, PNG_SIDE as u32, &rgb)?)
    });
}

/// The current direction's animation, t sampled evenly, from the player's own frames.
fn export_gif(app: &mut App, ctx: &egui::Context) {
    let target = match Target::named(app, "animation.gif") {
        Ok(t) => t,
        Err(e) => return app.export.message = Some(Err(e)),
    };
    let (t0, playing) = (app.player.t, app.player.playing);
    let frames: Result<Vec<Still>, String> = (0..GIF_FRAMES)
        .map(|k| {
            let u = k as f64 / (GIF_FRAMES - 1) as f64;
            app.player.t = match app.player.mode {
                Mode::Forward => u,
                Mode::Reverse => 1.0 - u,
            };
            still(app)
        })
        .collect();
    app.player.t = t0;
    app.player.playing = playing;
    let frames = match frames {
        Ok(f) => f,
        Err(e) => return app.export.message = Some(Err(e)),
    };
    app.export.task.start(ctx, move |progress| {
        let mut rgb = Vec::with_capacity(frames.len());
        for (k, f) in frames.iter().enumerate() {
            rgb.push(rasterise(f, GIF_SIDE, 1));
            progress.tick(0.8 * k as f64 / frames.len() as f64)?;
        }
        let gif = encode_gif(GIF_SIDE as u16, GIF_SIDE as u16, &rgb, GIF_DELAY_CS)?;
        Ok(format!("{} ({} frames)", target.deliver(gif)?, rgb.len()))
    });
}

/// In a browser: offered as a download.
#[cfg(target_arch = "wasm32")]
pub(crate) fn export_csv(app: &mut App) {
    let outcome = still(app).and_then(|s| {
        let text =
            crate::data::csv_text("samples.csv", &s.points, None).map_err(|e| e.to_string())?;
        files::download("samples.csv", text.into_bytes());
        Ok(format!(
            "samples.csv: {} points, standardised units",
            s.points.len()
        ))
    });
    app.export.message = Some(outcome);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn export_csv(app: &mut App) {
    let outcome = out_path(app, "samples.csv").and_then(|path| {
        let points = still(app)?.points;
        crate::teach::export::write_samples_csv(&path, &points, None)
            .map(|()| {
                format!(
                    "wrote {} ({} points, standardised units)",
                    path.display(),
                    points.len()
                )
            })
            .map_err(|e: crate::teach::TeachError| e.to_string())
    });
    app.export.message = Some(outcome);
}

/// Draws particles as small squares in their canvas colours on the canvas's dark ground.
fn rasterise(s: &Still, side: usize, radius: isize) -> Vec<u8> {
    let mut rgb: Vec<u8> = BACKGROUND
        .iter()
        .copied()
        .cycle()
        .take(side * side * 3)
        .collect();
    let view = View::default();
    let scale = side as f32 / (view.max[0] - view.min[0]);
    for (i, p) in s.points.iter().enumerate() {
        let colour = match &s.colors {
            Colors::PerParticle(c) => c.get(i).copied().unwrap_or([255; 4]),
            Colors::Uniform(c) => *c,
        };
        let (x, y) = ((p[0] - view.min[0]) * scale, (view.max[1] - p[1]) * scale);
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let (cx, cy) = (x as isize, y as isize);
        for py in cy - radius..=cy + radius {
            for px in cx - radius..=cx + radius {
                if px >= 0 && py >= 0 && (px as usize) < side && (py as usize) < side {
                    let k = 3 * (py as usize * side + px as usize);
                    rgb[k..k + 3].copy_from_slice(&colour[..3]);
                }
            }
        }
    }
    rgb
}

/// A view's export button and the outcome of its last export, shown under it.
#[derive(Default)]
pub struct ViewExport {
    /// Ok(what was written) or Err(why not).
    pub message: Option<Result<String, String>>,
}

impl ViewExport {
    /// An `label` button (enabled when there is something to export); on a click, creates
    /// `dir` and calls `write` with it. `write` returns what it wrote, or why it could not.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        label: &str,
        enabled: bool,
        dir: &str,
        write: impl FnOnce(&std::path::Path) -> Result<String, String>,
    ) {
        let dir = PathBuf::from(dir.trim());
        let clicked = ui
            .add_enabled(enabled, egui::Button::new(label))
            .on_hover_text(format!("write into {}", dir.display()))
            .clicked();
        if clicked {
            self.message = Some(
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("{}: cannot create: {e}", dir.display()))
                    .and_then(|()| write(&dir)),
            );
        }
        match &self.message {
            Some(Ok(m)) => {
                ui.label(RichText::new(m).color(Color32::from_rgb(140, 210, 140)));
            }
            Some(Err(e)) => {
                ui.label(RichText::new(e).color(Color32::from_rgb(255, 120, 100)));
            }
            None => {}
        }
    }
}

/// Writes a CSV table atomically; the outcome names the file and its rows.
pub fn write_table(
    path: &std::path::Path,
    header: &str,
    rows: &[String],
) -> Result<String, String> {
    let mut text = String::with_capacity(32 * (rows.len() + 1));
    text.push_str(header);
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    crate::teach::export::write_text(path, &text)
        .map(|()| format!("wrote {} ({} rows)", path.display(), rows.len()))
        .map_err(|e| e.to_string())
}

/// Writes an RGB image as PNG, each pixel scaled up `scale` times (nearest neighbour).
pub fn write_scaled_png(
    path: &std::path::Path,
    width: usize,
    height: usize,
    rgb: &[u8],
    scale: usize,
) -> Result<(), String> {
    let scale = scale.max(1);
    let (w, h) = (width * scale, height * scale);
    let mut out = Vec::with_capacity(3 * w * h);
    for y in 0..h {
        for x in 0..w {
            let k = 3 * ((y / scale) * width + x / scale);
            out.extend_from_slice(rgb.get(k..k + 3).unwrap_or(&[0, 0, 0]));
        }
    }
    write_png(path, w as u32, h as u32, &out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_cropped_to_the_canvas_in_pixels() {
        // 100 × 50 points at 2 pixels per point; the canvas (10..60, 5..35) is red.
        let ppp = 2.0;
        let mut image = egui::ColorImage::filled([200, 100], Color32::BLACK);
        for y in 10..70 {
            for x in 20..120 {
                image.pixels[y * 200 + x] = Color32::RED;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = free_name(dir.path(), "screen", "png");
        let rect = egui::Rect::from_min_max(egui::pos2(10.0, 5.0), egui::pos2(60.0, 35.0));
        write_capture(&path, &image, rect, ppp).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (100, 60));
        assert!(back.pixels().all(|p| p.0 == [255, 0, 0]));
        // The next capture gets the next name.
        assert_ne!(free_name(dir.path(), "screen", "png"), path);
        // A canvas off screen is refused.
        let off = egui::Rect::from_min_max(egui::pos2(500.0, 5.0), egui::pos2(600.0, 35.0));
        assert!(write_capture(&path, &image, off, ppp).is_err());
    }
}
