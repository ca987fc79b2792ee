//! `--model FILE | --oracle DATASET`: where `sample` and `nll` get their score from.

use std::path::Path;

use anyhow::{Result, bail};
use diffusion_playground::data::Normalization;
use diffusion_playground::math::oracle::Oracle;
use diffusion_playground::math::{Schedule, ScoreModel};
use diffusion_playground::nn::{NetModel, weights};

use super::source::{Source, positive};

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// A model written by `train`.
    #[arg(long, conflicts_with = "oracle", required_unless_present = "oracle")]
    pub model: Option<String>,
    /// Use the exact score of a dataset instead: exact for the Gaussian mixtures, the
    /// empirical score of `--oracle-n` training points (the "ideal denoiser") otherwise.
    #[arg(long)]
    pub oracle: Option<String>,
    /// Training points of an empirical oracle.
    #[arg(long, default_value_t = 2000)]
    pub oracle_n: usize,
}

/// The score: the exact one of a dataset, or a trained network.
pub enum Score {
    Exact(Oracle),
    Net(Box<NetModel>),
}

impl Score {
    pub fn as_model(&self) -> &dyn ScoreModel {
        match self {
            Score::Exact(oracle) => oracle,
            Score::Net(net) => net.as_ref(),
        }
    }
}

/// A score with its schedule, t_min and dataset (for held-out data and units).
pub struct Target {
    pub score: Score,
    pub schedule: Schedule,
    pub t_min: f64,
    pub source: Source,
}

impl ScoreArgs {
    pub fn resolve(&self) -> Result<Target> {
        match (&self.model, &self.oracle) {
            (Some(path), _) => load_model(path),
            (None, Some(spec)) => {
                let source = Source::resolve(spec, positive("oracle-n", self.oracle_n)?, 0)?;
                let schedule = Schedule::default();
                Ok(Target {
                    score: Score::Exact(source.oracle(schedule)),
                    schedule,
                    t_min: 1e-3,
                    source,
                })
            }
            (None, None) => bail!("give --model FILE or --oracle DATASET"),
        }
    }
}

fn load_model(path: &str) -> Result<Target> {
    let saved = weights::load(Path::new(path))?;
    let model = NetModel::from_saved(&saved)?;
    let mut source = Source::resolve(&saved.dataset, 2000, 0)?;
    // Samples go back to the units the model was trained in, whatever the file holds now.
    if source.builtin.is_none() || saved.normalization != Normalization::IDENTITY {
        source.normalization = saved.normalization;
    }
    Ok(Target {
        score: Score::Net(Box::new(model)),
        schedule: saved.schedule,
        t_min: saved.t_min as f64,
        source,
    })
}
