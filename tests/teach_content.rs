//! The formulas panel and the lessons.

use std::collections::HashSet;

use diffusion_playground::math::Schedule;
use diffusion_playground::math::solvers::SamplerKind;
use diffusion_playground::teach::formulas::{Coefficients, flow_formulas, format_number, formulas};
use diffusion_playground::teach::lessons::{LESSONS, LessonCursor, Preset, sentence_count};

/// The numbers of the default linear schedule at t = 0.5, computed by hand:
/// β = 0.1 + 0.5·19.9 = 10.05, B = 0.05 + 0.125·19.9 = 2.5375, α = e^{−B/2}, σ = √(1 − α²).
#[test]
fn coefficients_and_strings_of_the_linear_schedule() {
    let c = Coefficients::at(&Schedule::default(), 0.5);
    let alpha = (-2.5375f64 / 2.0).exp();
    let sigma = (1.0 - alpha * alpha).sqrt();
    assert!((c.beta - 10.05).abs() < 1e-12);
    assert!((c.big_b - 2.5375).abs() < 1e-12);
    assert!((c.alpha - alpha).abs() < 1e-12);
    assert!((c.sigma - sigma).abs() < 1e-12);
    assert!((c.snr - alpha * alpha / (sigma * sigma)).abs() < 1e-12);
    assert!((c.log_snr - (alpha * alpha / (sigma * sigma)).ln()).abs() < 1e-12);

    let f = formulas(&Schedule::default(), 0.5);
    // ½β = 5.025, √β = 3.170, β = 10.05
    assert_eq!(f.forward_sde[1], "dx = −5.025 x dt + 3.170 dW");
    assert_eq!(
        f.reverse_sde[1],
        "dx = [−5.025 x − 10.05 ∇ₓlog pₜ(x)] dt + 3.170 dW̄"
    );
    assert_eq!(f.pf_ode[1], "dx/dt = −5.025 [x + ∇ₓlog pₜ(x)]");
    assert_eq!(
        f.marginal[1],
        format!(
            "xₜ = {} x₀ + {} ε",
            format_number(alpha, 4),
            format_number(sigma, 4)
        )
    );
    assert_eq!(f.marginal[1], "xₜ = 0.2812 x₀ + 0.9597 ε");
    assert!(f.values.contains("β = 10.05"), "{}", f.values);
    assert!(f.values.contains("log SNR = −2.455"), "{}", f.values);
    assert_eq!(f.schedule, "linear: β(t) = 0.1000 + t·(20.00 − 0.1000)");
}

/// The constant schedule is the lecture's OU process: β = 2 gives dx = −x dt + √2 dW, and
/// α = e^{−t}; the cosine schedule says where its β is capped.
#[test]
fn constant_and_cosine_schedules() {
    let s = Schedule::Constant { beta: 2.0 };
    let f = formulas(&s, 0.25);
    assert_eq!(f.forward_sde[1], "dx = −1.000 x dt + 1.414 dW");
    assert!((f.coefficients.alpha - (-0.25f64).exp()).abs() < 1e-12);
    assert!(f.schedule.contains("Ornstein–Uhlenbeck"));
    let cos = formulas(&Schedule::Cosine { beta_cap: 20.0 }, 0.999);
    assert_eq!(cos.coefficients.beta, 20.0);
    assert!(cos.schedule.contains("capped at 20.00"), "{}", cos.schedule);
    // Tiny SNR at t = 1 of the linear schedule needs the ×10ⁿ form.
    let end = formulas(&Schedule::default(), 1.0);
    assert!(end.values.contains("×10⁻⁵"), "{}", end.values);
}

/// Every lesson's preset can be applied, and its text is two or three sentences.
#[test]
fn every_lesson_preset_is_valid() {
    let mut titles = HashSet::new();
    for lesson in &LESSONS {
        lesson
            .preset
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", lesson.title));
        lesson.preset.schedule.validate().unwrap();
        assert!(SamplerKind::ALL.contains(&lesson.preset.sampler));
        assert!(lesson.preset.steps >= 1);
        let n = sentence_count(lesson.text);
        assert!((2..=3).contains(&n), "{}: {n} sentences", lesson.title);
        assert!(titles.insert(lesson.title));
        let json = serde_json::to_string(&lesson.preset).unwrap();
        let back: Preset = serde_json::from_str(&json).unwrap();
        assert_eq!(back, lesson.preset);
    }
    assert!(LESSONS.iter().any(|l| l.preset.views.guidance));
    assert!(LESSONS[0].preset.views.forward);
}

#[test]
fn invalid_presets_are_refused() {
    let good = LESSONS[0].preset;
    let cases = [
        Preset { steps: 0, ..good },
        Preset {
            steps: 5000,
            ..good
        },
        Preset { t_min: 0.0, ..good },
        Preset {
            guidance_scale: 11.0,
            ..good
        },
        Preset {
            class: Some(3),
            ..good
        }, // the swiss roll has no classes
        Preset {
            schedule: Schedule::Linear {
                beta_min: 5.0,
                beta_max: 1.0,
            },
            ..good
        },
    ];
    for p in cases {
        assert!(p.validate().is_err(), "{p:?}");
    }
}

#[test]
fn cursor_moves_within_the_tour() {
    let mut c = LessonCursor::default();
    assert!(c.is_first());
    assert!(!c.previous_lesson());
    let mut moves = 0;
    while c.next_lesson() {
        moves += 1;
    }
    assert_eq!(moves, LESSONS.len() - 1);
    assert!(c.is_last());
    assert_eq!(c.position(), (LESSONS.len() - 1, LESSONS.len()));
    assert_eq!(c.current().title, LESSONS[LESSONS.len() - 1].title);
    assert!(c.previous_lesson());
    assert_eq!(c.current().title, LESSONS[LESSONS.len() - 2].title);
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<LessonCursor>(&json).unwrap(), c);
}

/// Flow matching's panel: the straight path's coefficients, the score factor 1/t and the SDE
/// noise √(2t) at the scrubbed time.
#[test]
fn flow_formulas_show_the_straight_path_at_t() {
    let f = flow_formulas(0.25);
    assert_eq!(f.path[1], "xₜ = 0.7500 x₀ + 0.2500 ε");
    assert_eq!(f.score[1], "∇ₓlog pₜ(x) = −4.000 (x + 0.7500 v)");
    assert_eq!(f.reverse_sde[1], "dx = [v + x + 0.7500 v] dt + 0.7071 dW̄");
    assert!(f.values.starts_with("t = 0.2500"));
    assert_eq!(f.rows().len(), 5);
}
