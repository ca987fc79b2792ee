//! DSM training: reproducible batches, the importance sampler, learning, and NaN handling.

use diffusion_playground::Point;
use diffusion_playground::math::oracle::{Component, Oracle};
use diffusion_playground::math::rng::{STREAM_PRIOR, normal2};
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{DsmSampler, ImportanceTable};
use diffusion_playground::nn::{MlpConfig, NnError, TrainConfig, Trainer, Weighting};

const MEAN: [f32; 2] = [0.5, -1.0];
const STD: [f32; 2] = [0.3, 0.8];

/// Points of N(MEAN, diag(STD²)).
fn gaussian(n: usize, seed: u32) -> Vec<Point> {
    (0..n as u32)
        .map(|i| {
            let z = normal2(seed, 0, i, STREAM_PRIOR);
            [MEAN[0] + STD[0] * z[0], MEAN[1] + STD[1] * z[1]]
        })
        .collect()
}

fn small_config() -> TrainConfig {
    TrainConfig {
        net: MlpConfig {
            width: 32,
            depth: 2,
            ..MlpConfig::default()
        },
        batch: 200,
        ..TrainConfig::default()
    }
}

#[test]
fn batches_are_reproducible_and_change_with_the_step() {
    let data = gaussian(500, 1);
    for w in Weighting::ALL {
        let s = DsmSampler::new(7, Schedule::default(), 1e-3, w);
        let a = s.draw_batch(&data, 5, 64);
        assert_eq!(a, s.draw_batch(&data, 5, 64));
        // Sample i does not depend on the batch size or on the other samples.
        assert_eq!(a[10], s.draw(&data, 5, 10));
        let b = s.draw_batch(&data, 6, 64);
        let other_seed = DsmSampler::new(8, Schedule::default(), 1e-3, w).draw_batch(&data, 5, 64);
        for other in [&b, &other_seed] {
            let same = a
                .iter()
                .zip(other.iter())
                .filter(|(x, y)| x.t == y.t || x.eps == y.eps)
                .count();
            assert!(same <= 1, "{w:?}: {same} samples repeated");
        }
        for x in &a {
            assert!(x.t >= 1e-3 && x.t <= 1.0 && x.index < data.len());
            let x0 = data[x.index];
            for ((xt, x0), e) in x.x_t.iter().zip(x0).zip(x.eps) {
                assert!((xt - (x.alpha * x0 + x.sigma * e)).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn uniform_times_and_indices_cover_their_ranges() {
    let data = gaussian(10, 1);
    let s = DsmSampler::new(3, Schedule::default(), 1e-3, Weighting::Uniform);
    let batch = s.draw_batch(&data, 0, 20_000);
    let mean_t = batch.iter().map(|x| x.t as f64).sum::<f64>() / batch.len() as f64;
    assert!((mean_t - 0.5005).abs() < 0.01, "mean t {mean_t}");
    let mut counts = [0usize; 10];
    batch.iter().for_each(|x| counts[x.index] += 1);
    assert!(
        counts.iter().all(|&c| (1700..2300).contains(&c)),
        "{counts:?}"
    );
    assert!(batch.iter().all(|x| x.weight == 1.0));
}

/// π(t) ∝ 1/σ²: the sampled histogram matches ∫π over each bin, and the constant weight is
/// the mean of 1/σ² under U[t_min, 1].
#[test]
fn importance_sampling_follows_pi() {
    for schedule in [
        Schedule::default(),
        Schedule::Cosine { beta_cap: 20.0 },
        Schedule::Constant { beta: 2.0 },
    ] {
        let t_min = 1e-3f32;
        let table = ImportanceTable::new(&schedule, t_min);
        let inv_s2 = |t: f64| 1.0 / schedule.sigma(t).powi(2);
        // Z by a fine midpoint rule in log t.
        let (n, (a, b)) = (200_000, ((t_min as f64).ln(), 0.0f64));
        let h = (b - a) / n as f64;
        let z: f64 = (0..n)
            .map(|i| (a + (i as f64 + 0.5) * h).exp())
            .map(|t| inv_s2(t) * t * h)
            .sum();
        assert!(
            (table.normalizer / z - 1.0).abs() < 1e-4,
            "{schedule:?}: Z {} vs {z}",
            table.normalizer
        );
        assert!(
            (table.weight as f64 - z / (1.0 - t_min as f64)).abs() < 1e-3 * table.weight as f64
        );

        let data = gaussian(4, 1);
        let s = DsmSampler::new(11, schedule, t_min, Weighting::Importance);
        let draws = s.draw_batch(&data, 0, 200_000);
        assert!(
            draws
                .iter()
                .all(|x| x.weight == table.weight && x.t >= t_min && x.t <= 1.0)
        );
        // Bins uniform in log t; expected mass by the same midpoint rule.
        let edges: Vec<f64> = (0..=8)
            .map(|k| (a + (b - a) * k as f64 / 8.0).exp())
            .collect();
        for k in 0..8 {
            let (lo, hi) = (edges[k], edges[k + 1]);
            let m = 20_000;
            let hh = (hi.ln() - lo.ln()) / m as f64;
            let mass: f64 = (0..m)
                .map(|i| (lo.ln() + (i as f64 + 0.5) * hh).exp())
                .map(|t| inv_s2(t) * t * hh)
                .sum::<f64>()
                / z;
            let got = draws
                .iter()
                .filter(|x| (x.t as f64) >= lo && (x.t as f64) < hi)
                .count() as f64
                / draws.len() as f64;
            let tol = 4.0 * (mass * (1.0 - mass) / draws.len() as f64).sqrt() + 2e-3;
            assert!(
                (got - mass).abs() < tol,
                "{schedule:?} bin {k}: {got} vs {mass}"
            );
        }
        // E_U[w(t)] with w = 1/σ² equals the importance weight (both estimate the same loss).
        let u = DsmSampler::new(11, schedule, t_min, Weighting::InverseSigma2);
        let draws = u.draw_batch(&data, 0, 400_000);
        let mean_w = draws.iter().map(|x| x.weight as f64).sum::<f64>() / draws.len() as f64;
        assert!(
            (mean_w / table.weight as f64 - 1.0).abs() < 0.05,
            "{schedule:?}: {mean_w} vs {}",
            table.weight
        );
    }
}

/// Training on a Gaussian lowers the loss and brings ε̂ close to the exact one.
#[test]
fn training_on_a_gaussian_learns_its_score() {
    let cfg = TrainConfig {
        lr: 3e-3,
        ..small_config()
    };
    let data = gaussian(4000, 2);
    let mut trainer = Trainer::new(cfg.clone(), data).unwrap();
    let oracle = Oracle::new(
        vec![Component {
            weight: 1.0,
            mean: [MEAN[0] as f64, MEAN[1] as f64],
            cov: [
                [(STD[0] * STD[0]) as f64, 0.0],
                [0.0, (STD[1] * STD[1]) as f64],
            ],
        }],
        cfg.schedule,
    );
    let error_to_oracle = |trainer: &Trainer| {
        let model = trainer.model(true).unwrap();
        let mut err = 0.0f64;
        for &t in &[0.05f32, 0.2, 0.5, 0.9] {
            let s = cfg.schedule;
            let (a, g) = (s.alpha(t as f64) as f32, s.sigma(t as f64) as f32);
            let xs: Vec<Point> = gaussian(500, 9)
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let e = normal2(4, 0, i as u32, STREAM_PRIOR);
                    [a * x[0] + g * e[0], a * x[1] + g * e[1]]
                })
                .collect();
            let (mut net, mut exact) = (vec![[0.0; 2]; xs.len()], vec![[0.0; 2]; xs.len()]);
            model.eps(&xs, t, &mut net);
            oracle.eps(&xs, t, &mut exact);
            err += net
                .iter()
                .zip(&exact)
                .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)) as f64)
                .sum::<f64>()
                / xs.len() as f64;
        }
        err / 4.0
    };
    let before = error_to_oracle(&trainer);
    let losses: Vec<f32> = (0..600).map(|_| trainer.step().unwrap()).collect();
    let first = losses[..20].iter().sum::<f32>() / 20.0;
    let last = losses[losses.len() - 100..].iter().sum::<f32>() / 100.0;
    let after = error_to_oracle(&trainer);
    println!("loss {first:.3} → {last:.3}; ‖ε̂ − ε*‖² {before:.4} → {after:.4}");
    assert!(last < 0.7 * first, "loss {first} → {last}");
    assert!(
        after < 0.2 * before && after < 0.05,
        "error to the exact ε: {before} → {after}"
    );
    assert_eq!(trainer.steps_done(), 600);
}

