//! The teaching panels driven through egui_kittest (no window, no training thread): each
//! Explore view opens with its content, lessons apply their presets, the formulas show
//! numbers, and a bad weights file is refused without touching the model.

mod ui_common;

use diffusion_playground::app::{App, DataChoice, ExploreTab};
use diffusion_playground::math::solvers::SamplerKind;
use diffusion_playground::train::Command;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ui_common::{harness, run_until, test_settings};

#[test]
fn formulas_show_the_numbers_at_the_scrubbed_time() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.get_by_label("Formulas").click();
    h.run_steps(2);
    h.state_mut().player.set_t(0.5);
    h.run_steps(2);
    // β(0.5) = 0.1 + 0.5·19.9 = 10.05 for the default linear schedule.
    assert!(h.query_by_label_contains("β = 10.05").is_some());
    assert!(
        h.query_by_label_contains("dx = −½ β(t) x dt + √β(t) dW")
            .is_some()
    );
    assert!(h.query_by_label_contains("dx = −5.025 x dt").is_some());
    // And in presentation mode too.
    h.key_press(egui::Key::P);
    h.run_steps(2);
    assert!(h.query_by_label_contains("β = 10.05").is_some());
}

#[test]
fn lessons_next_and_previous_apply_their_presets() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.get_by_label("Lessons").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("1 · Forward").is_some());
    h.get_by_label("Next ▶").click();
    h.run_steps(2);
    // Lesson 2 is the score field on eight gaussians.
    assert!(h.query_by_label_contains("2 · The score").is_some());
    assert_eq!(
        h.state().settings.data,
        DataChoice::BuiltIn("8-gaussians".into())
    );
    assert!(
        h.state()
            .training
            .sent()
            .any(|c| matches!(c, Command::SetData(_)))
    );
    // A small chart, so the lesson's own run ends soon.
    h.state_mut()
        .explore
        .quality
        .configure(10, 250, &[SamplerKind::Heun, SamplerKind::Em]);
    for _ in 0..5 {
        h.get_by_label("Next ▶").click();
        h.run_steps(1);
    }
    // Lesson 7: few-step solvers, DPM-Solver++(2M) with 10 steps and the quality chart.
    let s = &h.state().settings;
    assert_eq!(s.sampler.kind, SamplerKind::Dpm2m);
    assert_eq!(s.sampler.steps, 10);
    assert!(s.teach.explore && s.teach.tab == ExploreTab::Quality);
    // The lesson's view computes by itself, its curves arriving one sampler at a time.
    assert!(h.state().explore.quality.is_running());
    let sizes = std::cell::RefCell::new(Vec::new());
    let done = run_until(&mut h, 60.0, |h| {
        let q = &h.state().explore.quality;
        if let Some(c) = q.shown() {
            sizes.borrow_mut().push(c.exact.curves.len());
        }
        !q.is_running()
    });
    let sizes = sizes.into_inner();
    assert!(done, "the lesson's quality chart never finished");
    let (_, exact) = h.state().explore.quality.result().expect("a result");
    assert_eq!(exact.curves.len(), 2);
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "curves went away: {sizes:?}"
    );
    // Back to lesson 6, flow matching with Heun.
    h.get_by_label("◀ Previous").click();
    h.run_steps(1);
    assert_eq!(h.state().settings.sampler.kind, SamplerKind::Heun);
    assert_eq!(h.state().settings.teach.lesson.position().0, 5);
}

#[test]
fn every_explore_view_opens_with_its_content() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.get_by_label("Explore").click();
    h.run_steps(2);
    let expect = [
        ("Quality vs steps", "Compute quality vs steps"),
        ("Density", "Compute model density and NLL"),
        ("Memorisation", "Sample ideal denoiser and network"),
        ("Guidance", "Guidance needs labelled data"),
        ("Why the score", "Run both from the same noise"),
        ("Ablation", "Train both"),
    ];
    for (tab, content) in expect {
        h.get_by_label(tab).click();
        h.run_steps(2);
        assert!(
            h.query_by_label_contains(content).is_some(),
            "{tab}: no {content:?}"
        );
    }
}

#[test]
fn forward_density_follows_the_scrubber() {
    let mut settings = test_settings();
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Density;
    let mut h = harness(settings);
    h.state_mut().player.set_t(0.3);
    assert!(run_until(&mut h, 90.0, |h| h
        .query_by_label_contains("p_t at t = 0.300")
        .is_some()));
    h.state_mut().player.set_t(0.7);
    assert!(run_until(&mut h, 90.0, |h| h
        .query_by_label_contains("p_t at t = 0.700")
        .is_some()));
}

