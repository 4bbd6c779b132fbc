//! `memdiff dae`: the closed forms against numbers written out here, a small run's files and
//! JSON, and one-line errors for bad settings.

use serde_json::Value;
use std::process::Command;

fn memdiff(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memdiff"))
        .args(args)
        .output()
        .expect("run memdiff");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// N = 2, ODE, optimal skips: c*(0) = 0, c*(1/2) = (m/2)/(m/4 + 1/4) = 2m/(m+1); the first step
/// multiplies x by 1 + (1/2)(0 − 1)/1 = 1/2, the last returns c x: v = (c*(1/2)/2)².
#[test]
fn closed_form_matches_the_recursion_written_out() {
    let (code, out, err) = memdiff(&[
        "dae",
        "closed-form",
        "--m",
        "0.5",
        "--steps",
        "2",
        "--method",
        "ode",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let c1 = 2.0 * 0.5 / 1.5;
    assert!((v["skips"][1].as_f64().unwrap() - c1).abs() < 1e-12);
    let want = (c1 / 2.0).powi(2);
    assert!(
        (v["generated_variance"].as_f64().unwrap() - want).abs() < 1e-12,
        "{v}"
    );
}

#[test]
fn small_run_writes_its_files_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "d = 40\n[model]\nk = 2\nactivation = \"tanh\"\n[train]\ntimes = [0.5, 1]\n[sampling]\nsteps = 4\nsamples = 200\n",
    )
    .unwrap();
    let out = dir.path().join("run");
    let (code, stdout, err) = memdiff(&[
        "dae",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["d"], 40);
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 2);
    for f in [
        "summary.json",
        "snapshots.csv",
        "directions.csv",
        "skips.csv",
        "modes.csv",
        "projections.csv",
        "run.toml",
        "density_g0.png",
        "variance_ratio.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let skips = std::fs::read_to_string(out.join("skips.csv")).unwrap();
    assert_eq!(skips.lines().count(), 1 + 2 * 4);
}

#[test]
fn bad_settings_give_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[train]\nlr = 0.3\nstepz = 4\n").unwrap();
    let out = dir.path().join("run");
    let (code, _, err) = memdiff(&[
        "dae",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("stepz") && err.contains("c.toml"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    std::fs::write(&cfg, "[train]\ntimes = [2, 1]\n").unwrap();
    let (code, _, err) = memdiff(&[
        "dae",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("train.times") && err.contains("increasing"),
        "{err}"
    );
    let (code, _, err) = memdiff(&["dae", "closed-form", "--m", "-1"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: --m"), "{err}");
}
