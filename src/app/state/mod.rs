//! What the app holds between frames, apart from the panels that show it.
//!
//! - `settings`: everything remembered between runs (eframe persistence);
//! - `datasets`: the data trained on, loaded from a built-in, a CSV or a drawing;
//! - `training`: what the UI knows about training (progress, curves, newest weights);
//! - `player`: the animation clock, the restart rule, and each frame's particles;
//! - `noise_check`: whether the forward process reached N(0, I) at t = 1;
//! - `run_quality`: the quality of the run on the canvas, against held-out data;
//! - `trajectory`: particle runs computed in the background, frame by frame;
//! - `jobs`: the teaching views' background computations ([`jobs::Task`]).

pub(crate) mod datasets;
pub(crate) mod jobs;
pub(crate) mod noise_check;
pub(crate) mod player;
pub(crate) mod run_quality;
pub(crate) mod settings;
pub(crate) mod training;
pub mod trajectory;
