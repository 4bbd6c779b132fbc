//! `memdiff sweep` and `memdiff report` end to end, through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_memdiff");

fn memdiff(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run memdiff")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "memdiff failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A tiny grid with a tiny network: base width 4, 1 epoch, s = 3.
const TINY: &str = r#"
name = "test"
seed = 5
px = 8
components = [1]
n = [4, 8]
steps = [3]
sims = 2
n_original = 200
generated = 4
save_images = 2

[train]
base_channels = 4
epochs = 1
batch = 8

[sample]
batch = 4
"#;

/// results.csv without the wall-clock column (train_seconds, column 24).
fn table(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("results.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(23);
            f.join(",")
        })
        .collect()
}

/// Starts `sweep --config cfg --out out`, kills it once its first unit file appears (or after
/// 120 s); returns its exit status and the number of unit files then.
fn kill_after_first_unit(cfg: &str, out: &Path, cwd: &Path) -> (std::process::ExitStatus, usize) {
    kill_after_first_unit_with(cfg, out, cwd, &[])
}

fn kill_after_first_unit_with(
    cfg: &str,
    out: &Path,
    cwd: &Path,
    extra: &[&str],
) -> (std::process::ExitStatus, usize) {
    let mut child = Command::new(BIN)
        .args(["sweep", "--config", cfg, "--out", out.to_str().unwrap()])
        .args(extra)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let sims = out.join("sims");
    let count = || {
        std::fs::read_dir(&sims)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    while count() < 1 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    (status, count())
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.toml.in");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn tiny_model_sweep_end_to_end_then_kill_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), TINY);
    let cfg = cfg.to_str().unwrap();
    let whole = tmp.path().join("whole");
    let out = ok(&memdiff(
        &["sweep", "--config", cfg, "--out", whole.to_str().unwrap()],
        tmp.path(),
    ));
    // 2 n x 2 sims units, 4 generators each
    let t = table(&whole);
    assert_eq!(t.len(), 1 + 16, "{t:?}");
    assert!(out.contains("| 1 | 8 | 3 | 1 | model |"), "{out}");
    for f in [
        "report/summary.csv",
        "report/summary.md",
        "report/p_delta_vs_n_gmm_px8_c1.svg",
        "report/p_delta_vs_n_gmm_px8_c1.png",
        "report/e_og_hat_vs_n_gmm_px8_c1.png",
        "report/samples_c1_s3.png",
        "run.toml",
        "sweep.toml",
        "samples/c1-n8-s3.npy",
    ] {
        assert!(whole.join(f).is_file(), "missing {f}");
    }
    let model_rows: Vec<&String> = t.iter().filter(|l| l.contains(",model,")).collect();
    assert_eq!(model_rows.len(), 4);

    // Kill a second run after its first unit file appears, resume, compare.
    let resumed = tmp.path().join("resumed");
    let (status, finished_before) = kill_after_first_unit(cfg, &resumed, tmp.path());
    assert!(
        !status.success() || finished_before == 4,
        "the sweep should have been killed"
    );
    ok(&memdiff(
        &["sweep", "--config", cfg, "--out", resumed.to_str().unwrap()],
        tmp.path(),
    ));
    assert_eq!(table(&resumed), t);

    // Two units at once: the same table.
    let jobs = tmp.path().join("jobs2");
    let out = ok(&memdiff(
        &[
            "sweep",
            "--config",
            cfg,
            "--jobs",
            "2",
            "--no-report",
            "--out",
            jobs.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    assert!(!out.contains("| C |"), "--no-report");
    assert_eq!(table(&jobs), t);
    // Four units at once: each n's two simulations train as one ensemble of two networks (their
    // batches stacked, one computation per step), the two ensembles side by side: the same table.
    let jobs4 = tmp.path().join("jobs4");
    ok(&memdiff(
        &[
            "sweep",
            "--config",
            cfg,
            "--jobs",
            "4",
            "--no-report",
            "--out",
            jobs4.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    assert_eq!(table(&jobs4), t);
    // Killed while an ensemble trains (two lanes, one ensemble of two networks each: the first
    // unit file appears when one lane's ensemble is done, the other is mid-training), resumed
    // with another K: the same table.
    let killed = tmp.path().join("killed-batch");
    let (status, finished_before) =
        kill_after_first_unit_with(cfg, &killed, tmp.path(), &["--jobs", "2", "--no-report"]);
    assert!(
        !status.success() || finished_before == 4,
        "the sweep should have been killed"
    );
    ok(&memdiff(
        &[
            "sweep",
            "--config",
            cfg,
            "--jobs",
            "3",
            "--no-report",
            "--out",
            killed.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    assert_eq!(table(&killed), t);
    let zero = memdiff(&["sweep", "--config", cfg, "--jobs", "0"], tmp.path());
    assert!(!zero.status.success());
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("--jobs"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );

    // One row recomputed alone.
    let one = ok(&memdiff(
        &["sweep", "--config", cfg, "--only", "c1-n8-s3-sim1"],
        tmp.path(),
    ));
    let want: Vec<&String> = t
        .iter()
        .filter(|l| l.starts_with("gmm,8,64,1,8,3,") && l.split(',').nth(8) == Some("1"))
        .collect();
    let got: Vec<String> = one
        .lines()
        .skip(1)
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(23);
            f.join(",")
        })
        .collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
}

#[test]
fn shards_merged_equal_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        &TINY
            .replace("sims = 2", "sims = 5")
            .replace("n = [4, 8]", "n = [4, 8, 16]"),
    );
    let cfg = cfg.to_str().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    ok(&memdiff(
        &["sweep", "--config", cfg, "--no-model", "--out", &p("all")],
        tmp.path(),
    ));
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = ok(&memdiff(
            &[
                "sweep",
                "--config",
                cfg,
                "--no-model",
                "--shard",
                &shard,
                "--out",
                &p(&format!("s{i}")),
            ],
            tmp.path(),
        ));
        assert!(!out.contains("| C |"), "a shard prints no report");
    }
    ok(&memdiff(
        &[
            "sweep",
            "merge",
            &p("s0"),
            &p("s1"),
            &p("s2"),
            "--out",
            &p("merged"),
        ],
        tmp.path(),
    ));
    let a = std::fs::read(tmp.path().join("all/results.csv")).unwrap();
    let b = std::fs::read(tmp.path().join("merged/results.csv")).unwrap();
    assert_eq!(a, b);
    // 3 n x 5 sims x 3 reference generators, s = 0
    assert_eq!(String::from_utf8(a).unwrap().lines().count(), 1 + 45);
    assert!(tmp.path().join("merged/report/summary.csv").is_file());

    // A shard of another config cannot be merged in.
    let other = write_config(
        tmp.path(),
        &TINY.replace("n_original = 200", "n_original = 300"),
    );
    ok(&memdiff(
        &[
            "sweep",
            "--config",
            other.to_str().unwrap(),
            "--no-model",
            "--out",
            &p("other"),
        ],
        tmp.path(),
    ));
    let o = memdiff(
        &["sweep", "merge", &p("s0"), &p("other"), "--out", &p("bad")],
        tmp.path(),
    );
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.starts_with("error: ") && e.contains("n_original"), "{e}");
}

#[test]
fn bad_config_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "px = 8\nsimz = 3\n");
    let o = memdiff(
        &["sweep", "--config", cfg.to_str().unwrap(), "--out", "x"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("simz") && e.contains("line 2"), "{e}");
    assert!(!tmp.path().join("x").exists());
    let cfg = write_config(tmp.path(), "px = 12\n");
    let o = memdiff(&["sweep", "--config", cfg.to_str().unwrap()], tmp.path());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("px") && e.contains("multiple of 8"), "{e}");
}

/// The report of a hand-made results table, every number checked against values computed
/// independently (python3: Wilson score interval, Mann–Whitney normal approximation with tie
/// and continuity corrections, η = -ln(1 - ratio)).
#[test]
fn report_numbers_from_the_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results_small.csv");
    std::fs::copy(&src, tmp.path().join("results.csv")).unwrap();
    let md = ok(&memdiff(
        &["report", tmp.path().to_str().unwrap()],
        tmp.path(),
    ));
    assert!(
        md.contains("| 1 | 10 | 50 | – | model | 4 | 0.25 [0.05, 0.70] | 0.50 [0.15, 0.85] |"),
        "{md}"
    );
    assert!(md.contains("indistinguishable (p=0.112)"), "{md}");
    // No field of summary.csv contains a comma.
    let text = std::fs::read_to_string(tmp.path().join("report/summary.csv")).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
    let hdr = lines.next().unwrap();
    let rows: Vec<Vec<String>> = lines.collect();
    let col = |name: &str| hdr.iter().position(|h| h == name).unwrap();
    let get = |n: &str, g: &str| {
        rows.iter()
            .find(|r| r[col("n")] == n && r[col("generator")] == g)
            .unwrap()
            .clone()
    };
    let f = |r: &Vec<String>, c: &str| r[col(c)].parse::<f64>().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let m10 = get("10", "model");
    assert!(close(f(&m10, "p_delta_pos"), 0.25));
    assert!(close(f(&m10, "p_delta_pos_lo"), 0.045_587_260_809_700_55));
    assert!(close(f(&m10, "p_delta_pos_hi"), 0.699_358_157_417_598_1));
    assert!(close(f(&m10, "p_delta_u_pos_lo"), 0.150_038_989_152_149_47));
    assert!((f(&m10, "vs_oracle_p") - 0.112_351_197_690_463_94).abs() < 1e-6);
    assert!(close(f(&m10, "vs_oracle_auc"), 0.125));
    assert!(close(f(&m10, "mean_delta"), -0.1375));
    let m100 = get("100", "model");
    assert!(close(f(&m100, "p_delta_pos_lo"), 0.300_641_842_582_401_84));
    assert!(close(f(&m100, "e_og_hat"), 0.5));
    assert!((f(&m100, "vs_oracle_p") - 0.193_930_852_282_410_7).abs() < 1e-6);
    assert!(close(f(&m100, "nn_frac_memorized"), 0.25));
    assert!(close(f(&get("100", "oracle"), "e_og_hat"), 0.8));
    let eta = std::fs::read_to_string(tmp.path().join("report/eta.csv")).unwrap();
    let eta_of = |g: &str| -> f64 {
        let line = eta.lines().find(|l| l.contains(&format!(",{g},"))).unwrap();
        line.rsplit(',').next().unwrap().parse().unwrap()
    };
    assert!(close(eta_of("model"), std::f64::consts::LN_2));
    assert!(close(eta_of("oracle"), 5f64.ln()));
    assert!(tmp
        .path()
        .join("report/p_delta_vs_n_gmm_px8_c1.png")
        .is_file());
}

/// TINY trained for a budget of optimizer steps, measured at 3 snapshots.
fn tiny_snapshots() -> String {
    TINY.replace("epochs = 1\n", "").replace(
        "save_images = 2",
        "save_images = 2\ntrain_steps = 6\neval_at = [2, 4]",
    )
}

#[test]
fn snapshot_sweep_kill_resume_and_phase_report() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), &tiny_snapshots());
    let cfg = cfg.to_str().unwrap();
    let whole = tmp.path().join("whole");
    let out = ok(&memdiff(
        &["sweep", "--config", cfg, "--out", whole.to_str().unwrap()],
        tmp.path(),
    ));
    let t = table(&whole);
    // 4 units x (3 model snapshots + oracle, copy, copy+noise).
    assert_eq!(t.len(), 1 + 24, "{t:?}");
    let hdr: Vec<&str> = t[0].split(',').collect();
    let col = |name: &str| hdr.iter().position(|h| *h == name).unwrap();
    let model: Vec<Vec<&str>> = t
        .iter()
        .filter(|l| l.contains(",model,"))
        .map(|l| l.split(',').collect())
        .collect();
    let steps: Vec<&str> = model.iter().take(3).map(|r| r[col("train_step")]).collect();
    assert_eq!(steps, vec!["2", "4", "6"]);
    assert!(model.iter().all(|r| r[col("sampler")] == "ddpm/clipped-x0"));
    assert!(out.contains("Memorization along training"), "{out}");
    for f in [
        "report/trajectory.csv",
        "report/onsets.csv",
        "report/phase_gmm_px8_c1_s3.png",
        "report/f_mem_vs_step_gmm_px8_c1_s3.svg",
    ] {
        assert!(whole.join(f).is_file(), "missing {f}");
    }

    // A real kill after the first finished unit, then the same command: the same rows.
    let resumed = tmp.path().join("resumed");
    kill_after_first_unit(cfg, &resumed, tmp.path());
    ok(&memdiff(
        &["sweep", "--config", cfg, "--out", resumed.to_str().unwrap()],
        tmp.path(),
    ));
    assert_eq!(table(&resumed), t);
}

