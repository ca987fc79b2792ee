//! The desktop app (eframe): the teacher's view of a diffusion model on 2D points.
//!
//! Left, the controls; centre, the particle canvas with its time scrubber; right, the
//! curves; bottom, the status bar. Training and sampling run as background jobs
//! (`crate::train`, `state::trajectory`), so the UI only draws.
//!
//! - this file: [`App`], the frame loop, the step that hands settings to the trainer;
//! - `state`: what the app holds (settings, data, training news, the player, runs, jobs);
//! - `panels`: the parts of the window (controls, canvas, plots, status, teaching strip);
//! - `paint`: our wgpu paint callbacks (particles, fills, lines, region pictures);
//! - `explore`: the Explore views, docked beside the canvas;
//! - `drill`: the soak drill (`--drill`), the app driven by itself for hours.

mod drill;
pub mod explore;
pub mod files;
mod paint;
mod panels;
mod state;
#[cfg(target_arch = "wasm32")]
pub mod web;

// The submodules by their short names, as every file of the app refers to them.
use paint::{callback, fill, lines, particles, region_cache};
use panels::{canvas, controls, export, formulas, help, lessons, plots, status, style, teach_bar};
pub use state::trajectory;
use state::{datasets, jobs, noise_check, player, run_quality, settings, training};

use std::sync::{Arc, Mutex};
use web_time::Instant;

pub use datasets::{DRAW_CLASSES, Drawing, LoadedData};
pub use noise_check::NoiseCheck;
pub use particles::SHADER as PARTICLE_SHADER;
pub use player::{Mode, ReverseKey, exact_oracle, hue_of};
pub use run_quality::RunQuality;
pub use settings::ExploreTab;
pub use settings::{DataChoice, ScheduleKind, ScoreSource, Settings, TeachSettings};
pub use style::body_size;

use crate::Point;
use crate::data::Placement;
use crate::gpu::GpuContext;
use crate::math::Schedule;
use crate::train::{self, BackendFactory, Command, TrainHandle, TrainSettings, TrainSetup};

use player::Player;
use training::TrainState;

/// How soon training's news are drawn (see `start_training`).
const TRAINING_NEWS_REPAINT: std::time::Duration = std::time::Duration::from_millis(100);

/// The renderer's adapter, for the status bar.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub backend: String,
    pub adapter: String,
    /// A software rasteriser (lavapipe, WARP): drawing costs CPU time.
    pub is_cpu: bool,
}

/// Frame timing for the status bar (and the closing report of `--exit-after`).
#[derive(Default)]
struct FrameStats {
    /// Smoothed seconds between frames.
    interval_secs: f64,
    /// Smoothed seconds eframe spent on a frame (UI, tessellation, render), without vsync.
    work_secs: f64,
    /// Smoothed seconds of our own UI code per frame.
    ui_secs: f64,
    /// Totals over the run, for the exit report.
    work_total: f64,
    ui_total: f64,
    frames: u64,
    first: Option<Instant>,
}

impl FrameStats {
    fn tick(&mut self, dt: f64) {
        self.frames += 1;
        self.first.get_or_insert_with(Instant::now);
        if dt > 0.0 && dt < 1.0 {
            self.interval_secs = if self.interval_secs == 0.0 {
                dt
            } else {
                0.95 * self.interval_secs + 0.05 * dt
            };
        }
    }

    fn smooth(avg: &mut f64, x: f64) {
        *avg = if *avg == 0.0 {
            x
        } else {
            0.95 * *avg + 0.05 * x
        };
    }

    fn fps(&self) -> f64 {
        if self.interval_secs > 0.0 {
            1.0 / self.interval_secs
        } else {
            0.0
        }
    }

    fn record(&mut self, ui: f64, work: Option<f64>) {
        Self::smooth(&mut self.ui_secs, ui);
        self.ui_total += ui;
        if let Some(work) = work {
            Self::smooth(&mut self.work_secs, work);
            self.work_total += work;
        }
    }

    /// Mean frame time over the whole run.
    fn mean_ms(&self) -> f64 {
        self.first.map_or(0.0, |t| {
            1e3 * t.elapsed().as_secs_f64() / self.frames.saturating_sub(1).max(1) as f64
        })
    }
}

