//! The adapter and device the kernels run on: one of our own, or the one eframe renders with
//! (docs/architecture.md §1, §6), so that weights and particles can stay on the GPU.

use std::sync::{Arc, Mutex, PoisonError};

use super::error::GpuError;
use super::kernels::Kernels;

/// A device, its queue and what we know about the adapter behind them. Cheap to clone (the
/// wgpu handles are reference counted); the trainer and the sampler share one.
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Set by the device-lost callback (devices we created).
    lost: Arc<Mutex<Option<String>>>,
    /// The pipelines, compiled on first use and shared by every clone.
    kernels: Arc<Mutex<Option<Arc<Kernels>>>>,
    /// In a browser: submissions made and completed, since nothing there may wait for one.
    #[cfg(target_arch = "wasm32")]
    submissions: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

/// The backends we look for compute adapters on. GL is left out: under a WebGL2-like limit
/// set compute pipelines fail (docs/architecture.md §6).
const BACKENDS: wgpu::Backends = wgpu::Backends::PRIMARY;

/// Every adapter wgpu can see on this machine (for the UI, `--backend auto` and `bench`).
pub fn enumerate_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(BACKENDS))
        .iter()
        .map(|a| a.get_info())
        .collect()
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if desc.backends == wgpu::Backends::all() {
        desc.backends = BACKENDS;
    }
    wgpu::Instance::new(desc)
}

/// How we rank adapters: a discrete GPU first, a CPU (lavapipe, llvmpipe, WARP) last.
fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, cpu)": the adapter as the UI and the CLI show it.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    // Browsers name no adapter (WebGPU's `description` is empty in Chromium).
    if info.name.is_empty() && info.backend == wgpu::Backend::BrowserWebGpu {
        return match info.device_type {
            wgpu::DeviceType::Cpu => "the browser's software WebGPU adapter".to_owned(),
            _ => "the browser's WebGPU adapter".to_owned(),
        };
    }
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Other => "other",
        wgpu::DeviceType::Cpu => "cpu",
    };
    format!("{} ({:?}, {kind})", info.name, info.backend)
}

