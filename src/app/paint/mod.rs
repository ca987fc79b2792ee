//! Our own drawing inside egui's render pass (wgpu paint callbacks), for what egui's
//! textured shader would make slow on a software renderer.
//!
//! - `callback`: what the callbacks share (registration, shader modules, the pipeline);
//! - `particles`: every particle as one instance of a quad;
//! - `fill`: large solid areas (the canvas background);
//! - `lines`: grid, trails and score arrows, with an egui fallback without wgpu;
//! - `region_cache`: panels that stand still, drawn from a picture of themselves.

pub(crate) mod callback;
pub(crate) mod fill;
pub(crate) mod lines;
pub(crate) mod particles;
pub(crate) mod region_cache;