/// The app's state; constructible without a window (tests drive it through egui_kittest).
pub struct App {
    pub settings: Settings,
    pub data: LoadedData,
    /// The last failure to load data (the previous data stays in use).
    pub data_error: Option<String>,
    /// The data is a subset of `settings.data` (the memorisation view's), not all of it.
    pub data_is_subset: bool,
    /// The help overlay (F1 or ?) is open.
    pub help: bool,
    /// The placement while its slider is dragged (applied when let go).
    placement_draft: Option<Placement>,
    /// Why the saved settings were not used as they were (`Settings::restore`), until dismissed.
    pub settings_notice: Option<String>,
    pub training: TrainHandle,
    pub train: TrainState,
    pub player: Player,
    /// Points being drawn in "draw your own" mode (`Some` while the mode is on).
    pub drawing: Option<Drawing>,
    canvas: canvas::CanvasState,
    gpu: Option<GpuInfo>,
    frame_stats: FrameStats,
    exit_after_secs: Option<f64>,
    /// With `--exit-after`: (time, training step, frames) a third of the way in, so the exit
    /// report gives the steady training rate and frame rate, without the start-up.
    steady_mark: Option<(Instant, u64, u64)>,
    /// The soak drill, when the app drives itself (`--drill`).
    drill: Option<drill::Drill>,
    started: Instant,
    applied_look: Option<style::Look>,
    /// The settings and schedule the trainer last heard of (`sync_training`).
    configured: (TrainSettings, Schedule),
    /// Builds training backends (sharing the renderer's device); kept for restarts.
    factory: BackendFactory,
    /// The teaching views' state and results.
    pub explore: explore::Explore,
    /// The last export or weights load, and the export in progress.
    pub export: export::ExportState,
    /// Pictures of the regions that stand still (with wgpu only).
    region_cache: Option<region_cache::RegionCache>,
    /// The training curves as the plots show them.
    curves: plots::Curves,
    /// The status bar's numbers as shown.
    status: status::Readout,
}

impl App {
    /// The app as eframe creates it: restores saved settings, starts training.
    pub fn new(cc: &eframe::CreationContext<'_>, exit_after_secs: Option<f64>) -> Self {
        let mut app = Self::restored(cc, true);
        app.exit_after_secs = exit_after_secs;
        app
    }

    /// An app with the settings eframe saved (`cc.storage`), as `create` builds it. A saved
    /// file that cannot be read gives the defaults, values out of range are brought back, and
    /// either way `settings_notice` says so (`Settings::restore`).
    pub fn restored(cc: &eframe::CreationContext<'_>, train: bool) -> Self {
        Self::restored_with(cc, train, |_| {})
    }

    /// As `restored`, with `adjust` applied to the settings before anything starts (a web
    /// page's `?backend=`).
    pub fn restored_with(
        cc: &eframe::CreationContext<'_>,
        train: bool,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let stored = cc.storage.and_then(|s| s.get_string(eframe::APP_KEY));
        let (mut settings, notice) = Settings::restore(stored.as_deref());
        adjust(&mut settings);
        let mut app = Self::create(cc, settings, train);
        app.settings_notice = notice;
        app
    }

