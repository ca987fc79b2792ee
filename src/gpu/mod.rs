//! The WGSL backend: our own compute kernels (`shaders/`) train the score network and move
//! the particles, on the device eframe renders with or on one of our own.
//!
//! - `context`: adapter and device (ours, or eframe's), error scopes, limits;
//! - `error`: `GpuError`, and which networks the kernels support;
//! - `kernels/`: the pipelines (built once per device), their uniform blocks, buffer helpers;
//! - `shaders`: the WGSL sources and how they are put together;
//! - `net`: the network's forward pass for sampling, shared by `model` and `sampler`;
//! - `trainer/`: DSM training, many steps per command encoder;
//! - `model`: the GPU network as a `ScoreModel` (drives the CPU samplers);
//! - `sampler`: particles that live on the GPU, stepped by the sampler kernels;
//! - `selfcheck`: one GPU step against the CPU's, driven without waiting (the browser's
//!   `gpu_check`);
//! - `bench`: throughput figures for the CLI.
//!
//! # Kernel design (what a real-GPU figure rests on)
//!
//! - **Tiled matmul** (`matmul.wgsl`): a 64×64 tile of C per workgroup of 16×16 threads, a
//!   4×4 register block per thread, K walked 16 at a time through 8 KiB of workgroup memory
//!   (one `vec4` store per thread and tile, coalesced global reads for every storage order).
//!   Per K step: 8 KiB read from L2/DRAM for 131 k FLOPs (16 FLOP/B); per thread and rank-1
//!   update two 16-byte workgroup loads for 16 FMAs. Bias + activation (training: Z and H;
//!   sampling: H only) fused into the forward epilogue, act′ into the dX epilogue. dW is
//!   split-K over the batch (≤ 64 slices of ≥ 256 rows) so that a 128×128 weight gradient
//!   still fills the GPU; the slices are summed in a fixed order by the Adam kernel, so the
//!   result is deterministic (no atomics). The bias gradient is the same product with a
//!   column of ones ([W; b] is one matrix in the parameter layout).
//! - **Thin ends** (`mlp.wgsl`): layer 0 at sampling time is `x·W₀[..2] + c(t)` with
//!   `c(t) = emb(t)·W₀[2..] + b₀` computed once per evaluation; the 2-wide output layer and its
//!   backward are one thread per row (or per input unit), not 62/64-idle tiles.
//! - **Memory per step** (reference net 66→128→128→128→2): training ≈ 3.2 k floats
//!   (12.7 KB) of activation traffic per sample plus 64 gradient slices of the 42 k
//!   parameters; sampling ≈ 780 floats (3.1 KB) per particle-step. FLOPs: 231,936 per
//!   training sample, 66.6 k per particle-step (the embedding is paid once per step). Both are
//!   compute-bound on a GPU with > 1 TB/s: at batch 16 k a step is 3.8 GFLOP and 0.2 GB.
//! - **No CPU round trip**: up to 32 training steps (or 64 sampler stages) per command
//!   encoder, per-step values in 256-byte uniform slots selected by dynamic offsets; losses
//!   read back asynchronously from a ring; at most 3 submissions in flight.

pub mod bench;
pub mod context;
pub mod error;
pub mod kernels;
pub mod model;
pub mod net;
pub mod sampler;
pub mod selfcheck;
pub mod shaders;
pub mod trainer;

pub use context::{GpuContext, describe, enumerate_adapters};
pub use error::GpuError;
pub use model::GpuModel;
pub use sampler::GpuSampler;
pub use trainer::{GpuTrainer, GpuWeights, LossPoint};
