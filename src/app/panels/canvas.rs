//! The centre: transport buttons, the particle canvas and the time scrubber.
//!
//! Particles (and the faint data under them) go to the GPU as one instanced draw
//! (`particles.rs`); trails, arrows, the grid and the labels are ordinary egui shapes.

use std::sync::Arc;

use egui::{Align2, Color32, FontId, Pos2, Rect, RichText, Sense, Shape, Stroke, Ui, Vec2};

use crate::Point;
use crate::math::rng::{STREAM_PROBE, normal2};
use crate::teach::mesh::{Mesh, flow_mesh};

use crate::app::App;
use crate::app::datasets::Drawing;
use crate::app::fill;
use crate::app::jobs::Task;
use crate::app::lines::Lines;
use crate::app::particles::{Instance, ParticleCallback, Resident};
use crate::app::player::{Colors, Mode};
use crate::app::settings::{Arrows, ScoreSource, short_label, tag};

/// World units from the canvas centre to its nearer edge at zoom 1.
const HALF_EXTENT: f32 = 3.2;
/// Particles drawn as egui circles when there is no wgpu renderer (tests, GL).
const FALLBACK_PARTICLES: usize = 3000;
/// World units between the centres of drawn points along a stroke.
const STROKE_SPACING: f32 = 0.04;
/// Data points drawn faintly under the particles, at most: enough to show the data's shape.
/// Each drawn point costs a software rasteriser (lavapipe) as much as a particle, and the
/// particles are most of its frame.
const DATA_BACKDROP: usize = 2000;
/// Arrows per row of the score field.
const ARROW_GRID: usize = 17;

/// Canvas state that is not worth saving.
#[derive(Default)]
pub struct CanvasState {
    pub pan: Vec2,
    arrows: Option<(ArrowKey, ArrowField, ArrowField)>,
    /// Counter for the jitter of drawn points.
    drawn_counter: u32,
    /// Where the stroke being drawn was last frame (world units).
    last_stroke: Option<Point>,
    /// A fixed draw of N(0, I) (see `prior_layer`).
    prior: Option<Vec<Point>>,
    /// The particle followed through the reverse run (clicked).
    pub followed: Option<usize>,
    /// Where the canvas was drawn last frame (tests check its share of the window).
    pub rect: Option<Rect>,
    /// The deforming grid: what it was computed for, and the computation.
    mesh_key: Option<MeshKey>,
    pub(crate) mesh: Task<Mesh>,
}

/// What the deforming grid depends on: the reverse run's model (the grid shows the flow the
/// particles on the canvas follow) and the data.
#[derive(Clone, Copy, PartialEq)]
struct MeshKey {
    process: crate::math::Process,
    schedule: crate::math::Schedule,
    source: ScoreSource,
    weights: u64,
    data: u64,
}

/// Arrows as (base point, vector) in world units.
type ArrowField = Vec<(Point, Point)>;

#[derive(Clone, PartialEq)]
struct ArrowKey {
    t_millis: i64,
    view: [i32; 4],
    model_version: u64,
    process: crate::math::Process,
    schedule: crate::math::Schedule,
    data: u64,
}

/// World ↔ screen mapping of the canvas rect.
#[derive(Clone, Copy)]
struct View {
    rect: Rect,
    center: Point,
    /// Screen points per world unit.
    scale: f32,
}

impl View {
    fn to_screen(self, p: Point) -> Pos2 {
        self.rect.center()
            + Vec2::new(
                (p[0] - self.center[0]) * self.scale,
                -(p[1] - self.center[1]) * self.scale,
            )
    }

    fn to_world(self, s: Pos2) -> Point {
        let d = s - self.rect.center();
        [
            self.center[0] + d.x / self.scale,
            self.center[1] - d.y / self.scale,
        ]
    }

    fn half_extent(self) -> [f32; 2] {
        [
            0.5 * self.rect.width() / self.scale,
            0.5 * self.rect.height() / self.scale,
        ]
    }
}

