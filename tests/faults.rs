//! Fault drills: what goes wrong in a long session, each one made to happen. The others live
//! beside what they test: a panicking training job (`app_train.rs`:
//! `the_app_shows_a_crash_and_restarts_training`), a GPU lost mid-training
//! (`backend::resilient` unit tests, `gpu_backend.rs`: `lost_device_hands_over_to_cpu`), a
//! corrupted settings file (`app::state::settings` unit tests).

mod ui_common;

use std::path::Path;
#[cfg(target_os = "linux")]
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diffusion_playground::app::trajectory::{Job, Runner, check_request};
use diffusion_playground::math::Schedule;
use diffusion_playground::math::solvers::SamplerConfig;
use diffusion_playground::nn::{MlpConfig, NetModel};
use egui_kittest::kittest::Queryable;
use ui_common::{click, harness, run_until, test_settings};

#[cfg(target_os = "linux")]
const BIN: &str = env!("CARGO_BIN_EXE_diffusion-playground");

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a readable folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A reverse run of two billion particles (16 GiB for the particles alone) is refused at
/// once, with the sizes in words, and nothing is allocated: were it allocated, the test
/// would take minutes or end in an allocation failure instead.
#[test]
fn a_run_too_large_for_memory_is_refused_before_allocating() {
    assert!(
        check_request(100_000).is_ok(),
        "the slider's largest run fits"
    );
    let net = MlpConfig {
        width: 8,
        depth: 1,
        ..MlpConfig::default()
    };
    let params = net.init_params(0);
    let model = NetModel::new(net, Schedule::default(), params).expect("a model");
    let start = Instant::now();
    let runner = Runner::start(Job::Reverse {
        schedule: Schedule::default(),
        model: Arc::new(model),
        cfg: SamplerConfig::default(),
        particles: 2_000_000_000,
        gpu: None,
    });
    let failed = runner
        .with(|t| t.failed.clone())
        .flatten()
        .expect("refused");
    assert!(start.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(failed.contains("2000000000 particles"), "{failed}");
    assert!(failed.contains("MiB"), "{failed}");
    // Forward runs are checked the same way (their particles are given, so only the
    // arithmetic is tested here: a count whose byte size overflows is refused, not wrapped).
    assert!(check_request(usize::MAX / 4).is_err());
}

/// A file write that fails half-way (here the file-size limit, which fails a write as a full
/// disk does) leaves neither the file nor a temporary one, and says why in one line.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_no_half_written_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("roll.csv");
    // RLIMIT_FSIZE: a write past 4 KiB fails with EFBIG. The signal it also raises
    // (SIGXFSZ) is ignored by the shell, and an ignored signal stays ignored across exec.
    let script = format!(
        "trap '' XFSZ; exec prlimit --fsize=4096 {BIN} data --dataset swiss-roll --n 20000 \
         --out {}",
        out.display()
    );
    let result = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "the write must fail: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("roll.csv"), "names the file: {stderr}");
    assert!(stderr.to_lowercase().contains("too large"), "{stderr}");
    assert!(
        listing(dir.path()).is_empty(),
        "no half-written file: {:?}",
        listing(dir.path())
    );
    // The same command without the limit writes the file (the failure was the limit's).
    let ok = Command::new(BIN)
        .args(["data", "--dataset", "swiss-roll", "--n", "20000", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(ok.status.success());
    assert_eq!(listing(dir.path()), ["roll.csv"]);
}

/// A folder nothing can be written to: one line naming the file, non-zero exit, nothing
/// left behind. `/proc` refuses new files even to root, who ignores permission bits.
#[cfg(target_os = "linux")]
#[test]
fn a_folder_that_cannot_be_written_gives_a_clear_message() {
    for out in ["/proc/self/roll.csv", "/proc/roll.csv"] {
        let result = Command::new(BIN)
            .args(["data", "--dataset", "moons", "--n", "100", "--out", out])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{out}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("roll.csv"), "names the file: {stderr}");
        assert!(!Path::new(out).exists());
    }
}

/// In the app: an export folder that cannot be made (its path goes through a regular file)
/// gives a message under the export buttons; the app goes on and a later export to a good
/// folder works.
#[test]
fn an_export_to_a_folder_that_cannot_be_made_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").expect("write");
    let mut settings = test_settings();
    settings.teach.export_dir = file.join("exports").display().to_string();
    let mut h = harness(settings);
    h.run_steps(2);
    click(&mut h, "Export");
    click(&mut h, "Samples CSV");
    let message = h.state().export.message.clone();
    let Some(Err(why)) = message else {
        panic!("expected a refusal, got {message:?}");
    };
    assert!(why.contains("not-a-folder"), "{why}");
    assert!(why.contains("cannot create"), "{why}");
    assert!(
        h.query_all_by_label_contains("cannot create")
            .next()
            .is_some()
    );

    let good = dir.path().join("exports");
    h.state_mut().settings.teach.export_dir = good.display().to_string();
    h.run_steps(1);
    click(&mut h, "Samples CSV");
    assert!(run_until(&mut h, 20.0, |h| matches!(
        &h.state().export.message,
        Some(Ok(_))
    )));
    assert_eq!(listing(&good), ["samples.csv"]);
}
