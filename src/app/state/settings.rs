//! Everything the app remembers between runs (eframe persistence). GPU objects, threads and
//! trajectories are rebuilt at start and never saved.
//!
//! eframe keeps the settings as RON text under `eframe::APP_KEY`. That file is outside bytes:
//! [`Settings::restore`] turns whatever it holds into settings the app can run with, and a
//! notice when it could not use them as they were (unreadable text gives the defaults; values
//! out of range are brought back into the ranges the controls offer, [`Settings::sanitize`]).

use std::fmt::Debug;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::Point;
use crate::data::Placement;
use crate::math::solvers::SamplerKind;
use crate::math::{Process, Schedule};
use crate::teach::lessons::LessonCursor;
use crate::train::TrainSettings;

/// Which data the model learns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataChoice {
    /// A built-in dataset by its CLI name.
    BuiltIn(String),
    /// A CSV file by its path.
    Csv(String),
    /// Points drawn with the mouse, in canvas (world) units, and their classes (the colours
    /// they were painted in; empty for a drawing without them).
    Drawn(Vec<Point>, Vec<u32>),
}

impl Default for DataChoice {
    fn default() -> Self {
        DataChoice::BuiltIn("swiss-roll".to_owned())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleKind {
    #[default]
    Linear,
    Cosine,
    Constant,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 3] = [
        ScheduleKind::Linear,
        ScheduleKind::Cosine,
        ScheduleKind::Constant,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ScheduleKind::Linear => "linear",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Constant => "constant (OU)",
        }
    }
}

/// The schedule sliders; every kind keeps its values while another is selected.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleSettings {
    pub kind: ScheduleKind,
    pub beta_min: f64,
    pub beta_max: f64,
    pub beta_cap: f64,
    pub beta_constant: f64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Linear,
            beta_min: 0.1,
            beta_max: 20.0,
            beta_cap: 20.0,
            beta_constant: 8.0,
        }
    }
}

impl ScheduleSettings {
    pub fn schedule(&self) -> Schedule {
        match self.kind {
            ScheduleKind::Linear => Schedule::Linear {
                beta_min: self.beta_min,
                beta_max: self.beta_max.max(self.beta_min),
            },
            ScheduleKind::Cosine => Schedule::Cosine {
                beta_cap: self.beta_cap,
            },
            ScheduleKind::Constant => Schedule::Constant {
                beta: self.beta_constant,
            },
        }
    }
}

/// What drives the reverse process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoreSource {
    /// The network being trained (its EMA weights).
    #[default]
    Learned,
    /// The exact score of the training points: the "ideal denoiser", which memorises them.
    Exact,
}

/// How the forward view moves the particles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardPaths {
    /// `x_t = α x₀ + σ ε` with one ε per particle: smooth, exact.
    #[default]
    Exact,
    /// Euler–Maruyama paths of the SDE: each particle jitters its own way.
    EulerMaruyama,
}

/// Which score arrows the canvas shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arrows {
    #[default]
    Off,
    Learned,
    Exact,
    Both,
}

impl Arrows {
    pub const ALL: [Arrows; 4] = [Arrows::Off, Arrows::Learned, Arrows::Exact, Arrows::Both];

    pub fn label(self) -> &'static str {
        match self {
            Arrows::Off => "off",
            Arrows::Learned => "learned",
            Arrows::Exact => "exact",
            Arrows::Both => "both",
        }
    }
}

/// The reverse sampler: the chosen one, plus the last stochastic and deterministic choices
/// so that the SDE/ODE toggle flips between two samplers the user picked.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerSettings {
    pub kind: SamplerKind,
    pub last_sde: SamplerKind,
    pub last_ode: SamplerKind,
    pub steps: usize,
    pub eta: f64,
    pub seed: u32,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            kind: SamplerKind::Em,
            last_sde: SamplerKind::Em,
            last_ode: SamplerKind::Heun,
            steps: 100,
            eta: 0.0,
            seed: 1,
        }
    }
}

