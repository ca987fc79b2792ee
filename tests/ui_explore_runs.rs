//! The Explore views run end to end through egui_kittest (no window, no training thread):
//! each view's button starts its worker with small settings, the result is checked against
//! something computed here independently, and each view's Export writes files that parse.
//! The canvas exports (PNG, GIF, CSV) are checked once too. Workers run in real time, so the
//! tests wait (generously: CI has two cores) and never assert on timing.

mod ui_common;

use std::path::Path;
use ui_common::{click, harness, run_until};

use diffusion_playground::Point;
use diffusion_playground::app::{App, ExploreTab, Settings};
use diffusion_playground::math::metrics::sliced_w2;
use diffusion_playground::math::solvers::SamplerKind;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Seconds to wait for a worker before giving up.
const WAIT: f64 = 90.0;

fn test_settings(tab: ExploreTab, export_dir: &Path) -> Settings {
    let mut settings = ui_common::test_settings();
    settings.teach.explore = true;
    settings.teach.tab = tab;
    settings.teach.export_dir = export_dir.display().to_string();
    settings
}

/// A CSV file's header and rows, split on commas (the exports quote nothing they write
/// here).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("a header")
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not a number: {e}"))
}

/// A PNG file's size (it must decode).
fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// A GIF file's size and frame count (every frame must decode).
fn gif_frames(path: &Path) -> (u16, u16, usize) {
    let file = std::fs::File::open(path).expect("gif exists");
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(file).expect("gif header");
    let mut frames = 0;
    while decoder.read_next_frame().expect("gif frame").is_some() {
        frames += 1;
    }
    (decoder.width(), decoder.height(), frames)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Distance from each point to the nearest of `train`, by brute force.
fn nearest(points: &[Point], train: &[Point]) -> Vec<f64> {
    points
        .iter()
        .map(|p| {
            train
                .iter()
                .map(|q| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)) as f64)
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect()
}

fn assert_wrote(message: Option<&Result<String, String>>) {
    match message {
        Some(Ok(m)) => assert!(m.starts_with("wrote"), "{m}"),
        other => panic!("expected a successful export, got {other:?}"),
    }
}

#[test]
fn quality_draws_a_curve_per_ticked_sampler_and_exports_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(test_settings(ExploreTab::Quality, dir.path()));
    h.run_steps(1);
    let ticked = [SamplerKind::OdeEuler, SamplerKind::Heun];
    h.state_mut().explore.quality.configure(30, 250, &ticked);
    h.run_steps(1);
    click(&mut h, "Compute quality vs steps");
    assert!(
        run_until(&mut h, WAIT, |h| h
            .state()
            .explore
            .quality
            .result()
            .is_some()),
        "quality vs steps did not finish"
    );
    let (learned, exact) = h.state().explore.quality.result().unwrap();
    assert!(learned.is_none(), "no network was trained");
    let exact = exact.clone();
    let mut got: Vec<SamplerKind> = exact.curves.iter().map(|c| c.sampler).collect();
    got.sort_by_key(|k| k.name());
    assert_eq!(got, vec![SamplerKind::Heun, SamplerKind::OdeEuler]);
    for c in &exact.curves {
        assert!(!c.points.is_empty(), "{}: empty curve", c.sampler.name());
        assert!(c.points.iter().all(|p| p.sw2.is_finite() && p.nfe <= 30));
    }
    assert!(exact.floor.sw2 > 0.0);

    click(&mut h, "Export curves (CSV)");
    assert_wrote(h.state().explore.quality.export_message());
    let (header, rows) = read_csv(&dir.path().join("quality.csv"));
    assert_eq!(header, ["sampler", "nfe", "sw2", "energy", "score"]);
    let points: usize = exact.curves.iter().map(|c| c.points.len()).sum();
    assert_eq!(rows.len(), points + 1, "every point and the floor");
    for name in ["ode-euler", "heun"] {
        assert!(
            rows.iter().any(|r| r[0] == name && r[4] == "exact"),
            "{name}"
        );
    }
    let floor = rows.iter().find(|r| r[0] == "floor").expect("floor row");
    assert!((num(&floor[2]) - exact.floor.sw2).abs() < 1e-9);
    assert!(rows.iter().all(|r| num(&r[2]).is_finite()));
    assert!(h.query_by_label_contains("quality.csv").is_some());
}

