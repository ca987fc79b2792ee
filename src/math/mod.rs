//! The math of the VP-SDE, written as in DESIGN §3.

pub mod likelihood;
pub mod metrics;
pub mod model;
pub mod oracle;
pub mod rng;
pub mod schedule;
pub mod sde;
pub mod solvers;

pub use model::ScoreModel;
pub use schedule::Schedule;
