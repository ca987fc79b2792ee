//! The buffers whose size depends on the batch, checked against the device's limits before
//! they are allocated, and the importance sampler's table.

use super::{MAX_SPLITS, SPLIT_ROWS};
use crate::gpu::context::GpuContext;
use crate::gpu::error::GpuError;
use crate::gpu::kernels::{WG_1D, storage_buffer, storage_init};
use crate::nn::{IMPORTANCE_TABLE_SIZE, ImportanceTable, MAX_BATCH};
use crate::nn::{MlpConfig, TrainConfig, Weighting};

/// Buffers whose size depends on the batch.
#[derive(Debug)]
pub(super) struct BatchBuffers {
    pub(super) batch: u32,
    pub(super) splits: u32,
    pub(super) k_split: u32,
    pub(super) input: wgpu::Buffer,
    pub(super) samples: wgpu::Buffer,
    /// Z_l and H_l per hidden layer, then dZ_l.
    pub(super) z: Vec<wgpu::Buffer>,
    pub(super) h: Vec<wgpu::Buffer>,
    pub(super) dz: Vec<wgpu::Buffer>,
    pub(super) out: wgpu::Buffer,
    pub(super) d_out: wgpu::Buffer,
    pub(super) loss_partial: wgpu::Buffer,
    /// Gradient slices, `splits` copies of the parameter layout.
    pub(super) partials: wgpu::Buffer,
}

/// The importance sampler's inverse CDF (or a one-entry placeholder).
pub(super) fn table_buffer(ctx: &GpuContext, cfg: &TrainConfig) -> Result<wgpu::Buffer, GpuError> {
    let table = match cfg.weighting {
        Weighting::Importance => ImportanceTable::new(&cfg.schedule, cfg.t_min).t_of_u,
        _ => vec![0.0; IMPORTANCE_TABLE_SIZE + 1],
    };
    ctx.scoped("uploading the importance table", || {
        storage_init(ctx, "importance table", &table)
    })?
}

/// The buffers of one batch size, checked against the device's limits before allocating.
pub(super) fn batch_buffers(
    ctx: &GpuContext,
    net: &MlpConfig,
    batch: usize,
    num_params: usize,
) -> Result<BatchBuffers, GpuError> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(GpuError::Config(format!(
            "batch must be in 1..={MAX_BATCH} (got {batch})"
        )));
    }
    let b = batch as u64;
    let width = net.width as u64;
    let in_ld = net.input_dim() as u64;
    // Split-K: slices of at least SPLIT_ROWS rows, a multiple of the tile depth, at most
    // MAX_SPLITS of them.
    let per = (b.div_ceil(u64::from(MAX_SPLITS))).max(u64::from(SPLIT_ROWS).min(b));
    let k_split = per.next_multiple_of(16);
    let splits = b.div_ceil(k_split) as u32;
    let act_bytes = b * width * 4;
    // Check every size first, so a huge request fails before anything is allocated.
    for (what, bytes) in [
        ("the network input of a batch", b * in_ld * 4),
        ("one layer's activations of a batch", act_bytes),
        (
            "the gradient slices",
            u64::from(splits) * num_params as u64 * 4,
        ),
    ] {
        ctx.check_buffer_size(what, bytes)?;
    }
    ctx.scoped("allocating the batch buffers", || {
        let depth = net.depth;
        let layer = |name: &str| -> Result<Vec<wgpu::Buffer>, GpuError> {
            (0..depth)
                .map(|l| storage_buffer(ctx, &format!("{name} {l}"), act_bytes))
                .collect()
        };
        Ok::<_, GpuError>(BatchBuffers {
            batch: batch as u32,
            splits,
            k_split: k_split as u32,
            input: storage_buffer(ctx, "network input rows", b * in_ld * 4)?,
            samples: storage_buffer(ctx, "dsm samples", b * 32)?,
            z: layer("pre-activation Z")?,
            h: layer("activation H")?,
            dz: layer("gradient dZ")?,
            out: storage_buffer(ctx, "raw output o", b * 8)?,
            d_out: storage_buffer(ctx, "output gradient dO", b * 8)?,
            loss_partial: storage_buffer(
                ctx,
                "loss partial sums",
                b.div_ceil(u64::from(WG_1D)) * 4,
            )?,
            partials: storage_buffer(
                ctx,
                "gradient slices",
                u64::from(splits) * num_params as u64 * 4,
            )?,
        })
    })?
}
