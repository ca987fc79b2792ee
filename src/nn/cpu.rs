//! The CPU backend: forward, backward and forward-mode passes of the MLP over a chunk of rows.
//!
//! A chunk is at most a few hundred rows, so that its activations stay in L2; callers spread
//! chunks over threads with rayon (`dsm`, `model`). Everything here works in reusable
//! workspaces: after the first call nothing is allocated.
//!
//! Shapes (rows = samples): input `X [rows][in_ld]` holds `[x, emb(t)]` (`in_ld = 2 + E`, the
//! dense inputs; a conditional network's one-hot class is not stored but gathered: row `r`
//! adds `W₀[class_rows[r]]` to its layer-0 pre-activation, and the backward pass adds `dZ₀[r]`
//! to that row's gradient); hidden layer `l` keeps
//! its pre-activation `Z_l` and activation `H_l` (`[rows][ld]`, `ld` = width rounded up to a
//! GEMM panel, padding columns never written); the raw output `O [rows][2]`.
//!
//! Backward (the loss is the caller's business; it hands us `dO = ∂L/∂O`):
//! `dW_out = H_lastᵀ·dO`, `db_out = Σ_rows dO`, `dZ_last = (dO·W_outᵀ) ⊙ act′(Z_last)`, and for
//! each hidden layer going down `dW_l = H_{l−1}ᵀ·dZ_l`, `db_l = Σ_rows dZ_l`,
//! `dZ_{l−1} = (dZ_l·W_lᵀ) ⊙ act′(Z_{l−1})`, each `dZ` written over its `Z`.

use std::sync::{Mutex, PoisonError};

use super::embedding::TimeEmbedding;
use super::fastmath::{ActFn, dispatch_act};
use super::gemm::{self, Epilogue, Lhs, PackedMatrix, Rhs, round_up_panel};
use super::mlp::{LayerLayout, MlpConfig};
use super::simd::multiversion;
use crate::Point;

/// The network's weights rearranged for the kernels. Rebuilt (`load`) after every update.
#[derive(Clone, Debug)]
pub(crate) struct CpuNet {
    config: MlpConfig,
    layers: Vec<LayerLayout>,
    emb: TimeEmbedding,
    /// Row stride of hidden activations.
    ld: usize,
    /// Row stride of the input rows: the dense inputs `2 + E`.
    in_ld: usize,
    /// `W_l` packed for `Z_l = H_{l−1}·W_l`, hidden layers `l = 0..depth`.
    fwd: Vec<PackedMatrix>,
    /// Rows 0 and 1 of `W₀` (the x inputs), packed for layer 0 at one time.
    fwd_x: PackedMatrix,
    /// `W_lᵀ` packed for `dH_{l−1} = dZ_l·W_lᵀ`, index `l − 1` for `l = 1..depth` (training only).
    bwd: Vec<PackedMatrix>,
    /// Output weights transposed, `[2][width]`: one contiguous row per output.
    out_w: Vec<f32>,
    out_b: [f32; 2],
}

impl CpuNet {
    /// An empty net for `config` (call `load` before use). `config` must be valid.
    pub(crate) fn new(config: &MlpConfig) -> Self {
        let layers = config.layers();
        Self {
            emb: TimeEmbedding::new(config.embedding),
            ld: round_up_panel(config.width),
            in_ld: config.feature_dim(),
            fwd: vec![PackedMatrix::default(); config.depth],
            fwd_x: PackedMatrix::default(),
            bwd: Vec::new(),
            out_w: vec![0.0; 2 * config.width],
            out_b: [0.0; 2],
            config: config.clone(),
            layers,
        }
    }

    pub(crate) fn config(&self) -> &MlpConfig {
        &self.config
    }

    pub(crate) fn embedding(&self) -> &TimeEmbedding {
        &self.emb
    }

