//! Sample quality: sliced Wasserstein-2 and energy distance. Report each next to its floor,
//! the same metric between two independent draws of the data at the same size: no sampler can
//! beat the sampling noise of the metric itself.

use rayon::prelude::*;

use super::rng::uniform;
use crate::Point;

/// Projections used by [`sliced_w2`].
pub const PROJECTIONS: usize = 256;
const PROJECTION_SEED: u32 = 0x5EED_5111;

/// Sliced W₂ = sqrt(mean over directions θ of W₂²(θ·X, θ·Y)), with the 1D W₂² computed from
/// sorted projections. The directions are stratified-uniform on the circle from a fixed seed, so the
/// figure is reproducible. Unequal sizes compare quantiles at the larger size's levels.
pub fn sliced_w2(x: &[Point], y: &[Point]) -> f64 {
    if x.is_empty() || y.is_empty() {
        return f64::NAN;
    }
    let total: f64 = (0..PROJECTIONS as u32)
        .into_par_iter()
        .map(|k| {
            // Stratified: one uniform angle in each of K equal arcs (less variance than K
            // independent angles, same uniform law for each direction).
            let u = uniform(PROJECTION_SEED, 0, k, 0) as f64;
            let theta = std::f64::consts::TAU * (k as f64 + u) / PROJECTIONS as f64;
            let dir = [theta.cos(), theta.sin()];
            let project = |pts: &[Point]| {
                let mut v: Vec<f64> = pts
                    .iter()
                    .map(|p| p[0] as f64 * dir[0] + p[1] as f64 * dir[1])
                    .collect();
                v.sort_unstable_by(f64::total_cmp);
                v
            };
            let (px, py) = (project(x), project(y));
            let m = px.len().max(py.len());
            (0..m)
                .map(|i| {
                    let q = (i as f64 + 0.5) / m as f64;
                    (quantile(&px, q) - quantile(&py, q)).powi(2)
                })
                .sum::<f64>()
                / m as f64
        })
        .sum();
    (total / PROJECTIONS as f64).sqrt()
}

/// The empirical quantile of sorted values at level q ∈ (0, 1) (the order statistic).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Energy distance 2E|X−Y| − E|X−X'| − E|Y−Y'| (V-statistics: it is ≥ 0 and zero when the
/// samples coincide).
pub fn energy_distance(x: &[Point], y: &[Point]) -> f64 {
    if x.is_empty() || y.is_empty() {
        return f64::NAN;
    }
    let mean_dist = |a: &[Point], b: &[Point]| {
        a.par_iter()
            .map(|p| {
                b.iter()
                    .map(|q| {
                        let (dx, dy) = ((p[0] - q[0]) as f64, (p[1] - q[1]) as f64);
                        (dx * dx + dy * dy).sqrt()
                    })
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (a.len() * b.len()) as f64
    };
    2.0 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
}

/// Distance from each point to its nearest neighbour in `reference` (memorisation checks).
pub fn nearest_distances(points: &[Point], reference: &[Point]) -> Vec<f32> {
    points
        .par_iter()
        .map(|p| {
            reference
                .iter()
                .map(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))
                .fold(f32::INFINITY, f32::min)
                .sqrt()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::rng::{STREAM_PRIOR, normal2};

    fn gaussian(n: usize, seed: u32, shift: [f32; 2], scale: f32) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let z = normal2(seed, 0, i as u32, STREAM_PRIOR);
                [shift[0] + scale * z[0], shift[1] + scale * z[1]]
            })
            .collect()
    }

    /// A shift by d along x: the projected W₂² is d² cos²θ, whose circle mean is d²/2.
    #[test]
    fn sliced_w2_of_a_shift_is_closed_form() {
        let x = gaussian(4000, 1, [0.0, 0.0], 1.0);
        let y: Vec<Point> = x.iter().map(|p| [p[0] + 2.0, p[1]]).collect();
        let expected = (4.0f64 / 2.0).sqrt();
        assert!(
            (sliced_w2(&x, &y) - expected).abs() < 0.02,
            "{}",
            sliced_w2(&x, &y)
        );
        assert_eq!(sliced_w2(&x, &x), 0.0);
    }

    /// Scaling N(0, I) by s: each projection's W₂ is |s − 1|.
    #[test]
    fn sliced_w2_of_a_scale_is_closed_form() {
        let x = gaussian(20_000, 2, [0.0, 0.0], 1.0);
        let y = gaussian(20_000, 3, [0.0, 0.0], 2.0);
        assert!((sliced_w2(&x, &y) - 1.0).abs() < 0.03);
    }

    #[test]
    fn energy_distance_separates_and_is_near_zero_for_same_law() {
        let a = gaussian(1500, 4, [0.0, 0.0], 1.0);
        let b = gaussian(1500, 5, [0.0, 0.0], 1.0);
        let c = gaussian(1500, 6, [1.0, 0.0], 1.0);
        let same = energy_distance(&a, &b);
        let diff = energy_distance(&a, &c);
        assert!(same.abs() < 0.01, "{same}");
        assert!(diff > 0.2, "{diff}");
        assert!(energy_distance(&a, &a).abs() < 1e-9);
    }

    #[test]
    fn nearest_distance_finds_the_neighbour() {
        let d = nearest_distances(&[[0.0, 0.0], [3.0, 4.0]], &[[0.0, 1.0], [3.0, 0.0]]);
        assert_eq!(d, vec![1.0, 4.0]);
    }
}
