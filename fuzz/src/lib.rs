//! The contracts of the parsers of outside bytes, checked by the cargo fuzz targets
//! (`fuzz_targets/`) and by the stable mutation test (`tests/mutation.rs`, which includes this
//! file). Each `check_*` takes any bytes, panics when the parser breaks its contract (a panic
//! of its own, or a result that is not usable), and returns whether the input was accepted.
//!
//! - CSV (`data::parse_csv`): on Ok, at least two finite points, one label per point below
//!   `MAX_CLASSES` and `num_classes` one more than the largest, and standardised points (what
//!   training sees) that are finite;
//! - weights (`nn::weights::from_bytes`): on Ok, a `NetModel` builds from the file and
//!   evaluates ε̂ and ∇·ε̂ (for the null class and a class) without panicking, finite wherever
//!   the weights themselves bound them well below f32's range;
//! - settings (`app::Settings::restore`, the text eframe stored): never panics, whatever the
//!   text; the result needs no more fixes, its schedule and training config validate, and
//!   it is saved and restored unchanged.

use diffusion_playground::Point;
use diffusion_playground::app::{DataChoice, LoadedData, Settings};
use diffusion_playground::data::{BuiltIn, MAX_CLASSES, Normalization, parse_csv};
use diffusion_playground::math::ScoreModel;
use diffusion_playground::nn::{NetModel, Parameterization, SavedModel, weights};
use diffusion_playground::train::train_config;

/// CSV bytes, as a file or a drop delivers them.
pub fn check_csv(bytes: &[u8]) -> bool {
    let Ok(data) = parse_csv("fuzz.csv", bytes) else {
        return false;
    };
    let points = &data.points;
    assert!(points.len() >= 2, "accepted {} points", points.len());
    assert!(all_finite(points), "accepted a non-finite point");
    match &data.labels {
        Some(labels) => {
            assert_eq!(labels.len(), points.len(), "one label per point");
            assert!(labels.iter().all(|&l| l < MAX_CLASSES), "label too large");
            let largest = labels.iter().copied().max().unwrap_or(0);
            assert_eq!(data.num_classes, largest + 1, "num_classes");
        }
        None => assert_eq!(data.num_classes, 0, "classes without labels"),
    }
    check_standardised(points);
    true
}

/// Points standardise to finite points, with a finite mean and a positive finite scale.
fn check_standardised(points: &[Point]) {
    let n = Normalization::fit(points);
    assert!(
        n.mean.iter().all(|m| m.is_finite()) && n.scale.is_finite() && n.scale > 0.0,
        "normalisation {n:?}"
    );
    let standardised = n.apply_all(points);
    if let Some(i) = standardised
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        panic!(
            "point {i} {:?} standardises to {:?} under {n:?}",
            points[i], standardised[i]
        );
    }
}

fn all_finite(points: &[Point]) -> bool {
    points.iter().all(|p| p[0].is_finite() && p[1].is_finite())
}

/// Points where the model is evaluated: all within |x| ≤ `X_BOUND` on each axis.
const XS: [Point; 5] = [
    [0.0, 0.0],
    [1.0, -1.0],
    [-4.0, 4.0],
    [0.5, 3.0],
    [-2.0, -0.25],
];
const X_BOUND: f64 = 4.0;
/// Largest pre-activation for which the activations' fast approximations keep their slope
/// bounds (GELU's derivative drifts once z³ · 1e-39 is not small, past |z| ≈ 1e12).
const PRE_ACTIVATION_LIMIT: f64 = 1e12;
/// Largest bound on ε̂ and ∇·ε̂ under which they must be finite (f32 ends at 3.4e38).
const OUTPUT_LIMIT: f64 = 1e30;

/// The bytes of a weights file, through to a usable model.
pub fn check_weights(bytes: &[u8]) -> bool {
    let Ok(saved) = weights::from_bytes(bytes, "fuzz.safetensors") else {
        return false;
    };
    let model = match NetModel::from_saved(&saved) {
        Ok(model) => model,
        Err(e) => panic!("the loader accepted a file the model refuses: {e}"),
    };
    let n = XS.len();
    for t in [saved.t_min, 0.5, 1.0] {
        let must_be_finite = bound(&saved, t).is_some_and(|b| b < OUTPUT_LIMIT);
        let (mut eps, mut eps2, mut div) = (vec![[0.0; 2]; n], vec![[0.0; 2]; n], vec![0.0; n]);
        model.eps(&XS, t, &mut eps);
        model.eps_div(&XS, t, &mut eps2, &mut div);
        let mut by_class = vec![[0.0; 2]; n];
        if saved.config.num_classes > 0 {
            model.eps_class(&XS, t, Some(saved.config.num_classes - 1), &mut by_class);
        }
        if must_be_finite {
            assert!(all_finite(&eps), "ε̂ at t = {t}: {eps:?}");
            assert!(all_finite(&eps2), "ε̂ (with ∇·) at t = {t}: {eps2:?}");
            assert!(div.iter().all(|d| d.is_finite()), "∇·ε̂ at t = {t}: {div:?}");
            assert!(
                all_finite(&by_class),
                "ε̂ of a class at t = {t}: {by_class:?}"
            );
        }
    }
    true
}

