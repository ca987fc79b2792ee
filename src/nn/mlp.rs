//! The score network's shape (docs/architecture.md §4) and its one flat parameter buffer.
//!
//! The network maps `[x (2), emb(t)]` — and, for a class-conditional network
//! (`num_classes > 0`), a one-hot class `onehot(y)` — through `depth` hidden layers of `width`
//! units with one activation, then a linear layer to 2 outputs:
//!
//! ```text
//! h₀ = act(in · W₀ + b₀),   h_l = act(h_{l−1} · W_l + b_l),   o = h_{depth−1} · W_depth + b_depth
//! ```
//!
//! # Parameter layout (shared by the CPU and WGSL backends)
//!
//! One `Vec<f32>`. For each layer `l = 0..=depth` in order, with `fan_in → fan_out`:
//!
//! 1. `W_l`, **row-major `[fan_in][fan_out]`**: element `(k, j)` (input k → output j) sits at
//!    `weight_offset + k·fan_out + j`. Points are row vectors, `y = x·W + b`, so the inner
//!    loop of the forward GEMM runs along contiguous `j` (the SIMD direction), and each row of
//!    `W` is what input `k` contributes to every output.
//! 2. `b_l`, `[fan_out]`, right after its `W_l`.
//!
//! Layer 0 has `fan_in = 2 + E + K`, with E the embedding width and K the class inputs:
//!
//! - rows `0, 1` of `W₀` belong to `x`;
//! - rows `2 .. 2 + E` to the time embedding;
//! - for a conditional network (`num_classes = C > 0`), `K = C + 1` rows `2 + E + y`, one per
//!   class `y = 0..C`, and the last one, `2 + E + C`, for the null class ∅ of classifier-free
//!   guidance ("no label"). An unconditional network has `K = 0` and is laid out exactly as
//!   before classes existed. Since exactly one class input is 1, a class row is simply added to
//!   layer 0's pre-activation (`z₀ = [x, emb]·W₀[..2+E] + b₀ + W₀[2 + E + y]`): the backends
//!   gather it instead of multiplying a one-hot vector.
//!
//! The last layer has `fan_out = 2`. This is the transpose of PyTorch's `nn.Linear.weight`
//! (`[out][in]`); saved files keep our `[in][out]` shape (see `weights`).

use serde::{Deserialize, Serialize};

use super::NnError;
use crate::math::Process;
/// The stream of the counter-based RNG for weight initialisation (defined in `math::rng` with
/// the others).
pub use crate::math::rng::STREAM_INIT;
use crate::math::rng::uniform;

/// Largest width, depth and embedding size accepted: well past anything useful on 2D data,
/// small enough that a hostile config cannot ask for gigabytes.
pub const MAX_WIDTH: usize = 4096;
pub const MAX_DEPTH: usize = 32;
pub const MAX_EMBEDDING_DIM: usize = 1024;
/// Most classes of a conditional network (the datasets' limit).
pub const MAX_CLASSES: u32 = crate::data::MAX_CLASSES;

/// The hidden-layer nonlinearity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `z·sigmoid(z)` (swish).
    #[default]
    Silu,
    /// GELU in its **tanh approximation** (Hendrycks & Gimpel):
    /// `½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))`, which equals `z·sigmoid(2√(2/π)(z + 0.044715 z³))`.
    Gelu,
    /// `max(z, 0)`.
    Relu,
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Silu, Activation::Gelu, Activation::Relu];

    /// Name used on the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Gelu => "gelu",
            Activation::Relu => "relu",
        }
    }
}

/// How t enters the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Embedding {
    /// `dim` features: sines and cosines of t at geometric frequencies (see `embedding`).
    Sinusoidal { dim: usize },
    /// The raw scalar t as one input.
    Scalar,
}

impl Default for Embedding {
    fn default() -> Self {
        Embedding::Sinusoidal { dim: 32 }
    }
}

impl Embedding {
    /// Number of network inputs the embedding takes.
    pub fn dim(&self) -> usize {
        match *self {
            Embedding::Sinusoidal { dim } => dim,
            Embedding::Scalar => 1,
        }
    }

    /// Name used on the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Embedding::Sinusoidal { .. } => "sinusoidal",
            Embedding::Scalar => "scalar",
        }
    }
}

/// What the raw output `o` means (docs/architecture.md §3); every consumer converts it to ε̂.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Parameterization {
    /// `o = ε̂`.
    #[default]
    Eps,
    /// `o = ŝ`, the score: `ε̂ = −σ o`.
    Score,
    /// `o = x̂₀`, the denoised point: `ε̂ = (x_t − α o)/σ`.
    X0,
}

