//! GPU training against the CPU reference (`nn::Trainer`): the same batch keys, the same
//! gradient, the same Adam step; and 300 GPU steps lower the loss as the CPU does.

mod gpu_common;

use diffusion_playground::gpu::{GpuError, GpuTrainer};
use diffusion_playground::math::{Process, Schedule};
use diffusion_playground::nn::{
    Activation, Embedding, MlpConfig, Parameterization, TrainConfig, Trainer, Weighting,
};
use gpu_common::{assert_close, gpu, points};

fn small_config(width: usize, depth: usize, act: Activation, embedding: Embedding) -> MlpConfig {
    MlpConfig {
        width,
        depth,
        activation: act,
        embedding,
        param: Parameterization::Eps,
        ..MlpConfig::default()
    }
}

/// One step: the loss (rel 1e-4), the gradient (Σ over the batch in another order:
/// |Δ| ≤ 1e-4·|g| + 1e-5·max|g|; lavapipe agrees to ~5e-7·max|g|), the updated weights
/// (Adam's first step moves each weight by ≈ ±lr, so weights agree to 1e-6 wherever the
/// gradient is clearly nonzero, and to 2·lr where its sign is a rounding matter), and their
/// EMA: both start at the initial weights and the first update uses the warm-up decay
/// d₀ = min(decay, 1/10), so e₁ = d₀ p₀ + (1 − d₀) p₁ moves by (1 − d₀)·lr ≈ 0.9·lr and the two
/// EMAs differ by (1 − d₀) times the weights' difference: 1e-6, not the step's 0.9·lr.
fn one_step_matches(cfg: TrainConfig) {
    let Some(ctx) = gpu() else { return };
    let data = points(300, 5);
    let mut cpu = Trainer::new(cfg.clone(), data.clone()).expect("cpu trainer");
    let mut gpu_t = GpuTrainer::new(ctx, cfg.clone(), &data).expect("gpu trainer");
    let p0 = gpu_t.params().expect("params");
    assert_eq!(p0, cpu.params(), "initial weights differ");

    let cpu_loss = cpu.step().expect("cpu step");
    let gpu_loss = gpu_t.step().expect("gpu step");
    assert!(
        (cpu_loss - gpu_loss).abs() <= 1e-4 * cpu_loss.abs() + 1e-6,
        "loss: gpu {gpu_loss} vs cpu {cpu_loss}"
    );
    let g_cpu = cpu.last_grad().to_vec();
    let g_gpu = gpu_t.last_grad().expect("grad");
    let g_max = g_cpu.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert_close("gradient", &g_gpu, &g_cpu, 1e-4, 1e-5 * g_max);
    let p_cpu = cpu.params();
    let p_gpu = gpu_t.params().expect("params");
    for (i, ((a, b), g)) in p_gpu.iter().zip(p_cpu).zip(&g_cpu).enumerate() {
        let tol = if g.abs() > 1e-3 * g_max {
            1e-6
        } else {
            2.0 * cfg.lr
        };
        assert!(
            (a - b).abs() <= tol,
            "param {i}: gpu {a} vs cpu {b} (grad {g})"
        );
    }
    let e_cpu = cpu.ema_params();
    let e_gpu = gpu_t.ema_params().expect("ema");
    let d0 = cfg.ema_decay.min(0.1);
    for (i, ((a, b), g)) in e_gpu.iter().zip(e_cpu).zip(&g_cpu).enumerate() {
        let tol = if g.abs() > 1e-3 * g_max {
            1e-6
        } else {
            (1.0 - d0) * 2.0 * cfg.lr + 1e-6
        };
        assert!(
            (a - b).abs() <= tol,
            "ema {i}: gpu {a} vs cpu {b} (tolerance {tol:e}, grad {g})"
        );
    }
}

#[test]
fn one_step_equals_cpu_silu_sinusoidal() {
    one_step_matches(TrainConfig {
        net: small_config(16, 2, Activation::Silu, Embedding::Sinusoidal { dim: 8 }),
        batch: 64,
        seed: 3,
        ..TrainConfig::default()
    });
}

#[test]
fn one_step_equals_cpu_odd_shapes() {
    // Width and batch not multiples of the 64 tile; GELU; scalar time; x₀ output; cosine
    // schedule; 1/σ² weighting.
    one_step_matches(TrainConfig {
        net: MlpConfig {
            param: Parameterization::X0,
            ..small_config(37, 3, Activation::Gelu, Embedding::Scalar)
        },
        schedule: Schedule::Cosine { beta_cap: 20.0 },
        weighting: Weighting::InverseSigma2,
        batch: 77,
        seed: 11,
        ..TrainConfig::default()
    });
}

#[test]
fn one_step_equals_cpu_batch_one_width_one() {
    one_step_matches(TrainConfig {
        net: MlpConfig {
            param: Parameterization::Score,
            ..small_config(1, 1, Activation::Relu, Embedding::Sinusoidal { dim: 2 })
        },
        weighting: Weighting::Importance,
        batch: 1,
        seed: 2,
        ..TrainConfig::default()
    });
}