/// A bound on |ε̂| and |∇·ε̂| at time `t` over points with |x| ≤ `X_BOUND`, from the weights
/// alone, or `None` where some pre-activation may pass `PRE_ACTIVATION_LIMIT`. Each input is at
/// most `X_BOUND` (x), 1 (the embedding, t, a one-hot class); a layer's outputs are at most
/// fan_in · max|W| · (its inputs' bound) + max|b|; SiLU, GELU and ReLU are at most |z| + 1 and
/// their slopes at most 1.2.
fn bound(saved: &SavedModel, t: f32) -> Option<f64> {
    let layers = saved.config.layers();
    let max_abs = |xs: &[f32]| xs.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let (mut value, mut slope) = (X_BOUND, 1.0f64);
    for (l, layer) in layers.iter().enumerate() {
        let w = max_abs(layer.weight(&saved.params));
        let b = max_abs(layer.bias(&saved.params));
        let fan_in = layer.fan_in as f64;
        value = fan_in * w * value + b;
        slope *= fan_in * w;
        if value.is_nan() || value > PRE_ACTIVATION_LIMIT {
            return None;
        }
        if l + 1 < layers.len() {
            value += 1.0;
            slope *= 1.2;
        }
    }
    // The raw output o and its Jacobian; the trace of ∂o/∂x is at most 2 · slope.
    let trace = 2.0 * slope;
    let alpha = saved.schedule.alpha(t as f64) as f32 as f64;
    let sigma = saved.schedule.sigma(t as f64) as f32 as f64;
    Some(match saved.config.param {
        Parameterization::Eps => value.max(trace),
        Parameterization::Score => sigma * value.max(trace),
        Parameterization::X0 if sigma > 0.0 => {
            ((X_BOUND + alpha * value) / sigma).max((2.0 + alpha * trace) / sigma)
        }
        Parameterization::X0 => f64::INFINITY,
    })
}

/// The text eframe stored for the app (as UTF-8, the way eframe's storage holds strings).
pub fn check_settings(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let (settings, notice) = Settings::restore(Some(&text));
    let mut again = settings.clone();
    let fixes = again.sanitize();
    assert!(fixes.is_empty(), "restore left values to fix: {fixes:?}");

    // What the app derives from them at start and in the panels.
    let schedule = settings.schedule.schedule();
    if let Err(e) = train_config(&settings.train, schedule).validate() {
        panic!("restored settings give a config the trainer refuses: {e}");
    }
    let mut cursor = settings.teach.lesson;
    let _ = (
        cursor.current(),
        cursor.position(),
        cursor.is_first(),
        cursor.is_last(),
    );
    cursor.next_lesson();
    cursor.previous_lesson();
    let mut sampler = settings.sampler;
    sampler.toggle_family();
    sampler.select(settings.sampler.kind);
    match &settings.data {
        DataChoice::BuiltIn(name) => {
            let _ = BuiltIn::from_name(name);
        }
        // Not read here: a fuzzer must not open the paths it makes up.
        DataChoice::Csv(_) => {}
        DataChoice::Drawn(..) => {
            if let Ok(data) = LoadedData::load(&settings.data) {
                assert!(
                    all_finite(&data.points),
                    "a drawing standardises to non-finite points"
                );
            }
        }
    }

    // What the app saves comes back unchanged (compared as text: a drawing may hold NaN).
    let saved = match settings.to_stored() {
        Ok(saved) => saved,
        Err(e) => panic!("restored settings do not serialise: {e}"),
    };
    let (back, back_notice) = Settings::restore(Some(&saved));
    assert_eq!(
        back_notice, None,
        "saved settings need a notice when restored"
    );
    assert_eq!(
        back.to_stored().ok().as_deref(),
        Some(saved.as_str()),
        "round trip"
    );
    // Accepted: the text parsed (its values may have needed fixes, with a notice).
    notice.is_none() || Settings::from_stored(&text).is_ok()
}
