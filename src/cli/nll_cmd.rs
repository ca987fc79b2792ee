//! `nll`: held-out negative log-likelihood in nats along the PF-ODE.

use std::time::Instant;

use anyhow::{Result, bail};
use diffusion_playground::math::likelihood::{Divergence, LikelihoodConfig, log_likelihood};

use super::model::{ScoreArgs, Target};
use super::source::{HELD_OUT_SEED, positive};

#[derive(clap::Args, Debug)]
pub struct NllArgs {
    #[command(flatten)]
    pub score: ScoreArgs,
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
    // On the CPU, where the network differentiates itself exactly (forward mode).
    let target: Target = args.score.resolve(true)?;
    let source = target.data()?;
    let (score, schedule, t_min) = (&target.score, target.schedule, target.t_min);
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
    let ll = log_likelihood(score.as_model(), &schedule, &xs, &cfg);
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