impl Parameterization {
    pub const ALL: [Parameterization; 3] = [
        Parameterization::Eps,
        Parameterization::Score,
        Parameterization::X0,
    ];

    /// ε̂ from the raw output at a point `x` with coefficients α, σ of its time.
    #[inline]
    pub fn eps_from_output(&self, o: [f32; 2], x: [f32; 2], alpha: f32, sigma: f32) -> [f32; 2] {
        match self {
            Parameterization::Eps => o,
            Parameterization::Score => [-sigma * o[0], -sigma * o[1]],
            Parameterization::X0 => [(x[0] - alpha * o[0]) / sigma, (x[1] - alpha * o[1]) / sigma],
        }
    }

    /// `∂ε̂/∂o` (the same factor for both coordinates): chains the DSM loss gradient back to
    /// the raw output.
    #[inline]
    pub fn output_gain(&self, alpha: f32, sigma: f32) -> f32 {
        match self {
            Parameterization::Eps => 1.0,
            Parameterization::Score => -sigma,
            Parameterization::X0 => -alpha / sigma,
        }
    }

    /// Name used on the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            Parameterization::Eps => "eps",
            Parameterization::Score => "score",
            Parameterization::X0 => "x0",
        }
    }
}

/// The network's shape. Serialised into saved weights, so it is all a loader needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Units per hidden layer.
    pub width: usize,
    /// Number of hidden layers (≥ 1); the network has `depth + 1` linear layers.
    pub depth: usize,
    pub activation: Activation,
    pub embedding: Embedding,
    pub param: Parameterization,
    /// Classes of a class-conditional network (labels `0..num_classes`, plus the null class ∅
    /// at index `num_classes`); 0 is an unconditional network. Absent from files written
    /// before classes existed (and not written when 0), hence the default.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_classes: u32,
    /// The path the network was trained on, hence what its output means: ε̂ (or the score or
    /// x̂₀, by `param`) on the VP-SDE, the velocity v under flow matching. Files written before
    /// flow matching lack it and are VP.
    #[serde(default, skip_serializing_if = "Process::is_vp")]
    pub process: Process,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            width: 128,
            depth: 3,
            activation: Activation::Silu,
            embedding: Embedding::default(),
            param: Parameterization::Eps,
            num_classes: 0,
            process: Process::Vp,
        }
    }
}

/// Where one linear layer lives in the flat buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerLayout {
    pub fan_in: usize,
    pub fan_out: usize,
    /// Start of `W` (`[fan_in][fan_out]`, row-major).
    pub weight_offset: usize,
    /// Start of `b` (`[fan_out]`).
    pub bias_offset: usize,
}

impl LayerLayout {
    pub fn weight_len(&self) -> usize {
        self.fan_in * self.fan_out
    }

    pub fn weight<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.weight_offset..self.weight_offset + self.weight_len()]
    }

    pub fn bias<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.bias_offset..self.bias_offset + self.fan_out]
    }
}

impl MlpConfig {
    /// The reference net of the issue and of `bench`: sinusoidal 64, GELU, 3 × 128
    /// (66→128→128→128→2, 82,944 forward FLOPs per sample).
    pub fn reference() -> Self {
        Self {
            width: 128,
            depth: 3,
            activation: Activation::Gelu,
            embedding: Embedding::Sinusoidal { dim: 64 },
            param: Parameterization::Eps,
            num_classes: 0,
            process: Process::Vp,
        }
    }

