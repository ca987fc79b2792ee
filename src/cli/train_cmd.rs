//! `train`: denoising score matching (or flow matching, `--process fm`) on a dataset, then an
//! atomic write of the EMA weights.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use diffusion_playground::backend::make_trainer;
use diffusion_playground::gpu::LossPoint;
use diffusion_playground::math::{Process, Schedule};
use diffusion_playground::nn::{
    Activation, Embedding, MlpConfig, SavedModel, TrainConfig, Weighting, weights,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::source::{Source, positive};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// A built-in dataset name or a CSV file.
    #[arg(long, default_value = "swiss-roll")]
    pub dataset: String,
    /// vp (the VP-SDE, denoising score matching) | fm (flow matching on straight paths).
    #[arg(long, default_value = "vp")]
    pub process: String,
    /// Training points drawn from a built-in dataset.
    #[arg(long, default_value_t = 10_000)]
    pub data_n: usize,
    #[arg(long, default_value_t = 3000)]
    pub steps: u64,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// silu | gelu | relu
    #[arg(long, default_value = "silu")]
    pub activation: String,
    /// sinusoidal | scalar
    #[arg(long, default_value = "sinusoidal")]
    pub embedding: String,
    /// Dimension of the sinusoidal embedding.
    #[arg(long, default_value_t = 32)]
    pub embedding_dim: usize,
    /// linear | cosine | constant
    #[arg(long, default_value = "linear")]
    pub schedule: String,
    #[arg(long, default_value_t = 0.1)]
    pub beta_min: f64,
    /// β_max (linear), the cap (cosine) or β (constant).
    #[arg(long, default_value_t = 20.0)]
    pub beta_max: f64,
    /// uniform | inverse-sigma2 | importance
    #[arg(long, default_value = "uniform")]
    pub weighting: String,
    /// Decay of the EMA of the weights that is saved and sampled.
    #[arg(long, default_value_t = TrainConfig::default().ema_decay)]
    pub ema_decay: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Output weights (safetensors), written atomically.
    #[arg(long)]
    pub out: String,
    #[command(flatten)]
    pub backend: super::BackendArg,
}

/// Steps between progress updates (and GPU submissions).
const CHUNK_STEPS: u64 = 50;

/// The schedule named on the command line.
pub fn schedule(name: &str, beta_min: f64, beta_max: f64) -> Result<Schedule> {
    let s = match name {
        "linear" => Schedule::Linear { beta_min, beta_max },
        "cosine" => Schedule::Cosine { beta_cap: beta_max },
        "constant" => Schedule::Constant { beta: beta_max },
        _ => bail!("unknown schedule {name:?}: expected linear, cosine or constant"),
    };
    s.validate()?;
    Ok(s)
}

fn config(args: &TrainArgs) -> Result<TrainConfig> {
    let activation = match args.activation.as_str() {
        "silu" => Activation::Silu,
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        a => bail!("unknown activation {a:?}: expected silu, gelu or relu"),
    };
    let embedding = match args.embedding.as_str() {
        "sinusoidal" => Embedding::Sinusoidal {
            dim: args.embedding_dim,
        },
        "scalar" => Embedding::Scalar,
        e => bail!("unknown embedding {e:?}: expected sinusoidal or scalar"),
    };
    let weighting = match Weighting::ALL
        .into_iter()
        .find(|w| w.name() == args.weighting)
    {
        Some(w) => w,
        None => bail!(
            "unknown weighting {:?}: expected uniform, inverse-sigma2 or importance",
            args.weighting
        ),
    };
    let Some(process) = Process::from_name(&args.process) else {
        bail!("unknown process {:?}: expected vp or fm", args.process);
    };
    if process == Process::Fm && weighting != Weighting::Uniform {
        bail!("flow matching's loss is unweighted: --weighting applies to --process vp only");
    }
    let cfg = TrainConfig {
        net: MlpConfig {
            width: args.width,
            depth: args.depth,
            activation,
            embedding,
            process,
            ..MlpConfig::default()
        },
        schedule: schedule(&args.schedule, args.beta_min, args.beta_max)?,
        lr: args.lr,
        batch: positive("batch", args.batch)?,
        seed: args.seed,
        weighting,
        ema_decay: args.ema_decay,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = config(args)?;
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    // Refused before training rather than after: a file `sample` could not read back.
    let param_bytes = cfg.net.num_params() as u64 * 4;
    if param_bytes > weights::MAX_FILE_BYTES {
        bail!(
            "a network of width {} and depth {} has {} parameters ({} MiB), more than a \
             weights file may hold ({} MiB): use a smaller --width or --depth",
            cfg.net.width,
            cfg.net.depth,
            cfg.net.num_params(),
            param_bytes >> 20,
            weights::MAX_FILE_BYTES >> 20
        );
    }
    let source = Source::resolve(
        &args.dataset,
        positive("data-n", args.data_n)?,
        args.seed as u64,
    )?;
    let selection = args.backend.select();
    let mut trainer = make_trainer(&selection, cfg.clone(), &source.points)?;
    let bar = ProgressBar::new(args.steps).with_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} steps  loss {msg}  {elapsed} / ~{duration}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    // The mean of the last 100 losses: one batch's loss is too noisy to report.
    let mut recent = VecDeque::with_capacity(100);
    let record = |recent: &mut VecDeque<f32>, points: Vec<LossPoint>| {
        for p in points {
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(p.loss);
        }
    };
    while trainer.steps_done() < args.steps {
        let chunk = CHUNK_STEPS.min(args.steps - trainer.steps_done());
        match trainer.train(chunk) {
            Ok(points) => record(&mut recent, points),
            Err(e) if e.is_non_finite() => {
                bail!(
                    "training diverged at step {} ({e}): lower --lr",
                    trainer.steps_done()
                )
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(notice) = trainer.notice() {
            bar.suspend(|| eprintln!("{notice}"));
        }
        bar.set_position(trainer.steps_done());
        bar.set_message(format!("{:.4}", mean(&recent)));
    }
    record(&mut recent, trainer.flush()?);
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let saved = SavedModel {
        config: cfg.net.clone(),
        schedule: cfg.schedule,
        t_min: cfg.t_min,
        dataset: source.label.clone(),
        normalization: source.normalization,
        steps: trainer.steps_done(),
        params: trainer.ema_params()?,
    };
    weights::save(Path::new(&args.out), &saved)?;
    let per_s = args.steps as f64 * cfg.batch as f64 / seconds;
    eprintln!(
        "trained {} steps in {seconds:.1} s ({per_s:.0} samples/s); wrote {}",
        args.steps, args.out
    );
    println!("final loss {:.5}", mean(&recent));
    Ok(())
}

fn mean(v: &VecDeque<f32>) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}