#[test]
fn the_ideal_denoiser_memorises_and_the_export_agrees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(test_settings(ExploreTab::Memorisation, dir.path()));
    h.run_steps(1);
    h.state_mut().explore.memorise.set_train_size(200);
    h.run_steps(1);
    click(&mut h, "Sample ideal denoiser and network");
    assert!(
        run_until(&mut h, WAIT, |h| h
            .state()
            .explore
            .memorise
            .report()
            .is_some()),
        "memorisation did not finish"
    );
    let train: Vec<Point> = h.state().data.points[..200].to_vec();
    let report = h.state().explore.memorise.report().unwrap().clone();
    // Independently of the report's own distances: brute-force nearest training points.
    let ideal = median(nearest(&report.ideal.samples, &train));
    let fresh = median(nearest(&report.held_out.samples, &train));
    println!("median nearest-training distance: ideal {ideal:.4}, held-out {fresh:.4}");
    assert!(
        ideal < 0.2 * fresh,
        "ideal denoiser {ideal:.4} vs held-out data {fresh:.4}"
    );
    assert!((ideal - report.ideal.summary.median as f64).abs() < 1e-3 + 0.05 * ideal);

    click(&mut h, "Export samples and histogram (CSV)");
    assert_wrote(h.state().explore.memorise.export_message());
    let (header, rows) = read_csv(&dir.path().join("memorisation.csv"));
    assert_eq!(header, ["which", "x", "y", "nearest_distance"]);
    let column = |which: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r[0] == which)
            .map(|r| num(&r[3]))
            .collect()
    };
    assert_eq!(column("ideal").len(), report.ideal.samples.len());
    assert_eq!(column("held_out").len(), report.held_out.samples.len());
    assert!(median(column("ideal")) < 0.2 * median(column("held_out")));
    let (header, bins) = read_csv(&dir.path().join("memorisation_histogram.csv"));
    assert_eq!(header, ["bin_lo", "bin_hi", "ideal", "learned", "held_out"]);
    let ideal_total: f64 = bins.iter().map(|r| num(&r[2])).sum();
    assert_eq!(ideal_total as usize, report.ideal.samples.len());
}

#[test]
fn without_the_score_time_reversal_fails_and_the_gif_exports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(test_settings(ExploreTab::WhyScore, dir.path()));
    h.run_steps(1);
    click(&mut h, "Run both from the same noise");
    assert!(
        run_until(&mut h, WAIT, |h| h
            .state()
            .explore
            .why
            .naive_result()
            .is_some()),
        "naive vs reverse did not finish"
    );
    let data: Vec<Point> = h
        .state()
        .data
        .points
        .iter()
        .step_by(2)
        .take(2000)
        .copied()
        .collect();
    let c = h.state().explore.why.naive_result().unwrap().clone();
    let naive = sliced_w2(&c.naive.samples, &data);
    let sde = sliced_w2(&c.reverse_sde.samples, &data);
    println!("sw2 to the data: drift only {naive:.3}, reverse SDE {sde:.3}");
    assert!(
        naive > 5.0 * sde,
        "naive {naive:.3} vs reverse SDE {sde:.3}"
    );

    click(&mut h, "Export frames (GIF)");
    assert_wrote(h.state().explore.why.export_message());
    let (w, ht, frames) = gif_frames(&dir.path().join("why_score.gif"));
    assert_eq!((w, ht), (480, 240));
    assert_eq!(frames, c.naive.frames.len().min(c.reverse_sde.frames.len()));
    assert!(frames > 1);
}