/// Flow matching: the batch kernel's straight path and velocity target, the loss on the raw
/// output, with importance weighting set (flow matching ignores it, on both backends).
#[test]
fn one_flow_matching_step_equals_cpu() {
    one_step_matches(TrainConfig {
        net: MlpConfig {
            process: Process::Fm,
            ..small_config(24, 2, Activation::Silu, Embedding::Sinusoidal { dim: 8 })
        },
        weighting: Weighting::Importance,
        batch: 96,
        seed: 7,
        ..TrainConfig::default()
    });
}

#[test]
fn split_k_batch_equals_cpu() {
    // 600 rows: three split-K slices of the weight gradient.
    one_step_matches(TrainConfig {
        net: small_config(24, 2, Activation::Silu, Embedding::Sinusoidal { dim: 6 }),
        schedule: Schedule::Constant { beta: 3.0 },
        batch: 600,
        seed: 8,
        ..TrainConfig::default()
    });
}

/// The GPU trainer's own EMA (decay and warm-up computed in `GpuTrainer::step_uniform`, for
/// steps recorded together in one submit) equals the CPU trainer's (`nn::adam::Ema`) after
/// several steps from the same seed, config and data, to far less than one step moves it.
/// Checked after 6 steps (all in the warm-up d_k = (1 + k)/(10 + k)) and after 6 more (past
/// k = 8, where the decay itself takes over), so neither regime's error is averaged away.
///
/// The weights agree to rounding wherever the gradients are clearly nonzero (see
/// `one_step_matches`); the comparison runs on those weights (nearly all), where the EMAs,
/// convex combinations of the weights' history, must agree as closely.
#[test]
fn ema_after_several_steps_equals_cpu() {
    let Some(ctx) = gpu() else { return };
    const CHUNK: usize = 6;
    let cfg = TrainConfig {
        net: small_config(16, 2, Activation::Silu, Embedding::Sinusoidal { dim: 8 }),
        batch: 64,
        lr: 2e-3,
        // d_k = min(decay, (1 + k)/(10 + k)) is the warm-up for k < 8, the decay after.
        ema_decay: 0.5,
        seed: 3,
        ..TrainConfig::default()
    };
    let data = points(300, 5);
    let mut cpu = Trainer::new(cfg.clone(), data.clone()).expect("cpu trainer");
    let mut gpu_t = GpuTrainer::new(ctx, cfg.clone(), &data).expect("gpu trainer");
    assert_eq!(gpu_t.ema_params().expect("ema"), cpu.ema_params());
    for done in [CHUNK, 2 * CHUNK] {
        for _ in 0..CHUNK - 1 {
            cpu.step().expect("cpu step");
        }
        let e_before = cpu.ema_params().to_vec();
        cpu.step().expect("cpu step");
        // The chunk's steps in one call: one submit, each step's decay in its own slot.
        let mut losses = gpu_t.train(CHUNK as u64).expect("gpu train");
        losses.extend(gpu_t.flush().expect("flush"));
        assert_eq!(losses.len(), CHUNK);

        let (p_cpu, e_cpu) = (cpu.params(), cpu.ema_params());
        let (p_gpu, e_gpu) = (
            gpu_t.params().expect("params"),
            gpu_t.ema_params().expect("ema"),
        );
        // Weights the two trainers moved alike (to rounding, not a sign flip of ±lr).
        const SAME_PATH: f32 = 2e-6;
        let same: Vec<usize> = (0..p_cpu.len())
            .filter(|&i| (p_gpu[i] - p_cpu[i]).abs() <= SAME_PATH)
            .collect();
        assert!(
            same.len() * 10 >= p_cpu.len() * 9,
            "after {done} steps only {} of {} weights follow the same path on both trainers",
            same.len(),
            p_cpu.len()
        );
        // The effect to detect: the RMS change of the EMA in the last step.
        let step_effect = (same
            .iter()
            .map(|&i| (e_cpu[i] - e_before[i]).powi(2))
            .sum::<f32>()
            / same.len() as f32)
            .sqrt();
        let tol = SAME_PATH;
        let worst = same
            .iter()
            .map(|&i| (e_gpu[i] - e_cpu[i]).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "after {done} steps: {} of {} weights compared; max |Δema| {worst:e}, last EMA \
             step {step_effect:e} (RMS), tolerance {tol:e}",
            same.len(),
            p_cpu.len()
        );
        assert!(
            tol < step_effect / 10.0,
            "tolerance {tol:e} is not well below the effect of a step ({step_effect:e})"
        );
        for &i in &same {
            assert!(
                (e_gpu[i] - e_cpu[i]).abs() <= tol,
                "ema {i} after {done} steps: gpu {} vs cpu {} (|Δ| = {:e} > {tol:e}; the last \
                 step moved it by {:e})",
                e_gpu[i],
                e_cpu[i],
                (e_gpu[i] - e_cpu[i]).abs(),
                e_cpu[i] - e_before[i]
            );
        }
    }
}

