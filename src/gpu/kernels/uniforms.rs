//! The ids and uniform blocks the kernels read: each `#[repr(C)]` struct mirrors a WGSL
//! struct field for field, its size checked at compile time.

use bytemuck::{Pod, Zeroable};

use crate::math::{Process, Schedule};
use crate::nn::{Activation, Parameterization};

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

/// The id dsm.wgsl uses for a process.
pub fn process_id(p: Process) -> u32 {
    match p {
        Process::Vp => 0,
        Process::Fm => 1,
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
    pub process: u32,
    pub _pad: u32,
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
