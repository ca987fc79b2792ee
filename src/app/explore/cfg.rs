//! Classifier-free guidance: a class-conditional network of its own, trained on the labelled
//! data with label dropout on a worker thread (the main training thread and its
//! unconditional network are left alone), then sampled with
//! ε̃ = (1 + w) ε̂(x, t | y) − w ε̂(x, t | ∅) as the class or the weight w changes.

use std::sync::Arc;

use egui::{Color32, RichText, Ui};

use super::labelled::{Labelled, colour, pick};
use super::{Inputs, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::jobs::Task;
use crate::app::settings::SamplerSettings;
use crate::math::solvers::SamplerConfig;
use crate::nn::{DEFAULT_CLASS_DROPOUT, NetModel, Trainer};
use crate::teach::guidance::{Guided, nearest_labels};
use crate::teach::lessons::MAX_GUIDANCE;
use crate::teach::{Finish, Progress, SampleStep, SamplingSweep, Sweep, TeachError};
use crate::train::{TrainSettings, train_config};

/// Labelled points the samples are classified against (nearest point's class).
const REFERENCE_POINTS: usize = 1000;
const PARTICLES: usize = 1000;
/// Optimiser steps between progress reports (and cancel checks).
const TICK: u64 = 25;

/// A trained class-conditional network and what it learned from.
#[derive(Clone)]
struct CondNet {
    model: Arc<NetModel>,
    /// The data's name, and its [`Labelled::id`].
    name: String,
    data_id: String,
    steps: u64,
    /// Which training this is (samples from an older network are stale).
    generation: u64,
}

/// Guided samples and their classes.
#[derive(Clone)]
struct Samples {
    samples: Vec<Point>,
    /// The nearest labelled point's class, per sample (the colours).
    labels: Vec<u32>,
    /// The fraction of the samples nearest to each class.
    fractions: Vec<f64>,
    class: Option<u32>,
    w: f64,
    generation: u64,
}

pub struct CfgView {
    /// Optimiser steps of the conditional network.
    pub steps: u64,
    /// `None` is the null class ∅ (the unconditional model).
    pub class: Option<u32>,
    /// The guidance weight w (0 is the conditional network).
    pub w: f64,
    train: Task<CondNet>,
    sample: Task<Samples>,
    /// The (class, w, generation) the shown or running samples are for.
    shown: Option<(Option<u32>, u64, u64)>,
    generations: u64,
}

impl Default for CfgView {
    fn default() -> Self {
        Self {
            steps: 3000,
            class: Some(0),
            w: 3.0,
            train: Task::default(),
            sample: Task::default(),
            shown: None,
            generations: 0,
        }
    }
}

fn class_text(class: Option<u32>) -> String {
    class.map_or_else(|| "∅ (unconditional)".to_owned(), |c| format!("class {c}"))
}

impl CfgView {
    /// Whether a class-conditional network has been trained.
    pub fn trained(&self) -> bool {
        self.train.result.is_some()
    }

    /// The shown samples: (class, w, fraction of the samples nearest to each class), once
    /// they are for the current network.
    pub fn result(&self) -> Option<(Option<u32>, f64, &[f64])> {
        let net = self.train.result.as_ref()?;
        self.sample
            .result
            .as_ref()
            .filter(|s| s.generation == net.generation)
            .map(|s| (s.class, s.w, s.fractions.as_slice()))
    }

    pub(super) fn ui(
        &mut self,
        ui: &mut Ui,
        inputs: &Inputs,
        data: &Labelled,
        sampler: &SamplerSettings,
        train: &TrainSettings,
    ) {
        self.train.poll(ui.ctx());
        self.sample.poll(ui.ctx());
        ui.label(
            RichText::new("Classifier-free guidance")
                .strong()
                .size(16.0),
        );
        note_ui(
            ui,
            "No classifier: one network ε̂(x, t | y) learns every class and, with the label \
             dropped 10 % of the time, the unconditional ε̂(x, t | ∅) as well. Sampling uses \
             ε̃ = (1 + w) ε̂(x, t | y) − w ε̂(x, t | ∅): w = 0 is the conditional network, larger \
             w pushes the samples further toward class y.",
        );
        let classes = data.classes;
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::Slider::new(&mut self.steps, 200..=20_000)
                    .logarithmic(true)
                    .text("steps"),
            );
            if self
                .train
                .controls_ui(ui, "Train a class-conditional network")
            {
                self.start_training(ui.ctx(), inputs, data, train);
            }
        });
        if self.train.is_running() {
            ui.label(
                RichText::new(format!(
                    "training a {classes}-class network on {} (CPU, label dropout {:.0} %); \
                     the main network keeps training",
                    data.name,
                    100.0 * DEFAULT_CLASS_DROPOUT
                ))
                .weak(),
            );
        }
        let Some(net) = &self.train.result else {
            return;
        };
        if net.data_id != data.id || net.model.num_classes() != classes {
            ui.label(
                RichText::new(format!(
                    "The conditional network was trained on other data ({}): train one for {}.",
                    net.name, data.name
                ))
                .color(Color32::from_rgb(255, 190, 90)),
            );
            return;
        }
        ui.label(
            RichText::new(format!(
                "conditional network: {} steps on {}, {} classes",
                net.steps,
                net.name,
                net.model.num_classes()
            ))
            .weak(),
        );
        let (model, generation) = (Arc::clone(&net.model), net.generation);
        if self.class.is_some_and(|c| c >= classes) {
            self.class = Some(0);
        }
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("cfg class", "class y")
                .selected_text(class_text(self.class))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.class, None, class_text(None));
                    for c in 0..classes {
                        ui.selectable_value(&mut self.class, Some(c), class_text(Some(c)));
                    }
                });
            ui.add_enabled(
                self.class.is_some(),
                egui::Slider::new(&mut self.w, 0.0..=MAX_GUIDANCE).text("guidance weight w"),
            );
        });
        let key = (self.class, self.w.to_bits(), generation);
        let mut start = self.sample.controls_ui(ui, "Sample with CFG");
        start |= self.shown != Some(key) && !self.sample.is_running();
        if start {
            self.shown = Some(key);
            self.start_sampling(ui.ctx(), inputs, data, sampler, model, generation);
        }
        let Some(s) = self
            .sample
            .result
            .as_ref()
            .filter(|s| s.generation == generation)
        else {
            return;
        };
        let side = canvas_side(ui, 2).min(380.0);
        ui.horizontal_top(|ui| {
            let (points, labels) = data.draw(REFERENCE_POINTS);
            let by_class = split(&points, &labels, classes);
            let layers: Vec<(&[Point], Color32)> =
                by_class.iter().map(|(p, c)| (p.as_slice(), *c)).collect();
            cloud_ui(ui, "labelled data", side, &layers);
            let guided = split(&s.samples, &s.labels, classes);
            let layers: Vec<(&[Point], Color32)> =
                guided.iter().map(|(p, c)| (p.as_slice(), *c)).collect();
            let caption = match s.class {
                Some(c) => format!("CFG · class {c} · w = {:.1}", s.w),
                None => "CFG · ∅ (unconditional)".to_owned(),
            };
            cloud_ui(ui, &caption, side, &layers);
        });
        let shares = s
            .fractions
            .iter()
            .enumerate()
            .map(|(c, f)| format!("{c}: {:.0} %", 100.0 * f))
            .collect::<Vec<_>>()
            .join(" · ");
        ui.label(format!("samples nearest to each class: {shares}"));
        if let Some(c) = s.class {
            let f = s.fractions.get(c as usize).copied().unwrap_or(0.0);
            ui.label(
                RichText::new(format!(
                    "CFG: {:.0} % of the samples are in class {c} at w = {:.1}",
                    100.0 * f,
                    s.w
                ))
                .strong(),
            );
        }
    }

    fn start_training(
        &mut self,
        ctx: &egui::Context,
        inputs: &Inputs,
        data: &Labelled,
        train: &TrainSettings,
    ) {
        let mut cfg = train_config(train, inputs.schedule);
        cfg.net.num_classes = data.classes;
        cfg.class_dropout = DEFAULT_CLASS_DROPOUT;
        // Short runs: an average over the last few hundred steps.
        cfg.ema_decay = 0.995;
        let n = inputs.data.len().max(REFERENCE_POINTS);
        let steps = self.steps;
        self.generations += 1;
        let generation = self.generations;
        let data = data.clone();
        // TICK steps per job step: in a browser the page keeps drawing while it trains.
        self.train.start_sweep(ctx, move || {
            // A built-in's draw of the data's size; loaded data: all of it.
            let (points, labels) = data.draw(n);
            Ok(CondTraining {
                trainer: Trainer::with_labels(cfg, points, labels)?,
                name: data.name.clone(),
                data_id: data.id.clone(),
                steps,
                generation,
                net: None,
            })
        });
    }

    fn start_sampling(
        &mut self,
        ctx: &egui::Context,
        inputs: &Inputs,
        data: &Labelled,
        sampler: &SamplerSettings,
        model: Arc<NetModel>,
        generation: u64,
    ) {
        let (class, w, schedule) = (self.class, self.w, inputs.schedule);
        let classes = data.classes;
        let data = data.clone();
        let cfg = SamplerConfig {
            kind: sampler.kind,
            steps: sampler.steps.min(200),
            eta: sampler.eta,
            seed: sampler.seed,
            ..SamplerConfig::default()
        };
        // One solver step per job step (a browser's frame loop keeps drawing meanwhile).
        self.sample.start_sweep(ctx, move || {
            let guided = Guided::new(model, class, w)?;
            let step: SampleStep = Box::new(move |sampler, x| sampler.step(&guided, x));
            let finish: Finish<Samples> = Box::new(move |samples| {
                let (points, labels) = data.draw(REFERENCE_POINTS);
                if points.is_empty() {
                    return Err(TeachError::Invalid(format!("{} has no points", data.name)));
                }
                let nearest = nearest_labels(&samples, &points, &labels);
                let mut counts = vec![0usize; classes as usize];
                for &l in &nearest {
                    if let Some(c) = counts.get_mut(l as usize) {
                        *c += 1;
                    }
                }
                let total = nearest.len().max(1) as f64;
                Ok(Samples {
                    fractions: counts.iter().map(|&c| c as f64 / total).collect(),
                    labels: nearest,
                    samples,
                    class,
                    w,
                    generation,
                })
            });
            Ok(SamplingSweep::new(schedule, cfg, PARTICLES, step, finish))
        });
    }
}

fn split(points: &[Point], labels: &[u32], classes: u32) -> Vec<(Vec<Point>, Color32)> {
    (0..classes)
        .map(|c| (pick(points, labels, c), colour(c)))
        .collect()
}

/// The class-conditional network in training, `TICK` steps per step; the network once done.
struct CondTraining {
    trainer: Trainer,
    name: String,
    data_id: String,
    steps: u64,
    generation: u64,
    net: Option<CondNet>,
}

impl Sweep for CondTraining {
    type Output = CondNet;

    fn advance(&mut self, progress: Progress<'_>) -> Result<bool, TeachError> {
        let left = self.steps - self.trainer.steps_done().min(self.steps);
        for _ in 0..left.min(TICK) {
            self.trainer.step()?;
        }
        progress.tick(self.trainer.steps_done() as f64 / self.steps.max(1) as f64)?;
        if self.trainer.steps_done() < self.steps {
            return Ok(false);
        }
        self.net = Some(CondNet {
            model: Arc::new(self.trainer.model(true)?),
            name: self.name.clone(),
            data_id: self.data_id.clone(),
            steps: self.steps,
            generation: self.generation,
        });
        Ok(true)
    }

    fn so_far(&self) -> Option<CondNet> {
        self.net.clone()
    }
}
