//! Everything the app remembers between runs (eframe persistence). GPU objects, threads and
//! trajectories are rebuilt at start and never saved.

use serde::{Deserialize, Serialize};

use crate::Point;
use crate::math::Schedule;
use crate::math::solvers::SamplerKind;
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
    pub arrows: Arrows,
    pub presentation: bool,
    pub dark: bool,
    /// Canvas zoom (1 shows about [-3.2, 3.2]²).
    pub zoom: f32,
    /// Where "Save weights" writes.
    pub weights_path: String,
    /// The teaching panels: formulas, lessons, the Explore window, export.
    pub teach: TeachSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: DataChoice::default(),
            csv_path: String::new(),
            schedule: ScheduleSettings::default(),
            train: TrainSettings::default(),
            sampler: SamplerSettings::default(),
            score_source: ScoreSource::Learned,
            forward_paths: ForwardPaths::Exact,
            particles: 8_000,
            speed: 1.0,
            auto_loop: true,
            show_data: true,
            show_trails: true,
            arrows: Arrows::Off,
            presentation: false,
            dark: true,
            zoom: 1.0,
            weights_path: "playground.safetensors".to_owned(),
            teach: TeachSettings::default(),
        }
    }
}

/// Largest particle count the slider offers.
pub const MAX_PARTICLES: usize = 100_000;
/// Largest sampler step count.
pub const MAX_STEPS: usize = 1000;

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

/// The Explore window's views (the tab shown is a setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExploreTab {
    #[default]
    Quality,
    Density,
    Memorisation,
    Guidance,
    WhyScore,
    Ablation,
}

impl ExploreTab {
    pub const ALL: [ExploreTab; 6] = [
        ExploreTab::Quality,
        ExploreTab::Density,
        ExploreTab::Memorisation,
        ExploreTab::Guidance,
        ExploreTab::WhyScore,
        ExploreTab::Ablation,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ExploreTab::Quality => "Quality vs steps",
            ExploreTab::Density => "Density",
            ExploreTab::Memorisation => "Memorisation",
            ExploreTab::Guidance => "Guidance",
            ExploreTab::WhyScore => "Why the score",
            ExploreTab::Ablation => "Ablation",
        }
    }
}
