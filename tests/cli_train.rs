//! `memdiff train`, `model info`, `export` through the binary, with tiny models (base 4, px 8):
//! outputs, a run killed mid-way and resumed gives the uninterrupted loss trace exactly, and
//! error lines.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{err, ok};

const TINY: &[&str] = &[
    "train",
    "--data",
    "gmm",
    "--components",
    "2",
    "--n",
    "40",
    "--px",
    "8",
    "--steps",
    "20",
    "--epochs",
    "3",
    "--batch",
    "8",
    "--base-channels",
    "4",
    "--seed",
    "7",
    "--ema",
    "0.9",
    "--checkpoint-every",
    "2",
];

fn tiny(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
    v.push("--out".into());
    v.push(out.to_str().unwrap().into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn losses(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn model_info_prints_the_papers_count() {
    let s = ok(&["model", "info", "--px", "8", "--base-channels", "64"]);
    assert!(s.contains("12,919,041"), "{s}");
    assert!(s.contains("92,066,304"), "{s}");
    let j = ok(&["model", "info", "--px", "16", "--json"]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["params"], 12_919_041);
    assert_eq!(v["macs_per_image"], 368_418_816u64);
    let e = err(&["model", "info", "--px", "12"]);
    assert!(e.contains("px = 12") && e.contains("multiple of 8"), "{e}");
}

#[test]
fn train_writes_metrics_checkpoint_recipe_and_run_record_then_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = tiny(&out, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = ok(&args);
    let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
    assert_eq!(v["steps"], 15); // 40 images / batch 8 = 5 steps x 3 epochs
    let rows = losses(&out);
    assert_eq!(rows[0], "step,epoch,loss");
    assert_eq!(rows.len(), 16);
    assert!(rows[15].starts_with("15,3,"));
    let ck = std::fs::read_to_string(out.join("checkpoint.toml")).unwrap();
    assert!(
        ck.contains("kind = \"gmm\"") && ck.contains("mean = 0.45"),
        "{ck}"
    );
    assert!(
        ck.contains("step = 15") && ck.contains("finished = true"),
        "{ck}"
    );
    assert!(ck.contains("ema = \"ema-00000015.bin\""), "{ck}");
    let run = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(run.contains("command = \"train\"") && run.contains("backend = \"flex\""));

    // A second train into the same folder refuses to clobber it.
    let e = err(&args);
    assert!(e.contains("--resume"), "{e}");

    // Export: PyTorch names and layouts in the safetensors header.
    let st = tmp.path().join("m.safetensors");
    ok(&[
        "export",
        "--checkpoint",
        out.to_str().unwrap(),
        "--out",
        st.to_str().unwrap(),
        "--ema",
    ]);
    let bytes = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let shape = |k: &str| -> Vec<u64> {
        header[k]["shape"]
            .as_array()
            .unwrap_or_else(|| panic!("no tensor {k} in {header}"))
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    // b = 4: sa1 works on 4b = 16 channels.
    assert_eq!(shape("inc.conv1.weight"), vec![4, 1, 3, 3]);
    assert_eq!(shape("inc.norm1.weight"), vec![4]);
    assert_eq!(shape("sa1.mha.in_proj_weight"), vec![48, 16]);
    assert_eq!(shape("sa1.mha.in_proj_bias"), vec![48]);
    assert_eq!(shape("sa1.mha.out_proj.weight"), vec![16, 16]);
    assert_eq!(shape("sa1.ff.0.weight"), vec![16]);
    assert_eq!(shape("sa3.ff.3.bias"), vec![8]);
    assert_eq!(shape("up1.conv_b.conv1.weight"), vec![16, 32, 3, 3]);
    assert_eq!(shape("outc.bias"), vec![1]);
    let tensors = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .count();
    assert_eq!(tensors, 116);
}

/// Runs the tiny training into `out`, slowed down, and kills it (SIGKILL) once it has
/// checkpointed step 6 (or 8).
fn kill_after_step_6(out: &Path, extra: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memdiff"))
        .args(tiny(out, extra))
        .env("MEMDIFF_TRAIN_STEP_DELAY_MS", "150")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let ck = std::fs::read_to_string(out.join("checkpoint.toml")).unwrap_or_default();
        if ck.contains("step = 6\n") || ck.contains("step = 8\n") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_and_resumed_run_has_the_uninterrupted_loss_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let args = tiny(&full, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);

    // The same run, slowed down and killed (SIGKILL) once it has checkpointed step 6.
    let cut = tmp.path().join("cut");
    kill_after_step_6(&cut, &[]);
    let done = losses(&cut).len() - 1;
    assert!(done < 15, "killed after {done} steps");

    let s = ok(&["train", "--out", cut.to_str().unwrap(), "--resume"]);
    let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
    assert!(v["resumed_from"] == 6 || v["resumed_from"] == 8, "{v}");
    assert_eq!(losses(&cut), losses(&full));
    for f in [
        "weights-00000015.bin",
        "ema-00000015.bin",
        "adam-00000015.bin",
    ] {
        assert_eq!(
            std::fs::read(cut.join(f)).unwrap(),
            std::fs::read(full.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn bad_input_gives_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[train]\nepochz = 3\n").unwrap();
    let e = err(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(e.contains("epochz") && e.contains("c.toml"), "{e}");
    let e = err(&[
        "train",
        "--px",
        "12",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert!(e.contains("multiple of 8"), "{e}");
    let e = err(&["train", "--device", "tpu"]);
    assert!(e.contains("unknown device"), "{e}");
    let e = err(&[
        "train",
        "--resume",
        "--out",
        tmp.path().join("none").to_str().unwrap(),
    ]);
    assert!(e.contains("no checkpoint"), "{e}");
    let e = err(&["train", "--data", "nope.npy"]);
    assert!(e.contains("nope.npy"), "{e}");
}

fn trajectory(dir: &Path) -> Vec<String> {
    // Every column but the wall time (the last).
    std::fs::read_to_string(dir.join("trajectory.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

const EVAL: &[&str] = &[
    "--eval-at",
    "2,5,9",
    "--eval-generate",
    "12",
    "--eval-original",
    "60",
    "--keep-snapshots",
];

#[test]
fn eval_at_writes_a_trajectory_that_a_killed_run_resumes_to_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let args = tiny(&plain, &[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let full = tmp.path().join("full");
    let args = tiny(&full, EVAL);
    let s = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
    assert!(
        v["trajectory"]
            .as_str()
            .unwrap()
            .ends_with("trajectory.csv"),
        "{v}"
    );
    // Measuring never changes the training: the same loss trace as without snapshots.
    assert_eq!(losses(&full), losses(&plain));
    let rows = trajectory(&full);
    assert!(
        rows[0].starts_with("train_step,n_train,n_generated,n_original,sampler,"),
        "{}",
        rows[0]
    );
    let steps: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    // 40 images in batches of 8 for 3 epochs: 15 steps, the last one always measured.
    assert_eq!(steps, ["2", "5", "9", "15"]);
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains(",40,12,60,ddpm/clipped-x0,none,")),
        "{rows:?}"
    );
    // The oracle's E_OG (column 12) is computed once: the same in every row.
    let oracle: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(11).unwrap())
        .collect();
    assert!(oracle.iter().all(|x| *x == oracle[0]), "{oracle:?}");
    // Every snapshot's weights are kept as a checkpoint folder eval can audit.
    for step in [2, 5, 9, 15] {
        let d = full.join(format!("snapshots/step-{step:08}"));
        assert!(
            d.join(format!("weights-{step:08}.bin")).exists(),
            "{}",
            d.display()
        );
    }
    let a = ok(&[
        "eval",
        "--checkpoint",
        full.join("snapshots/step-00000009").to_str().unwrap(),
        "--generate",
        "8",
        "--nn",
        "--json",
    ]);
    assert!(a.contains("\"checkpoint_step\":9,"), "{a}");

    // The same run killed (SIGKILL) after its checkpoint at step 6 or 8, then resumed.
    let cut = tmp.path().join("cut");
    kill_after_step_6(&cut, EVAL);
    let before = trajectory(&cut).len() - 1;
    assert!((2..4).contains(&before), "{before} rows at the kill");
    let e = err(&[
        "train",
        "--out",
        cut.to_str().unwrap(),
        "--resume",
        "--eval-at",
        "3",
    ]);
    assert!(
        e.contains("eval.toml") && e.contains("drop --eval-at"),
        "{e}"
    );
    ok(&["train", "--out", cut.to_str().unwrap(), "--resume"]);
    assert_eq!(trajectory(&cut), trajectory(&full));
    assert_eq!(losses(&cut), losses(&full));
    let w = "snapshots/step-00000009/weights-00000009.bin";
    assert_eq!(
        std::fs::read(cut.join(w)).unwrap(),
        std::fs::read(full.join(w)).unwrap()
    );
}

#[test]
fn bad_eval_schedules_give_one_error_line_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (extra, want)) in [
        (
            &["--eval-at", "9,5"][..],
            "eval_at: [9, 5] is not strictly increasing",
        ),
        (
            &["--eval-at", "0,5"][..],
            "eval_at: step 0 is before any training",
        ),
        (
            &["--eval-at", "40"][..],
            "eval_at: step 40 is beyond the budget of 15 optimizer steps",
        ),
        (&["--eval-at", "log:9..2:3"][..], "the range is reversed"),
        (
            &["--eval-at", "soon"][..],
            "--eval-at \"soon\" is not a schedule",
        ),
        (&["--eval-generate", "5"][..], "add --eval-at STEPS"),
        (
            &["--eval-at", "5", "--eval-generate", "1"][..],
            "eval.generated: 1 samples per snapshot",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("r{i}"));
        let args = tiny(&out, extra);
        let e = err(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(want), "{extra:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // A file all of whose images are trained on leaves none for O.
    let npy = tmp.path().join("t.npy");
    ok(&[
        "data",
        "gmm",
        "--n",
        "16",
        "--px",
        "8",
        "--out",
        npy.to_str().unwrap(),
    ]);
    let e = err(&[
        "train",
        "--data",
        npy.to_str().unwrap(),
        "--px",
        "8",
        "--steps",
        "10",
        "--epochs",
        "1",
        "--base-channels",
        "4",
        "--eval-at",
        "1",
        "--out",
        tmp.path().join("npy").to_str().unwrap(),
    ]);
    // Every image of the file is trained on: none is left for O.
    assert!(
        e.contains("t.npy has 0") && e.contains("train on fewer with --n"),
        "{e}"
    );
}
