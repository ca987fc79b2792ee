//! Every kernel of the backend (`K`), what each binds, and the pipelines built from them
//! once per device (`Kernels`), with the bind groups made against their layouts.

use std::borrow::Cow;
use std::collections::HashMap;

use super::buffers::Slots;
use crate::gpu::context::GpuContext;
use crate::gpu::error::GpuError;
use crate::gpu::shaders;

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
}
