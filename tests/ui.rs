//! The app driven through egui_kittest, without a window. The training thread is replaced by
//! a recorder (`App::create(.., train: false)`), so the tests see exactly the commands the UI
//! sends; reverse runs use the exact score, which needs no training.

mod gpu_common;
mod ui_common;

use diffusion_playground::app::{App, DataChoice, Mode, Settings};
use diffusion_playground::math::Schedule;
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind};
use diffusion_playground::nn::ConfigChange;
use diffusion_playground::train::{Command, TrainSettings, train_config};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ui_common::{harness, run_until, test_settings};

fn reverse_sampler(h: &Harness<'_, App>) -> Option<SamplerKind> {
    h.state().player.reverse_key().map(|k| k.cfg.kind)
}

#[test]
fn ode_sde_toggle_changes_the_reverse_sampler() {
    let mut h = harness(test_settings());
    h.run_steps(2);
    assert_eq!(reverse_sampler(&h), Some(SamplerKind::Em));
    let seed_before = h.state().player.reverse_key().map(|k| k.cfg.seed);

    let cfg_before = h.state().player.reverse_key().map(|k| k.cfg);
    h.get_by_label("ODE: Heun").click();
    h.run_steps(2);
    assert_eq!(h.state().settings.sampler.kind, SamplerKind::Heun);
    // Only the sampler kind changed: the grid (steps, t_min) and the noise are the same.
    let cfg_after = h.state().player.reverse_key().map(|k| k.cfg);
    if let (Some(before), Some(after)) = (cfg_before, cfg_after) {
        assert_eq!(
            SamplerConfig {
                kind: before.kind,
                ..after
            },
            before
        );
    }
    // Both sides stay named, one selected, whichever runs.
    assert!(h.query_by_label("SDE: EM").is_some());
    assert_eq!(reverse_sampler(&h), Some(SamplerKind::Heun));
    // Same starting noise: only the sampler changed.
    assert_eq!(
        h.state().player.reverse_key().map(|k| k.cfg.seed),
        seed_before
    );

    // The O key flips it back.
    h.key_press(egui::Key::O);
    h.run_steps(2);
    assert_eq!(reverse_sampler(&h), Some(SamplerKind::Em));
}

#[test]
fn moving_beta_max_sends_the_new_schedule_to_the_trainer() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.get_by_role_and_label(Role::Slider, "β_max")
        .set_value_accesskit(5.0);
    h.run_steps(2);
    let sent: Vec<Schedule> = configured(&h).into_iter().map(|(_, s)| s).collect();
    match sent.last() {
        Some(Schedule::Linear { beta_min, beta_max }) => {
            assert!((beta_max - 5.0).abs() < 1e-9, "β_max sent: {beta_max}");
            assert!((beta_min - 0.1).abs() < 1e-9);
        }
        other => panic!("expected a linear schedule to be sent, got {other:?}"),
    }
    // Changing the schedule keeps training going: nothing that restarts is sent.
    assert_eq!(restarts_sent(&h), 0);
}

/// Every `Configure` the app sent, oldest first.
fn configured(h: &Harness<'_, App>) -> Vec<(TrainSettings, Schedule)> {
    h.state()
        .training
        .sent()
        .filter_map(|c| match c {
            Command::Configure { settings, schedule } => Some((settings.clone(), *schedule)),
            _ => None,
        })
        .collect()
}

/// How many commands sent would start training over: a Reset, or a Configure that changes
/// the network, seed or backend the trainer had.
fn restarts_sent(h: &Harness<'_, App>) -> usize {
    let start = test_settings().train;
    let mut current = train_config(&start, Schedule::default());
    let mut backend = start.backend;
    let mut restarts = 0;
    for c in h.state().training.sent() {
        match c {
            Command::Reset { .. } => restarts += 1,
            Command::Configure { settings, schedule } => {
                let next = train_config(settings, *schedule);
                if ConfigChange::between(&current, &next).restarts || settings.backend != backend {
                    restarts += 1;
                }
                (current, backend) = (next, settings.backend);
            }
            _ => {}
        }
    }
    restarts
}

