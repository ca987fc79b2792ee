//! `bench`: training samples/s and sampling particle-steps/s per backend. Medians of several
//! timed runs after a warm-up; the machine is shared and noisy, so read them as such.

use anyhow::Result;
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
    kind: &'static str,
    size: usize,
    sampler: Option<&'static str>,
    per_s: f64,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let net = reference_net();
    let settings = BenchSettings::default();
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    for &b in &args.batches {
        rows.push(Row {
            kind: "train",
            size: b,
            sampler: None,
            per_s: train_samples_per_sec(&net, b, &settings)?,
        });
    }
    for &n in &args.particles {
        let per_s = sample_particle_steps_per_sec(&net, n, &settings)?;
        rows.push(Row {
            kind: "sample",
            size: n,
            sampler: Some("ode-euler"),
            per_s,
        });
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
                "backend": "cpu", "adapter": "cpu", "kind": r.kind, "size": r.size,
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
                "cpu  {:<6} size {:>7}  {:>12.0} {unit}  ({gflops:.1} GFLOP/s)",
                r.kind, r.size, r.per_s
            );
        }
    }
    Ok(())
}