/// 300 steps on both backends, same start and batches: both losses fall, and the GPU's
/// final loss (mean of the last 50 steps) is within 15% of the CPU's.
#[test]
fn three_hundred_steps_lower_the_loss_like_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let cfg = TrainConfig {
        net: small_config(16, 2, Activation::Silu, Embedding::Sinusoidal { dim: 8 }),
        batch: 64,
        lr: 3e-3,
        seed: 1,
        ..TrainConfig::default()
    };
    let data = points(500, 2);
    let mut cpu = Trainer::new(cfg.clone(), data.clone()).expect("cpu trainer");
    let mut gpu_t = GpuTrainer::new(ctx, cfg, &data).expect("gpu trainer");
    let cpu_losses: Vec<f32> = (0..300).map(|_| cpu.step().expect("cpu step")).collect();
    let mut gpu_losses = gpu_t.train(300).expect("gpu train");
    gpu_losses.extend(gpu_t.flush().expect("flush"));
    assert_eq!(gpu_losses.len(), 300);
    for (i, l) in gpu_losses.iter().enumerate() {
        assert_eq!(l.step, i as u64);
    }
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    let g: Vec<f32> = gpu_losses.iter().map(|l| l.loss).collect();
    let (c0, c1) = (mean(&cpu_losses[..50]), mean(&cpu_losses[250..]));
    let (g0, g1) = (mean(&g[..50]), mean(&g[250..]));
    assert!(
        (g0 - c0).abs() < 0.02 * c0,
        "first 50: gpu {g0} vs cpu {c0}"
    );
    assert!(c1 < 0.8 * c0, "cpu loss did not fall: {c0} → {c1}");
    assert!(g1 < 0.8 * g0, "gpu loss did not fall: {g0} → {g1}");
    assert!((g1 - c1).abs() < 0.15 * c1, "last 50: gpu {g1} vs cpu {c1}");
}

/// A learning rate that blows the weights up: the GPU detects the non-finite loss within the
/// readback interval, pauses, and keeps finite weights.
#[test]
fn non_finite_loss_pauses_and_keeps_good_weights() {
    let Some(ctx) = gpu() else { return };
    let cfg = TrainConfig {
        net: small_config(8, 1, Activation::Relu, Embedding::Scalar),
        batch: 16,
        lr: 1e30,
        seed: 4,
        ..TrainConfig::default()
    };
    let data = points(50, 3);
    let mut t = GpuTrainer::new(ctx, cfg, &data).expect("gpu trainer");
    t.set_loss_every(1);
    let mut err = None;
    for _ in 0..20 {
        match t.train(4) {
            Ok(_) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    if err.is_none() {
        err = t.flush().err().or_else(|| t.paused().cloned());
    }
    let err = err.expect("a non-finite loss must pause training");
    assert!(matches!(err, GpuError::NonFinite { .. }), "{err}");
    assert!(t.paused().is_some());
    assert!(t.train(1).is_err(), "stays paused until resume");
    let p = t.params().expect("params");
    assert!(
        p.iter().all(|v| v.is_finite()),
        "restored weights are finite"
    );
    let e = t.ema_params().expect("ema");
    assert!(e.iter().all(|v| v.is_finite()), "restored EMA is finite");
}

/// A batch past 65535·4 rows: the row-per-thread grids fold into a second dimension.
#[test]
fn huge_batch_folds_the_grid() {
    one_step_matches(TrainConfig {
        net: small_config(3, 1, Activation::Silu, Embedding::Scalar),
        batch: 262_300,
        seed: 5,
        ..TrainConfig::default()
    });
}

/// The browser's `gpu_check`, driven here as a page drives it (polling, never waiting): it
/// passes on this device; its comparison catches one weight off where the gradient is clear,
/// and tolerates a rounding-matter sign flip of at most 2·lr.
#[test]
fn the_self_check_passes_and_catches_a_wrong_weight() {
    use diffusion_playground::gpu::selfcheck::{SelfCheck, compare};
    let Some(ctx) = gpu() else { return };
    let mut check = SelfCheck::start(ctx).expect("start");
    let start = std::time::Instant::now();
    let result = loop {
        ctx.device.poll(wgpu::PollType::Poll).expect("poll");
        if let Some(r) = check.poll() {
            break r;
        }
        assert!(
            start.elapsed().as_secs() < 60,
            "the self-check never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    result.expect("the self-check passes on this device");
    assert!(compare(&[0.0, 0.0], &[0.0, 0.0], &[1.0, 0.0], 2e-3).is_ok());
    let err = compare(&[1e-4, 0.0], &[0.0, 0.0], &[1.0, 0.0], 2e-3).unwrap_err();
    assert!(err.starts_with("weight 0 "), "{err}");
    assert!(compare(&[1e-6, 3e-3], &[0.0, 0.0], &[1.0, 1e-9], 2e-3).is_ok());
    assert!(compare(&[0.0, 5e-3], &[0.0, 0.0], &[1.0, 1e-9], 2e-3).is_err());
    assert!(compare(&[f32::NAN, 0.0], &[0.0, 0.0], &[1.0, 0.0], 2e-3).is_err());
}
