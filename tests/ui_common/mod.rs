//! The egui_kittest setup shared by the UI tests: small settings, a windowless harness with the
//! training thread replaced by a recorder, and a bounded wait for background work.
#![allow(dead_code)]

use diffusion_playground::app::{App, ScoreSource, Settings};
use egui_kittest::Harness;

/// Small and cheap: a few hundred particles, the exact score, no auto-play.
pub fn test_settings() -> Settings {
    Settings {
        particles: 600,
        score_source: ScoreSource::Exact,
        auto_loop: false,
        ..Settings::default()
    }
}

/// The app at 1280×800 without a window; `App::create(.., train: false)` records the
/// commands the UI sends instead of training.
pub fn harness(settings: Settings) -> Harness<'static, App> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(move |cc| App::create(cc, settings, false))
}

/// Runs frames until `done` holds (workers finish in real time), at most `secs`.
pub fn run_until(
    h: &mut Harness<'_, App>,
    secs: f64,
    done: impl Fn(&Harness<'_, App>) -> bool,
) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        h.run_steps(1);
        if done(h) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    false
}

/// The quality the canvas shows for the run on it, once measured.
pub fn measured(h: &Harness<'_, App>) -> Option<diffusion_playground::app::RunQuality> {
    h.state().player.shown_run_quality()?.ok()?
}

/// Scrolls the widget labelled `label` into view, clicks it and runs a couple of frames.
pub fn click(h: &mut Harness<'_, App>, label: &str) {
    use egui_kittest::kittest::Queryable;
    h.get_by_label(label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label(label).click_accesskit();
    h.run_steps(2);
}

/// A file dropped on the window, as the windowing system hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops the file at `path` on the window (what the open dialogs lead to as well) and runs
/// a couple of frames.
pub fn drop_file(h: &mut Harness<'_, App>, path: &std::path::Path) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path.to_path_buf())));
    h.run_steps(2);
}