pub fn canvas_ui(app: &mut App, ui: &mut Ui) {
    transport_ui(app, ui);
    let scrubber_height = ui.spacing().interact_size.y + 14.0;
    let size = ui.available_size() - Vec2::new(0.0, scrubber_height);
    let (rect, response) =
        ui.allocate_exact_size(size.max(Vec2::splat(50.0)), Sense::click_and_drag());
    app.canvas.rect = Some(rect);
    let view = View {
        rect,
        center: [-app.canvas.pan.x, -app.canvas.pan.y],
        scale: rect.width().min(rect.height()) / (2.0 * HALF_EXTENT) * app.settings.zoom,
    };
    input(app, ui, &response, &view);

    let dark = ui.visuals().dark_mode;
    let painter = ui.painter_at(rect);
    let background = if dark {
        Color32::from_rgb(16, 18, 24)
    } else {
        Color32::from_rgb(250, 250, 252)
    };
    let gpu = app.gpu.is_some();
    // Ids fixed by the panel, not the layout: each layer keeps its GPU buffers by id.
    let layer = ui.scope_id().with("canvas layer");
    fill::fill_rect(&painter, layer, rect, 6.0, background, gpu);
    grid(&view, dark).paint(&painter, layer.with("grid"), rect, gpu);
    if app.settings.axis_ticks {
        axis_ticks(&painter, &view, dark);
    }

    if let Some(drawing) = &app.drawing {
        drawing_layer(&painter, &view, drawing);
        painter.text(
            rect.left_top() + Vec2::new(12.0, 10.0),
            Align2::LEFT_TOP,
            "Draw your own: drag to paint points, then “Train on drawing”",
            FontId::proportional(16.0),
            Color32::from_rgb(255, 190, 90),
        );
    } else {
        let frame = app.player.frame(&app.settings);
        particles_layer(app, ui, &painter, &view, &frame, dark);
        if app.settings.show_trails {
            // Thicker for the back row in presentation mode.
            let width = if app.settings.presentation { 2.0 } else { 1.0 };
            trails_layer(&view, &frame, dark, width).paint(
                &painter,
                layer.with("trails"),
                rect,
                gpu,
            );
        }
        if app.settings.show_mesh {
            mesh_layer(app, ui.ctx(), &view, frame.t, dark).paint(
                &painter,
                layer.with("mesh"),
                rect,
                gpu,
            );
        }
        if app.settings.arrows != Arrows::Off {
            arrows_layer(app, &view, frame.t).paint(&painter, layer.with("arrows"), rect, gpu);
        }
        if app.player.mode == Mode::Forward {
            prior_layer(
                &mut app.canvas,
                &painter,
                &view,
                frame.t,
                dark,
                (layer, gpu, app.settings.presentation),
            );
        }
        if let Some(i) = app.canvas.followed {
            followed_layer(app, &painter, &view, i);
        }
        overlay(app, &painter, &view, &frame);
    }
    scrubber_ui(app, ui);
}

fn transport_ui(app: &mut App, ui: &mut Ui) {
    // Wrapped: at a narrow window (or presentation mode's large text) a second row is better
    // than a toolbar wider than the canvas.
    ui.horizontal_wrapped(|ui| {
        let mode = app.player.mode;
        let size = ui
            .style()
            .text_styles
            .get(&egui::TextStyle::Button)
            .map_or(13.0, |f| f.size)
            * 1.1;
        let big = |s: &str| RichText::new(s).size(size);
        if ui
            .selectable_label(mode == Mode::Forward, big("Forward: data → noise"))
            .on_hover_text("Play the forward process from t = 0. Shortcut: F")
            .clicked()
        {
            app.player.play_mode(Mode::Forward);
        }
        if ui
            .selectable_label(mode == Mode::Reverse, big("Reverse: noise → data"))
            .on_hover_text("Sample from N(0, I) back to data with the chosen sampler. Shortcut: R")
            .clicked()
        {
            app.player.play_mode(Mode::Reverse);
        }
        ui.separator();
        let playing = app.player.playing;
        if ui
            .button(big(if playing { "Pause" } else { "▶ Play" }))
            .on_hover_text("Shortcut: space")
            .clicked()
        {
            app.player.toggle_play();
        }
        // The SDE/ODE pair, both named, one running: a click runs the other from the same
        // noise on the same grid.
        let sampler = &mut app.settings.sampler;
        let sde = sampler.is_sde();
        for (is_sde, kind) in [(true, sampler.sde_choice()), (false, sampler.ode_choice())] {
            let name = if is_sde { "SDE" } else { "ODE" };
            if ui
                .selectable_label(sde == is_sde, big(&format!("{name}: {}", tag(kind))))
                .on_hover_text(format!(
                    "{}. Switch between the stochastic sampler and the deterministic solver, \
                     from the same starting noise on the same time grid. Shortcut: O",
                    short_label(kind)
                ))
                .clicked()
            {
                sampler.set_family(is_sde);
            }
        }
        ui.checkbox(&mut app.settings.auto_loop, "loop")
            .on_hover_text("Forward, then reverse, then again");
    });
}

