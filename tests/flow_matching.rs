//! Flow matching against closed forms: the exact velocity of a Gaussian drives each ODE solver
//! at its order and the SDE keeps the marginals; the likelihood along the flow is the
//! Gaussian's; a network trained by flow matching recovers N(μ, Σ); its ε̂, velocity and
//! divergences agree; weights files record the process.

mod common;

use std::sync::Arc;

use common::{MEAN, VAR, mean_cov};
use diffusion_playground::Point;
use diffusion_playground::math::flow::FlowOracle;
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig, log_likelihood};
use diffusion_playground::math::oracle::Component;
use diffusion_playground::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use diffusion_playground::math::{Process, Schedule, ScoreModel};
use diffusion_playground::nn::{
    MlpConfig, NetModel, Parameterization, SavedModel, TrainConfig, Trainer, weights,
};

fn gaussian() -> FlowOracle {
    FlowOracle::new(vec![Component {
        weight: 1.0,
        mean: MEAN,
        cov: [[VAR[0], 0.0], [0.0, VAR[1]]],
    }])
}

/// Per-axis variance of x_t on the linear path: (1 − t)² v + t².
fn path_var(t: f64, d: usize) -> f64 {
    (1.0 - t).powi(2) * VAR[d] + t * t
}

/// The exact flow map of the diagonal Gaussian from t = `from` to `to`: each axis keeps its
/// standardised position, x_to = (1 − to) μ + √(C_to / C_from) (x_from − (1 − from) μ).
fn exact_flow(x: &[Point], from: f64, to: f64) -> Vec<Point> {
    x.iter()
        .map(|p| {
            let mut out = [0.0f32; 2];
            for d in 0..2 {
                let scale = (path_var(to, d) / path_var(from, d)).sqrt();
                out[d] =
                    ((1.0 - to) * MEAN[d] + scale * (p[d] as f64 - (1.0 - from) * MEAN[d])) as f32;
            }
            out
        })
        .collect()
}

fn run(model: &dyn ScoreModel, kind: SamplerKind, steps: usize, start: &[Point]) -> Vec<Point> {
    let cfg = SamplerConfig {
        kind,
        steps,
        ..SamplerConfig::default()
    };
    let mut x = start.to_vec();
    Sampler::new(Schedule::default(), cfg).run(model, &mut x);
    x
}

/// Euler, Heun and RK4 on the exact velocity: the error against the exact flow map falls at
/// orders 1, 2 and 4 (in f64 terms; the particles are f32, so RK4 is measured at few steps).
#[test]
fn ode_solvers_on_the_exact_velocity_converge_at_their_orders() {
    let oracle = gaussian();
    let start = prior(64, 3);
    let t_min = SamplerConfig::default().t_min;
    let exact = exact_flow(&start, 1.0, t_min);
    let err = |kind, steps| {
        run(&oracle, kind, steps, &start)
            .iter()
            .zip(&exact)
            .map(|(a, b)| ((a[0] - b[0]) as f64).hypot((a[1] - b[1]) as f64))
            .fold(0.0, f64::max)
    };
    for (kind, n, order, tol) in [
        (SamplerKind::OdeEuler, 32, 1.0, 0.2),
        (SamplerKind::Heun, 16, 2.0, 0.3),
        (SamplerKind::Rk4, 8, 4.0, 0.6),
    ] {
        let (coarse, fine) = (err(kind, n), err(kind, 2 * n));
        let measured = (coarse / fine).log2();
        assert!(
            (measured - order).abs() < tol,
            "{}: order {measured:.2} ({coarse:.2e} → {fine:.2e}), expected {order}",
            kind.name()
        );
    }
}

/// The reverse SDE (ς² = 2t) started from N(0, I) ends with the data's mean and variance.
#[test]
fn the_sde_on_the_exact_velocity_reaches_the_data_law() {
    let oracle = gaussian();
    let n = 20_000;
    let x = run(&oracle, SamplerKind::Em, 400, &prior(n, 8));
    let (m, c) = mean_cov(&x);
    for d in 0..2 {
        let se = (VAR[d] / n as f64).sqrt();
        assert!(
            (m[d] - MEAN[d]).abs() < 4.0 * se + 0.01,
            "axis {d}: mean {} vs {}",
            m[d],
            MEAN[d]
        );
        // The variance's standard error is v√(2/n) ≈ 1 % of v; Euler–Maruyama adds O(h).
        assert!(
            (c[d][d] - VAR[d]).abs() < 0.05 * VAR[d] + 4.0 * VAR[d] * (2.0 / n as f64).sqrt(),
            "axis {d}: variance {} vs {}",
            c[d][d],
            VAR[d]
        );
    }
}

