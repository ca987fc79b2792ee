// A solid rounded rectangle filling a paint callback's viewport: the canvas background.
//
// egui's own shader samples its font texture for every pixel, which a software rasteriser
// (lavapipe) runs ~40× slower than this one; large areas are drawn here instead.

struct Uniforms {
    // Premultiplied RGBA in the framebuffer's encoding.
    color: vec4<f32>,
    // Half the viewport's size, in physical pixels.
    half_size: vec2<f32>,
    // Corner radius in physical pixels.
    radius: f32,
    _pad: f32,
};

@group(0) @binding(0) var<uniform> u: Uniforms;

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    // Position relative to the viewport's centre, in pixels.
    @location(0) pos: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) vi: u32) -> VsOut {
    // A triangle strip over the whole viewport.
    var corners = array<vec2<f32>, 4>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(-1.0, 1.0), vec2<f32>(1.0, 1.0),
    );
    let corner = corners[vi];
    var out: VsOut;
    out.clip = vec4<f32>(corner, 0.0, 1.0);
    out.pos = corner * u.half_size;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    // Signed distance to the rounded rectangle; one pixel of antialiasing at the edge.
    let q = abs(in.pos) - u.half_size + vec2<f32>(u.radius);
    let d = length(max(q, vec2<f32>(0.0))) + min(max(q.x, q.y), 0.0) - u.radius;
    let coverage = clamp(0.5 - d, 0.0, 1.0);
    return u.color * coverage;
}
