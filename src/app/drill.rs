//! The soak drill (`--drill SECS`): the real app, driven by itself as a restless user would,
//! for hours. Every few seconds it changes one thing — the dataset, the schedule, the process
//! (with the flow grid), the sampler, the step count, SDE ↔ ODE, the particle count, the score,
//! the playback — or saves
//! and reloads the weights, or exports a PNG or a CSV. Once every report period it prints one
//! line, `soak {json}`, with resident memory, frame time, frames drawn, training step and
//! whether every number the UI shows is finite; `scripts/soak.sh` reads those lines.
//!
//! Actions follow a fixed pseudo-random sequence, so a failing run can be replayed. The
//! drill writes only into its own folder and never saves the user's settings.

use std::path::PathBuf;
use std::time::Duration;

use web_time::Instant;

use super::settings::{DataChoice, ForwardPaths, ScheduleKind, ScoreSource};
use super::{App, Mode, export};
use crate::data::BuiltIn;
use crate::math::Process;
use crate::math::solvers::SamplerKind;
use crate::train::Command;

/// How often a `soak` line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The drill's state: when to act and report next, and its random sequence.
pub struct Drill {
    every: Duration,
    next_action: Instant,
    next_report: Instant,
    started: Instant,
    state: u64,
    actions: u64,
    saved: bool,
    dir: PathBuf,
}

impl Drill {
    /// One action every `every_secs` seconds, files in `dir`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(every_secs: f64, dir: PathBuf) -> Self {
        // A folder that cannot be made shows up as the exports' own error messages.
        let _ = std::fs::create_dir_all(&dir);
        let now = Instant::now();
        Self {
            every: Duration::from_secs_f64(every_secs.max(0.1)),
            next_action: now,
            // A first line early: the memory baseline once the app has settled.
            next_report: now + Duration::from_secs(10),
            started: now,
            state: 0x5EED_D2111,
            actions: 0,
            saved: false,
            dir,
        }
    }

    /// A number in `0..n` (splitmix64).
    fn pick(&mut self, n: usize) -> usize {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// Acts and reports when due (called every frame while the drill runs).
pub(super) fn tick(app: &mut App, ctx: &egui::Context) {
    let Some(mut drill) = app.drill.take() else {
        return;
    };
    let now = Instant::now();
    if now >= drill.next_report {
        drill.next_report = now + REPORT_EVERY;
        println!("soak {}", report(app, &drill));
    }
    if now >= drill.next_action {
        drill.next_action = now + drill.every;
        drill.actions += 1;
        act(app, &mut drill, ctx);
    }
    ctx.request_repaint_after(drill.every.min(Duration::from_millis(250)));
    app.drill = Some(drill);
}

/// One change, as a user would make it through the UI.
fn act(app: &mut App, drill: &mut Drill, ctx: &egui::Context) {
    let s = &mut app.settings;
    match drill.pick(13) {
        0 => {
            let all = BuiltIn::all();
            let name = all[drill.pick(all.len())].name();
            app.set_data(DataChoice::BuiltIn(name.to_owned()));
        }
        1 => {
            s.schedule.kind = ScheduleKind::ALL[drill.pick(3)];
            s.schedule.beta_max = [0.5, 2.0, 8.0, 20.0, 25.0][drill.pick(5)];
        }
        2 => s
            .sampler
            .select(SamplerKind::ALL[drill.pick(SamplerKind::ALL.len())]),
        3 => s.sampler.steps = [2, 5, 20, 50, 100, 250, 1000][drill.pick(7)],
        4 => s.sampler.toggle_family(),
        5 => s.particles = [300, 2_000, 8_000, 20_000, 60_000][drill.pick(5)],
        6 => {
            let mode = [Mode::Forward, Mode::Reverse][drill.pick(2)];
            app.player.play_mode(mode);
        }
        7 => {
            s.score_source = [ScoreSource::Learned, ScoreSource::Exact][drill.pick(2)];
            s.forward_paths = [ForwardPaths::Exact, ForwardPaths::EulerMaruyama][drill.pick(2)];
        }
        8 => {
            s.weights_path = drill.dir.join("drill.safetensors").display().to_string();
            app.training.send(Command::Save {
                path: s.weights_path.clone().into(),
                dataset: app.data.label.clone(),
                normalization: app.data.normalization,
            });
            drill.saved = true;
        }
        9 if drill.saved => app.load_weights(),
        10 => {
            s.teach.export_dir = drill.dir.display().to_string();
            export::export_png(app, ctx);
        }
        11 => {
            s.set_process(Process::ALL[drill.pick(2)]);
            s.show_mesh = drill.pick(2) == 0;
        }
        _ => {
            s.teach.export_dir = drill.dir.display().to_string();
            export::export_csv(app);
        }
    }
}

/// The `soak` line: what a long session is judged by.
fn report(app: &App, drill: &Drill) -> serde_json::Value {
    let train = &app.train;
    let loss = train.loss.last().map(|p| p[1]);
    let quality = train.quality.last().map(|p| p[1]);
    let check = app.player.noise_check();
    let shown = [
        Some(train.samples_per_sec),
        loss,
        quality,
        train.quality_floor,
        Some(app.player.t),
        Some(app.frame_stats.fps()),
        check.map(|c| c.sw2),
        check.map(|c| c.floor),
        check.map(|c| c.snr_end),
    ];
    let finite = shown.iter().flatten().all(|x| x.is_finite());
    serde_json::json!({
        "secs": drill.started.elapsed().as_secs_f64().round(),
        "rss_mb": resident_mb(),
        "frame_ms": 1e3 * app.frame_stats.interval_secs,
        "frames": app.frame_stats.frames,
        "step": train.step,
        "samples_per_s": train.samples_per_sec.round(),
        "loss": loss,
        "paused": train.paused,
        "actions": drill.actions,
        "finite": finite,
        "crashed": train.crashed,
        "error": train.error,
    })
}

/// Resident memory in MiB (Linux; `None` elsewhere).
fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