    /// Rejects shapes the code cannot run (or that would exhaust memory).
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |why: String| Err(NnError::InvalidConfig(why));
        if self.width == 0 || self.width > MAX_WIDTH {
            return bad(format!(
                "width must be in 1..={MAX_WIDTH} (got {})",
                self.width
            ));
        }
        if self.depth == 0 || self.depth > MAX_DEPTH {
            return bad(format!(
                "depth must be in 1..={MAX_DEPTH} (got {})",
                self.depth
            ));
        }
        if let Embedding::Sinusoidal { dim } = self.embedding
            && (dim < 2 || dim % 2 != 0 || dim > MAX_EMBEDDING_DIM)
        {
            return bad(format!(
                "sinusoidal embedding dim must be even and in 2..={MAX_EMBEDDING_DIM} (got {dim})"
            ));
        }
        if self.num_classes > MAX_CLASSES {
            return bad(format!(
                "num_classes must be at most {MAX_CLASSES} (got {})",
                self.num_classes
            ));
        }
        if self.process == Process::Fm && self.param != Parameterization::Eps {
            return bad(format!(
                "flow matching predicts the velocity directly; the {} parameterization is for \
                 the VP process only",
                self.param.name()
            ));
        }
        Ok(())
    }

    /// Inputs of layer 0 (its `fan_in`): x (2), the time embedding and, for a conditional
    /// network, the `num_classes + 1` one-hot class inputs.
    pub fn input_dim(&self) -> usize {
        self.feature_dim() + self.class_inputs()
    }

    /// The dense inputs `[x, emb(t)]` (2 + E): the rows of `W₀` that are multiplied.
    pub fn feature_dim(&self) -> usize {
        2 + self.embedding.dim()
    }

    /// Whether the network takes a class (`num_classes > 0`).
    pub fn is_conditional(&self) -> bool {
        self.num_classes > 0
    }

    /// One-hot class inputs: `num_classes + 1` (the classes and ∅), or 0 if unconditional.
    pub fn class_inputs(&self) -> usize {
        if self.is_conditional() {
            self.num_classes as usize + 1
        } else {
            0
        }
    }

    /// The index of the null class ∅ (`num_classes`).
    pub fn null_class(&self) -> u32 {
        self.num_classes
    }

    /// The row of `W₀` added for `class` (`None`, or a class outside `0..num_classes`, is ∅),
    /// or `None` for an unconditional network.
    #[inline]
    pub fn class_row(&self, class: Option<u32>) -> Option<usize> {
        self.is_conditional().then(|| {
            let y = class
                .filter(|&y| y < self.num_classes)
                .unwrap_or(self.num_classes);
            self.feature_dim() + y as usize
        })
    }

    /// The `depth + 1` linear layers and their offsets, in buffer order.
    pub fn layers(&self) -> Vec<LayerLayout> {
        let mut out = Vec::with_capacity(self.depth + 1);
        let mut offset = 0;
        for l in 0..=self.depth {
            let fan_in = if l == 0 { self.input_dim() } else { self.width };
            let fan_out = if l == self.depth { 2 } else { self.width };
            out.push(LayerLayout {
                fan_in,
                fan_out,
                weight_offset: offset,
                bias_offset: offset + fan_in * fan_out,
            });
            offset += fan_in * fan_out + fan_out;
        }
        out
    }

    /// Length of the flat parameter buffer.
    pub fn num_params(&self) -> usize {
        self.layers()
            .iter()
            .map(|l| l.weight_len() + l.fan_out)
            .sum()
    }

    /// Multiply-adds × 2 of one forward pass per sample (the figure the issue quotes). The
    /// class rows of a conditional network are gathered, not multiplied, so they do not count.
    pub fn forward_flops_per_sample(&self) -> usize {
        let class_len = self.class_inputs() * self.width;
        self.layers()
            .iter()
            .map(|l| 2 * l.weight_len())
            .sum::<usize>()
            - 2 * class_len
    }

    /// Forward + backward FLOPs per training sample: the backward pass costs two GEMMs per
    /// layer (dW and dX) except dX of the first layer, which nobody needs.
    pub fn train_flops_per_sample(&self) -> usize {
        3 * self.forward_flops_per_sample() - 2 * self.feature_dim() * self.width
    }

    /// Fresh parameters for `seed`: weights uniform in ±√(3·gain²/fan_in), i.e. variance
    /// gain²/fan_in (LeCun for the smooth activations, gain 1; Kaiming for ReLU, gain √2), so
    /// activations keep their scale through the layers. Biases start at 0. The output layer is
    /// scaled down by 10 so the first predictions are near 0 (the mean of ε), which keeps the
    /// first Adam steps calm. The class rows of `W₀` start at 0 (like biases, which they are:
    /// one per class), so a fresh conditional network is the fresh unconditional network of
    /// the same seed for every class, and layer 0's scale uses the dense `fan_in = 2 + E`.
    pub fn init_params(&self, seed: u32) -> Vec<f32> {
        let layers = self.layers();
        let mut params = vec![0.0f32; self.num_params()];
        let gain = match self.activation {
            Activation::Relu => std::f32::consts::SQRT_2,
            Activation::Silu | Activation::Gelu => 1.0,
        };
        for (l, layer) in layers.iter().enumerate() {
            let fan_in = if l == 0 {
                self.feature_dim()
            } else {
                layer.fan_in
            };
            let mut bound = gain * (3.0 / fan_in as f32).sqrt();
            if l == self.depth {
                bound *= 0.1;
            }
            let dense = fan_in * layer.fan_out;
            let w = &mut params[layer.weight_offset..layer.weight_offset + dense];
            for (i, v) in w.iter_mut().enumerate() {
                let u = uniform(seed, l as u32, i as u32, STREAM_INIT);
                *v = bound * (2.0 * u - 1.0);
            }
        }
        params
    }

    /// Checks that a buffer has this config's length.
    pub fn check_params(&self, params: &[f32]) -> Result<(), NnError> {
        let expected = self.num_params();
        if params.len() != expected {
            return Err(NnError::ParamLength {
                expected,
                got: params.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_net_has_the_quoted_size() {
        let cfg = MlpConfig::reference();
        assert_eq!(cfg.input_dim(), 66);
        assert_eq!(cfg.forward_flops_per_sample(), 82_944);
        assert_eq!(cfg.train_flops_per_sample(), 231_936);
        let layers = cfg.layers();
        assert_eq!(layers.len(), 4);
        assert_eq!((layers[0].fan_in, layers[0].fan_out), (66, 128));
        assert_eq!((layers[3].fan_in, layers[3].fan_out), (128, 2));
        assert_eq!(layers[1].weight_offset, 66 * 128 + 128);
        assert_eq!(
            cfg.num_params(),
            66 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 2 + 2
        );
    }

    #[test]
    fn init_is_seeded_and_scaled() {
        let cfg = MlpConfig::default();
        let a = cfg.init_params(1);
        assert_eq!(a, cfg.init_params(1));
        assert_ne!(a, cfg.init_params(2));
        let l1 = cfg.layers()[1];
        let w = l1.weight(&a);
        let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
        assert!(
            (var * l1.fan_in as f64 - 1.0).abs() < 0.05,
            "var·fan_in = {}",
            var * 128.0
        );
        assert!(l1.bias(&a).iter().all(|&b| b == 0.0));
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        let ok = MlpConfig::default();
        assert!(ok.validate().is_ok());
        for bad in [
            MlpConfig {
                width: 0,
                ..ok.clone()
            },
            MlpConfig {
                depth: 0,
                ..ok.clone()
            },
            MlpConfig {
                embedding: Embedding::Sinusoidal { dim: 3 },
                ..ok.clone()
            },
            MlpConfig {
                embedding: Embedding::Sinusoidal { dim: 0 },
                ..ok.clone()
            },
            MlpConfig {
                width: MAX_WIDTH + 1,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = MlpConfig::reference();
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<MlpConfig>(&json).unwrap(), cfg);
        // An unconditional config is written as before classes existed...
        assert!(!json.contains("num_classes"), "{json}");
        // ...and a conditional one keeps its classes.
        let cond = MlpConfig {
            num_classes: 3,
            ..cfg
        };
        let json = serde_json::to_string(&cond).unwrap();
        assert_eq!(serde_json::from_str::<MlpConfig>(&json).unwrap(), cond);
    }

    #[test]
    fn class_rows_follow_the_embedding_rows() {
        let base = MlpConfig {
            width: 8,
            depth: 2,
            embedding: Embedding::Sinusoidal { dim: 4 },
            ..MlpConfig::default()
        };
        let cond = MlpConfig {
            num_classes: 3,
            ..base.clone()
        };
        assert_eq!(base.class_row(Some(0)), None);
        assert_eq!((cond.feature_dim(), cond.input_dim()), (6, 10));
        assert_eq!(cond.class_row(Some(2)), Some(8));
        assert_eq!(cond.class_row(None), Some(9));
        assert_eq!(cond.class_row(Some(3)), Some(9), "out of range is ∅");
        assert_eq!(
            cond.num_params(),
            base.num_params() + 4 * 8,
            "four class rows of W₀"
        );
        assert_eq!(
            cond.forward_flops_per_sample(),
            base.forward_flops_per_sample()
        );
        assert_eq!(cond.train_flops_per_sample(), base.train_flops_per_sample());
        // Same dense weights as the unconditional net of the seed, zero class rows, and every
        // later layer shifted by the class rows.
        let (p, q) = (base.init_params(4), cond.init_params(4));
        let (lb, lc) = (base.layers(), cond.layers());
        assert_eq!(&p[..6 * 8], &q[..6 * 8]);
        assert!(q[6 * 8..10 * 8].iter().all(|&v| v == 0.0));
        for (a, b) in lb.iter().zip(&lc).skip(1) {
            assert_eq!(a.weight(&p), b.weight(&q));
        }
        assert!(
            MlpConfig {
                num_classes: MAX_CLASSES + 1,
                ..base
            }
            .validate()
            .is_err()
        );
    }

    /// A config saved before `num_classes` existed loads as unconditional.
    #[test]
    fn old_configs_load_unconditional() {
        let old = r#"{"width":24,"depth":2,"activation":"Gelu","embedding":{"Sinusoidal":{"dim":8}},"param":"Eps"}"#;
        let cfg: MlpConfig = serde_json::from_str(old).unwrap();
        assert_eq!(cfg.num_classes, 0);
        assert!(!cfg.is_conditional());
    }
}
