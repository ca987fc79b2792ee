//! Which backend trains and samples: the CPU reference (`nn`) or our WGSL kernels (`gpu`).
//!
//! - this file: the adapter choice. `--backend cpu|wgpu|auto` ([`BackendChoice`]); `auto`
//!   takes the GPU only when it is a real one: a software adapter such as lavapipe
//!   (`DeviceType::Cpu`) is slower than the CPU backend, so then, or with no adapter at all,
//!   the CPU trains (docs/architecture.md §1, §6). [`select`] says which, and why, in one line
//!   for stderr and the UI; [`sample`] samples on the chosen one;
//! - `trainer`: the [`TrainBackend`] seam the training job and the CLI hold, and the CPU
//!   trainer behind it; settings change through one [`TrainBackend::apply`];
//! - `gpu_trainer`: the WGSL trainer behind the same seam;
//! - `resilient`: [`ResilientTrainer`], which moves to the CPU when the GPU fails (from the
//!   last weights it could read back) and says why in [`TrainBackend::notice`]. A
//!   class-conditional network is CPU-only for now: the GPU refuses it and the CPU trains it,
//!   with a notice.

mod gpu_trainer;
mod resilient;
mod trainer;

use std::fmt;
use std::str::FromStr;

use crate::Point;
use crate::gpu::{GpuContext, describe, enumerate_adapters};
use crate::nn::NetModel;

pub use resilient::{ResilientTrainer, make_trainer, make_trainer_with_labels};
pub use trainer::{BackendError, CpuTrainer, GpuSnapshot, TrainBackend};

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    Cpu,
    Wgpu,
    /// wgpu on a real GPU, else the CPU.
    #[default]
    Auto,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] =
        [BackendChoice::Cpu, BackendChoice::Wgpu, BackendChoice::Auto];

    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Auto => "auto",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown backend name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?} (expected cpu, wgpu or auto)")]
pub struct ParseBackendError(pub String);

impl FromStr for BackendChoice {
    type Err = ParseBackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(BackendChoice::Cpu),
            "wgpu" | "gpu" => Ok(BackendChoice::Wgpu),
            "auto" => Ok(BackendChoice::Auto),
            _ => Err(ParseBackendError(s.to_owned())),
        }
    }
}

/// The backend that will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Cpu,
    Wgpu,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

/// The outcome of [`select`]: the backend, its device (for wgpu), and one line saying which
/// and why, e.g. `backend: cpu (adapter llvmpipe (LLVM 15.0.6, 256 bits) is a CPU)`.
#[derive(Clone, Debug)]
pub struct Selection {
    pub kind: BackendKind,
    pub gpu: Option<GpuContext>,
    pub line: String,
}

impl Selection {
    fn cpu(why: String) -> Self {
        Self {
            kind: BackendKind::Cpu,
            gpu: None,
            line: format!("backend: cpu ({why})"),
        }
    }

    fn wgpu(ctx: GpuContext, note: &str) -> Self {
        Self {
            kind: BackendKind::Wgpu,
            line: format!("backend: wgpu on {}{note}", ctx.adapter_name()),
            gpu: Some(ctx),
        }
    }

    /// The adapter's name when wgpu was chosen.
    pub fn adapter(&self) -> Option<String> {
        self.gpu.as_ref().map(GpuContext::adapter_name)
    }
}

/// Chooses a backend on a device of our own (the CLI).
pub fn select(choice: BackendChoice) -> Selection {
    select_with(choice, None)
}

/// Chooses a backend; `shared` is a device already open (eframe's), used instead of opening
/// one when wgpu is chosen.
pub fn select_with(choice: BackendChoice, shared: Option<GpuContext>) -> Selection {
    if cfg!(target_arch = "wasm32") {
        return select_in_browser(choice, shared);
    }
    let open = |shared: Option<GpuContext>| match shared {
        Some(ctx) => Ok(ctx),
        None => GpuContext::new(),
    };
    match choice {
        BackendChoice::Cpu => Selection::cpu("asked for".into()),
        BackendChoice::Wgpu => match open(shared) {
            Ok(ctx) if ctx.is_software() => {
                Selection::wgpu(ctx, " (a CPU adapter: slower than the cpu backend)")
            }
            Ok(ctx) => Selection::wgpu(ctx, ""),
            Err(e) => Selection::cpu(format!("wgpu asked for, but {e}")),
        },
        BackendChoice::Auto => {
            // Look before opening a device: a software adapter is not worth one.
            let best = match &shared {
                Some(ctx) => Some(ctx.info.clone()),
                None => best_adapter(),
            };
            match best {
                None => Selection::cpu("no GPU adapter found".into()),
                Some(info) if info.device_type == wgpu::DeviceType::Cpu => {
                    Selection::cpu(format!("adapter {} is a CPU", describe_short(&info)))
                }
                Some(_) => match open(shared) {
                    Ok(ctx) => Selection::wgpu(ctx, ""),
                    Err(e) => Selection::cpu(e.to_string()),
                },
            }
        }
    }
}

