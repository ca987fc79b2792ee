//! The saved settings as the app restores them from eframe's storage (`App::restored`): text
//! that does not parse gives the defaults and a notice in the controls; values no control
//! would leave there are brought back into range, with a notice, and the app runs.

mod ui_common;

use std::collections::HashMap;

use diffusion_playground::app::{App, DataChoice, Mode, ScoreSource, Settings};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// eframe's storage, in memory.
#[derive(Default)]
struct Stored(HashMap<String, String>);

impl Stored {
    fn with_app(text: &str) -> Self {
        Self(HashMap::from([(
            eframe::APP_KEY.to_owned(),
            text.to_owned(),
        )]))
    }
}

impl eframe::Storage for Stored {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }

    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }

    fn flush(&mut self) {}
}

/// The app as eframe starts it on this storage (training replaced by a recorder).
fn restored(storage: &Stored) -> Harness<'_, App> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_eframe(|cc| {
            cc.storage = Some(storage);
            App::restored(cc, false)
        })
}

#[test]
fn a_corrupted_settings_file_gives_the_defaults_and_a_notice() {
    let good = Settings::default().to_stored().unwrap();
    let storage = Stored::with_app(&good[..good.len() / 3]);
    let mut h = restored(&storage);
    h.run_steps(3);
    assert_eq!(h.state().settings, Settings::default());
    let notice = h.state().settings_notice.clone().unwrap();
    assert!(notice.contains("could not be read"), "{notice}");
    assert!(h.query_by_label_contains("could not be read").is_some());
    h.get_by_label("dismiss").click();
    h.run_steps(2);
    assert_eq!(h.state().settings_notice, None);
    assert!(h.query_by_label_contains("could not be read").is_none());
}

#[test]
fn absurd_saved_values_still_give_a_running_app() {
    let text = "(data: Drawn([(NaN, 1.0), (0.0, 2.0)], []), score_source: Exact, \
        schedule: (kind: Constant, beta_min: -1.0, beta_max: NaN, beta_cap: inf, \
        beta_constant: -5.0), train: (net: (width: 4096, depth: 32, activation: Silu, \
        embedding: Sinusoidal(dim: 3), param: Eps), lr: NaN, batch: 0, seed: 7), \
        sampler: (kind: Heun, last_sde: Rk4, last_ode: Langevin, steps: 0, eta: -inf), \
        particles: 0, speed: NaN, zoom: 0.0, auto_loop: false, \
        teach: (lessons: true, lesson: (index: 18446744073709551615)))";
    let storage = Stored::with_app(text);
    let mut h = restored(&storage);
    let notice = h.state().settings_notice.clone().unwrap();
    for part in [
        "particles",
        "β",
        "network",
        "learning rate",
        "steps",
        "lesson",
    ] {
        assert!(notice.contains(part), "{part} missing from {notice}");
    }
    // The drawing with a NaN cannot be loaded: the default data, and why.
    assert_eq!(h.state().settings.data, DataChoice::default());
    assert!(h.state().data_error.is_some());
    let s = &h.state().settings;
    assert_eq!(s.score_source, ScoreSource::Exact, "values in range stay");
    assert_eq!(s.train.seed, 7);
    assert!(s.schedule.schedule().validate().is_ok());

    // It runs: frames, the lesson panel on the last lesson, a reverse run to the end.
    h.run_steps(3);
    assert!(
        h.query_by_label_contains("Saved settings out of range")
            .is_some()
    );
    h.state_mut().player.play_mode(Mode::Reverse);
    let done = ui_common::run_until(&mut h, 60.0, |h| !h.state().player.playing);
    assert!(done, "the reverse run never ended");
    let player = &h.state().player;
    assert_eq!(player.mode, Mode::Reverse);
    assert!(
        player.t < 0.01,
        "the reverse run stopped at t = {}",
        player.t
    );
}

#[test]
fn what_the_app_saves_it_restores_without_a_notice() {
    let mut settings = ui_common::test_settings();
    settings.particles = 1234;
    settings.sampler.steps = 37;
    settings.data = DataChoice::BuiltIn("moons".to_owned());
    let mut h = ui_common::harness(settings.clone());
    h.run_steps(2);
    let mut storage = Stored::default();
    eframe::App::save(h.state_mut(), &mut storage);

    let mut back = restored(&storage);
    back.run_steps(2);
    assert_eq!(back.state().settings, settings);
    assert_eq!(back.state().settings_notice, None);
}
