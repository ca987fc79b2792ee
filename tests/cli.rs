//! The command-line contract: run the built binary on tiny settings and check its outputs,
//! JSON keys and error behaviour (one line on stderr, non-zero exit, no panic).

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
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    assert!(j["nll"].as_f64().unwrap().is_finite());
    assert_eq!(j["n"], 20);
    assert!(j.get("seconds").is_some());
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

#[test]
fn bench_json_has_the_contract_keys() {
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
