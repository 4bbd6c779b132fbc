//! `memdiff eval` and `memdiff eval summarize` end to end: values against independently computed
//! goldens, reference generators, quantised inputs, errors.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use memdiff_data::{npy, ImageSet};
use serde_json::Value;

fn memdiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memdiff"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running memdiff")
}

fn ok_json(args: &[&str]) -> Value {
    let out = memdiff(args);
    assert!(
        out.status.success(),
        "memdiff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn err_line(args: &[&str]) -> String {
    let out = memdiff(args);
    assert_eq!(out.status.code(), Some(1), "memdiff {args:?} should fail");
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {e}");
    assert!(!e.contains("panicked"), "{e}");
    lines[0].to_string()
}

/// The fixture values: `((i 7919 + j 104729 + set 15485863) mod 100003) / 100003` as f32,
/// pixel 3 of O constant 0.5. The same formula in numpy wrote the files the goldens below were
/// computed from.
fn fixture(set_id: u64, n: usize, const_pixel: bool) -> ImageSet {
    let mut data = Vec::with_capacity(n * 4);
    for i in 0..n as u64 {
        for j in 0..4u64 {
            let v = ((i * 7919 + j * 104_729 + set_id * 15_485_863) % 100_003) as f64 / 100_003.0;
            data.push(if const_pixel && j == 3 { 0.5 } else { v as f32 });
        }
    }
    ImageSet::new(n, 1, 2, 2, data)
}

fn write(dir: &Path, name: &str, set: &ImageSet) -> String {
    let p = dir.join(name);
    npy::write_npy(&p, set).unwrap();
    p.to_string_lossy().into_owned()
}

fn files(dir: &Path) -> (String, String, String) {
    (
        write(dir, "O.npy", &fixture(1, 60, true)),
        write(dir, "T.npy", &fixture(2, 12, false)),
        write(dir, "G.npy", &fixture(3, 5, false)),
    )
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn json_matches_the_pytorch_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (o, t, g) = files(dir.path());
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
    ]);
    // Goldens: ../shared/bench/torch_ref.py kde on the same three files (numpy 2.4.6, brute
    // force float64): {"e_tg": 1.4335177401664252, "e_og": 1.633362920490237,
    // "delta": -0.1998451803238117, "pixels_used": 3, "pixels_left_out": 1}. delta_unbiased:
    // numpy double loop of docs/METHOD.md §4b (U-statistics without the diagonal) on the same files.
    assert!(rel(f(&v, "e_tg"), 1.433_517_740_166_425_2) < 1e-9, "{v}");
    assert!(rel(f(&v, "e_og"), 1.633_362_920_490_237) < 1e-9, "{v}");
    assert!(rel(f(&v, "delta"), -0.199_845_180_323_811_7) < 1e-9, "{v}");
    assert!(
        rel(f(&v, "delta_unbiased"), -0.194_601_944_293_184_11) < 1e-9,
        "{v}"
    );
    assert_eq!(v["pixels_used"], 3);
    assert_eq!(v["pixels_skipped"], 1);
    assert_eq!(v["n_original"], 60);
    assert_eq!(v["n_train"], 12);
    assert_eq!(v["n_generated"], 5);
    assert_eq!(v["bandwidth"], "std-over-n");
    assert_eq!(v["scale"], "l2");
    assert_eq!(v["dequantized"], "none");
    assert_eq!(v["generator"], "file");
    // torch_ref.py kde --paper-scale: e_tg 3.593296099686297, e_og 4.094233679234694.
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
        "--paper-scale",
        "--check-quadrature",
    ]);
    assert!(rel(f(&v, "e_tg"), 3.593_296_099_686_297) < 1e-9, "{v}");
    assert!(rel(f(&v, "e_og"), 4.094_233_679_234_694) < 1e-9, "{v}");
    assert!(f(&v, "quadrature_max_rel_diff") < 1e-9, "{v}");
    // The table names the same numbers.
    let out = memdiff(&["eval", "--original", &o, "--train", &t, "--generated", &g]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("e_tg") && text.contains("1.4335177402e0"),
        "{text}"
    );
}

#[test]
fn reference_generators_and_nn() {
    let dir = tempfile::tempdir().unwrap();
    let (o, t, _) = files(dir.path());
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generator",
        "copy",
        "--g",
        "4",
        "--nn",
        "--json",
        "--seed",
        "3",
    ]);
    assert_eq!(v["generator"], "copy");
    assert_eq!(v["n_generated"], 4);
    assert_eq!(f(&v, "nn_frac_memorized"), 1.0);
    for x in v["nn"].as_array().unwrap() {
        assert_eq!(x["d1"].as_f64().unwrap(), 0.0);
    }
    assert!(f(&v, "delta_unbiased") < 0.0 && f(&v, "delta") < 0.0, "{v}");
    // Oracle from files: G is held out of O, so O loses g rows.
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generator",
        "oracle",
        "--g",
        "5",
        "--json",
    ]);
    assert_eq!(v["n_original"], 55);
    assert_eq!(v["n_generated"], 5);
    let e = err_line(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generator",
        "cpy",
    ]);
    assert!(e.contains("copy+noise:SIGMA"), "{e}");
}