    /// An app inside an eframe (or egui_kittest) context: installs the particle renderer
    /// when wgpu is there. `train: false` records commands without a training thread.
    pub fn create(cc: &eframe::CreationContext<'_>, settings: Settings, train: bool) -> Self {
        // The renderer's device, for the WGSL trainer to share (docs/architecture.md §1); in
        // a browser the page's own training device when it has one.
        let shared = cc.wgpu_render_state.as_ref().map(|rs| {
            // Before the training thread can submit anything.
            report_wgpu_errors(&rs.device);
            GpuContext::from_shared(rs.device.clone(), rs.queue.clone(), rs.adapter.get_info())
        });
        #[cfg(target_arch = "wasm32")]
        let shared = web::training_device().or(shared);
        #[cfg(target_arch = "wasm32")]
        web::set_device(shared.clone());
        let mut app = Self::build(settings, train, &cc.egui_ctx, train::factory(shared));
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            app.install_gpu(rs);
        }
        app
    }

    /// Registers the particle pipeline with egui's renderer; the canvas draws with it from
    /// then on (without it, a few thousand egui circles stand in).
    fn install_gpu(&mut self, rs: &egui_wgpu::RenderState) {
        particles::ParticleRenderer::install(rs);
        fill::FillRenderer::install(rs);
        lines::LineRenderer::install(rs);
        self.region_cache = Some(region_cache::RegionCache::new(rs));
        // Reverse runs on GPU weights from this device hand their particles to the canvas.
        self.player.render_device = Some(rs.device.clone());
        let info = rs.adapter.get_info();
        self.gpu = Some(GpuInfo {
            backend: match info.backend {
                wgpu::Backend::BrowserWebGpu => "WebGPU".to_owned(),
                wgpu::Backend::Gl if cfg!(target_arch = "wasm32") => web_gl_label(),
                other => format!("{other:?}"),
            },
            is_cpu: info.device_type == wgpu::DeviceType::Cpu,
            // A browser names no adapter: say which kind it is.
            adapter: if info.name.is_empty() {
                crate::gpu::describe(&info)
            } else {
                info.name
            },
        });
    }

    /// An app with these settings. `train` starts the training thread; without it commands
    /// are only recorded (UI tests inspect them with `training.sent()`).
    pub fn with_settings(settings: Settings, train: bool, ctx: &egui::Context) -> Self {
        Self::build(settings, train, ctx, train::factory(None))
    }

    /// An app whose training thread builds its backends with `factory` (another backend; a
    /// failing one in tests).
    pub fn with_backends(settings: Settings, ctx: &egui::Context, factory: BackendFactory) -> Self {
        Self::build(settings, true, ctx, factory)
    }

    fn build(
        mut settings: Settings,
        train: bool,
        ctx: &egui::Context,
        factory: BackendFactory,
    ) -> Self {
        style::install_fonts(ctx);
        let placement = settings.placement;
        let (data, data_error) = match LoadedData::load(&settings.data) {
            Ok(d) => (d.placed(placement), None),
            Err(e) => {
                // Saved settings pointing at a file that is gone: fall back, say why.
                settings.data = DataChoice::default();
                let fallback = LoadedData::load(&settings.data);
                match fallback {
                    Ok(d) => (d.placed(placement), Some(e)),
                    Err(e2) => (
                        LoadedData {
                            label: "none".into(),
                            points: Arc::new(vec![[0.0, 0.0], [0.1, 0.1]]),
                            normalization: Default::default(),
                            labels: None,
                            num_classes: 0,
                            version: datasets::next_version(),
                        },
                        Some(format!("{e}; {e2}")),
                    ),
                }
            }
        };
        let schedule = settings.schedule.schedule();
        let configured = (settings.train.clone(), schedule);
        let training = if train {
            Self::start_training(ctx, &factory, configured.clone(), &data)
        } else {
            TrainHandle::detached()
        };
        let repaint_ctx = ctx.clone();
        let mut player = Player::default();
        let repaint: crate::work::Repaint = Arc::new(move || repaint_ctx.request_repaint());
        player.noise.repaint = Some(Arc::clone(&repaint));
        player.run_quality.repaint = Some(repaint);
        Self {
            settings,
            data,
            data_error,
            data_is_subset: false,
            placement_draft: None,
            help: false,
            settings_notice: None,
            training,
            train: TrainState::default(),
            player,
            drawing: None,
            canvas: canvas::CanvasState::default(),
            gpu: None,
            frame_stats: FrameStats::default(),
            exit_after_secs: None,
            steady_mark: None,
            drill: None,
            started: Instant::now(),
            applied_look: None,
            configured,
            factory,
            explore: explore::Explore::default(),
            export: export::ExportState::default(),
            region_cache: None,
            curves: plots::Curves::default(),
            status: status::Readout::default(),
        }
    }

    /// Loads and switches to new data; on failure keeps the current data and shows why.
    pub fn set_data(&mut self, choice: DataChoice) {
        match LoadedData::load(&choice) {
            Ok(data) => self.use_data(choice, data),
            Err(e) => self.data_error = Some(e),
        }
    }

    /// Switches to data loaded for `choice` (placed as the settings say).
    fn use_data(&mut self, choice: DataChoice, data: LoadedData) {
        self.settings.data = choice;
        self.data = data.placed(self.settings.placement);
        self.data_is_subset = false;
        self.data_error = None;
        self.player.invalidate();
        self.training
            .send(Command::SetData(Arc::clone(&self.data.points)));
    }

    /// Moves the data (the lesson on why data is standardised) and reloads it, framing it on
    /// the canvas.
    pub fn set_placement(&mut self, placement: Placement) {
        self.settings.placement = placement;
        self.set_data(self.settings.data.clone());
        self.frame_data();
    }

    /// Zooms and pans the canvas to show the data and N(0, I) (standard data: the usual view).
    pub fn frame_data(&mut self) {
        let p = self.settings.placement;
        // Standardised data lies within about ±2.6; N(0, I) within ±3.
        let (lo, hi) = (
            (p.shift - 2.6 * p.scale).min(-3.0),
            (p.shift + 2.6 * p.scale).max(3.0),
        );
        let half = (0.5 * (hi - lo)).max(2.6 * p.scale);
        self.settings.zoom = (3.2 / half).clamp(0.3, 1.0);
        self.canvas.pan = egui::Vec2::new(-0.5 * (lo + hi), 0.0);
    }

    /// Keeps the user's setup before a lesson or a view's preset changes it (once: a second
    /// preset keeps the first copy, which is the user's own). A drawing in progress is kept
    /// as the data.
    pub fn keep_my_setup(&mut self) {
        if let Some(drawing) = self.drawing.take()
            && drawing.len() >= datasets::MIN_DRAWN
        {
            self.set_data(DataChoice::Drawn(drawing.points, drawing.labels));
        }
        if self.settings.my_setup.is_none() && !self.data_is_subset {
            let mut mine = self.settings.clone();
            mine.my_setup = None;
            self.settings.my_setup = Some(Box::new(mine));
        }
    }

    /// Puts back the setup [`App::keep_my_setup`] kept: data, schedule, network, sampler and
    /// views. The panels in use (lessons, presentation, theme) stay as they are.
    pub fn back_to_my_setup(&mut self) {
        let Some(mine) = self.settings.my_setup.take() else {
            return;
        };
        let mut mine = *mine;
        let now = &self.settings;
        mine.teach.lessons = now.teach.lessons;
        mine.teach.lesson = now.teach.lesson;
        mine.presentation = now.presentation;
        mine.dark = now.dark;
        let data = std::mem::replace(&mut mine.data, now.data.clone());
        let reload = data != self.settings.data
            || mine.placement != self.settings.placement
            || self.data_is_subset;
        self.settings = mine;
        if reload {
            self.drawing = None;
            self.set_data(data);
        }
    }

    /// Trains on a subset of the current data (the memorisation view's small training sets);
    /// the full data comes back with "Back to my setup".
    pub fn train_on_subset(&mut self, points: Arc<Vec<Point>>) {
        self.keep_my_setup();
        self.data_is_subset = true;
        self.data = LoadedData {
            label: format!("{} ({} points)", self.data.label, points.len()),
            points,
            normalization: self.data.normalization,
            labels: None,
            num_classes: 0,
            version: datasets::next_version(),
        };
        self.player.invalidate();
        self.training
            .send(Command::SetData(Arc::clone(&self.data.points)));
    }

    /// Reads the weights file named in the settings and, if it is good, hands it to the
    /// trainer; a bad file is refused with its reason (`export.message`).
    pub fn load_weights(&mut self) {
        export::load_weights(self);
    }

    /// Shows the current lesson's preset (tests and the lessons panel).
    pub fn apply_lesson(&mut self) {
        lessons::apply_current(self);
    }

    /// The one step that turns settings into training: when the training settings or the
    /// schedule differ from what the trainer last heard, it gets them all in one
    /// `Configure` (it then continues or starts over, see `TrainBackend::apply`). Called
    /// every frame, and at once by whatever must follow the change (loading weights). The
    /// seed is the one the last Reset used: editing it alone restarts nothing.
    pub fn sync_training(&mut self) {
        let mut settings = self.settings.train.clone();
        settings.seed = self.configured.0.seed;
        let schedule = self.settings.schedule.schedule();
        if (&settings, &schedule) == (&self.configured.0, &self.configured.1)
            || schedule.validate().is_err()
        {
            return;
        }
        self.configured = (settings.clone(), schedule);
        self.training
            .send(Command::Configure { settings, schedule });
    }

    /// Starts over from fresh weights drawn with the seed in the settings.
    pub fn reset_training(&mut self) {
        let seed = self.settings.train.seed;
        self.configured.0.seed = seed;
        self.training.send(Command::Reset { seed });
    }

    fn start_training(
        ctx: &egui::Context,
        factory: &BackendFactory,
        (settings, schedule): (TrainSettings, Schedule),
        data: &LoadedData,
    ) -> TrainHandle {
        let setup = TrainSetup {
            settings,
            schedule,
            data: Arc::clone(&data.points),
            paused: false,
        };
        // Training's news (a loss point every 100 ms) need not draw a frame of its own: an
        // animating canvas draws soon anyway, and on a software renderer every extra frame is
        // CPU taken from training. An idle window still wakes within this.
        let repaint_ctx = ctx.clone();
        TrainHandle::spawn_with(setup, Arc::clone(factory), move || {
            repaint_ctx.request_repaint_after(TRAINING_NEWS_REPAINT)
        })
    }

    /// Restarts crashed training from the current settings.
    pub fn restart_training(&mut self, ctx: &egui::Context) {
        self.configured = (
            self.settings.train.clone(),
            self.settings.schedule.schedule(),
        );
        self.train = TrainState::default();
        self.training =
            Self::start_training(ctx, &self.factory, self.configured.clone(), &self.data);
    }

    /// Drains the training job's news.
    fn poll_training(&mut self) {
        // Looked at first: a job that has ended has left its last words in the events.
        let finished = self.training.is_finished();
        for event in self.training.drain() {
            self.train.apply(event);
        }
        if let Some(snapshot) = self.training.take_snapshot() {
            self.train.set_snapshot(snapshot);
        }
        if self.train.crashed.is_none() && finished {
            self.train.crashed = Some("the training thread stopped".to_owned());
        }
    }

    /// Space, F, R, O, ←/→, . and ,, P, F1 or ?, unless a text field has the keyboard.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        use egui::Key;
        let pressed = |k: Key| ctx.input(|i| i.key_pressed(k));
        if pressed(Key::Space) {
            self.player.toggle_play();
        }
        if pressed(Key::F) {
            self.player.play_mode(Mode::Forward);
        }
        if pressed(Key::R) {
            self.player.play_mode(Mode::Reverse);
        }
        if pressed(Key::O) {
            self.settings.sampler.toggle_family();
        }
        if pressed(Key::P) {
            self.settings.presentation = !self.settings.presentation;
        }
        if pressed(Key::G) {
            self.settings.show_mesh = !self.settings.show_mesh;
        }
        if let Some(drawing) = self.drawing.as_mut()
            && ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, Key::Z))
        {
            drawing.undo_stroke();
        }
        // One solver step at a time: . on, , back.
        if pressed(Key::Period) {
            self.player.step_once(self.settings.sampler.steps, false);
        }
        if pressed(Key::Comma) {
            self.player.step_once(self.settings.sampler.steps, true);
        }
        if pressed(Key::F1)
            || ctx.input(|i| {
                i.events
                    .iter()
                    .any(|e| matches!(e, egui::Event::Text(t) if t == "?"))
            })
        {
            self.help = !self.help;
        }
        if pressed(Key::Escape) {
            self.help = false;
        }
        let step = 0.02;
        if pressed(Key::ArrowRight) {
            self.player.scrub(step);
        }
        if pressed(Key::ArrowLeft) {
            self.player.scrub(-step);
        }
    }

    /// One frame: everything but the window itself (kept apart so tests can call it).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        // Playback follows the clock even at a few frames per second (software rendering);
        // the frame rate shown is the true one.
        let raw_dt = ctx.input(|i| i.unstable_dt as f64);
        self.frame_stats.tick(raw_dt);
        let dt = raw_dt.min(0.25);
        let look = style::Look {
            presentation: self.settings.presentation,
            dark: self.settings.dark,
        };
        if self.applied_look != Some(look) {
            style::apply(&ctx, look);
            self.applied_look = Some(look);
        }
        // In a browser the background jobs share the page's one thread: 40 % of a frame
        // (a slow software renderer's long frames give them more time, not less).
        let budget = (0.4 * self.frame_stats.interval_secs).clamp(0.008, 0.1);
        crate::work::pump_background(std::time::Duration::from_secs_f64(budget));
        self.poll_training();
        self.player.collect();
        self.shortcuts(&ctx);
        self.open_dropped(&ctx);

        self.cached_region(ui, "status", status::status_ui);
        if self.settings.teach.formulas {
            formulas::formulas_ui(self, ui);
        }
        if self.settings.teach.lessons {
            lessons::lessons_ui(self, ui);
        }
        self.cached_region(ui, "controls", controls::controls_ui);
        // Explore docks where the training plots stand (its views are the larger plots).
        if !self.settings.presentation && !self.settings.teach.explore {
            plots::plots_ui(self, ui);
        }
        // Drawn from a picture while it stands still, like the other panels: its charts are
        // thousands of triangles for a software renderer.
        self.cached_region(ui, "explore", explore::explore_ui);
        egui::CentralPanel::default()
            .frame(style::unfilled(egui::Frame::central_panel(ui.style())))
            .show(ui, |ui| canvas::canvas_ui(self, ui));

        if self.help {
            help::help_ui(self, &ctx);
        }
        drop_hint(&ctx);
        #[cfg(target_arch = "wasm32")]
        web::publish(self);
        self.sync_training();
        drill::tick(self, &ctx);
        if self.drawing.is_none() {
            self.player
                .update(dt, &self.settings, &self.data, &self.train);
        }
        // Animate while playing, at most ~60 fps (about 28 when a CPU renders: lavapipe would
        // otherwise take the cores from training; a class needs 25); otherwise training's
        // events wake us.
        if self.player.playing || !self.train.paused {
            let cpu_renders = self.gpu.as_ref().is_some_and(|g| g.is_cpu);
            let interval_ms = if cpu_renders { 35 } else { 15 };
            ctx.request_repaint_after(std::time::Duration::from_millis(interval_ms));
        }
    }

    /// Runs `add` (which adds one region of the UI to `ui`'s layer) and draws what it added
    /// from a picture while it stands still (see `region_cache`).
    fn cached_region<R>(
        &mut self,
        ui: &mut egui::Ui,
        name: &'static str,
        add: impl FnOnce(&mut Self, &mut egui::Ui) -> R,
    ) -> R {
        let mark = region_cache::mark(ui.ctx(), ui.layer_id());
        let out = add(self, ui);
        if let Some(cache) = &mut self.region_cache {
            cache.region(ui.ctx(), name, mark);
        }
        out
    }

    /// The regions drawn from a picture on the last frame (tests).
    pub fn pictured_regions(&self) -> Vec<&'static str> {
        self.region_cache
            .as_ref()
            .map_or_else(Vec::new, region_cache::RegionCache::pictured)
    }

    /// Draws every region directly from now on (tests compare both ways).
    pub fn disable_region_cache(&mut self) {
        self.region_cache = None;
    }

    /// The particle followed through the reverse run (clicked on the canvas).
    pub fn followed(&self) -> Option<usize> {
        self.canvas.followed
    }

    /// The flow grid of the last finished computation (None before one).
    pub fn flow_grid(&self) -> Option<&crate::teach::mesh::Mesh> {
        self.canvas.mesh.result.as_ref()
    }

    /// Where the canvas was drawn on the last frame (None before the first).
    pub fn canvas_rect(&self) -> Option<egui::Rect> {
        self.canvas.rect
    }

    /// The body text size in use (tests: presentation mode enlarges it).
    pub fn body_size(ctx: &egui::Context) -> f32 {
        style::body_size(ctx)
    }
}