/// Points of the N(0, I) draw shown beside x_t at the end of the forward run.
const PRIOR_POINTS: usize = 600;

/// Near t = 1 in the forward run, a draw of N(0, I) as rings over the particles: where every
/// reverse run starts. Where the schedule is too short (or the data too far from the origin)
/// the two clouds visibly differ, and the reverse run starts in the wrong place.
fn prior_layer(
    state: &mut CanvasState,
    painter: &egui::Painter,
    view: &View,
    t: f64,
    dark: bool,
    (layer, gpu, presentation): (egui::Id, bool, bool),
) {
    let shown = ((t - 0.75) / 0.2).clamp(0.0, 1.0) as f32;
    if shown <= 0.0 {
        return;
    }
    let prior = state
        .prior
        .get_or_insert_with(|| crate::math::solvers::prior(PRIOR_POINTS, 0x9_0000));
    let colour = if dark {
        Color32::from_white_alpha((200.0 * shown) as u8)
    } else {
        Color32::from_black_alpha((200.0 * shown) as u8)
    };
    // As antialiased quads through the lines callback: hundreds of rings as egui shapes
    // would cost a software renderer several milliseconds a frame.
    let mut rings = Lines::default();
    let stroke = egui::Stroke::new(1.2, colour);
    for p in prior.iter() {
        let pos = view.to_screen(*p);
        if view.rect.contains(pos) {
            rings.circle(pos, 3.0, stroke);
        }
    }
    rings.paint(painter, layer.with("prior"), view.rect, gpu);
    // Under the t and α, σ readout (`overlay`): the bottom of the canvas holds the run's
    // caption and, while the network learns, its note.
    let scale = if presentation { 1.5 } else { 1.0 };
    painter.text(
        view.rect.left_top() + Vec2::new(12.0, 10.0 + 58.0 * scale),
        Align2::LEFT_TOP,
        "rings: a draw of N(0, I), where every reverse run starts",
        FontId::proportional(14.0 * scale),
        colour,
    );
}

fn scrubber_ui(app: &mut App, ui: &mut Ui) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let mut t = app.player.t;
        let body = ui
            .style()
            .text_styles
            .get(&egui::TextStyle::Body)
            .map_or(13.0, |f| f.size);
        // Room for the value box and the label, whatever the text size.
        ui.spacing_mut().slider_width = (ui.available_width() - 9.0 * body - 24.0).max(100.0);
        // No fixed decimals: a slider rounds its value each frame and would report that as
        // a change, which pauses playback.
        let response = ui
            .add(egui::Slider::new(&mut t, 0.0..=1.0).text("time t"))
            .on_hover_text("Scrub the time (pauses). Shortcuts: ← / →");
        if response.changed() && t != app.player.t {
            app.player.set_t(t);
        }
    });
}