    /// Packs `params` (length already checked); `backward` also packs the transposes.
    pub(crate) fn load(&mut self, params: &[f32], backward: bool) {
        let depth = self.config.depth;
        for (l, packed) in self.fwd.iter_mut().enumerate() {
            let layer = self.layers[l];
            // Layer 0: only the dense rows; the class rows are gathered.
            let k = if l == 0 { self.in_ld } else { layer.fan_in };
            packed.pack(layer.weight(params), k, layer.fan_out, layer.fan_out, 1);
        }
        if backward {
            self.bwd.resize(depth - 1, PackedMatrix::default());
            for (i, packed) in self.bwd.iter_mut().enumerate() {
                let layer = self.layers[i + 1];
                // Wᵀ element (kk, j) = W[j][kk]: kk runs over outputs, j over inputs.
                packed.pack(
                    layer.weight(params),
                    layer.fan_out,
                    layer.fan_in,
                    1,
                    layer.fan_out,
                );
            }
        }
        let first = self.layers[0];
        let w0 = first.weight(params);
        self.fwd_x.pack(w0, 2, first.fan_out, first.fan_out, 1);
        let out = self.layers[depth];
        let w = out.weight(params);
        for j in 0..out.fan_in {
            self.out_w[j] = w[2 * j];
            self.out_w[out.fan_in + j] = w[2 * j + 1];
        }
        let b = out.bias(params);
        self.out_b = [b[0], b[1]];
    }

    /// Forward pass for training: `ws.input` rows `0..rows` hold `[x, emb(t)]` (and, for a
    /// conditional network, `ws.class_rows[..rows]` the `W₀` row of each row's class); fills
    /// `Z_l`, `H_l` and `ws.out`.
    pub(crate) fn forward(&self, params: &[f32], ws: &mut TrainWorkspace, rows: usize) {
        let act = self.config.activation;
        let conditional = self.config.is_conditional();
        let TrainWorkspace {
            input,
            pre,
            hid,
            out,
            class_rows,
            ..
        } = ws;
        for (l, pre_l) in pre.iter_mut().enumerate() {
            let bias = self.layers[l].bias(params);
            let (done, rest) = hid.split_at_mut(l);
            if l == 0 && conditional {
                // Z₀ = [x, emb]·W₀ without bias, then z += b₀ + W₀[class row], h = act(z).
                let lhs = Lhs {
                    data: input,
                    rs: self.in_ld,
                    cs: 1,
                };
                let z = &mut pre_l[..];
                gemm::gemm(
                    rows,
                    lhs,
                    Rhs::Packed(&self.fwd[0]),
                    z,
                    self.ld,
                    Epilogue::Store,
                );
                class_bias_act(
                    act,
                    z,
                    &mut rest[0],
                    self.ld,
                    &class_rows[..rows],
                    self.layers[0].weight(params),
                    bias,
                );
                continue;
            }
            let lhs = match done.last() {
                None => Lhs {
                    data: input,
                    rs: self.in_ld,
                    cs: 1,
                },
                Some(h) => Lhs {
                    data: h,
                    rs: self.ld,
                    cs: 1,
                },
            };
            let epi = Epilogue::BiasAct {
                bias,
                act,
                pre: Some(pre_l),
            };
            gemm::gemm(
                rows,
                lhs,
                Rhs::Packed(&self.fwd[l]),
                &mut rest[0],
                self.ld,
                epi,
            );
        }
        let last = &hid[self.config.depth - 1];
        output_layer(
            last,
            self.ld,
            rows,
            self.config.width,
            &self.out_w,
            self.out_b,
            out,
        );
    }

