//! diffusion-playground: diffusion generative models on 2D point clouds.
//!
//! The library holds everything the app, the CLI and the tests share: the math of the
//! VP-SDE and its samplers (`math`), the toy datasets (`data`), the score network with its
//! CPU reference backend (`nn`) and the WGSL backend (`gpu`).

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