fn input(app: &mut App, ui: &Ui, response: &egui::Response, view: &View) {
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            app.settings.zoom = (app.settings.zoom * (scroll * 0.002).exp()).clamp(0.3, 4.0);
        }
    }
    if let Some(drawing) = app.drawing.as_mut() {
        if (response.dragged() || response.clicked())
            && let Some(pos) = response.interact_pointer_pos()
        {
            // Fill the segment since the last frame (the pointer moves far between frames
            // when rendering is slow), with jittered points for a stroke of some thickness.
            let to = view.to_world(pos);
            if app.canvas.last_stroke.is_none() {
                drawing.begin_stroke();
            }
            let from = app.canvas.last_stroke.unwrap_or(to);
            let length = (to[0] - from[0]).hypot(to[1] - from[1]);
            let n = ((length / STROKE_SPACING) as usize).clamp(1, 200);
            for k in 1..=n {
                let f = k as f32 / n as f32;
                let c = [
                    from[0] + f * (to[0] - from[0]),
                    from[1] + f * (to[1] - from[1]),
                ];
                for _ in 0..2 {
                    app.canvas.drawn_counter += 1;
                    let z = normal2(0xD4A7, 0, app.canvas.drawn_counter, STREAM_PROBE);
                    drawing.push([c[0] + 0.03 * z[0], c[1] + 0.03 * z[1]]);
                }
            }
            app.canvas.last_stroke = Some(to);
        } else {
            app.canvas.last_stroke = None;
        }
        return;
    }
    if response.dragged() {
        let d = response.drag_delta() / view.scale;
        app.canvas.pan += Vec2::new(d.x, -d.y);
    }
    // A click picks the particle nearest to it to follow through the reverse run (a click
    // on empty canvas lets go).
    if response.clicked()
        && app.player.mode == Mode::Reverse
        && let Some(pos) = response.interact_pointer_pos()
    {
        let frame = app.player.frame(&app.settings);
        let nearest = frame
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, view.to_screen(*p).distance(pos)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        app.canvas.followed = nearest.filter(|(_, d)| *d < 12.0).map(|(i, _)| i);
    }
    if response.double_clicked() {
        app.canvas.pan = Vec2::ZERO;
        app.settings.zoom = 1.0;
    }
}

fn grid(view: &View, dark: bool) -> Lines {
    let mut lines = Lines::default();
    let color = if dark {
        Color32::from_white_alpha(14)
    } else {
        Color32::from_black_alpha(18)
    };
    let axis = if dark {
        Color32::from_white_alpha(34)
    } else {
        Color32::from_black_alpha(40)
    };
    let [hx, hy] = view.half_extent();
    let (x0, x1) = (view.center[0] - hx, view.center[0] + hx);
    let (y0, y1) = (view.center[1] - hy, view.center[1] + hy);
    for k in (x0.floor() as i32)..=(x1.ceil() as i32) {
        let c = if k == 0 { axis } else { color };
        lines.segment(
            view.to_screen([k as f32, y0]),
            view.to_screen([k as f32, y1]),
            Stroke::new(1.0, c),
        );
    }
    for k in (y0.floor() as i32)..=(y1.ceil() as i32) {
        let c = if k == 0 { axis } else { color };
        lines.segment(
            view.to_screen([x0, k as f32]),
            view.to_screen([x1, k as f32]),
            Stroke::new(1.0, c),
        );
    }
    lines
}

/// The followed particle's path through the reverse run so far, bold, with where it is now.
fn followed_layer(app: &App, painter: &egui::Painter, view: &View, i: usize) {
    let Some(path) = app.player.path_of(i) else {
        return;
    };
    let Some(now) = path.last() else {
        return;
    };
    let colour = Color32::from_rgb(120, 230, 255);
    let line: Vec<Pos2> = path.iter().map(|p| view.to_screen(*p)).collect();
    painter.add(Shape::line(line, Stroke::new(2.5, colour)));
    let at = view.to_screen(*now);
    painter.circle_stroke(at, 7.0, Stroke::new(2.5, colour));
    painter.text(
        at + Vec2::new(10.0, -10.0),
        Align2::LEFT_BOTTOM,
        format!("particle {i}: ({:.2}, {:.2})", now[0], now[1]),
        FontId::proportional(13.0),
        colour,
    );
}

/// Numbers on the grid lines along the bottom and left edges (in the model's units).
fn axis_ticks(painter: &egui::Painter, view: &View, dark: bool) {
    let colour = if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(90)
    };
    let font = FontId::monospace(11.0);
    let [hx, hy] = view.half_extent();
    // About a label per 60 screen points: every 1, 2 or 5 units.
    let every = [1, 2, 5, 10]
        .into_iter()
        .find(|&k| k as f32 * view.scale >= 60.0)
        .unwrap_or(20);
    let (x0, x1) = (view.center[0] - hx, view.center[0] + hx);
    let (y0, y1) = (view.center[1] - hy, view.center[1] + hy);
    for k in (x0.ceil() as i32)..=(x1.floor() as i32) {
        if k % every == 0 {
            let at = view.to_screen([k as f32, y0]);
            painter.text(
                at + Vec2::new(0.0, -3.0),
                Align2::CENTER_BOTTOM,
                k.to_string(),
                font.clone(),
                colour,
            );
        }
    }
    for k in (y0.ceil() as i32)..=(y1.floor() as i32) {
        if k % every == 0 && k != 0 {
            let at = view.to_screen([x0, k as f32]);
            painter.text(
                at + Vec2::new(4.0, 0.0),
                Align2::LEFT_CENTER,
                k.to_string(),
                font.clone(),
                colour,
            );
        }
    }
}

