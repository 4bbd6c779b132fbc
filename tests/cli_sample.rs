//! `memdiff sample`, `memdiff eval --checkpoint` and `memdiff bench sample` on a tiny checkpoint
//! trained here through the binary (base width 4, px 8, s = 10, a few optimizer steps).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{err, ok};

/// A tiny trained checkpoint shared by the tests of this file.
fn checkpoint() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let ck = tmp.path().join("ck");
        ok(&[
            "train",
            "--data",
            "gmm",
            "--components",
            "2",
            "--n",
            "24",
            "--px",
            "8",
            "--steps",
            "10",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--base-channels",
            "4",
            "--seed",
            "5",
            "--out",
            ck.to_str().unwrap(),
        ]);
        (tmp, ck)
    })
    .1
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

#[test]
fn sample_writes_npy_png_and_run_toml_deterministically() {
    let ck = checkpoint().to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let g1 = tmp.path().join("g1.npy");
    let g2 = tmp.path().join("g2.npy");
    let g3 = tmp.path().join("g3.npy");
    let png = tmp.path().join("g1.png");
    let out = ok(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "5",
        "--batch",
        "2",
        "--seed",
        "9",
        "--out",
        g1.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--png-cols",
        "5",
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["network_steps"], 10);
    assert_eq!(j["shape"], serde_json::json!([5, 1, 8, 8]));
    let (shape, a) = read_npy(&g1);
    assert_eq!(shape, vec![5, 1, 8, 8]);
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    // Not a constant image: sampling noise went through.
    assert!(a.iter().any(|&v| (v - a[0]).abs() > 1e-3));
    // PNG: 5 images of 8 x 8 at the default scale (64 px a side), 5 a row.
    let (w, h, px) = memdiff_data::png::read_gray_png(&png).unwrap();
    assert_eq!((w, h), (5 * 65 + 1, 66));
    assert_eq!(px.len(), (w * h) as usize);
    let rt = std::fs::read_to_string(tmp.path().join("g1.run.toml")).unwrap();
    assert!(
        rt.contains("command = \"sample\"") && rt.contains("seed = 9"),
        "{rt}"
    );
    // Same seed, same images; another batch size, the same images up to f32 round-off.
    ok(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "5",
        "--batch",
        "2",
        "--seed",
        "9",
        "--out",
        g2.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&g1).unwrap(), std::fs::read(&g2).unwrap());
    ok(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "5",
        "--batch",
        "5",
        "--seed",
        "9",
        "--out",
        g3.to_str().unwrap(),
    ]);
    let (_, c) = read_npy(&g3);
    let worst = a
        .iter()
        .zip(&c)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "batch 2 vs 5: {worst}");
    // Another seed, other images.
    ok(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "5",
        "--seed",
        "10",
        "--out",
        g2.to_str().unwrap(),
    ]);
    assert_ne!(std::fs::read(&g1).unwrap(), std::fs::read(&g2).unwrap());
}

