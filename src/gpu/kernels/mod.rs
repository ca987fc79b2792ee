//! The compute pipelines, built once per device, and the uniform blocks they read.
//!
//! Each kernel is a WGSL entry point of one `shaders/` file (composed with its imports by
//! `shaders::compose`). Layouts are explicit, listing exactly the bindings each entry point
//! uses, so no kernel asks for more storage buffers than a default device allows (8), and
//! per-step values (the training step, a sampler stage) come from a 256-byte slot of one
//! uniform buffer selected by a dynamic offset: many steps go into one command encoder
//! without a CPU round trip.

use std::borrow::Cow;
use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::context::GpuContext;
use super::error::GpuError;
use super::shaders;
use crate::math::Schedule;
use crate::nn::{Activation, Parameterization};

/// Workgroup size of the 1D kernels (dsm, adam, sampler).
pub const WG_1D: u32 = 256;
/// Edge of the square output tile of matmul.wgsl (16×16 threads × 4×4 each).
pub const GEMM_TILE: u32 = 64;
/// Depth of one K step of matmul.wgsl (rows of A's tile in workgroup memory).
pub const GEMM_TILE_K: u32 = 16;
/// Most workgroups along one dispatch dimension (WebGPU's default limit).
pub const MAX_GROUPS: u32 = 65_535;
/// Bytes between per-step uniform slots (`min_uniform_buffer_offset_alignment` ≤ 256).
pub const SLOT_BYTES: u64 = 256;

/// The id activation.wgsl uses for an activation.
pub fn act_id(act: Activation) -> u32 {
    match act {
        Activation::Silu => 1,
        Activation::Gelu => 2,
        Activation::Relu => 3,
    }
}

/// The id dsm.wgsl / sampler.wgsl use for a parameterisation.
pub fn param_id(p: Parameterization) -> u32 {
    match p {
        Parameterization::Eps => 0,
        Parameterization::Score => 1,
        Parameterization::X0 => 2,
    }
}

/// `struct Gemm` of matmul.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GemmUniform {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub ld_aux: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub bias_off: u32,
    pub aux_off: u32,
    pub act: u32,
    pub flag: u32,
    pub k_split: u32,
    pub c_split_stride: u32,
}
const _: () = assert!(std::mem::size_of::<GemmUniform>() == 64);

/// `struct Mlp` of mlp.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MlpUniform {
    pub rows: u32,
    pub width: u32,
    pub ld: u32,
    pub act: u32,
    pub w_off: u32,
    pub b_off: u32,
    pub emb_half: u32,
    pub row_off: u32,
    pub k_split: u32,
    pub split_stride: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<MlpUniform>() == 48);

/// `struct EvalTime` of mlp.wgsl (a per-stage slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EvalTimeUniform {
    pub t: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<EvalTimeUniform>() == 16);

/// `struct ScheduleParams` of schedule.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ScheduleUniform {
    pub kind: u32,
    pub p0: f32,
    pub p1: f32,
    pub t_cap: f32,
    pub b_cap: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<ScheduleUniform>() == 32);

impl ScheduleUniform {
    pub fn new(s: &Schedule) -> Self {
        match *s {
            Schedule::Linear { beta_min, beta_max } => Self {
                kind: 0,
                p0: beta_min as f32,
                p1: beta_max as f32,
                ..Self::default()
            },
            Schedule::Cosine { beta_cap } => {
                let t_cap = s.cap_time().unwrap_or(1.0);
                Self {
                    kind: 1,
                    p0: beta_cap as f32,
                    p1: 0.0,
                    t_cap: t_cap as f32,
                    b_cap: s.big_b(t_cap) as f32,
                    _pad: [0; 3],
                }
            }
            Schedule::Constant { beta } => Self {
                kind: 2,
                p0: beta as f32,
                ..Self::default()
            },
        }
    }
}

/// `struct Dsm` of dsm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DsmUniform {
    pub batch: u32,
    pub n_data: u32,
    pub seed: u32,
    pub weighting: u32,
    pub t_min: f32,
    pub table_weight: f32,
    pub table_n: u32,
    pub param: u32,
    pub emb_half: u32,
    pub in_ld: u32,
    pub _pad: [u32; 2],
    pub schedule: ScheduleUniform,
}
const _: () = assert!(std::mem::size_of::<DsmUniform>() == 80);
const _: () = assert!(std::mem::offset_of!(DsmUniform, schedule) % 16 == 0);

/// `struct TrainStep` of dsm.wgsl and adam.wgsl (a per-step slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TrainStepUniform {
    pub step: u32,
    pub slot: u32,
    pub step_size: f32,
    pub inv_sqrt_c2: f32,
    pub ema_decay: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<TrainStepUniform>() == 32);

