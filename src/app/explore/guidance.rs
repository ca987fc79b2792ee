//! Guidance: classifier guidance with the exact Bayes classifier of a labelled dataset,
//! s̃ = s + γ ∇log p_t(y|x). Moving the class or the scale resamples at once. The labels come
//! from a built-in dataset, a CSV file's label column, or the colours of a drawing.

use egui::{Color32, RichText, Ui};

use super::cfg::CfgView;
use super::labelled::{Labelled, colour, pick};
use super::{Inputs, canvas_side, cloud_ui, note_ui};
use crate::Point;
use crate::app::jobs::Task;
use crate::app::settings::SamplerSettings;
use crate::math::ScoreModel;
use crate::math::solvers::SamplerConfig;
use crate::teach::guidance::{ClassifierGuidance, ExactClassifier, class_accuracy, nearest_labels};
use crate::teach::lessons::MAX_GUIDANCE;
use crate::teach::{Finish, SampleStep, SamplingSweep};
use crate::train::TrainSettings;

/// Labelled points the exact classifier is built from when the data is not a mixture.
const CLASSIFIER_POINTS: usize = 1000;
const PARTICLES: usize = 1000;

#[derive(Clone)]
struct Guided {
    samples: Vec<Point>,
    /// The nearest labelled point's class, per sample (the colours).
    labels: Vec<u32>,
    accuracy: f64,
    class: u32,
    scale: f64,
    model_label: &'static str,
}

pub struct GuidanceView {
    pub class: u32,
    pub scale: f64,
    /// The (class, scale, labelled data's id) the shown samples are for.
    shown: Option<(u32, u64, String)>,
    task: Task<Guided>,
    /// Classifier-free guidance with a class-conditional network of its own.
    pub cfg: CfgView,
}

impl Default for GuidanceView {
    fn default() -> Self {
        Self {
            class: 0,
            scale: 1.0,
            shown: None,
            task: Task::default(),
            cfg: CfgView::default(),
        }
    }
}

impl GuidanceView {
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        inputs: &Inputs,
        sampler: &SamplerSettings,
        train: &TrainSettings,
    ) {
        self.task.poll(ui.ctx());
        note_ui(
            ui,
            "Bayes' rule: ∇log p_t(x|y) = ∇log p_t(x) + ∇log p_t(y|x). The classifier here is \
             exact (the labelled data noised to time t); the scale γ multiplies its gradient: \
             0 is the unconditional model, 1 the true class-conditional, above 1 sharper.",
        );
        let Some(data) = Labelled::of(inputs) else {
            ui.label(
                RichText::new(
                    "Guidance needs labelled data with two or more classes: pick 8 gaussians, \
                     25 gaussians, moons, pinwheel or another dataset with classes, draw your \
                     own in two or more colours, or load a CSV file with a label column \
                     (x,y,label).",
                )
                .color(Color32::from_rgb(255, 190, 90)),
            );
            return;
        };
        let classes = data.classes;
        if data.builtin().is_none() {
            ui.label(
                RichText::new(format!(
                    "labels from {}: {classes} classes, {} points",
                    data.name,
                    inputs.data.len()
                ))
                .weak(),
            );
        }
        self.class = self.class.min(classes - 1);
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("guidance class", "class")
                .selected_text(self.class.to_string())
                .show_ui(ui, |ui| {
                    for c in 0..classes {
                        ui.selectable_value(&mut self.class, c, c.to_string());
                    }
                });
            ui.add(egui::Slider::new(&mut self.scale, 0.0..=MAX_GUIDANCE).text("guidance scale γ"));
        });
        let key = (self.class, self.scale.to_bits(), data.id.clone());
        let mut start = self.task.controls_ui(ui, "Sample with guidance");
        start |= self.shown.as_ref() != Some(&key) && !self.task.is_running();
        if start {
            self.shown = Some(key);
            self.start(ui.ctx(), inputs, &data, sampler);
        }
        if let Some(g) = &self.task.result {
            let side = canvas_side(ui, 2).min(380.0);
            ui.horizontal_top(|ui| {
                let (points, labels) = data.draw(CLASSIFIER_POINTS);
                let by_class: Vec<(Vec<Point>, Color32)> = (0..classes)
                    .map(|c| (pick(&points, &labels, c), colour(c)))
                    .collect();
                let layers: Vec<(&[Point], Color32)> =
                    by_class.iter().map(|(p, c)| (p.as_slice(), *c)).collect();
                cloud_ui(ui, "labelled data", side, &layers);
                let guided: Vec<(Vec<Point>, Color32)> = (0..classes)
                    .map(|c| (pick(&g.samples, &g.labels, c), colour(c)))
                    .collect();
                let layers: Vec<(&[Point], Color32)> =
                    guided.iter().map(|(p, c)| (p.as_slice(), *c)).collect();
                cloud_ui(
                    ui,
                    &format!("class {} · γ = {:.1} · {}", g.class, g.scale, g.model_label),
                    side,
                    &layers,
                );
            });
            ui.label(
                RichText::new(format!(
                    "{:.0} % of the samples are nearest to class {}",
                    100.0 * g.accuracy,
                    g.class
                ))
                .strong(),
            );
        }
        ui.separator();
        self.cfg.ui(ui, inputs, &data, sampler, train);
    }

    fn start(
        &mut self,
        ctx: &egui::Context,
        inputs: &Inputs,
        data: &Labelled,
        sampler: &SamplerSettings,
    ) {
        let (class, scale, schedule) = (self.class, self.scale, inputs.schedule);
        let data = data.clone();
        let learned = inputs.learned.clone();
        let cfg = SamplerConfig {
            kind: sampler.kind,
            steps: sampler.steps.min(200),
            eta: sampler.eta,
            seed: sampler.seed,
            ..SamplerConfig::default()
        };
        // One solver step per job step (a browser's frame loop keeps drawing meanwhile).
        self.task.start_sweep(ctx, move || {
            let (points, labels) = data.draw(CLASSIFIER_POINTS);
            if points.is_empty() {
                return Err(crate::teach::TeachError::Invalid(format!(
                    "{} has no points",
                    data.name
                )));
            }
            let classifier = match data.builtin().and_then(|b| b.mixture()) {
                Some(components) => {
                    let ids: Vec<u32> = (0..components.len() as u32).collect();
                    ExactClassifier::new(components, &ids, schedule)?
                }
                None => ExactClassifier::from_points(&points, &labels, schedule)?,
            };
            let model_label = match &learned {
                Some(_) => "learned + exact classifier",
                None => "exact score + classifier",
            };
            // The class and the scale are checked once, here.
            ClassifierGuidance::new(classifier.full(), &classifier, class, scale)?;
            let step: SampleStep = Box::new(move |sampler, x| {
                let base: &dyn ScoreModel = match &learned {
                    Some(m) => m.as_ref(),
                    None => classifier.full(),
                };
                if let Ok(guided) = ClassifierGuidance::new(base, &classifier, class, scale) {
                    sampler.step(&guided, x);
                }
            });
            let finish: Finish<Guided> = Box::new(move |samples| {
                Ok(Guided {
                    labels: nearest_labels(&samples, &points, &labels),
                    accuracy: class_accuracy(&samples, &points, &labels, class),
                    samples,
                    class,
                    scale,
                    model_label,
                })
            });
            Ok(SamplingSweep::new(schedule, cfg, PARTICLES, step, finish))
        });
    }
}
