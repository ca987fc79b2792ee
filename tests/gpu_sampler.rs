//! GPU particles against the CPU samplers: the prior, each sampler's steps, and the GPU
//! network as a `ScoreModel`.

mod gpu_common;

use std::sync::Arc;

use diffusion_playground::gpu::{GpuModel, GpuSampler, GpuWeights};
use diffusion_playground::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use diffusion_playground::math::{Process, Schedule, ScoreModel};
use diffusion_playground::nn::{Activation, Embedding, MlpConfig, NetModel, Parameterization};
use gpu_common::{assert_close, gpu};

fn net(param: Parameterization) -> MlpConfig {
    MlpConfig {
        width: 19,
        depth: 2,
        activation: Activation::Silu,
        embedding: Embedding::Sinusoidal { dim: 8 },
        param,
        num_classes: 0,
        ..MlpConfig::default()
    }
}

/// Weights with a sizeable output (the initial output layer is scaled down by 10, which
/// would make every ε̂ nearly 0 and the test weak).
fn params(cfg: &MlpConfig) -> Vec<f32> {
    let mut p = cfg.init_params(5);
    let out = cfg.layers()[cfg.depth];
    for v in &mut p[out.weight_offset..out.bias_offset + 2] {
        *v *= 10.0;
    }
    p
}

fn flat(p: &[[f32; 2]]) -> Vec<f32> {
    p.iter().flat_map(|x| *x).collect()
}

/// The GPU network's ε̂ equals `NetModel::eps` for odd point counts (incl. one point), every
/// parameterisation and several t: |Δ| ≤ 1e-5 + 1e-4·|ε̂| (x₀ divides by σ(t)).
#[test]
fn gpu_model_eps_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let schedule = Schedule::default();
    for param in Parameterization::ALL {
        let cfg = net(param);
        let p = params(&cfg);
        let cpu = NetModel::new(cfg.clone(), schedule, p.clone()).expect("cpu model");
        let model = GpuModel::new(ctx, cfg, schedule, p).expect("gpu model");
        for (n, t) in [(1usize, 0.5f32), (70, 0.01), (333, 0.9), (70, 1.0)] {
            let xs = prior(n, n as u32);
            let (mut a, mut b) = (vec![[0.0; 2]; n], vec![[0.0; 2]; n]);
            model.try_eps(&xs, t, &mut a).expect("gpu eps");
            cpu.eps(&xs, t, &mut b);
            assert_close(
                &format!("ε̂ {param:?} n={n} t={t}"),
                &flat(&a),
                &flat(&b),
                1e-4,
                1e-5,
            );
        }
        assert!(model.failure().is_none());
    }
}

/// The same prior, then three steps of `kind` on the GPU equal three CPU steps
/// (`math::solvers::Sampler` driving the CPU network). 101 particles (not a multiple of the
/// 256-thread groups). |Δ| ≤ 2e-5 + 2e-4·|x| after three steps.
fn three_steps_match(
    ctx: &diffusion_playground::gpu::GpuContext,
    cfg: MlpConfig,
    kind: SamplerKind,
) {
    let schedule = Schedule::default();
    let n = 101;
    let label = format!("{:?} {kind:?}", cfg.process);
    let p = params(&cfg);
    let cpu_model = NetModel::new(cfg.clone(), schedule, p.clone()).expect("cpu model");
    let weights = GpuWeights::new(ctx, &cfg, &p).expect("weights");
    let sc = SamplerConfig {
        kind,
        steps: 10,
        eta: 0.5,
        seed: 21,
        ..SamplerConfig::default()
    };
    let mut gpu_s =
        GpuSampler::new(ctx, Arc::clone(&weights), schedule, sc, n).expect("gpu sampler");
    let mut x = prior(n, sc.seed);
    assert_close(
        &format!("{label} prior"),
        &flat(&gpu_s.read_particles().expect("read")),
        &flat(&x),
        1e-6,
        1e-6,
    );
    let mut cpu_s = Sampler::new(schedule, sc);
    for step in 1..=3 {
        cpu_s.step(&cpu_model, &mut x);
        gpu_s.step().expect("gpu step");
        let g = gpu_s.read_particles().expect("read");
        assert_close(
            &format!("{label} after step {step}"),
            &flat(&g),
            &flat(&x),
            2e-4,
            2e-5,
        );
    }
    assert_eq!(gpu_s.nfe(), cpu_s.nfe(), "{label}: NFE");
    assert_eq!(gpu_s.steps_done(), 3);
    assert!((gpu_s.t() - cpu_s.t()).abs() < 1e-12, "{label}: t");
}

