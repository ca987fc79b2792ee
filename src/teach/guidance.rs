//! Guidance: steering samples toward a class y.
//!
//! **Classifier guidance** (Dhariwal & Nichol 2021): by Bayes' rule p_t(x|y) ∝ p_t(y|x) p_t(x), so
//! `∇log p_t(x|y) = ∇log p_t(x) + ∇log p_t(y|x)`, the normalising constant p(y) dropping out.
//! A scale γ weighs the classifier: `s̃ = s + γ ∇log p_t(y|x)`, in ε terms
//! `ε̃ = ε̂ − σ γ ∇log p_t(y|x)`. γ = 0 is the unconditional model, γ = 1 the exact
//! conditional, γ > 1 sharpens toward the class. For a labelled mixture the classifier is exact:
//! `p_t(y|x) = Σ_{k∈y} w_k N_k(x) / Σ_k w_k N_k(x)` with the noised components N_k of
//! `math::oracle`, so `∇log p_t(y|x) = s_y(x) − s(x)`, the score of the class's sub-mixture
//! minus the full score.
//!
//! **Classifier-free guidance** (Ho & Salimans): one network trained with and without the
//! label, combined as `ε̃ = (1 + w) ε̂(x, y) − w ε̂(x, ∅)`. With exact scores it equals
//! classifier guidance with γ = 1 + w, which the tests check.

use std::sync::Arc;

use super::TeachError;
use crate::Point;
use crate::math::ScoreModel;
use crate::math::oracle::{Component, Oracle};
use crate::math::schedule::Schedule;
use crate::nn::NetModel;

/// The exact p_t(y|x) of a mixture whose components carry class labels.
#[derive(Clone, Debug)]
pub struct ExactClassifier {
    full: Oracle,
    /// Per class: the sub-mixture of its components and log of its share of the weight.
    classes: Vec<Option<(Oracle, f64)>>,
}

impl ExactClassifier {
    /// `labels[k]` is the class of component k.
    pub fn new(
        components: Vec<Component>,
        labels: &[u32],
        schedule: Schedule,
    ) -> Result<Self, TeachError> {
        schedule.validate()?;
        if components.is_empty() || labels.len() != components.len() {
            return Err(TeachError::Invalid(format!(
                "classifier: {} labels for {} components",
                labels.len(),
                components.len()
            )));
        }
        if components
            .iter()
            .any(|c| !(c.weight.is_finite() && c.weight > 0.0))
        {
            return Err(TeachError::Invalid(
                "classifier: component weights must be positive".into(),
            ));
        }
        let num = labels.iter().max().map_or(0, |&m| m as usize + 1);
        if num > crate::data::MAX_CLASSES as usize {
            return Err(TeachError::Invalid(format!(
                "classifier: {num} classes (at most {})",
                crate::data::MAX_CLASSES
            )));
        }
        let total: f64 = components.iter().map(|c| c.weight).sum();
        let classes = (0..num as u32)
            .map(|y| {
                let sub: Vec<Component> = components
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| **l == y)
                    .map(|(c, _)| *c)
                    .collect();
                (!sub.is_empty()).then(|| {
                    let share = sub.iter().map(|c| c.weight).sum::<f64>() / total;
                    (Oracle::new(sub, schedule), share.ln())
                })
            })
            .collect();
        Ok(Self {
            full: Oracle::new(components, schedule),
            classes,
        })
    }

    /// The exact classifier of labelled points (each a zero-width component).
    pub fn from_points(
        points: &[Point],
        labels: &[u32],
        schedule: Schedule,
    ) -> Result<Self, TeachError> {
        let components = points
            .iter()
            .map(|p| Component {
                weight: 1.0,
                mean: [p[0] as f64, p[1] as f64],
                cov: [[0.0; 2]; 2],
            })
            .collect();
        Self::new(components, labels, schedule)
    }

    pub fn num_classes(&self) -> u32 {
        self.classes.len() as u32
    }

    /// The unconditional mixture p_t.
    pub fn full(&self) -> &Oracle {
        &self.full
    }

    /// The class-conditional mixture p_t(·|y), if the class has components.
    pub fn class_oracle(&self, class: u32) -> Option<&Oracle> {
        self.classes
            .get(class as usize)
            .and_then(|c| c.as_ref().map(|(o, _)| o))
    }

    fn class_entry(&self, class: u32) -> Result<&(Oracle, f64), TeachError> {
        self.classes
            .get(class as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| TeachError::Invalid(format!("classifier: no class {class}")))
    }

    /// log p_t(y|x) = log π_y + log p_t(x|y) − log p_t(x).
    pub fn log_prob(&self, xs: &[Point], t: f64, class: u32) -> Result<Vec<f64>, TeachError> {
        let (sub, log_share) = self.class_entry(class)?;
        let full = self.full.log_density(xs, t);
        Ok(sub
            .log_density(xs, t)
            .iter()
            .zip(full)
            .map(|(c, f)| log_share + c - f)
            .collect())
    }

    /// ∇ log p_t(y|x) = s_y(x) − s(x).
    pub fn grad_log_prob(
        &self,
        xs: &[Point],
        t: f64,
        class: u32,
    ) -> Result<Vec<[f64; 2]>, TeachError> {
        let (sub, _) = self.class_entry(class)?;
        let full = self.full.score(xs, t);
        Ok(sub
            .score(xs, t)
            .iter()
            .zip(full)
            .map(|(c, f)| [c[0] - f[0], c[1] - f[1]])
            .collect())
    }
}

