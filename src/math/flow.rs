//! Conditional flow matching on the linear path, in closed form for Gaussian-mixture data.
//!
//! The path is `x_t = (1 − t)·x₀ + t·x₁` with x₀ the data and x₁ ~ N(0, I): data at t = 0,
//! noise at t = 1, as for the VP-SDE. A flow-matching network learns the velocity
//! `v(x, t) = E[x₁ − x₀ | x_t = x]`; carrying noise from t = 1 to 0 along `dx/dt = v` gives
//! data.
//!
//! For a component N(μ, Σ) of the data, x_t is Gaussian with mean `m = (1 − t) μ` and
//! covariance `C = (1 − t)² Σ + t² I`, and x₀, x₁ given x_t are linear in it:
//! `E[x₁ | x] = t C⁻¹ (x − m)`, `E[x₀ | x] = μ + (1 − t) Σ C⁻¹ (x − m)`. Over the mixture
//! both are averaged with the responsibilities of the components at x.
//!
//! The same model gives the score, so the reverse SDE can use it: from `x = (1 − t) x₀ + t x₁`,
//! `E[x₁ | x] = x + (1 − t) v` and `∇ log p_t(x) = −E[x₁ | x] / t`.

use rayon::prelude::*;

use super::model::ScoreModel;
use super::oracle::{Component, Noised, log_weights};
use super::process::Process;
use crate::Point;

/// The exact flow-matching velocity (and score) of a Gaussian mixture on the linear path; an
/// empirical point set is the mixture of zero-width Gaussians at its points.
#[derive(Clone, Debug)]
pub struct FlowOracle {
    components: Vec<Component>,
    log_weights: Vec<f64>,
}

fn mat_mul(a: [[f64; 2]; 2], b: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}

fn mat_vec(a: [[f64; 2]; 2], v: [f64; 2]) -> [f64; 2] {
    [
        a[0][0] * v[0] + a[0][1] * v[1],
        a[1][0] * v[0] + a[1][1] * v[1],
    ]
}

impl FlowOracle {
    pub fn new(components: Vec<Component>) -> Self {
        let log_weights = log_weights(&components);
        Self {
            components,
            log_weights,
        }
    }

    /// The empirical distribution of `points` (t > 0: at t = 0 its marginal is singular).
    pub fn empirical(points: &[Point]) -> Self {
        Self::new(
            points
                .iter()
                .map(|p| Component {
                    weight: 1.0,
                    mean: [p[0] as f64, p[1] as f64],
                    cov: [[0.0; 2]; 2],
                })
                .collect(),
        )
    }

    /// Each component at time t (x_t = (1 − t) x₀ + t x₁), with Σ C⁻¹.
    fn at(&self, t: f64) -> Vec<(Noised, [[f64; 2]; 2])> {
        self.components
            .iter()
            .zip(&self.log_weights)
            .map(|(c, &lw)| {
                let n = Noised::of(c, lw, 1.0 - t, t);
                let sigma_inv = mat_mul(c.cov, n.inv);
                (n, sigma_inv)
            })
            .collect()
    }

    /// E[x₁ | x_t = x] and E[x₀ | x_t = x] at one point, in one pass with a running
    /// log-sum-exp (as `Oracle`), so narrow components far from x cannot underflow.
    fn posterior(
        &self,
        comps: &[(Noised, [[f64; 2]; 2])],
        x: [f64; 2],
        t: f64,
    ) -> ([f64; 2], [f64; 2]) {
        let (mut max, mut z, mut x1, mut x0) = (f64::NEG_INFINITY, 0.0, [0.0; 2], [0.0; 2]);
        for ((c, sigma_inv), comp) in comps.iter().zip(&self.components) {
            let d = [x[0] - c.mean[0], x[1] - c.mean[1]];
            let q = mat_vec(c.inv, d);
            let log_p = c.log_norm - 0.5 * (q[0] * d[0] + q[1] * d[1]);
            let r = if log_p > max {
                let shrink = (max - log_p).exp();
                z *= shrink;
                x1 = [x1[0] * shrink, x1[1] * shrink];
                x0 = [x0[0] * shrink, x0[1] * shrink];
                max = log_p;
                1.0
            } else {
                (log_p - max).exp()
            };
            let sq = mat_vec(*sigma_inv, d);
            z += r;
            for i in 0..2 {
                x1[i] += r * t * q[i];
                x0[i] += r * (comp.mean[i] + (1.0 - t) * sq[i]);
            }
        }
        ([x1[0] / z, x1[1] / z], [x0[0] / z, x0[1] / z])
    }

    /// (E[x₁ | x], E[x₀ | x]) at each point, in parallel.
    fn posteriors(&self, xs: &[Point], t: f64) -> Vec<([f64; 2], [f64; 2])> {
        let comps = self.at(t);
        xs.par_iter()
            .map(|p| self.posterior(&comps, [p[0] as f64, p[1] as f64], t))
            .collect()
    }