#[test]
fn guidance_samples_the_chosen_class() {
    let mut settings = test_settings();
    settings.data = DataChoice::BuiltIn("8-gaussians".into());
    settings.sampler.steps = 50;
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Guidance;
    let mut h = harness(settings);
    h.state_mut().explore.guidance.scale = 3.0;
    // It samples on its own when opened; a strong scale puts nearly all in class 0.
    assert!(run_until(&mut h, 90.0, |h| h
        .query_by_label_contains("are nearest to class 0")
        .is_some()));
    let high = (91..=100).any(|p| {
        h.query_by_label_contains(&format!("{p} % of the samples are nearest to class 0"))
            .is_some()
    });
    assert!(high, "guidance with γ = 3 should put > 90 % in class 0");
}

#[test]
fn a_bad_weights_file_is_refused_and_the_model_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, b"this is not a safetensors file").expect("write");
    let mut h = harness(test_settings());
    h.run_steps(1);
    let net_before = h.state().settings.train.net.clone();
    ui_common::drop_file(&mut h, &path);
    let app = h.state();
    let message = match &app.export.message {
        Some(Err(m)) => m.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(message.contains("bad.safetensors"), "{message}");
    assert!(message.contains("unchanged"), "{message}");
    // In plain words, not the parser's.
    assert!(
        message.contains(
            "is not a weights file saved by diffusion-playground (its header is invalid)"
        ),
        "{message}"
    );
    assert_eq!(app.settings.train.net, net_before);
    assert!(
        !app.training
            .sent()
            .any(|c| matches!(c, Command::LoadParams { .. } | Command::Configure { .. }))
    );
    assert!(h.query_by_label_contains("not loaded").is_some());
}

#[test]
fn a_good_weights_file_is_sent_to_the_trainer() {
    use diffusion_playground::nn::{SavedModel, weights};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("good.safetensors");
    let settings = test_settings();
    let net = settings.train.net.clone();
    let saved = SavedModel {
        params: net.init_params(7),
        config: net,
        schedule: settings.schedule.schedule(),
        t_min: 1e-3,
        dataset: "swiss-roll".into(),
        normalization: Default::default(),
        steps: 42,
    };
    weights::save(&path, &saved).expect("save");
    let mut h = harness(settings);
    h.run_steps(1);
    ui_common::drop_file(&mut h, &path);
    let app = h.state();
    assert!(matches!(&app.export.message, Some(Ok(m)) if m.contains("42 steps")));
    assert!(app.training.sent().any(
        |c| matches!(c, Command::LoadParams { params, .. } if params.as_slice() == saved.params.as_slice())
    ));
}

/// Classifier-free guidance: a small class-conditional network trained in the Guidance tab
/// (on its own worker, apart from the main training thread); a large w on class 0 moves the
/// samples into class 0, against ∅ and against w = 0.
#[test]
fn classifier_free_guidance_moves_samples_to_the_class() {
    let mut settings = test_settings();
    settings.data = DataChoice::BuiltIn("moons".into());
    settings.sampler.kind = SamplerKind::Heun;
    settings.sampler.steps = 30;
    settings.train.net.width = 48;
    settings.train.batch = 256;
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Guidance;
    let mut h = harness(settings);
    h.run_steps(1);
    h.state_mut().explore.guidance.cfg.steps = 1500;
    h.get_by_label("Train a class-conditional network").click();
    assert!(run_until(&mut h, 90.0, |h| h
        .state()
        .explore
        .guidance
        .cfg
        .trained()));
    let mut fraction = |class: Option<u32>, w: f64| -> f64 {
        h.state_mut().explore.guidance.cfg.class = class;
        h.state_mut().explore.guidance.cfg.w = w;
        let done = |h: &Harness<'_, App>| {
            h.state()
                .explore
                .guidance
                .cfg
                .result()
                .is_some_and(|(c, x, _)| c == class && x == w)
        };
        assert!(
            run_until(&mut h, 90.0, done),
            "no samples for {class:?}, w = {w}"
        );
        let f = h.state().explore.guidance.cfg.result().unwrap().2[0];
        println!("class {class:?}, w = {w}: {:.1} % in class 0", 100.0 * f);
        f
    };
    let uncond = fraction(None, 0.0);
    let plain = fraction(Some(0), 0.0);
    let guided = fraction(Some(0), 8.0);
    assert!(
        guided > uncond + 0.25,
        "w = 8 on class 0 ({guided:.2}) vs ∅ ({uncond:.2})"
    );
    assert!(
        guided >= plain - 0.01 && guided > 0.9,
        "w = 8 ({guided:.2}) vs w = 0 ({plain:.2})"
    );
    assert!(
        h.query_by_label_contains("% of the samples are in class 0 at w = 8.0")
            .is_some()
    );
}
