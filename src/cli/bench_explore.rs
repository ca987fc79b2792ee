//! `bench --explore`: seconds each Explore computation takes with the views' default settings,
//! on the app's default data (swiss roll) and network, optionally while a low-priority thread
//! trains as the app's does. Medians over `--repeats` runs; read them as a shared machine's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow};
use diffusion_playground::app::explore::density::DensityView;
use diffusion_playground::app::explore::quality::QualityView;
use diffusion_playground::app::explore::{Inputs, VIEW_HALF};
use diffusion_playground::app::{Settings, exact_oracle};
use diffusion_playground::backend::{CpuTrainer, TrainBackend};
use diffusion_playground::data::BuiltIn;
use diffusion_playground::math::Process;
use diffusion_playground::teach::Progress;
use diffusion_playground::teach::density::{Grid, forward_density};
use diffusion_playground::train::{SharedModel, train_config};
use diffusion_playground::work::lower_priority;

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    /// Time the Explore views' computations instead of training and sampling throughput.
    #[arg(long)]
    pub explore: bool,
    /// Training steps of the network the views evaluate.
    #[arg(long, default_value_t = 2000)]
    pub explore_steps: u64,
    /// Keep a low-priority thread training meanwhile, as in the app.
    #[arg(long)]
    pub while_training: bool,
    /// Timed runs of each computation (the median is printed).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

/// Points of the app's built-in datasets.
const DATA_POINTS: usize = 10_000;

pub fn run(args: &ExploreArgs, json: bool) -> Result<()> {
    let settings = Settings::default();
    let schedule = settings.schedule.schedule();
    let builtin = BuiltIn::SwissRoll;
    let data = Arc::new(builtin.sample(DATA_POINTS, 0).points);
    let cfg = train_config(&settings.train, schedule);
    let mut trainer = CpuTrainer::new(cfg.clone(), &data)?;
    trainer.train(args.explore_steps)?;
    let learned: SharedModel = Arc::new(trainer.ema_model()?);
    let inputs = Inputs {
        schedule,
        data: Arc::clone(&data),
        data_label: builtin.name().into(),
        data_version: 0,
        labels: None,
        num_classes: 1,
        builtin: Some(builtin),
        learned: Some(learned),
        exact: exact_oracle(&data, Process::Vp, schedule),
        t: 0.5,
        export_dir: String::new(),
    };

    let stop = Arc::new(AtomicBool::new(false));
    let background = args.while_training.then(|| {
        let stop = Arc::clone(&stop);
        let data = Arc::clone(&data);
        std::thread::spawn(move || -> Result<u64> {
            lower_priority();
            let mut t = CpuTrainer::new(cfg, &data)?;
            while !stop.load(Ordering::Relaxed) {
                t.train(25)?;
            }
            Ok(t.steps_done())
        })
    });
    let started = Instant::now();

    let quality = QualityView::default();
    let density = DensityView::default();
    let mut rows: Vec<(&str, String, Vec<f64>)> = Vec::new();
    let q = quality.run_for(&inputs);
    let what = format!(
        "{} samplers, NFE ≤ {}, {} particles, learned + exact",
        q.cfg.samplers.len(),
        q.cfg.nfe.last().copied().unwrap_or(0),
        q.cfg.particles
    );
    rows.push((
        "quality-vs-steps",
        what,
        time(args.repeats, || {
            quality
                .run_for(&inputs)
                .run(Progress::none(), &mut |_| {})
                .map(|_| ())
        })?,
    ));
    let d = density.run_for(&inputs);
    let what = format!(
        "{0}×{0} cells, t = {1}, NLL of {2} points",
        d.cells,
        d.t,
        d.held_out.len()
    );
    rows.push((
        "density",
        what,
        time(args.repeats, || {
            density
                .run_for(&inputs)
                .run(Progress::none(), &mut |_| {})
                .map(|_| ())
        })?,
    ));
    let points = d.points.clone();
    rows.push((
        "forward-density",
        "96×96 cells".into(),
        time(args.repeats, || {
            let grid = Grid::square(VIEW_HALF, 96)?;
            forward_density(&points, schedule, &grid, 0.5).map(|_| ())
        })?,
    ));

    stop.store(true, Ordering::Relaxed);
    let trained = match background {
        Some(h) => Some(
            h.join()
                .map_err(|_| anyhow!("the training thread panicked"))??,
        ),
        None => None,
    };
    let threads = rayon::current_num_threads();
    for (name, what, secs) in rows {
        let median = median(&secs);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "kind": "explore", "view": name, "seconds": median, "runs": secs,
                    "what": what, "threads": threads, "while_training": args.while_training,
                })
            );
        } else {
            println!(
                "explore {name:<17} {median:>7.2} s  (median of {}; {what})",
                secs.len()
            );
        }
    }
    if let Some(steps) = trained {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "meanwhile the training thread ran {steps} steps ({:.0} samples/s)",
            steps as f64 * settings.train.batch as f64 / secs
        );
    }
    Ok(())
}

fn time(
    repeats: usize,
    mut f: impl FnMut() -> Result<(), diffusion_playground::teach::TeachError>,
) -> Result<Vec<f64>> {
    (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed().as_secs_f64())
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
