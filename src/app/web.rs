//! The app in a browser tab (wasm32): started by web/index.html on its canvas, with an
//! automation hook, `window.diffusionPlayground.status()`, that returns the app's state as
//! JSON (for tests and for a teacher's page that embeds the app).
//!
//! In a tab there is one thread: background jobs advance inside the frame loop
//! (`work::pump_background`). eframe renders through WebGPU where the browser has it, else
//! WebGL2; on WebGPU our kernels train on the page's device (`?backend=` and the settings
//! choose, as natively), never waiting for it, after a self-check against the CPU
//! (`gpu_check`); elsewhere the CPU backend trains in time slices.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::App;
use crate::gpu::GpuContext;
use crate::gpu::selfcheck::SelfCheck;

thread_local! {
    /// The newest status, written each frame by the app, read by `status()`.
    static STATUS: RefCell<String> = const { RefCell::new(String::new()) };
    /// The WebGPU device our kernels train on (the self-check's, the drill's).
    static DEVICE: RefCell<Option<GpuContext>> = const { RefCell::new(None) };
    /// A device of its own for training, asked for before the app starts (its adapter and
    /// instance kept alive with it).
    static TRAINING: RefCell<Option<(GpuContext, wgpu::Instance, wgpu::Adapter)>> =
        const { RefCell::new(None) };
    /// The device eframe draws with, on WebGPU (for the drill).
    static RENDER: RefCell<Option<wgpu::Device>> = const { RefCell::new(None) };
    /// The self-check of our kernels on that device (`gpu_check`).
    static CHECK: RefCell<Check> = const { RefCell::new(Check::NotRun) };
}

/// `gpu_check`: not run (nothing trains on WebGPU), running, or its verdict.
enum Check {
    NotRun,
    Running(Box<SelfCheck>),
    Done(String),
}

/// Remembers the device our kernels train on (called once at start).
pub(crate) fn set_device(ctx: Option<GpuContext>) {
    DEVICE.with(|d| *d.borrow_mut() = ctx);
}

/// The training device asked for at start, if the page got one. Training has a device apart
/// from the one eframe renders with, so that losing it (a GPU reset, the drill below) leaves
/// the page drawing while the CPU takes over; in a browser the reverse runs read their frames
/// back anyway, so nothing on the canvas needs the two to be one.
pub(crate) fn training_device() -> Option<GpuContext> {
    TRAINING.with(|t| t.borrow().as_ref().map(|(ctx, _, _)| ctx.clone()))
}

/// `window.diffusionPlayground.loseTrainingDevice()`: destroys the training device, as a GPU
/// reset would lose it (a drill for tests and for a lecturer who wants to see the fallback).
#[wasm_bindgen(js_name = diffusionPlaygroundLoseTrainingDevice)]
pub fn lose_training_device() -> bool {
    DEVICE.with(|d| {
        d.borrow()
            .as_ref()
            .map(|ctx| ctx.device.destroy())
            .is_some()
    })
}

/// Starts the self-check once our kernels train on the page's device, advances it, and
/// returns `gpu_check`: null while nothing trains on WebGPU, "running", "pass" or
/// "fail: …". A failure stops nothing by itself: a device failure moves training to the CPU
/// (`backend::ResilientTrainer`), and the status then says so.
fn gpu_check(trains_on_webgpu: bool) -> serde_json::Value {
    if !trains_on_webgpu {
        // The verdict is kept for when our kernels train again.
        return serde_json::Value::Null;
    }
    CHECK.with(|c| {
        let mut check = c.borrow_mut();
        if let Check::NotRun = *check {
            *check = match DEVICE.with(|d| d.borrow().clone()) {
                Some(ctx) => match SelfCheck::start(&ctx) {
                    Ok(run) => Check::Running(Box::new(run)),
                    Err(e) => Check::Done(format!("fail: {e}")),
                },
                None => Check::Done("fail: no WebGPU device".into()),
            };
        }
        if let Check::Running(run) = &mut *check
            && let Some(verdict) = run.poll()
        {
            *check = Check::Done(match verdict {
                Ok(()) => "pass".into(),
                Err(e) => format!("fail: {e}"),
            });
        }
        match &*check {
            Check::NotRun => serde_json::Value::Null,
            Check::Running(_) => "running".into(),
            Check::Done(verdict) => verdict.as_str().into(),
        }
    })
}

