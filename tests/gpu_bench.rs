//! Throughput figures of the WGSL backend on this machine's adapter. Ignored by default (a
//! timing is reported, never asserted); run with
//! `cargo test --release --test gpu_bench -- --ignored --nocapture`.
//! `GPU_BENCH_BATCHES=256,16384` and `GPU_BENCH_PARTICLES=100000` choose the sizes.

mod gpu_common;

use std::time::Duration;

use diffusion_playground::gpu::bench::{sample_particle_steps_per_sec, train_samples_per_sec};
use diffusion_playground::nn::MlpConfig;
use diffusion_playground::nn::bench::BenchSettings;
use gpu_common::gpu;

fn sizes(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(s) => s.split(',').filter_map(|v| v.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn settings() -> BenchSettings {
    BenchSettings {
        warmup: Duration::from_millis(500),
        runs: 3,
        run: Duration::from_millis(1500),
    }
}

#[test]
#[ignore]
fn bench_training() {
    let Some(ctx) = gpu() else { return };
    let net = MlpConfig::reference();
    for batch in sizes("GPU_BENCH_BATCHES", &[256, 16_384]) {
        let r = train_samples_per_sec(ctx, &net, batch, &settings()).expect("bench");
        eprintln!(
            "train  batch {batch:>7}: {:>12.0} samples/s  {:>8.2} GFLOP/s  ({})",
            r.per_sec,
            r.gflops_per_sec(),
            r.adapter
        );
    }
}

#[test]
#[ignore]
fn bench_sampling() {
    let Some(ctx) = gpu() else { return };
    let net = MlpConfig::reference();
    for n in sizes("GPU_BENCH_PARTICLES", &[100_000]) {
        let r = sample_particle_steps_per_sec(ctx, &net, n, &settings()).expect("bench");
        eprintln!(
            "sample ode-euler {n:>8} particles: {:>12.0} particle-steps/s  {:>8.2} GFLOP/s  ({})",
            r.per_sec,
            r.gflops_per_sec(),
            r.adapter
        );
    }
}