/// The drawing so far, each point in its class's colour.
fn drawing_layer(painter: &egui::Painter, view: &View, drawing: &Drawing) {
    for (p, &class) in drawing.points.iter().zip(&drawing.labels) {
        painter.circle_filled(view.to_screen(*p), 2.5, class_colour(class));
    }
}

/// The colour of a class, the same in the drawing and the Explore views.
pub fn class_colour(class: u32) -> Color32 {
    crate::app::explore::PALETTE[class as usize % crate::app::explore::PALETTE.len()]
}

fn particles_layer(
    app: &App,
    ui: &Ui,
    painter: &egui::Painter,
    view: &View,
    frame: &crate::app::player::Frame,
    dark: bool,
) {
    let (points, colors) = (frame.points.as_slice(), &frame.colors);
    let data_color = if dark {
        [200, 210, 230, 60]
    } else {
        [60, 70, 90, 60]
    };
    // The data is only a faint backdrop: a few thousand points show its shape.
    let data: Vec<Point> = if app.settings.show_data {
        let stride = app.data.points.len().div_ceil(DATA_BACKDROP).max(1);
        app.data.points.iter().step_by(stride).copied().collect()
    } else {
        Vec::new()
    };
    // The pastel colours read on a dark canvas; on a light one they need to be deeper.
    let deepen = |[r, g, b, a]: [u8; 4]| {
        if dark {
            [r, g, b, a]
        } else {
            let d = |v: u8| (v as f32 * 0.72) as u8;
            [d(r), d(g), d(b), a]
        }
    };
    let color_of = |i: usize| match colors {
        Colors::PerParticle(c) => deepen(c.get(i).copied().unwrap_or([255; 4])),
        Colors::Uniform(c) => deepen(*c),
    };
    let ppp = ui.ctx().pixels_per_point();
    let presentation = app.settings.presentation;
    if app.gpu.is_some() {
        let mut instances = Vec::with_capacity(data.len() + points.len());
        instances.extend(data.iter().map(|&pos| Instance {
            pos,
            color: data_color,
        }));
        instances.extend(points.iter().enumerate().map(|(i, &pos)| Instance {
            pos,
            color: color_of(i),
        }));
        // Fewer, larger discs read better; many small ones show density.
        let radius = if frame.particle_count() > 30_000 {
            1.6
        } else {
            2.2
        } * if presentation { 1.6 } else { 1.0 };
        let resident = frame.resident.as_ref().map(|g| Resident {
            buffer: g.store.buffer.clone(),
            offset: g.offset,
            len: g.len as u32,
            color: color_of(0),
        });
        let callback = ParticleCallback {
            instances: Arc::new(instances),
            resident,
            center: view.center,
            half_extent: view.half_extent(),
            radius_px: radius * ppp,
            viewport_px: [view.rect.width() * ppp, view.rect.height() * ppp],
        };
        painter.add(egui_wgpu::Callback::new_paint_callback(view.rect, callback));
    } else {
        let to_color = |c: [u8; 4]| Color32::from_rgba_unmultiplied(c[0], c[1], c[2], c[3]);
        let stride = (data.len() / FALLBACK_PARTICLES).max(1);
        let mut shapes: Vec<Shape> = data
            .iter()
            .step_by(stride)
            .map(|p| Shape::circle_filled(view.to_screen(*p), 1.5, to_color(data_color)))
            .collect();
        let stride = (points.len() / FALLBACK_PARTICLES).max(1);
        shapes.extend(
            points
                .iter()
                .enumerate()
                .step_by(stride)
                .map(|(i, p)| Shape::circle_filled(view.to_screen(*p), 2.0, to_color(color_of(i)))),
        );
        painter.extend(shapes);
    }
}