    /// v(x, t) = E[x₁ − x₀ | x_t = x] at each point (t in [0, 1); (0, 1] for a point set).
    pub fn velocities(&self, xs: &[Point], t: f64) -> Vec<[f64; 2]> {
        self.posteriors(xs, t)
            .into_iter()
            .map(|(x1, x0)| [x1[0] - x0[0], x1[1] - x0[1]])
            .collect()
    }

    /// ∇ log p_t(x) of the linear path's marginal, directly from the mixture (t in (0, 1]):
    /// E[x₁ | x] = t C⁻¹ (x − m) per component, and the score is −C⁻¹ (x − m).
    pub fn score(&self, xs: &[Point], t: f64) -> Vec<[f64; 2]> {
        self.posteriors(xs, t)
            .into_iter()
            .map(|(x1, _)| [-x1[0] / t, -x1[1] / t])
            .collect()
    }
}

/// The exact model of flow matching: ε̂ = E[x₁ | x] and v = E[x₁ − x₀ | x], both finite on
/// all of [t_min, 1].
impl ScoreModel for FlowOracle {
    fn process(&self) -> Process {
        Process::Fm
    }

    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        for (o, (x1, _)) in out.iter_mut().zip(self.posteriors(xs, t as f64)) {
            *o = [x1[0] as f32, x1[1] as f32];
        }
    }

    fn velocity(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        for (o, v) in out.iter_mut().zip(self.velocities(xs, t as f64)) {
            *o = [v[0] as f32, v[1] as f32];
        }
    }
}

