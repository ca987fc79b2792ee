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

/// Scrolls the widget labelled `label` into view, clicks it and runs a couple of frames.
pub fn click(h: &mut Harness<'_, App>, label: &str) {
    use egui_kittest::kittest::Queryable;
    h.get_by_label(label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label(label).click_accesskit();
    h.run_steps(2);
}
