//! `bench`: training samples/s and sampling particle-steps/s per backend. Medians of several
//! timed runs after a warm-up; the machine is shared and noisy, so read them as such.

use anyhow::Result;
use diffusion_playground::backend::{BackendChoice, BackendKind};
use diffusion_playground::gpu;
use diffusion_playground::nn::bench::{
    BenchSettings, sample_particle_steps_per_sec, train_samples_per_sec,
};
use diffusion_playground::nn::{Activation, Embedding, MlpConfig};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Training batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [256usize, 4096])]
    pub batches: Vec<usize>,
    /// Particle counts for PF-ODE Euler sampling.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize])]
    pub particles: Vec<usize>,
    #[command(flatten)]
    pub backend: super::BackendArg,
    #[command(flatten)]
    pub explore: super::bench_explore::ExploreArgs,
}

/// The reference net of the issue: sinusoidal embedding 64, GELU, 3 hidden layers of 128.
pub fn reference_net() -> MlpConfig {
    MlpConfig {
        width: 128,
        depth: 3,
        activation: Activation::Gelu,
        embedding: Embedding::Sinusoidal { dim: 64 },
        ..MlpConfig::default()
    }
}

struct Row {
    backend: &'static str,
    adapter: String,
    kind: &'static str,
    size: usize,
    sampler: Option<&'static str>,
    per_s: f64,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.explore.explore {
        return super::bench_explore::run(&args.explore, args.json);
    }
    let net = reference_net();
    let settings = BenchSettings::default();
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    // cpu: the CPU rows; wgpu: the GPU rows; auto: the CPU rows, plus the GPU's when auto
    // would train on it (a real GPU).
    if args.backend.backend != BackendChoice::Wgpu {
        let adapter = format!("cpu ({threads} threads)");
        for &b in &args.batches {
            let per_s = train_samples_per_sec(&net, b, &settings)?;
            rows.push(Row {
                backend: "cpu",
                adapter: adapter.clone(),
                kind: "train",
                size: b,
                sampler: None,
                per_s,
            });
        }
        for &n in &args.particles {
            let per_s = sample_particle_steps_per_sec(&net, n, &settings)?;
            rows.push(Row {
                backend: "cpu",
                adapter: adapter.clone(),
                kind: "sample",
                size: n,
                sampler: Some("ode-euler"),
                per_s,
            });
        }
    }
    if args.backend.backend != BackendChoice::Cpu {
        let selection = args.backend.select();
        if let (BackendKind::Wgpu, Some(ctx)) = (selection.kind, &selection.gpu) {
            for &b in &args.batches {
                let r = gpu::bench::train_samples_per_sec(ctx, &net, b, &settings)?;
                rows.push(Row {
                    backend: "wgpu",
                    adapter: r.adapter,
                    kind: "train",
                    size: b,
                    sampler: None,
                    per_s: r.per_sec,
                });
            }
            for &n in &args.particles {
                let r = gpu::bench::sample_particle_steps_per_sec(ctx, &net, n, &settings)?;
                rows.push(Row {
                    backend: "wgpu",
                    adapter: r.adapter,
                    kind: "sample",
                    size: n,
                    sampler: Some("ode-euler"),
                    per_s: r.per_sec,
                });
            }
        }
    }
    let flops_train = net.train_flops_per_sample() as f64;
    let flops_fwd = net.forward_flops_per_sample() as f64;
    if !args.json {
        println!(
            "net: 2+emb(64) → 3×128 GELU → 2 ({} params), {} threads",
            net.num_params(),
            threads
        );
    }
    for r in rows {
        let gflops = r.per_s
            * if r.kind == "train" {
                flops_train
            } else {
                flops_fwd
            }
            / 1e9;
        if args.json {
            let mut line = serde_json::json!({
                "backend": r.backend, "adapter": r.adapter, "kind": r.kind, "size": r.size,
                "per_s": r.per_s, "gflops": gflops, "threads": threads,
                "net": serde_json::to_value(&net)?,
            });
            if let Some(s) = r.sampler {
                line["sampler"] = s.into();
            }
            println!("{line}");
        } else {
            let unit = if r.kind == "train" {
                "samples/s"
            } else {
                "particle-steps/s"
            };
            println!(
                "{:<5} {:<6} size {:>7}  {:>12.0} {unit}  ({gflops:.2} GFLOP/s)  on {}",
                r.backend, r.kind, r.size, r.per_s, r.adapter
            );
        }
    }
    Ok(())
}