impl SamplerSettings {
    /// Whether the sampler injects noise (DDIM with η > 0 counts as an SDE).
    pub fn is_sde(&self) -> bool {
        self.kind.is_stochastic() || (self.kind == SamplerKind::Ddim && self.eta > 0.0)
    }

    /// Selects a sampler and remembers it for its family.
    pub fn select(&mut self, kind: SamplerKind) {
        self.kind = kind;
        if self.is_sde() {
            self.last_sde = kind;
        } else if kind != SamplerKind::Langevin {
            self.last_ode = kind;
        }
    }

    /// The stochastic sampler of the SDE/ODE pair: the one running, or the one the toggle
    /// switches to.
    pub fn sde_choice(&self) -> SamplerKind {
        if self.is_sde() {
            self.kind
        } else {
            self.last_sde
        }
    }

    /// The deterministic solver of the pair.
    pub fn ode_choice(&self) -> SamplerKind {
        if self.is_sde() || self.kind == SamplerKind::Langevin {
            self.last_ode
        } else {
            self.kind
        }
    }

    /// Picks the SDE sampler of the pair; it runs at once if the SDE side is running.
    pub fn choose_sde(&mut self, kind: SamplerKind) {
        self.last_sde = kind;
        if self.is_sde() {
            self.kind = kind;
            if kind == SamplerKind::Ddim && self.eta == 0.0 {
                self.eta = 1.0;
            }
        }
    }

    /// Picks the ODE solver of the pair; it runs at once if the ODE side is running.
    pub fn choose_ode(&mut self, kind: SamplerKind) {
        self.last_ode = kind;
        if !self.is_sde() {
            self.kind = kind;
            if kind == SamplerKind::Ddim {
                self.eta = 0.0;
            }
        }
    }

    /// Runs the SDE side of the pair (`true`) or the ODE side; nothing else changes.
    pub fn set_family(&mut self, sde: bool) {
        if sde != self.is_sde() {
            self.toggle_family();
        }
    }

    /// The SDE/ODE toggle: switches to the remembered sampler of the other family.
    pub fn toggle_family(&mut self) {
        let to_ode = self.is_sde();
        self.kind = if to_ode { self.last_ode } else { self.last_sde };
        if self.kind == SamplerKind::Ddim {
            // DDIM is an ODE at η = 0 and stochastic above it.
            self.eta = if to_ode { 0.0 } else { 1.0 };
        }
    }
}

/// The whole saved state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub data: DataChoice,
    /// Where the (standardised) data is put: standard but in the lesson on why it matters.
    pub placement: Placement,
    /// Text of the CSV path field.
    pub csv_path: String,
    pub schedule: ScheduleSettings,
    pub train: TrainSettings,
    pub sampler: SamplerSettings,
    pub score_source: ScoreSource,
    pub forward_paths: ForwardPaths,
    pub particles: usize,
    /// Playback speed: 1 plays one direction in about four seconds.
    pub speed: f32,
    /// Play forward, then reverse, then again, without anyone touching anything.
    pub auto_loop: bool,
    pub show_data: bool,
    pub show_trails: bool,
    /// The deforming grid: lines at t = 1 carried by the ODE flow to the time shown.
    pub show_mesh: bool,
    /// Numbers on the canvas grid.
    pub axis_ticks: bool,
    pub arrows: Arrows,
    pub presentation: bool,
    pub dark: bool,
    /// Canvas zoom (1 shows about [-3.2, 3.2]²).
    pub zoom: f32,
    /// Where "Save weights" writes.
    pub weights_path: String,
    /// The teaching panels: formulas, lessons, the Explore panel, export.
    pub teach: TeachSettings,
    /// The user's own setup from before a lesson or a view's preset first changed it
    /// ("Back to my setup" restores it). Saved with the rest, so a drawing outlives a lesson
    /// and a restart.
    pub my_setup: Option<Box<Settings>>,
}

