//! The math of the VP-SDE, written as in docs/architecture.md §3.
//!
//! - `schedule`: β(t), its integral, α, σ, SNR and λ for the linear, cosine and constant
//!   schedules;
//! - `process`: VP-SDE or flow matching: the path α(t) x₀ + σ(t) ε and its exact marginals;
//! - `sde`: Euler–Maruyama steps of the forward SDE;
//! - `solvers`: every sampler (reverse SDE, PF-ODE solvers, DDPM, DDIM, DPM-Solver++,
//!   predictor–corrector, Langevin) and their time grids;
//! - `model`: `ScoreModel`, what the samplers evaluate (ε̂, hence the score);
//! - `oracle`: the exact score of a Gaussian mixture or a point set;
//! - `flow`: flow matching on the linear path: the exact velocity of a Gaussian mixture, and
//!   the score a velocity implies;
//! - `likelihood`: log-density along the PF-ODE (exact 2D divergence or Hutchinson);
//! - `metrics`: sliced Wasserstein-2 and energy distance;
//! - `rng`: the counter-based random numbers and their streams.

pub mod flow;
pub mod likelihood;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod process;
pub mod rng;
pub mod schedule;
pub mod sde;
pub mod solvers;

pub use model::ScoreModel;
pub use process::Process;
pub use schedule::Schedule;
