//! The density view against closed forms: the PF-ODE log-density of a Gaussian mixture, the
//! exact forward density, and the held-out NLL.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use diffusion_playground::data::BuiltIn;
use diffusion_playground::math::Schedule;
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig};
use diffusion_playground::math::oracle::Oracle;
use diffusion_playground::nn::{MlpConfig, NetModel};
use diffusion_playground::teach::density::{
    FORWARD_CHUNK, ForwardDensity, Grid, exact_log_density, forward_density, held_out_nll,
    model_log_density,
};
use diffusion_playground::teach::{Progress, Sweep, ZeroScore};

fn eight() -> Oracle {
    Oracle::new(
        BuiltIn::EightGaussians.mixture().unwrap(),
        Schedule::default(),
    )
}

/// The PF-ODE heatmap, driven by the exact score, equals the closed-form log p_t of the
/// mixture wherever the density is not negligible (and stays close in the tails).
#[test]
fn pf_ode_heatmap_of_a_mixture_matches_the_closed_form() {
    let oracle = eight();
    let grid = Grid::square(2.5, 24).unwrap();
    let cfg = LikelihoodConfig {
        steps: 100,
        ..LikelihoodConfig::default()
    };
    for t in [1e-3, 0.3] {
        let ode = model_log_density(
            &oracle,
            Schedule::default(),
            &grid,
            t,
            &cfg,
            Progress::none(),
        )
        .unwrap();
        let exact = exact_log_density(&oracle, &grid, t).unwrap();
        let (_, hi) = exact.range().unwrap();
        let mut worst: f64 = 0.0;
        for (a, b) in ode.log_density.iter().zip(&exact.log_density) {
            if *b > hi - 15.0 {
                worst = worst.max((a - b).abs());
            }
        }
        eprintln!(
            "t={t}: worst |Δ log p| = {worst}, range {:?}",
            exact.range()
        );
        assert!(worst < 0.03, "t={t}: {worst}");
        assert!((exact.mass() - 1.0).abs() < 0.02, "{}", exact.mass());
        assert!((ode.mass() - 1.0).abs() < 0.02, "{}", ode.mass());
    }
}

/// With a score of zero the PF-ODE is dx/dt = −½βx, whose density is closed form:
/// x(1) = x α(1)/α(t), so log p_t(x) = log N(x(1); 0, I) + 2 log(α(1)/α(t)). A network with
/// all-zero weights predicts ε̂ = 0 too, and must give the same map.
#[test]
fn heatmap_of_a_zero_score_is_the_scaled_prior() {
    let sch = Schedule::default();
    let grid = Grid::square(4.0, 9).unwrap();
    let t = 0.8;
    let r = sch.alpha(1.0) / sch.alpha(t);
    let cfg = LikelihoodConfig::default();
    let zero = model_log_density(&ZeroScore, sch, &grid, t, &cfg, Progress::none()).unwrap();
    let config = MlpConfig {
        width: 16,
        depth: 2,
        ..MlpConfig::default()
    };
    let params = vec![0.0; config.num_params()];
    let net = NetModel::new(config, sch, params).unwrap();
    let net_map = model_log_density(&net, sch, &grid, t, &cfg, Progress::none()).unwrap();
    for ((p, a), b) in grid
        .points()
        .iter()
        .zip(&zero.log_density)
        .zip(&net_map.log_density)
    {
        let r2 = ((p[0] as f64) * r).powi(2) + ((p[1] as f64) * r).powi(2);
        let expected = -(std::f64::consts::TAU).ln() - 0.5 * r2 + 2.0 * r.ln();
        assert!((a - expected).abs() < 1e-4, "{a} vs {expected}");
        assert!((b - expected).abs() < 1e-4, "{b} vs {expected}");
    }
}

/// The forward density of training points is a normalised mixture at every t (Fokker–Planck
/// conserves mass), and at t → 1 it is N(0, I).
#[test]
fn forward_density_is_normalised_and_ends_at_the_prior() {
    let pts = BuiltIn::Moons.sample(200, 3).points;
    let grid = Grid::square(5.0, 120).unwrap();
    for t in [0.05, 0.3, 0.7] {
        let h = forward_density(&pts, Schedule::default(), &grid, t).unwrap();
        assert!((h.mass() - 1.0).abs() < 0.01, "t={t}: {}", h.mass());
    }
    let end = forward_density(&pts, Schedule::default(), &grid, 0.999).unwrap();
    let centre = end.at(60, 60);
    assert!(
        (centre - (-(std::f64::consts::TAU).ln())).abs() < 0.01,
        "{centre}"
    );
    assert!(forward_density(&pts, Schedule::default(), &grid, 0.0).is_err());
    assert!(forward_density(&[], Schedule::default(), &grid, 0.5).is_err());
}

/// The map a chunk of cells at a time (the view's sweep) is the whole map at once, and shows
/// nothing until it is complete.
#[test]
fn the_forward_map_in_chunks_is_the_whole_map() {
    let pts = BuiltIn::Moons.sample(200, 3).points;
    let grid = Grid::square(5.0, 96).unwrap();
    let schedule = Schedule::default();
    let whole = exact_log_density(&Oracle::empirical(&pts, schedule), &grid, 0.3).unwrap();
    let mut sweep = ForwardDensity::new(&pts, schedule, grid, 0.3).unwrap();
    let mut steps = 1;
    while !sweep.advance(Progress::none()).unwrap() {
        assert!(sweep.so_far().is_none(), "nothing shown before the end");
        steps += 1;
    }
    assert_eq!(steps, grid.len().div_ceil(FORWARD_CHUNK));
    assert_eq!(sweep.so_far().unwrap().log_density, whole.log_density);
}

/// The held-out NLL along the PF-ODE equals −mean log p_{t_min} in closed form; Hutchinson's
/// estimate agrees within its noise.
#[test]
fn held_out_nll_matches_the_closed_form() {
    let oracle = eight();
    let held = BuiltIn::EightGaussians.sample(300, 7).points;
    let exact = -oracle.log_density(&held, 1e-3).iter().sum::<f64>() / held.len() as f64;
    let cfg = LikelihoodConfig::default();
    let nll = held_out_nll(&oracle, Schedule::default(), &held, &cfg, Progress::none()).unwrap();
    assert!((nll.nats - exact).abs() < 0.01, "{} vs {exact}", nll.nats);
    assert_eq!(nll.n, 300);
    assert!(nll.std_error > 0.0 && nll.std_error < 0.2);
    let hutch = LikelihoodConfig {
        divergence: Divergence::Hutchinson { probes: 4, seed: 1 },
        ..cfg
    };
    let noisy = held_out_nll(
        &oracle,
        Schedule::default(),
        &held,
        &hutch,
        Progress::none(),
    )
    .unwrap();
    assert!(
        (noisy.nats - exact).abs() < 0.15,
        "{} vs {exact}",
        noisy.nats
    );
    assert!((nll.in_data_units(2.0) - nll.nats - 2.0 * 2f64.ln()).abs() < 1e-12);
    assert!(held_out_nll(&oracle, Schedule::default(), &[], &cfg, Progress::none()).is_err());
}