/// What `status()` returns: backend, adapter, trainer (why, and its last notice), step, loss,
/// fps, view, the data (its label, points, the last error), the reverse run and gpu_check.
pub(crate) fn publish(app: &App) {
    let train = &app.train;
    let fps = app.frame_stats.fps();
    let (backend, adapter) = match &app.gpu {
        Some(g) => (g.backend.clone(), g.adapter.clone()),
        None => ("none".to_owned(), String::new()),
    };
    let status = serde_json::json!({
        "backend": backend,
        "adapter": adapter,
        "trainer": train.backend.clone().unwrap_or_default(),
        "trainer_why": train.backend_why.clone().unwrap_or_default(),
        // The training job's last word (a GPU failure and the CPU taking over, a save).
        "trainer_notice": train.last_message,
        "trainer_error": train.error,
        "trainer_paused": train.paused_reason,
        "step": train.step,
        "samples_per_sec": train.samples_per_sec,
        "loss": train.loss.last().map(|l| l[1]),
        "fps": fps,
        "view": format!("{:?}", app.player.mode).to_lowercase(),
        "data": app.data.label,
        "points": app.data.points.len(),
        "data_error": app.data_error,
        // The reverse run on the canvas: where it samples and how far it is.
        "run": app.player.reverse_progress().map(|r| serde_json::json!({
            "device": if r.on_gpu { "gpu" } else { "cpu" },
            "step": r.steps_done,
            "steps": r.total_steps,
            "failed": r.failed,
        })),
        "gpu_check": gpu_check(train.backend.as_deref().is_some_and(|b| b.starts_with("wgpu"))),
    });
    STATUS.with(|s| *s.borrow_mut() = status.to_string());
}

/// `window.diffusionPlayground.status()`: the app's state as a JSON string.
#[wasm_bindgen(js_name = diffusionPlaygroundStatus)]
pub fn status() -> String {
    STATUS.with(|s| s.borrow().clone())
}

/// The value of `?key=` in the page's address.
fn query(key: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The page's `?particles=N` (a teacher's page, a test): the canvas's particle count, kept in
/// the range the slider allows.
fn asked_particles() -> Option<usize> {
    let value = query("particles")?;
    match value.parse::<usize>() {
        Ok(n) => Some(n.clamp(
            *super::settings::PARTICLES_RANGE.start(),
            *super::settings::PARTICLES_RANGE.end(),
        )),
        Err(_) => {
            log::warn!("?particles={value}: expected a whole number; using the saved count");
            None
        }
    }
}

/// The page's `?backend=cpu|wgpu|auto`, as the CLI's `--backend`.
fn asked_backend() -> Option<crate::train::BackendPref> {
    use crate::train::BackendPref;
    let value = query("backend")?;
    match value.as_str() {
        "cpu" => Some(BackendPref::Cpu),
        "wgpu" => Some(BackendPref::Wgpu),
        "auto" => Some(BackendPref::Auto),
        other => {
            log::warn!("?backend={other}: expected cpu, wgpu or auto; using the saved choice");
            None
        }
    }
}

