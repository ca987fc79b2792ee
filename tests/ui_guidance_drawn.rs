//! Guidance on the user's own labelled data, driven through egui_kittest: a drawing painted
//! in two colours, and a CSV file with a label column.

mod ui_common;

use diffusion_playground::app::{App, DataChoice, ExploreTab};
use egui::{Event, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ui_common::{harness, run_until, test_settings};

/// Drags the mouse from `from` to `to` in small moves, one frame each (a stroke).
fn stroke(h: &mut Harness<'_, App>, from: Pos2, to: Pos2) {
    let button = |pos, pressed| Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    };
    h.event(Event::PointerMoved(from));
    h.run_steps(1);
    h.event(button(from, true));
    h.run_steps(1);
    for k in 1..=12 {
        h.event(Event::PointerMoved(from + (to - from) * (k as f32 / 12.0)));
        h.run_steps(1);
    }
    h.event(button(to, false));
    h.run_steps(1);
}

/// The percentage in "NN % of the samples are nearest to class C", if shown.
fn nearest_share(h: &Harness<'_, App>, class: u32) -> Option<u32> {
    (0..=100).rev().find(|p| {
        h.query_by_label_contains(&format!(
            "{p} % of the samples are nearest to class {class}"
        ))
        .is_some()
    })
}

#[test]
fn guidance_steers_toward_a_drawn_colour() {
    let mut settings = test_settings();
    settings.sampler.steps = 50;
    let mut h = harness(settings);
    h.run_steps(1);

    // Draw your own: two short strokes, the first in colour 0, the second in colour 1.
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Dataset")
        .click();
    h.run_steps(3);
    h.get_by_label("draw your own…").click();
    h.run_steps(2);
    assert!(h.state().drawing.is_some());
    h.get_by_label("● 0").click();
    h.run_steps(1);
    stroke(&mut h, Pos2::new(600.0, 280.0), Pos2::new(680.0, 300.0));
    h.get_by_label("● 1").click();
    h.run_steps(1);
    stroke(&mut h, Pos2::new(880.0, 480.0), Pos2::new(960.0, 500.0));
    let counts = h.state().drawing.as_ref().unwrap().counts();
    assert!(
        counts[0] >= 20 && counts[1] >= 20,
        "both colours painted: {counts:?}"
    );
    assert!(h.query_by_label_contains("points drawn (0: ").is_some());
    h.get_by_label("Train on drawing").click();
    h.run_steps(2);
    let app = h.state();
    assert!(matches!(app.settings.data, DataChoice::Drawn(..)));
    assert_eq!(app.data.num_classes, 2);
    let labels = app
        .data
        .labels
        .as_ref()
        .expect("drawn points keep their colours");
    assert_eq!(labels.len(), app.data.points.len());
    assert!(
        h.query_by_label_contains("standardised, 2 classes")
            .is_some()
    );

    // Guidance toward colour 1 with γ = 3: the samples land by the class-1 points.
    h.state_mut().settings.teach.explore = true;
    h.state_mut().settings.teach.tab = ExploreTab::Guidance;
    h.state_mut().explore.guidance.class = 1;
    h.state_mut().explore.guidance.scale = 3.0;
    assert!(run_until(&mut h, 60.0, |h| nearest_share(h, 1).is_some()));
    let share = nearest_share(&h, 1).unwrap();
    eprintln!("drawn {counts:?}; {share} % nearest to class 1");
    assert!(share > 80, "γ = 3 toward class 1: only {share} %");
    assert!(
        h.query_by_label_contains("labels from drawing: 2 classes")
            .is_some()
    );
    // Without guidance (γ = 0) the samples split between the colours.
    h.state_mut().explore.guidance.scale = 0.0;
    assert!(run_until(&mut h, 60.0, |h| h
        .query_by_label_contains("γ = 0.0")
        .is_some()
        && nearest_share(h, 1).is_some()));
    let plain = nearest_share(&h, 1).unwrap();
    eprintln!("γ = 0: {plain} % nearest to class 1");
    assert!(plain < share, "γ = 0 ({plain} %) vs γ = 3 ({share} %)");

    // Classifier-free guidance: a class-conditional network of the drawing's two classes.
    h.state_mut().explore.guidance.cfg.steps = 400;
    // Below the classifier-guidance plots: scroll to it, then click.
    h.get_by_label("Train a class-conditional network")
        .scroll_to_me();
    h.run_steps(2);
    h.get_by_label("Train a class-conditional network")
        .click_accesskit();
    assert!(run_until(&mut h, 60.0, |h| h
        .state()
        .explore
        .guidance
        .cfg
        .trained()));
    assert!(
        h.query_by_label_contains("400 steps on drawing, 2 classes")
            .is_some()
    );
    h.state_mut().explore.guidance.cfg.class = Some(1);
    h.state_mut().explore.guidance.cfg.w = 3.0;
    assert!(run_until(&mut h, 60.0, |h| h
        .state()
        .explore
        .guidance
        .cfg
        .result()
        .is_some_and(|(c, w, _)| c == Some(1) && w == 3.0)));
    let (_, _, fractions) = h.state().explore.guidance.cfg.result().unwrap();
    eprintln!("CFG w = 3 on class 1: {fractions:?}");
    assert_eq!(fractions.len(), 2);
    assert!(fractions[1] > 0.6, "CFG toward class 1: {fractions:?}");
}

