//! Samplers and the likelihood against Gaussian data whose score and density are exact.

mod common;

use diffusion_playground::math::Schedule;
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig, flow, log_likelihood};
use diffusion_playground::math::oracle::{Component, Oracle};
use diffusion_playground::math::rng::normal2;
use diffusion_playground::math::solvers::{SamplerConfig, SamplerKind, sample};

fn correlated_gaussian(schedule: Schedule) -> (Oracle, [f64; 2], [[f64; 2]; 2]) {
    let mean = [0.8, -0.4];
    let cov = [[0.3, 0.1], [0.1, 0.2]];
    (
        Oracle::new(
            vec![Component {
                weight: 1.0,
                mean,
                cov,
            }],
            schedule,
        ),
        mean,
        cov,
    )
}

/// Every sampler, driven by the exact score of N(μ, Σ), must return the law it is meant to
/// return, to within 5 standard errors of the sample mean and covariance, with enough
/// particles that a 3 % error in a variance fails:
/// - the ODE solvers: p_{t_min} = N(α μ, α² Σ + σ² I) (their discretisation error at these
///   step counts is far below a standard error; `solvers_convergence.rs` checks their order);
/// - the stochastic samplers: the exact law of their finite-step chain (`chain_law`), which
///   differs from p_{t_min} by a known bias (DDPM/DDIM lose variance, O(h); PC's corrector
///   and plain Langevin add some, O(snr²) and O(δ), whatever the number of steps).
#[test]
fn every_sampler_recovers_a_gaussian() {
    let schedule = Schedule::default();
    let (oracle, mean0, cov0) = correlated_gaussian(schedule);
    const N: usize = 100_000;
    const Z: f64 = 5.0;
    let n = N as f64;
    let mut failures = Vec::new();
    for kind in SamplerKind::ALL {
        let steps = match kind {
            SamplerKind::Langevin => 2000,
            SamplerKind::Em | SamplerKind::Pc | SamplerKind::Ddpm => 500,
            _ => 100,
        };
        let cfg = SamplerConfig {
            kind,
            steps,
            eta: 0.5,
            langevin_step: Some(0.01),
            seed: 17,
            ..Default::default()
        };
        let ideal = Law::noised(mean0, cov0, &schedule, cfg.t_min);
        let target = chain_law(&cfg, &schedule, mean0, cov0).unwrap_or(ideal);
        let (mean, cov) = (target.mean, target.cov);
        // 5 standard errors: σ/√n for a mean, √((Σ_ii Σ_jj + Σ_ij²)/n) for a covariance.
        let se_mean = |i: usize| (cov[i][i] / n).sqrt();
        let se_cov = |i: usize, j: usize| ((cov[i][i] * cov[j][j] + cov[i][j].powi(2)) / n).sqrt();
        for (i, row) in cov.iter().enumerate() {
            let var = row[i];
            assert!(
                Z * se_cov(i, i) < 0.03 * var,
                "too few samples to see a 3 % error in a variance"
            );
            // The stochastic samplers' bias is a few per cent here; more would mean the
            // chain (or its law) no longer samples N(μ, Σ) at all.
            let bias = var / ideal.cov[i][i] - 1.0;
            assert!(
                bias.abs() < 0.1,
                "{kind:?}: law off by {bias:+.3} in var {i}"
            );
        }
        let (x, nfe) = sample(&oracle, schedule, cfg, N);
        assert_eq!(nfe, steps * kind.nfe_per_step(), "{kind:?} NFE");
        let (m, c) = common::mean_cov(&x);
        let mut worst = 0.0f64;
        for i in 0..2 {
            let z = (m[i] - mean[i]) / se_mean(i);
            worst = worst.max(z.abs());
            if z.abs() >= Z {
                failures.push(format!(
                    "{kind:?}: mean[{i}] {:.5} vs {:.5} ({z:+.1} standard errors)",
                    m[i], mean[i]
                ));
            }
            for j in i..2 {
                let z = (c[i][j] - cov[i][j]) / se_cov(i, j);
                worst = worst.max(z.abs());
                if z.abs() >= Z {
                    failures.push(format!(
                        "{kind:?}: cov[{i}][{j}] {:.5} vs {:.5} ({z:+.1} standard errors, \
                         {:+.2} %)",
                        c[i][j],
                        cov[i][j],
                        100.0 * (c[i][j] / cov[i][j] - 1.0)
                    ));
                }
            }
        }
        eprintln!(
            "{kind:?}: largest deviation {worst:.1} standard errors (law's variance bias \
             {:+.2} %, {:+.2} %)",
            100.0 * (cov[0][0] / ideal.cov[0][0] - 1.0),
            100.0 * (cov[1][1] / ideal.cov[1][1] - 1.0)
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type Mat = [[f64; 2]; 2];

fn mat_mul(a: Mat, b: Mat) -> Mat {
    let mut c = [[0.0; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    c
}

fn mat_vec(a: Mat, v: [f64; 2]) -> [f64; 2] {
    [
        a[0][0] * v[0] + a[0][1] * v[1],
        a[1][0] * v[0] + a[1][1] * v[1],
    ]
}

fn mat_inv(m: Mat) -> Mat {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    [
        [m[1][1] / det, -m[0][1] / det],
        [-m[1][0] / det, m[0][0] / det],
    ]
}

/// a I + b M.
fn lin(a: f64, b: f64, m: Mat) -> Mat {
    [
        [a + b * m[0][0], b * m[0][1]],
        [b * m[1][0], a + b * m[1][1]],
    ]
}

/// A Gaussian law N(mean, cov) in 2D.
#[derive(Clone, Copy, Debug)]
struct Law {
    mean: [f64; 2],
    cov: Mat,
}

impl Law {
    /// p_t of N(μ, Σ) data: N(α μ, α² Σ + σ² I).
    fn noised(mean: [f64; 2], cov: Mat, schedule: &Schedule, t: f64) -> Self {
        let (a, s) = (schedule.alpha(t), schedule.sigma(t));
        Law {
            mean: mean.map(|m| a * m),
            cov: lin(s * s, a * a, cov),
        }
    }

    /// The law of x ← A x + b + √q z, z ∼ N(0, I) independent of x.
    fn step(&mut self, a: Mat, b: [f64; 2], q: f64) {
        let m = mat_vec(a, self.mean);
        self.mean = [m[0] + b[0], m[1] + b[1]];
        let at = [[a[0][0], a[1][0]], [a[0][1], a[1][1]]];
        self.cov = lin(q, 1.0, mat_mul(mat_mul(a, self.cov), at));
    }

    /// E‖w‖ for w ∼ N(mean, cov), by quadrature over 40 000 fixed normal draws (a 0.3 %
    /// error, enough for the corrector's step size below).
    fn mean_norm(&self) -> f64 {
        let c = self.cov;
        let l00 = c[0][0].sqrt();
        let l10 = c[1][0] / l00;
        let l11 = (c[1][1] - l10 * l10).max(0.0).sqrt();
        let n = 40_000u32;
        (0..n)
            .map(|i| {
                let z = normal2(0xA11CE, 0, i, 0);
                let (z0, z1) = (z[0] as f64, z[1] as f64);
                let w = [self.mean[0] + l00 * z0, self.mean[1] + l10 * z0 + l11 * z1];
                (w[0] * w[0] + w[1] * w[1]).sqrt()
            })
            .sum::<f64>()
            / n as f64
    }
}

/// The exact law of a stochastic sampler's output, for N(μ, Σ) data and its exact score
/// s_t(x) = −S_t⁻¹ (x − α_t μ), S_t = α_t² Σ + σ_t² I (so ε̂ = −σ_t s_t): every step is affine
/// in x plus independent Gaussian noise, so the law stays Gaussian and its moments follow the
/// step rules, written here from the papers. `None` for the deterministic (ODE) solvers.
fn chain_law(cfg: &SamplerConfig, schedule: &Schedule, mu: [f64; 2], sigma: Mat) -> Option<Law> {
    let n = cfg.steps;
    let score_matrix = |t: f64| {
        mat_inv(lin(
            schedule.sigma(t).powi(2),
            schedule.alpha(t).powi(2),
            sigma,
        ))
    };
    // x ← x + c s_t(x) + √q z, s_t(x) = −S⁻¹ (x − α μ).
    let score_step = |law: &mut Law, t: f64, c: f64, q: f64| {
        let si = score_matrix(t);
        let am = mu.map(|m| schedule.alpha(t) * m);
        law.step(lin(1.0, -c, si), mat_vec(si, am).map(|v| c * v), q);
    };
    // The prior N(0, I) at t = 1.
    let mut law = Law {
        mean: [0.0; 2],
        cov: [[1.0, 0.0], [0.0, 1.0]],
    };
    // Uniform grids: 1 → t_min (Euler–Maruyama, PC), 1 → 0 (DDPM, DDIM).
    let uniform = |end: f64| (0..=n).map(move |i| 1.0 - i as f64 * (1.0 - end) / n as f64);
    let em = |law: &mut Law, t: f64, h: f64| {
        // Reverse SDE, Euler–Maruyama (h < 0): x ← x + h (−½β x − β s_t(x)) + √(β|h|) z.
        // In terms of S⁻¹: x (1 − ½βh) + βh S⁻¹ (x − α μ).
        let beta = schedule.beta(t);
        let si = score_matrix(t);
        let am = mu.map(|m| schedule.alpha(t) * m);
        law.step(
            lin(1.0 - 0.5 * beta * h, beta * h, si),
            mat_vec(si, am).map(|v| -beta * h * v),
            beta * -h,
        );
    };
    match cfg.kind {
        SamplerKind::Em | SamplerKind::Pc => {
            let grid: Vec<f64> = uniform(cfg.t_min).collect();
            for w in grid.windows(2) {
                let (t, s) = (w[0], w[1]);
                em(&mut law, t, s - t);
                if cfg.kind == SamplerKind::Pc {
                    // Song et al. 2021, Alg. 5: ε = 2 (r E‖z‖ / E‖s‖)², then
                    // x ← x + ε s_s(x) + √(2ε) z, with the batch means of the norms.
                    let si = score_matrix(s);
                    let am = mu.map(|m| schedule.alpha(s) * m);
                    let d = mat_vec(si, [law.mean[0] - am[0], law.mean[1] - am[1]]);
                    let score_law = Law {
                        mean: [-d[0], -d[1]],
                        cov: mat_mul(mat_mul(si, law.cov), si),
                    };
                    let z_norm = std::f64::consts::FRAC_PI_2.sqrt();
                    let ratio = cfg.snr * z_norm / score_law.mean_norm();
                    let eps = 2.0 * ratio * ratio;
                    score_step(&mut law, s, eps, 2.0 * eps);
                }
            }
        }
        SamplerKind::Ddpm | SamplerKind::Ddim => {
            // DDIM (Song et al. 2021, eq. 12) with x̂₀ = (x − σ_t ε̂)/α_t:
            // x_s = α_s x̂₀ + √(σ_s² − c²) ε̂ + c z, c = η (σ_s/σ_t) √(1 − α_t²/α_s²);
            // DDPM is η = 1.
            let eta = if cfg.kind == SamplerKind::Ddpm {
                1.0
            } else {
                cfg.eta
            };
            let grid: Vec<f64> = uniform(0.0).collect();
            for w in grid.windows(2) {
                let (t, s) = (w[0], w[1]);
                let (a_t, g_t) = (schedule.alpha(t), schedule.sigma(t));
                let (a_s, g_s) = (schedule.alpha(s), schedule.sigma(s));
                let c = eta * (g_s / g_t) * (1.0 - (a_t / a_s).powi(2)).max(0.0).sqrt();
                let dir = (g_s * g_s - c * c).max(0.0).sqrt();
                // x_s = (α_s/α_t) x + κ ε̂, κ = dir − α_s σ_t/α_t, ε̂ = σ_t S⁻¹ (x − α_t μ).
                let kappa = dir - a_s * g_t / a_t;
                let si = score_matrix(t);
                let am = mu.map(|m| a_t * m);
                law.step(
                    lin(a_s / a_t, kappa * g_t, si),
                    mat_vec(si, am).map(|v| -kappa * g_t * v),
                    c * c,
                );
            }
        }
        SamplerKind::Langevin => {
            // x ← x + δ s_{t_min}(x) + √(2δ) z, n times: unadjusted Langevin, stationary at
            // N(m, S (I − δ/2 S⁻¹)⁻¹) rather than p_{t_min} (≈ 4 % more variance here).
            let delta = cfg.langevin_step.expect("a fixed Langevin step");
            for _ in 0..n {
                score_step(&mut law, cfg.t_min, delta, 2.0 * delta);
            }
        }
        _ => return None,
    }
    Some(law)
}

/// The PF-ODE likelihood of N(μ, Σ) data equals the analytic log-density of p_{t_min}, when
/// the flow ends in the exact p₁.
#[test]
fn pf_ode_likelihood_matches_analytic_density() {
    let schedule = Schedule::default();
    let (oracle, _, _) = correlated_gaussian(schedule);
    let xs = [[0.8f32, -0.4], [1.5, 0.2], [-0.3, -1.0], [0.0, 0.0]];
    let cfg = LikelihoodConfig {
        steps: 200,
        ..Default::default()
    };
    let f = flow(&oracle, &schedule, &xs, &cfg);
    let prior = oracle.log_density(&f.x1, 1.0);
    let truth = oracle.log_density(&xs, cfg.t_min);
    for i in 0..xs.len() {
        let got = prior[i] + f.delta[i];
        assert!(
            (got - truth[i]).abs() < 1e-3,
            "x={:?}: {got} vs {}",
            xs[i],
            truth[i]
        );
    }
    // With the N(0, I) prior the only extra error is p₁ ≠ N(0, I), small for β_max = 20.
    let ll = log_likelihood(&oracle, &schedule, &xs, &cfg);
    for i in 0..xs.len() {
        assert!((ll[i] - truth[i]).abs() < 0.05, "{} vs {}", ll[i], truth[i]);
    }
}

/// Hutchinson is unbiased: many probes agree with the exact divergence on average.
#[test]
fn hutchinson_agrees_with_exact_divergence_on_average() {
    let schedule = Schedule::default();
    let (oracle, _, _) = correlated_gaussian(schedule);
    let xs = vec![[0.5f32, 0.0]; 64];
    let exact = LikelihoodConfig {
        steps: 50,
        ..Default::default()
    };
    let hutch = LikelihoodConfig {
        divergence: Divergence::Hutchinson { probes: 1, seed: 9 },
        ..exact
    };
    let le = log_likelihood(&oracle, &schedule, &xs, &exact);
    let lh = log_likelihood(&oracle, &schedule, &xs, &hutch);
    let mean_h = lh.iter().sum::<f64>() / lh.len() as f64;
    let spread = lh.iter().map(|v| (v - mean_h).powi(2)).sum::<f64>() / lh.len() as f64;
    assert!((mean_h - le[0]).abs() < 0.1, "{mean_h} vs {}", le[0]);
    assert!(
        spread > 1e-6,
        "Hutchinson with one probe should vary between probes"
    );
}