#[test]
fn training_is_deterministic_for_any_thread_count() {
    let data = gaussian(300, 3);
    let run = |threads: usize, batch: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let cfg = TrainConfig {
                batch,
                ..small_config()
            };
            let mut t = Trainer::new(cfg, data.clone()).unwrap();
            let losses: Vec<f32> = (0..5).map(|_| t.step().unwrap()).collect();
            (losses, t.params().to_vec(), t.ema_params().to_vec())
        })
    };
    for batch in [300, 2100] {
        let one = run(1, batch);
        assert_eq!(one, run(3, batch));
        assert_eq!(one, run(2, batch));
    }
}

#[test]
fn setters_keep_the_weights_and_reset_restarts() {
    let data = gaussian(300, 4);
    let mut t = Trainer::new(small_config(), data.clone()).unwrap();
    let fresh = t.params().to_vec();
    for _ in 0..3 {
        t.step().unwrap();
    }
    let trained = t.params().to_vec();
    assert_ne!(trained, fresh);
    t.set_lr(1e-4).unwrap();
    t.set_weighting(Weighting::Importance);
    t.set_schedule(Schedule::Cosine { beta_cap: 20.0 }).unwrap();
    t.set_data(gaussian(50, 5)).unwrap();
    t.set_batch(64).unwrap();
    t.set_t_min(0.01).unwrap();
    t.set_ema_decay(0.99).unwrap();
    assert_eq!(t.params(), &trained[..]);
    assert_eq!(t.steps_done(), 3);
    assert!(t.step().unwrap().is_finite());
    assert_eq!(t.steps_done(), 4);
    // Bad values are refused and change nothing.
    assert!(t.set_lr(f32::NAN).is_err() && t.set_lr(-1.0).is_err());
    assert!(t.set_batch(0).is_err());
    assert!(t.set_t_min(0.0).is_err() && t.set_t_min(1.0).is_err());
    assert!(t.set_ema_decay(1.0).is_err());
    assert!(t.set_schedule(Schedule::Constant { beta: -1.0 }).is_err());
    assert_eq!(t.set_data(Vec::new()), Err(NnError::EmptyData));
    assert_eq!(
        t.set_data(vec![[0.0, 0.0], [f32::NAN, 1.0]]),
        Err(NnError::NonFiniteData { index: 1 })
    );
    assert!(t.set_params(vec![0.0; 3]).is_err());
    assert_eq!(t.config().lr, 1e-4);
    // reset: the same weights as a new trainer with that seed.
    t.reset(0);
    assert_eq!(t.steps_done(), 0);
    assert_eq!(t.params(), &fresh[..]);
    assert_eq!(t.ema_params(), &fresh[..]);
}