/// Starts the app on the page's `<canvas id="playground">`.
pub fn start() {
    use eframe::wasm_bindgen::JsCast as _;
    eframe::WebLogger::init(log::LevelFilter::Warn).ok();
    wasm_bindgen_futures::spawn_local(async {
        let document = web_sys::window().and_then(|w| w.document());
        let Some(canvas) = document
            .and_then(|d| d.get_element_by_id("playground"))
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            log::error!("diffusion-playground: the page has no <canvas id=\"playground\">");
            return;
        };
        let mut options = eframe::WebOptions::default();
        if restarted_because().is_some() {
            // The page's WebGPU device was lost: draw with WebGL2 from now on.
            if let egui_wgpu::WgpuSetup::CreateNew(setup) = &mut options.wgpu_options.wgpu_setup {
                setup.instance_descriptor.backends = wgpu::Backends::GL;
            }
        } else if let Some(existing) = webgpu_device("diffusion-playground").await {
            restart_when_lost(&existing.device);
            RENDER.with(|r| *r.borrow_mut() = Some(existing.device.clone()));
            options.wgpu_options.wgpu_setup = existing.into();
            if let Some(t) = webgpu_device("diffusion-playground training").await {
                let ctx = GpuContext::from_shared(t.device, t.queue, t.adapter.get_info());
                TRAINING.with(|slot| *slot.borrow_mut() = Some((ctx, t.instance, t.adapter)));
            }
        }
        let started = eframe::WebRunner::new()
            .start(
                canvas,
                options,
                Box::new(|cc| {
                    // The page's backend from the start: training begins on it.
                    let app = App::restored_with(cc, true, |settings| {
                        if let Some(backend) = asked_backend() {
                            settings.train.backend = backend;
                        }
                        if let Some(n) = asked_particles() {
                            settings.particles = n;
                        }
                    });
                    Ok(Box::new(app))
                }),
            )
            .await;
        if let Err(e) = started {
            log::error!("diffusion-playground could not start: {e:?}");
        }
    });
}

/// Where a page that lost its WebGPU device keeps why, for the page that replaces it.
const LOST_KEY: &str = "diffusion-playground.render-device-lost";

thread_local! {
    /// Set by the drill, so that its own `destroy` counts as a loss (a page being closed
    /// destroys its devices too, and must not restart).
    static DRILL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// When the device eframe draws with is lost (a GPU reset, a driver update), nothing can draw
/// again on it: the page restarts with WebGL2, its settings kept (eframe stores them in the
/// browser), and the status bar says why.
fn restart_when_lost(device: &wgpu::Device) {
    device.set_device_lost_callback(|reason, message| {
        let drill = DRILL.with(std::cell::Cell::get);
        if reason == wgpu::DeviceLostReason::Destroyed && !drill {
            return;
        }
        let Some(window) = web_sys::window() else {
            return;
        };
        let why = format!(
            "the WebGPU device was lost: {}",
            message.trim_end_matches('.')
        );
        if let Ok(Some(storage)) = window.session_storage() {
            let _ = storage.set_item(LOST_KEY, &why);
        }
        log::warn!("{why}; restarting the page on WebGL2");
        let _ = window.location().reload();
    });
}

/// Why this page runs on WebGL2 after a restart, if it does.
pub(crate) fn restarted_because() -> Option<String> {
    web_sys::window()?
        .session_storage()
        .ok()??
        .get_item(LOST_KEY)
        .ok()?
}

/// `window.diffusionPlayground.loseRenderDevice()`: destroys the device eframe draws with, as
/// a GPU reset would lose it (a drill): the page restarts on WebGL2.
#[wasm_bindgen(js_name = diffusionPlaygroundLoseRenderDevice)]
pub fn lose_render_device() -> bool {
    let Some(device) = RENDER.with(|r| r.borrow().clone()) else {
        return false;
    };
    DRILL.with(|d| d.set(true));
    device.destroy();
    true
}

/// A WebGPU device, from an adapter asked for it alone; `None` where there is no WebGPU
/// (plain http from another machine, or a browser without it), and eframe falls back to WebGL2.
///
/// eframe's own set-up first requests an adapter only to see whether WebGPU exists. In
/// Chromium 156 (headless, SwiftShader) collecting that unused adapter a second later lost
/// every device of the page ("A valid external Instance reference no longer exists"): the
/// canvas went blank and our kernels with it. Asking once, and keeping what we asked for,
/// avoids that.
async fn webgpu_device(label: &str) -> Option<egui_wgpu::WgpuSetupExisting> {
    if !web_sys::window().is_some_and(|w| w.is_secure_context()) {
        return None;
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::BROWSER_WEBGPU,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .ok()?;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some(label),
            required_limits: adapter.limits(),
            ..wgpu::DeviceDescriptor::default()
        })
        .await
        .ok()?;
    Some(egui_wgpu::WgpuSetupExisting {
        instance,
        adapter,
        device,
        queue,
    })
}
