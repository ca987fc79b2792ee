//! Exact log-likelihood along the probability-flow ODE (the instantaneous change of variables):
//!
//! `log p_{t_min}(x) = log p₁(x(1)) + ∫_{t_min}^1 ∇·f(x(t), t) dt`, with the PF-ODE drift
//! `f = −½β (x − ε̂/σ)` and `∇·f = −½β (2 − ∇·ε̂ / σ)`.
//!
//! The augmented ODE (x, ∫∇·f) is integrated forward in time with RK4. In 2D the divergence is
//! exact (two directional derivatives); the Hutchinson estimator vᵀJv with Rademacher v is the
//! high-dimensional alternative, offered to show its variance.
//!
//! A flow-matching model's flow is `dx/dt = v` itself, so there `f = v` and `∇·f = ∇·v`.

use super::model::ScoreModel;
use super::process::Process;
use super::rng::{STREAM_PROBE, bits};
use super::schedule::Schedule;
use crate::Point;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Divergence {
    /// The trace of the 2×2 Jacobian of ε̂.
    Exact,
    /// Mean of `probes` estimates vᵀ J v, v Rademacher, fixed along each trajectory.
    Hutchinson { probes: usize, seed: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LikelihoodConfig {
    pub steps: usize,
    pub t_min: f64,
    pub divergence: Divergence,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            t_min: 1e-3,
            divergence: Divergence::Exact,
        }
    }
}

/// The end of each trajectory and the integrated divergence, before the prior is applied.
pub struct Flow {
    /// x(1) for each starting point.
    pub x1: Vec<Point>,
    /// ∫_{t_min}^1 ∇·f dt for each starting point.
    pub delta: Vec<f64>,
    pub nfe: usize,
}

/// log N(x; 0, I) in 2D.
pub fn standard_normal_log_density(x: &Point) -> f64 {
    let r2 = (x[0] as f64).powi(2) + (x[1] as f64).powi(2);
    -(std::f64::consts::TAU).ln() - 0.5 * r2
}

/// Integrates the PF-ODE with its divergence from t_min to 1.
pub fn flow(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    xs: &[Point],
    cfg: &LikelihoodConfig,
) -> Flow {
    let n = xs.len();
    let steps = cfg.steps.max(1);
    let h = (1.0 - cfg.t_min) / steps as f64;
    let mut x = xs.to_vec();
    let mut delta = vec![0.0f64; n];
    let mut nfe = 0;
    let mut stage = vec![[0.0f32; 2]; n];
    let mut dx = vec![[0.0f32; 2]; n];
    let mut dl = vec![0.0f64; n];
    let mut sum_x = vec![[0.0f32; 2]; n];
    let mut sum_l = vec![0.0f64; n];
    for k in 0..steps {
        let t = cfg.t_min + k as f64 * h;
        sum_x.iter_mut().for_each(|s| *s = [0.0; 2]);
        sum_l.iter_mut().for_each(|s| *s = 0.0);
        stage.copy_from_slice(&x);
        for (c, w, c_next) in [
            (0.0, 1.0, 0.5),
            (0.5, 2.0, 0.5),
            (0.5, 2.0, 1.0),
            (1.0, 1.0, f64::NAN),
        ] {
            nfe += drift(
                model,
                schedule,
                &stage,
                t + c * h,
                cfg.divergence,
                &mut dx,
                &mut dl,
            );
            for i in 0..n {
                sum_x[i][0] += w * dx[i][0];
                sum_x[i][1] += w * dx[i][1];
                sum_l[i] += w as f64 * dl[i];
            }
            if c_next.is_finite() {
                for i in 0..n {
                    let a = (c_next * h) as f32;
                    stage[i] = [x[i][0] + a * dx[i][0], x[i][1] + a * dx[i][1]];
                }
            }
        }
        for i in 0..n {
            x[i][0] += (h / 6.0) as f32 * sum_x[i][0];
            x[i][1] += (h / 6.0) as f32 * sum_x[i][1];
            delta[i] += h / 6.0 * sum_l[i];
        }
    }
    Flow { x1: x, delta, nfe }
}

