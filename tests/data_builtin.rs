//! The built-in datasets: names, sizes, standardisation, reproducibility, labels, and the
//! exact mixtures against samples.

use diffusion_playground::Point;
use diffusion_playground::data::{self, BuiltIn};

const NAMES: [&str; 8] = [
    "swiss-roll",
    "moons",
    "8-gaussians",
    "25-gaussians",
    "checkerboard",
    "rings",
    "spirals",
    "pinwheel",
];

fn mean_and_spread(points: &[Point]) -> ([f64; 2], f64) {
    let n = points.len() as f64;
    let mut mean = [0.0; 2];
    for p in points {
        mean[0] += p[0] as f64 / n;
        mean[1] += p[1] as f64 / n;
    }
    let ms: f64 = points
        .iter()
        .map(|p| (p[0] as f64 - mean[0]).powi(2) + (p[1] as f64 - mean[1]).powi(2))
        .sum::<f64>()
        / (2.0 * n);
    (mean, ms.sqrt())
}

#[test]
fn names_are_exact_and_round_trip() {
    let names: Vec<&str> = BuiltIn::all().iter().map(|b| b.name()).collect();
    assert_eq!(names, NAMES);
    for b in BuiltIn::all() {
        assert_eq!(BuiltIn::from_name(b.name()), Some(*b));
        assert_eq!(b.to_string(), b.name());
        let json = serde_json::to_string(b).expect("serialise");
        assert_eq!(json, format!("\"{}\"", b.name()));
        assert_eq!(
            serde_json::from_str::<BuiltIn>(&json).expect("deserialise"),
            *b
        );
    }
    for bad in ["", "swissroll", "Moons", "8gaussians", "2spirals", "moons "] {
        assert_eq!(BuiltIn::from_name(bad), None, "{bad:?}");
    }
}

#[test]
fn every_builtin_is_standardised_and_has_the_requested_size() {
    let n = 200_000;
    for &b in BuiltIn::all() {
        let d = data::sample(b, n, 1);
        assert_eq!(d.name, b.name());
        assert_eq!(d.points.len(), n, "{b}");
        assert!(
            d.points
                .iter()
                .all(|p| p[0].is_finite() && p[1].is_finite()),
            "{b}"
        );
        let (mean, spread) = mean_and_spread(&d.points);
        assert!(
            mean[0].abs() < 0.02 && mean[1].abs() < 0.02,
            "{b}: mean {mean:?}"
        );
        assert!((spread - 1.0).abs() < 0.02, "{b}: spread {spread}");
    }
    for &b in BuiltIn::all() {
        assert_eq!(data::sample(b, 0, 3).points.len(), 0);
        assert_eq!(data::sample(b, 7, 3).points.len(), 7);
    }
}