#[test]
fn a_new_network_width_restarts_and_a_new_seed_waits_for_reset() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    let width = h.state().settings.train.net.width;
    h.state_mut().settings.train.net.width = width * 2;
    h.run_steps(2);
    let sent = configured(&h);
    assert_eq!(sent.len(), 1, "one Configure for one change");
    assert_eq!(sent[0].0.net.width, width * 2);
    assert_eq!(restarts_sent(&h), 1);
    // A seed typed in is only used by the next Reset.
    h.state_mut().settings.train.seed = 99;
    h.run_steps(2);
    assert_eq!(configured(&h).len(), 1, "the seed alone sends nothing");
    h.state_mut().reset_training();
    h.run_steps(2);
    assert!(
        h.state()
            .training
            .sent()
            .any(|c| matches!(c, Command::Reset { seed: 99 }))
    );
    assert_eq!(
        configured(&h).len(),
        1,
        "the Reset does not also reconfigure"
    );
}

#[test]
fn presentation_mode_enlarges_the_text() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    let normal = App::body_size(&h.ctx);
    h.key_press(egui::Key::P);
    h.run_steps(2);
    let large = App::body_size(&h.ctx);
    assert!(h.state().settings.presentation);
    assert!(large > 1.4 * normal, "body text {normal} → {large}");
    // Fewer controls: the network settings are gone.
    assert!(h.query_by_label("Hidden layers").is_none());
    // The canvas takes at least three quarters of the 1280-wide window.
    let canvas = h.state().canvas_rect().expect("a canvas");
    assert!(canvas.width() >= 0.75 * 1280.0, "canvas {canvas:?}");
    h.get_by_label("Leave presentation").click();
    h.run_steps(2);
    assert!((App::body_size(&h.ctx) - normal).abs() < 1e-3);
}

#[test]
fn a_bad_csv_shows_an_error_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "x,y\n1.0,2.0\n3.0,oops\n").expect("write csv");

    let mut h = harness(test_settings());
    h.run_steps(1);
    let points_before = h.state().data.points.clone();
    ui_common::drop_file(&mut h, &path);

    let app = h.state();
    let error = app.data_error.clone().expect("an error is shown");
    assert!(
        error.contains("bad.csv:3"),
        "error names file and line: {error}"
    );
    assert_eq!(app.data.label, "swiss-roll");
    assert!(std::sync::Arc::ptr_eq(&app.data.points, &points_before));
    assert_eq!(app.settings.data, DataChoice::BuiltIn("swiss-roll".into()));
    assert!(
        !app.training
            .sent()
            .any(|c| matches!(c, Command::SetData(_)))
    );
    // The message is on screen, and says what is still in use.
    assert!(h.query_by_label_contains("oops").is_some());
    assert!(h.query_by_label("still using swiss-roll").is_some());
}

#[test]
fn a_dropped_file_of_another_kind_is_refused_in_plain_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, b"not points").expect("write");
    let mut h = harness(test_settings());
    h.run_steps(1);
    let before = h.state().data.points.clone();
    ui_common::drop_file(&mut h, &path);
    let message = h.state().data_error.clone().expect("a message");
    assert!(
        message.contains("photo.jpg") && message.contains(".csv"),
        "{message}"
    );
    assert!(std::sync::Arc::ptr_eq(&h.state().data.points, &before));
    assert!(
        h.query_by_label_contains("is not a file the playground reads")
            .is_some()
    );
}

#[test]
fn a_good_csv_replaces_the_data_and_is_sent_to_the_trainer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("line.csv");
    let text: String = (0..50).map(|i| format!("{i},{}\n", 2 * i)).collect();
    std::fs::write(&path, text).expect("write csv");

    let mut h = harness(test_settings());
    h.run_steps(1);
    ui_common::drop_file(&mut h, &path);
    let app = h.state();
    assert!(app.data_error.is_none());
    assert_eq!(app.data.points.len(), 50);
    assert!(
        app.training
            .sent()
            .any(|c| matches!(c, Command::SetData(_)))
    );
}

