//! Shared by the `gpu_*` tests: the device, the skip switch, and tolerant comparisons.
//!
//! GPU tests need an adapter (CI installs lavapipe: `mesa-vulkan-drivers libvulkan1`). Without
//! one they fail with a message, unless `DIFFUSION_PLAYGROUND_SKIP_GPU=1`, which skips them
//! and says so on stderr.

#![allow(dead_code)]

use std::sync::OnceLock;

use diffusion_playground::gpu::GpuContext;
use diffusion_playground::nn::{Activation, Embedding, MlpConfig, TrainConfig};

/// The rule of every GPU test, in one place: `None` when `DIFFUSION_PLAYGROUND_SKIP_GPU=1`
/// (the test returns early and says so on stderr); otherwise the shared device, or a panic
/// saying that no adapter was found and how to get one. A test that needs no device of ours
/// (egui_kittest's `.wgpu()` harness) calls [`require_gpu`], which applies the same rule.
pub fn gpu() -> Option<&'static GpuContext> {
    if std::env::var("DIFFUSION_PLAYGROUND_SKIP_GPU").as_deref() == Ok("1") {
        let test = std::thread::current()
            .name()
            .unwrap_or("a GPU test")
            .to_owned();
        eprintln!("DIFFUSION_PLAYGROUND_SKIP_GPU=1: skipping {test} (it needs a GPU adapter)");
        return None;
    }
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    match CTX.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => Some(ctx),
        Err(e) => panic!(
            "GPU test: {e}.\nInstall a Vulkan driver (CI: apt-get install mesa-vulkan-drivers \
             libvulkan1) or set DIFFUSION_PLAYGROUND_SKIP_GPU=1 to skip the GPU tests."
        ),
    }
}

/// [`gpu`]'s rule for tests that render through their own wgpu device: `false` to skip
/// (`DIFFUSION_PLAYGROUND_SKIP_GPU=1`), `true` when this machine has an adapter; panics with
/// the same message as [`gpu`] when it has none.
#[must_use = "skip the test when this is false"]
pub fn require_gpu() -> bool {
    gpu().is_some()
}

/// Asserts |a − b| ≤ abs + rel·|b| elementwise, naming the worst element.
#[track_caller]
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], rel: f32, abs: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&a, &b)) in gpu.iter().zip(cpu).enumerate() {
        assert_eq!(
            a.is_finite(),
            b.is_finite(),
            "{what}[{i}]: gpu {a} vs cpu {b} (finiteness differs)"
        );
        let excess = if b.is_finite() {
            (a - b).abs() - (abs + rel * b.abs())
        } else {
            0.0
        };
        if worst.is_none_or(|(_, w)| excess > w) {
            worst = Some((i, excess));
        }
    }
    let max_abs = gpu
        .iter()
        .zip(cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = cpu.iter().fold(0.0f32, |m, b| m.max(b.abs()));
    eprintln!("{what}: max |gpu − cpu| = {max_abs:e} (max |cpu| = {scale:e})");
    if let Some((i, excess)) = worst {
        assert!(
            excess <= 0.0,
            "{what}[{i}]: gpu {} vs cpu {} (|Δ| = {:e} > {abs:e} + {rel:e}·|cpu|)",
            gpu[i],
            cpu[i],
            (gpu[i] - cpu[i]).abs()
        );
    }
}

/// A small deterministic point cloud.
pub fn points(n: usize, seed: u32) -> Vec<[f32; 2]> {
    (0..n as u32)
        .map(|i| {
            let z = diffusion_playground::math::rng::normal2(seed, 9, i, 0);
            [1.5 * z[0] + 0.5, 0.7 * z[1] - 0.25]
        })
        .collect()
}

/// A small trainer config: quick on lavapipe, with the sinusoidal embedding and SiLU.
pub fn small() -> TrainConfig {
    TrainConfig {
        net: MlpConfig {
            width: 16,
            depth: 2,
            activation: Activation::Silu,
            embedding: Embedding::Sinusoidal { dim: 8 },
            ..MlpConfig::default()
        },
        batch: 32,
        seed: 6,
        ..TrainConfig::default()
    }
}