#[test]
fn ddim_runs_k_steps_and_bad_options_fail_cleanly() {
    let ck = checkpoint().to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g.npy");
    let gs = g.to_str().unwrap();
    let out = ok(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "3",
        "--sampler",
        "ddim",
        "--sampling-steps",
        "4",
        "--spacing",
        "linspace",
        "--out",
        gs,
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["network_steps"], 4);
    std::fs::remove_file(&g).unwrap();

    let e = err(&[
        "sample",
        "--checkpoint",
        ck,
        "--n",
        "3",
        "--sampling-steps",
        "4",
        "--out",
        gs,
    ]);
    assert!(e.contains("--sampler ddim"), "{e}");
    let e = err(&[
        "sample",
        "--checkpoint",
        ck,
        "--sampler",
        "ddim",
        "--sampling-steps",
        "11",
        "--out",
        gs,
    ]);
    assert!(e.contains("between 1 and 10"), "{e}");
    let e = err(&[
        "sample",
        "--checkpoint",
        ck,
        "--sampler",
        "ddim",
        "--eta",
        "2",
        "--out",
        gs,
    ]);
    assert!(e.contains("[0, 1]"), "{e}");
    assert!(!g.exists(), "no output after a failed run");
    let missing = tmp.path().join("nope");
    let e = err(&[
        "sample",
        "--checkpoint",
        missing.to_str().unwrap(),
        "--out",
        gs,
    ]);
    assert!(e.contains("nope"), "{e}");
    let bad_out = tmp.path().join("no/such/dir/g.npy");
    let e = err(&[
        "sample",
        "--checkpoint",
        ck,
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn bench_sample_prints_figures() {
    let out = ok(&[
        "bench",
        "sample",
        "--px",
        "8",
        "--n",
        "2",
        "--steps",
        "3",
        "--base-channels",
        "4",
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["steps"], 3);
    let s = j["seconds"].as_f64().unwrap();
    assert!(s > 0.0 && s.is_finite());
    assert!((j["s_per_net_eval"].as_f64().unwrap() - s / 3.0).abs() < 1e-5);
}

#[test]
fn eval_checkpoint_audits_against_the_rebuilt_training_set() {
    let ck = checkpoint();
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--generate",
        "4",
        "--seed",
        "2",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["n_train"], 24, "{j}");
    assert_eq!(j["n_generated"], 4);
    assert_eq!(j["n_original"], 10_000);
    for key in [
        "e_tg",
        "e_og",
        "delta",
        "delta_unbiased",
        "nn_ratio_mean",
        "nn_d1_mean",
    ] {
        let v = j[key].as_f64().unwrap_or(f64::NAN);
        assert!(v.is_finite(), "{key} = {}", j[key]);
    }
    assert!(
        (j["delta"].as_f64().unwrap()
            - (j["e_tg"].as_f64().unwrap() - j["e_og"].as_f64().unwrap()))
        .abs()
            < 1e-9
    );
    assert_eq!(j["pixels_used"], 64);
    let rows = j["generated"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| {
        let (a, b) = (
            r["nearest_train"].as_u64().unwrap(),
            r["second_train"].as_u64().unwrap(),
        );
        a < 24 && b < 24 && a != b
    }));
    // The picture: 4 panels of generated | nearest | second nearest (64 px each) in one row,
    // widened to at least 800 px.
    let png = ck.join("audit.png");
    let (w, h, _) = memdiff_data::png::read_gray_png(&png).unwrap();
    assert!(w >= 800 && h < w, "{w} x {h}");
    assert!(ck.join("audit.run.toml").exists());
    // An original set of the wrong size is refused with a clear line.
    let bad = tmp.path().join("o.npy");
    let set = memdiff_data::ImageSet::new(3, 1, 4, 4, vec![0.5; 48]);
    memdiff_data::npy::write_npy(&bad, &set).unwrap();
    let e = err(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--generate",
        "2",
        "--original",
        bad.to_str().unwrap(),
    ]);
    assert!(e.contains("original"), "{e}");
    // The sampler options reach the audit: 5 DDIM steps of the 10 trained.
    let out = ok(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--generate",
        "2",
        "--sampler",
        "ddim",
        "--sampling-steps",
        "5",
        "--eta",
        "0.5",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["sampler"], "ddim", "{j}");
    assert_eq!(j["network_steps"], 5, "{j}");
    // ... and are refused without a checkpoint (a usage error: clap's exit status 2), and when
    // out of range.
    let out = common::memdiff(&[
        "eval",
        "--original",
        "o.npy",
        "--train",
        "t.npy",
        "--generated",
        "g.npy",
        "--sampler",
        "ddim",
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("--checkpoint"), "{e}");
    let e = err(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--sampler",
        "ddim",
        "--eta",
        "2",
    ]);
    assert!(e.contains("eta"), "{e}");
}
