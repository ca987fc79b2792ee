//! The app in a browser tab (wasm32): started by web/index.html on its canvas, with an
//! automation hook, `window.diffusionPlayground.status()`, that returns the app's state as
//! JSON (for tests and for a teacher's page that embeds the app).
//!
//! In a tab there is one thread: background jobs advance inside the frame loop
//! (`work::pump_background`), training runs on the CPU backend, and eframe renders through
//! WebGPU where the browser has it, else WebGL2.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::App;

thread_local! {
    /// The newest status, written each frame by the app, read by `status()`.
    static STATUS: RefCell<String> = const { RefCell::new(String::new()) };
}

/// What `status()` returns: backend, adapter, trainer, step, loss, fps, view, the data (its
/// label, points, the last error) and gpu_check.
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
        "step": train.step,
        "loss": train.loss.last().map(|l| l[1]),
        "fps": fps,
        "view": format!("{:?}", app.player.mode).to_lowercase(),
        "data": app.data.label,
        "points": app.data.points.len(),
        "data_error": app.data_error,
        "gpu_check": serde_json::Value::Null,
    });
    STATUS.with(|s| *s.borrow_mut() = status.to_string());
}

/// `window.diffusionPlayground.status()`: the app's state as a JSON string.
#[wasm_bindgen(js_name = diffusionPlaygroundStatus)]
pub fn status() -> String {
    STATUS.with(|s| s.borrow().clone())
}

/// The page's `?backend=cpu|wgpu|auto`, as the CLI's `--backend`.
fn asked_backend() -> Option<crate::train::BackendPref> {
    use crate::train::BackendPref;
    let search = web_sys::window()?.location().search().ok()?;
    let value = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("backend="))?;
    match value {
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
        let started = eframe::WebRunner::new()
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(|cc| {
                    let mut app = App::new(cc, None);
                    if let Some(backend) = asked_backend() {
                        app.settings.train.backend = backend;
                    }
                    Ok(Box::new(app))
                }),
            )
            .await;
        if let Err(e) = started {
            log::error!("diffusion-playground could not start: {e:?}");
        }
    });
}