    /// Backward pass after `forward`: `ws.d_out` rows hold ∂L/∂O; writes ∂L/∂θ into `grad`
    /// (every element overwritten, or added to with `accumulate`) and destroys `Z_l`.
    pub(crate) fn backward(
        &self,
        ws: &mut TrainWorkspace,
        rows: usize,
        grad: &mut [f32],
        accumulate: bool,
    ) {
        let (width, depth, act) = (self.config.width, self.config.depth, self.config.activation);
        let TrainWorkspace {
            input,
            pre,
            hid,
            d_out,
            g_out,
            class_rows: ws_class_rows,
            ..
        } = ws;
        // Output layer: dW_out, db_out, and dZ_last = (dO·W_outᵀ) ⊙ act′(Z_last).
        let out = self.layers[depth];
        output_layer_backward(
            &hid[depth - 1],
            &mut pre[depth - 1],
            self.ld,
            rows,
            width,
            act,
            &self.out_w,
            d_out,
            g_out,
        );
        // W_out is followed by b_out in the buffer.
        let (gw, gb) = grad[out.weight_offset..out.bias_offset + 2].split_at_mut(out.weight_len());
        // (A multiply by 0 to overwrite would keep a NaN left over from a diverged step.)
        if !accumulate {
            gw.fill(0.0);
            gb.fill(0.0);
        }
        for j in 0..width {
            gw[2 * j] += g_out[j];
            gw[2 * j + 1] += g_out[width + j];
        }
        for d in d_out[..2 * rows].chunks_exact(2) {
            gb[0] += d[0];
            gb[1] += d[1];
        }
        // Hidden layers, top down.
        for l in (0..depth).rev() {
            let mut layer = self.layers[l];
            if l == 0 {
                // The dense rows of W₀ by GEMM; the class rows below.
                layer.fan_in = self.in_ld;
            }
            let (h_prev, ld_prev) = if l == 0 {
                (&input[..], self.in_ld)
            } else {
                (&hid[l - 1][..], self.ld)
            };
            let (lower, upper) = pre.split_at_mut(l);
            let dz = &upper[0];
            let dz_rows = Rhs::Rows {
                data: dz,
                ld: self.ld,
                k: rows,
                n: layer.fan_out,
            };
            // dW_l = H_{l−1}ᵀ·dZ_l: A = H_{l−1}ᵀ, element (i, r) = H_{l−1}[r][i].
            let gw = &mut grad[layer.weight_offset..layer.weight_offset + layer.weight_len()];
            let lhs = Lhs {
                data: h_prev,
                rs: 1,
                cs: ld_prev,
            };
            gemm::gemm(
                layer.fan_in,
                lhs,
                dz_rows,
                gw,
                layer.fan_out,
                if accumulate {
                    Epilogue::Accumulate
                } else {
                    Epilogue::Store
                },
            );
            column_sums(
                dz,
                self.ld,
                rows,
                &mut grad[layer.bias_offset..layer.bias_offset + layer.fan_out],
                accumulate,
            );
            if l == 0 && self.config.is_conditional() {
                // dW₀[class row of r] += dZ₀[r] (the one-hot input's only nonzero product).
                let n = layer.fan_out;
                let start = layer.weight_offset + self.in_ld * n;
                let gc = &mut grad[start..start + self.config.class_inputs() * n];
                if !accumulate {
                    gc.fill(0.0);
                }
                let first = self.in_ld;
                for (r, &row) in ws_class_rows[..rows].iter().enumerate() {
                    let dst = &mut gc[(row as usize - first) * n..][..n];
                    for (g, &d) in dst.iter_mut().zip(&dz[r * self.ld..r * self.ld + n]) {
                        *g += d;
                    }
                }
            }
            if l > 0 {
                // dZ_{l−1} = (dZ_l·W_lᵀ) ⊙ act′(Z_{l−1}), in place over Z_{l−1}.
                let lhs = Lhs {
                    data: dz,
                    rs: self.ld,
                    cs: 1,
                };
                let epi = Epilogue::ActGrad { act, pre: None };
                gemm::gemm(
                    rows,
                    lhs,
                    Rhs::Packed(&self.bwd[l - 1]),
                    &mut lower[l - 1],
                    self.ld,
                    epi,
                );
            }
        }
    }