#[test]
fn transport_buttons_and_keys_switch_direction() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    assert_eq!(h.state().player.mode, Mode::Forward);
    h.get_by_label("Reverse: noise → data").click();
    h.run_steps(1);
    assert_eq!(h.state().player.mode, Mode::Reverse);
    h.key_press(egui::Key::F);
    h.run_steps(1);
    assert_eq!(h.state().player.mode, Mode::Forward);
    let t = h.state().player.t;
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(1);
    assert!(!h.state().player.playing, "scrubbing pauses");
    assert!(h.state().player.t > t);
}

#[test]
fn lr_and_weighting_changes_do_not_reset_training() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.get_by_role_and_label(Role::Slider, "learning rate")
        .set_value_accesskit(5e-4);
    h.run_steps(2);
    let sent = configured(&h);
    let (settings, _) = sent.last().expect("a Configure");
    assert!(
        (settings.lr - 5e-4).abs() < 1e-9,
        "lr sent: {}",
        settings.lr
    );
    assert_eq!(restarts_sent(&h), 0);
}

/// The particles go through the wgpu paint callback: render a frame on the test device
/// (lavapipe here) and find particle-coloured pixels on the canvas.
#[test]
fn particles_are_drawn_by_the_wgpu_callback() {
    if !gpu_common::require_gpu() {
        return;
    }
    let settings = Settings {
        show_data: false,
        show_trails: false,
        presentation: true,
        ..test_settings()
    };
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| App::create(cc, settings, false));
    h.run_steps(2);
    let image = h.render().unwrap_or_else(|e| panic!("render failed: {e}"));
    if let Ok(dir) = std::env::var("UI_TEST_IMAGES") {
        let _ = image.save(std::path::Path::new(&dir).join("particles.png"));
    }
    // Forward at t ≈ 0 shows the swiss roll in saturated pastel colours around the canvas
    // centre, where no text or plot is drawn.
    let (w, h) = (image.width(), image.height());
    let coloured = (h / 2 - 120..h / 2 + 120)
        .flat_map(|y| (w / 2 - 60..w / 2 + 260).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b, _] = image.get_pixel(x, y).0;
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            max > 150 && max - min > 60
        })
        .count();
    assert!(coloured > 2000, "only {coloured} particle pixels");
}

/// Panels that stand still are drawn from a picture of themselves (`region_cache`): after a
/// few frames the controls, the status bar and both halves of the plots panel are pictured,
/// and the window looks as it does when egui draws every panel itself. Also at a fractional
/// scale with an odd width, and with the formulas strip open from the start (its grid makes
/// egui run the first frame twice, before any glyph is on the GPU).
#[test]
fn pictured_panels_look_as_drawn() {
    if !gpu_common::require_gpu() {
        return;
    }
    let plain = test_settings();
    let mut formulas = test_settings();
    formulas.teach.formulas = true;
    for (name, settings, ppp, width_px) in [
        ("plain", plain, 1.0, 1280.0),
        ("scaled", test_settings(), 1.5, 1283.0),
        ("formulas", formulas, 1.0, 1280.0),
    ] {
        let shot = |cache: bool| {
            let settings = settings.clone();
            let mut h = Harness::builder()
                .with_size([width_px / ppp, 800.0 / ppp])
                .with_pixels_per_point(ppp)
                // Frames at 60 Hz: the status bar's and curves' twice-a-second refreshes
                // (on egui's clock) then leave the four frames alone.
                .with_step_dt(1.0 / 60.0)
                .wgpu()
                .build_eframe(move |cc| App::create(cc, settings, false));
            if !cache {
                h.state_mut().disable_region_cache();
            }
            h.state_mut().player.playing = false;
            let mut image = h.render();
            for _ in 0..4 {
                h.step();
                image = h.render();
            }
            (image, h.state().pictured_regions())
        };
        let (cached, pictured) = shot(true);
        let cached = cached.unwrap_or_else(|e| panic!("{name}: render failed: {e}"));
        assert_eq!(
            pictured,
            ["controls", "schedule plots", "status", "training plots"],
            "{name}: regions drawn from a picture"
        );
        let (direct, none) = shot(false);
        let direct = direct.expect("rendered once already");
        assert!(none.is_empty());
        if let Ok(dir) = std::env::var("UI_TEST_IMAGES") {
            let dir = std::path::Path::new(&dir);
            let _ = cached.save(dir.join(format!("pictured-{name}.png")));
            let _ = direct.save(dir.join(format!("direct-{name}.png")));
        }
        assert_eq!(cached.dimensions(), direct.dimensions());
        let (w, h) = cached.dimensions();
        let differing = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let (a, b) = (cached.get_pixel(x, y).0, direct.get_pixel(x, y).0);
                a.iter().zip(b).any(|(a, b)| a.abs_diff(b) > 2)
            })
            .count();
        assert_eq!(differing, 0, "{name}: {differing} pixels differ");
    }
}

