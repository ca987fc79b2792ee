//! Workgroup sizes and the grids that cover a dispatch, and one-off dispatches (tests, jobs).

use super::buffers::Slots;
use super::pipelines::K;
use crate::gpu::context::GpuContext;
use crate::gpu::error::GpuError;

/// Workgroup size of the 1D kernels (dsm, adam, sampler).
pub const WG_1D: u32 = 256;
/// Edge of the square output tile of matmul.wgsl (16×16 threads × 4×4 each).
pub const GEMM_TILE: u32 = 64;
/// Depth of one K step of matmul.wgsl (rows of A's tile in workgroup memory).
pub const GEMM_TILE_K: u32 = 16;
/// Most workgroups along one dispatch dimension (WebGPU's default limit).
pub const MAX_GROUPS: u32 = 65_535;

/// A workgroup grid covering `n` threads of groups of `wg`, 2D when one dimension would pass
/// 65535 groups (the kernels fold `(wid.y · nwg.x + wid.x)` back into one index).
pub fn grid_1d(n: u32, wg: u32) -> (u32, u32) {
    let groups = n.div_ceil(wg).max(1);
    if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        let y = groups.div_ceil(MAX_GROUPS);
        (groups.div_ceil(y), y)
    }
}

/// Records and submits one dispatch of `k` with `group0` bound in binding order and, for a
/// kernel with a step slot, slot 0 of `slots` (tests and one-off jobs; training and sampling
/// record many dispatches per encoder instead).
pub fn dispatch_once(
    ctx: &GpuContext,
    k: K,
    group0: &[&wgpu::Buffer],
    slots: Option<&Slots>,
    groups: [u32; 3],
) -> Result<(), GpuError> {
    let kernels = ctx.kernels()?;
    let kernel = kernels.get(k);
    ctx.scoped(&format!("running {}", kernel.name), || {
        let bind = kernel.bind(&ctx.device, &kernel.name, group0);
        let slot_bind = slots.and_then(|s| kernel.bind_slots(&ctx.device, &kernel.name, s));
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(&kernel.name),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&kernel.name),
                timestamp_writes: None,
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            if let Some(b) = &slot_bind {
                pass.set_bind_group(1, b, &[0]);
            }
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        ctx.queue.submit([enc.finish()]);
    })
}

/// The (y, z) groups covering `rows` rows of 4 per group (mlp.wgsl `row_of`).
pub fn grid_rows(rows: u32) -> (u32, u32) {
    let groups = rows.div_ceil(4).max(1);
    if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        let z = groups.div_ceil(MAX_GROUPS);
        (groups.div_ceil(z), z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_grids_fold_into_two_dimensions() {
        assert_eq!(grid_1d(1, 256), (1, 1));
        assert_eq!(grid_1d(256 * 65_535, 256), (65_535, 1));
        let (x, y) = grid_1d(256 * 65_536, 256);
        assert!(x <= MAX_GROUPS && x * y >= 65_536);
    }
}