    /// Raw outputs `o` at one time for all of `xs` (one chunk): layer 0 takes
    /// `c = emb(t)·W_emb + b₀` precomputed by `time_offset`, so it costs 2 multiply-adds per unit
    /// instead of `2 + dim`.
    pub(crate) fn output_at_time(
        &self,
        params: &[f32],
        c0: &[f32],
        xs: &[Point],
        ws: &mut EvalWorkspace,
        out: &mut [Point],
    ) {
        let rows = xs.len();
        ws.ensure(rows, self.ld, false);
        let act = self.config.activation;
        let EvalWorkspace { h, .. } = ws;
        let width = self.config.width;
        // Layer 0: a rank-2 product (x₀, x₁) with the time's offset c₀ as its bias.
        let w0 = &self.layers[0].weight(params)[..2 * width];
        if !gemm::affine2_act(xs, w0, c0, act, &mut h[0], self.ld, None) {
            let lhs = Lhs {
                data: xs.as_flattened(),
                rs: 2,
                cs: 1,
            };
            let epi = Epilogue::BiasAct {
                bias: c0,
                act,
                pre: None,
            };
            gemm::gemm(rows, lhs, Rhs::Packed(&self.fwd_x), &mut h[0], self.ld, epi);
        }
        let mut cur = 0;
        for l in 1..self.config.depth {
            let (a, b) = h.split_at_mut(1);
            let (src, dst) = if cur == 0 {
                (&a[0], &mut b[0])
            } else {
                (&b[0], &mut a[0])
            };
            let epi = Epilogue::BiasAct {
                bias: self.layers[l].bias(params),
                act,
                pre: None,
            };
            gemm::gemm(
                rows,
                Lhs {
                    data: src,
                    rs: self.ld,
                    cs: 1,
                },
                Rhs::Packed(&self.fwd[l]),
                dst,
                self.ld,
                epi,
            );
            cur = 1 - cur;
        }
        output_layer(
            &h[cur],
            self.ld,
            rows,
            width,
            &self.out_w,
            self.out_b,
            out.as_flattened_mut(),
        );
    }

    /// As `output_at_time`, plus the diagonal of the Jacobian `∂o_a/∂x_a` (a = 0, 1) by
    /// forward-mode differentiation: tangents `T_a = ∂H/∂x_a` are pushed through each layer,
    /// `T_a ← (T_a·W_l) ⊙ act′(Z_l)`, starting from `T_a = W₀[a] ⊙ act′(Z₀)`.
    pub(crate) fn output_and_jacobian_diag(
        &self,
        params: &[f32],
        c0: &[f32],
        xs: &[Point],
        ws: &mut EvalWorkspace,
        out: &mut [Point],
        jac: &mut [Point],
    ) {
        let rows = xs.len();
        ws.ensure(rows, self.ld, true);
        let act = self.config.activation;
        let width = self.config.width;
        let EvalWorkspace { h, z, tan, .. } = ws;
        let w0 = self.layers[0].weight(params);
        let [t0, t1] = tan;
        // Layer 0 as in `output_at_time`, keeping Z₀; then T_a = W₀[a] ⊙ act′(Z₀).
        let wx = &w0[..2 * width];
        if !gemm::affine2_act(xs, wx, c0, act, &mut h[0], self.ld, Some(&mut z[..])) {
            let lhs = Lhs {
                data: xs.as_flattened(),
                rs: 2,
                cs: 1,
            };
            let epi = Epilogue::BiasAct {
                bias: c0,
                act,
                pre: Some(&mut z[..]),
            };
            gemm::gemm(rows, lhs, Rhs::Packed(&self.fwd_x), &mut h[0], self.ld, epi);
        }
        first_layer_tangents(
            act,
            &z[..],
            self.ld,
            rows,
            &w0[..2 * width],
            &mut t0[0],
            &mut t1[0],
        );
        let mut cur = 0;
        for l in 1..self.config.depth {
            let next = 1 - cur;
            let (bias, w) = (self.layers[l].bias(params), Rhs::Packed(&self.fwd[l]));
            let (src, dst) = pair(h, cur);
            let epi = Epilogue::BiasAct {
                bias,
                act,
                pre: Some(&mut z[..]),
            };
            gemm::gemm(
                rows,
                Lhs {
                    data: src,
                    rs: self.ld,
                    cs: 1,
                },
                w,
                dst,
                self.ld,
                epi,
            );
            for t in [&mut *t0, &mut *t1] {
                let (src, dst) = pair(t, cur);
                let epi = Epilogue::ActGrad {
                    act,
                    pre: Some(&z[..]),
                };
                gemm::gemm(
                    rows,
                    Lhs {
                        data: src,
                        rs: self.ld,
                        cs: 1,
                    },
                    w,
                    dst,
                    self.ld,
                    epi,
                );
            }
            cur = next;
        }
        output_layer(
            &h[cur],
            self.ld,
            rows,
            width,
            &self.out_w,
            self.out_b,
            out.as_flattened_mut(),
        );
        // ∂o_a/∂x_a = T_a · W_out[:, a].
        let (w_o0, w_o1) = self.out_w.split_at(width);
        for (i, j) in jac.iter_mut().enumerate() {
            let r = i * self.ld;
            j[0] = dot(&t0[cur][r..r + width], w_o0);
            j[1] = dot(&t1[cur][r..r + width], w_o1);
        }
    }