#[test]
fn same_seed_same_points_other_seed_independent_points() {
    for &b in BuiltIn::all() {
        let a = data::sample(b, 2000, 42);
        assert_eq!(a, data::sample(b, 2000, 42), "{b}");
        let other = data::sample(b, 2000, 43);
        let same = a
            .points
            .iter()
            .zip(&other.points)
            .filter(|(p, q)| p == q)
            .count();
        assert_eq!(same, 0, "{b}: {same} identical points for different seeds");
        // Independence, roughly: x of draw i under one seed does not predict x under another.
        let (xa, xb): (Vec<f64>, Vec<f64>) = a
            .points
            .iter()
            .zip(&other.points)
            .map(|(p, q)| (p[0] as f64, q[0] as f64))
            .unzip();
        let corr = correlation(&xa, &xb);
        assert!(corr.abs() < 0.1, "{b}: correlation {corr} between seeds");
        // A shorter draw is a prefix of a longer one with the same seed.
        assert_eq!(data::sample(b, 100, 42).points, a.points[..100], "{b}");
    }
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn labels_are_in_range_and_balanced() {
    let n = 100_000;
    for &b in BuiltIn::all() {
        let d = data::sample(b, n, 5);
        assert_eq!(d.num_classes, b.num_classes(), "{b}");
        let Some(labels) = &d.labels else {
            assert_eq!(d.num_classes, 0, "{b}: no labels but classes");
            continue;
        };
        assert!(d.num_classes >= 2, "{b}");
        assert_eq!(labels.len(), n, "{b}");
        let mut counts = vec![0usize; d.num_classes as usize];
        for &l in labels {
            assert!(l < d.num_classes, "{b}: label {l}");
            counts[l as usize] += 1;
        }
        let expected = n as f64 / d.num_classes as f64;
        for (k, &c) in counts.iter().enumerate() {
            assert!(
                (c as f64 / expected - 1.0).abs() < 0.1,
                "{b}: class {k} has {c} points"
            );
        }
    }
    let expected_classes = [0, 2, 8, 25, 0, 4, 2, 5];
    let classes: Vec<u32> = BuiltIn::all().iter().map(|b| b.num_classes()).collect();
    assert_eq!(classes, expected_classes);
}

/// Per-class means and radii that pin down the shapes the labels name.
#[test]
fn labels_name_the_right_parts() {
    let n = 100_000;
    let by_class = |b: BuiltIn| {
        let d = data::sample(b, n, 9);
        let labels = d.labels.expect("labelled");
        let mut groups = vec![Vec::new(); d.num_classes as usize];
        for (p, l) in d.points.iter().zip(labels) {
            groups[l as usize].push(*p);
        }
        groups
    };
    // Moons: the outer moon (0) lies above and left of the inner one (1).
    let moons = by_class(BuiltIn::Moons);
    let (m0, m1) = (mean_and_spread(&moons[0]).0, mean_and_spread(&moons[1]).0);
    assert!(
        m0[1] > m1[1] + 0.3 && m0[0] < m1[0] - 0.3,
        "moons {m0:?} {m1:?}"
    );
    // Rings: mean radius grows like k + 1.
    let rings = by_class(BuiltIn::Rings);
    let radius = |g: &[Point]| {
        g.iter()
            .map(|p| (p[0] as f64).hypot(p[1] as f64))
            .sum::<f64>()
            / g.len() as f64
    };
    let r0 = radius(&rings[0]);
    for (k, g) in rings.iter().enumerate() {
        let ratio = radius(g) / r0;
        assert!(
            (ratio - (k + 1) as f64).abs() < 0.05,
            "ring {k}: ratio {ratio}"
        );
    }
    // Spirals: the arms are point reflections of each other.
    let spirals = by_class(BuiltIn::Spirals);
    let (a, b) = (
        mean_and_spread(&spirals[0]).0,
        mean_and_spread(&spirals[1]).0,
    );
    assert!(
        (a[0] + b[0]).abs() < 0.03 && (a[1] + b[1]).abs() < 0.03,
        "{a:?} {b:?}"
    );
    assert!(
        a[0].hypot(a[1]) > 0.1,
        "arm mean {a:?} should be off-centre"
    );
    // Pinwheel: arm means are rotations of each other by −2π/5 (FFJORD's orientation).
    let pin = by_class(BuiltIn::Pinwheel);
    let angles: Vec<f64> = pin
        .iter()
        .map(|g| {
            let m = mean_and_spread(g).0;
            m[1].atan2(m[0])
        })
        .collect();
    for k in 1..5 {
        let step = (angles[k] - angles[k - 1]).rem_euclid(std::f64::consts::TAU);
        let expected = std::f64::consts::TAU - std::f64::consts::TAU / 5.0;
        assert!(
            (step - expected).abs() < 0.05,
            "pinwheel arm {k}: step {step}"
        );
    }
}

#[test]
fn mixtures_match_samples() {
    for &b in BuiltIn::all() {
        let expected = matches!(b, BuiltIn::EightGaussians | BuiltIn::TwentyFiveGaussians);
        assert_eq!(data::mixture(b).is_some(), expected, "{b}");
    }
    for b in [BuiltIn::EightGaussians, BuiltIn::TwentyFiveGaussians] {
        let mix = data::mixture(b).expect("a mixture");
        assert_eq!(mix.len(), b.num_classes() as usize);
        assert!((mix.iter().map(|c| c.weight).sum::<f64>() - 1.0).abs() < 1e-12);
        // The mixture's own moments are exactly standardised.
        let mean = [0, 1].map(|i| mix.iter().map(|c| c.weight * c.mean[i]).sum::<f64>());
        let second: f64 = mix
            .iter()
            .map(|c| c.weight * (c.cov[0][0] + c.cov[1][1] + c.mean[0].powi(2) + c.mean[1].powi(2)))
            .sum::<f64>()
            / 2.0;
        assert!(
            mean[0].abs() < 1e-12 && mean[1].abs() < 1e-12,
            "{b}: {mean:?}"
        );
        assert!((second - 1.0).abs() < 1e-9, "{b}: spread² {second}");

        let n = 400_000;
        let d = data::sample(b, n, 11);
        let labels = d.labels.expect("labelled");
        for (k, c) in mix.iter().enumerate() {
            let pts: Vec<[f64; 2]> = d
                .points
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l as usize == k)
                .map(|(p, _)| [p[0] as f64, p[1] as f64])
                .collect();
            let m = pts.len() as f64;
            assert!((m / n as f64 - c.weight).abs() < 5.0 * (c.weight / n as f64).sqrt() + 1e-3);
            let mean = [0, 1].map(|i| pts.iter().map(|p| p[i]).sum::<f64>() / m);
            let cov = [[0, 0], [0, 1], [1, 1]].map(|[i, j]| {
                pts.iter()
                    .map(|p| (p[i] - mean[i]) * (p[j] - mean[j]))
                    .sum::<f64>()
                    / m
            });
            let sd = c.cov[0][0].sqrt();
            for i in 0..2 {
                let err = (mean[i] - c.mean[i]).abs();
                assert!(
                    err < 5.0 * sd / m.sqrt(),
                    "{b} #{k}: mean {mean:?} vs {:?}",
                    c.mean
                );
            }
            let rel = |got: f64, want: f64| (got - want).abs() / c.cov[0][0];
            assert!(
                rel(cov[0], c.cov[0][0]) < 0.06,
                "{b} #{k}: {cov:?} vs {:?}",
                c.cov
            );
            assert!(
                rel(cov[1], c.cov[0][1]) < 0.06,
                "{b} #{k}: {cov:?} vs {:?}",
                c.cov
            );
            assert!(
                rel(cov[2], c.cov[1][1]) < 0.06,
                "{b} #{k}: {cov:?} vs {:?}",
                c.cov
            );
        }
    }
}

/// `normalization()` maps FFJORD's units to ours: the 8 Gaussians' centres sit at radius
/// 4/1.414 in FFJORD's units.
#[test]
fn normalization_maps_ffjord_units() {
    let norm = BuiltIn::EightGaussians.normalization();
    let mix = data::mixture(BuiltIn::EightGaussians).expect("a mixture");
    let c = mix[0].mean;
    let back = norm.invert([c[0] as f32, c[1] as f32]);
    assert!(
        (back[0] - 4.0 / 1.414).abs() < 1e-5 && back[1].abs() < 1e-5,
        "{back:?}"
    );
}