/// A score model steered by the exact classifier: `ε̃ = ε̂ − σ γ ∇log p_t(y|x)`.
pub struct ClassifierGuidance<'a> {
    base: &'a dyn ScoreModel,
    classifier: &'a ExactClassifier,
    class: u32,
    scale: f64,
}

impl<'a> ClassifierGuidance<'a> {
    /// `base` is any unconditional model (the network, or `classifier.full()`) under the
    /// classifier's schedule; `scale` is γ ≥ 0.
    pub fn new(
        base: &'a dyn ScoreModel,
        classifier: &'a ExactClassifier,
        class: u32,
        scale: f64,
    ) -> Result<Self, TeachError> {
        classifier.class_entry(class)?;
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(TeachError::Invalid(format!(
                "guidance scale must be finite and ≥ 0 (got {scale})"
            )));
        }
        Ok(Self {
            base,
            classifier,
            class,
            scale,
        })
    }
}

impl ScoreModel for ClassifierGuidance<'_> {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        self.base.eps(xs, t, out);
        // γ = 0 must be the unconditional model bit for bit, so the classifier is not touched.
        if self.scale == 0.0 {
            return;
        }
        let Ok(grad) = self.classifier.grad_log_prob(xs, t as f64, self.class) else {
            return; // unreachable: the class was checked in `new`
        };
        let c = self.classifier.full.schedule().sigma(t as f64) * self.scale;
        for (o, g) in out.iter_mut().zip(grad) {
            o[0] -= (c * g[0]) as f32;
            o[1] -= (c * g[1]) as f32;
        }
    }
}

/// A model that takes an optional class, `None` being the null class ∅ of classifier-free
/// guidance (the conditional network of `nn`, or [`ExactConditional`]).
pub trait ConditionalScoreModel: Sync {
    /// ε̂(x, t | class) for every point.
    fn eps_cond(&self, xs: &[Point], t: f32, class: Option<u32>, out: &mut [Point]);
    fn num_classes(&self) -> u32;
}

/// The exact conditional scores of a labelled mixture: `Some(y)` → p_t(·|y), `None` → p_t.
pub struct ExactConditional<'a>(pub &'a ExactClassifier);

impl ConditionalScoreModel for ExactConditional<'_> {
    fn eps_cond(&self, xs: &[Point], t: f32, class: Option<u32>, out: &mut [Point]) {
        match class.and_then(|y| self.0.class_oracle(y)) {
            Some(oracle) => oracle.eps(xs, t, out),
            None => self.0.full.eps(xs, t, out),
        }
    }

    fn num_classes(&self) -> u32 {
        self.0.num_classes()
    }
}

