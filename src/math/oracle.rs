//! The exact score of data that is a Gaussian mixture (an empirical point set is the mixture
//! of zero-width Gaussians at its points). Under the VP-SDE a component N(μ, Σ) becomes
//! N(α μ, α² Σ + σ² I), so
//!
//! `p_t(x) = Σ_k w_k N(x; α μ_k, C_k)`, `C_k = α² Σ_k + σ² I`,
//! `∇ log p_t(x) = Σ_k r_k(x) g_k(x)`, `g_k = −C_k⁻¹ (x − α μ_k)`, `r_k` the responsibilities.
//!
//! It is the ground truth for the tests and the "ideal denoiser" of the app (which, on the
//! training points, memorises them).

use rayon::prelude::*;

use super::model::ScoreModel;
use super::schedule::Schedule;
use crate::Point;

/// One mixture component: weight, mean and symmetric covariance `[[a, b], [b, c]]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    pub weight: f64,
    pub mean: [f64; 2],
    pub cov: [[f64; 2]; 2],
}

/// A Gaussian mixture under a schedule; its weights need not be normalised.
#[derive(Clone, Debug)]
pub struct Oracle {
    components: Vec<Component>,
    log_weights: Vec<f64>,
    schedule: Schedule,
}

/// The law of `a·x₀ + s·ε` for x₀ from one component and ε ~ N(0, I): mean a μ, the inverse
/// of C = a² Σ + s² I, and the log of weight × normaliser (the VP-SDE has a = α, s = σ;
/// flow matching's linear path a = 1 − t, s = t).
pub(crate) struct Noised {
    pub mean: [f64; 2],
    pub inv: [[f64; 2]; 2],
    pub log_norm: f64,
}

impl Noised {
    pub(crate) fn of(c: &Component, log_weight: f64, a: f64, s: f64) -> Self {
        let m = [
            a * a * c.cov[0][0] + s * s,
            a * a * c.cov[0][1],
            a * a * c.cov[1][1] + s * s,
        ];
        let det = m[0] * m[2] - m[1] * m[1];
        Self {
            mean: [a * c.mean[0], a * c.mean[1]],
            inv: [[m[2] / det, -m[1] / det], [-m[1] / det, m[0] / det]],
            log_norm: log_weight - (std::f64::consts::TAU).ln() - 0.5 * det.ln(),
        }
    }
}

/// The logs of the components' weights, normalised to sum to one.
pub(crate) fn log_weights(components: &[Component]) -> Vec<f64> {
    let total: f64 = components.iter().map(|c| c.weight).sum();
    components.iter().map(|c| (c.weight / total).ln()).collect()
}

/// Per-point results of one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Evaluation {
    pub log_density: f64,
    pub score: [f64; 2],
    /// ∇·score, the trace of the Hessian of log p_t.
    pub score_div: f64,
}

impl Oracle {
    pub fn new(components: Vec<Component>, schedule: Schedule) -> Self {
        let log_weights = log_weights(&components);
        Self {
            components,
            log_weights,
            schedule,
        }
    }

    /// The empirical distribution of `points`: the exact score of the training set itself.
    pub fn empirical(points: &[Point], schedule: Schedule) -> Self {
        let components = points
            .iter()
            .map(|p| Component {
                weight: 1.0,
                mean: [p[0] as f64, p[1] as f64],
                cov: [[0.0; 2]; 2],
            })
            .collect();
        Self::new(components, schedule)
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.schedule = schedule;
    }

    pub fn components(&self) -> &[Component] {
        &self.components
    }

    fn noised(&self, t: f64) -> Vec<Noised> {
        let (a, s) = (self.schedule.alpha(t), self.schedule.sigma(t));
        self.components
            .iter()
            .zip(&self.log_weights)
            .map(|(c, &lw)| Noised::of(c, lw, a, s))
            .collect()
    }

    fn evaluate_with(noised: &[Noised], x: [f64; 2]) -> Evaluation {
        // One pass with a running log-sum-exp: the sums are kept relative to the largest
        // log-term so far and rescaled when a larger one comes, so tiny σ (t → 0) cannot
        // underflow, at one exp per component.
        let (mut max, mut z, mut score, mut gg, mut tr) =
            (f64::NEG_INFINITY, 0.0, [0.0; 2], 0.0, 0.0);
        for n in noised {
            let d = [x[0] - n.mean[0], x[1] - n.mean[1]];
            let g = [
                -(n.inv[0][0] * d[0] + n.inv[0][1] * d[1]),
                -(n.inv[1][0] * d[0] + n.inv[1][1] * d[1]),
            ];
            let log_p = n.log_norm + 0.5 * (g[0] * d[0] + g[1] * d[1]);
            let r = if log_p > max {
                let shrink = (max - log_p).exp();
                z *= shrink;
                score = [score[0] * shrink, score[1] * shrink];
                gg *= shrink;
                tr *= shrink;
                max = log_p;
                1.0
            } else {
                (log_p - max).exp()
            };
            z += r;
            score[0] += r * g[0];
            score[1] += r * g[1];
            gg += r * (g[0] * g[0] + g[1] * g[1]);
            tr += r * (n.inv[0][0] + n.inv[1][1]);
        }
        let score = [score[0] / z, score[1] / z];
        // ∇·Σ r_k g_k = Σ r_k [(g_k − s)·g_k − tr C_k⁻¹] = E_r‖g‖² − ‖s‖² − E_r tr C⁻¹.
        let score_div = gg / z - (score[0] * score[0] + score[1] * score[1]) - tr / z;
        Evaluation {
            log_density: max + z.ln(),
            score,
            score_div,
        }
    }