/// Particles on the canvas at first start. A browser computes the reverse runs on the page's
/// one thread, beside training: half as many there give the first run in half the time.
const DEFAULT_PARTICLES: usize = if cfg!(target_arch = "wasm32") {
    4_000
} else {
    8_000
};

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: DataChoice::default(),
            placement: Placement::STANDARD,
            csv_path: String::new(),
            schedule: ScheduleSettings::default(),
            train: TrainSettings::default(),
            sampler: SamplerSettings::default(),
            score_source: ScoreSource::Learned,
            forward_paths: ForwardPaths::Exact,
            particles: DEFAULT_PARTICLES,
            speed: 1.0,
            auto_loop: true,
            show_data: true,
            show_trails: true,
            show_mesh: false,
            axis_ticks: false,
            arrows: Arrows::Off,
            presentation: false,
            dark: true,
            zoom: 1.0,
            weights_path: "playground.safetensors".to_owned(),
            teach: TeachSettings::default(),
            my_setup: None,
        }
    }
}

/// The samplers the SDE side of the pair offers (DDIM with η > 0).
pub const SDE_SAMPLERS: [SamplerKind; 5] = [
    SamplerKind::Em,
    SamplerKind::Ddpm,
    SamplerKind::Ddim,
    SamplerKind::Pc,
    SamplerKind::Langevin,
];
/// The solvers the ODE side offers (DDIM with η = 0).
pub const ODE_SOLVERS: [SamplerKind; 5] = [
    SamplerKind::OdeEuler,
    SamplerKind::Heun,
    SamplerKind::Rk4,
    SamplerKind::Ddim,
    SamplerKind::Dpm2m,
];

/// A sampler's name without its family (the pair says which side it is on).
pub fn short_label(kind: SamplerKind) -> &'static str {
    match kind {
        SamplerKind::Em => "Euler–Maruyama",
        SamplerKind::OdeEuler => "Euler",
        SamplerKind::Heun => "Heun",
        SamplerKind::Rk4 => "RK4",
        SamplerKind::Ddpm => "DDPM ancestral",
        SamplerKind::Ddim => "DDIM",
        SamplerKind::Dpm2m => "DPM-Solver++(2M)",
        SamplerKind::Pc => "predictor–corrector",
        SamplerKind::Langevin => "Langevin at t_min",
    }
}

/// A sampler's shortest name, for the canvas's toolbar.
pub fn tag(kind: SamplerKind) -> &'static str {
    match kind {
        SamplerKind::Em => "EM",
        SamplerKind::OdeEuler => "Euler",
        SamplerKind::Heun => "Heun",
        SamplerKind::Rk4 => "RK4",
        SamplerKind::Ddpm => "DDPM",
        SamplerKind::Ddim => "DDIM",
        SamplerKind::Dpm2m => "DPM++",
        SamplerKind::Pc => "PC",
        SamplerKind::Langevin => "Langevin",
    }
}

/// Largest particle count the slider offers.
pub const MAX_PARTICLES: usize = 100_000;
/// Largest sampler step count.
pub const MAX_STEPS: usize = 1000;

// The ranges the controls offer; a stored value outside them is brought back (`sanitize`).
pub const BETA_MIN_RANGE: RangeInclusive<f64> = 0.01..=5.0;
pub const BETA_MAX_RANGE: RangeInclusive<f64> = 0.2..=50.0;
pub const BETA_CAP_RANGE: RangeInclusive<f64> = 1.0..=1000.0;
pub const BETA_CONSTANT_RANGE: RangeInclusive<f64> = 0.1..=50.0;
pub const PARTICLES_RANGE: RangeInclusive<usize> = 500..=MAX_PARTICLES;
pub const SPEED_RANGE: RangeInclusive<f32> = 0.1..=4.0;
pub const ZOOM_RANGE: RangeInclusive<f32> = 0.3..=4.0;
pub const LR_RANGE: RangeInclusive<f32> = 1e-5..=1e-1;
/// Largest batch the controls offer.
pub const MAX_APP_BATCH: usize = 4096;
/// Largest network the app trains. A loaded weights file may be wider or deeper than the
/// controls offer; a stored network far beyond that (the config allows width 4096 × depth
/// 32, half a billion parameters) would take the machine's memory.
pub const MAX_APP_PARAMS: usize = 1 << 24;
/// Most characters of a parse error a notice quotes.
const MAX_ERROR_CHARS: usize = 200;