#[test]
fn construction_validates() {
    let data = gaussian(10, 1);
    assert_eq!(
        Trainer::new(small_config(), Vec::<Point>::new()).err(),
        Some(NnError::EmptyData)
    );
    for bad in [
        TrainConfig {
            lr: 0.0,
            ..small_config()
        },
        TrainConfig {
            batch: 0,
            ..small_config()
        },
        TrainConfig {
            t_min: 0.0,
            ..small_config()
        },
        TrainConfig {
            ema_decay: 1.5,
            ..small_config()
        },
        TrainConfig {
            net: MlpConfig {
                width: 0,
                ..MlpConfig::default()
            },
            ..small_config()
        },
    ] {
        assert!(Trainer::new(bad, data.clone()).is_err());
    }
}

/// A diverging step (here: data so large that the forward pass overflows) is reported and
/// not applied; training recovers once the data is sane.
#[test]
fn non_finite_loss_keeps_the_last_good_weights() {
    let mut t = Trainer::new(small_config(), gaussian(100, 6)).unwrap();
    t.step().unwrap();
    let (params, ema) = (t.params().to_vec(), t.ema_params().to_vec());
    t.set_data(vec![[3e38, -3e38]; 10]).unwrap();
    for k in 1..4u64 {
        assert_eq!(t.step(), Err(NnError::NonFinite { step: k }));
        assert_eq!(t.params(), &params[..]);
        assert_eq!(t.ema_params(), &ema[..]);
    }
    assert_eq!(t.steps_done(), 4);
    t.set_data(gaussian(100, 6)).unwrap();
    assert!(t.step().unwrap().is_finite());
    assert_ne!(t.params(), &params[..]);
}

/// The batch loss (computed in chunks, in parallel) equals the mean of per-sample losses
/// computed one point at a time through `NetModel`, for batch sizes around the chunk size.
#[test]
fn batch_loss_is_the_mean_of_per_sample_losses() {
    let data = gaussian(3000, 7);
    for w in Weighting::ALL {
        for batch in [1usize, 127, 128, 129, 1000, 2100] {
            let cfg = TrainConfig {
                batch,
                weighting: w,
                ..small_config()
            };
            let mut t = Trainer::new(cfg, data.clone()).unwrap();
            let loss = t.loss_at(3) as f64;
            let model = t.model(false).unwrap();
            let samples = t.sampler().draw_batch(&data, 3, batch);
            let mut expect = 0.0f64;
            for s in &samples {
                let mut e = [[0.0f32; 2]];
                model.eps_per_point(&[s.x_t], &[s.t], &mut e);
                let r = [e[0][0] - s.eps[0], e[0][1] - s.eps[1]];
                expect += (s.weight * (r[0] * r[0] + r[1] * r[1])) as f64;
            }
            expect /= batch as f64;
            assert!(
                (loss - expect).abs() < 1e-5 * expect.max(1.0),
                "{w:?} batch {batch}: {loss} vs {expect}"
            );
        }
    }
}