#[test]
fn loss_probe_budgets_per_n_and_sgd_leave_training_unchanged() {
    // Budgets 2·n (8 and 16 steps) with 3 log-spaced snapshots each, SGD with momentum; the
    // same sweep with the loss probe on must give the same rows apart from the probe columns.
    let tmp = tempfile::tempdir().unwrap();
    let base = TINY
        .replace(
            "epochs = 1\n",
            "optimizer = \"sgd\"\nlr = 0.01\nmomentum = 0.9\n",
        )
        .replace("batch = 8\n", "batch = 2\n")
        .replace(
            "save_images = 2",
            "save_images = 2\ntrain_steps = \"2*n\"\neval_at = \"log:2..end:3\"",
        );
    let run = |name: &str, text: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = write_config(&dir, text);
        let out = dir.join("out");
        ok(&memdiff(
            &[
                "sweep",
                "--config",
                cfg.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            tmp.path(),
        ));
        table(&out)
    };
    let off = run("off", &base);
    let on = run(
        "on",
        &base.replace("save_images = 2", "save_images = 2\nloss_probe = 16"),
    );
    let hdr: Vec<&str> = off[0].split(',').collect();
    let col = |name: &str| hdr.iter().position(|h| *h == name).unwrap();
    let probe0 = col("loss_train_a98");
    assert_eq!(off.len(), on.len());
    let model = |t: &[String]| -> Vec<Vec<String>> {
        t.iter()
            .filter(|l| l.contains(",model,"))
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (model(&off), model(&on));
    // n = 4: log 2..8 → 2, 4, 8; n = 8: 2..16 → 2, 6, 16 (√32 = 5.66 rounds to 6).
    let steps: Vec<(&str, &str)> = a
        .iter()
        .map(|r| (r[col("n")].as_str(), r[col("train_step")].as_str()))
        .collect();
    assert_eq!(
        &steps[..6],
        &[
            ("4", "2"),
            ("4", "4"),
            ("4", "8"),
            ("4", "2"),
            ("4", "4"),
            ("4", "8")
        ]
    );
    assert!(steps.contains(&("8", "6")) && steps.contains(&("8", "16")));
    for (x, y) in a.iter().zip(&b) {
        // Training, sampling and every measure are the same with the probe on.
        assert_eq!(x[..probe0], y[..probe0]);
        assert!(x[probe0..].iter().all(|v| v == "NaN"), "{x:?}");
        let v: Vec<f64> = y[probe0..].iter().map(|v| v.parse().unwrap()).collect();
        assert!(v.iter().all(|v| v.is_finite() && *v > 0.0), "{y:?}");
        // A fixed batch of 2, below every n.
        assert_eq!(x[col("train_batch")], "2");
    }
    // Killed after its first unit and run again: the same rows.
    let cfg = tmp.path().join("on/sweep.toml.in");
    let resumed = tmp.path().join("on/resumed");
    kill_after_first_unit(cfg.to_str().unwrap(), &resumed, tmp.path());
    ok(&memdiff(
        &[
            "sweep",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            resumed.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    assert_eq!(table(&resumed), on);
    // Bad values of the protocol's keys: one line naming the key.
    for (from, to, key) in [
        ("momentum = 0.9", "momentum = 1.5", "momentum"),
        ("\"2*n\"", "\"2*m\"", "train_steps"),
        ("batch = 2\n", "batch = 0\n", "batch"),
        ("loss_probe = 16", "loss_probe = 0", "loss_probe"),
    ] {
        let text = std::fs::read_to_string(&cfg).unwrap().replace(from, to);
        let bad = write_config(&tmp.path().join("off"), &text);
        let o = memdiff(
            &["sweep", "--config", bad.to_str().unwrap(), "--out", "bad"],
            tmp.path(),
        );
        assert_eq!(o.status.code(), Some(1), "{key}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(key) && e.lines().count() == 1, "{key}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // The onsets table has the onset and the loss-gap columns.
    let onsets = std::fs::read_to_string(tmp.path().join("on/out/report/onsets.csv")).unwrap();
    let h = onsets.lines().next().unwrap();
    assert!(
        h.contains("tau_onset") && h.contains("loss_gap_onset"),
        "{h}"
    );
    assert!(tmp
        .path()
        .join("on/out/report/loss_probe_n4_gmm_px8_c1_s3.svg")
        .is_file());
}

#[test]
fn bad_snapshot_schedules_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (eval_at, needle) in [
        ("[]", "empty"),
        ("[4, 2]", "not strictly increasing"),
        ("[0, 2]", "step 0"),
        ("[2, 60]", "beyond the budget"),
    ] {
        let cfg = write_config(
            tmp.path(),
            &tiny_snapshots().replace("eval_at = [2, 4]", &format!("eval_at = {eval_at}")),
        );
        let o = memdiff(
            &["sweep", "--config", cfg.to_str().unwrap(), "--out", "x"],
            tmp.path(),
        );
        assert_eq!(o.status.code(), Some(1));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("eval_at") && e.contains(needle) && e.lines().count() == 1,
            "{eval_at}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn pair_sweep_kill_resume_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny_snapshots().replace(
        "save_images = 2",
        "save_images = 2\npair = true\ngenerators = [\"model\", \"copy\"]",
    );
    let cfg = write_config(tmp.path(), &text);
    let cfg = cfg.to_str().unwrap();
    let whole = tmp.path().join("whole");
    let out = ok(&memdiff(
        &["sweep", "--config", cfg, "--out", whole.to_str().unwrap()],
        tmp.path(),
    ));
    let pairs = std::fs::read_to_string(whole.join("pairs.csv")).unwrap();
    let lines: Vec<&str> = pairs.lines().collect();
    // 4 units x 3 snapshots.
    assert_eq!(lines.len(), 1 + 12, "{pairs}");
    let hdr: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| hdr.iter().position(|h| *h == name).unwrap();
    let t = table(&whole);
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let x = |name: &str| f[col(name)].parse::<f64>().unwrap();
        for k in [
            "dist",
            "similarity",
            "floor_dist",
            "floor_similarity",
            "copy_dist",
            "copy_similarity",
        ] {
            assert!(x(k).is_finite(), "{k} in {l}");
        }
        assert!(
            x("dist_lo") <= x("dist") && x("dist") <= x("dist_hi"),
            "{l}"
        );
        assert!(x("similarity_lo") <= x("similarity") && x("similarity") <= x("similarity_hi"));
        assert!(x("similarity").abs() <= 1.0 && x("copy_dist") >= 0.0 && x("floor_dist") > 0.0);
        assert_ne!(f[col("seed")], f[col("seed_pair")]);
        assert_eq!(f[col("n_generated")], "4");
        // The unit's model rows in results.csv carry the same T seed.
        assert!(t
            .iter()
            .any(|r| r.contains(&format!(",{},", f[col("seed")]))));
    }
    assert!(out.contains("## Two training sets"), "{out}");
    for f in [
        "report/pairs_summary.csv",
        "report/pair_vs_n_gmm_px8_c1_s3.png",
        "report/pair_vs_step_gmm_px8_c1_s3.svg",
    ] {
        assert!(whole.join(f).is_file(), "missing {f}");
    }
    let summary = std::fs::read_to_string(whole.join("report/summary.md")).unwrap();
    assert!(
        summary.contains("| gmm | 8 | 1 | 3 | 8 | 6 | 2 |"),
        "{summary}"
    );

    // A real kill after the first finished unit, then the same command: the same pair rows.
    let resumed = tmp.path().join("resumed");
    kill_after_first_unit(cfg, &resumed, tmp.path());
    ok(&memdiff(
        &["sweep", "--config", cfg, "--out", resumed.to_str().unwrap()],
        tmp.path(),
    ));
    assert_eq!(
        std::fs::read_to_string(resumed.join("pairs.csv")).unwrap(),
        pairs
    );
    assert_eq!(table(&resumed), t);
}