impl Settings {
    /// The process the network learns and the canvas shows (VP-SDE or flow matching).
    pub fn process(&self) -> Process {
        self.train.net.process
    }

    /// Switches the process; flow matching predicts the velocity (the Eps slot), so another
    /// parameterization, meaningful only on VP, goes back to ε.
    pub fn set_process(&mut self, process: Process) {
        self.train.net.process = process;
        if process == Process::Fm {
            self.train.net.param = crate::nn::Parameterization::Eps;
        }
    }

    /// Parses the text eframe stored (RON, as `eframe::set_value` writes it). Only the
    /// syntax and the types are checked here; see [`Settings::sanitize`] for the values.
    pub fn from_stored(text: &str) -> Result<Settings, String> {
        ron::from_str(text).map_err(|e| e.to_string())
    }

    /// The text eframe stores (what `eframe::set_value` writes).
    pub fn to_stored(&self) -> Result<String, String> {
        ron::ser::to_string(self).map_err(|e| e.to_string())
    }

    /// The settings from what eframe stored (`None`: nothing yet, the first run), and a notice
    /// for the user when they could not be used as they were: text that does not parse gives
    /// the defaults; values out of range are brought back ([`Settings::sanitize`]). Never
    /// panics, whatever the text.
    pub fn restore(stored: Option<&str>) -> (Settings, Option<String>) {
        let Some(text) = stored else {
            return (Settings::default(), None);
        };
        match Settings::from_stored(text) {
            Err(e) => {
                let mut reason: String = e.chars().take(MAX_ERROR_CHARS).collect();
                if reason.len() < e.len() {
                    reason.push('…');
                }
                let notice =
                    format!("The saved settings could not be read ({reason}); using the defaults.");
                (Settings::default(), Some(notice))
            }
            Ok(mut settings) => {
                let fixes = settings.sanitize();
                let notice = (!fixes.is_empty()).then(|| {
                    format!(
                        "Saved settings out of range were reset: {}.",
                        fixes.join(", ")
                    )
                });
                (settings, notice)
            }
        }
    }

    /// Brings values that a stored file may hold but the app cannot use back into the ranges
    /// the controls offer: a number out of range goes to the nearest end, NaN to its default;
    /// a network the trainer would refuse, or one too large for the app
    /// ([`MAX_APP_PARAMS`]), becomes the default network; the sampler families and the
    /// lesson are made consistent. Returns what it changed, one phrase each
    /// (`particles 0 → 500`); empty when nothing was wrong. Afterwards the schedule and the
    /// training config validate.
    pub fn sanitize(&mut self) -> Vec<String> {
        let d = Settings::default();
        let mut fixes = Vec::new();
        let f = &mut fixes;
        let s = &mut self.schedule;
        bring_into(
            f,
            "β_min",
            &mut s.beta_min,
            BETA_MIN_RANGE,
            d.schedule.beta_min,
        );
        bring_into(
            f,
            "β_max",
            &mut s.beta_max,
            BETA_MAX_RANGE,
            d.schedule.beta_max,
        );
        bring_into(
            f,
            "β cap",
            &mut s.beta_cap,
            BETA_CAP_RANGE,
            d.schedule.beta_cap,
        );
        let constant = d.schedule.beta_constant;
        bring_into(f, "β", &mut s.beta_constant, BETA_CONSTANT_RANGE, constant);

        let t = &mut self.train;
        let net_problem = match t.net.validate() {
            Err(e) => Some(e.to_string()),
            Ok(()) if t.net.num_params() > MAX_APP_PARAMS => Some(format!(
                "{} parameters, more than the app's {MAX_APP_PARAMS}",
                t.net.num_params()
            )),
            Ok(()) => None,
        };
        if let Some(problem) = net_problem {
            f.push(format!("network ({problem}) → the default"));
            t.net = d.train.net.clone();
        }
        bring_into(f, "learning rate", &mut t.lr, LR_RANGE, d.train.lr);
        bring_into(f, "batch", &mut t.batch, 1..=MAX_APP_BATCH, d.train.batch);

        let s = &mut self.sampler;
        bring_into(f, "steps", &mut s.steps, 1..=MAX_STEPS, d.sampler.steps);
        bring_into(f, "η", &mut s.eta, 0.0..=1.0, d.sampler.eta);
        // The SDE/ODE toggle flips between the two; each must be of its family.
        if !(s.last_sde.is_stochastic() || s.last_sde == SamplerKind::Ddim) {
            f.push(format!(
                "last SDE sampler {:?} → {:?}",
                s.last_sde, d.sampler.last_sde
            ));
            s.last_sde = d.sampler.last_sde;
        }
        if s.last_ode.is_stochastic() {
            f.push(format!(
                "last ODE sampler {:?} → {:?}",
                s.last_ode, d.sampler.last_ode
            ));
            s.last_ode = d.sampler.last_ode;
        }

        bring_into(
            f,
            "particles",
            &mut self.particles,
            PARTICLES_RANGE,
            d.particles,
        );
        bring_into(f, "speed", &mut self.speed, SPEED_RANGE, d.speed);
        bring_into(f, "zoom", &mut self.zoom, ZOOM_RANGE, d.zoom);
        let lesson = self.teach.lesson.clamped();
        if lesson != self.teach.lesson {
            f.push("lesson → the last one".to_owned());
            self.teach.lesson = lesson;
        }
        if !self.placement.is_valid() {
            f.push("data placement → standard".to_owned());
            self.placement = Placement::STANDARD;
        }
        // The kept setup is checked like the rest; it keeps no setup of its own.
        if let Some(mine) = &mut self.my_setup {
            if mine.my_setup.take().is_some() {
                f.push("your setup's own kept setup → none".to_owned());
            }
            f.extend(
                mine.sanitize()
                    .into_iter()
                    .map(|fix| format!("your setup: {fix}")),
            );
        }
        fixes
    }
}

