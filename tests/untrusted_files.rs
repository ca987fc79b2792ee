//! Files from elsewhere: a path named inside a file is never opened, every file read is a
//! bounded read of a regular file (no hang on a FIFO or a device, a size limit), and text
//! from a file reaches an error message only escaped and cut short.
//!
//! The CLI runs under a deadline: a hang is a failure, not a stuck test run.
#![allow(clippy::unwrap_used)] // test helpers unwrap too, not only #[test] fns

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use diffusion_playground::data::{self, Normalization};
use diffusion_playground::math::Schedule;
use diffusion_playground::nn::MlpConfig;
use diffusion_playground::nn::weights::{self, SavedModel};
use safetensors::SafeTensors;

/// Long enough for a debug-free release binary on a busy 2-core machine; a blocked open
/// never returns at all.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the CLI with a deadline, stdin a pipe nobody writes to (so reading it would block),
/// and returns its output and how long it took; a run past the deadline is killed and fails
/// the test.
fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_diffusion-playground"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // Held open until the end: a reader of stdin would wait for it forever.
    let stdin = child.stdin.take();
    loop {
        if child.try_wait().unwrap().is_some() {
            drop(stdin);
            return (child.wait_with_output().unwrap(), start.elapsed());
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            panic!("hung for {DEADLINE:?}: {args:?} (stderr so far: {err:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An error: exit code ≠ 0, one short line on stderr with no control character, no panic,
/// mentioning `needle`. Returns the line.
fn clean_error(args: &[&str], needle: &str) -> String {
    let (out, took) = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let line = err.trim_end_matches('\n');
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "raw control characters in {err:?}"
    );
    assert!(line.chars().count() < 600, "{} chars: {err:?}", line.len());
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    eprintln!("{args:?} → {line} ({took:?})");
    line.to_owned()
}

fn ok(args: &[&str]) -> String {
    let (out, _) = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A small model whose metadata says it was trained on `dataset`.
fn model_naming(dir: &Path, file: &str, dataset: &str) -> PathBuf {
    let config = MlpConfig {
        width: 16,
        depth: 1,
        ..MlpConfig::default()
    };
    let saved = SavedModel {
        params: config.init_params(1),
        config,
        schedule: Schedule::default(),
        t_min: 1e-3,
        dataset: dataset.to_owned(),
        normalization: Normalization {
            mean: [3.0, -2.0],
            scale: 2.0,
        },
        steps: 10,
    };
    let path = dir.join(file);
    weights::save(&path, &saved).unwrap();
    path
}

/// A CSV of 200 points around (3, −2).
fn good_csv(dir: &Path) -> PathBuf {
    let path = dir.join("good.csv");
    let mut text = String::from("x,y\n");
    for i in 0..200 {
        let a = i as f32 * 0.1;
        text.push_str(&format!("{},{}\n", 3.0 + 2.0 * a.cos(), -2.0 + a.sin()));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `sample --metrics` and `nll` with `model`, plus `extra` flags.
fn metric_runs<'a>(model: &'a str, extra: &[&'a str]) -> [Vec<&'a str>; 2] {
    let mut sample = vec![
        "sample",
        "--model",
        model,
        "--n",
        "50",
        "--steps",
        "3",
        "--backend",
        "cpu",
        "--metrics",
    ];
    let mut nll = vec!["nll", "--model", model, "--n", "5", "--steps", "3"];
    sample.extend_from_slice(extra);
    nll.extend_from_slice(extra);
    [sample, nll]
}

#[test]
fn a_path_in_a_model_file_is_never_opened_without_data() {
    let dir = tempfile::tempdir().unwrap();
    // A CSV whose content would show in the error if it were read.
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "x,y\n1,SECRET-TOKEN\n").unwrap();
    let model = model_naming(dir.path(), "m.safetensors", s(&secret));
    for args in metric_runs(s(&model), &[]) {
        let line = clean_error(&args, "--data");
        assert!(!line.contains("SECRET"), "the file was read: {line}");
        assert!(line.contains("not a built-in dataset"), "{line}");
    }
    // Named on the command line it is read (so the check above means something) …
    for args in metric_runs(s(&model), &["--data", s(&secret)]) {
        clean_error(&args, "SECRET-TOKEN");
    }
    // … and a good file works, its name in the JSON.
    let csv = good_csv(dir.path());
    for args in metric_runs(s(&model), &["--data", s(&csv)]) {
        let out = ok(&args);
        assert!(out.contains("good.csv"), "{out}");
    }
    // Samples alone need no data.
    let samples = dir.path().join("samples.csv");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "--n",
        "20",
        "--steps",
        "3",
        "--backend",
        "cpu",
        "--out",
        s(&samples),
    ]);
    assert_eq!(data::load_csv(&samples).unwrap().points.len(), 20);
    // --data and --oracle do not go together.
    let (out, _) = run(&["nll", "--oracle", "moons", "--data", s(&csv)]);
    assert!(!out.status.success());
}

#[test]
fn a_built_in_name_in_a_model_file_is_used_only_when_exact() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_naming(dir.path(), "moons.safetensors", "moons");
    for args in metric_runs(s(&model), &[]) {
        assert!(ok(&args).contains("\"dataset\":\"moons\""));
    }
    // Near misses are not built-in names, and nothing called that is opened either.
    std::fs::write(dir.path().join("Moons"), "x,y\n1,SECRET\n").unwrap();
    for name in ["Moons", "moons ", "moons.csv", "./moons", "../moons"] {
        let model = model_naming(dir.path(), "near.safetensors", name);
        for args in metric_runs(s(&model), &[]) {
            let line = clean_error(&args, "--data");
            assert!(!line.contains("SECRET"), "{line}");
        }
    }
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_named_in_a_model_file_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    mkfifo(&fifo);
    let mut named = vec![
        s(&fifo).to_owned(),
        "/dev/zero".to_owned(),
        "/dev/stdin".to_owned(),
        "/dev/tty".to_owned(),
        "/dev/random".to_owned(),
        "/proc/self/fd/0".to_owned(),
        dir.path().display().to_string(),
        "/etc/passwd".to_owned(),
    ];
    named.push(format!("{}/", s(&fifo)));
    for (i, dataset) in named.iter().enumerate() {
        let model = model_naming(dir.path(), &format!("m{i}.safetensors"), dataset);
        for args in metric_runs(s(&model), &[]) {
            // `run` fails the test past its deadline: no hang.
            clean_error(&args, "give its data with --data");
        }
    }
}

#[test]
fn control_characters_in_a_model_file_are_not_printed_raw() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = format!(
        "\u{1b}[2J\u{1b}]0;owned\u{7}\r\nerror: fake\u{202e}{}\u{1b}[0m",
        "A".repeat(10_000)
    );
    let model = model_naming(dir.path(), "m.safetensors", &hostile);
    for args in metric_runs(s(&model), &[]) {
        let line = clean_error(&args, "\\u{1b}[2J");
        assert!(
            line.contains('…') && !line.contains(&"A".repeat(100)),
            "{line}"
        );
    }
    // The same text in other metadata and in a tensor's name.
    let good = std::fs::read(&model).unwrap();
    let meta_with = |key: &str| {
        let (_, header) = SafeTensors::read_metadata(&good).unwrap();
        let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
        meta.insert(key.to_owned(), hostile.clone());
        meta
    };
    let tensors = SafeTensors::deserialize(&good).unwrap();
    let views = tensors.tensors();
    let write = |name: &str, meta: HashMap<String, String>, extra: Option<&str>| {
        let mut all: Vec<(String, safetensors::tensor::TensorView)> = views.clone();
        if let Some(extra) = extra {
            all.push((extra.to_owned(), views[0].1.clone()));
        }
        let path = dir.path().join(name);
        std::fs::write(&path, safetensors::serialize(all, &Some(meta)).unwrap()).unwrap();
        path
    };
    for key in [
        "format",
        "config",
        "schedule",
        "normalization",
        "t_min",
        "steps",
    ] {
        let path = write(&format!("{key}.safetensors"), meta_with(key), None);
        for args in metric_runs(s(&path), &[]) {
            clean_error(&args, key);
        }
    }
    let (_, header) = SafeTensors::read_metadata(&good).unwrap();
    let path = write(
        "tensor.safetensors",
        header.metadata().clone().unwrap(),
        Some(&hostile),
    );
    clean_error(&metric_runs(s(&path), &[])[1], "unexpected tensor");
    // A CSV's field, named with --data.
    let csv = dir.path().join("hostile.csv");
    std::fs::write(
        &csv,
        format!("x,y\n1,2\n3,{}\n", hostile.replace(['\r', '\n'], "")),
    )
    .unwrap();
    for args in metric_runs(s(&model), &["--data", s(&csv)]) {
        clean_error(&args, "hostile.csv:3");
    }
}

