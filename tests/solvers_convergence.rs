//! Each ODE solver's global error on the PF-ODE of Gaussian data, against the exact flow,
//! must fall with the step count at the solver's order (log-log slope).

mod common;

use diffusion_playground::math::Schedule;
use diffusion_playground::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};

/// RMS distance to the exact end point after `steps` steps.
fn error(kind: SamplerKind, steps: usize) -> f64 {
    let schedule = Schedule::default();
    let oracle = common::diagonal_gaussian(schedule);
    let cfg = SamplerConfig {
        kind,
        steps,
        seed: 3,
        ..Default::default()
    };
    let start = prior(256, cfg.seed);
    let mut x = start.clone();
    let mut sampler = Sampler::new(schedule, cfg);
    sampler.run(&oracle, &mut x);
    let t_end = sampler.t();
    let exact = common::exact_flow(&schedule, &start, 1.0, t_end);
    let se: f64 = x
        .iter()
        .zip(&exact)
        .map(|(a, b)| ((a[0] - b[0]) as f64).powi(2) + ((a[1] - b[1]) as f64).powi(2))
        .sum();
    (se / x.len() as f64).sqrt()
}

/// Least-squares slope of log(error) against log(steps), negated.
fn order(kind: SamplerKind, steps: &[usize]) -> f64 {
    let pts: Vec<(f64, f64)> = steps
        .iter()
        .map(|&n| ((n as f64).ln(), error(kind, n).ln()))
        .collect();
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let num: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let errors: Vec<f64> = steps.iter().map(|&n| error(kind, n)).collect();
    eprintln!("{kind:?}: steps {steps:?} errors {errors:?}");
    -num / den
}

#[test]
fn euler_is_first_order() {
    let p = order(SamplerKind::OdeEuler, &[32, 64, 128, 256]);
    assert!((0.85..1.2).contains(&p), "Euler order {p}");
}

#[test]
fn ddim_is_first_order() {
    let p = order(SamplerKind::Ddim, &[16, 32, 64, 128]);
    assert!((0.85..1.3).contains(&p), "DDIM order {p}");
}

#[test]
fn heun_is_second_order() {
    let p = order(SamplerKind::Heun, &[16, 32, 64, 128]);
    assert!((1.8..2.3).contains(&p), "Heun order {p}");
}

#[test]
fn rk4_is_fourth_order() {
    let p = order(SamplerKind::Rk4, &[16, 24, 32, 48]);
    assert!((3.5..4.6).contains(&p), "RK4 order {p}");
}

#[test]
fn dpm_solver_2m_is_second_order() {
    let p = order(SamplerKind::Dpm2m, &[16, 32, 64, 128]);
    assert!((1.7..2.4).contains(&p), "DPM-Solver++(2M) order {p}");
}
