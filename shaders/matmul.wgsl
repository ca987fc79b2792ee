// Tiled matrix products of the MLP, forward and backward (needs activation.wgsl).
//
// Every product is C[m][n] = Σ_k A[m][k]·B[k][n] over a 64×64 tile of C per workgroup of
// 16×16 threads; each thread keeps a 4×4 block of C in registers. The K dimension is walked
// 16 at a time through workgroup memory (8 KiB), so each element of A and B read from global
// memory is used 64 times. Edges (M, N or K not a multiple of the tile) load zeros.
//
// Three entry points, each with its own epilogue and storage order of A and B:
// - `forward`     Z = X·W + b, H = act(Z)            A row-major, B row-major
// - `backward_dx` dZ_prev = (dZ·Wᵀ) ⊙ act′(Z_prev)   A row-major, B transposed
// - `backward_dw` [dW; db] = [H, 1]ᵀ·dZ (split-K)     A transposed, B row-major
//
// Layout of the parameters (nn::mlp): W_l is [fan_in][fan_out] row-major and b_l follows it,
// so [W_l; b_l] is one [(fan_in + 1)][fan_out] matrix. `backward_dw` treats the input H as
// having an extra column of ones (`ones_row`), whose row of the product is the bias gradient;
// one product yields both dW and db, written where W and b live.

struct Gemm {
    // C is m×n, the reduction runs over k.
    m: u32,
    n: u32,
    k: u32,
    // Row strides (elements) of A, B, C and aux as they are stored.
    lda: u32,
    ldb: u32,
    ldc: u32,
    ld_aux: u32,
    // Element offsets into their buffers.
    a_off: u32,
    b_off: u32,
    c_off: u32,
    bias_off: u32,
    aux_off: u32,
    // ACT_* of activation.wgsl.
    act: u32,
    // forward: 0 = store Z, 1 = store Z and act(Z) into aux, 2 = store act(Z) only.
    // backward_dw: 1 = A has a row of ones at m = k_in.
    flag: u32,
    // backward_dw: the reduction is split in slices of `k_split`; slice z writes its partial
    // product at c_off + z·c_split_stride.
    k_split: u32,
    c_split_stride: u32,
}

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> aux: array<f32>;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

// The tiles in workgroup memory, k-major: as_[k][m/4] and bs[k][n/4] as vec4, so the inner
// loop reads one vec4 of each per rank-1 update.
var<workgroup> as_: array<vec4<f32>, 256>;
var<workgroup> bs: array<vec4<f32>, 256>;

// A[m][k] as stored: row-major, or (for backward_dw) transposed with the optional ones row;
// zero outside the matrix.
fn load_a(m: u32, k: u32, k_end: u32, transposed: bool) -> f32 {
    if (m >= g.m || k >= k_end) {
        return 0.0;
    }
    if (transposed) {
        if (g.flag == 1u && m == g.m - 1u) {
            return 1.0;
        }
        return a[g.a_off + k * g.lda + m];
    }
    return a[g.a_off + m * g.lda + k];
}

fn load_b(k: u32, n: u32, k_end: u32, transposed: bool) -> f32 {
    if (n >= g.n || k >= k_end) {
        return 0.0;
    }
    if (transposed) {
        return b[g.b_off + n * g.ldb + k];
    }
    return b[g.b_off + k * g.ldb + n];
}

