//! Each WGSL kernel against its CPU twin on random shapes, including shapes that are not
//! multiples of the 64×64 tile, a single row, and a single column.

mod gpu_common;

use diffusion_playground::gpu::GpuContext;
use diffusion_playground::gpu::kernels::{
    AdamUniform, DsmUniform, GemmUniform, K, ScheduleUniform, Slots, TrainStepUniform,
    dispatch_once, param_id, process_id, read_f32, storage_buffer, storage_init, uniform_init,
};
use diffusion_playground::math::rng::uniform;
use diffusion_playground::math::{Process, Schedule};
use diffusion_playground::nn::IMPORTANCE_TABLE_SIZE;
use diffusion_playground::nn::adam::{Adam, BETA1, BETA2, Ema};
use diffusion_playground::nn::fastmath::{activate, activate_grad};
use diffusion_playground::nn::{
    Activation, DsmSampler, Embedding, ImportanceTable, Parameterization, TimeEmbedding, Weighting,
};
use gpu_common::{assert_close, gpu, points};

/// Uniform values in [−1, 1), keyed by `seed`.
fn rand_vec(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| 2.0 * uniform(seed, 77, i, 0) - 1.0)
        .collect()
}

/// Shapes (m, n, k): single row/column, odd sizes around the 64 tile and 16 K step, and
/// the reference net's 66-wide input.
const SHAPES: &[(u32, u32, u32)] = &[
    (1, 1, 1),
    (1, 7, 3),
    (5, 1, 9),
    (65, 67, 63),
    (130, 17, 129),
    (64, 64, 16),
    (200, 128, 66),
];

const ACTS: [Activation; 3] = [Activation::Silu, Activation::Gelu, Activation::Relu];

fn act_of(i: usize) -> Activation {
    ACTS[i % 3]
}

fn act_id(a: Activation) -> u32 {
    diffusion_playground::gpu::kernels::act_id(a)
}

fn groups(n: u32, m: u32) -> [u32; 3] {
    [n.div_ceil(64), m.div_ceil(64), 1]
}

/// Z = A·W + b and H = act(Z): |Δ| ≤ 1e-5·|z| + 2e-7·k (f32 sums of k terms ≤ 1 in size).
#[test]
fn matmul_forward_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (case, &(m, n, k)) in SHAPES.iter().enumerate() {
        let act = act_of(case);
        let (mu, nu, ku) = (m as usize, n as usize, k as usize);
        let a = rand_vec(mu * ku, 1 + case as u32);
        // Weights at a nonzero offset, bias right after them (the parameter layout).
        let w_off = 3usize;
        let params = rand_vec(w_off + ku * nu + nu, 100 + case as u32);
        let u = GemmUniform {
            m,
            n,
            k,
            lda: k,
            ldb: n,
            ldc: n,
            ld_aux: n,
            b_off: w_off as u32,
            bias_off: (w_off + ku * nu) as u32,
            act: act_id(act),
            flag: 1,
            ..GemmUniform::default()
        };
        let (z, h) = run_gemm(ctx, K::GemmForward, &u, &a, &params, mu * nu, &[]);
        let mut z_cpu = vec![0.0f32; mu * nu];
        for i in 0..mu {
            for j in 0..nu {
                let mut s = params[w_off + ku * nu + j] as f64;
                for kk in 0..ku {
                    s += a[i * ku + kk] as f64 * params[w_off + kk * nu + j] as f64;
                }
                z_cpu[i * nu + j] = s as f32;
            }
        }
        let h_cpu: Vec<f32> = z_cpu.iter().map(|&z| activate(act, z)).collect();
        let abs = 2e-7 * k as f32;
        assert_close(&format!("Z {m}×{n}×{k}"), &z, &z_cpu, 1e-5, abs);
        assert_close(
            &format!("H {m}×{n}×{k} {act:?}"),
            &h,
            &h_cpu,
            1e-5,
            2.0 * abs,
        );
    }
}