/// `struct Adam` of adam.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamUniform {
    pub n: u32,
    pub splits: u32,
    pub split_stride: u32,
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<AdamUniform>() == 16);

/// `struct Stage` of sampler.wgsl (a per-stage slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StageUniform {
    pub param: u32,
    pub n: u32,
    pub seed: u32,
    pub step: u32,
    pub stream: u32,
    pub first: u32,
    pub last: u32,
    pub has_prev: u32,
    pub alpha: f32,
    pub sigma: f32,
    pub c: [f32; 6],
}
const _: () = assert!(std::mem::size_of::<StageUniform>() == 64);

/// How a kernel sees one binding of group 0.
#[derive(Clone, Copy, Debug)]
enum Bind {
    Uniform(u64),
    Read,
    ReadWrite,
}

/// Every kernel of the backend: a WGSL entry point of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum K {
    GemmForward,
    GemmBackwardDx,
    GemmBackwardDw,
    TimeOffset,
    FirstLayer,
    Head,
    HeadDx,
    HeadDw,
    DsmBatch,
    DsmLoss,
    DsmLossReduce,
    Adam,
    Prior,
    Affine,
    OdeStage,
    Dpm2m,
    PcNorms,
    PcReduce,
    PcCorrect,
    EpsOut,
}

use Bind::{Read as R, ReadWrite as W, Uniform as U};

const GEMM: &[(u32, Bind)] = &[(0, U(64)), (1, R), (2, R), (3, W), (4, W)];
const MLP: &[(u32, Bind)] = &[(0, U(48)), (1, R), (2, R), (3, W), (4, W), (5, R)];
const SAMPLER: &[(u32, Bind)] = &[(0, W), (1, R), (2, W), (3, W)];

/// Where a kernel lives and what it binds.
struct Spec {
    file: &'static str,
    entry: &'static str,
    group0: &'static [(u32, Bind)],
    /// Size of its group-1 slot (per-step uniform), if it reads one.
    slot: Option<u64>,
}

impl K {
    pub const ALL: [K; 20] = [
        K::GemmForward,
        K::GemmBackwardDx,
        K::GemmBackwardDw,
        K::TimeOffset,
        K::FirstLayer,
        K::Head,
        K::HeadDx,
        K::HeadDw,
        K::DsmBatch,
        K::DsmLoss,
        K::DsmLossReduce,
        K::Adam,
        K::Prior,
        K::Affine,
        K::OdeStage,
        K::Dpm2m,
        K::PcNorms,
        K::PcReduce,
        K::PcCorrect,
        K::EpsOut,
    ];

    fn spec(self) -> Spec {
        let s = |file, entry, group0, slot| Spec {
            file,
            entry,
            group0,
            slot,
        };
        match self {
            K::GemmForward => s("matmul.wgsl", "forward", GEMM, None),
            K::GemmBackwardDx => s("matmul.wgsl", "backward_dx", GEMM, None),
            K::GemmBackwardDw => s("matmul.wgsl", "backward_dw", GEMM, None),
            K::TimeOffset => s("mlp.wgsl", "time_offset", MLP, Some(16)),
            K::FirstLayer => s("mlp.wgsl", "first_layer", MLP, None),
            K::Head => s("mlp.wgsl", "head", MLP, None),
            K::HeadDx => s("mlp.wgsl", "head_dx", MLP, None),
            K::HeadDw => s("mlp.wgsl", "head_dw", MLP, None),
            K::DsmBatch => s(
                "dsm.wgsl",
                "batch",
                &[(0, U(80)), (1, R), (2, R), (3, R), (4, W), (5, W)],
                Some(32),
            ),
            K::DsmLoss => s(
                "dsm.wgsl",
                "loss",
                &[(0, U(80)), (5, W), (6, R), (7, W), (8, W)],
                None,
            ),
            K::DsmLossReduce => s(
                "dsm.wgsl",
                "loss_reduce",
                &[(0, U(80)), (8, W), (9, W), (10, W)],
                Some(32),
            ),
            K::Adam => s(
                "adam.wgsl",
                "adam",
                &[
                    (0, U(16)),
                    (1, W),
                    (2, W),
                    (3, W),
                    (4, R),
                    (5, W),
                    (6, W),
                    (7, R),
                ],
                Some(32),
            ),
            K::Prior => s("sampler.wgsl", "prior", SAMPLER, Some(64)),
            K::Affine => s("sampler.wgsl", "affine", SAMPLER, Some(64)),
            K::OdeStage => s("sampler.wgsl", "ode_stage", SAMPLER, Some(64)),
            K::Dpm2m => s("sampler.wgsl", "dpm2m", SAMPLER, Some(64)),
            K::PcNorms => s("sampler.wgsl", "pc_norms", SAMPLER, Some(64)),
            K::PcReduce => s("sampler.wgsl", "pc_reduce", SAMPLER, Some(64)),
            K::PcCorrect => s("sampler.wgsl", "pc_correct", SAMPLER, Some(64)),
            K::EpsOut => s("sampler.wgsl", "eps_out", SAMPLER, Some(64)),
        }
    }

