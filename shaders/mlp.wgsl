// The thin ends of the MLP (needs activation.wgsl, embedding.wgsl): everything but the
// square hidden-to-hidden products, which are matmul.wgsl's.
//
// Sampling (all points share one t):
// - `time_offset`  c = emb(t)·W₀[2..] + b₀, once per network evaluation (the part of layer 0
//                  that is the same for every point);
// - `first_layer`  H₀ = act(x₀·W₀[0] + x₁·W₀[1] + c): 2 multiply-adds per unit instead of
//                  2 + dim, the embedding fused away.
// Training and sampling:
// - `head`         o = H·W_out + b_out (2 outputs; one thread per row, W_out in workgroup
//                  memory), written at row `row_off` of a buffer that spans every point.
// Training (the output layer's backward, also thin: one side is 2 wide):
// - `head_dx`      dZ_last = (dO·W_outᵀ) ⊙ act′(Z_last);
// - `head_dw`      one split-K slice of [dW_out; db_out] = [H, 1]ᵀ·dO.

struct Mlp {
    // Rows in this dispatch (points of a chunk, or the batch).
    rows: u32,
    // Units of the hidden layer this kernel reads or writes (the width).
    width: u32,
    // Row stride of H / Z.
    ld: u32,
    act: u32,
    // Offsets in the parameter buffer: layer 0's W and b (time_offset, first_layer) or the
    // output layer's (head*).
    w_off: u32,
    b_off: u32,
    // Embedding features (0 = the scalar embedding [t]).
    emb_half: u32,
    // First row of this chunk in buffers that span every point (x, o).
    row_off: u32,
    // head_dw: batch rows per split-K slice, and the distance between slices in `dst`.
    k_split: u32,
    split_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

// The time of this network evaluation (a per-stage slot, dynamic offset).
struct EvalTime {
    t: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Mlp;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;
@group(0) @binding(5) var<storage, read> freqs: array<f32>;
@group(1) @binding(0) var<uniform> eval_time: EvalTime;

const MAX_EMB: u32 = 1024u;
var<workgroup> emb: array<f32, MAX_EMB>;
// W_out staged 256 rows (× 2 outputs) at a time.
var<workgroup> w_out: array<vec2<f32>, 256>;

// c = emb(t)·W₀[2..] + b₀ into dst[0..width]. One workgroup of 256 threads.
@compute @workgroup_size(256, 1, 1)
fn time_offset(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = eval_time.t;
    let dim = select(2u * p.emb_half, 1u, p.emb_half == 0u);
    // The embedding once, shared: sines then cosines, as nn::embedding writes them.
    if (p.emb_half == 0u) {
        if (lid.x == 0u) {
            emb[0] = t;
        }
    } else {
        for (var i = lid.x; i < p.emb_half; i += 256u) {
            let sc = emb_sin_cos(freqs[i] * t);
            emb[i] = sc.x;
            emb[p.emb_half + i] = sc.y;
        }
    }
    workgroupBarrier();
    for (var j = lid.x; j < p.width; j += 256u) {
        var c = params[p.b_off + j];
        for (var e = 0u; e < dim; e++) {
            c += emb[e] * params[p.w_off + (2u + e) * p.width + j];
        }
        dst[j] = c;
    }
}

// H₀[i][j] = act(x_i·W₀[0..2][j] + c_j): src = points (x, all of them), aux = c, dst = H₀
// of this chunk. Threads: x over units, y over rows.
// Rows of a (64, 4) workgroup grid whose row groups are folded into y and z (at most 65535
// groups per dimension).
fn row_of(lid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.z * nwg.y + wid.y) * 4u + lid.y;
}

@compute @workgroup_size(64, 4, 1)
fn first_layer(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x;
    let i = row_of(lid, wid, nwg);
    if (j >= p.width || i >= p.rows) {
        return;
    }
    let r = p.row_off + i;
    let x0 = src[2u * r];
    let x1 = src[2u * r + 1u];
    let z = x0 * params[p.w_off + j] + x1 * params[p.w_off + p.width + j] + aux[j];
    dst[i * p.ld + j] = act_f(p.act, z);
}

// o_i = H_i·W_out + b_out: src = H of this chunk, dst = o of every point.
@compute @workgroup_size(256, 1, 1)
fn head(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    var acc = vec2<f32>(0.0, 0.0);
    for (var k0 = 0u; k0 < p.width; k0 += 256u) {
        let k = k0 + lid.x;
        if (k < p.width) {
            w_out[lid.x] = vec2<f32>(params[p.w_off + 2u * k], params[p.w_off + 2u * k + 1u]);
        }
        workgroupBarrier();
        if (i < p.rows) {
            let kn = min(256u, p.width - k0);
            for (var kk = 0u; kk < kn; kk++) {
                acc += src[i * p.ld + k0 + kk] * w_out[kk];
            }
        }
        workgroupBarrier();
    }
    if (i < p.rows) {
        let r = p.row_off + i;
        dst[2u * r] = acc.x + params[p.b_off];
        dst[2u * r + 1u] = acc.y + params[p.b_off + 1u];
    }
}

// dZ_last[i][j] = (dO_i·W_out[j]) ⊙ act′(Z_last[i][j]): src = dO, aux = Z_last, dst = dZ_last.
@compute @workgroup_size(64, 4, 1)
fn head_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x;
    let i = row_of(lid, wid, nwg);
    if (j >= p.width || i >= p.rows) {
        return;
    }
    let d = vec2<f32>(src[2u * i], src[2u * i + 1u]);
    let w = vec2<f32>(params[p.w_off + 2u * j], params[p.w_off + 2u * j + 1u]);
    dst[i * p.ld + j] = (d.x * w.x + d.y * w.y) * act_df(p.act, aux[i * p.ld + j]);
}

// One slice (workgroup y) of [dW_out; db_out] = [H, 1]ᵀ·dO: thread k sums H[r][k]·dO_r over
// the slice's rows (k = width is the ones column: db). src = dO, aux = H_last, dst = the
// partial gradients (same layout as the parameters, one copy per slice).
@compute @workgroup_size(64, 1, 1)
fn head_dw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let k = gid.x;
    if (k > p.width) {
        return;
    }
    let r_begin = wid.y * p.k_split;
    let r_end = min(r_begin + p.k_split, p.rows);
    var acc = vec2<f32>(0.0, 0.0);
    for (var r = r_begin; r < r_end; r++) {
        let h = select(aux[r * p.ld + k], 1.0, k == p.width);
        acc += h * vec2<f32>(src[2u * r], src[2u * r + 1u]);
    }
    let base = wid.y * p.split_stride + p.w_off + 2u * k;
    dst[base] = acc.x;
    dst[base + 1u] = acc.y;
}