/// Puts `value` into `range`: the nearest end when outside, `default` when it is not a
/// number (NaN), and says so in `fixes`.
fn bring_into<T: PartialOrd + Copy + Debug>(
    fixes: &mut Vec<String>,
    name: &str,
    value: &mut T,
    range: RangeInclusive<T>,
    default: T,
) {
    let v = *value;
    let fixed = if v.partial_cmp(&v).is_none() {
        default
    } else if v < *range.start() {
        *range.start()
    } else if v > *range.end() {
        *range.end()
    } else {
        return;
    };
    fixes.push(format!("{name} {v:?} → {fixed:?}"));
    *value = fixed;
}

/// Which teaching panels are open and where the tour is (saved between runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeachSettings {
    pub formulas: bool,
    pub lessons: bool,
    pub lesson: LessonCursor,
    pub explore: bool,
    pub tab: ExploreTab,
    /// Where exports (PNG, GIF, CSV) are written.
    pub export_dir: String,
}

impl Default for TeachSettings {
    fn default() -> Self {
        Self {
            formulas: false,
            lessons: false,
            lesson: LessonCursor::default(),
            explore: false,
            tab: ExploreTab::default(),
            export_dir: "exports".to_owned(),
        }
    }
}

/// The Explore panel's views (the tab shown is a setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExploreTab {
    #[default]
    Quality,
    Density,
    Memorisation,
    Guidance,
    WhyScore,
    Ablation,
    Paths,
}