/// A sparse file of `bytes` bytes: nothing on disk, huge if read.
#[cfg(unix)]
fn sparse(path: &Path, bytes: u64) -> &Path {
    std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn special_and_oversized_files_given_by_the_user_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    mkfifo(&fifo);
    let fifo_model = dir.path().join("pipe.safetensors");
    mkfifo(&fifo_model);
    let link = dir.path().join("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let huge_csv = dir.path().join("huge.csv");
    sparse(&huge_csv, 1 << 40);
    let huge_model = dir.path().join("huge.safetensors");
    sparse(&huge_model, 1 << 40);
    const FIFO: &str = "not a regular file (it is a FIFO)";
    let model = model_naming(dir.path(), "m.safetensors", "elsewhere.csv");
    let out = dir.path().join("never.safetensors");
    let png = dir.path().join("never.png");

    // Linux: /dev/stdin is the pipe `run` gives as stdin, which nobody ever writes to.
    let stdin_pipe = cfg!(target_os = "linux").then_some(("/dev/stdin", FIFO));
    let refused = [
        (s(&fifo), FIFO),
        (s(&link), "not a regular file (it is a character device)"),
        ("/dev/zero", "not a regular file (it is a character device)"),
        (s(dir.path()), "not a regular file (it is a directory)"),
        (s(&huge_csv), "too large"),
    ]
    .into_iter()
    .chain(stdin_pipe);
    for (path, why) in refused {
        let mut lines = Vec::new();
        for args in metric_runs(s(&model), &["--data", path]) {
            lines.push(clean_error(&args, why));
        }
        lines.push(clean_error(
            &["train", "--dataset", path, "--steps", "1", "--out", s(&out)],
            why,
        ));
        lines.push(clean_error(
            &["data", "--dataset", path, "--out", s(&png)],
            why,
        ));
        lines.push(clean_error(&["sample", "--oracle", path, "--metrics"], why));
        for line in lines {
            assert_eq!(line.matches(why).count(), 1, "said twice: {line}");
        }
    }
    // render decides CSV by the name.
    for path in [s(&fifo), s(&link), s(&huge_csv)] {
        clean_error(
            &["render", "--dataset", path, "--oracle", "--out", s(&png)],
            path,
        );
    }
    let refused = [
        (s(&fifo_model), FIFO),
        ("/dev/zero", "not a regular file (it is a character device)"),
        (s(dir.path()), "not a regular file (it is a directory)"),
        (s(&huge_model), "bytes a weights file may have"),
    ]
    .into_iter()
    .chain(stdin_pipe);
    for (path, why) in refused {
        for args in metric_runs(path, &[]) {
            clean_error(&args, why);
        }
    }
    assert!(!out.exists() && !png.exists());
}

#[cfg(unix)]
#[test]
fn the_library_refuses_special_and_oversized_files() {
    use diffusion_playground::data::DataError;
    use diffusion_playground::nn::weights::WeightsError;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let huge = dir.path().join("huge");
    sparse(&huge, weights::MAX_FILE_BYTES + 1);
    let cases: [(&Path, &str); 4] = [
        (&fifo, "FIFO"),
        (Path::new("/dev/zero"), "character device"),
        (dir.path(), "directory"),
        (&huge, "too large"),
    ];
    for (path, why) in cases {
        let err = data::load_csv(path).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err:?}");
        let m = err.to_string();
        assert!(
            m.starts_with(&path.display().to_string()) && m.contains(why),
            "{m}"
        );
        let err = weights::load(path).unwrap_err();
        let m = err.to_string();
        assert!(m.starts_with(&path.display().to_string()), "{m}");
        match why {
            "too large" => assert!(matches!(err, WeightsError::TooLarge { .. }), "{err:?}"),
            _ => assert!(
                matches!(err, WeightsError::Io { .. }) && m.contains(why),
                "{m}"
            ),
        }
    }
    // A model just within the limit is written and read; one over it is never written.
    let config = MlpConfig {
        width: 4096,
        depth: 5,
        ..MlpConfig::default()
    };
    assert!(config.num_params() as u64 * 4 > weights::MAX_FILE_BYTES);
    let saved = SavedModel {
        params: vec![0.0; config.num_params()],
        config,
        schedule: Schedule::default(),
        t_min: 1e-3,
        dataset: "moons".into(),
        normalization: Normalization::IDENTITY,
        steps: 0,
    };
    let path = dir.path().join("big.safetensors");
    let err = weights::save(&path, &saved).unwrap_err();
    assert!(matches!(err, WeightsError::TooLarge { .. }), "{err:?}");
    assert!(!path.exists());
}

/// Files whose size says nothing (`/proc`) are still cut at the limit while being read.
#[cfg(target_os = "linux")]
#[test]
fn a_file_longer_than_its_size_says_is_still_bounded() {
    let err =
        diffusion_playground::fsutil::read_bounded(Path::new("/proc/self/maps"), 64, "a test")
            .unwrap_err();
    assert!(
        matches!(
            err,
            diffusion_playground::fsutil::ReadError::TooLarge { bytes: 65, .. }
        ),
        "{err:?}"
    );
}

#[test]
fn train_refuses_a_network_too_large_to_save_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.safetensors");
    let (o, took) = run(&[
        "train",
        "--dataset",
        "moons",
        "--width",
        "4096",
        "--depth",
        "8",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--out",
        s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--width"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(!out.exists());
}