/// While files are dragged over the window: what dropping them does.
fn drop_hint(ctx: &egui::Context) {
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let rect = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop hint"),
    ));
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(170));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop points (.csv: x,y per line) or a network (.safetensors)",
        egui::FontId::proportional(24.0),
        egui::Color32::WHITE,
    );
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(secs) = self.exit_after_secs {
            let elapsed = self.started.elapsed().as_secs_f64();
            if self.steady_mark.is_none() && elapsed >= secs / 3.0 {
                self.steady_mark = Some((Instant::now(), self.train.step, self.frame_stats.frames));
            }
            if elapsed >= secs {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(secs - elapsed));
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if self.gpu.is_none()
            && let Some(rs) = frame.wgpu_render_state()
        {
            report_wgpu_errors(&rs.device);
            self.install_gpu(rs);
        }
        let start = Instant::now();
        self.frame_ui(ui);
        let work = frame.info().cpu_usage.map(f64::from);
        self.frame_stats.record(start.elapsed().as_secs_f64(), work);
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        // The panels draw no fill of their own (see `style::unfilled`).
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.drill.is_some() {
            return;
        }
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }

    fn on_exit(&mut self) {
        if self.exit_after_secs.is_some() {
            let frames = self.frame_stats.frames.max(1) as f64;
            // The CI log records how smooth the run was.
            eprintln!(
                "diffusion-playground: {} frames, mean frame time {:.1} ms \
                 (eframe's work {:.1} ms, our UI code {:.1} ms), training step {} \
                 ({:.0} samples/s lately)",
                self.frame_stats.frames,
                self.frame_stats.mean_ms(),
                1e3 * self.frame_stats.work_total / frames,
                1e3 * self.frame_stats.ui_total / frames,
                self.train.step,
                self.train.samples_per_sec
            );
            if let Some((at, step, frames)) = self.steady_mark {
                let secs = at.elapsed().as_secs_f64();
                eprintln!(
                    "diffusion-playground: over the last {secs:.1} s: training {:.0} samples/s, \
                     {:.1} fps",
                    self.train.step.saturating_sub(step) as f64 * self.settings.train.batch as f64
                        / secs,
                    self.frame_stats.frames.saturating_sub(frames) as f64 / secs
                );
            }
        }
    }
}

