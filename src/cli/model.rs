//! `--model FILE | --oracle DATASET`: where `sample` and `nll` get their score from, and
//! `--data`: the held-out data of a model trained on a CSV file.
//!
//! A model file names the data it was trained on, but a name inside a file is only a label:
//! it is used when it is exactly a built-in dataset's name, and a path is never opened (a
//! crafted file could name any local file, a FIFO or a device). The user names a CSV file
//! with `--data`.

use std::path::Path;

use anyhow::{Result, bail};
use diffusion_playground::data::{BuiltIn, Normalization};
use diffusion_playground::fsutil::quoted;
use diffusion_playground::math::flow::FlowOracle;
use diffusion_playground::math::oracle::Oracle;
use diffusion_playground::math::{Process, Schedule, ScoreModel};
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
    /// With --oracle: the exact model of vp (the score) or fm (the flow-matching velocity).
    /// A --model file says its own process.
    #[arg(long, conflicts_with = "model", value_name = "vp|fm")]
    pub process: Option<String>,
    /// Training points of an empirical oracle.
    #[arg(long, default_value_t = 2000)]
    pub oracle_n: usize,
    /// Held-out data for the metrics of a --model (sample --metrics, nll): a built-in name or
    /// a CSV file. Needed for a model trained on a CSV file, whose path the model file only
    /// records (it is never opened); a model trained on a built-in set needs none.
    #[arg(long, conflicts_with = "oracle", value_name = "NAME|FILE.csv")]
    pub data: Option<String>,
}

/// The score: the exact one of a dataset, or a trained network.
pub enum Score {
    Exact(Oracle),
    ExactFlow(FlowOracle),
    Net(Box<NetModel>),
}

impl Score {
    pub fn as_model(&self) -> &dyn ScoreModel {
        match self {
            Score::Exact(oracle) => oracle,
            Score::ExactFlow(oracle) => oracle,
            Score::Net(net) => net.as_ref(),
        }
    }
}

/// A score with its schedule, t_min, units and, when asked for, its data.
pub struct Target {
    pub score: Score,
    pub schedule: Schedule,
    pub t_min: f64,
    /// From the data's units to the model's (samples go back through it).
    pub normalization: Normalization,
    /// The data, in the model's units, for held-out draws; `None` unless `resolve` was asked
    /// for it.
    pub source: Option<Source>,
}

impl Target {
    /// The data for held-out metrics.
    pub fn data(&self) -> Result<&Source> {
        match &self.source {
            Some(source) => Ok(source),
            None => bail!("no held-out data: give --data NAME|FILE.csv"),
        }
    }
}

impl ScoreArgs {
    /// The score, and with `need_data` the data to measure it against (an error when there
    /// is none to use: a model trained on a CSV file without `--data`).
    pub fn resolve(&self, need_data: bool) -> Result<Target> {
        match (&self.model, &self.oracle) {
            (Some(path), _) => load_model(path, self.data.as_deref(), need_data),
            (None, Some(spec)) => {
                let process = match self.process.as_deref() {
                    None => Process::Vp,
                    Some(name) => Process::from_name(name).ok_or_else(|| {
                        anyhow::anyhow!("unknown process {name:?}: expected vp or fm")
                    })?,
                };
                let source = Source::resolve(spec, positive("oracle-n", self.oracle_n)?, 0)?;
                let schedule = Schedule::default();
                let score = match process {
                    Process::Vp => Score::Exact(source.oracle(schedule)),
                    Process::Fm => Score::ExactFlow(source.flow_oracle()),
                };
                Ok(Target {
                    score,
                    schedule,
                    t_min: 1e-3,
                    normalization: source.normalization,
                    source: Some(source),
                })
            }
            (None, None) => bail!("give --model FILE or --oracle DATASET"),
        }
    }
}

fn load_model(path: &str, data: Option<&str>, need_data: bool) -> Result<Target> {
    let saved = weights::load(Path::new(path))?;
    let model = NetModel::from_saved(&saved)?;
    // The data: what the user named, else the model's dataset if it is a built-in name. Never
    // a path read from the file.
    let spec = data.or_else(|| BuiltIn::from_name(&saved.dataset).map(|b| b.name()));
    let source = match (need_data, spec) {
        (false, _) => None,
        // In the model's units, whatever the file holds now: held-out points are compared
        // with samples in the space the model was trained in.
        (true, Some(spec)) => Some(Source::resolve_with(
            spec,
            2000,
            0,
            Some(saved.normalization),
        )?),
        (true, None) => bail!(
            "{path}: the model was trained on {}, which is not a built-in dataset; give its \
             data with --data FILE.csv (a path inside a model file is never opened)",
            quoted(&saved.dataset, 40)
        ),
    };
    Ok(Target {
        score: Score::Net(Box::new(model)),
        schedule: saved.schedule,
        t_min: saved.t_min as f64,
        // Samples go back to the units the model was trained in.
        normalization: saved.normalization,
        source,
    })
}
