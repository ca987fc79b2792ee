//! The network's forward pass for sampling: every point at one time t, chunk by chunk.
//!
//! Per evaluation: `time_offset` computes c = emb(t)·W₀[2..] + b₀ once; then for each chunk of
//! up to `MAX_CHUNK_ROWS` points, `first_layer` (H₀ = act(x·W₀[..2] + c)), the hidden
//! layers through the tiled matmul (ping-pong between two activation buffers), and `head`,
//! which writes the raw output o of the chunk's rows into a buffer that spans every point.
//! Memory traffic per point and hidden layer: one read and one write of `width` floats.

use std::sync::Arc;

use super::context::GpuContext;
use super::error::GpuError;
use super::kernels::{
    EvalTimeUniform, GEMM_TILE, GemmUniform, K, Kernels, MlpUniform, Slots, act_id, grid_1d,
    grid_rows, storage_buffer, storage_init, uniform_init,
};
use crate::nn::{MlpConfig, TimeEmbedding};

/// Most points per chunk: bounds the activation buffers (32 MiB each at width 128).
pub const MAX_CHUNK_ROWS: u32 = 1 << 16;

/// The bind groups of one chunk.
#[derive(Debug)]
struct Chunk {
    rows: u32,
    /// `first_layer`, one per input buffer.
    first: Vec<wgpu::BindGroup>,
    /// Hidden layers 1..depth.
    hidden: Vec<wgpu::BindGroup>,
    head: wgpu::BindGroup,
}

/// A forward pass bound to a weights buffer, a few input buffers (`[n][2]` points) and an
/// output buffer (`[n][2]` raw outputs). Built once; encoded once per network evaluation.
#[derive(Debug)]
pub struct Forward {
    kernels: Arc<Kernels>,
    width: u32,
    depth: usize,
    time_bind: wgpu::BindGroup,
    time_slot: wgpu::BindGroup,
    chunks: Vec<Chunk>,
    /// Buffers the bind groups point to, kept alive here.
    _keep: Vec<wgpu::Buffer>,
}

impl Forward {
    /// Points `n`, weights in `weights` (the layout of `nn::mlp`), inputs `sources`, output
    /// `out`; `eval_slots` holds the evaluation times (`EvalTimeUniform`).
    pub fn new(
        ctx: &GpuContext,
        config: &MlpConfig,
        weights: &wgpu::Buffer,
        sources: &[&wgpu::Buffer],
        out: &wgpu::Buffer,
        n: u32,
        eval_slots: &Slots,
    ) -> Result<Self, GpuError> {
        config.validate()?;
        super::error::check_supported(config)?;
        let kernels = ctx.kernels()?;
        let layers = config.layers();
        let width = config.width as u32;
        let depth = config.depth;
        // Chunk rows: as many as one activation buffer may hold, a multiple of the tile.
        let limits = ctx.limits();
        let max_bytes = limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size);
        let fit = (max_bytes / (4 * u64::from(width))).min(u64::from(MAX_CHUNK_ROWS)) as u32;
        let fit = (fit / GEMM_TILE * GEMM_TILE).max(GEMM_TILE);
        let chunk_rows = n.clamp(1, fit);
        let emb = TimeEmbedding::new(config.embedding);
        let emb_half = (emb.freqs().len()) as u32;
        let act = act_id(config.activation);