fn trails_layer(view: &View, frame: &crate::app::player::Frame, dark: bool, width: f32) -> Lines {
    // Stochastic paths jump by √(β dt) per step: fewer of them, and tails that fade fast
    // (comet-like), keep the particles readable; smooth paths fade gently.
    let jagged = frame.jagged;
    let every = if jagged { 2 } else { 1 };
    let fade = if jagged { 3.0 } else { 1.0 };
    let mut lines = Lines::default();
    for (i, trail) in frame.trails.iter().enumerate().step_by(every) {
        if trail.len() < 2 {
            continue;
        }
        let [r, g, b, a] = match &frame.colors {
            Colors::PerParticle(c) => {
                let c = c.get(i).copied().unwrap_or([255; 4]);
                [c[0], c[1], c[2], 220]
            }
            Colors::Uniform(_) if dark => [255, 240, 200, 190],
            Colors::Uniform(_) => [120, 60, 0, 190],
        };
        let line: Vec<Pos2> = trail.iter().map(|p| view.to_screen(*p)).collect();
        let n = line.len() as f32;
        for (k, pair) in line.windows(2).enumerate() {
            let recency = ((k + 1) as f32 / n).powf(fade);
            let alpha = (a as f32 * (0.12 + 0.88 * recency)) as u8;
            lines.segment(
                pair[0],
                pair[1],
                Stroke::new(
                    width * if jagged { 1.0 } else { 1.3 },
                    Color32::from_rgba_unmultiplied(r, g, b, alpha),
                ),
            );
        }
        if let Some(end) = line.last() {
            lines.circle(
                *end,
                3.5 * width,
                Stroke::new(1.5 * width, Color32::from_rgba_unmultiplied(r, g, b, a)),
            );
        }
    }
    lines
}

/// Lines of the deforming grid per direction, points per line, Heun steps from 1 to t_min.
const MESH_LINES: usize = 17;
const MESH_POINTS: usize = 64;
const MESH_STEPS: usize = 50;

/// The grid of [−3, 3]² at t = 1 carried to the time shown by the ODE of the model the
/// reverse run samples with (the probability-flow ODE on VP, the velocity on flow matching):
/// how the flow bends space. Computed off the UI thread once per reverse run's model (none
/// before the first run); scrubbing picks a stored frame.
fn mesh_layer(app: &mut App, ctx: &egui::Context, view: &View, t: f64, dark: bool) -> Lines {
    app.canvas.mesh.poll(ctx);
    // No grid before a reverse run, nor while the run on hand belongs to the other process.
    let Some((run, model)) = app
        .player
        .reverse_model()
        .filter(|(_, m)| m.process() == app.settings.process())
    else {
        return Lines::default();
    };
    let key = MeshKey {
        process: model.process(),
        schedule: run.schedule,
        source: run.source,
        weights: run.model_version(),
        data: app.data.version,
    };
    if app.canvas.mesh_key != Some(key) && !app.canvas.mesh.is_running() {
        let (model, schedule) = (Arc::clone(model), run.schedule);
        app.canvas.mesh_key = Some(key);
        app.canvas.mesh.start(ctx, move |progress| {
            flow_mesh(
                model.as_ref(),
                schedule,
                3.0,
                MESH_LINES,
                MESH_POINTS,
                MESH_STEPS,
                progress,
            )
        });
    }
    let mut lines = Lines::default();
    let Some(mesh) = app.canvas.mesh.shown() else {
        return lines;
    };
    let frame = mesh.at(t);
    let colour = |k: usize| {
        let alpha = if dark { 150 } else { 170 };
        if k < mesh.lines {
            Color32::from_rgba_unmultiplied(90, 170, 255, alpha)
        } else {
            Color32::from_rgba_unmultiplied(255, 150, 80, alpha)
        }
    };
    for (k, line) in mesh.polylines(frame).enumerate() {
        let stroke = Stroke::new(1.0, colour(k));
        for pair in line.windows(2) {
            lines.segment(view.to_screen(pair[0]), view.to_screen(pair[1]), stroke);
        }
    }
    lines
}

