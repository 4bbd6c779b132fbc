//! `memdiff eval --checkpoint A --pair-with B`: the two-training-sets test on two tiny
//! checkpoints trained here through the binary (base width 4, px 8, s = 10, one epoch).

use std::path::{Path, PathBuf};

mod common;
use common::{err, memdiff, ok};

fn train(dir: &Path, name: &str, data_seed: &str) -> PathBuf {
    let ck = dir.join(name);
    ok(&[
        "train",
        "--data",
        "gmm",
        "--n",
        "16",
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
        "--data-seed",
        data_seed,
        "--out",
        ck.to_str().unwrap(),
    ]);
    ck
}

fn pair(a: &Path, b: &Path) -> serde_json::Value {
    let out = ok(&[
        "eval",
        "--checkpoint",
        a.to_str().unwrap(),
        "--pair-with",
        b.to_str().unwrap(),
        "--generate",
        "6",
        "--seed",
        "3",
        "--json",
    ]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn pair_with_itself_is_one_and_two_checkpoints_are_finite() {
    let tmp = tempfile::tempdir().unwrap();
    let a = train(tmp.path(), "a", "101");
    let b = train(tmp.path(), "b", "202");
    // One checkpoint against itself: the same images, similarity 1 and distance 0 exactly.
    let j = pair(&a, &a);
    assert_eq!(j["paired"]["similarity"], 1.0, "{j}");
    assert_eq!(j["paired"]["similarity_lo"], 1.0);
    assert_eq!(j["paired"]["dist"], 0.0);
    assert_eq!(j["n_generated"], 6);
    assert_eq!(j["n_original"], 10_000);
    // Two checkpoints on independent sets: finite numbers, the interval around the mean.
    let j = pair(&a, &b);
    let x = |k: &str, f: &str| j[k][f].as_f64().unwrap();
    for (k, f) in [
        ("paired", "dist"),
        ("paired", "similarity"),
        ("floor", "dist"),
        ("floor", "similarity"),
        ("copy", "dist"),
        ("copy", "similarity"),
    ] {
        assert!(x(k, f).is_finite(), "{k}.{f}: {j}");
    }
    assert!(x("paired", "dist") > 0.0);
    assert!(x("paired", "similarity_lo") <= x("paired", "similarity"));
    assert_eq!(j["floor"]["m"], 256 * 255);
    assert_eq!(j["copy"]["m"], 12);
    // The text form says the same.
    let text = ok(&[
        "eval",
        "--checkpoint",
        a.to_str().unwrap(),
        "--pair-with",
        a.to_str().unwrap(),
        "--generate",
        "2",
    ]);
    assert!(
        text.contains(
            "paired (A_i, B_i)             0.0000 [0.0000, 0.0000]   1.0000 [1.0000, 1.0000]"
        ),
        "{text}"
    );
    // --pair-with needs --checkpoint; data flags are refused.
    let o = memdiff(&["eval", "--pair-with", a.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--checkpoint"), "{e}");
    let e = err(&[
        "eval",
        "--checkpoint",
        a.to_str().unwrap(),
        "--pair-with",
        b.to_str().unwrap(),
        "--generator",
        "copy",
    ]);
    assert!(
        e.contains("drop --train / --generated / --generator"),
        "{e}"
    );
}