/// log p along the flow (RK4, exact divergence) equals the Gaussian's log-density at t_min.
#[test]
fn the_likelihood_along_the_flow_is_the_gaussians() {
    let oracle = gaussian();
    let cfg = LikelihoodConfig {
        steps: 200,
        t_min: 1e-3,
        divergence: Divergence::Exact,
    };
    let xs: Vec<Point> = prior(50, 4)
        .iter()
        .map(|e| {
            [
                (MEAN[0] + VAR[0].sqrt() * e[0] as f64) as f32,
                (MEAN[1] + VAR[1].sqrt() * e[1] as f64) as f32,
            ]
        })
        .collect();
    let ll = log_likelihood(&oracle, &Schedule::default(), &xs, &cfg);
    for (x, l) in xs.iter().zip(&ll) {
        let exact: f64 = (0..2)
            .map(|d| {
                let (m, v) = ((1.0 - cfg.t_min) * MEAN[d], path_var(cfg.t_min, d));
                -0.5 * (std::f64::consts::TAU * v).ln() - 0.5 * (x[d] as f64 - m).powi(2) / v
            })
            .sum();
        assert!(
            (l - exact).abs() < 5e-3,
            "log p {l} vs exact {exact} at {x:?}"
        );
    }
}

fn draws(n: usize, seed: u32, mean: [f64; 2], chol: [[f64; 2]; 2]) -> Vec<Point> {
    prior(n, seed)
        .iter()
        .map(|z| {
            let (z0, z1) = (z[0] as f64, z[1] as f64);
            [
                (mean[0] + chol[0][0] * z0) as f32,
                (mean[1] + chol[1][0] * z0 + chol[1][1] * z1) as f32,
            ]
        })
        .collect()
}

fn small_fm_net() -> MlpConfig {
    MlpConfig {
        width: 48,
        depth: 2,
        process: Process::Fm,
        ..MlpConfig::default()
    }
}

/// Flow matching on draws from N(μ, Σ) (correlated), sampled with Heun: the samples' mean
/// and covariance match μ and Σ within a tolerance from the standard errors of both sets
/// (4 SE) plus 5 % of Σ for the network's fit.
#[test]
fn a_network_trained_by_flow_matching_recovers_a_gaussian() {
    let (mean, cov) = ([0.8, -0.4], [[0.5, 0.3], [0.3, 0.4]]);
    let (mean, cov): ([f64; 2], [[f64; 2]; 2]) = (mean, cov);
    let l00 = cov[0][0].sqrt();
    let l10 = cov[0][1] / l00;
    let chol = [[l00, 0.0], [l10, (cov[1][1] - l10 * l10).sqrt()]];
    let n = 8192;
    let data = draws(n, 21, mean, chol);
    let cfg = TrainConfig {
        net: small_fm_net(),
        lr: 3e-3,
        batch: 512,
        seed: 5,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, Arc::<[Point]>::from(data.as_slice())).expect("trainer");
    for _ in 0..1500 {
        trainer.step().expect("step");
    }
    let model = trainer.model(true).expect("model");
    assert_eq!(model.process(), Process::Fm);
    let x = run(&model, SamplerKind::Heun, 30, &prior(n, 77));
    let (m, c) = mean_cov(&x);
    for i in 0..2 {
        let se = (2.0 * cov[i][i] / n as f64).sqrt();
        assert!(
            (m[i] - mean[i]).abs() < 4.0 * se + 0.05 * cov[i][i].sqrt(),
            "mean[{i}] {} vs {}",
            m[i],
            mean[i]
        );
        for j in 0..2 {
            // SE of a sample covariance: √((Σ_ii Σ_jj + Σ_ij²)/n), for both sets.
            let se = (2.0 * (cov[i][i] * cov[j][j] + cov[i][j].powi(2)) / n as f64).sqrt();
            assert!(
                (c[i][j] - cov[i][j]).abs() < 4.0 * se + 0.05 * (cov[i][i] * cov[j][j]).sqrt(),
                "cov[{i}][{j}] {} vs {}",
                c[i][j],
                cov[i][j]
            );
        }
    }
}

/// A flow-matching network's ε̂ is x + (1 − t) v, and its divergences follow: ∇·ε̂ =
/// 2 + (1 − t) ∇·v, with ∇·v (forward mode) equal to central differences of v.
#[test]
fn a_flow_matching_network_gives_eps_velocity_and_divergences_that_agree() {
    let net = small_fm_net();
    let params: Vec<f32> = (0..net.num_params())
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.4)
        .collect();
    let model = NetModel::new(net, Schedule::default(), params).expect("model");
    let xs = prior(300, 9);
    let n = xs.len();
    for t in [0.0f32, 0.3, 0.9, 1.0] {
        let (mut v, mut e) = (vec![[0.0; 2]; n], vec![[0.0; 2]; n]);
        let (mut dv, mut de) = (vec![0.0; n], vec![0.0; n]);
        model.velocity_div(&xs, t, &mut v, &mut dv);
        model.eps_div(&xs, t, &mut e, &mut de);
        let mut v_plain = vec![[0.0; 2]; n];
        model.velocity(&xs, t, &mut v_plain);
        let h = 1e-2f32;
        for i in 0..n {
            assert_eq!(v[i], v_plain[i]);
            for d in 0..2 {
                let want = xs[i][d] + (1.0 - t) * v[i][d];
                assert!(
                    (e[i][d] - want).abs() < 1e-5,
                    "t {t}: ε̂ {} vs {want}",
                    e[i][d]
                );
            }
            assert!((de[i] - (2.0 + (1.0 - t) * dv[i])).abs() < 1e-4);
            let mut fd = 0.0;
            for d in 0..2 {
                let (mut p, mut m) = (xs[i], xs[i]);
                p[d] += h;
                m[d] -= h;
                let (mut vp, mut vm) = ([[0.0; 2]], [[0.0; 2]]);
                model.velocity(&[p], t, &mut vp);
                model.velocity(&[m], t, &mut vm);
                fd += (vp[0][d] - vm[0][d]) / (2.0 * h);
            }
            assert!(
                (dv[i] - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                "t {t}: ∇·v {} vs differences {fd}",
                dv[i]
            );
        }
    }
}