/// The class-conditional network of `nn` (`MlpConfig::num_classes > 0`); `None` is its null
/// class ∅. An unconditional network has 0 classes and returns ε̂(x, t) for every class.
impl ConditionalScoreModel for NetModel {
    fn eps_cond(&self, xs: &[Point], t: f32, class: Option<u32>, out: &mut [Point]) {
        self.eps_class(xs, t, class, out);
    }

    fn num_classes(&self) -> u32 {
        NetModel::num_classes(self)
    }
}

/// A conditional model with its class fixed, as a plain `ScoreModel`.
pub struct WithClass<'a> {
    pub model: &'a dyn ConditionalScoreModel,
    pub class: Option<u32>,
}

impl ScoreModel for WithClass<'_> {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        self.model.eps_cond(xs, t, self.class, out);
    }
}

/// Classifier-free guidance over two models: `ε̃ = (1 + w) ε̂_cond − w ε̂_uncond`.
pub struct ClassifierFree<'a> {
    cond: &'a dyn ScoreModel,
    uncond: &'a dyn ScoreModel,
    w: f64,
}

impl<'a> ClassifierFree<'a> {
    /// `w = 0` is the conditional model, `w = −1` the unconditional one.
    pub fn new(
        cond: &'a dyn ScoreModel,
        uncond: &'a dyn ScoreModel,
        w: f64,
    ) -> Result<Self, TeachError> {
        if !w.is_finite() {
            return Err(TeachError::Invalid(format!(
                "guidance weight must be finite (got {w})"
            )));
        }
        Ok(Self { cond, uncond, w })
    }
}

impl ScoreModel for ClassifierFree<'_> {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        self.cond.eps(xs, t, out);
        if self.w == 0.0 {
            return;
        }
        let mut un = vec![[0.0f32; 2]; xs.len()];
        self.uncond.eps(xs, t, &mut un);
        let (a, b) = ((1.0 + self.w) as f32, self.w as f32);
        for (o, u) in out.iter_mut().zip(&un) {
            o[0] = a * o[0] - b * u[0];
            o[1] = a * o[1] - b * u[1];
        }
    }
}

/// Classifier-free guidance of one conditional model that owns it (an `Arc`), so it can move
/// to a sampling thread (`Send + Sync + 'static` when `M` is): with `class = Some(y)`,
/// `ε̃ = (1 + w) ε̂(x, t | y) − w ε̂(x, t | ∅)`; with `class = None`, the unconditional
/// ε̂(x, t | ∅) whatever `w`. The app's class picker and guidance slider map onto `class` and
/// `w` (0…10).
pub struct Guided<M: ConditionalScoreModel + ?Sized> {
    model: Arc<M>,
    class: Option<u32>,
    w: f32,
}

impl<M: ConditionalScoreModel + ?Sized> Guided<M> {
    /// Checks that `class` is one of the model's classes and `w` is finite and ≥ 0.
    pub fn new(model: Arc<M>, class: Option<u32>, w: f64) -> Result<Self, TeachError> {
        if let Some(y) = class
            && y >= model.num_classes()
        {
            return Err(TeachError::Invalid(format!(
                "class {y}: the model has {} classes",
                model.num_classes()
            )));
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(TeachError::Invalid(format!(
                "guidance weight must be finite and ≥ 0 (got {w})"
            )));
        }
        Ok(Self {
            model,
            class,
            w: w as f32,
        })
    }

    pub fn model(&self) -> &Arc<M> {
        &self.model
    }

    pub fn class(&self) -> Option<u32> {
        self.class
    }

    pub fn weight(&self) -> f64 {
        self.w as f64
    }
}

impl<M: ConditionalScoreModel + Send + ?Sized> ScoreModel for Guided<M> {
    fn eps(&self, xs: &[Point], t: f32, out: &mut [Point]) {
        self.model.eps_cond(xs, t, self.class, out);
        // w = 0 is the conditional model bit for bit; no class means no guidance.
        if self.w == 0.0 || self.class.is_none() {
            return;
        }
        let mut un = vec![[0.0f32; 2]; xs.len()];
        self.model.eps_cond(xs, t, None, &mut un);
        let (a, b) = (1.0 + self.w, self.w);
        for (o, u) in out.iter_mut().zip(&un) {
            o[0] = a * o[0] - b * u[0];
            o[1] = a * o[1] - b * u[1];
        }
    }
}

