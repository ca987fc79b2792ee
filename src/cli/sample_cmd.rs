//! `sample`: runs a sampler on a trained model or on the exact score of a dataset.

use std::time::Instant;

use anyhow::{Result, bail};
use diffusion_playground::backend;
use diffusion_playground::math::metrics::{energy_distance, sliced_w2};
use diffusion_playground::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use diffusion_playground::teach::{Progress, paths};

use super::model::{Score, ScoreArgs};
use super::source::{HELD_OUT_SEED, positive, write_points};

#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    #[command(flatten)]
    pub score: ScoreArgs,
    /// em | ode-euler | heun | rk4 | ddpm | ddim | dpm2m | pc | langevin
    #[arg(long, default_value = "em", value_parser = parse_sampler)]
    pub sampler: SamplerKind,
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// DDIM's η.
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// The corrector's signal-to-noise ratio (pc).
    #[arg(long, default_value_t = 0.16)]
    pub snr: f64,
    /// Output CSV, in the dataset's own units.
    #[arg(long)]
    pub out: Option<String>,
    /// Print one JSON line of quality metrics against held-out data (a model trained on a
    /// CSV file needs --data FILE.csv), with the flow's straightness (mean path length over
    /// mean endpoint distance of a 100-step Heun run from the same noise).
    #[arg(long)]
    pub metrics: bool,
    #[command(flatten)]
    pub backend: super::BackendArg,
}

pub fn parse_sampler(s: &str) -> Result<SamplerKind, String> {
    SamplerKind::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
        format!(
            "unknown sampler {s:?}: expected one of {}",
            names.join(", ")
        )
    })
}

pub fn run(args: &SampleArgs) -> Result<()> {
    let n = positive("n", args.n)?;
    let steps = positive("steps", args.steps)?;
    if args.out.is_none() && !args.metrics {
        bail!("nothing to do: give --out FILE.csv and/or --metrics");
    }
    let t = args.score.resolve(args.metrics)?;
    let process = t.score.as_model().process();
    if !args.sampler.supports(process) {
        let names: Vec<&str> = SamplerKind::ALL
            .iter()
            .filter(|k| k.supports(process))
            .map(|k| k.name())
            .collect();
        bail!(
            "sampler {} is defined for the VP process only; a flow-matching model samples with \
             {}",
            args.sampler.name(),
            names.join(", ")
        );
    }
    let cfg = SamplerConfig {
        kind: args.sampler,
        steps,
        t_min: t.t_min,
        eta: args.eta,
        snr: args.snr,
        langevin_step: None,
        seed: args.seed,
    };
    let start = Instant::now();
    let (x, nfe) = match &t.score {
        // The exact models are CPU code.
        Score::Exact(_) | Score::ExactFlow(_) => {
            let mut x = prior(n, cfg.seed);
            let mut sampler = Sampler::new(t.schedule, cfg);
            sampler.run(t.score.as_model(), &mut x);
            (x, sampler.nfe())
        }
        Score::Net(model) => {
            let selection = args.backend.select();
            let (x, nfe, notice) = backend::sample(&selection, model, cfg, n);
            if let Some(notice) = notice {
                eprintln!("{notice}");
            }
            (x, nfe)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    if x.iter().any(|p| !p.iter().all(|v| v.is_finite())) {
        bail!("the sampler diverged (non-finite particles): try more steps or another sampler");
    }
    if let Some(out) = &args.out {
        write_points(out, &t.normalization.invert_all(&x), None)?;
    }
    if args.metrics {
        let source = t.data()?;
        let a = source.held_out(n, HELD_OUT_SEED);
        let b = source.held_out(n, HELD_OUT_SEED + 1);
        // The flow's own straightness (a fine Heun run from this seed's noise), whatever the
        // sampler: how far each process's ODE strays from straight lines (§3.9).
        let (straightness, _) = paths::straightness(
            t.score.as_model(),
            t.schedule,
            n,
            args.seed,
            0,
            Progress::none(),
        )?;
        let line = serde_json::json!({
            "sampler": args.sampler.name(),
            "process": process.name(),
            "steps": steps,
            "nfe": nfe,
            "sw2": sliced_w2(&x, &a),
            "sw2_floor": sliced_w2(&b, &a),
            "energy": energy_distance(&x, &a),
            "energy_floor": energy_distance(&b, &a),
            "flow_straightness": straightness,
            "seconds": seconds,
            "n": n,
            "dataset": source.label,
        });
        println!("{line}");
    }
    Ok(())
}