    /// Log-density, score and score divergence of p_t at each point.
    pub fn evaluate(&self, xs: &[Point], t: f64) -> Vec<Evaluation> {
        let noised = self.noised(t);
        xs.par_iter()
            .map(|p| Self::evaluate_with(&noised, [p[0] as f64, p[1] as f64]))
            .collect()
    }

    /// log p_t(x) at each point.
    pub fn log_density(&self, xs: &[Point], t: f64) -> Vec<f64> {
        self.evaluate(xs, t)
            .into_iter()
            .map(|e| e.log_density)
            .collect()
    }

    /// ∇ log p_t(x) at each point.
    pub fn score(&self, xs: &[Point], t: f64) -> Vec<[f64; 2]> {
        self.evaluate(xs, t).into_iter().map(|e| e.score).collect()
    }
}

impl ScoreModel for Oracle {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        let sigma = self.schedule.sigma(t as f64);
        let noised = self.noised(t as f64);
        out.par_iter_mut().zip(xs.par_iter()).for_each(|(o, p)| {
            let e = Self::evaluate_with(&noised, [p[0] as f64, p[1] as f64]);
            *o = [(-sigma * e.score[0]) as f32, (-sigma * e.score[1]) as f32];
        });
    }

    /// Exact: ε̂ = −σ s, so ∇·ε̂ = −σ ∇·s.
    fn eps_div(&self, xs: &[Point], t: f32, out: &mut [Point], div: &mut [f32]) {
        let sigma = self.schedule.sigma(t as f64);
        let noised = self.noised(t as f64);
        out.par_iter_mut()
            .zip(div.par_iter_mut())
            .zip(xs.par_iter())
            .for_each(|((o, d), p)| {
                let e = Self::evaluate_with(&noised, [p[0] as f64, p[1] as f64]);
                *o = [(-sigma * e.score[0]) as f32, (-sigma * e.score[1]) as f32];
                *d = (-sigma * e.score_div) as f32;
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixture() -> Oracle {
        Oracle::new(
            vec![
                Component {
                    weight: 0.3,
                    mean: [1.0, -0.5],
                    cov: [[0.2, 0.05], [0.05, 0.1]],
                },
                Component {
                    weight: 0.7,
                    mean: [-1.0, 1.0],
                    cov: [[0.05, 0.0], [0.0, 0.3]],
                },
                Component {
                    weight: 0.2,
                    mean: [0.5, 0.5],
                    cov: [[0.0; 2]; 2],
                },
            ],
            Schedule::default(),
        )
    }

    /// The score must be the gradient of the log-density, and its divergence the Laplacian.
    #[test]
    fn score_and_divergence_match_finite_differences() {
        let o = mixture();
        let h = 1e-4;
        for &t in &[0.05, 0.3, 0.8] {
            for &x in &[[0.3f32, 0.1], [-1.0, 1.2], [2.0, -2.0]] {
                let e = o.evaluate(&[x], t)[0];
                let lp = |dx: f64, dy: f64| {
                    // evaluate in f64 directly so the difference quotient is not limited by f32
                    let noised = o.noised(t);
                    Oracle::evaluate_with(&noised, [x[0] as f64 + dx, x[1] as f64 + dy]).log_density
                };
                let gx = (lp(h, 0.0) - lp(-h, 0.0)) / (2.0 * h);
                let gy = (lp(0.0, h) - lp(0.0, -h)) / (2.0 * h);
                let lap = (lp(h, 0.0) + lp(-h, 0.0) + lp(0.0, h) + lp(0.0, -h)
                    - 4.0 * lp(0.0, 0.0))
                    / (h * h);
                assert!(
                    (gx - e.score[0]).abs() < 1e-5 * (1.0 + gx.abs()),
                    "t={t} {gx} {:?}",
                    e.score
                );
                assert!((gy - e.score[1]).abs() < 1e-5 * (1.0 + gy.abs()));
                assert!(
                    (lap - e.score_div).abs() < 1e-3 * (1.0 + lap.abs()),
                    "t={t} {lap} {}",
                    e.score_div
                );
            }
        }
    }

    /// A single Gaussian's noised density is N(α μ, α² Σ + σ² I) in closed form.
    #[test]
    fn single_gaussian_density_is_closed_form() {
        let sch = Schedule::default();
        let o = Oracle::new(
            vec![Component {
                weight: 1.0,
                mean: [1.0, 2.0],
                cov: [[0.5, 0.0], [0.0, 0.25]],
            }],
            sch,
        );
        let t = 0.4;
        let (a, s) = (sch.alpha(t), sch.sigma(t));
        let x = [0.2f32, -0.3];
        let v = [a * a * 0.5 + s * s, a * a * 0.25 + s * s];
        let m = [a * 1.0, a * 2.0];
        let expected: f64 = (0..2)
            .map(|d| {
                -0.5 * (std::f64::consts::TAU * v[d]).ln()
                    - 0.5 * (x[d] as f64 - m[d]).powi(2) / v[d]
            })
            .sum();
        assert!((o.log_density(&[x], t)[0] - expected).abs() < 1e-10);
    }

    #[test]
    fn empirical_density_integrates_to_one() {
        let o = Oracle::empirical(&[[0.0, 0.0], [1.0, 1.0]], Schedule::default());
        let (n, lo, hi) = (300, -4.0f32, 5.0f32);
        let h = (hi - lo) / n as f32;
        let grid: Vec<Point> = (0..n * n)
            .map(|k| {
                [
                    lo + (k % n) as f32 * h + 0.5 * h,
                    lo + (k / n) as f32 * h + 0.5 * h,
                ]
            })
            .collect();
        let mass: f64 = o
            .log_density(&grid, 0.2)
            .iter()
            .map(|l| l.exp())
            .sum::<f64>()
            * (h * h) as f64;
        assert!((mass - 1.0).abs() < 1e-3, "{mass}");
    }
}
