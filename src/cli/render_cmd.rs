//! The `render` subcommand: the canvas drawn in software, without a window or a GPU. It
//! trains the network headless (or uses the exact score), then writes a PNG of one moment
//! and, optionally, a GIF of the forward process followed by reverse sampling, in the same
//! colours as the app.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use image::{Rgb, RgbImage};

use diffusion_playground::Point;
use diffusion_playground::app::{DataChoice, LoadedData, hue_of};
use diffusion_playground::math::flow::FlowOracle;
use diffusion_playground::math::oracle::Oracle;
use diffusion_playground::math::solvers::{Sampler, SamplerConfig, SamplerKind, prior};
use diffusion_playground::math::{Process, Schedule, ScoreModel};
use diffusion_playground::nn::{MlpConfig, TrainConfig, Trainer};
use diffusion_playground::train::TrainSettings;

/// Options of `diffusion-playground render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// A built-in dataset name or a CSV file.
    #[arg(long, default_value = "swiss-roll")]
    pub dataset: String,
    /// The PNG to write.
    #[arg(long, default_value = "playground.png")]
    pub out: PathBuf,
    /// Also write a GIF of forward noising then reverse sampling.
    #[arg(long)]
    pub gif: Option<PathBuf>,
    /// What the PNG shows: "forward" (at --t) or "reverse" (the finished samples).
    #[arg(long, default_value = "reverse", value_parser = ["forward", "reverse"])]
    pub mode: String,
    /// Time of the forward PNG, in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub t: f64,
    /// Image width and height in pixels.
    #[arg(long, default_value_t = 640)]
    pub size: u32,
    #[arg(long, default_value_t = 5000)]
    pub particles: usize,
    /// Training steps before sampling (batch 256); ignored with --oracle.
    #[arg(long, default_value_t = 3000)]
    pub train_steps: u64,
    /// Sample with the exact score of the data (the ideal denoiser) instead of a network.
    #[arg(long)]
    pub oracle: bool,
    /// vp (the VP-SDE) | fm (flow matching: straight paths; samplers em, ode-euler, heun, rk4).
    #[arg(long, default_value = "vp")]
    pub process: String,
    /// em, ode-euler, heun, rk4, ddpm, ddim, dpm2m, pc or langevin.
    #[arg(long, default_value = "em")]
    pub sampler: String,
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// linear, cosine or constant.
    #[arg(long, default_value = "linear")]
    pub schedule: String,
    #[arg(long, default_value_t = 0.1)]
    pub beta_min: f64,
    /// β at t = 1 (linear), the cap (cosine) or β itself (constant).
    #[arg(long, default_value_t = 20.0)]
    pub beta_max: f64,
    /// GIF frames per direction.
    #[arg(long, default_value_t = 40)]
    pub frames: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
}

const BACKGROUND: Rgb<u8> = Rgb([16, 18, 24]);
const GRID: [u8; 3] = [40, 44, 54];
const DATA: [u8; 4] = [200, 210, 230, 60];
const REVERSE: [u8; 4] = [255, 150, 60, 235];
/// World units from the centre to the edge, as in the app at zoom 1.
const HALF_EXTENT: f32 = 3.2;

pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (16..=4096).contains(&args.size),
        "--size must be in 16..=4096"
    );
    anyhow::ensure!(
        (1..=1_000_000).contains(&args.particles),
        "--particles must be in 1..=1000000"
    );
    anyhow::ensure!((0.0..=1.0).contains(&args.t), "--t must be in [0, 1]");
    anyhow::ensure!(
        (1..=1000).contains(&args.steps),
        "--steps must be in 1..=1000"
    );
    anyhow::ensure!(
        (2..=500).contains(&args.frames),
        "--frames must be in 2..=500"
    );
    let kind = SamplerKind::from_name(&args.sampler)
        .with_context(|| format!("unknown sampler {:?}", args.sampler))?;
    let process = Process::from_name(&args.process)
        .with_context(|| format!("unknown process {:?} (vp or fm)", args.process))?;
    anyhow::ensure!(
        kind.supports(process),
        "sampler {} is defined for the VP process only (flow matching: em, ode-euler, heun, rk4)",
        kind.name()
    );
    let schedule = match args.schedule.as_str() {
        "linear" => Schedule::Linear {
            beta_min: args.beta_min,
            beta_max: args.beta_max,
        },
        "cosine" => Schedule::Cosine {
            beta_cap: args.beta_max,
        },
        "constant" => Schedule::Constant {
            beta: args.beta_max,
        },
        other => anyhow::bail!("unknown schedule {other:?} (linear, cosine or constant)"),
    };
    schedule.validate()?;
    let choice = if args.dataset.ends_with(".csv") {
        DataChoice::Csv(args.dataset.clone())
    } else {
        DataChoice::BuiltIn(args.dataset.clone())
    };
    let data = LoadedData::load(&choice).map_err(anyhow::Error::msg)?;

    let model = model(args, process, schedule, &data)?;
    let cfg = SamplerConfig {
        kind,
        steps: args.steps,
        seed: args.seed.wrapping_add(1),
        ..SamplerConfig::default()
    };
    let canvas = Canvas::new(args.size, &data.points);
    let x0: Vec<Point> = (0..args.particles)
        .map(|i| data.points[i % data.points.len()])
        .collect();
    let eps = prior(args.particles, args.seed.wrapping_add(0xF0A7));
    let colors: Vec<[u8; 4]> = x0.iter().map(|p| hue_of(*p)).collect();
    let forward_at = |t: f64| {
        let mut x = vec![[0.0; 2]; x0.len()];
        process.marginal(&schedule, t, &x0, &eps, &mut x);
        x
    };

    let mut frames: Vec<RgbImage> = Vec::new();
    let want_gif = args.gif.is_some();
    if want_gif {
        for k in 0..args.frames {
            let t = k as f64 / (args.frames - 1) as f64;
            frames.push(canvas.draw(&forward_at(t), |i| colors[i]));
        }
    }
    // Reverse: step the sampler, keeping evenly spaced frames for the GIF.
    let start = Instant::now();
    let mut x = prior(args.particles, cfg.seed);
    let mut sampler = Sampler::new(schedule, cfg);
    let keep_every = (args.steps as f64 / (args.frames - 1) as f64).max(1.0);
    let mut next_keep = 0.0;
    let mut step = 0usize;
    loop {
        if want_gif && step as f64 >= next_keep {
            frames.push(canvas.draw(&x, |_| REVERSE));
            next_keep += keep_every;
        }
        if sampler.is_done() {
            break;
        }
        sampler.step(model.as_ref(), &mut x);
        step += 1;
    }
    if want_gif {
        frames.push(canvas.draw(&x, |_| REVERSE));
    }
    eprintln!(
        "sampled {} particles with {} in {} steps ({} evaluations, {:.1} s)",
        args.particles,
        kind.label(),
        args.steps,
        sampler.nfe(),
        start.elapsed().as_secs_f64()
    );

    let png = if args.mode == "forward" {
        canvas.draw(&forward_at(args.t), |i| colors[i])
    } else {
        canvas.draw(&x, |_| REVERSE)
    };
    png.save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());

    if let Some(path) = &args.gif {
        write_gif(path, &frames, args.frames)?;
        eprintln!("wrote {} ({} frames)", path.display(), frames.len());
    }
    Ok(())
}