/// The score a velocity implies on the linear path: `−(x + (1 − t) v) / t`.
pub fn score_from_velocity(x: Point, v: [f64; 2], t: f64) -> [f64; 2] {
    [
        -(x[0] as f64 + (1.0 - t) * v[0]) / t,
        -(x[1] as f64 + (1.0 - t) * v[1]) / t,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixture() -> Vec<Component> {
        vec![
            Component {
                weight: 0.3,
                mean: [1.0, -0.5],
                cov: [[0.2, 0.05], [0.05, 0.1]],
            },
            Component {
                weight: 0.7,
                mean: [-1.2, 0.8],
                cov: [[0.3, -0.1], [-0.1, 0.4]],
            },
        ]
    }

    /// log p_t of the mixture's marginal on the linear path, by direct evaluation.
    fn log_density(components: &[Component], x: [f64; 2], t: f64) -> f64 {
        let total: f64 = components.iter().map(|c| c.weight).sum();
        components
            .iter()
            .map(|c| {
                let a = 1.0 - t;
                let m = [a * c.mean[0], a * c.mean[1]];
                let cov = [
                    a * a * c.cov[0][0] + t * t,
                    a * a * c.cov[0][1],
                    a * a * c.cov[1][1] + t * t,
                ];
                let det = cov[0] * cov[2] - cov[1] * cov[1];
                let d = [x[0] - m[0], x[1] - m[1]];
                let q = (cov[2] * d[0] * d[0] - 2.0 * cov[1] * d[0] * d[1] + cov[0] * d[1] * d[1])
                    / det;
                c.weight / total * (-0.5 * q).exp() / (std::f64::consts::TAU * det.sqrt())
            })
            .sum::<f64>()
            .ln()
    }

    #[test]
    fn the_score_is_the_gradient_of_the_log_density() {
        let f = FlowOracle::new(mixture());
        let h = 1e-5;
        for &t in &[0.05, 0.3, 0.7, 0.95] {
            for p in [[0.3f32, -0.2], [-1.0, 1.0], [2.0, 0.5]] {
                let x = [p[0] as f64, p[1] as f64];
                let s = f.score(&[p], t)[0];
                for i in 0..2 {
                    let (mut up, mut down) = (x, x);
                    up[i] += h;
                    down[i] -= h;
                    let fd = (log_density(&mixture(), up, t) - log_density(&mixture(), down, t))
                        / (2.0 * h);
                    assert!(
                        (s[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                        "t {t} {s:?} {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_score_from_the_velocity_is_the_score() {
        let f = FlowOracle::new(mixture());
        for &t in &[0.1, 0.5, 0.9] {
            let xs = [[0.3f32, -0.2], [-1.0, 1.0], [2.0, 0.5]];
            let v = f.velocities(&xs, t);
            let s = f.score(&xs, t);
            for ((x, v), s) in xs.iter().zip(&v).zip(&s) {
                let from_v = score_from_velocity(*x, *v, t);
                for i in 0..2 {
                    assert!((from_v[i] - s[i]).abs() < 1e-9, "t {t}: {from_v:?} {s:?}");
                }
            }
        }
    }

    #[test]
    fn a_gaussian_has_a_linear_velocity_with_the_closed_form_coefficients() {
        // Isotropic N(μ, s² I), per axis, with c = (1 − t)² s² + t² and m = (1 − t) μ:
        // E[x₁|x] = t (x − m)/c and E[x₀|x] = μ + (1 − t) s² (x − m)/c, so v is affine in x.
        let (mu, s2) = ([0.7, -0.4], 0.5);
        let f = FlowOracle::new(vec![Component {
            weight: 1.0,
            mean: mu,
            cov: [[s2, 0.0], [0.0, s2]],
        }]);
        let t = 0.4;
        let c = (1.0 - t) * (1.0 - t) * s2 + t * t;
        for p in [[0.0f32, 0.0], [1.5, -2.0], [-0.3, 0.9]] {
            let v = f.velocities(&[p], t)[0];
            for i in 0..2 {
                let d = p[i] as f64 - (1.0 - t) * mu[i];
                let expect = t * d / c - (mu[i] + (1.0 - t) * s2 * d / c);
                assert!((v[i] - expect).abs() < 1e-12, "{v:?} {expect}");
            }
        }
    }

    /// The velocity's defining property, by Monte Carlo: over x_t on the path,
    /// E[v(x_t, t)] = E[x₁ − x₀] = −E[x₀] (x₁ has mean zero), within 4 standard errors.
    #[test]
    fn the_mean_velocity_is_minus_the_data_mean() {
        let components = mixture();
        let f = FlowOracle::new(components.clone());
        let n = 40_000;
        let data_mean = [0.3 * 1.0 + 0.7 * -1.2, 0.3 * -0.5 + 0.7 * 0.8];
        let noise = crate::math::solvers::prior(2 * n, 5);
        let t = 0.6;
        let xs: Vec<Point> = (0..n)
            .map(|i| {
                // x₀ from the mixture: component by i (30 % / 70 %), Cholesky of its Σ.
                let c = if i % 10 < 3 {
                    &components[0]
                } else {
                    &components[1]
                };
                let (z, e) = (noise[2 * i], noise[2 * i + 1]);
                let l00 = c.cov[0][0].sqrt();
                let l10 = c.cov[0][1] / l00;
                let l11 = (c.cov[1][1] - l10 * l10).sqrt();
                let x0 = [
                    c.mean[0] + l00 * z[0] as f64,
                    c.mean[1] + l10 * z[0] as f64 + l11 * z[1] as f64,
                ];
                [
                    ((1.0 - t) * x0[0] + t * e[0] as f64) as f32,
                    ((1.0 - t) * x0[1] + t * e[1] as f64) as f32,
                ]
            })
            .collect();
        let v = f.velocities(&xs, t);
        for i in 0..2 {
            let mean = v.iter().map(|v| v[i]).sum::<f64>() / n as f64;
            let var = v.iter().map(|v| (v[i] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se = (var / n as f64).sqrt();
            assert!(
                (mean + data_mean[i]).abs() < 4.0 * se,
                "axis {i}: {mean} vs {}",
                -data_mean[i]
            );
        }
    }

    /// Euler and Heun on the exact velocity of a Gaussian, from N(0, I) at t = 1 to t = 0:
    /// their error against a fine reference falls at order 1 and 2.
    #[test]
    fn euler_and_heun_converge_at_orders_one_and_two() {
        let f = FlowOracle::new(vec![Component {
            weight: 1.0,
            mean: [0.5, -0.3],
            cov: [[0.6, 0.2], [0.2, 0.4]],
        }]);
        let start = [[0.8f32, -1.1]];
        let run = |steps: usize, heun: bool| -> [f64; 2] {
            let mut x = [start[0][0] as f64, start[0][1] as f64];
            let h = 1.0 / steps as f64;
            for k in 0..steps {
                let t = 1.0 - k as f64 * h;
                let v1 = f.velocities(&[[x[0] as f32, x[1] as f32]], t)[0];
                let e = [x[0] - h * v1[0], x[1] - h * v1[1]];
                x = if heun {
                    let v2 = f.velocities(&[[e[0] as f32, e[1] as f32]], t - h)[0];
                    [
                        x[0] - 0.5 * h * (v1[0] + v2[0]),
                        x[1] - 0.5 * h * (v1[1] + v2[1]),
                    ]
                } else {
                    e
                };
            }
            x
        };
        let reference = run(4096, true);
        let err = |steps, heun| {
            let x = run(steps, heun);
            (x[0] - reference[0]).hypot(x[1] - reference[1])
        };
        let order = |heun| (err(16, heun) / err(32, heun)).log2();
        let (euler, heun) = (order(false), order(true));
        assert!((euler - 1.0).abs() < 0.25, "Euler order {euler}");
        assert!((heun - 2.0).abs() < 0.35, "Heun order {heun}");
    }
}
