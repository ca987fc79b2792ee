//! Samplers and the likelihood against Gaussian data whose score and density are exact.

mod common;

use diffusion_playground::math::Schedule;
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig, flow, log_likelihood};
use diffusion_playground::math::oracle::{Component, Oracle};
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

/// Every sampler, driven by the exact score of N(μ, Σ), must return N(μ, Σ).
#[test]
fn every_sampler_recovers_a_gaussian() {
    let schedule = Schedule::default();
    let (oracle, mean, cov) = correlated_gaussian(schedule);
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
        let (x, nfe) = sample(&oracle, schedule, cfg, 20_000);
        assert_eq!(nfe, steps * kind.nfe_per_step(), "{kind:?} NFE");
        let (m, c) = common::mean_cov(&x);
        for i in 0..2 {
            assert!(
                (m[i] - mean[i]).abs() < 0.03,
                "{kind:?}: mean {m:?} vs {mean:?}"
            );
            for j in 0..2 {
                assert!(
                    (c[i][j] - cov[i][j]).abs() < 0.03,
                    "{kind:?}: cov {c:?} vs {cov:?}"
                );
            }
        }
    }
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
