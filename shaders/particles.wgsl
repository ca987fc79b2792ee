// Particles of the canvas: one instanced quad per point, shaded as a soft disc.
//
// Positions are in world (data) units; the uniform maps them to the callback's viewport,
// whose edges egui-wgpu already made NDC ±1.

struct Uniforms {
    // World point at the viewport's centre.
    center: vec2<f32>,
    // World → NDC scale per axis (NDC y points up, like world y).
    scale: vec2<f32>,
    // Disc radius in NDC per axis (a fixed size in pixels whatever the zoom).
    radius: vec2<f32>,
    // 1 when the framebuffer is sRGB (linear blending), 0 when it stores gamma values.
    srgb_target: u32,
    _pad: u32,
    // Unmultiplied gamma-space RGBA of the particles drawn from a GPU buffer of positions.
    resident_color: vec4<f32>,
};

@group(0) @binding(0) var<uniform> u: Uniforms;

struct Instance {
    @location(0) pos: vec2<f32>,
    // Unmultiplied gamma-space RGBA.
    @location(1) color: vec4<f32>,
};

struct VsOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) color: vec4<f32>,
};

fn gamma_to_linear(c: vec3<f32>) -> vec3<f32> {
    let cutoff = c < vec3<f32>(0.04045);
    let lower = c / vec3<f32>(12.92);
    let higher = pow((c + vec3<f32>(0.055)) / vec3<f32>(1.055), vec3<f32>(2.4));
    return select(higher, lower, cutoff);
}

// Corner `vi` of the quad of a particle at `pos`.
fn place(vi: u32, pos: vec2<f32>, color: vec4<f32>) -> VsOut {
    // A triangle strip covering the square [-1, 1]²: four vertices per particle. (One
    // triangle around the disc has fewer corners but 30 % more pixels, and pixels are what
    // a software rasteriser such as lavapipe spends its time on here.)
    var corners = array<vec2<f32>, 4>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(-1.0, 1.0), vec2<f32>(1.0, 1.0),
    );
    let corner = corners[vi];
    var out: VsOut;
    let ndc = (pos - u.center) * u.scale + corner * u.radius;
    out.clip = vec4<f32>(ndc, 0.0, 1.0);
    out.uv = corner;
    // Converted here, once per corner, rather than for every pixel: a software rasteriser runs
    // the fragment shader tens of times per particle.
    var rgb = color.rgb;
    if u.srgb_target == 1u {
        rgb = gamma_to_linear(rgb);
    }
    out.color = vec4<f32>(rgb, color.a);
    return out;
}

@vertex
fn vs_main(@builtin(vertex_index) vi: u32, inst: Instance) -> VsOut {
    return place(vi, inst.pos, inst.color);
}

// Particles read straight from a sampler's GPU buffer (`vec2<f32>` per particle), all in
// one colour.
@vertex
fn vs_resident(@builtin(vertex_index) vi: u32, @location(0) pos: vec2<f32>) -> VsOut {
    return place(vi, pos, u.resident_color);
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    // A soft rim keeps small discs from looking like jagged squares; outside the disc
    // (r² ≥ 1) a = 0, which leaves the target as it was, so nothing needs discarding.
    let r2 = dot(in.uv, in.uv);
    let a = in.color.a * (1.0 - smoothstep(0.55, 1.0, r2));
    // egui blends premultiplied colours.
    return vec4<f32>(in.color.rgb * a, a);
}