        let device = &ctx.device;
        let keep_and_bind = ctx.scoped("building the network's forward pass", || {
            let mut keep = Vec::new();
            let h: Result<Vec<wgpu::Buffer>, GpuError> = (0..2)
                .map(|i| {
                    storage_buffer(
                        ctx,
                        &format!("forward activations {i}"),
                        u64::from(chunk_rows) * u64::from(width) * 4,
                    )
                })
                .collect();
            let h = h?;
            let c0 = storage_buffer(ctx, "forward time offset c", u64::from(width) * 4)?;
            let freqs = storage_init(ctx, "embedding frequencies", emb.freqs())?;
            // Unused bindings: one read-only, one read-write (a buffer may not be both in one
            // dispatch).
            let dummy = storage_buffer(ctx, "unused binding", 4)?;
            let dummy_r = storage_buffer(ctx, "unused read-only binding", 4)?;

            let l0 = layers[0];
            let time_u = MlpUniform {
                width,
                act,
                w_off: l0.weight_offset as u32,
                b_off: l0.bias_offset as u32,
                emb_half,
                ..MlpUniform::default()
            };
            let time_ub = uniform_init(ctx, "time_offset uniform", &time_u);
            let tk = kernels.get(K::TimeOffset);
            let time_bind = tk.bind(
                device,
                "time_offset",
                &[&time_ub, weights, &dummy_r, &c0, &dummy, &freqs],
            );
            let time_slot = tk
                .bind_slots(device, "time_offset slots", eval_slots)
                .ok_or_else(|| GpuError::Config("time_offset has no slot layout".into()))?;
            keep.push(time_ub);

            let mut chunks = Vec::new();
            let mut row_off = 0u32;
            while row_off < n {
                let rows = chunk_rows.min(n - row_off);
                let fu = MlpUniform {
                    rows,
                    width,
                    ld: width,
                    act,
                    w_off: l0.weight_offset as u32,
                    b_off: l0.bias_offset as u32,
                    emb_half,
                    row_off,
                    ..MlpUniform::default()
                };
                let fub = uniform_init(ctx, "first_layer uniform", &fu);
                let first = sources
                    .iter()
                    .map(|src| {
                        kernels.get(K::FirstLayer).bind(
                            device,
                            "first_layer",
                            &[&fub, weights, src, &h[0], &c0, &freqs],
                        )
                    })
                    .collect();
                keep.push(fub);
                let mut hidden = Vec::new();
                for (l, layer) in layers.iter().enumerate().take(depth).skip(1) {
                    let gu = GemmUniform {
                        m: rows,
                        n: width,
                        k: width,
                        lda: width,
                        ldb: width,
                        ldc: width,
                        b_off: layer.weight_offset as u32,
                        bias_off: layer.bias_offset as u32,
                        act,
                        flag: 2,
                        ..GemmUniform::default()
                    };
                    let gub = uniform_init(ctx, &format!("hidden layer {l} uniform"), &gu);
                    let (src, dst) = (&h[(l - 1) % 2], &h[l % 2]);
                    hidden.push(kernels.get(K::GemmForward).bind(
                        device,
                        &format!("hidden layer {l}"),
                        &[&gub, src, weights, dst, &dummy],
                    ));
                    keep.push(gub);
                }
                let out_layer = layers[depth];
                let hu = MlpUniform {
                    rows,
                    width,
                    ld: width,
                    act,
                    w_off: out_layer.weight_offset as u32,
                    b_off: out_layer.bias_offset as u32,
                    row_off,
                    ..MlpUniform::default()
                };
                let hub = uniform_init(ctx, "head uniform", &hu);
                let head = kernels.get(K::Head).bind(
                    device,
                    "head",
                    &[&hub, weights, &h[(depth - 1) % 2], out, &dummy, &freqs],
                );
                keep.push(hub);
                chunks.push(Chunk {
                    rows,
                    first,
                    hidden,
                    head,
                });
                row_off += rows;
            }
            keep.extend(h);
            keep.extend([c0, freqs, dummy, dummy_r]);
            Ok::<_, GpuError>((keep, time_bind, time_slot, chunks))
        })??;
        let (keep, time_bind, time_slot, chunks) = keep_and_bind;
        Ok(Self {
            kernels,
            width,
            depth,
            time_bind,
            time_slot,
            chunks,
            _keep: keep,
        })
    }

    /// Records one evaluation of the network on input `source` (an index into the `sources`
    /// given to `new`) at the time in slot `slot`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, source: usize, slot: u32) {
        let k = &self.kernels;
        // c = emb(t)·W₀[2..] + b₀, once for all points.
        pass.set_pipeline(&k.get(K::TimeOffset).pipeline);
        pass.set_bind_group(0, &self.time_bind, &[]);
        pass.set_bind_group(1, &self.time_slot, &[Slots::offset(slot)]);
        pass.dispatch_workgroups(1, 1, 1);
        for chunk in &self.chunks {
            // H₀ = act(x·W₀[..2] + c).
            pass.set_pipeline(&k.get(K::FirstLayer).pipeline);
            pass.set_bind_group(0, &chunk.first[source], &[]);
            let (gy, gz) = grid_rows(chunk.rows);
            pass.dispatch_workgroups(self.width.div_ceil(64), gy, gz);
            // H_l = act(H_{l−1}·W_l + b_l).
            pass.set_pipeline(&k.get(K::GemmForward).pipeline);
            for bind in &chunk.hidden {
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(
                    self.width.div_ceil(GEMM_TILE),
                    chunk.rows.div_ceil(GEMM_TILE),
                    1,
                );
            }
            // o = H·W_out + b_out.
            pass.set_pipeline(&k.get(K::Head).pipeline);
            pass.set_bind_group(0, &chunk.head, &[]);
            let (gx, gy) = grid_1d(chunk.rows, 256);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        debug_assert!(self.depth >= 1);
    }

    /// Points per chunk (the first chunk's size).
    pub fn chunk_rows(&self) -> u32 {
        self.chunks.first().map_or(0, |c| c.rows)
    }
}

/// An `EvalTimeUniform` for time `t`.
pub fn eval_time(t: f32) -> EvalTimeUniform {
    EvalTimeUniform { t, _pad: [0; 3] }
}
