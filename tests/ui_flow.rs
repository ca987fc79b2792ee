//! Flow matching in the app: the process switch reaches the trainer and the canvas, the flow
//! grid is computed off the UI thread and carried to the time shown, and the lesson on
//! flow matching sets itself up and measures both processes.

mod ui_common;

use diffusion_playground::app::{ExploreTab, ScoreSource};
use diffusion_playground::math::Process;
use diffusion_playground::math::solvers::SamplerKind;
use diffusion_playground::train::Command;
use egui_kittest::kittest::Queryable;
use ui_common::{click, harness, run_until, test_settings};

#[test]
fn the_process_switch_retrains_and_the_exact_run_is_flow_matching() {
    let mut settings = test_settings();
    // Ddim is VP-only: on flow matching it runs as Euler (DDIM at η = 0 is Euler there).
    settings.sampler.select(SamplerKind::Ddim);
    settings.sampler.steps = 10;
    let mut h = harness(settings);
    h.run_steps(1);
    click(&mut h, "Flow matching");
    h.run_steps(2);
    assert_eq!(h.state().settings.process(), Process::Fm);
    assert!(
        h.state().training.sent().any(|c| matches!(
            c,
            Command::Configure { settings, .. } if settings.net.process == Process::Fm
        )),
        "the trainer never heard of flow matching"
    );
    h.key_press(egui::Key::R);
    assert!(run_until(&mut h, 30.0, |h| {
        h.state()
            .player
            .reverse_key()
            .is_some_and(|k| k.process == Process::Fm && k.cfg.kind == SamplerKind::OdeEuler)
    }));
    assert!(run_until(&mut h, 60.0, |h| ui_common::measured(h).is_some()));
}

#[test]
fn the_flow_grid_is_carried_to_the_time_shown() {
    let mut settings = test_settings();
    settings.score_source = ScoreSource::Exact;
    settings.set_process(Process::Fm);
    let mut h = harness(settings);
    h.run_steps(1);
    click(&mut h, "Flow grid (how the ODE bends space)");
    assert!(h.state().settings.show_mesh);
    assert!(run_until(&mut h, 60.0, |h| h.state().flow_grid().is_some()));
    let mesh = h.state().flow_grid().expect("a mesh").clone();
    assert_eq!(mesh.frames.len(), mesh.times.len());
    assert_eq!(mesh.times[0], 1.0);
    // At t = 1 the grid is the regular one; near the data it has moved.
    let (start, end) = (mesh.at(1.0), mesh.at(0.0));
    let moved = start
        .iter()
        .zip(end)
        .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
        .fold(0.0f32, f32::max);
    assert!(moved > 0.5, "the grid did not move ({moved})");
    h.key_press(egui::Key::G);
    h.run_steps(1);
    assert!(!h.state().settings.show_mesh);
}

#[test]
fn the_flow_matching_lesson_switches_process_and_compares_the_paths() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    click(&mut h, "Lessons");
    while h.state().settings.teach.lesson.position().0 < 5 {
        h.get_by_label("Next ▶").click();
        h.run_steps(1);
    }
    h.run_steps(2);
    let s = &h.state().settings;
    assert_eq!(s.process(), Process::Fm);
    assert!(s.show_mesh && s.teach.explore && s.teach.tab == ExploreTab::Paths);
    assert!(run_until(&mut h, 120.0, |h| h
        .state()
        .explore
        .paths
        .result()
        .is_some()));
    let (reports, floor) = h.state().explore.paths.result().expect("reports").clone();
    assert!(floor > 0.0);
    let s = |label: &str| {
        reports
            .iter()
            .find(|r| r.label == label)
            .map(|r| r.straightness)
            .expect(label)
    };
    // Path length over the distance between the ends: at least 1, and measured rather than
    // assumed smaller for either process (docs/architecture.md §3.9).
    for label in ["VP network", "FM network"] {
        assert!(
            s(label).is_finite() && s(label) >= 1.0,
            "{label}: {}",
            s(label)
        );
    }
    // The next lesson is diffusion again.
    h.get_by_label("Next ▶").click();
    h.run_steps(1);
    assert_eq!(h.state().settings.process(), Process::Vp);
}

/// A weights file of flow matching dropped on a diffusion app switches it (and says so); the
/// trainer is told the new network before the parameters arrive.
#[test]
fn loading_a_flow_matching_file_switches_the_process() {
    use diffusion_playground::nn::{MlpConfig, SavedModel, weights};
    let mut h = harness(test_settings());
    h.run_steps(1);
    assert_eq!(h.state().settings.process(), Process::Vp);
    let config = MlpConfig {
        process: Process::Fm,
        ..h.state().settings.train.net.clone()
    };
    let saved = SavedModel {
        params: vec![0.01; config.num_params()],
        config,
        schedule: Default::default(),
        t_min: 1e-3,
        dataset: "swiss-roll".into(),
        normalization: Default::default(),
        steps: 10,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fm.safetensors");
    weights::save(&path, &saved).unwrap();
    ui_common::drop_file(&mut h, &path);
    assert_eq!(h.state().settings.process(), Process::Fm);
    let sent: Vec<_> = h.state().training.sent().collect();
    let configure = sent.iter().rposition(
        |c| matches!(c, Command::Configure { settings, .. } if settings.net.process == Process::Fm),
    );
    let load = sent
        .iter()
        .rposition(|c| matches!(c, Command::LoadParams { .. }));
    assert!(
        matches!((configure, load), (Some(c), Some(l)) if c < l),
        "{sent:?}"
    );
    assert!(
        h.query_by_label_contains("switched to Flow matching")
            .is_some()
    );
}

/// Quality vs steps under flow matching runs the process's own samplers: a ticked VP-only
/// kind (DDIM, which would only repeat Euler under its name) is left out, and the curves are
/// of the exact flow-matching velocity.
#[test]
fn quality_vs_steps_under_flow_matching_runs_its_own_samplers() {
    let mut settings = test_settings();
    settings.set_process(Process::Fm);
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Quality;
    let mut h = harness(settings);
    h.run_steps(1);
    let ticked = [SamplerKind::Ddim, SamplerKind::Heun, SamplerKind::Em];
    h.state_mut().explore.quality.configure(100, 250, &ticked);
    h.run_steps(1);
    assert!(
        h.query_by_label("DDIM (η)").is_none(),
        "DDIM offered under FM"
    );
    click(&mut h, "Compute quality vs steps");
    assert!(
        run_until(&mut h, 120.0, |h| h
            .state()
            .explore
            .quality
            .result()
            .is_some()),
        "quality vs steps did not finish"
    );
    let (_, exact) = h.state().explore.quality.result().expect("a result");
    let mut got: Vec<SamplerKind> = exact.curves.iter().map(|c| c.sampler).collect();
    got.sort_by_key(|k| k.name());
    assert_eq!(got, vec![SamplerKind::Em, SamplerKind::Heun]);
    // Heun on the exact velocity reaches the data within twice the floor by 100 NFE (the
    // empirical velocity is stiff near t = 0: at 30 NFE it is still at 3 × floor).
    let heun = exact.curve(SamplerKind::Heun).expect("Heun");
    let last = heun.points.last().expect("a point");
    assert!(
        last.sw2 < 2.0 * exact.floor.sw2,
        "Heun at {} NFE: sw2 {} vs floor {}",
        last.nfe,
        last.sw2,
        exact.floor.sw2
    );
}