/// The exact score, or a network trained here.
fn model(
    args: &RenderArgs,
    process: Process,
    schedule: Schedule,
    data: &LoadedData,
) -> anyhow::Result<Arc<dyn ScoreModel + Send + Sync>> {
    if args.oracle {
        let stride = (data.points.len() / 1000).max(1);
        let subset: Vec<Point> = data.points.iter().step_by(stride).copied().collect();
        return Ok(match process {
            Process::Vp => Arc::new(Oracle::empirical(&subset, schedule)),
            Process::Fm => Arc::new(FlowOracle::empirical(&subset)),
        });
    }
    let settings = TrainSettings::default();
    let cfg = TrainConfig {
        net: MlpConfig {
            process,
            ..settings.net
        },
        schedule,
        lr: settings.lr,
        batch: settings.batch,
        seed: args.seed,
        weighting: settings.weighting,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(cfg, Arc::<[Point]>::from(data.points.as_slice()))?;
    let start = Instant::now();
    let mut loss_sum = 0.0;
    for k in 1..=args.train_steps {
        loss_sum += trainer.step()? as f64;
        if k % 500 == 0 || k == args.train_steps {
            eprintln!(
                "step {k}/{}: loss {:.4} ({:.1} s)",
                args.train_steps,
                loss_sum / 500f64.min(k as f64),
                start.elapsed().as_secs_f64()
            );
            loss_sum = 0.0;
        }
    }
    Ok(Arc::new(trainer.model(true)?))
}

fn write_gif(path: &PathBuf, frames: &[RgbImage], per_direction: usize) -> anyhow::Result<()> {
    let Some(first) = frames.first() else {
        return Ok(());
    };
    let (w, h) = (first.width() as u16, first.height() as u16);
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = gif::Encoder::new(BufWriter::new(file), w, h, &[])?;
    encoder.set_repeat(gif::Repeat::Infinite)?;
    let last = frames.len() - 1;
    for (i, image) in frames.iter().enumerate() {
        let mut frame = gif::Frame::from_rgb_speed(w, h, image.as_raw(), 10);
        // 1/100 s units: ~3 s per direction, a pause on pure noise and on the samples.
        frame.delay = if i + 1 == per_direction || i == last {
            120
        } else {
            (300 / per_direction).max(2) as u16
        };
        encoder.write_frame(&frame)?;
    }
    Ok(())
}

/// A software canvas: grid, faint data, particles as soft discs.
struct Canvas {
    size: u32,
    /// Grid and data, drawn once.
    base: RgbImage,
}

impl Canvas {
    fn new(size: u32, data: &[Point]) -> Self {
        let mut base = RgbImage::from_pixel(size, size, BACKGROUND);
        let scale = size as f32 / (2.0 * HALF_EXTENT);
        for k in -3..=3 {
            let px = (size as f32 / 2.0 + k as f32 * scale).round() as i64;
            for i in 0..size as i64 {
                for (x, y) in [(px, i), (i, px)] {
                    if (0..size as i64).contains(&x) && (0..size as i64).contains(&y) {
                        base.put_pixel(x as u32, y as u32, Rgb(GRID));
                    }
                }
            }
        }
        let mut canvas = Self { size, base };
        let mut base = canvas.base.clone();
        for p in data {
            canvas.disc(&mut base, *p, DATA, 1.6);
        }
        canvas.base = base;
        canvas
    }

    fn draw(&self, points: &[Point], color: impl Fn(usize) -> [u8; 4]) -> RgbImage {
        let mut image = self.base.clone();
        let radius = if points.len() > 30_000 { 1.4 } else { 2.0 } * self.size as f32 / 640.0;
        for (i, p) in points.iter().enumerate() {
            self.disc(&mut image, *p, color(i), radius.max(1.0));
        }
        image
    }

    /// Alpha-blends a disc with a soft rim (as the app's shader does).
    fn disc(&self, image: &mut RgbImage, p: Point, rgba: [u8; 4], radius: f32) {
        let scale = self.size as f32 / (2.0 * HALF_EXTENT);
        let cx = self.size as f32 / 2.0 + p[0] * scale;
        let cy = self.size as f32 / 2.0 - p[1] * scale;
        if !(cx.is_finite() && cy.is_finite()) {
            return;
        }
        let (x0, x1) = ((cx - radius).floor() as i64, (cx + radius).ceil() as i64);
        let (y0, y1) = ((cy - radius).floor() as i64, (cy + radius).ceil() as i64);
        let n = self.size as i64;
        for y in y0.max(0)..=y1.min(n - 1) {
            for x in x0.max(0)..=x1.min(n - 1) {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let r2 = (dx * dx + dy * dy) / (radius * radius);
                if r2 > 1.0 {
                    continue;
                }
                let a = rgba[3] as f32 / 255.0 * (1.0 - smoothstep(0.55, 1.0, r2));
                let px = image.get_pixel_mut(x as u32, y as u32);
                for (channel, &value) in px.0.iter_mut().zip(&rgba) {
                    *channel = (*channel as f32 * (1.0 - a) + value as f32 * a) as u8;
                }
            }
        }
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}
