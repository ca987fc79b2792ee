//! The forward VP-SDE `dx = −½ β(t) x dt + √β(t) dW` by Euler–Maruyama (its exact marginals
//! are `Process::marginal`).

use super::rng::{STREAM_STEP, normal2};
use super::schedule::Schedule;
use crate::Point;

/// One Euler–Maruyama step of the forward SDE from t to t + dt; the noise of point i is keyed
/// by (seed, step, i), so a path replays identically.
pub fn em_forward_step(
    schedule: &Schedule,
    t: f64,
    dt: f64,
    x: &mut [Point],
    seed: u32,
    step: u32,
) {
    let beta = schedule.beta(t);
    let decay = (1.0 - 0.5 * beta * dt) as f32;
    let noise = (beta * dt).sqrt() as f32;
    for (i, p) in x.iter_mut().enumerate() {
        let z = normal2(seed, step, i as u32, STREAM_STEP);
        *p = [decay * p[0] + noise * z[0], decay * p[1] + noise * z[1]];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EM paths from a fixed x₀ must have mean α(t) x₀ and per-axis variance σ(t)².
    #[test]
    fn em_paths_match_closed_form_moments() {
        for schedule in [
            Schedule::default(),
            Schedule::Cosine { beta_cap: 20.0 },
            Schedule::Constant { beta: 2.0 },
        ] {
            let n = 40_000;
            let x0 = [2.0f32, -1.0];
            let mut x = vec![x0; n];
            let steps = 400;
            let t_end = 0.6;
            let dt = t_end / steps as f64;
            for k in 0..steps {
                em_forward_step(&schedule, k as f64 * dt, dt, &mut x, 11, k as u32);
            }
            let (a, s) = (schedule.alpha(t_end), schedule.sigma(t_end));
            for d in 0..2 {
                let mean = x.iter().map(|p| p[d] as f64).sum::<f64>() / n as f64;
                let var = x.iter().map(|p| (p[d] as f64 - mean).powi(2)).sum::<f64>() / n as f64;
                let se = s / (n as f64).sqrt();
                assert!(
                    (mean - a * x0[d] as f64).abs() < 4.0 * se + 0.01,
                    "{schedule:?} mean {mean} vs {}",
                    a * x0[d] as f64
                );
                assert!(
                    (var - s * s).abs() < 0.03 * s * s,
                    "{schedule:?} var {var} vs {}",
                    s * s
                );
            }
        }
    }
}
