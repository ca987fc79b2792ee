//! What lecturers reach for: the help overlay, one solver step at a time, following one
//! particle through the reverse run, undoing a stroke.

mod ui_common;

use diffusion_playground::app::{App, Mode};
use diffusion_playground::math::solvers::SamplerKind;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ui_common::{harness, run_until, test_settings};

/// A finished reverse run of 20 Heun steps with the exact score, paused at its end.
fn finished_run() -> Harness<'static, App> {
    let mut settings = test_settings();
    settings.sampler.select(SamplerKind::Heun);
    settings.sampler.steps = 20;
    let mut h = harness(settings);
    h.run_steps(1);
    h.key_press(egui::Key::R);
    h.run_steps(1);
    assert!(run_until(&mut h, 60.0, |h| ui_common::measured(h).is_some()));
    h
}

#[test]
fn f1_opens_the_help_and_escape_closes_it() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    assert!(h.state().help);
    assert!(
        h.query_by_label("one solver step on / back (pauses)")
            .is_some()
    );
    assert!(h.query_by_label("Quality vs steps").is_some());
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    assert!(!h.state().help);
    assert!(
        h.query_by_label("one solver step on / back (pauses)")
            .is_none()
    );
}

#[test]
fn the_step_keys_move_one_solver_step_on_the_time_grid() {
    let mut h = finished_run();
    let p = &h.state().player;
    assert_eq!(p.mode, Mode::Reverse);
    let end = p.t;
    // Back one step from the end, then on again: two grid times, one step apart.
    h.key_press(egui::Key::Comma);
    h.run_steps(1);
    let before = h.state().player.t;
    assert!(!h.state().player.playing);
    assert!(before > end, "{before} after {end}");
    h.key_press(egui::Key::Comma);
    h.run_steps(1);
    let earlier = h.state().player.t;
    // A uniform grid of 20 steps: one step is 1/20 of (1 − t_min) apart.
    let step = before - end;
    assert!(
        (earlier - before - step).abs() < 1e-6,
        "{end} {before} {earlier}"
    );
    assert!((step - (1.0 - 1e-3) / 20.0).abs() < 1e-3, "step {step}");
    h.key_press(egui::Key::Period);
    h.run_steps(1);
    assert!((h.state().player.t - before).abs() < 1e-9);
}

#[test]
fn a_click_on_a_particle_follows_it_through_the_run() {
    let mut h = finished_run();
    let app = h.state();
    let rect = app.canvas_rect().expect("a canvas");
    // Where particle 5 is drawn now (the canvas maps world units about its centre).
    let frame = app.player.frame(&app.settings);
    let target = frame.points[5];
    let scale = rect.width().min(rect.height()) / (2.0 * 3.2) * app.settings.zoom;
    let pos = rect.center() + egui::vec2(target[0] * scale, -target[1] * scale);
    h.input_mut().events.push(egui::Event::PointerMoved(pos));
    h.run_steps(1);
    h.input_mut().events.push(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.run_steps(1);
    h.input_mut().events.push(egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.run_steps(2);
    let followed = h.state().followed().expect("a particle is followed");
    let path = h.state().player.path_of(followed).expect("its path");
    // One point per stored step, from N(0, I) at t = 1 to where it is drawn now.
    assert!(path.len() > 10, "{}", path.len());
    let now = path.last().copied().unwrap();
    let drawn = h.state().player.frame(&h.state().settings).points[followed];
    assert_eq!(now, drawn);
}

#[test]
fn the_weighting_lesson_trains_three_networks_in_the_ablation_tab() {
    use diffusion_playground::app::ExploreTab;
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.state_mut().explore.ablation.weighting.set_steps(100);
    ui_common::click(&mut h, "Lessons");
    while !h.state().settings.teach.lesson.is_last() {
        h.get_by_label("Next ▶").click();
        h.run_steps(1);
    }
    h.run_steps(2);
    let s = &h.state().settings;
    assert!(s.teach.explore && s.teach.tab == ExploreTab::Ablation);
    assert!(h.state().explore.ablation.lesson);
    assert!(h.state().explore.ablation.weighting.is_running());
    assert!(run_until(&mut h, 120.0, |h| !h
        .state()
        .explore
        .ablation
        .weighting
        .is_running()));
    let report = h
        .state()
        .explore
        .ablation
        .weighting
        .shown()
        .expect("a report")
        .clone();
    assert_eq!(report.rows.len(), 3);
    h.run_steps(2);
    for name in ["ε-loss (w = 1)", "t ~ π ∝ 1/σ²", "w = 1/σ²"] {
        // (The first weighting's name is also in the controls' loss weighting menu.)
        assert!(h.query_all_by_label(name).next().is_some(), "no row {name}");
    }
}

#[test]
fn the_lesson_on_running_time_backwards_runs_its_comparison_by_itself() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    ui_common::click(&mut h, "Lessons");
    // Lesson 3: why not just run time backwards?
    while h.state().settings.teach.lesson.position().0 < 2 {
        h.get_by_label("Next ▶").click();
        h.run_steps(1);
    }
    assert!(h.state().settings.teach.explore);
    assert!(run_until(&mut h, 60.0, |h| h
        .state()
        .explore
        .why
        .naive_result()
        .is_some()));
}

/// At the end of a forward pass with a network not yet trained enough for reverse, the loop
/// stays at noise (the note counting the steps) for a few seconds before it plays forward
/// again: the reverse pass is what the class waits for.
#[test]
fn the_loop_waits_at_noise_for_the_network_before_replaying_forward() {
    let mut settings = test_settings();
    settings.score_source = diffusion_playground::app::ScoreSource::Learned;
    settings.auto_loop = true;
    let mut h = harness(settings);
    h.run_steps(1);
    h.state_mut().player.t = 0.999;
    // Seconds of playback at which the pass reached noise, and at which it started over.
    let (mut clock, mut at_noise, mut replayed) = (0.0f64, None, None);
    for _ in 0..2000 {
        h.step();
        clock += f64::from(h.ctx.input(|i| i.unstable_dt));
        let p = &h.state().player;
        assert_eq!(p.mode, Mode::Forward, "no network: never reverse");
        if at_noise.is_none() && p.t >= 1.0 {
            at_noise = Some(clock);
        }
        if at_noise.is_some() && p.t < 0.5 {
            replayed = Some(clock);
            break;
        }
    }
    let waited = replayed.expect("played forward again") - at_noise.expect("reached noise");
    assert!(
        (3.5..5.0).contains(&waited),
        "waited {waited:.2} s at noise"
    );
}
