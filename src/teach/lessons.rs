//! A guided tour: forward process → score → naive reversal → reverse SDE → PF-ODE → few-step
//! solvers → guidance. Each lesson is a preset the app applies (dataset, schedule, sampler,
//! steps, which views are on) and a few sentences to read aloud.

use serde::{Deserialize, Serialize};

use super::TeachError;
use crate::data::{BuiltIn, Placement};
use crate::math::Process;
use crate::math::schedule::Schedule;
use crate::math::solvers::{SamplerConfig, SamplerKind};

/// Most steps a preset may ask for (the app's slider range).
pub const MAX_STEPS: usize = 1000;
/// Largest guidance scale (the app's slider range).
pub const MAX_GUIDANCE: f64 = 10.0;

/// Which parts of the app a lesson turns on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewFlags {
    /// Play the forward process (else the reverse one).
    pub forward: bool,
    pub trajectories: bool,
    pub score_field: bool,
    /// Show the exact score beside the learned one.
    pub exact_score: bool,
    pub density: bool,
    pub quality_chart: bool,
    pub naive_reverse: bool,
    pub guidance: bool,
    /// The Ablation tab's three-weighting lesson.
    pub weighting: bool,
    /// The deforming grid on the canvas.
    pub flow_grid: bool,
    /// The Straight paths tab (diffusion's ODE beside flow matching).
    pub paths: bool,
}

const NO_VIEWS: ViewFlags = ViewFlags {
    forward: false,
    trajectories: false,
    score_field: false,
    exact_score: false,
    density: false,
    quality_chart: false,
    naive_reverse: false,
    guidance: false,
    weighting: false,
    flow_grid: false,
    paths: false,
};

/// The settings a lesson applies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Diffusion or flow matching (a change starts training over).
    pub process: Process,
    pub dataset: BuiltIn,
    pub schedule: Schedule,
    pub sampler: SamplerKind,
    pub steps: usize,
    pub t_min: f64,
    /// The class to guide toward, for datasets with labels.
    pub class: Option<u32>,
    pub guidance_scale: f64,
    pub views: ViewFlags,
    /// Where the data is put (standard but in the lesson on why that matters).
    pub placement: Placement,
}

const DEFAULT_SCHEDULE: Schedule = Schedule::Linear {
    beta_min: 0.1,
    beta_max: 20.0,
};

const BASE: Preset = Preset {
    process: Process::Vp,
    dataset: BuiltIn::SwissRoll,
    schedule: DEFAULT_SCHEDULE,
    sampler: SamplerKind::Em,
    steps: 200,
    t_min: 1e-3,
    class: None,
    guidance_scale: 0.0,
    views: NO_VIEWS,
    placement: Placement::STANDARD,
};

impl Preset {
    /// Checks that the app can apply it: a valid schedule, a known sampler, 1 ≤ steps ≤ 1000,
    /// t_min in (0, 1), a guidance scale in [0, 10], a class the dataset has (required when
    /// the guidance view is on).
    pub fn validate(&self) -> Result<(), TeachError> {
        let bad = |why: String| Err(TeachError::Invalid(format!("preset: {why}")));
        self.schedule.validate()?;
        if SamplerKind::from_name(self.sampler.name()) != Some(self.sampler) {
            return bad(format!("unknown sampler {:?}", self.sampler));
        }
        if !self.sampler.supports(self.process) {
            return bad(format!(
                "{} is not defined for {}",
                self.sampler.name(),
                self.process.label()
            ));
        }
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return bad(format!(
                "steps must be in 1..={MAX_STEPS} (got {})",
                self.steps
            ));
        }
        if !(self.t_min.is_finite() && self.t_min > 0.0 && self.t_min < 1.0) {
            return bad(format!("t_min must be in (0, 1) (got {})", self.t_min));
        }
        if !(0.0..=MAX_GUIDANCE).contains(&self.guidance_scale) {
            return bad(format!(
                "guidance scale must be in [0, {MAX_GUIDANCE}] (got {})",
                self.guidance_scale
            ));
        }
        match self.class {
            Some(c) if c >= self.dataset.num_classes() => {
                bad(format!("{} has no class {c}", self.dataset))
            }
            None if self.views.guidance => bad("guidance needs a class".into()),
            _ => Ok(()),
        }
    }

    /// The sampler settings of this preset.
    pub fn sampler_config(&self, seed: u32) -> SamplerConfig {
        SamplerConfig {
            kind: self.sampler,
            steps: self.steps,
            t_min: self.t_min,
            seed,
            ..SamplerConfig::default()
        }
    }
}

/// One step of the tour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lesson {
    pub title: &'static str,
    /// Two or three sentences.
    pub text: &'static str,
    pub preset: Preset,
}