/// dZ_prev = (dZ·Wᵀ) ⊙ act′(Z_prev).
#[test]
fn matmul_backward_dx_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (case, &(m, n, k)) in SHAPES.iter().enumerate() {
        // Output m×k, reduction over n: W is [k][n] (fan_in k, fan_out n).
        let act = act_of(case + 1);
        let (mu, nu, ku) = (m as usize, n as usize, k as usize);
        let dz = rand_vec(mu * nu, 200 + case as u32);
        let w_off = 5usize;
        let params = rand_vec(w_off + ku * nu, 300 + case as u32);
        let z_prev: Vec<f32> = rand_vec(mu * ku, 400 + case as u32)
            .iter()
            .map(|v| 3.0 * v)
            .collect();
        let u = GemmUniform {
            m,
            n: k,
            k: n,
            lda: n,
            ldb: n,
            ldc: k,
            ld_aux: k,
            b_off: w_off as u32,
            act: act_id(act),
            ..GemmUniform::default()
        };
        let (c, _) = run_gemm(ctx, K::GemmBackwardDx, &u, &dz, &params, mu * ku, &z_prev);
        let mut c_cpu = vec![0.0f32; mu * ku];
        for i in 0..mu {
            for kk in 0..ku {
                let mut s = 0.0f64;
                for j in 0..nu {
                    s += dz[i * nu + j] as f64 * params[w_off + kk * nu + j] as f64;
                }
                c_cpu[i * ku + kk] = (s as f32) * activate_grad(act, z_prev[i * ku + kk]);
            }
        }
        assert_close(
            &format!("dX {m}×{k}×{n} {act:?}"),
            &c,
            &c_cpu,
            1e-5,
            3e-7 * n as f32,
        );
    }
}

/// [dW; db] = [H, 1]ᵀ·dZ in split-K slices (rows per slice not a multiple of anything).
#[test]
fn matmul_backward_dw_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (case, &(rows, n, k)) in SHAPES.iter().enumerate() {
        let (ru, nu, ku) = (rows as usize, n as usize, k as usize);
        let h = rand_vec(ru * ku, 500 + case as u32);
        let dz = rand_vec(ru * nu, 600 + case as u32);
        let k_split = if rows > 16 { 48 } else { rows };
        let splits = rows.div_ceil(k_split);
        let c_off = 7usize;
        let stride = c_off + (ku + 1) * nu + 3;
        let u = GemmUniform {
            m: k + 1,
            n,
            k: rows,
            lda: k,
            ldb: n,
            ldc: n,
            c_off: c_off as u32,
            flag: 1,
            k_split,
            c_split_stride: stride as u32,
            ..GemmUniform::default()
        };
        let uniform = uniform_init(ctx, "test gemm", &u);
        let a_buf = storage_init(ctx, "H", &h).expect("H");
        let b_buf = storage_init(ctx, "dZ", &dz).expect("dZ");
        let c_buf =
            storage_buffer(ctx, "partials", (stride * splits as usize * 4) as u64).expect("C");
        let aux = storage_buffer(ctx, "unused", 4).expect("aux");
        let g = [n.div_ceil(64), (k + 1).div_ceil(64), splits];
        dispatch_once(
            ctx,
            K::GemmBackwardDw,
            &[&uniform, &a_buf, &b_buf, &c_buf, &aux],
            None,
            g,
        )
        .expect("dispatch");
        let parts = read_f32(ctx, &c_buf, 0, stride * splits as usize).expect("read");
        let mut gpu_sum = vec![0.0f32; (ku + 1) * nu];
        for s in 0..splits as usize {
            for (o, v) in gpu_sum.iter_mut().zip(&parts[s * stride + c_off..]) {
                *o += v;
            }
        }
        let mut cpu = vec![0.0f32; (ku + 1) * nu];
        for i in 0..=ku {
            for j in 0..nu {
                let mut s = 0.0f64;
                for r in 0..ru {
                    let hv = if i == ku { 1.0 } else { h[r * ku + i] as f64 };
                    s += hv * dz[r * nu + j] as f64;
                }
                cpu[i * nu + j] = s as f32;
            }
        }
        assert_close(
            &format!("[dW; db] {k}+1×{n} over {rows}"),
            &gpu_sum,
            &cpu,
            1e-5,
            3e-7 * rows as f32,
        );
    }
}

/// Runs a matmul kernel on fresh buffers; returns (C, aux).
fn run_gemm(
    ctx: &GpuContext,
    k: K,
    u: &GemmUniform,
    a: &[f32],
    b: &[f32],
    c_len: usize,
    aux: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let uniform = uniform_init(ctx, "test gemm", u);
    let a_buf = storage_init(ctx, "A", a).expect("A");
    let b_buf = storage_init(ctx, "B", b).expect("B");
    let c_buf = storage_buffer(ctx, "C", (c_len * 4) as u64).expect("C");
    let aux_buf = if aux.is_empty() {
        storage_buffer(ctx, "aux", (c_len * 4) as u64).expect("aux")
    } else {
        storage_init(ctx, "aux", aux).expect("aux")
    };
    dispatch_once(
        ctx,
        k,
        &[&uniform, &a_buf, &b_buf, &c_buf, &aux_buf],
        None,
        groups(u.n, u.m),
    )
    .expect("dispatch");
    let c = read_f32(ctx, &c_buf, 0, c_len).expect("read C");
    let x = read_f32(ctx, &aux_buf, 0, c_len).expect("read aux");
    (c, x)
}