    /// `file::entry`, the pipeline's label.
    pub fn name(self) -> String {
        let s = self.spec();
        format!("{}::{}", s.file.trim_end_matches(".wgsl"), s.entry)
    }

    /// (file, entry point).
    pub fn entry_point(self) -> (&'static str, &'static str) {
        let s = self.spec();
        (s.file, s.entry)
    }
}

/// A compute pipeline with the layouts its bind groups are made from.
#[derive(Debug)]
pub struct Kernel {
    pub name: String,
    pub pipeline: wgpu::ComputePipeline,
    pub group0: wgpu::BindGroupLayout,
    /// Group 1: one uniform slot with a dynamic offset.
    pub slot_layout: Option<wgpu::BindGroupLayout>,
    bindings: Vec<u32>,
}

impl Kernel {
    /// A group-0 bind group; `buffers[i]` goes to the kernel's i-th binding in binding order.
    pub fn bind(
        &self,
        device: &wgpu::Device,
        label: &str,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        debug_assert_eq!(
            buffers.len(),
            self.bindings.len(),
            "{}: bindings",
            self.name
        );
        let entries: Vec<wgpu::BindGroupEntry> = self
            .bindings
            .iter()
            .zip(buffers)
            .map(|(&binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.group0,
            entries: &entries,
        })
    }

    /// The group-1 bind group over a slot buffer (bound with a dynamic offset per dispatch).
    pub fn bind_slots(
        &self,
        device: &wgpu::Device,
        label: &str,
        slots: &Slots,
    ) -> Option<wgpu::BindGroup> {
        let layout = self.slot_layout.as_ref()?;
        Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &slots.buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(slots.slot_size),
                }),
            }],
        }))
    }
}

/// Every pipeline of the backend.
#[derive(Debug)]
pub struct Kernels {
    kernels: Vec<Kernel>,
}

impl Kernels {
    /// Compiles every shader and builds every pipeline (once per device: see
    /// `GpuContext::kernels`).
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let device = &ctx.device;
        ctx.scoped("compiling the compute shaders", || {
            let mut modules: HashMap<&str, wgpu::ShaderModule> = HashMap::new();
            let mut kernels = Vec::with_capacity(K::ALL.len());
            for kernel in K::ALL {
                let spec = kernel.spec();
                let module = modules.entry(spec.file).or_insert_with(|| {
                    let source = shaders::compose(spec.file).unwrap_or_default();
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(spec.file),
                        source: wgpu::ShaderSource::Wgsl(Cow::Owned(source)),
                    })
                });
                let name = kernel.name();
                let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
                    .group0
                    .iter()
                    .map(|&(binding, kind)| wgpu::BindGroupLayoutEntry {
                        binding,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match kind {
                                Bind::Uniform(_) => wgpu::BufferBindingType::Uniform,
                                Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                                Bind::ReadWrite => {
                                    wgpu::BufferBindingType::Storage { read_only: false }
                                }
                            },
                            has_dynamic_offset: false,
                            min_binding_size: match kind {
                                Bind::Uniform(size) => wgpu::BufferSize::new(size),
                                _ => None,
                            },
                        },
                        count: None,
                    })
                    .collect();
                let group0 = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&format!("{name} group 0")),
                    entries: &entries,
                });
                let slot_layout = spec.slot.map(|size| {
                    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: Some(&format!("{name} step slot")),
                        entries: &[wgpu::BindGroupLayoutEntry {
                            binding: 0,
                            visibility: wgpu::ShaderStages::COMPUTE,
                            ty: wgpu::BindingType::Buffer {
                                ty: wgpu::BufferBindingType::Uniform,
                                has_dynamic_offset: true,
                                min_binding_size: wgpu::BufferSize::new(size),
                            },
                            count: None,
                        }],
                    })
                });
                let mut layouts = vec![Some(&group0)];
                if let Some(l) = &slot_layout {
                    layouts.push(Some(l));
                }
                let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&name),
                    bind_group_layouts: &layouts,
                    immediate_size: 0,
                });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&name),
                    layout: Some(&layout),
                    module,
                    entry_point: Some(spec.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &[],
                        // Every kernel writes its workgroup memory before reading it.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                });
                let bindings = spec.group0.iter().map(|&(b, _)| b).collect();
                kernels.push(Kernel {
                    name,
                    pipeline,
                    group0,
                    slot_layout,
                    bindings,
                });
            }
            Self { kernels }
        })
    }

    /// One kernel.
    pub fn get(&self, k: K) -> &Kernel {
        // `kernels` was built from `K::ALL` in order, and `K::ALL` lists every variant.
        &self.kernels[k as usize]
    }
}

