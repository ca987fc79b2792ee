//! `NetModel` as a `ScoreModel`: the one-time fast path against the general forward pass,
//! the exact divergence against finite differences, and validation.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use diffusion_playground::Point;
use diffusion_playground::math::rng::{STREAM_PRIOR, normal2};
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{
    Activation, Embedding, MlpConfig, NetModel, NnError, Parameterization,
};

fn points(n: usize, seed: u32) -> Vec<Point> {
    (0..n as u32)
        .map(|i| normal2(seed, 0, i, STREAM_PRIOR))
        .collect()
}

/// A model with generic (not freshly initialised) weights: nonzero biases, a larger output.
fn model(
    width: usize,
    depth: usize,
    activation: Activation,
    embedding: Embedding,
    param: Parameterization,
) -> NetModel {
    let config = MlpConfig {
        width,
        depth,
        activation,
        embedding,
        param,
        num_classes: 0,
        ..MlpConfig::default()
    };
    let mut params = config.init_params(5);
    for (i, p) in params.iter_mut().enumerate() {
        *p += 0.1 * (i as f32 * 0.37).sin();
    }
    NetModel::new(config, Schedule::default(), params).unwrap()
}

fn all_models() -> Vec<NetModel> {
    let mut out = Vec::new();
    for act in Activation::ALL {
        for param in Parameterization::ALL {
            for emb in [Embedding::Scalar, Embedding::Sinusoidal { dim: 10 }] {
                out.push(model(19, 2, act, emb, param));
            }
        }
    }
    out.push(model(
        128,
        3,
        Activation::Gelu,
        Embedding::Sinusoidal { dim: 64 },
        Parameterization::Eps,
    ));
    out.push(model(
        48,
        1,
        Activation::Silu,
        Embedding::Sinusoidal { dim: 32 },
        Parameterization::X0,
    ));
    out
}

/// `eps` at one time (layer 0 folded into a per-time offset, parallel chunks) equals the
/// general per-point forward pass.
#[test]
fn eps_matches_the_general_forward_pass() {
    for m in all_models() {
        for &n in &[1usize, 7, 300, 1000] {
            let xs = points(n, n as u32);
            for &t in &[0.001f32, 0.3, 1.0] {
                let mut fast = vec![[0.0f32; 2]; n];
                m.eps(&xs, t, &mut fast);
                let mut slow = vec![[0.0f32; 2]; n];
                m.eps_per_point(&xs, &vec![t; n], &mut slow);
                for (a, b) in fast.iter().zip(&slow) {
                    for d in 0..2 {
                        let tol = 1e-4 * (1.0 + b[d].abs());
                        assert!(
                            (a[d] - b[d]).abs() < tol,
                            "{:?} n={n} t={t}: {a:?} vs {b:?}",
                            m.config()
                        );
                    }
                }
            }
        }
    }
}

/// The forward-mode divergence against central differences in x (the trait's default).
#[test]
fn exact_divergence_matches_finite_differences() {
    /// The default `eps_div` of the trait, through a wrapper that does not override it.
    struct Fd<'a>(&'a NetModel);
    impl ScoreModel for Fd<'_> {
        fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
            self.0.eps(xs, t, out)
        }
    }
    for m in all_models() {
        let n = 300;
        let xs = points(n, 3);
        for &t in &[0.05f32, 0.5] {
            let (mut e1, mut e2) = (vec![[0.0f32; 2]; n], vec![[0.0f32; 2]; n]);
            let (mut d1, mut d2) = (vec![0.0f32; n], vec![0.0f32; n]);
            m.eps_div(&xs, t, &mut e1, &mut d1);
            Fd(&m).eps_div(&xs, t, &mut e2, &mut d2);
            assert_eq!(e1, e2, "eps_div's ε̂ differs from eps");
            let scale = d2.iter().map(|d| d.abs()).fold(0.0f32, f32::max).max(1.0);
            let kinks = if m.config().activation == Activation::Relu {
                n / 20
            } else {
                0
            };
            let far = |(a, b): &(&f32, &f32)| (**a - **b).abs() > 2e-2 * scale;
            let bad = d1.iter().zip(&d2).filter(far).count();
            assert!(
                bad <= kinks,
                "{:?} t={t}: {bad} points differ, e.g. {:?}",
                m.config(),
                d1.iter().zip(&d2).find(far)
            );
        }
    }
}

#[test]
fn concurrent_calls_agree() {
    let m = model(
        64,
        3,
        Activation::Silu,
        Embedding::Sinusoidal { dim: 16 },
        Parameterization::Eps,
    );
    let xs = points(2000, 1);
    let mut expect = vec![[0.0f32; 2]; xs.len()];
    m.eps(&xs, 0.4, &mut expect);
    let copy = m.clone();
    std::thread::scope(|s| {
        for k in 0..4 {
            let (m, xs, expect) = (if k % 2 == 0 { &m } else { &copy }, &xs, &expect);
            s.spawn(move || {
                for _ in 0..5 {
                    let mut out = vec![[0.0f32; 2]; xs.len()];
                    m.eps(xs, 0.4, &mut out);
                    assert_eq!(&out, expect);
                }
            });
        }
    });
}

#[test]
fn construction_validates() {
    let config = MlpConfig::default();
    let n = config.num_params();
    let err = NetModel::new(config.clone(), Schedule::default(), vec![0.0; n - 1]).unwrap_err();
    assert_eq!(
        err,
        NnError::ParamLength {
            expected: n,
            got: n - 1
        }
    );
    let mut nan = vec![0.0; n];
    nan[7] = f32::NAN;
    assert_eq!(
        NetModel::new(config.clone(), Schedule::default(), nan).unwrap_err(),
        NnError::NonFiniteParams
    );
    let bad = MlpConfig {
        depth: 0,
        ..config.clone()
    };
    assert!(NetModel::new(bad, Schedule::default(), vec![0.0; n]).is_err());
    assert!(NetModel::new(config, Schedule::Constant { beta: 0.0 }, vec![0.0; n]).is_err());
}

/// The trainer moves to a worker thread; models are shared between threads.
#[test]
fn thread_safety() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<diffusion_playground::nn::Trainer>();
    send_sync::<NetModel>();
}