/// In a browser our kernels train on the page's own WebGPU device (opening another would
/// block); WebGL2 has no compute shaders. Auto, as natively, leaves a software adapter
/// (SwiftShader) to the CPU; `wgpu` forces our kernels there too.
fn select_in_browser(choice: BackendChoice, shared: Option<GpuContext>) -> Selection {
    let Some(ctx) = shared.filter(|c| c.info.backend == wgpu::Backend::BrowserWebGpu) else {
        return Selection::cpu(match choice {
            BackendChoice::Cpu => "asked for".into(),
            _ => "the page renders with WebGL2, which has no compute shaders".into(),
        });
    };
    let software = is_software_adapter(&ctx.info);
    match choice {
        BackendChoice::Cpu => Selection::cpu("asked for".into()),
        BackendChoice::Wgpu if software => Selection::wgpu(
            ctx,
            " (WebGPU on a software adapter: slower than the cpu backend)",
        ),
        BackendChoice::Wgpu => Selection::wgpu(ctx, " (WebGPU)"),
        BackendChoice::Auto if software => Selection::cpu(
            "the WebGPU adapter is a software one (SwiftShader): the CPU is faster".into(),
        ),
        BackendChoice::Auto => Selection::wgpu(ctx, " (WebGPU)"),
    }
}

/// A CPU adapter by its type, or by name where a browser reports no type (SwiftShader).
fn is_software_adapter(info: &wgpu::AdapterInfo) -> bool {
    let named = |s: &str| s.to_lowercase().contains("swiftshader");
    info.device_type == wgpu::DeviceType::Cpu
        || named(&info.name)
        || named(&info.driver)
        || named(&info.driver_info)
}

fn best_adapter() -> Option<wgpu::AdapterInfo> {
    let mut all = enumerate_adapters();
    all.sort_by_key(|i| i.device_type == wgpu::DeviceType::Cpu);
    all.into_iter().next()
}

fn describe_short(info: &wgpu::AdapterInfo) -> String {
    let full = describe(info);
    match full.rfind(" (") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

/// Samples `n` particles on the selected backend: GPU-resident particles on wgpu (falling
/// back to the CPU sampler if the GPU fails, with the reason), the CPU sampler otherwise.
/// Returns the particles, the network evaluations, and a notice if the GPU failed.
pub fn sample(
    selection: &Selection,
    model: &NetModel,
    cfg: crate::math::solvers::SamplerConfig,
    n: usize,
) -> (Vec<Point>, usize, Option<String>) {
    if let (BackendKind::Wgpu, Some(ctx)) = (selection.kind, &selection.gpu) {
        match crate::gpu::sampler::sample(ctx, model, cfg, n) {
            Ok((x, nfe)) => return (x, nfe, None),
            Err(e) => {
                let (x, nfe) = crate::math::solvers::sample(model, *model.schedule(), cfg, n);
                return (
                    x,
                    nfe,
                    Some(format!("the GPU sampler failed ({e}); sampled on the CPU")),
                );
            }
        }
    }
    let (x, nfe) = crate::math::solvers::sample(model, *model.schedule(), cfg, n);
    (x, nfe, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::TrainConfig;

    #[test]
    fn choices_parse_and_print() {
        for c in BackendChoice::ALL {
            assert_eq!(c.name().parse::<BackendChoice>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(" WGPU ".parse::<BackendChoice>(), Ok(BackendChoice::Wgpu));
        assert!("cuda".parse::<BackendChoice>().is_err());
    }

    #[test]
    fn cpu_choice_needs_no_device() {
        let s = select(BackendChoice::Cpu);
        assert_eq!(s.kind, BackendKind::Cpu);
        assert!(s.gpu.is_none());
        assert_eq!(s.line, "backend: cpu (asked for)");
    }

    #[test]
    fn cpu_trainer_pauses_on_nan() {
        let cfg = TrainConfig {
            batch: 8,
            lr: 1e30,
            net: crate::nn::MlpConfig {
                width: 4,
                depth: 1,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let data: Vec<Point> = (0..20).map(|i| [i as f32 * 0.1, 1.0]).collect();
        let mut t = CpuTrainer::new(cfg, &data).expect("trainer");
        let mut failed = false;
        for _ in 0..50 {
            if let Err(e) = t.train(1) {
                assert!(e.is_non_finite(), "{e}");
                failed = true;
                break;
            }
        }
        assert!(failed, "lr 1e30 must give a non-finite loss");
        assert!(t.paused().is_some());
        assert!(t.train(1).is_err());
        assert!(t.params().expect("params").iter().all(|p| p.is_finite()));
        t.resume();
        assert!(t.paused().is_none());
    }
}