    /// `c = emb(t)·W₀[2..2+E] + b₀` (`+ W₀[class row]` for a conditional network, `None`
    /// being ∅): the part of layer 0 that is the same for every point at one time and class.
    pub(crate) fn time_offset(
        &self,
        params: &[f32],
        t: f32,
        class: Option<u32>,
        c0: &mut Vec<f32>,
        emb: &mut Vec<f32>,
    ) {
        let layer = self.layers[0];
        let width = self.config.width;
        emb.resize(self.emb.dim(), 0.0);
        self.emb.write(t, emb);
        c0.clear();
        c0.extend_from_slice(layer.bias(params));
        let w = layer.weight(params);
        for (e, &v) in emb.iter().enumerate() {
            let row = &w[(2 + e) * width..(3 + e) * width];
            for (c, &wv) in c0.iter_mut().zip(row) {
                *c += v * wv;
            }
        }
        if let Some(r) = self.config.class_row(class) {
            for (c, &wv) in c0.iter_mut().zip(&w[r * width..(r + 1) * width]) {
                *c += wv;
            }
        }
    }

    /// Row stride of `TrainWorkspace::input`.
    pub(crate) fn input_ld(&self) -> usize {
        self.in_ld
    }
}

/// The two buffers of a ping-pong pair: (`cur`, the other one).
fn pair(bufs: &mut [Vec<f32>; 2], cur: usize) -> (&[f32], &mut [f32]) {
    let (a, b) = bufs.split_at_mut(1);
    if cur == 0 {
        (&a[0], &mut b[0])
    } else {
        (&b[0], &mut a[0])
    }
}

/// Buffers of one training chunk.
#[derive(Debug, Default)]
pub(crate) struct TrainWorkspace {
    /// `[rows][in_ld]`: x then emb(t).
    pub input: Vec<f32>,
    /// `Z_l` per hidden layer, `[rows][ld]` (then `dZ_l`).
    pre: Vec<Vec<f32>>,
    /// `H_l` per hidden layer, `[rows][ld]`.
    hid: Vec<Vec<f32>>,
    /// Raw outputs `[rows][2]`.
    pub out: Vec<f32>,
    /// Conditional networks: the row of `W₀` of each row's class (see `MlpConfig::class_row`).
    pub class_rows: Vec<u32>,
    /// ∂L/∂O, `[rows][2]`.
    pub d_out: Vec<f32>,
    /// `dW_out` as `[2][width]` while it is accumulated.
    g_out: Vec<f32>,
}

impl TrainWorkspace {
    /// Sizes the buffers for `rows` rows of `net` (allocates only when they grow).
    pub(crate) fn ensure(&mut self, net: &CpuNet, rows: usize) {
        let depth = net.config.depth;
        grow(&mut self.input, rows * net.in_ld);
        if self.class_rows.len() < rows {
            self.class_rows.resize(rows, 0);
        }
        self.pre.resize_with(depth, Vec::new);
        self.hid.resize_with(depth, Vec::new);
        for b in self.pre.iter_mut().chain(self.hid.iter_mut()) {
            grow(b, rows * net.ld);
        }
        grow(&mut self.out, rows * 2);
        grow(&mut self.d_out, rows * 2);
        grow(&mut self.g_out, 2 * net.config.width);
    }
}

/// Buffers of one inference chunk.
#[derive(Debug, Default)]
pub(crate) struct EvalWorkspace {
    /// Ping-pong activations `[rows][ld]`.
    h: [Vec<f32>; 2],
    /// Pre-activation of the current layer (divergence only).
    z: Vec<f32>,
    /// Ping-pong tangents for x₀ and x₁ (divergence only).
    tan: [[Vec<f32>; 2]; 2],
    /// `emb(t)` and `c₀`, per call.
    pub emb: Vec<f32>,
    pub c0: Vec<f32>,
    /// Jacobian diagonals of a chunk.
    pub jac: Vec<Point>,
}

