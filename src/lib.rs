//! diffusion-playground: diffusion generative models on 2D point clouds.
//!
//! The library holds everything the app, the CLI and the tests share (docs/architecture.md
//! §1 has the picture):
//!
//! - `math`: the VP-SDE, its samplers, exact scores, likelihood, metrics;
//! - `data`: the built-in datasets, CSV files, standardisation;
//! - `nn`: the score network, its CPU reference backend and DSM training;
//! - `gpu`: the same network and training as our WGSL kernels, and GPU-resident particles;
//! - `backend`: which of the two trains and samples, and the fallback from GPU to CPU;
//! - `train`: training in the background, driven by commands, reporting events;
//! - `teach`: the computations behind the teaching views;
//! - `app`: the desktop app (eframe);
//! - `work`: background jobs that advance in steps; `fsutil`: bounded reads, atomic writes.

pub mod app;
pub mod backend;
pub mod data;
pub mod fsutil;
pub mod gpu;
pub mod math;
pub mod nn;
pub mod teach;
pub mod train;
pub mod work;

/// A 2D point. Plain arrays keep batches `Pod`, so they upload to the GPU as they are.
pub type Point = [f32; 2];