/// The class of each sample by its nearest labelled reference point (for a mixture: the
/// component means, a nearest-mode classifier; for labelled data: 1-nearest-neighbour).
pub fn nearest_labels(samples: &[Point], reference: &[Point], labels: &[u32]) -> Vec<u32> {
    samples
        .iter()
        .map(|p| {
            reference
                .iter()
                .zip(labels)
                .map(|(q, &l)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2), l))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(u32::MAX, |(_, l)| l)
        })
        .collect()
}

/// The fraction of samples whose nearest reference point has label `class`.
pub fn class_accuracy(samples: &[Point], reference: &[Point], labels: &[u32], class: u32) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let hits = nearest_labels(samples, reference, labels)
        .iter()
        .filter(|&&l| l == class)
        .count();
    hits as f64 / samples.len() as f64
}

/// The component means of a mixture, as reference points for [`class_accuracy`].
pub fn means(components: &[Component]) -> Vec<Point> {
    components
        .iter()
        .map(|c| [c.mean[0] as f32, c.mean[1] as f32])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_classes() -> ExactClassifier {
        let c = |m: [f64; 2], w: f64| Component {
            weight: w,
            mean: m,
            cov: [[0.1, 0.0], [0.0, 0.1]],
        };
        ExactClassifier::new(
            vec![c([1.0, 0.0], 1.0), c([-1.0, 0.0], 2.0), c([0.0, 1.0], 1.0)],
            &[0, 1, 0],
            Schedule::default(),
        )
        .unwrap()
    }

    /// p_t(y|x) sums to 1 over classes, and its gradient matches finite differences.
    #[test]
    fn classifier_is_a_distribution_with_the_right_gradient() {
        let c = two_classes();
        let x = [[0.3f32, 0.2]];
        for t in [0.05, 0.5] {
            let p: f64 = (0..2).map(|y| c.log_prob(&x, t, y).unwrap()[0].exp()).sum();
            assert!((p - 1.0).abs() < 1e-12, "{p}");
            let h = 1e-3f32;
            let lp =
                |dx: f32, dy: f32| c.log_prob(&[[x[0][0] + dx, x[0][1] + dy]], t, 0).unwrap()[0];
            let fd = [
                (lp(h, 0.0) - lp(-h, 0.0)) / (2.0 * h as f64),
                (lp(0.0, h) - lp(0.0, -h)) / (2.0 * h as f64),
            ];
            let g = c.grad_log_prob(&x, t, 0).unwrap()[0];
            for d in 0..2 {
                assert!(
                    (fd[d] - g[d]).abs() < 1e-3 * (1.0 + g[d].abs()),
                    "{fd:?} {g:?}"
                );
            }
        }
        assert!(c.log_prob(&x, 0.5, 2).is_err());
    }

    #[test]
    fn rejects_bad_inputs() {
        let c = Component {
            weight: 1.0,
            mean: [0.0; 2],
            cov: [[0.0; 2]; 2],
        };
        assert!(ExactClassifier::new(vec![c], &[], Schedule::default()).is_err());
        assert!(ExactClassifier::new(vec![c], &[999], Schedule::default()).is_err());
        let cls = two_classes();
        assert!(ClassifierGuidance::new(cls.full(), &cls, 0, -1.0).is_err());
        assert!(ClassifierGuidance::new(cls.full(), &cls, 5, 1.0).is_err());
        assert!(ClassifierFree::new(cls.full(), cls.full(), f64::NAN).is_err());
    }

    #[test]
    fn nearest_labels_picks_the_closest_reference() {
        let l = nearest_labels(
            &[[0.9, 0.0], [-2.0, 0.1]],
            &[[1.0, 0.0], [-1.0, 0.0]],
            &[3, 7],
        );
        assert_eq!(l, vec![3, 7]);
        let acc = class_accuracy(
            &[[0.9, 0.0], [-2.0, 0.1]],
            &[[1.0, 0.0], [-1.0, 0.0]],
            &[3, 7],
            3,
        );
        assert_eq!(acc, 0.5);
    }
}
