//! Shared fixtures for the integration tests: Gaussian data whose score is known exactly.
#![allow(dead_code)]

use diffusion_playground::Point;
use diffusion_playground::math::Schedule;
use diffusion_playground::math::oracle::{Component, Oracle};

/// N(μ, Σ) with a diagonal Σ: its PF-ODE flow has a closed form (below).
pub const MEAN: [f64; 2] = [1.0, -0.5];
pub const VAR: [f64; 2] = [0.05, 0.5];

pub fn diagonal_gaussian(schedule: Schedule) -> Oracle {
    Oracle::new(
        vec![Component {
            weight: 1.0,
            mean: MEAN,
            cov: [[VAR[0], 0.0], [0.0, VAR[1]]],
        }],
        schedule,
    )
}

/// The exact PF-ODE map from time `from` to time `to` for the diagonal Gaussian: each axis is
/// rescaled so its noised standard deviation √(α²v + σ²) is carried along,
/// x_to = α_to μ + √(C_to / C_from) (x_from − α_from μ).
pub fn exact_flow(schedule: &Schedule, x: &[Point], from: f64, to: f64) -> Vec<Point> {
    let c = |t: f64, d: usize| schedule.alpha(t).powi(2) * VAR[d] + schedule.sigma(t).powi(2);
    x.iter()
        .map(|p| {
            let mut out = [0.0f32; 2];
            for d in 0..2 {
                let scale = (c(to, d) / c(from, d)).sqrt();
                out[d] = (schedule.alpha(to) * MEAN[d]
                    + scale * (p[d] as f64 - schedule.alpha(from) * MEAN[d]))
                    as f32;
            }
            out
        })
        .collect()
}

pub fn mean_cov(x: &[Point]) -> ([f64; 2], [[f64; 2]; 2]) {
    let n = x.len() as f64;
    let m = [
        x.iter().map(|p| p[0] as f64).sum::<f64>() / n,
        x.iter().map(|p| p[1] as f64).sum::<f64>() / n,
    ];
    let mut c = [[0.0; 2]; 2];
    for p in x {
        for i in 0..2 {
            for j in 0..2 {
                c[i][j] += (p[i] as f64 - m[i]) * (p[j] as f64 - m[j]) / n;
            }
        }
    }
    (m, c)
}