#[test]
fn pixel_count_mismatch_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (o, t, _) = files(dir.path());
    let g9 = write(
        dir.path(),
        "G9.npy",
        &ImageSet::new(2, 1, 1, 9, vec![0.25; 18]),
    );
    let e = err_line(&["eval", "--original", &o, "--train", &t, "--generated", &g9]);
    assert!(
        e.contains("G9.npy") && e.contains("9 pixels") && e.contains("same pixel count"),
        "{e}"
    );
    let e = err_line(&[
        "eval",
        "--original",
        &o,
        "--train",
        "/nonexistent/T.npy",
        "--generated",
        &g9,
    ]);
    assert!(e.contains("/nonexistent/T.npy"), "{e}");
    let e = err_line(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &o,
        "--bandwidth",
        "scott",
    ]);
    assert!(e.contains("--bandwidth") && e.contains("silverman"), "{e}");
}

#[test]
fn quantised_inputs_are_dequantised_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let q = |set: u64, n: usize| {
        let s = fixture(set, n, false);
        let data = s
            .data
            .iter()
            .map(|v| (v * 8.0).floor() * 32.0 / 255.0)
            .collect();
        ImageSet::new(n, 1, 2, 2, data)
    };
    let mut oq = q(1, 2000);
    for row in oq.data.chunks_exact_mut(4) {
        row[3] = 0.0; // constant over O: skipped, also after dequantisation noise
    }
    let o = write(dir.path(), "Oq.npy", &oq);
    let t = write(dir.path(), "Tq.npy", &q(2, 200));
    let g = write(dir.path(), "Gc.npy", &fixture(3, 5, false));
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
    ]);
    assert_eq!(v["dequantized"], "uniform");
    // O, T and G alike (one policy: memdiff_data::quantize), G continuous or not.
    assert_eq!(
        v["dequantized_sets"],
        serde_json::json!(["original", "train", "generated"])
    );
    // The raw shares the policy decided by: 8 levels over 2000 rows on the 3 kept pixels, every
    // value distinct in the continuous G.
    assert!(f(&v, "raw_tie_share_original") > 0.99, "{v}");
    assert!(f(&v, "raw_tie_share_train") > 0.9, "{v}");
    assert_eq!(f(&v, "raw_tie_share_generated"), 0.0);
    assert_eq!(f(&v, "pixels_skipped"), 1.0);
    // The noise is kept in f64: no tie left after it.
    assert_eq!(f(&v, "tie_share_original"), 0.0, "{v}");
    let raw = memdiff(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
        "--no-dequantize",
    ]);
    assert!(raw.status.success());
    let rv: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(rv["dequantized"], "none");
    assert!(f(&rv, "tie_share_original") > 0.9, "{rv}");
    assert!(String::from_utf8_lossy(&raw.stderr).contains("exact ties"));
    // Raw ties blow up the self-terms (docs/METHOD.md §4b): with eps_O = sigma / 2000 far below the
    // quantisation step, every tied pair counts K(0) (8 levels: about 7x the dequantised E_OG).
    assert!(f(&rv, "e_og") > 4.0 * f(&v, "e_og"), "{rv} vs {v}");
    let fl = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
        "--dequantize",
        "floor",
    ]);
    assert_eq!(fl["dequantized"], "floor");
    assert!((f(&fl, "min_bandwidth") - 1.0 / 255.0).abs() < 1e-15);
}

const HEADER: &str = "data,px,d,components,n,steps,generator,protocol,sim,seed,n_original,n_train,n_generated,bandwidth,dequantized,e_tg,e_og,delta,delta_unbiased,nn_ratio_mean,nn_frac_memorized,pixels_used,pixels_skipped,train_seconds,final_loss";

fn row(gen: &str, n: u64, sim: u64, e_tg: f64, e_og: f64, du: f64) -> String {
    format!(
        "gmm,4,16,1,{n},10,{gen},default,{sim},{sim},1000,{n},10,std-over-n,none,{e_tg},{e_og},{},{du},NaN,,16,0,{},",
        e_tg - e_og,
        if gen == "model" { "1.5" } else { "" }
    )
}

