//! One implementation per concept, through the binary: `eval` on files, `eval --checkpoint` and
//! `sweep --only UNIT` give identical E_TG, E_OG, Δ, Δ_U and pixel counts on the same O, T, G
//! (GMM and MNIST, every dequantisation mode); and the audit of tiny MNIST checkpoints (resized
//! to px 8 and 16, padded to 32) treats the tie-dominated digits as `eval` does (issue 20).

mod common;

use common::memdiff;
use memdiff_data::reference::{generator_seed, Reference};
use memdiff_data::{npy, GmmSpec, ImageSet};
use memdiff_experiments::config::{DataKind, SweepConfig};
use memdiff_experiments::grid::{units, SimSeeds};
use memdiff_experiments::sim::SimContext;
use memdiff_metrics::summary::{read_csv, SimRow};
use serde_json::Value;
use std::path::Path;

const MODES: [&str; 4] = ["auto", "uniform", "floor", "none"];

fn mnist_file() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist/mnist-10k-images-idx3-ubyte.gz"
    )
    .to_string()
}

/// The JSON object of a command that must succeed, and its text (for exact numbers).
fn json(args: &[&str]) -> (Value, String) {
    let out = memdiff(args);
    assert!(
        out.status.success(),
        "memdiff {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn write(dir: &Path, name: &str, set: &ImageSet) -> String {
    let p = dir.join(name);
    npy::write_npy(&p, set).unwrap();
    p.to_string_lossy().into_owned()
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// A number of a JSON text as written (shortest round-trip digits), parsed by Rust's correctly
/// rounded `str::parse` (serde_json's own float parsing may be off by one ulp).
fn exact(text: &str, k: &str) -> f64 {
    let pat = format!("\"{k}\":");
    let at = text
        .find(&pat)
        .unwrap_or_else(|| panic!("{k} missing in {text}"))
        + pat.len();
    let rest = &text[at..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].parse().unwrap()
}

/// The numbers that must agree, bit for bit.
fn key_of_json((v, text): &(Value, String)) -> (f64, f64, f64, f64, f64, f64, String) {
    (
        exact(text, "e_tg"),
        exact(text, "e_og"),
        exact(text, "delta"),
        exact(text, "delta_unbiased"),
        exact(text, "pixels_used"),
        exact(text, "pixels_skipped"),
        v["dequantized"].as_str().unwrap().to_string(),
    )
}

fn key_of_row(r: &SimRow) -> (f64, f64, f64, f64, f64, f64, String) {
    (
        r.e_tg,
        r.e_og,
        r.delta,
        r.delta_unbiased,
        r.pixels_used as f64,
        r.pixels_skipped as f64,
        r.dequantized.clone(),
    )
}

fn sweep_equals_eval(config: &str, want_treatment: [&str; 4]) {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("sweep.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let mut cfg: SweepConfig = memdiff_data::config::parse_toml(config).unwrap();
    cfg.validate().unwrap();
    let u = units(&cfg)[0];
    let seeds = SimSeeds::new(&cfg, &u);
    // The unit's raw O, T and the oracle's G, from the sweep's own drawing code.
    let ctx = SimContext::new(cfg.clone()).unwrap();
    let (o, t, pool) = ctx.draw(&u, &seeds).unwrap();
    let oracle = match pool {
        Some(p) => p,
        None => {
            let g = &cfg.gmm;
            let spec = GmmSpec::centred(cfg.px, u.components, g.mu0, g.spacing, g.sigma).unwrap();
            let seed = generator_seed(seeds.reference, &Reference::Oracle);
            spec.sample(cfg.generated, seed).unwrap().0
        }
    };
    let (op, tp, gp) = (
        write(dir.path(), "O.npy", &o),
        write(dir.path(), "T.npy", &t),
        write(dir.path(), "G.npy", &oracle),
    );
    let seed = seeds.reference.to_string();
    let g = cfg.generated.to_string();
    for (mode, want) in MODES.iter().zip(want_treatment) {
        let out = memdiff(&[
            "sweep",
            "--config",
            cfg_path.to_str().unwrap(),
            "--only",
            &u.id(),
            "--dequantize",
            mode,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = read_csv(&out.stdout[..]).unwrap();
        assert_eq!(rows.len(), 3);
        for r in &rows {
            let mut args = vec![
                "eval",
                "--original",
                &op,
                "--train",
                &tp,
                "--seed",
                &seed,
                "--dequantize",
                mode,
                "--json",
            ];
            match r.generator.as_str() {
                "oracle" => args.extend(["--generated", gp.as_str()]),
                other => args.extend(["--generator", other, "--g", g.as_str()]),
            }
            let v = json(&args);
            assert_eq!(
                key_of_json(&v),
                key_of_row(r),
                "{mode} {}: eval {} vs sweep {r:?}",
                r.generator,
                v.1
            );
            assert_eq!(r.dequantized, want, "{mode}");
            assert!(r.e_og.is_finite() && r.e_og > 0.0);
        }
    }
}

#[test]
fn sweep_unit_equals_eval_on_its_sets_gmm() {
    let config = r#"
name = "onepolicy-gmm"
seed = 3
px = 8
components = [2]
n = [30]
sims = 1
n_original = 300
generated = 12
generators = ["oracle", "copy", "copy+noise:0.05"]
"#;
    // Continuous data: auto leaves it alone.
    sweep_equals_eval(config, ["none", "uniform", "floor", "none"]);
}

#[test]
fn sweep_unit_equals_eval_on_its_sets_mnist() {
    let config = format!(
        r#"
name = "onepolicy-mnist"
seed = 4
data = "mnist"
px = 8
n = [25]
sims = 1
n_original = 300
generated = 10
generators = ["oracle", "copy", "copy+noise:0.05"]
[mnist]
images = "{}"
"#,
        mnist_file()
    );
    let cfg: SweepConfig = memdiff_data::config::parse_toml(&config).unwrap();
    assert_eq!(cfg.data, DataKind::Mnist);
    // Resized digits are off the k/255 grid, but their ties dominate: auto dequantises.
    sweep_equals_eval(&config, ["uniform", "uniform", "floor", "none"]);
}

/// Trains a tiny MNIST checkpoint (px 32: the digits padded, else resized).
fn tiny_mnist_checkpoint(dir: &Path, px: usize) -> String {
    let out = dir.join(format!("ck{px}"));
    let o = out.to_str().unwrap().to_string();
    let px = px.to_string();
    let r = memdiff(&[
        "train",
        "--data",
        "mnist",
        "--px",
        &px,
        "--n",
        "20",
        "--steps",
        "10",
        "--epochs",
        "1",
        "--batch",
        "10",
        "--base-channels",
        "8",
        "--seed",
        "2",
        "--checkpoint-every",
        "0",
        "--out",
        &o,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    o
}

#[test]
fn mnist_checkpoint_audit_is_treated_warned_and_equals_eval() {
    let dir = tempfile::tempdir().unwrap();
    for px in [8usize, 16, 32] {
        let ck = tiny_mnist_checkpoint(dir.path(), px);
        let sets = dir.path().join(format!("sets{px}"));
        let sets_s = sets.to_str().unwrap().to_string();
        let file = |n: &str| sets.join(n).to_str().unwrap().to_string();
        // The audit (default O: the MNIST digits not in T), JSON and stderr.
        let audit = |mode: &str, save: bool| {
            let mut a = vec![
                "eval",
                "--checkpoint",
                &ck,
                "--generate",
                "40",
                "--seed",
                "4",
                "--dequantize",
                mode,
                "--json",
            ];
            if save {
                a.extend(["--save-sets", sets_s.as_str()]);
            }
            let out = memdiff(&a);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            ((v, text), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let (auto, _) = audit("auto", true);
        let v = &auto.0;
        // The digits are off the grid when resized, on it when padded; either way ties dominate
        // the raw sets' self-terms and auto dequantises O, T and G.
        assert_eq!(v["dequantized"], "uniform", "px {px}: {v}");
        assert_eq!(
            v["dequantized_sets"],
            serde_json::json!(["original", "train", "generated"])
        );
        assert!(num(v, "raw_tie_share_original") > 0.5, "px {px}: {v}");
        assert!(num(v, "raw_tie_share_train") > 0.5, "px {px}: {v}");
        // The numbers equal `eval` on the saved sets (every mode at px 8).
        let modes: &[&str] = if px == 8 { &MODES } else { &["auto", "none"] };
        let mut raw = None;
        for &mode in modes {
            let (a, err) = if mode == "auto" {
                (auto.clone(), String::new())
            } else {
                audit(mode, false)
            };
            let e = json(&[
                "eval",
                "--original",
                &file("original.npy"),
                "--train",
                &file("train.npy"),
                "--generated",
                &file("generated.npy"),
                "--seed",
                "4",
                "--dequantize",
                mode,
                "--json",
            ]);
            assert_eq!(key_of_json(&a), key_of_json(&e), "px {px} {mode}");
            // Untreated ties are warned about (through tracing: stderr).
            assert_eq!(err.contains("exact ties make up"), mode == "none", "{err}");
            if mode == "none" {
                raw = Some(a.0);
            }
        }
        // A finite E_OG of the order of the oracle's on the same O and T; untreated, the ties
        // blow it up by orders of magnitude (issue 20: 5.85e5).
        let (oracle, _) = json(&[
            "eval",
            "--original",
            &file("original.npy"),
            "--train",
            &file("train.npy"),
            "--generator",
            "oracle",
            "--g",
            "40",
            "--seed",
            "4",
            "--json",
        ]);
        let (e_model, e_oracle) = (num(v, "e_og"), num(&oracle, "e_og"));
        assert!(e_model.is_finite() && e_oracle > 0.0);
        let ratio = e_model / e_oracle;
        assert!(
            (0.1..30.0).contains(&ratio),
            "px {px}: {e_model} vs oracle {e_oracle}"
        );
        let raw = raw.expect("mode none ran");
        assert!(num(&raw, "e_og") > 30.0 * e_model, "px {px}: {raw}");
        eprintln!(
            "px {px}: E_OG model {e_model:.4e}, oracle {e_oracle:.4e}, untreated {:.4e}",
            num(&raw, "e_og")
        );
    }
    // The issue's case (px 16) in text: the treatment and tie shares are printed, and the
    // warning goes through tracing (kept under -q).
    let ck = dir.path().join("ck16");
    let ck = ck.to_str().unwrap();
    let out = memdiff(&["eval", "--checkpoint", ck, "--generate", "4"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dequantised: uniform (auto; noise on original, train, generated)")
            && text.contains("of O's self-term"),
        "{text}"
    );
    let q = memdiff(&[
        "-q",
        "eval",
        "--checkpoint",
        ck,
        "--generate",
        "4",
        "--no-dequantize",
    ]);
    let text = String::from_utf8_lossy(&q.stdout);
    assert!(text.contains("dequantised: none (none)"), "{text}");
    let err = String::from_utf8_lossy(&q.stderr);
    assert!(
        err.contains("WARN") && err.contains("exact ties make up"),
        "{err}"
    );
}

/// `--resume` refuses `--n`, `--components`, `--data-seed` that differ from the checkpoint's
/// data (they used to be ignored silently) and accepts the same values.
#[test]
fn resume_refuses_data_flags_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g");
    let o = out.to_str().unwrap();
    let base = [
        "train",
        "--data",
        "gmm",
        "--n",
        "16",
        "--px",
        "8",
        "--steps",
        "5",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--base-channels",
        "4",
        "--seed",
        "1",
        "--out",
        o,
    ];
    assert!(memdiff(&base).status.success());
    for (flag, value) in [("--n", "17"), ("--components", "2"), ("--data-seed", "9")] {
        let e = common::err(&["train", "--out", o, "--resume", flag, value]);
        assert!(
            e.contains(&format!("{flag} under --resume")) && e.contains("checkpoint.toml"),
            "{e}"
        );
    }
    common::ok(&[
        "train",
        "--out",
        o,
        "--resume",
        "--n",
        "16",
        "--components",
        "1",
        "--data-seed",
        "1",
        "--epochs",
        "2",
    ]);
}

/// A float64 `.npy` of shape `(n, d)`, written by hand (numpy's format 1.0).
fn write_f64_npy(path: &Path, n: usize, d: usize, values: &[f64]) {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// float64 inputs reach the metric unrounded: `eval` equals the metric on the f64 values bit for
/// bit, and differs from it on the values rounded to f32.
#[test]
fn f64_inputs_are_not_rounded_to_f32() {
    use memdiff_metrics::kde::{evaluate, KdeOptions};
    let dir = tempfile::tempdir().unwrap();
    let d = 6;
    // Values whose f32 rounding matters: a smooth function plus 1e-9-scale detail.
    let make = |set: u64, n: usize| -> Vec<f64> {
        (0..n * d)
            .map(|i| {
                let x = (i as f64 * 0.618_033_988_749_895 + set as f64 * 0.414_213_562).fract();
                0.2 + 0.6 * x + 1e-9 * ((i * 7 + set as usize) % 13) as f64
            })
            .collect()
    };
    let (o, t, g) = (make(1, 200), make(2, 20), make(3, 8));
    let path = |s: &str| dir.path().join(s);
    write_f64_npy(&path("O.npy"), 200, d, &o);
    write_f64_npy(&path("T.npy"), 20, d, &t);
    write_f64_npy(&path("G.npy"), 8, d, &g);
    let p = |s: &str| path(s).to_str().unwrap().to_string();
    let (_, text) = json(&[
        "eval",
        "--original",
        &p("O.npy"),
        "--train",
        &p("T.npy"),
        "--generated",
        &p("G.npy"),
        "--json",
    ]);
    assert!(text.contains("\"dequantized\":\"none\""), "{text}");
    let opts = KdeOptions::default();
    let exact64 = evaluate(&o, 200, &t, 20, &g, 8, d, &opts).unwrap();
    assert_eq!(exact(&text, "e_og"), exact64.e_og);
    assert_eq!(exact(&text, "e_tg"), exact64.e_tg);
    assert_eq!(exact(&text, "delta_unbiased"), exact64.delta_unbiased);
    let r = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let rounded = evaluate(&r(&o), 200, &r(&t), 20, &r(&g), 8, d, &opts).unwrap();
    assert_ne!(rounded.e_og, exact64.e_og);
}
