// Antialiased line segments of the canvas (grid, trails, arrows): each segment is a quad one
// pixel wider than the line on either side, built on the CPU in the callback's NDC.
//
// No texture is sampled: on a software rasteriser (lavapipe) this shades ~40× faster than
// egui's own shader, which matters for thousands of long thin triangles.

struct VsIn {
    @location(0) ndc: vec2<f32>,
    // Premultiplied RGBA in the framebuffer's encoding.
    @location(1) color: vec4<f32>,
    // x: signed distance from the centre line in pixels; y: half the line's width in pixels.
    @location(2) edge: vec2<f32>,
};

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) color: vec4<f32>,
    @location(1) edge: vec2<f32>,
};

@vertex
fn vs_main(in: VsIn) -> VsOut {
    var out: VsOut;
    out.clip = vec4<f32>(in.ndc, 0.0, 1.0);
    out.color = in.color;
    out.edge = in.edge;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    // Box-filter coverage of a pixel by the line; lines thinner than a pixel fade instead.
    let half_width = max(in.edge.y, 0.5);
    let coverage = clamp(half_width + 0.5 - abs(in.edge.x), 0.0, 1.0) * min(2.0 * in.edge.y, 1.0);
    return in.color * coverage;
}