fn arrows_layer(app: &mut App, view: &View, t: f64) -> Lines {
    let schedule = app.settings.schedule.schedule();
    // Arrows at t → 0 are ill-conditioned (σ → 0); show them at a small positive t instead.
    let t = t.max(0.02);
    let [hx, hy] = view.half_extent();
    let key = ArrowKey {
        t_millis: (t * 1000.0).round() as i64,
        view: [
            (view.center[0] * 100.0) as i32,
            (view.center[1] * 100.0) as i32,
            (hx * 100.0) as i32,
            (hy * 100.0) as i32,
        ],
        model_version: app.train.model_version,
        process: app.settings.process(),
        schedule,
        data: app.data.version,
    };
    let cell = 2.0 * hx.min(hy) / ARROW_GRID as f32;
    if app.canvas.arrows.as_ref().is_none_or(|(k, _, _)| *k != key) {
        let nx = (2.0 * hx / cell) as usize;
        let ny = (2.0 * hy / cell) as usize;
        let grid: Vec<Point> = (0..ny)
            .flat_map(|j| {
                (0..nx).map(move |i| {
                    [
                        view.center[0] - hx + (i as f32 + 0.5) * cell,
                        view.center[1] - hy + (j as f32 + 0.5) * cell,
                    ]
                })
            })
            .collect();
        let field = |model: &dyn crate::math::ScoreModel| -> Vec<(Point, Point)> {
            let mut eps = vec![[0.0; 2]; grid.len()];
            model.eps(&grid, t as f32, &mut eps);
            // σ·∇log p = −ε̂: of order one at every t, so one arrow scale fits all times.
            grid.iter()
                .zip(&eps)
                .map(|(p, e)| (*p, [-e[0], -e[1]]))
                .collect()
        };
        let learned = app
            .train
            .model
            .as_ref()
            .map(|m| field(m.model.as_ref()))
            .unwrap_or_default();
        let exact_model = app
            .player
            .exact_model(app.settings.process(), schedule, &app.data);
        let exact = field(exact_model.as_ref());
        app.canvas.arrows = Some((key, learned, exact));
    }
    let mut lines = Lines::default();
    let Some((_, learned, exact)) = &app.canvas.arrows else {
        return lines;
    };
    // Half a cell per unit of ε, at most a cell: arrows never run into each other.
    let scale = 0.45 * cell;
    let mut draw = |field: &[(Point, Point)], width: f32, color: Color32| {
        for (p, v) in field {
            let norm = v[0].hypot(v[1]);
            let shrink = if norm > 2.0 { 2.0 / norm } else { 1.0 };
            let from = view.to_screen(*p);
            let to = view.to_screen([p[0] + scale * shrink * v[0], p[1] + scale * shrink * v[1]]);
            lines.arrow(from, to - from, Stroke::new(width, color));
        }
    };
    // Exact wide underneath, learned thin on top: where they agree, orange lies on blue.
    let show = app.settings.arrows;
    if matches!(show, Arrows::Exact | Arrows::Both) {
        let width = if show == Arrows::Both { 3.5 } else { 1.5 };
        draw(
            exact,
            width,
            Color32::from_rgba_unmultiplied(90, 160, 255, 200),
        );
    }
    if matches!(show, Arrows::Learned | Arrows::Both) {
        draw(learned, 1.4, Color32::from_rgb(255, 140, 40));
    }
    lines
}