impl GpuContext {
    /// Our own device on the best adapter (a real GPU before a software one), with every
    /// limit the adapter offers, so large batches fit in one buffer.
    pub fn new() -> Result<Self, GpuError> {
        let instance = instance();
        let mut adapters = pollster::block_on(instance.enumerate_adapters(BACKENDS));
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(GpuError::NoAdapter(
                "wgpu found no Vulkan, Metal or DX12 adapter; on Linux install a Vulkan driver \
                 (for a software one: mesa-vulkan-drivers libvulkan1)"
                    .to_owned(),
            ));
        };
        Self::from_adapter(&adapter)
    }

    /// Our own device on `adapter`.
    pub fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let desc = wgpu::DeviceDescriptor {
            label: Some("diffusion-playground compute"),
            required_features: wgpu::Features::empty(),
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            GpuError::RequestDevice {
                adapter: describe(&info),
                reason: e.to_string(),
            }
        })?;
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            *flag.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(format!("{reason:?}: {message}"));
        });
        // wgpu's default handler panics on an error nobody scoped; ours only logs it, and the
        // error scopes around every operation (`scoped`) turn errors into `GpuError`s.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("wgpu: uncaptured error: {e}");
        }));
        Ok(Self {
            device,
            queue,
            info,
            lost,
            kernels: Arc::default(),
            #[cfg(target_arch = "wasm32")]
            submissions: Arc::default(),
        })
    }

    /// The device and queue eframe renders with (`RenderState::device`, `::queue`,
    /// `::adapter.get_info()`), so that buffers can be shared with the particle renderer.
    pub fn from_shared(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        // In a browser there are no error scopes we could wait on (`scoped`): a lost device
        // or an error nobody caught marks the context failed, and the trainer moves to the CPU.
        #[cfg(target_arch = "wasm32")]
        {
            let flag = Arc::clone(&lost);
            device.set_device_lost_callback(move |reason, message| {
                log::warn!("the WebGPU device was lost: {reason:?}: {message}");
                *flag.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("{reason:?}: {message}"));
            });
            let flag = Arc::clone(&lost);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                log::warn!("WebGPU error: {e}");
                let mut slot = flag.lock().unwrap_or_else(PoisonError::into_inner);
                slot.get_or_insert_with(|| format!("a GPU error: {e}"));
            }));
        }
        Self {
            device,
            queue,
            info,
            lost,
            kernels: Arc::default(),
            #[cfg(target_arch = "wasm32")]
            submissions: Arc::default(),
        }
    }

    /// Every pipeline of the backend, compiled once per device.
    pub fn kernels(&self) -> Result<Arc<Kernels>, GpuError> {
        let mut slot = self.kernels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = &*slot {
            return Ok(Arc::clone(k));
        }
        let k = Arc::new(Kernels::new(self)?);
        *slot = Some(Arc::clone(&k));
        Ok(k)
    }

    /// The adapter as the UI shows it.
    pub fn adapter_name(&self) -> String {
        describe(&self.info)
    }

    /// Whether the "GPU" is a CPU rasteriser (lavapipe): slower than our CPU backend.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The limits kernels must respect.
    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// An error if the device was lost.
    pub fn check_alive(&self) -> Result<(), GpuError> {
        match &*self.lost.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(why) => Err(GpuError::DeviceLost(why.clone())),
            None => Ok(()),
        }
    }

    /// Runs `f` (resource creation, encoding, submission) under error scopes, so that a
    /// validation error, an internal error or an out-of-memory becomes a `GpuError` naming
    /// `what` instead of a panic.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // Popped innermost first.
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(internal.pop()),
            pollster::block_on(oom.pop()),
        ];
        self.check_alive()?;
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(match e {
                wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(what.to_owned()),
                other => {
                    let message = other.to_string();
                    if message.to_lowercase().contains("lost") {
                        GpuError::DeviceLost(message)
                    } else {
                        GpuError::Device {
                            what: what.to_owned(),
                            message,
                        }
                    }
                }
            });
        }
        Ok(out)
    }

    /// In a browser an error scope's result arrives later, and nothing may wait for it: `f`
    /// runs, and errors reach the context through its uncaptured-error handler
    /// (`from_shared`), which `check_alive` reports from then on.
    #[cfg(target_arch = "wasm32")]
    pub fn scoped<T>(&self, _what: &str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        self.check_alive()?;
        let out = f();
        self.check_alive()?;
        Ok(out)
    }

    /// Blocks until the GPU has finished everything submitted so far.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Device {
                what: "waiting for the GPU".to_owned(),
                message: e.to_string(),
            })?;
        self.check_alive()
    }

    /// Keeps at most `max` submissions in flight: records `index` and, when there are more,
    /// waits for the oldest. Without it a fast CPU could queue thousands of training steps
    /// ahead of a slow GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn throttle(
        &self,
        in_flight: &mut std::collections::VecDeque<wgpu::SubmissionIndex>,
        index: wgpu::SubmissionIndex,
        max: usize,
    ) -> Result<(), GpuError> {
        in_flight.push_back(index);
        while in_flight.len() > max {
            if let Some(oldest) = in_flight.pop_front() {
                self.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(oldest),
                        timeout: None,
                    })
                    .map_err(|e| GpuError::Device {
                        what: "waiting for the GPU".to_owned(),
                        message: e.to_string(),
                    })?;
            }
        }
        self.check_alive()
    }

    /// In a browser: counts the submission and its completion instead of waiting; callers
    /// stop submitting while `in_flight` is at their limit.
    #[cfg(target_arch = "wasm32")]
    pub fn throttle(
        &self,
        in_flight: &mut std::collections::VecDeque<wgpu::SubmissionIndex>,
        _index: wgpu::SubmissionIndex,
        _max: usize,
    ) -> Result<(), GpuError> {
        use std::sync::atomic::Ordering;
        in_flight.clear();
        self.submissions.0.fetch_add(1, Ordering::Relaxed);
        let counts = Arc::clone(&self.submissions);
        self.queue.on_submitted_work_done(move || {
            counts.1.fetch_add(1, Ordering::Relaxed);
        });
        self.check_alive()
    }

    /// Submissions counted by `throttle` that the GPU has not finished (0 natively, where
    /// `throttle` waits instead).
    pub fn in_flight(&self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        {
            use std::sync::atomic::Ordering;
            let (made, done) = &*self.submissions;
            made.load(Ordering::Relaxed)
                .saturating_sub(done.load(Ordering::Relaxed))
        }
        #[cfg(not(target_arch = "wasm32"))]
        0
    }

    /// Checks that one buffer of `bytes` fits the device's limits, before asking for it.
    pub fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limits = self.device.limits();
        let limit = limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size);
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: what.to_owned(),
                bytes,
                limit,
            });
        }
        Ok(())
    }
}
