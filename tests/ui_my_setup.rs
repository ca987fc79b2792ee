//! Lessons and Explore's presets never silently overwrite the user's setup: the setup from
//! before is kept (and saved with the settings) and "Back to my setup" puts it back, drawing
//! and all.

mod ui_common;

use std::sync::Arc;

use diffusion_playground::app::{DataChoice, Settings};
use egui_kittest::kittest::Queryable;
use ui_common::{click, harness, test_settings};

/// A drawing of 30 points in two colours, as the canvas would leave it.
fn drawn() -> DataChoice {
    let points = (0..30)
        .map(|i| [i as f32 * 0.1 - 1.5, (i as f32 * 0.7).sin()])
        .collect();
    let labels = (0..30).map(|i| (i % 2) as u32).collect();
    DataChoice::Drawn(points, labels)
}

#[test]
fn a_lesson_then_back_to_my_setup_restores_the_drawing_and_the_settings() {
    let mut settings = test_settings();
    settings.schedule.beta_max = 7.5;
    settings.show_trails = true;
    settings.sampler.steps = 37;
    let mut h = harness(settings);
    h.run_steps(1);
    h.state_mut().set_data(drawn());
    h.run_steps(1);
    let mine = h.state().settings.clone();
    let my_points = Arc::clone(&h.state().data.points);
    assert!(h.query_by_label("↩ Back to my setup").is_none());

    click(&mut h, "Lessons");
    h.state_mut().apply_lesson();
    h.run_steps(2);
    assert!(matches!(h.state().settings.data, DataChoice::BuiltIn(_)));
    assert_ne!(h.state().settings.schedule.beta_max, 7.5);
    // Two lessons in a row keep the user's setup, not the first lesson's.
    h.get_by_label("Next ▶").click();
    h.run_steps(2);
    assert_eq!(
        h.state().settings.my_setup.as_deref().map(|s| &s.data),
        Some(&mine.data)
    );

    click(&mut h, "↩ Back to my setup");
    let now = &h.state().settings;
    assert_eq!(now.data, mine.data);
    assert_eq!(now.schedule, mine.schedule);
    assert_eq!(now.sampler, mine.sampler);
    assert_eq!(now.show_trails, mine.show_trails);
    assert_eq!(now.my_setup, None);
    // The lessons panel stays open where the user left it.
    assert!(now.teach.lessons);
    assert_eq!(h.state().data.points, my_points);
    assert!(h.query_by_label("↩ Back to my setup").is_none());
}

#[test]
fn training_on_a_subset_is_undone_by_back_to_my_setup() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    let full = h.state().data.points.len();
    let subset = Arc::new(h.state().data.points[..20].to_vec());
    h.state_mut().train_on_subset(subset);
    h.run_steps(1);
    assert_eq!(h.state().data.points.len(), 20);
    assert!(h.query_by_label("↩ Back to my setup").is_some());
    click(&mut h, "↩ Back to my setup");
    assert_eq!(h.state().data.points.len(), full);
    assert!(!h.state().data_is_subset);
}

#[test]
fn the_kept_setup_is_saved_and_checked_with_the_settings() {
    let mut settings = Settings::default();
    let mut mine = Settings {
        data: drawn(),
        ..Settings::default()
    };
    mine.particles = 0;
    settings.my_setup = Some(Box::new(mine));
    let text = settings.to_stored().unwrap();
    let back = Settings::from_stored(&text).unwrap();
    assert_eq!(back, settings);
    // Restored like the rest: out-of-range values in the kept setup are fixed and named.
    let mut fixed = back.clone();
    let fixes = fixed.sanitize();
    assert!(
        fixes.iter().any(|f| f.starts_with("your setup: particles")),
        "{fixes:?}"
    );
    assert!(matches!(
        fixed.my_setup.unwrap().data,
        DataChoice::Drawn(..)
    ));
}

#[test]
fn a_drawing_saved_as_csv_opens_as_the_same_data() {
    let DataChoice::Drawn(points, labels) = drawn() else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drawing.csv");
    diffusion_playground::data::write_csv(&path, &points, Some(&labels)).unwrap();
    let mut h = harness(test_settings());
    h.run_steps(1);
    h.state_mut().set_data(drawn());
    let from_drawing = h.state().data.clone();
    ui_common::drop_file(&mut h, &path);
    assert_eq!(h.state().data_error, None);
    assert_eq!(h.state().data.points, from_drawing.points);
    assert_eq!(h.state().data.labels, from_drawing.labels);
    assert!(matches!(h.state().settings.data, DataChoice::Csv(_)));
}

#[test]
fn the_lesson_on_unstandardised_data_moves_it_and_back_to_my_setup_puts_it_home() {
    let mut h = harness(test_settings());
    h.run_steps(1);
    let centre = |h: &egui_kittest::Harness<'_, diffusion_playground::app::App>| {
        let p = &h.state().data.points;
        p.iter().map(|q| q[0] as f64).sum::<f64>() / p.len() as f64
    };
    assert!(centre(&h).abs() < 0.1);
    click(&mut h, "Lessons");
    // Lesson 9: when t = 1 is not noise.
    while h.state().settings.teach.lesson.position().0 < 8 {
        h.get_by_label("Next ▶").click();
        h.run_steps(1);
    }
    h.run_steps(2);
    let s = &h.state().settings;
    assert!(!s.placement.is_standard());
    // The data sits where the lesson put it, and the forward check says x₁ is not noise.
    assert!(
        (centre(&h) - f64::from(s.placement.shift)).abs() < 0.1,
        "{}",
        centre(&h)
    );
    let check = ui_common::run_until(&mut h, 30.0, |h| h.state().player.noise_check().is_some());
    assert!(check);
    assert!(!h.state().player.noise_check().unwrap().reached_noise());
    click(&mut h, "↩ Back to my setup");
    assert!(h.state().settings.placement.is_standard());
    assert!(centre(&h).abs() < 0.1);
}