/// A uniform buffer of fixed-stride slots, one per step or stage, bound with a dynamic offset.
#[derive(Debug)]
pub struct Slots {
    pub buffer: wgpu::Buffer,
    /// Bytes of the struct in each slot.
    pub slot_size: u64,
    pub capacity: u32,
}

impl Slots {
    pub fn new(device: &wgpu::Device, label: &str, slot_size: u64, capacity: u32) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: SLOT_BYTES * u64::from(capacity.max(1)),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            buffer,
            slot_size,
            capacity: capacity.max(1),
        }
    }

    /// Writes consecutive slots starting at `first` (staged by the queue: they land before
    /// the next submission runs).
    pub fn write<T: Pod>(&self, queue: &wgpu::Queue, first: u32, values: &[T]) {
        debug_assert!(first as usize + values.len() <= self.capacity as usize);
        let mut bytes = vec![0u8; values.len() * SLOT_BYTES as usize];
        for (i, v) in values.iter().enumerate() {
            let src = bytemuck::bytes_of(v);
            bytes[i * SLOT_BYTES as usize..i * SLOT_BYTES as usize + src.len()]
                .copy_from_slice(src);
        }
        queue.write_buffer(&self.buffer, u64::from(first) * SLOT_BYTES, &bytes);
    }

    /// The dynamic offset of slot `i`.
    pub fn offset(i: u32) -> u32 {
        i * SLOT_BYTES as u32
    }
}

/// A storage buffer of `bytes` (at least 4), checked against the device's limits first.
pub fn storage_buffer(ctx: &GpuContext, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
    let bytes = bytes.max(4).next_multiple_of(4);
    ctx.check_buffer_size(label, bytes)?;
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    }))
}

/// A storage buffer holding `data`.
pub fn storage_init<T: Pod>(
    ctx: &GpuContext,
    label: &str,
    data: &[T],
) -> Result<wgpu::Buffer, GpuError> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    if bytes.len() < 4 {
        // New buffers are zeroed.
        return storage_buffer(ctx, label, 4);
    }
    // Not `create_buffer_init`: on a lost device its mapping panics; a queued write is
    // merely dropped, and the loss is reported by the next wait.
    let buffer = storage_buffer(ctx, label, bytes.len() as u64)?;
    if bytes.len().is_multiple_of(4) {
        ctx.queue.write_buffer(&buffer, 0, bytes);
    } else {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().next_multiple_of(4), 0);
        ctx.queue.write_buffer(&buffer, 0, &padded);
    }
    Ok(buffer)
}

/// A uniform buffer holding `bytes` (a multiple of 4). Written by the queue, not mapped at
/// creation: on a lost device a mapping panics, a queued write is merely dropped.
pub fn uniform_bytes(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    debug_assert!(
        bytes.len().is_multiple_of(4),
        "{label}: {} bytes",
        bytes.len()
    );
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes.len() as u64).max(4),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// A uniform buffer holding `value`.
pub fn uniform_init<T: Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    uniform_bytes(ctx, label, bytemuck::bytes_of(value))
}

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

/// Reads `len` f32s at element offset `offset` of `src` back to the CPU (tests, plots, saving
/// weights; never inside a training step).
pub fn read_f32(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    offset: u64,
    len: usize,
) -> Result<Vec<f32>, GpuError> {
    let bytes = (len as u64 * 4).max(4);
    let staging = ctx.scoped("reading back a buffer", || {
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        if len > 0 {
            enc.copy_buffer_to_buffer(src, offset * 4, &staging, 0, len as u64 * 4);
        }
        ctx.queue.submit([enc.finish()]);
        staging
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(GpuError::Readback(e.to_string())),
        Err(e) => return Err(GpuError::Readback(e.to_string())),
    }
    let out = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        bytemuck::cast_slice::<u8, f32>(&view)[..len].to_vec()
    };
    staging.unmap();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_list_is_in_declaration_order() {
        for (i, k) in K::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
    }

    #[test]
    fn every_kernel_names_a_known_shader() {
        for k in K::ALL {
            let (file, _) = k.entry_point();
            assert!(shaders::file(file).is_some(), "{k:?}: {file}");
        }
    }

    #[test]
    fn big_grids_fold_into_two_dimensions() {
        assert_eq!(grid_1d(1, 256), (1, 1));
        assert_eq!(grid_1d(256 * 65_535, 256), (65_535, 1));
        let (x, y) = grid_1d(256 * 65_536, 256);
        assert!(x <= MAX_GROUPS && x * y >= 65_536);
    }
}