#[test]
fn flow_matching_refuses_the_vp_parameterizations() {
    for param in [Parameterization::Score, Parameterization::X0] {
        let net = MlpConfig {
            param,
            ..small_fm_net()
        };
        let err = net
            .validate()
            .expect_err("fm with another parameterization");
        assert!(err.to_string().contains("velocity"), "{err}");
    }
    small_fm_net().validate().expect("fm with eps");
}

/// A weights file says `"process":"fm"` in its config and loads back as FM; a VP file has no
/// such key (as files written before flow matching), and loads as VP.
#[test]
fn weights_files_record_the_process() {
    for process in Process::ALL {
        let config = MlpConfig {
            process,
            ..small_fm_net()
        };
        let saved = SavedModel {
            params: vec![0.01; config.num_params()],
            config,
            schedule: Schedule::default(),
            t_min: 1e-3,
            dataset: "swiss-roll".into(),
            normalization: Default::default(),
            steps: 1,
        };
        let bytes = weights::to_bytes(&saved).expect("bytes");
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            text.contains(r#"\"process\":\"fm\""#),
            process == Process::Fm,
            "{process:?}"
        );
        assert!(!text.contains("process\\\":\\\"vp"));
        let back = weights::from_bytes(&bytes, "mem").expect("load");
        assert_eq!(back.config.process, process);
    }
}

/// Straightness S = Σ length / Σ |end − start| of the exact flows of a point mass at μ. Under
/// flow matching each path is the ray x_t = μ + t (x₁ − μ), so S = 1. The VP PF-ODE keeps
/// ε = (x − α μ)/σ constant, so a path is the curve α(t) μ + σ(t) ε, whose length is the
/// integral of |α′ μ + σ′ ε| (midpoint rule, 20 000 cells).
#[test]
fn straightness_of_a_point_mass_is_one_for_flow_matching_and_the_arc_for_vp() {
    use diffusion_playground::math::oracle::Oracle;
    use diffusion_playground::teach::{Progress, paths::straightness};
    let mu = [2.0f64, 0.0];
    let point = [[mu[0] as f32, mu[1] as f32]];
    let (n, seed) = (400, 3);
    let schedule = Schedule::default();

    let fm = FlowOracle::empirical(&point);
    let (s_fm, _) = straightness(&fm, schedule, n, seed, 0, Progress::none()).unwrap();
    assert!((s_fm - 1.0).abs() < 1e-4, "flow matching: S = {s_fm}");

    let vp = Oracle::empirical(&point, schedule);
    let (s_vp, _) = straightness(&vp, schedule, n, seed, 0, Progress::none()).unwrap();
    let t_min = SamplerConfig::default().t_min;
    let at = |t: f64, e: [f64; 2]| -> [f64; 2] {
        let (a, s) = (schedule.alpha(t), schedule.sigma(t));
        [a * mu[0] + s * e[0], a * mu[1] + s * e[1]]
    };
    let (mut length, mut chord) = (0.0, 0.0);
    for x1 in prior(n, seed) {
        let e = [0, 1].map(|d| (x1[d] as f64 - schedule.alpha(1.0) * mu[d]) / schedule.sigma(1.0));
        let cells = 20_000;
        let h = (1.0 - t_min) / cells as f64;
        for k in 0..cells {
            let (a, b) = (
                at(t_min + k as f64 * h, e),
                at(t_min + (k + 1) as f64 * h, e),
            );
            length += (b[0] - a[0]).hypot(b[1] - a[1]);
        }
        let (a, b) = (at(t_min, e), at(1.0, e));
        chord += (b[0] - a[0]).hypot(b[1] - a[1]);
    }
    let expected = length / chord;
    assert!(expected > 1.05, "the VP arc should be curved: {expected}");
    assert!(
        (s_vp - expected).abs() < 0.01 * expected,
        "VP: S = {s_vp}, the arc gives {expected}"
    );
}