impl EvalWorkspace {
    fn ensure(&mut self, rows: usize, ld: usize, tangents: bool) {
        for b in &mut self.h {
            grow(b, rows * ld);
        }
        if tangents {
            grow(&mut self.z, rows * ld);
            for b in self.tan.iter_mut().flatten() {
                grow(b, rows * ld);
            }
        }
    }
}

/// Grows a buffer to at least `len` (zero-filled), never shrinks it.
fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// One workspace per rayon thread, so parallel chunks never allocate. A thread outside the
/// pool uses the extra last slot. The lock is never held across a rayon call, so it cannot
/// deadlock; it only serialises two outside threads that share the last slot.
#[derive(Debug)]
pub(crate) struct WorkspacePool<T> {
    slots: Vec<Mutex<T>>,
}

impl<T: Default> WorkspacePool<T> {
    pub(crate) fn new() -> Self {
        // Slots are empty until used, so be generous: a model built inside a small pool may
        // later run in a bigger one.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = rayon::current_num_threads().max(cores) + 1;
        Self {
            slots: (0..n).map(|_| Mutex::new(T::default())).collect(),
        }
    }

    /// Runs `f` with this thread's workspace.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let workers = self.slots.len() - 1;
        let slot = match rayon::current_thread_index() {
            Some(i) if workers > 0 => i % workers,
            _ => workers,
        };
        let mut guard = self.slots[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

impl<T: Default> Default for WorkspacePool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Dot product with eight independent partial sums, so it vectorises without reordering
/// anything the compiler may not reorder.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    s + tail
}

/// `O = H·W_out + b` for `rows` rows; `w_t` is `W_out` transposed (`[2][width]`).
fn output_layer(
    h: &[f32],
    ld: usize,
    rows: usize,
    width: usize,
    w_t: &[f32],
    b: [f32; 2],
    out: &mut [f32],
) {
    assert!(
        h.len() >= rows.saturating_sub(1) * ld + width
            && w_t.len() >= 2 * width
            && out.len() >= 2 * rows
    );
    if gemm::output_layer(h, ld, rows, width, w_t, b, out) {
        return;
    }
    output_layer_portable(h, ld, rows, width, w_t, b, out);
}

multiversion! {
    fn output_layer_portable(h: &[f32], ld: usize, rows: usize, width: usize, w_t: &[f32], b: [f32; 2], out: &mut [f32]) {
        let (w0, w1) = w_t.split_at(width);
        for (i, o) in out[..2 * rows].chunks_exact_mut(2).enumerate() {
            let row = &h[i * ld..i * ld + width];
            o[0] = dot(row, w0) + b[0];
            o[1] = dot(row, w1) + b[1];
        }
    }
}

/// Output-layer backward: `g_out = [dW_out[:,0]; dW_out[:,1]] = H_lastᵀ·dO` (as `[2][width]`)
/// and `dZ_last = (dO·W_outᵀ) ⊙ act′(Z_last)` written over `Z_last`.
#[allow(clippy::too_many_arguments)]
fn output_layer_backward(
    h: &[f32],
    z: &mut [f32],
    ld: usize,
    rows: usize,
    width: usize,
    act: super::mlp::Activation,
    w_t: &[f32],
    d_out: &[f32],
    g_out: &mut [f32],
) {
    dispatch_act!(act, A => output_layer_backward_with::<A>(h, z, ld, rows, width, w_t, d_out, g_out))
}

multiversion! {
    fn output_layer_backward_with<A: ActFn>(
        h: &[f32],
        z: &mut [f32],
        ld: usize,
        rows: usize,
        width: usize,
        w_t: &[f32],
        d_out: &[f32],
        g_out: &mut [f32],
    ) {
        let (w0, w1) = w_t.split_at(width);
        let (g0, g1) = g_out[..2 * width].split_at_mut(width);
        g0.fill(0.0);
        g1.fill(0.0);
        for (i, d) in d_out[..2 * rows].chunks_exact(2).enumerate() {
            let (d0, d1) = (d[0], d[1]);
            let hr = &h[i * ld..i * ld + width];
            for ((g0, g1), &hv) in g0.iter_mut().zip(g1.iter_mut()).zip(hr) {
                *g0 += hv * d0;
                *g1 += hv * d1;
            }
            out_grad_row::<A>(&mut z[i * ld..i * ld + width], w0, w1, d0, d1);
        }
    }
}

#[inline(always)]
fn out_grad_row<A: ActFn>(z: &mut [f32], w0: &[f32], w1: &[f32], d0: f32, d1: f32) {
    for ((z, &a), &b) in z.iter_mut().zip(w0).zip(w1) {
        *z = (d0 * a + d1 * b) * A::df(*z);
    }
}

multiversion! {
    /// Sums of the first `rows` rows, column by column, into (or, with `accumulate`, onto)
    /// `out` (the bias gradient).
    fn column_sums(m: &[f32], ld: usize, rows: usize, out: &mut [f32], accumulate: bool) {
        let n = out.len();
        if !accumulate {
            out.fill(0.0);
        }
        for r in 0..rows {
            for (o, &v) in out.iter_mut().zip(&m[r * ld..r * ld + n]) {
                *o += v;
            }
        }
    }
}

/// Layer 0 of a conditional network after its GEMM: `z += b + W₀[rows[r]]`, `h = act(z)`
/// (`z` holds `[x, emb]·W₀` on entry, the pre-activation on return).
fn class_bias_act(
    act: super::mlp::Activation,
    z: &mut [f32],
    h: &mut [f32],
    ld: usize,
    rows: &[u32],
    w0: &[f32],
    bias: &[f32],
) {
    let n = bias.len();
    for &row in rows {
        assert!((row as usize + 1) * n <= w0.len(), "class row out of range");
    }
    assert!(
        rows.is_empty()
            || (z.len() >= (rows.len() - 1) * ld + n && h.len() >= (rows.len() - 1) * ld + n)
    );
    dispatch_act!(act, A => class_bias_act_with::<A>(z, h, ld, rows, w0, bias))
}

multiversion! {
    fn class_bias_act_with<A: ActFn>(z: &mut [f32], h: &mut [f32], ld: usize, rows: &[u32], w0: &[f32], bias: &[f32]) {
        let n = bias.len();
        for (r, &row) in rows.iter().enumerate() {
            let wc = &w0[row as usize * n..(row as usize + 1) * n];
            let zr = &mut z[r * ld..r * ld + n];
            let hr = &mut h[r * ld..r * ld + n];
            for (((z, h), &b), &c) in zr.iter_mut().zip(hr.iter_mut()).zip(bias).zip(wc) {
                let v = *z + b + c;
                *z = v;
                *h = A::f(v);
            }
        }
    }
}

/// The tangents of layer 0 along x₀ and x₁: `T_a = W₀[a] ⊙ act′(Z₀)` (`wx` = rows 0, 1 of W₀).
fn first_layer_tangents(
    act: super::mlp::Activation,
    z: &[f32],
    ld: usize,
    rows: usize,
    wx: &[f32],
    t0: &mut [f32],
    t1: &mut [f32],
) {
    dispatch_act!(act, A => first_layer_tangents_with::<A>(z, ld, rows, wx, t0, t1))
}

multiversion! {
    fn first_layer_tangents_with<A: ActFn>(z: &[f32], ld: usize, rows: usize, wx: &[f32], t0: &mut [f32], t1: &mut [f32]) {
        let (d0, d1) = wx.split_at(wx.len() / 2);
        for i in 0..rows {
            let r = i * ld..i * ld + d0.len();
            let (t0r, t1r) = (&mut t0[r.clone()], &mut t1[r.clone()]);
            for ((((t0, t1), &zv), &a), &b) in t0r.iter_mut().zip(t1r.iter_mut()).zip(&z[r]).zip(d0).zip(d1) {
                let g = A::df(zv);
                *t0 = a * g;
                *t1 = b * g;
            }
        }
    }
}