/// The DSM batch of step k equals `DsmSampler::draw_batch` (same RNG keys), and its input rows
/// equal `[x_t, TimeEmbedding(t)]`, for every schedule and weighting. α, σ are f32 on the GPU
/// (f64 on the CPU): rel 2e-5; ε by Box–Muller with the GPU's log/cos: abs 2e-5.
#[test]
fn dsm_batch_matches_cpu_draws() {
    let Some(ctx) = gpu() else { return };
    let data = points(37, 1);
    let cases = [
        (
            Schedule::default(),
            Weighting::Uniform,
            Embedding::Sinusoidal { dim: 64 },
            Process::Vp,
        ),
        (
            Schedule::Cosine { beta_cap: 20.0 },
            Weighting::InverseSigma2,
            Embedding::Scalar,
            Process::Vp,
        ),
        (
            Schedule::Constant { beta: 2.0 },
            Weighting::Importance,
            Embedding::Sinusoidal { dim: 6 },
            Process::Vp,
        ),
        (
            Schedule::Linear {
                beta_min: 0.5,
                beta_max: 5.0,
            },
            Weighting::Importance,
            Embedding::Sinusoidal { dim: 2 },
            Process::Vp,
        ),
        (
            Schedule::default(),
            Weighting::Uniform,
            Embedding::Sinusoidal { dim: 8 },
            Process::Fm,
        ),
    ];
    for (case, (schedule, weighting, embedding, process)) in cases.into_iter().enumerate() {
        let (batch, seed, step, t_min) = (300u32, 9 + case as u32, 1234u64 + case as u64, 1e-3f32);
        let emb = TimeEmbedding::new(embedding);
        let in_ld = 2 + emb.dim();
        let table = ImportanceTable::new(&schedule, t_min);
        let u = DsmUniform {
            batch,
            n_data: data.len() as u32,
            seed,
            weighting: match weighting {
                Weighting::Uniform => 0,
                Weighting::InverseSigma2 => 1,
                Weighting::Importance => 2,
            },
            t_min,
            table_weight: table.weight,
            table_n: IMPORTANCE_TABLE_SIZE as u32,
            param: param_id(Parameterization::Eps),
            emb_half: emb.freqs().len() as u32,
            in_ld: in_ld as u32,
            process: process_id(process),
            _pad: 0,
            schedule: ScheduleUniform::new(&schedule),
        };
        let uniform = uniform_init(ctx, "dsm", &u);
        let data_buf = storage_init(ctx, "data", &data).expect("data");
        let table_buf = storage_init(ctx, "table", &table.t_of_u).expect("table");
        let freqs = storage_init(ctx, "freqs", emb.freqs()).expect("freqs");
        let input =
            storage_buffer(ctx, "input", (batch as usize * in_ld * 4) as u64).expect("input");
        let samples = storage_buffer(ctx, "samples", batch as u64 * 32).expect("samples");
        let slots = Slots::new(&ctx.device, "step", 32, 1);
        let step_u = TrainStepUniform {
            step: step as u32,
            ..TrainStepUniform::default()
        };
        slots.write(&ctx.queue, 0, &[step_u]);
        dispatch_once(
            ctx,
            K::DsmBatch,
            &[&uniform, &data_buf, &table_buf, &freqs, &input, &samples],
            Some(&slots),
            [batch.div_ceil(256), 1, 1],
        )
        .expect("dispatch");
        let rows = read_f32(ctx, &input, 0, batch as usize * in_ld).expect("input");
        let s = read_f32(ctx, &samples, 0, batch as usize * 8).expect("samples");
        let cpu = DsmSampler::new(seed, schedule, t_min, weighting)
            .on(process)
            .draw_batch(&data, step, batch as usize);
        let col = |f: &dyn Fn(&diffusion_playground::nn::DsmSample) -> f32| {
            cpu.iter().map(f).collect::<Vec<_>>()
        };
        let gcol = |j: usize| s.chunks_exact(8).map(|r| r[j]).collect::<Vec<_>>();
        let name = format!(
            "{} / {} / {}",
            process.name(),
            schedule.name(),
            weighting.name()
        );
        assert_close(&format!("{name}: t"), &gcol(7), &col(&|d| d.t), 1e-6, 1e-7);
        assert_close(
            &format!("{name}: target.x"),
            &gcol(0),
            &col(&|d| d.target[0]),
            1e-5,
            2e-5,
        );
        assert_close(
            &format!("{name}: target.y"),
            &gcol(1),
            &col(&|d| d.target[1]),
            1e-5,
            2e-5,
        );
        assert_close(
            &format!("{name}: α"),
            &gcol(4),
            &col(&|d| d.alpha),
            2e-5,
            1e-7,
        );
        assert_close(
            &format!("{name}: σ"),
            &gcol(5),
            &col(&|d| d.sigma),
            2e-5,
            1e-7,
        );
        assert_close(
            &format!("{name}: w"),
            &gcol(6),
            &col(&|d| d.weight),
            5e-5,
            0.0,
        );
        assert_close(
            &format!("{name}: x_t.x"),
            &gcol(2),
            &col(&|d| d.x_t[0]),
            2e-5,
            2e-5,
        );
        assert_close(
            &format!("{name}: x_t.y"),
            &gcol(3),
            &col(&|d| d.x_t[1]),
            2e-5,
            2e-5,
        );
        let mut cpu_rows = vec![0.0f32; batch as usize * in_ld];
        for (row, d) in cpu_rows.chunks_exact_mut(in_ld).zip(&cpu) {
            row[..2].copy_from_slice(&d.x_t);
        }
        let ts: Vec<f32> = cpu.iter().map(|d| d.t).collect();
        emb.write_rows(&ts, &mut cpu_rows, in_ld, 2);
        assert_close(&format!("{name}: input rows"), &rows, &cpu_rows, 1e-5, 2e-5);
    }
}

