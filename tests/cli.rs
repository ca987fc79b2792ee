//! The command-line contract: run the built binary on tiny settings and check its outputs,
//! JSON keys and error behaviour (one line on stderr, non-zero exit, no panic).
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_diffusion-playground"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    serde_json::from_str(line).expect("valid JSON")
}

/// An error: exit code ≠ 0, one line on stderr, and no panic message.
fn assert_clean_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn data_writes_a_csv_and_rejects_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("moons.csv");
    let o = run(&[
        "data",
        "--dataset",
        "moons",
        "--n",
        "50",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next(), Some("x,y,label"));
    assert_eq!(text.lines().count(), 51);

    let missing = dir.path().join("nothing.csv");
    let o = run(&[
        "data",
        "--dataset",
        "no-such-set",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_clean_error(&o, "no-such-set");
    assert!(!missing.exists());
}

#[test]
fn bad_csv_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "x,y\n1,2\n3,nan\n").unwrap();
    let out = dir.path().join("out.safetensors");
    let o = run(&[
        "train",
        "--dataset",
        bad.to_str().unwrap(),
        "--steps",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_clean_error(&o, "bad.csv:3");
    assert!(!out.exists());
}

#[test]
fn train_sample_nll_round_trip_in_csv_units() {
    let dir = tempfile::tempdir().unwrap();
    // A user's CSV far from the origin: samples must come back in its units.
    let csv = dir.path().join("blob.csv");
    let mut text = String::from("x,y\n");
    for i in 0..200 {
        let a = i as f32 * 0.1;
        text.push_str(&format!("{},{}\n", 100.0 + a.cos(), -50.0 + a.sin()));
    }
    std::fs::write(&csv, text).unwrap();
    let model = dir.path().join("m.safetensors");
    let o = run(&[
        "train",
        "--dataset",
        csv.to_str().unwrap(),
        "--steps",
        "200",
        "--batch",
        "64",
        "--width",
        "32",
        "--depth",
        "2",
        "--seed",
        "1",
        "--backend",
        "cpu",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("final loss"));
    assert!(model.exists());

    let samples = dir.path().join("s.csv");
    let o = run(&[
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--sampler",
        "heun",
        "--steps",
        "10",
        "--n",
        "300",
        "--seed",
        "2",
        "--backend",
        "cpu",
        "--out",
        samples.to_str().unwrap(),
        "--metrics",
        // The model records its CSV's path but never opens it: the user names the data.
        "--data",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    for key in [
        "sampler",
        "steps",
        "nfe",
        "sw2",
        "sw2_floor",
        "energy",
        "energy_floor",
        "seconds",
    ] {
        assert!(j.get(key).is_some(), "missing {key} in {j}");
    }
    assert_eq!(j["sampler"], "heun");
    assert_eq!(j["nfe"], 20);
    let pts = diffusion_playground::data::load_csv(&samples)
        .unwrap()
        .points;
    let mx = pts.iter().map(|p| p[0]).sum::<f32>() / pts.len() as f32;
    let my = pts.iter().map(|p| p[1]).sum::<f32>() / pts.len() as f32;
    assert!(
        (mx - 100.0).abs() < 1.0 && (my + 50.0).abs() < 1.0,
        "mean ({mx}, {my})"
    );

    let o = run(&[
        "nll",
        "--model",
        model.to_str().unwrap(),
        "--n",
        "20",
        "--steps",
        "10",
        "--data",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    assert!(j["nll"].as_f64().unwrap().is_finite());
    assert_eq!(j["n"], 20);
    assert!(j.get("seconds").is_some());

    // Without --data the metrics need data the model only names: a clear one-line error.
    let o = run(&[
        "nll",
        "--model",
        model.to_str().unwrap(),
        "--n",
        "20",
        "--steps",
        "10",
    ]);
    assert_clean_error(&o, "--data FILE.csv");
}

#[test]
fn oracle_sampling_and_nll_print_json() {
    let o = run(&[
        "sample",
        "--oracle",
        "8-gaussians",
        "--sampler",
        "dpm2m",
        "--steps",
        "10",
        "--n",
        "200",
        "--metrics",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    assert_eq!(j["nfe"], 10);
    // The exact score with a good solver lands within a few floors.
    assert!(
        j["sw2"].as_f64().unwrap() < 4.0 * j["sw2_floor"].as_f64().unwrap(),
        "{j}"
    );

    // Hutchinson's estimator runs (its accuracy: `oracle_nll_matches_the_analytic_density`).
    let o = run(&[
        "nll",
        "--oracle",
        "8-gaussians",
        "--n",
        "20",
        "--hutchinson",
        "2",
        "--steps",
        "20",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout_json(&o)["nll"].as_f64().unwrap().is_finite());
}

/// `nll --oracle NAME ...` on fresh draws: the mean NLL in nats and the JSON's `n`.
fn oracle_nll(extra: &[&str]) -> f64 {
    let mut args = vec!["nll", "--oracle"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout_json(&o)["nll"].as_f64().unwrap()
}

/// log N(x; m, C) in 2D.
fn gaussian_log_density(x: [f64; 2], m: [f64; 2], c: [[f64; 2]; 2]) -> f64 {
    let det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
    let (dx, dy) = (x[0] - m[0], x[1] - m[1]);
    let quad = (c[1][1] * dx * dx - 2.0 * c[0][1] * dx * dy + c[0][0] * dy * dy) / det;
    -(std::f64::consts::TAU).ln() - 0.5 * det.ln() - 0.5 * quad
}

/// The PF-ODE NLL of the exact 8-Gaussians score equals E_{x∼p₀}[−log p_{t_min}(x)], the
/// cross-entropy of the data with the noised mixture at t_min = 1e-3, worked out here in
/// closed form: p_t = Σ_k w_k N(α μ_k, α² Σ_k + σ² I), in the standardised units the built-in
/// sets are drawn in (so `nll` adds no unit shift). The expectation is taken over 1M draws
/// here; `nll` averages n held-out points, so the tolerance is 5 standard errors of that
/// mean, plus the ODE's discretisation error, estimated from the same run at twice the steps.
#[test]
fn oracle_nll_matches_the_analytic_density() {
    use diffusion_playground::data::{BuiltIn, mixture};
    use diffusion_playground::math::Schedule;
    use diffusion_playground::math::rng::normal2;

    const N: usize = 100_000;
    const STEPS: usize = 50;
    let components = mixture(BuiltIn::EightGaussians).expect("a Gaussian mixture");
    let schedule = Schedule::default();
    let t_min = 1e-3; // the CLI's t_min for an oracle
    let (a, s) = (schedule.alpha(t_min), schedule.sigma(t_min));
    let log_p = |x: [f64; 2]| {
        let terms: Vec<f64> = components
            .iter()
            .map(|c| {
                let mut cov = c.cov.map(|row| row.map(|v| a * a * v));
                cov[0][0] += s * s;
                cov[1][1] += s * s;
                c.weight.ln() + gaussian_log_density(x, c.mean.map(|m| a * m), cov)
            })
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    };
    // x ∼ p₀: component i mod 8 (all weights are 1/8), then its Gaussian (isotropic).
    assert!(components.iter().all(|c| (c.weight - 0.125).abs() < 1e-12));
    let draws = 1_000_000u32;
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for i in 0..draws {
        let c = &components[i as usize % components.len()];
        let z = normal2(0x5EED, 0, i, 0);
        let sd = c.cov[0][0].sqrt();
        assert_eq!(c.cov[0][1], 0.0);
        let x = [c.mean[0] + sd * z[0] as f64, c.mean[1] + sd * z[1] as f64];
        let nll = -log_p(x);
        sum += nll;
        sum_sq += nll * nll;
    }
    let truth = sum / draws as f64;
    let per_point_sd = (sum_sq / draws as f64 - truth * truth).sqrt();
    let se_truth = per_point_sd / (draws as f64).sqrt();

    let n = N.to_string();
    let coarse = oracle_nll(&["8-gaussians", "--n", &n, "--steps", &STEPS.to_string()]);
    let fine = oracle_nll(&[
        "8-gaussians",
        "--n",
        &n,
        "--steps",
        &(2 * STEPS).to_string(),
    ]);
    // RK4: the error at `fine` is ~1/16 of that at `coarse`, so |coarse − fine| bounds both.
    let ode_error = (coarse - fine).abs();
    let se = per_point_sd / (N as f64).sqrt();
    let tol = 5.0 * (se * se + se_truth * se_truth).sqrt() + ode_error;
    eprintln!(
        "nll: {fine} at {} steps, {coarse} at {STEPS}; analytic {truth} (per-point sd \
         {per_point_sd}, SE {se}); tolerance {tol}",
        2 * STEPS
    );
    // The tolerance must stay below effects worth seeing: data drawn with 3 % more variance
    // than the density has raise the NLL by ≈ 0.03 nats (½ · 3 % in each of 2 dimensions).
    assert!(
        tol < 0.02,
        "tolerance {tol} too loose to see a 3 % variance error"
    );
    assert!(
        (fine - truth).abs() < tol,
        "nll {fine} vs analytic {truth} (|Δ| = {} > {tol})",
        (fine - truth).abs()
    );
}

/// `nll` reports nats in the CSV's own units: data scaled by c standardise to the same points,
/// so their NLL differs by exactly 2 log c (the Jacobian of x ↦ x / c in 2D).
#[test]
fn nll_is_in_the_csv_units() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, scale: f64| {
        let path = dir.path().join(name);
        let mut text = String::from("x,y\n");
        for i in 0..200 {
            let z = diffusion_playground::math::rng::normal2(4, 0, i, 0);
            let p = [3.0 + 0.8 * z[0] as f64, -2.0 + 0.3 * z[1] as f64];
            text.push_str(&format!("{},{}\n", scale * p[0], scale * p[1]));
        }
        std::fs::write(&path, text).unwrap();
        path
    };
    let small = write("small.csv", 1.0);
    let large = write("large.csv", 10.0);
    let nll = |path: &std::path::Path| {
        oracle_nll(&[path.to_str().unwrap(), "--n", "300", "--steps", "20"])
    };
    let (a, b) = (nll(&small), nll(&large));
    let shift = 2.0 * 10f64.ln();
    eprintln!(
        "nll {a} (data), {b} (data × 10): difference {} vs 2 log 10 = {shift}",
        b - a
    );
    assert!(
        (b - a - shift).abs() < 1e-4,
        "nll ×10 data {b} − nll {a} = {} ≠ 2 log 10 = {shift}",
        b - a
    );
}

#[test]
fn corrupt_model_and_bad_flags_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    let o = run(&[
        "sample",
        "--model",
        junk.to_str().unwrap(),
        "--n",
        "10",
        "--metrics",
    ]);
    assert_clean_error(&o, "junk.safetensors");

    let o = run(&[
        "sample",
        "--oracle",
        "moons",
        "--sampler",
        "euler-ish",
        "--metrics",
    ]);
    assert!(!o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));

    let o = run(&[
        "train",
        "--schedule",
        "linear",
        "--beta-min",
        "5",
        "--beta-max",
        "1",
        "--out",
        "/tmp/never.safetensors",
    ]);
    assert_clean_error(&o, "β_min");

    let o = run(&["sample", "--oracle", "moons", "--n", "0", "--metrics"]);
    assert_clean_error(&o, "--n");
}

/// A smoke test: the command runs and prints its JSON contract; the figures are only checked
/// to be positive (timings are not reproducible enough to check more).
#[test]
fn bench_json_smoke_test_has_the_contract_keys() {
    let o = run(&[
        "bench",
        "--json",
        "--batches",
        "16",
        "--particles",
        "64",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|j| j["kind"] == "train" && j["size"] == 16)
    );
    assert!(
        lines
            .iter()
            .any(|j| j["kind"] == "sample" && j["sampler"] == "ode-euler")
    );
    for j in &lines {
        for key in ["backend", "adapter", "kind", "size", "per_s"] {
            assert!(j.get(key).is_some(), "missing {key} in {j}");
        }
        assert!(j["per_s"].as_f64().unwrap() > 0.0);
    }
}

/// `--process fm` through every command: train writes a flow-matching model, sample runs its
/// samplers (and refuses the VP-only ones), nll integrates its flow, render draws it; the exact
/// FM velocity and the exact VP score of one dataset give the same likelihood.
#[test]
fn flow_matching_through_train_sample_nll_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fm.safetensors");
    let model = model.to_str().unwrap();
    let o = run(&[
        "train",
        "--process",
        "fm",
        "--dataset",
        "8-gaussians",
        "--steps",
        "300",
        "--batch",
        "256",
        "--width",
        "32",
        "--depth",
        "2",
        "--out",
        model,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[
        "sample",
        "--model",
        model,
        "--sampler",
        "heun",
        "--steps",
        "10",
        "--n",
        "300",
        "--metrics",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    assert_eq!(j["process"], "fm");
    assert_eq!(j["nfe"], 20);
    assert!(j["sw2"].as_f64().unwrap().is_finite());
    // A path is never shorter than the distance between its ends.
    assert!(j["flow_straightness"].as_f64().unwrap() >= 1.0, "{j}");
    assert_clean_error(
        &run(&["sample", "--model", model, "--sampler", "ddim", "--metrics"]),
        "flow-matching model samples with em, ode-euler, heun, rk4",
    );
    let o = run(&["nll", "--model", model, "--n", "30", "--steps", "20"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout_json(&o)["nll"].as_f64().unwrap().is_finite());

    let exact_nll = |process: &str| {
        let o = run(&[
            "nll",
            "--oracle",
            "8-gaussians",
            "--process",
            process,
            "--n",
            "200",
            "--steps",
            "100",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout_json(&o)["nll"].as_f64().unwrap()
    };
    let (vp, fm) = (exact_nll("vp"), exact_nll("fm"));
    assert!((vp - fm).abs() < 2e-3, "exact NLL: vp {vp} vs fm {fm}");

    let png = dir.path().join("fm.png");
    let o = run(&[
        "render",
        "--process",
        "fm",
        "--oracle",
        "--dataset",
        "moons",
        "--sampler",
        "heun",
        "--steps",
        "10",
        "--particles",
        "300",
        "--size",
        "64",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(png.exists());
    assert_clean_error(
        &run(&[
            "train",
            "--process",
            "fm",
            "--weighting",
            "importance",
            "--steps",
            "1",
            "--out",
            model,
        ]),
        "--weighting applies to --process vp only",
    );
}