/// Reconfiguring the surface (a resize) waits for the queue to go idle and fails when the
/// training thread submits meanwhile, and wgpu's default handler would abort the app on it.
/// egui reconfigures on a later frame, so an error outside our own error scopes is reported
/// (each distinct message once) and the window lives on.
/// The WebGL2 path, and why where the page could have had WebGPU: a browser allows it only
/// on https or localhost.
fn web_gl_label() -> String {
    #[cfg(target_arch = "wasm32")]
    if let Some(why) = web::restarted_because() {
        return format!("WebGL2 ({why}; the page restarted on WebGL2)");
    }
    #[cfg(target_arch = "wasm32")]
    if !web_sys::window().is_some_and(|w| w.is_secure_context()) {
        return "WebGL2 (WebGPU needs https or localhost)".to_owned();
    }
    "WebGL2".to_owned()
}

fn report_wgpu_errors(device: &wgpu::Device) {
    let seen = Mutex::new(std::collections::HashSet::new());
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        let message = e.to_string();
        let mut seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() < 64 && seen.insert(message.clone()) {
            eprintln!("diffusion-playground: wgpu: {message}");
        }
    }));
}

/// How the window runs: as a person uses it, or closing itself, or drilling itself.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Close cleanly after this many seconds (CI runs the app under Xvfb and checks the exit
    /// code).
    pub exit_after_secs: Option<f64>,
    /// Drive the app by itself, one change every this many seconds, writing files into the
    /// folder (`drill`); the user's settings are then neither read nor saved.
    pub drill: Option<(f64, std::path::PathBuf)>,
}

/// Opens the window.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(run: RunOptions) -> anyhow::Result<()> {
    // Training and sampling run on rayon's pool: let those threads give way to the UI.
    // (An error means the pool exists already; it then keeps its priority.)
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rayon-{i}"))
        .start_handler(|_| crate::work::lower_priority())
        .build_global();
    // Vulkan / Metal / DX12 only: under GL the device gets WebGL2 limits and compute fails
    // (docs/architecture.md §6). WGPU_BACKEND still overrides.
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.instance_descriptor.backends =
        wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Diffusion playground")
            .with_app_id("diffusion-playground")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([720.0, 480.0]),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(setup),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "diffusion-playground",
        options,
        Box::new(move |cc| {
            let mut app = match &run.drill {
                // A drill starts from the defaults: the user's setup stays untouched.
                Some(_) => App::create(cc, Settings::default(), true),
                None => App::new(cc, None),
            };
            app.exit_after_secs = run.exit_after_secs;
            app.drill = run.drill.map(|(every, dir)| drill::Drill::new(every, dir));
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