#[test]
fn a_labelled_csv_loads_with_its_classes() {
    let dir = std::env::temp_dir().join(format!("dp-guidance-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("three.csv");
    let mut text = String::from("x,y,label\n");
    for i in 0..300 {
        let c = i % 3;
        let (cx, cy) = [(0.0, 0.0), (10.0, 0.0), (5.0, 8.0)][c];
        let j = (i / 3) as f64;
        text += &format!("{},{},{c}\n", cx + (j * 0.37).sin(), cy + (j * 0.71).cos());
    }
    std::fs::write(&path, text).unwrap();

    let mut settings = test_settings();
    settings.sampler.steps = 50;
    let mut h = harness(settings);
    h.run_steps(1);
    ui_common::drop_file(&mut h, &path);
    assert_eq!(h.state().data_error, None);
    assert_eq!(h.state().data.num_classes, 3);
    assert!(
        h.query_by_label_contains("300 points, standardised, 3 classes")
            .is_some()
    );

    h.state_mut().settings.teach.explore = true;
    h.state_mut().settings.teach.tab = ExploreTab::Guidance;
    h.state_mut().explore.guidance.class = 2;
    h.state_mut().explore.guidance.scale = 3.0;
    assert!(run_until(&mut h, 60.0, |h| nearest_share(h, 2).is_some()));
    assert!(
        h.query_by_label_contains("labels from three.csv: 3 classes")
            .is_some()
    );
    let share = nearest_share(&h, 2).unwrap();
    eprintln!("{share} % nearest to class 2");
    assert!(share > 80, "γ = 3 toward class 2: only {share} %");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unlabelled_csv_says_guidance_needs_labels() {
    let dir = std::env::temp_dir().join(format!("dp-guidance-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plain.csv");
    let text: String = (0..50)
        .map(|i| format!("{},{}\n", (i as f64 * 0.3).sin(), (i as f64 * 0.7).cos()))
        .collect();
    std::fs::write(&path, text).unwrap();
    let mut settings = test_settings();
    settings.teach.explore = true;
    settings.teach.tab = ExploreTab::Guidance;
    let mut h = harness(settings);
    h.run_steps(1);
    ui_common::drop_file(&mut h, &path);
    assert_eq!(h.state().data.labels, None);
    assert!(h.query_by_label_contains("no labels").is_some());
    assert!(
        h.query_by_label_contains("Guidance needs labelled data")
            .is_some()
    );
    std::fs::remove_dir_all(&dir).ok();
}
