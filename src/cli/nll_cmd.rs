//! `nll`: held-out negative log-likelihood in nats along the PF-ODE.

use std::time::Instant;

use anyhow::{Result, bail};
use diffusion_playground::math::Schedule;
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig, log_likelihood};

use super::model::{LoadedModel, load_model};
use super::source::{HELD_OUT_SEED, Source, positive};

#[derive(clap::Args, Debug)]
pub struct NllArgs {
    /// A model written by `train`.
    #[arg(long, conflicts_with = "oracle", required_unless_present = "oracle")]
    pub model: Option<String>,
    /// The exact score of a dataset (mixtures exactly; others via `--oracle-n` points).
    #[arg(long)]
    pub oracle: Option<String>,
    #[arg(long, default_value_t = 2000)]
    pub oracle_n: usize,
    /// Held-out points to average over.
    #[arg(long, default_value_t = 500)]
    pub n: usize,
    /// Use the Hutchinson trace estimator with K probes instead of the exact 2D divergence.
    #[arg(long)]
    pub hutchinson: Option<usize>,
    /// RK4 steps along the PF-ODE.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
}

pub fn run(args: &NllArgs) -> Result<()> {
    let n = positive("n", args.n)?;
    let (model, schedule, t_min, source): (
        Box<dyn diffusion_playground::math::ScoreModel>,
        _,
        _,
        _,
    ) = match (&args.model, &args.oracle) {
        (Some(path), _) => {
            let LoadedModel {
                model,
                schedule,
                t_min,
                source,
            } = load_model(path)?;
            // On the CPU, where the network differentiates itself exactly (forward mode).
            (Box::new(model), schedule, t_min, source)
        }
        (None, Some(spec)) => {
            let source = Source::resolve(spec, positive("oracle-n", args.oracle_n)?, 0)?;
            let schedule = Schedule::default();
            let oracle = source.oracle(schedule);
            (Box::new(oracle), schedule, 1e-3, source)
        }
        (None, None) => bail!("give --model FILE or --oracle DATASET"),
    };
    let divergence = match args.hutchinson {
        Some(0) => bail!("--hutchinson needs at least 1 probe"),
        Some(probes) => Divergence::Hutchinson { probes, seed: 1 },
        None => Divergence::Exact,
    };
    let cfg = LikelihoodConfig {
        steps: positive("steps", args.steps)?,
        t_min,
        divergence,
    };
    let xs = source.held_out(n, HELD_OUT_SEED);
    let start = Instant::now();
    let ll = log_likelihood(model.as_ref(), &schedule, &xs, &cfg);
    let seconds = start.elapsed().as_secs_f64();
    // Densities of standardised points; in the data's own units the Jacobian of x ↦ (x − m)/s
    // adds −2 log s.
    let unit_shift = 2.0 * (source.normalization.scale as f64).ln();
    let nll = -ll.iter().sum::<f64>() / n as f64 + unit_shift;
    if !nll.is_finite() {
        bail!("the likelihood integration diverged (non-finite result)");
    }
    println!(
        "{}",
        serde_json::json!({ "nll": nll, "n": n, "seconds": seconds, "dataset": source.label,
            "divergence": if args.hutchinson.is_some() { "hutchinson" } else { "exact" } })
    );
    Ok(())
}