/// Two Adam + EMA steps from gradient slices equal `nn::Adam` and `nn::Ema` on their sum.
#[test]
fn adam_and_ema_match_cpu() {
    let Some(ctx) = gpu() else { return };
    let n = 1000usize;
    let splits = 3usize;
    let (lr, decay) = (0.01f32, 0.999f32);
    let params0 = rand_vec(n, 1);
    let mut p_cpu = params0.clone();
    let mut adam = Adam::new(n);
    let mut ema = Ema::new(&params0, decay);
    let params = storage_init(ctx, "params", &params0).expect("params");
    let moments = storage_buffer(ctx, "moments", (2 * n * 4) as u64).expect("moments");
    let ema_buf = storage_init(ctx, "ema", &params0).expect("ema");
    let grad = storage_buffer(ctx, "grad", (n * 4) as u64).expect("grad");
    let backup = storage_buffer(ctx, "backup", (2 * n * 4) as u64).expect("backup");
    let status = storage_buffer(ctx, "status", 4).expect("status");
    let u = AdamUniform {
        n: n as u32,
        splits: splits as u32,
        split_stride: n as u32,
        _pad: 0,
    };
    let uniform = uniform_init(ctx, "adam", &u);
    let slots = Slots::new(&ctx.device, "step", 32, 1);
    for k in 1..=2i32 {
        let parts = rand_vec(n * splits, 10 + k as u32);
        let g: Vec<f32> = (0..n)
            .map(|i| parts[i] + parts[n + i] + parts[2 * n + i])
            .collect();
        adam.step(&mut p_cpu, &g, lr);
        let d = ema.current_decay();
        ema.update(&p_cpu);
        let c1 = (1.0 - (BETA1 as f64).powi(k)) as f32;
        let c2 = (1.0 - (BETA2 as f64).powi(k)) as f32;
        let step_u = TrainStepUniform {
            step: k as u32,
            slot: 0,
            step_size: lr / c1,
            inv_sqrt_c2: 1.0 / c2.sqrt(),
            ema_decay: d,
            _pad: [0; 3],
        };
        slots.write(&ctx.queue, 0, &[step_u]);
        let partials = storage_init(ctx, "partials", &parts).expect("partials");
        dispatch_once(
            ctx,
            K::Adam,
            &[
                &uniform, &params, &moments, &ema_buf, &partials, &grad, &backup, &status,
            ],
            Some(&slots),
            [(n as u32).div_ceil(256), 1, 1],
        )
        .expect("dispatch");
        let g_gpu = read_f32(ctx, &grad, 0, n).expect("grad");
        assert_close(&format!("step {k}: Σ slices"), &g_gpu, &g, 1e-6, 1e-7);
    }
    let p_gpu = read_f32(ctx, &params, 0, n).expect("params");
    let e_gpu = read_f32(ctx, &ema_buf, 0, n).expect("ema");
    assert_close("params after 2 Adam steps", &p_gpu, &p_cpu, 1e-6, 1e-6);
    assert_close("EMA after 2 steps", &e_gpu, ema.params(), 1e-6, 1e-6);
}