#[test]
fn summarize_a_small_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![HEADER.to_string()];
    // model, n = 10: Δ = +0.1, -0.2, -0.3, -0.4; n = 100: all Δ > 0.
    for (sim, og) in [(0, 1.9), (1, 2.2), (2, 2.3), (3, 2.4)] {
        lines.push(row("model", 10, sim, 2.0, og, 0.01));
    }
    for (sim, og) in [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.95)] {
        lines.push(row("model", 100, sim, 1.0, og, -0.01));
    }
    for sim in 0..4 {
        lines.push(row("oracle", 10, sim, 2.0, 2.0 - 0.05 * sim as f64, 0.0));
    }
    let p = dir.path().join("results.csv");
    fs::write(&p, lines.join("\n") + "\n").unwrap();
    let ps = p.to_string_lossy().to_string();
    let v = ok_json(&["eval", "summarize", &ps, "--json"]);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    let g10 = groups
        .iter()
        .find(|g| g["key"]["generator"] == "model" && g["key"]["n"] == 10)
        .unwrap();
    assert_eq!(g10["m"], 4);
    assert_eq!(g10["p_delta"]["k"], 1);
    // Wilson 1 of 4, z = 1.959963984540054 (closed form in Python): (0.0455873, 0.6993582).
    assert!(
        (g10["p_delta"]["lo"].as_f64().unwrap() - 0.045_587_3).abs() < 1e-6,
        "{g10}"
    );
    assert!(
        (g10["p_delta"]["hi"].as_f64().unwrap() - 0.699_358_1).abs() < 1e-6,
        "{g10}"
    );
    assert!((g10["e_og"]["mean"].as_f64().unwrap() - 2.2).abs() < 1e-12);
    assert!(g10["vs_oracle"]["verdict"].is_string());
    let g100 = groups
        .iter()
        .find(|g| g["key"]["generator"] == "model" && g["key"]["n"] == 100)
        .unwrap();
    assert_eq!(g100["p_delta"]["k"], 4);
    assert_eq!(g100["p_delta_unbiased"]["k"], 0);
    // Ê_OG(100) = E_OG / mean E_OG(n=10) = 0.8375 / 2.2
    assert!((g100["ehat_og"]["mean"].as_f64().unwrap() - 0.8375 / 2.2).abs() < 1e-12);
    let eta = v["eta"].as_array().unwrap();
    let model = eta
        .iter()
        .find(|e| e["key"]["generator"] == "model")
        .unwrap();
    let want = -(1.0f64 - 0.8375 / 2.2).ln();
    assert!(
        (model["eta"].as_f64().unwrap() - want).abs() < 1e-12,
        "{model}"
    );
    let oracle = eta
        .iter()
        .find(|e| e["key"]["generator"] == "oracle")
        .unwrap();
    assert!(oracle["eta"].is_null() && oracle["error"].is_string());
    // Table form.
    let out = memdiff(&["eval", "summarize", &ps]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("P(Δ>0)") && text.contains("0.250 [0.046,0.699]"),
        "{text}"
    );
    // A wrong header is refused with the column named.
    fs::write(&p, "data,px,d\ngmm,4,16\n").unwrap();
    let e = err_line(&["eval", "summarize", &ps]);
    assert!(e.contains("results.csv") && e.contains("components"), "{e}");
}

/// Sample quality (docs/METHOD.md §4.9): `eval` prints the library's numbers
/// (`memdiff_diffusion::quality`, the audit's function too) for G, the oracle and the copy
/// generator; a held-out part of O reads like the oracle, copies of T do not reach recall 1.
#[test]
fn quality_beside_the_oracle_and_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (o, t, g) = files(dir.path());
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g,
        "--json",
    ]);
    let q = &v["quality"];
    assert_eq!(q["k"], 3);
    // 60 rows of O, 5 held out for the oracle null.
    assert_eq!(q["reference_rows"], 55);
    let read = |p: &str| memdiff_data::read_images_any_f64(Path::new(p)).unwrap();
    let expect = memdiff_diffusion::quality::quality_beside_nulls(
        &read(&o),
        &read(&t),
        &read(&g),
        0,
        &memdiff_metrics::quality::QualityOptions::default(),
    )
    .unwrap();
    for (who, want) in [
        ("generated", Some(expect.generated)),
        ("oracle", expect.oracle),
        ("copy", Some(expect.copy)),
    ] {
        let want = want.unwrap();
        for (k, x) in [
            ("frechet", want.frechet),
            ("kid", want.kid),
            ("precision", want.precision),
            ("recall", want.recall),
            ("density", want.density),
            ("coverage", want.coverage),
        ] {
            // serde_json parses floats to within 1 ulp.
            assert!(
                (f(&q[who], k) - x).abs() <= 1e-14 * x.abs(),
                "{who} {k}: {} vs {x}",
                f(&q[who], k)
            );
        }
    }
    // Shares in [0, 1], distances positive, for all three sets.
    for who in ["generated", "oracle", "copy"] {
        for k in ["precision", "recall", "coverage"] {
            let x = f(&q[who], k);
            assert!((0.0..=1.0).contains(&x), "{who} {k} {x}");
        }
        assert!(f(&q[who], "frechet") > 0.0);
    }
    // The table prints the block; G with 3 rows gets one line saying why there is none.
    let out = memdiff(&["eval", "--original", &o, "--train", &t, "--generated", &g]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("quality vs 55 rows of O (k = 3)"), "{text}");
    let g3 = write(dir.path(), "G3.npy", &fixture(3, 3, false));
    let out = memdiff(&["eval", "--original", &o, "--train", &t, "--generated", &g3]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "quality: not computed (k = 3 nearest neighbours need more than 3 generated samples)"
        ),
        "{text}"
    );
    let v = ok_json(&[
        "eval",
        "--original",
        &o,
        "--train",
        &t,
        "--generated",
        &g3,
        "--json",
    ]);
    assert!(v["quality"].is_null());
}