/// The tour, in order.
pub static LESSONS: [Lesson; 10] = [
    Lesson {
        title: "1 · Forward: data into noise",
        text: "Press play and every point slides toward the origin while Gaussian noise piles \
               up: the forward SDE scales the data by α(t) and blurs it by σ(t). By t = 1 the \
               swiss roll is gone and the cloud looks like a standard normal. Nothing is \
               learned in this direction; it is fixed and exact.",
        preset: Preset {
            views: ViewFlags {
                forward: true,
                trajectories: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "2 · The score: arrows toward the data",
        text: "The score ∇log pₜ(x) is a field of arrows pointing to where noised data is \
               denser. At small t the arrows converge sharply on each blob; at large t they \
               all lean gently toward the centre. The network learns this field by guessing \
               the noise that was added, since the score is −ε/σ.",
        preset: Preset {
            dataset: BuiltIn::EightGaussians,
            views: ViewFlags {
                forward: true,
                score_field: true,
                exact_score: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "3 · Why not just run time backwards?",
        text: "Undo the forward drift without the score and the noise only inflates: this \
               is the inverse heat equation, which blows up every small error. The score \
               supplies exactly what the noise destroyed, and that is what makes the \
               reversal stable.",
        preset: Preset {
            steps: 500,
            views: ViewFlags {
                naive_reverse: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "4 · The reverse SDE",
        text: "Start from pure noise and follow the reverse SDE: its drift gains a term of \
               β times the score that pulls particles toward the data, while fresh noise \
               keeps them exploring. The paths are jagged, yet at every t the cloud matches \
               the forward process played backwards.",
        preset: Preset {
            steps: 500,
            views: ViewFlags {
                trajectories: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "5 · The probability-flow ODE",
        text: "Drop the noise and halve the score term: the probability-flow ODE carries the \
               same distribution along smooth, deterministic paths. Each noise point now maps \
               to one data point, and following a path backwards gives its exact likelihood.",
        preset: Preset {
            sampler: SamplerKind::Heun,
            steps: 50,
            views: ViewFlags {
                trajectories: true,
                density: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "6 · Flow matching: straight paths, fewer steps",
        text: "Flow matching trains the same network on straight lines from each data point to \
               its noise, xₜ = (1 − t)·x₀ + t·ε, to predict their velocity ε − x₀, and the ODE \
               then follows the average velocity. The flow grid shows the cloud contract and \
               re-expand on the way (its variance (1 − t)² + t² dips to one half), so the \
               paths themselves are not straight, yet Heun with 8 steps already lands on the \
               swiss roll. The Straight paths tab measures both processes from the same noise.",
        preset: Preset {
            process: Process::Fm,
            sampler: SamplerKind::Heun,
            steps: 8,
            views: ViewFlags {
                trajectories: true,
                flow_grid: true,
                paths: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "7 · Few-step solvers",
        text: "Smooth paths allow big steps with a higher-order solver. On the quality chart, \
               Heun and DPM-Solver++(2M) reach the data floor with about ten score \
               evaluations, about half what Euler–Maruyama needs, and Euler–Maruyama falls \
               apart when given only a handful of steps.",
        preset: Preset {
            sampler: SamplerKind::Dpm2m,
            steps: 10,
            views: ViewFlags {
                quality_chart: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "8 · Guidance",
        text: "Bayes' rule splits the conditional score into the unconditional score plus the \
               gradient of a classifier's log-probability. Turn that gradient up and samples \
               gather in the chosen class: at scale 0 all eight blobs appear, at 1 only the \
               chosen one, and above 1 the samples crowd into its most typical part.",
        preset: Preset {
            dataset: BuiltIn::EightGaussians,
            class: Some(0),
            guidance_scale: 3.0,
            views: ViewFlags {
                guidance: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
    Lesson {
        title: "9 · When t = 1 is not noise",
        text: "The forward process ends in N(0, I) only if the schedule is long enough for the \
               data. Here the swiss roll sits at x = 4 and β_max is 2: at t = 1 the points are \
               still off-centre, away from the rings of N(0, I) that every reverse run starts \
               from, and the samples come out wrong. Raise β_max to 20, or press \
               \"standard\" under Move the data, and the two clouds agree.",
        preset: Preset {
            schedule: Schedule::Linear {
                beta_min: 0.1,
                beta_max: 2.0,
            },
            sampler: SamplerKind::Heun,
            steps: 50,
            views: ViewFlags {
                forward: true,
                ..NO_VIEWS
            },
            placement: Placement {
                shift: 4.0,
                scale: 1.0,
            },
            ..BASE
        },
    },
    Lesson {
        title: "10 · Same loss, different samples",
        text: "Three networks learn one Gaussian with three loss weightings: the ε-loss, t drawn \
               ∝ 1/σ², and the plain 1/σ² weight. Their losses end almost equal, yet the \
               PF-ODE's samples are off by about 0.1, 0.5 and several units in covariance: the \
               last two starve large t of training, and the ODE carries that error to the data. \
               The reverse SDE's samples stay close for all three.",
        preset: Preset {
            views: ViewFlags {
                weighting: true,
                ..NO_VIEWS
            },
            ..BASE
        },
    },
];

/// Where the user is in the tour; saved with the app's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonCursor {
    index: usize,
}

impl LessonCursor {
    pub fn current(&self) -> &'static Lesson {
        &LESSONS[self.index.min(LESSONS.len() - 1)]
    }

    /// 0-based position and the number of lessons ("3 / 7" in the UI).
    pub fn position(&self) -> (usize, usize) {
        (self.index.min(LESSONS.len() - 1), LESSONS.len())
    }

    pub fn is_first(&self) -> bool {
        self.index == 0
    }

    pub fn is_last(&self) -> bool {
        // Not `index + 1`: a stored cursor may hold any number, usize::MAX included.
        self.index >= LESSONS.len() - 1
    }

    /// The cursor on an existing lesson (a stored one may point past the last).
    pub fn clamped(self) -> Self {
        Self {
            index: self.index.min(LESSONS.len() - 1),
        }
    }

    /// Moves on; false (and stays) at the last lesson.
    pub fn next_lesson(&mut self) -> bool {
        if self.is_last() {
            return false;
        }
        self.index += 1;
        true
    }

    /// Moves back; false (and stays) at the first lesson.
    pub fn previous_lesson(&mut self) -> bool {
        if self.is_first() {
            return false;
        }
        self.index = self.index.min(LESSONS.len() - 1) - 1;
        true
    }
}

/// Sentences in a text: runs ending in '.', '!' or '?' followed by a space or the end.
pub fn sentence_count(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_counted() {
        assert_eq!(sentence_count("One. Two! Three?"), 3);
        assert_eq!(sentence_count("At t = 0.5 it is. Done."), 2);
    }
}