/// Every VP sampler, stepwise against the CPU.
#[test]
fn every_sampler_step_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for kind in SamplerKind::ALL {
        let param = if kind == SamplerKind::Dpm2m {
            Parameterization::X0
        } else {
            Parameterization::Eps
        };
        three_steps_match(ctx, net(param), kind);
    }
}

/// Flow matching on the velocity: Euler, Heun, RK4 and the reverse SDE (ς² = 2t), and every
/// VP-only kind as the counterpart it runs as (`SamplerKind::on`), stepwise against the CPU.
#[test]
fn every_flow_matching_sampler_step_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for kind in SamplerKind::ALL {
        let cfg = MlpConfig {
            process: Process::Fm,
            ..net(Parameterization::Eps)
        };
        three_steps_match(ctx, cfg, kind);
    }
}

/// A whole run with many steps per command encoder ends where the CPU run ends (PF-ODE
/// Euler, 40 steps; the errors of 40 steps add up: 1e-3).
#[test]
fn full_ode_run_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let schedule = Schedule::default();
    let cfg = net(Parameterization::Eps);
    let p = params(&cfg);
    let cpu_model = NetModel::new(cfg.clone(), schedule, p.clone()).expect("cpu model");
    let weights = GpuWeights::new(ctx, &cfg, &p).expect("weights");
    let sc = SamplerConfig {
        kind: SamplerKind::OdeEuler,
        steps: 40,
        seed: 3,
        ..SamplerConfig::default()
    };
    let mut gpu_s = GpuSampler::new(ctx, weights, schedule, sc, 257).expect("sampler");
    gpu_s.run().expect("run");
    assert!(gpu_s.is_done());
    let (x, nfe) = diffusion_playground::math::solvers::sample(&cpu_model, schedule, sc, 257);
    assert_eq!(gpu_s.nfe(), nfe);
    assert_close(
        "ODE Euler, 40 steps",
        &flat(&gpu_s.read_particles().expect("read")),
        &flat(&x),
        1e-3,
        1e-3,
    );
}

/// Published weights: a copy on the GPU and a new version; the sampler reads them.
#[test]
fn publishing_weights_bumps_the_version() {
    let Some(ctx) = gpu() else { return };
    let cfg = net(Parameterization::Eps);
    let p = params(&cfg);
    let weights = GpuWeights::new(ctx, &cfg, &p).expect("weights");
    let v0 = weights.version();
    let q: Vec<f32> = p.iter().map(|v| v * 0.5).collect();
    weights.upload(ctx, &q).expect("upload");
    assert_eq!(weights.version(), v0 + 1);
    assert_eq!(weights.read(ctx).expect("read"), q);
    assert!(
        weights.upload(ctx, &q[1..]).is_err(),
        "wrong length is refused"
    );
}

/// The trainer publishes its EMA weights to a sampler's buffer on the GPU.
#[test]
fn trainer_publishes_ema_weights() {
    let Some(ctx) = gpu() else { return };
    let tc = diffusion_playground::nn::TrainConfig {
        net: net(Parameterization::Eps),
        batch: 16,
        ..Default::default()
    };
    let data = gpu_common::points(40, 1);
    let mut trainer =
        diffusion_playground::gpu::GpuTrainer::new(ctx, tc.clone(), &data).expect("trainer");
    let weights = GpuWeights::new(ctx, &tc.net, &params(&tc.net)).expect("weights");
    trainer.train(5).expect("train");
    let v0 = weights.version();
    trainer.publish(&weights).expect("publish");
    assert_eq!(weights.version(), v0 + 1);
    assert_eq!(
        weights.read(ctx).expect("read"),
        trainer.ema_params().expect("ema")
    );
    let other = GpuWeights::new(ctx, &net(Parameterization::X0), &params(&tc.net)).expect("w");
    assert!(trainer.publish(&other).is_err(), "another shape is refused");
}
