//! Loading a trained model for `sample` and `nll`.

use std::path::Path;

use anyhow::Result;
use diffusion_playground::data::Normalization;
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::{NetModel, weights};

use super::source::Source;

pub struct LoadedModel {
    pub model: NetModel,
    pub schedule: Schedule,
    pub t_min: f64,
    /// The dataset the model was trained on (for held-out metrics) and its units.
    pub source: Source,
}

pub fn load_model(path: &str) -> Result<LoadedModel> {
    let saved = weights::load(Path::new(path))?;
    let model = NetModel::from_saved(&saved)?;
    let mut source = Source::resolve(&saved.dataset, 2000, 0)?;
    // Samples go back to the units the model was trained in, whatever the file holds now.
    if source.builtin.is_none() || saved.normalization != Normalization::IDENTITY {
        source.normalization = saved.normalization;
    }
    Ok(LoadedModel {
        model,
        schedule: saved.schedule,
        t_min: saved.t_min as f64,
        source,
    })
}