impl ExploreTab {
    pub const ALL: [ExploreTab; 7] = [
        ExploreTab::Quality,
        ExploreTab::Density,
        ExploreTab::Memorisation,
        ExploreTab::Guidance,
        ExploreTab::WhyScore,
        ExploreTab::Ablation,
        ExploreTab::Paths,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ExploreTab::Quality => "Quality vs steps",
            ExploreTab::Density => "Density",
            ExploreTab::Memorisation => "Memorisation",
            ExploreTab::Guidance => "Guidance",
            ExploreTab::WhyScore => "Why the score",
            ExploreTab::Ablation => "Ablation",
            ExploreTab::Paths => "Straight paths",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::train_config;

    /// What a user's machine could hold: each field at a value no control would leave there.
    const ABSURD: &str = "(schedule: (kind: Linear, beta_min: -1.0, beta_max: NaN, beta_cap: inf, \
        beta_constant: 0.0), train: (net: (width: 4096, depth: 32, activation: Silu, \
        embedding: Sinusoidal(dim: 3), param: Eps), lr: NaN, batch: 0, weighting: Uniform, \
        seed: 7, backend: Cpu), sampler: (kind: Heun, last_sde: Rk4, last_ode: Langevin, \
        steps: 0, eta: -inf, seed: 3), particles: 1000000000000, speed: NaN, zoom: 0.0, \
        teach: (lesson: (index: 18446744073709551615)))";

    #[test]
    fn nothing_stored_gives_the_defaults_silently() {
        assert_eq!(Settings::restore(None), (Settings::default(), None));
    }

    #[test]
    fn saved_settings_come_back_unchanged() {
        let settings = Settings {
            particles: 2000,
            speed: 0.7,
            data: DataChoice::Drawn(vec![[0.1, -2.5], [1e-7, 3.0]], vec![0, 1]),
            ..Settings::default()
        };
        let text = settings.to_stored().unwrap();
        assert_eq!(Settings::restore(Some(&text)), (settings, None));
    }

    #[test]
    fn a_corrupted_file_gives_the_defaults_and_a_notice() {
        let good = Settings::default().to_stored().unwrap();
        let cut = &good[..good.len() / 2];
        let flipped = good.replacen("particles:", "particles:\"", 1);
        let long = format!("({}", "x".repeat(10_000));
        for text in [
            cut,
            "",
            "\u{0}\u{ff}garbage",
            &flipped,
            &long,
            "(sampler: (kind: Euler))",
        ] {
            let (settings, notice) = Settings::restore(Some(text));
            assert_eq!(settings, Settings::default(), "{text:?}");
            let notice = notice.unwrap();
            assert!(notice.contains("could not be read"), "{notice}");
            assert!(notice.chars().count() < 320, "{notice}");
        }
    }

    #[test]
    fn absurd_values_are_brought_into_range_with_a_notice() {
        let (settings, notice) = Settings::restore(Some(ABSURD));
        let notice = notice.unwrap();
        for part in [
            "β_min -1.0 → 0.01",
            "particles 1000000000000 → 100000",
            "network",
            "lesson",
        ] {
            assert!(notice.contains(part), "{part} missing from {notice}");
        }
        assert_eq!(settings.particles, MAX_PARTICLES);
        assert_eq!(settings.train.lr, TrainSettings::default().lr);
        assert_eq!(settings.train.net, TrainSettings::default().net);
        assert_eq!(settings.train.batch, 1);
        assert_eq!(settings.train.seed, 7, "valid values stay");
        assert_eq!(settings.sampler.steps, 1);
        assert_eq!(settings.sampler.eta, 0.0);
        assert_eq!(settings.sampler.last_sde, SamplerKind::Em);
        assert_eq!(settings.sampler.last_ode, SamplerKind::Heun);
        assert_eq!(settings.speed, 1.0);
        assert_eq!(settings.zoom, 0.3);
        assert!(settings.teach.lesson.is_last());
        let schedule = settings.schedule.schedule();
        train_config(&settings.train, schedule).validate().unwrap();
        // Once is enough: the result is in range.
        let mut again = settings.clone();
        assert!(again.sanitize().is_empty());
        assert_eq!(again, settings);
    }

    #[test]
    fn settings_the_controls_can_reach_need_no_fixes() {
        let mut settings = Settings::default();
        assert!(settings.sanitize().is_empty());
        let mut edge = Settings {
            particles: *PARTICLES_RANGE.end(),
            speed: *SPEED_RANGE.start(),
            zoom: *ZOOM_RANGE.end(),
            ..Settings::default()
        };
        edge.train.lr = *LR_RANGE.start();
        edge.train.batch = MAX_APP_BATCH;
        edge.sampler.steps = MAX_STEPS;
        edge.sampler.select(SamplerKind::Langevin);
        assert_eq!(edge.sanitize(), Vec::<String>::new());
    }
}
