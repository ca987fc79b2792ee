//! Standardisation: fit gives zero mean and unit spread, invert ∘ apply is the identity,
//! degenerate data never divides by zero, and the map survives serde.

use diffusion_playground::Point;
use diffusion_playground::data::Normalization;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn cloud(seed: u64, n: usize) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            [
                300.0 + 50.0 * rng.random::<f32>(),
                -7.0 + 5.0 * rng.random::<f32>(),
            ]
        })
        .collect()
}

#[test]
fn fit_standardises() {
    let points = cloud(1, 10_000);
    let norm = Normalization::fit(&points);
    let z = norm.apply_all(&points);
    let n = z.len() as f64;
    let mean = [0, 1].map(|i| z.iter().map(|p| p[i] as f64).sum::<f64>() / n);
    let ms = z
        .iter()
        .map(|p| (p[0] as f64).powi(2) + (p[1] as f64).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean[0].abs() < 1e-4 && mean[1].abs() < 1e-4, "{mean:?}");
    assert!((ms / 2.0 - 1.0).abs() < 1e-4, "spread² {}", ms / 2.0);
    // One scale for both axes: the aspect ratio survives.
    let width = |pts: &[Point], i: usize| {
        let (lo, hi) = pts.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
            (lo.min(p[i]), hi.max(p[i]))
        });
        hi - lo
    };
    let before = width(&points, 0) / width(&points, 1);
    let after = width(&z, 0) / width(&z, 1);
    assert!(
        (before - after).abs() < 1e-3 * before,
        "{before} vs {after}"
    );
}

#[test]
fn invert_undoes_apply() {
    let points = cloud(2, 1000);
    let norm = Normalization::fit(&points);
    for (p, q) in points.iter().zip(norm.invert_all(&norm.apply_all(&points))) {
        for i in 0..2 {
            assert!(
                (p[i] - q[i]).abs() <= 1e-5 * p[i].abs().max(1.0),
                "{p:?} vs {q:?}"
            );
        }
    }
    for z in [[0.0, 0.0], [1.5, -2.0]] {
        let back = norm.apply(norm.invert(z));
        assert!(
            (back[0] - z[0]).abs() < 1e-4 && (back[1] - z[1]).abs() < 1e-4,
            "{back:?}"
        );
    }
}

#[test]
fn degenerate_input_never_divides_by_zero() {
    assert_eq!(Normalization::fit(&[]), Normalization::IDENTITY);
    let same = Normalization::fit(&[[2.0, 3.0]; 5]);
    assert_eq!(
        same,
        Normalization {
            mean: [2.0, 3.0],
            scale: 1.0
        }
    );
    assert_eq!(same.apply([2.0, 3.0]), [0.0, 0.0]);
    assert_eq!(
        Normalization::fit(&[[f32::NAN, 0.0], [1.0, 1.0]]),
        Normalization::IDENTITY
    );
    let huge = Normalization::fit(&[[f32::MAX, 0.0], [-f32::MAX, 0.0]]);
    assert!(huge.scale.is_finite() && huge.scale > 0.0, "{huge:?}");
}

#[test]
fn serde_round_trip() {
    let norm = Normalization::fit(&cloud(3, 100));
    let json = serde_json::to_string(&norm).expect("serialise");
    assert_eq!(
        serde_json::from_str::<Normalization>(&json).expect("deserialise"),
        norm
    );
}

/// Found while writing the CSV fuzz contract (fuzz/corpus/csv/regression-*): data at both
/// ends of f32's range standardises to finite points (in f32, −3.4e38 minus a mean of 1.1e38
/// was −∞) and maps back.
#[test]
fn data_at_the_ends_of_f32_standardises_to_finite_points() {
    let points = [[3.4e38, 0.0], [3.4e38, 1.0], [-3.4e38, -1.0]];
    let norm = Normalization::fit(&points);
    let z = norm.apply_all(&points);
    assert!(z.iter().flatten().all(|v| v.is_finite()), "{z:?}");
    for (p, q) in points.iter().zip(norm.invert_all(&z)) {
        assert!((p[0] - q[0]).abs() <= 1e-6 * p[0].abs(), "{p:?} vs {q:?}");
    }
}