fn overlay(app: &App, painter: &egui::Painter, view: &View, frame: &crate::app::player::Frame) {
    let rect = view.rect;
    let dark = app.settings.dark;
    let text = if dark {
        Color32::from_gray(235)
    } else {
        Color32::from_gray(20)
    };
    let weak = if dark {
        Color32::from_gray(170)
    } else {
        Color32::from_gray(80)
    };
    let scale = if app.settings.presentation { 1.5 } else { 1.0 };
    let schedule = app.settings.schedule.schedule();
    let (a, s) = app.settings.process().alpha_sigma(&schedule, frame.t);
    let pad = Vec2::new(12.0, 10.0);
    painter.text(
        rect.left_top() + pad,
        Align2::LEFT_TOP,
        format!("t = {:.3}", frame.t),
        FontId::monospace(26.0 * scale),
        text,
    );
    painter.text(
        rect.left_top() + pad + Vec2::new(0.0, 34.0 * scale),
        Align2::LEFT_TOP,
        format!("α = {a:.3}   σ = {s:.3}"),
        FontId::monospace(15.0 * scale),
        weak,
    );
    if app.settings.arrows != Arrows::Off {
        let which = match app.settings.arrows {
            Arrows::Learned => "orange: learned",
            Arrows::Exact => "blue: exact",
            _ => "orange: learned, blue: exact",
        };
        painter.text(
            rect.left_top() + pad + Vec2::new(0.0, 56.0 * scale),
            Align2::LEFT_TOP,
            format!("arrows σ·∇log p_t ({which})"),
            FontId::proportional(13.0 * scale),
            weak,
        );
    }
    // Presentation: large text, so only the caption's first parts.
    let caption = if app.settings.presentation {
        frame
            .caption
            .split(" · ")
            .take(3)
            .collect::<Vec<_>>()
            .join(" · ")
    } else {
        frame.caption.clone()
    };
    painter.text(
        rect.left_bottom() + Vec2::new(pad.x, -pad.y),
        Align2::LEFT_BOTTOM,
        caption,
        FontId::proportional(13.0 * scale),
        weak,
    );
    if let Some(waiting) = &frame.waiting {
        // Wrapped to the canvas: beside a docked Explore panel it is narrow.
        let galley = painter.layout(
            waiting.clone(),
            FontId::proportional(15.0 * scale),
            Color32::from_rgb(255, 190, 90),
            rect.width() - 2.0 * pad.x,
        );
        let bottom = rect.center_bottom() - Vec2::new(0.0, 30.0 * scale + pad.y);
        let at = bottom - Vec2::new(0.5 * galley.size().x, galley.size().y);
        painter.galley(at, galley, Color32::from_rgb(255, 190, 90));
    }
    // The forward check matters most when the particles should have become noise. It checks
    // the VP schedule; flow matching's x₁ is N(0, I) by construction.
    if app.player.mode == Mode::Forward
        && app.settings.process().is_vp()
        && let Some(check) = app.player.noise_check()
    {
        let (msg, color) = if check.reached_noise() {
            (
                format!(
                    "x at t = 1 ≈ N(0, I)  (SNR(1) = {:.0e}, sw2 = {:.1} × floor)",
                    check.snr_end,
                    check.ratio()
                ),
                Color32::from_rgb(110, 200, 110),
            )
        } else {
            (
                format!(
                    "x at t = 1 is NOT N(0, I): α(1) = {:.2}, SNR(1) = {:.2}, sw2 = {:.1} × floor",
                    check.alpha_end,
                    check.snr_end,
                    check.ratio()
                ),
                Color32::from_rgb(255, 110, 100),
            )
        };
        let galley = painter.layout_no_wrap(msg, FontId::proportional(14.0 * scale), color);
        // Top right beside "t = …", or below the readouts where the canvas is too narrow
        // (Explore docked beside it) for both on one line.
        let beside = rect.width() - galley.size().x - 2.0 * pad.x > 170.0 * scale;
        let pos = if beside {
            rect.right_top() + Vec2::new(-pad.x - galley.size().x, pad.y)
        } else {
            rect.left_top() + pad + Vec2::new(0.0, 78.0 * scale)
        };
        painter.galley(pos, galley, color);
    }
    // The quality of the run on the canvas (not the trainer's own check, which the plots
    // panel shows under its own name), above the caption: "…" until the particles shown are
    // the run's last.
    if app.player.mode == Mode::Reverse
        && let Some(quality) = app.player.shown_run_quality()
    {
        let (text, detail, color) = match quality {
            Ok(Some(q)) if q.sw2.is_finite() => (
                format!("this run: sw2 = {:.1} × floor", q.ratio()),
                q.detail(),
                // The colour follows the number as printed (one decimal), so "1.5" is green.
                if (10.0 * q.ratio()).round() <= 15.0 {
                    Color32::from_rgb(110, 200, 110)
                } else {
                    Color32::from_rgb(255, 170, 80)
                },
            ),
            Ok(Some(q)) => (q.caption(), String::new(), Color32::from_rgb(255, 110, 100)),
            Ok(None) => ("this run: sw2 = …".to_owned(), String::new(), weak),
            Err(e) => (
                format!("this run could not be measured: {e}"),
                String::new(),
                weak,
            ),
        };
        let line = 18.0 * scale;
        let bottom = rect.right_bottom() + Vec2::new(-pad.x, -pad.y - line);
        painter.text(
            bottom - Vec2::new(0.0, line),
            Align2::RIGHT_BOTTOM,
            text,
            FontId::proportional(15.0 * scale),
            color,
        );
        painter.text(
            bottom,
            Align2::RIGHT_BOTTOM,
            detail,
            FontId::proportional(12.0 * scale),
            weak,
        );
    }
}