// This thread's 4×4 block of C: rows r0..r3 (m = m0 + 4ty + i), columns n0 + 4tx + (0..4).
// Separate variables rather than an array, so no compiler has to index registers.
struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// Walks k over [k_begin, k_end) and returns this thread's block of the product. `lid` is the
// thread's local id, (m0, n0) the tile's corner.
fn tile_product(
    lid: vec3<u32>,
    m0: u32,
    n0: u32,
    k_begin: u32,
    k_end: u32,
    a_t: bool,
    b_t: bool,
) -> Block {
    let t = lid.y * 16u + lid.x;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    // Each thread fills one vec4 of each tile per K step: 4 consecutive m (or n) at one k.
    // The thread-to-element map follows the stored layout, so that consecutive threads read
    // consecutive addresses (coalesced).
    var am4: u32;
    var ak: u32;
    if (a_t) {
        am4 = t % 16u;
        ak = t / 16u;
    } else {
        ak = t % 16u;
        am4 = t / 16u;
    }
    var bn4: u32;
    var bk: u32;
    if (b_t) {
        bk = t % 16u;
        bn4 = t / 16u;
    } else {
        bn4 = t % 16u;
        bk = t / 16u;
    }
    let am = m0 + 4u * am4;
    let bn = n0 + 4u * bn4;
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        let ka = k0 + ak;
        as_[ak * 16u + am4] = vec4<f32>(
            load_a(am, ka, k_end, a_t),
            load_a(am + 1u, ka, k_end, a_t),
            load_a(am + 2u, ka, k_end, a_t),
            load_a(am + 3u, ka, k_end, a_t),
        );
        let kb = k0 + bk;
        bs[bk * 16u + bn4] = vec4<f32>(
            load_b(kb, bn, k_end, b_t),
            load_b(kb, bn + 1u, k_end, b_t),
            load_b(kb, bn + 2u, k_end, b_t),
            load_b(kb, bn + 3u, k_end, b_t),
        );
        workgroupBarrier();
        // 16 rank-1 updates of the 4×4 register block.
        for (var kk = 0u; kk < TILE_K; kk++) {
            let av = as_[kk * 16u + lid.y];
            let bv = bs[kk * 16u + lid.x];
            c0 += av.x * bv;
            c1 += av.y * bv;
            c2 += av.z * bv;
            c3 += av.w * bv;
        }
        workgroupBarrier();
    }
    return Block(c0, c1, c2, c3);
}

// Z = A·B + bias. flag 0: C = Z; 1: C = Z and aux = act(Z) (training keeps both);
// 2: C = act(Z) (inference).
fn store_forward(m: u32, n0: u32, v: vec4<f32>) {
    if (m >= g.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + j;
        if (n < g.n) {
            let z = v[j] + b[g.bias_off + n];
            if (g.flag == 2u) {
                c[g.c_off + m * g.ldc + n] = act_f(g.act, z);
            } else {
                c[g.c_off + m * g.ldc + n] = z;
                if (g.flag == 1u) {
                    aux[g.aux_off + m * g.ld_aux + n] = act_f(g.act, z);
                }
            }
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let acc = tile_product(lid, m0, n0, 0u, g.k, false, false);
    let m = m0 + 4u * lid.y;
    let n = n0 + 4u * lid.x;
    store_forward(m, n, acc.r0);
    store_forward(m + 1u, n, acc.r1);
    store_forward(m + 2u, n, acc.r2);
    store_forward(m + 3u, n, acc.r3);
}

// dZ_prev = (dZ·Wᵀ) ⊙ act′(Z_prev): the gradient flows back through the layer and through the
// previous layer's activation in one pass. aux holds Z_prev.
fn store_dx(m: u32, n0: u32, v: vec4<f32>) {
    if (m >= g.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + j;
        if (n < g.n) {
            let z = aux[g.aux_off + m * g.ld_aux + n];
            c[g.c_off + m * g.ldc + n] = v[j] * act_df(g.act, z);
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn backward_dx(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let acc = tile_product(lid, m0, n0, 0u, g.k, false, true);
    let m = m0 + 4u * lid.y;
    let n = n0 + 4u * lid.x;
    store_dx(m, n, acc.r0);
    store_dx(m + 1u, n, acc.r1);
    store_dx(m + 2u, n, acc.r2);
    store_dx(m + 3u, n, acc.r3);
}

// One slice (workgroup z) of [dW; db] = [H, 1]ᵀ·dZ over batch rows
// [z·k_split, (z + 1)·k_split). The slices are summed by adam.wgsl, in a fixed order, so the
// result does not depend on scheduling (no atomics).
fn store_dw(base: u32, m: u32, n0: u32, v: vec4<f32>) {
    if (m >= g.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + j;
        if (n < g.n) {
            c[base + m * g.ldc + n] = v[j];
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn backward_dw(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let k_begin = wid.z * g.k_split;
    let k_end = min(k_begin + g.k_split, g.k);
    let acc = tile_product(lid, m0, n0, k_begin, k_end, true, false);
    let base = g.c_off + wid.z * g.c_split_stride;
    let m = m0 + 4u * lid.y;
    let n = n0 + 4u * lid.x;
    store_dw(base, m, n, acc.r0);
    store_dw(base, m + 1u, n, acc.r1);
    store_dw(base, m + 2u, n, acc.r2);
    store_dw(base, m + 3u, n, acc.r3);
}
