//! The compute pipelines, built once per device, and the uniform blocks they read.
//!
//! Each kernel is a WGSL entry point of one `shaders/` file (composed with its imports by
//! `shaders::compose`). Layouts are explicit, listing exactly the bindings each entry point
//! uses, so no kernel asks for more storage buffers than a default device allows (8), and
//! per-step values (the training step, a sampler stage) come from a 256-byte slot of one
//! uniform buffer selected by a dynamic offset: many steps go into one command encoder
//! without a CPU round trip.
//!
//! - `uniforms`: the ids and `#[repr(C)]` uniform blocks the WGSL structs mirror;
//! - `pipelines`: every kernel (`K`), its bindings, and the pipelines built from them;
//! - `buffers`: storage, uniform and slot buffers, and reading a buffer back;
//! - `dispatch`: workgroup sizes and grids, and a one-off dispatch.

mod buffers;
mod dispatch;
mod pipelines;
mod uniforms;

pub use self::buffers::{
    AsyncRead, SLOT_BYTES, Slots, read_f32, storage_buffer, storage_init, uniform_bytes,
    uniform_init,
};
pub use self::dispatch::{
    GEMM_TILE, GEMM_TILE_K, MAX_GROUPS, WG_1D, dispatch_once, grid_1d, grid_rows,
};
pub use self::pipelines::{K, Kernel, Kernels};
pub use self::uniforms::{
    AdamUniform, DsmUniform, EvalTimeUniform, GemmUniform, MlpUniform, ScheduleUniform,
    StageUniform, TrainStepUniform, act_id, param_id, process_id,
};