/// The augmented drift (f, ∇·f) at time t; returns the network evaluations spent.
fn drift(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    x: &[Point],
    t: f64,
    divergence: Divergence,
    dx: &mut [Point],
    dl: &mut [f64],
) -> usize {
    let n = x.len();
    let fm = model.process() == Process::Fm;
    // What is differentiated: ε̂ on VP, the velocity (the drift itself) on FM.
    let field = |xs: &[Point], out: &mut [Point]| {
        if fm {
            model.velocity(xs, t as f32, out)
        } else {
            model.eps(xs, t as f32, out)
        }
    };
    let mut eps = vec![[0.0f32; 2]; n];
    let mut div = vec![0.0f32; n];
    let nfe = match divergence {
        Divergence::Exact => {
            if fm {
                model.velocity_div(x, t as f32, &mut eps, &mut div);
            } else {
                model.eps_div(x, t as f32, &mut eps, &mut div);
            }
            1
        }
        Divergence::Hutchinson { probes, seed } => {
            field(x, &mut eps);
            hutchinson(&field, x, probes.max(1), seed, &mut div);
            1 + 2 * probes.max(1)
        }
    };
    if fm {
        dx.copy_from_slice(&eps);
        for (l, d) in dl.iter_mut().zip(&div) {
            *l = *d as f64;
        }
        return nfe;
    }
    let (beta, sigma) = (schedule.beta(t), schedule.sigma(t));
    for i in 0..n {
        let e = eps[i];
        dx[i] = [
            (-0.5 * beta) as f32 * x[i][0] + (0.5 * beta / sigma) as f32 * e[0],
            (-0.5 * beta) as f32 * x[i][1] + (0.5 * beta / sigma) as f32 * e[1],
        ];
        dl[i] = -0.5 * beta * (2.0 - div[i] as f64 / sigma);
    }
    nfe
}

/// vᵀ J v of `field` averaged over probes, J v by central differences along v.
fn hutchinson(
    field: &dyn Fn(&[Point], &mut [Point]),
    x: &[Point],
    probes: usize,
    seed: u32,
    div: &mut [f32],
) {
    let h = 1e-3f32;
    let n = x.len();
    div.iter_mut().for_each(|d| *d = 0.0);
    let (mut plus, mut minus) = (vec![[0.0; 2]; n], vec![[0.0; 2]; n]);
    for p in 0..probes as u32 {
        let v: Vec<Point> = (0..n as u32)
            .map(|i| {
                let b = bits(seed, p, i, STREAM_PROBE);
                [
                    if b & 1 == 0 { 1.0 } else { -1.0 },
                    if b & 2 == 0 { 1.0 } else { -1.0 },
                ]
            })
            .collect();
        let shifted = |sign: f32| -> Vec<Point> {
            x.iter()
                .zip(&v)
                .map(|(a, b)| [a[0] + sign * h * b[0], a[1] + sign * h * b[1]])
                .collect()
        };
        field(&shifted(1.0), &mut plus);
        field(&shifted(-1.0), &mut minus);
        for i in 0..n {
            let jv = [
                (plus[i][0] - minus[i][0]) / (2.0 * h),
                (plus[i][1] - minus[i][1]) / (2.0 * h),
            ];
            div[i] += (v[i][0] * jv[0] + v[i][1] * jv[1]) / probes as f32;
        }
    }
}

/// log p_{t_min}(x) under the model with a N(0, I) prior at t = 1, in nats.
pub fn log_likelihood(
    model: &dyn ScoreModel,
    schedule: &Schedule,
    xs: &[Point],
    cfg: &LikelihoodConfig,
) -> Vec<f64> {
    let f = flow(model, schedule, xs, cfg);
    f.x1.iter()
        .zip(&f.delta)
        .map(|(x1, d)| standard_normal_log_density(x1) + d)
        .collect()
}