#[test]
fn both_ablation_runs_learn_and_their_losses_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(test_settings(ExploreTab::Ablation, dir.path()));
    h.run_steps(1);
    h.state_mut().explore.ablation.set_steps(500);
    h.run_steps(1);
    click(&mut h, "Train both");
    assert!(
        run_until(&mut h, WAIT, |h| h.state().explore.ablation.finished()),
        "the ablation did not finish"
    );
    let runs = h.state().explore.ablation.losses();
    assert_eq!(runs.len(), 2);
    for (label, losses) in &runs {
        assert!(losses.len() >= 5, "{label}: {} chunks", losses.len());
        let first = losses[0][1];
        let last = losses[losses.len() - 1][1];
        println!("{label}: loss {first:.4} → {last:.4}");
        assert!(
            last < first,
            "{label}: loss did not fall ({first} → {last})"
        );
    }

    click(&mut h, "Export loss curves (CSV)");
    assert_wrote(h.state().explore.ablation.export_message());
    let (header, rows) = read_csv(&dir.path().join("ablation_losses.csv"));
    assert_eq!(header, ["run", "label", "step", "loss"]);
    for (k, (_, losses)) in runs.iter().enumerate() {
        let mine: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r[0] == k.to_string())
            .map(|r| (num(&r[r.len() - 2]), num(&r[r.len() - 1])))
            .collect();
        assert_eq!(mine.len(), losses.len());
        assert!((mine[0].1 - losses[0][1]).abs() < 1e-9 * losses[0][1].abs().max(1.0));
    }
}

#[test]
fn density_exports_the_forward_heatmap_as_png_and_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = harness(test_settings(ExploreTab::Density, dir.path()));
    h.state_mut().player.set_t(0.4);
    assert!(
        run_until(&mut h, WAIT, |h| h
            .state()
            .explore
            .density
            .forward()
            .is_some_and(|m| (m.t - 0.4).abs() < 1e-6)),
        "the forward density did not finish"
    );
    let map = h.state().explore.density.forward().unwrap().clone();
    click(&mut h, "Export heatmaps (PNG + CSV)");
    assert_wrote(h.state().explore.density.export_message());
    let (nx, ny) = (map.grid.nx as u32, map.grid.ny as u32);
    assert_eq!(
        png_size(&dir.path().join("density_forward.png")),
        (6 * nx, 6 * ny)
    );
    let (header, rows) = read_csv(&dir.path().join("density.csv"));
    assert_eq!(header, ["map", "t", "x", "y", "log_density"]);
    assert_eq!(rows.len(), (nx * ny) as usize);
    // The exported values are p_t: its mass over the grid is about one.
    let cell = map.grid.cell_size();
    let mass: f64 = rows.iter().map(|r| num(&r[4]).exp()).sum::<f64>() * (cell[0] * cell[1]) as f64;
    assert!((mass - 1.0).abs() < 0.05, "mass {mass}");
}

#[test]
fn the_canvas_exports_png_gif_and_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(ExploreTab::Quality, dir.path());
    settings.teach.explore = false;
    let mut h = harness(settings);
    h.run_steps(2);
    h.get_by_label("Export").click_accesskit();
    // The section opens over a few frames.
    h.run_steps(10);
    let outcome = |h: &Harness<'_, App>| h.state().export.message.clone();
    let wait_for = |h: &mut Harness<'_, App>, file: &str| {
        let done = |h: &Harness<'_, App>| {
            matches!(&h.state().export.message, Some(Ok(m)) if m.contains(file))
                || matches!(&h.state().export.message, Some(Err(_)))
        };
        assert!(
            run_until(h, WAIT, done),
            "no outcome for {file}: {:?}",
            h.state().export.message
        );
        match outcome(h) {
            Some(Ok(m)) => println!("{m}"),
            other => panic!("{file}: {other:?}"),
        }
    };
    click(&mut h, "Canvas PNG");
    wait_for(&mut h, "canvas.png");
    assert_eq!(png_size(&dir.path().join("canvas.png")), (900, 900));

    click(&mut h, "Animation GIF");
    wait_for(&mut h, "animation.gif");
    let (w, ht, frames) = gif_frames(&dir.path().join("animation.gif"));
    assert_eq!((w, ht, frames), (420, 420, 40));

    click(&mut h, "Samples CSV");
    wait_for(&mut h, "samples.csv");
    let (header, rows) = read_csv(&dir.path().join("samples.csv"));
    assert_eq!(header[..2], ["x", "y"]);
    assert_eq!(rows.len(), 600);
    assert!(
        rows.iter()
            .all(|r| num(&r[0]).is_finite() && num(&r[1]).is_finite())
    );
}
