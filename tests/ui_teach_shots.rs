//! Screenshots of the teaching views with a network that really trained (for the README):
//! `UI_TEST_IMAGES=assets cargo test --release --test ui_teach_shots -- --ignored`.
//! Ignored by default: each trains for a while and computes a full view.

mod gpu_common;

use diffusion_playground::app::{App, DataChoice, ExploreTab, Settings};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn run_for(h: &mut Harness<'_, App>, secs: f64, done: impl Fn(&Harness<'_, App>) -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        h.run_steps(1);
        if done(h) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

fn shot(tab: ExploreTab, data: &str, button: &str, done_label: &str, file: &str) {
    let Ok(dir) = std::env::var("UI_TEST_IMAGES") else {
        return;
    };
    if !gpu_common::require_gpu() {
        return;
    }
    let mut settings = Settings {
        auto_loop: false,
        data: DataChoice::BuiltIn(data.into()),
        ..Settings::default()
    };
    settings.teach.explore = true;
    settings.teach.formulas = true;
    settings.teach.tab = tab;
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| App::create(cc, settings, true));
    // Let the network learn first.
    run_for(&mut h, 25.0, |_| false);
    h.get_by_label(button).click();
    assert!(run_for(&mut h, 300.0, |h| h
        .query_by_label_contains(done_label)
        .is_some()));
    h.state_mut().player.set_t(0.25);
    h.run_steps(3);
    let image = h.render().expect("render");
    image
        .save(std::path::Path::new(&dir).join(file))
        .expect("save");
}

#[test]
#[ignore]
fn screenshot_quality() {
    shot(
        ExploreTab::Quality,
        "swiss-roll",
        "Compute quality vs steps",
        "took",
        "screenshot-quality.png",
    );
}

#[test]
#[ignore]
fn screenshot_density() {
    shot(
        ExploreTab::Density,
        "8-gaussians",
        "Compute model density and NLL",
        "held-out NLL",
        "screenshot-density.png",
    );
}

/// The classifier-free guidance view on moons: a class-conditional network trained in the
/// Guidance tab, class 0 at w = 4. `UI_TEST_IMAGES=shots cargo test --release --test
/// ui_teach_shots screenshot_cfg -- --ignored` writes `shots/cfg.png`.
#[test]
#[ignore]
fn screenshot_cfg() {
    let Ok(dir) = std::env::var("UI_TEST_IMAGES") else {
        return;
    };
    if !gpu_common::require_gpu() {
        return;
    }
    let mut settings = Settings {
        auto_loop: false,
        data: DataChoice::BuiltIn("moons".into()),
        ..Settings::default()
    };
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Guidance;
    let mut h = Harness::builder()
        .with_size([1280.0, 1000.0])
        .wgpu()
        .build_eframe(move |cc| App::create(cc, settings, false));
    h.run_steps(1);
    h.state_mut().explore.guidance.cfg.steps = 3000;
    h.get_by_label("Train a class-conditional network").click();
    assert!(run_for(&mut h, 120.0, |h| h
        .state()
        .explore
        .guidance
        .cfg
        .trained()));
    h.state_mut().explore.guidance.cfg.class = Some(0);
    h.state_mut().explore.guidance.cfg.w = 4.0;
    assert!(run_for(&mut h, 60.0, |h| h
        .state()
        .explore
        .guidance
        .cfg
        .result()
        .is_some_and(|(c, w, _)| c == Some(0) && w == 4.0)));
    h.run_steps(2);
    h.get_by_label_contains("% of the samples are in class 0 at w = 4.0")
        .scroll_to_me();
    h.run_steps(3);
    let image = h.render().expect("render");
    image
        .save(std::path::Path::new(&dir).join("cfg.png"))
        .expect("save");
}

#[test]
#[ignore]
fn screenshot_memorisation() {
    shot(
        ExploreTab::Memorisation,
        "swiss-roll",
        "Sample ideal denoiser and network",
        "took",
        "screenshot-memorisation.png",
    );
}

#[test]
#[ignore]
fn screenshot_why_score() {
    shot(
        ExploreTab::WhyScore,
        "8-gaussians",
        "Run both from the same noise",
        "took",
        "screenshot-why-score.png",
    );
}

#[test]
#[ignore]
fn screenshot_ablation() {
    shot(
        ExploreTab::Ablation,
        "swiss-roll",
        "Train both",
        "took",
        "screenshot-ablation.png",
    );
}