#[test]
fn a_schedule_that_stops_too_early_fails_the_noise_check() {
    let mut h = harness(test_settings());
    // The check arrives from a worker; its line is drawn on the frame after.
    assert!(run_until(&mut h, 90.0, |h| h
        .state()
        .player
        .noise_check()
        .is_some()
        && h.query_by_label_contains("x₁ ").is_some()));
    let check = h.state().player.noise_check().expect("checked");
    assert!(check.reached_noise(), "β_max = 20 reaches noise: {check:?}");
    assert!(h.query_by_label_contains("x₁ ≈ N(0, I)").is_some());

    h.get_by_role_and_label(Role::Slider, "β_max")
        .set_value_accesskit(2.0);
    assert!(run_until(&mut h, 90.0, |h| {
        h.state()
            .player
            .noise_check()
            .is_some_and(|c| c.alpha_end > 0.5)
            && h.query_by_label_contains("x₁ is NOT").is_some()
    }));
    let check = h.state().player.noise_check().expect("checked");
    assert!(!check.reached_noise(), "β_max = 2 stops early: {check:?}");
    assert!(h.query_by_label_contains("x₁ is NOT N(0, I)").is_some());
}

/// The quality on the canvas is the run's own: "…" until the run has ended and been
/// measured, then its sw2 against held-out data, which a 2-step run (still noise) makes
/// several times worse than a 50-step Heun run from the same noise.
#[test]
fn the_canvas_shows_the_quality_of_the_run_on_it() {
    use ui_common::measured;
    let mut settings = test_settings();
    settings.particles = 2000;
    settings.sampler.select(SamplerKind::Heun);
    settings.sampler.steps = 50;
    let mut h = harness(settings);
    h.run_steps(1);
    h.key_press(egui::Key::R);
    h.run_steps(1);
    assert!(
        measured(&h).is_none(),
        "nothing is claimed before the run ends"
    );
    assert!(run_until(&mut h, 60.0, |h| measured(h).is_some()));
    let good = measured(&h).expect("measured");
    assert!(
        good.caption().starts_with("this run: sw2 ="),
        "{}",
        good.caption()
    );
    assert!(good.floor_lo <= good.floor && good.floor <= good.floor_hi);

    h.state_mut().settings.sampler.select(SamplerKind::Em);
    h.state_mut().settings.sampler.steps = 2;
    h.run_steps(2);
    assert!(run_until(&mut h, 60.0, |h| measured(h).is_some_and(|q| q != good)));
    let bad = measured(&h).expect("measured");
    assert!(
        bad.ratio() > 2.0 * good.ratio(),
        "2 EM steps: {:.2} × floor, 50 Heun steps: {:.2} × floor",
        bad.ratio(),
        good.ratio()
    );
    assert_ne!(bad.caption(), good.caption());
}
