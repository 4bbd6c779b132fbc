//! `memdiff linear`: JSON fields and their values against independently computed numbers,
//! errors, and a small sweep's files.

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

fn json(args: &[&str]) -> Value {
    let (code, out, err) = memdiff(args);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing or not a number: {v}"))
}

/// Theorem 3.1 (seed 000 eq. 3.6), written out here independently of the crate.
fn theorem(d: f64, n: f64, l: f64, t: f64) -> f64 {
    let a = d / n;
    let e2t = (2.0 * t).exp();
    d * a * l * (-4.0 * t).exp() * (e2t - 1.0) / (2.0 * (1.0 - a))
        + d * l * l * (-8.0 * t).exp() * (e2t - 1.0).powi(2) / (4.0 * (1.0 - a).powi(3))
            * (a + (1.0 - a).powi(3) * e2t * e2t + 4.0 * a * (1.0 - a).powi(2) * e2t)
}

#[test]
fn theory_json_values() {
    let v = json(&[
        "linear",
        "theory",
        "--d",
        "100",
        "--n",
        "1000",
        "--lambda-hat",
        "0.1",
        "--json",
    ]);
    let close = |k: &str, x: f64| {
        let y = num(&v, k);
        assert!((y - x).abs() <= 1e-10 * x.abs(), "{k}: {y} vs {x}");
    };
    close("alpha", 0.1);
    close("kl_var_theory", theorem(100.0, 1000.0, 0.1, 2.0));
    close("kl_var_theory", 0.25288732610227105); // Python
    close("t_mix", 0.5 * (1.0 + 1.0 / (1000f64.powf(0.02) - 1.0)).ln());
    close(
        "eps_opt",
        (4.0f64 / 102.0).powf(1.0 / 104.0) * 1000f64.powf(-1.0 / 104.0),
    );
    close("lambda", 0.1 * (-4.0f64).exp());
    // alpha >= 1: the theorem does not apply
    let v = json(&[
        "linear",
        "theory",
        "--d",
        "100",
        "--n",
        "50",
        "--lambda-hat",
        "0.1",
        "--json",
    ]);
    assert!(v["kl_var_theory"].is_null() && num(&v, "alpha") == 2.0);
}

#[test]
fn simulate_reverse_matches_theorem_and_is_reproducible() {
    let args = [
        "linear",
        "simulate",
        "--data-model",
        "reverse",
        "--d",
        "100",
        "--n",
        "1000",
        "--lambda-hat",
        "0.1",
        "--sims",
        "60",
        "--seed",
        "3",
        "--n-original",
        "0",
        "--json",
    ];
    let v = json(&args);
    for k in [
        "kl_var_mean",
        "kl_var_se",
        "kl_var_quad_mean",
        "kl_mean_mean",
        "hellinger2_mean",
        "kl_var_theory",
    ] {
        num(&v, k);
    }
    assert_eq!(v["data_model"], "reverse");
    assert_eq!(v["sampler"], "wishart");
    assert!(v["p_delta_pos"].is_null(), "no O, no Δ");
    let th = theorem(100.0, 1000.0, 0.1, 2.0);
    let (q, se) = (num(&v, "kl_var_quad_mean"), num(&v, "kl_var_quad_se"));
    assert!((q - th).abs() <= 0.03 * th + 3.0 * se, "{q} ± {se} vs {th}");
    let mut again = json(&args);
    let mut first = v.clone();
    first.as_object_mut().unwrap().remove("seconds");
    again.as_object_mut().unwrap().remove("seconds");
    assert_eq!(first, again);
}

#[test]
fn simulate_forward_singular_has_finite_delta_stats() {
    let v = json(&[
        "linear",
        "simulate",
        "--d",
        "8",
        "--n",
        "4",
        "--lambda-hat",
        "1",
        "--sims",
        "30",
        "--n-original",
        "300",
        "--json",
    ]);
    assert_eq!(v["data_model"], "forward");
    assert_eq!(v["singular"], 30);
    assert!(
        v["kl_var_mean"].is_null(),
        "exact KL is +inf for singular fits"
    );
    assert_eq!(num(&v, "hellinger2_mean"), 1.0);
    let (p, lo, hi) = (
        num(&v, "p_delta_pos"),
        num(&v, "p_delta_pos_lo"),
        num(&v, "p_delta_pos_hi"),
    );
    let k = num(&v, "delta_pos_count");
    assert!((p - k / 30.0).abs() < 1e-12 && lo <= p && p <= hi);
    // Wilson interval, computed here.
    let z: f64 = 1.959963984540054;
    let m = 30.0;
    let c = (p + z * z / (2.0 * m)) / (1.0 + z * z / m);
    let h = z / (1.0 + z * z / m) * (p * (1.0 - p) / m + z * z / (4.0 * m * m)).sqrt();
    assert!((lo - (c - h).max(0.0)).abs() < 1e-12 && (hi - (c + h).min(1.0)).abs() < 1e-12);
    assert!(p <= 0.3, "memorizing regime: P(Δ>0) = {p}");
    num(&v, "delta_rel_mean");
}

#[test]
fn bad_input_is_one_clear_line() {
    let (code, _, err) = memdiff(&[
        "linear",
        "theory",
        "--d",
        "10",
        "--n",
        "1",
        "--lambda-hat",
        "0.1",
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("n = 1"), "{err}");
    let (code, _, err) = memdiff(&[
        "linear",
        "simulate",
        "--d",
        "4",
        "--n",
        "500",
        "--lambda-hat",
        "1",
        "--n-original",
        "100",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("n = 500") && err.contains("n_original"),
        "{err}"
    );
    let (code, _, err) = memdiff(&[
        "linear",
        "simulate",
        "--d",
        "4",
        "--n",
        "5",
        "--lambda-hat",
        "1",
        "--data-model",
        "sideways",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("sideways"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "seed = 1\n[h2]\nsimz = 3\n").unwrap();
    let (code, _, err) = memdiff(&[
        "linear",
        "sweep",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("simz") && err.contains("bad.toml"), "{err}");
    assert!(!dir.path().join("o").exists(), "no output on a bad config");
}

#[test]
fn small_sweep_writes_tables_plots_and_run_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lin.toml");
    std::fs::write(
        &cfg,
        r#"seed = 5
dims = [4]
[h2]
n = [3, 4, 8, 40]
sims = 10
[p_delta]
n_original = 200
n_over_d = [0.5, 2.0, 8.0]
sims = 10
[p_delta_large]
d = 4
n = [150, 190]
sims = 5
[kl_alpha]
alpha = [0.1, 0.5]
sims = 10
[kl_lambda]
n = 400
lambda_hat = [0.1, 1.0]
sims = 10
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let (code, _, err) = memdiff(&[
        "linear",
        "sweep",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for f in [
        "run.toml",
        "h2.csv",
        "p_delta.csv",
        "p_delta_large.csv",
        "kl_alpha.csv",
        "kl_lambda.csv",
        "h2_vs_n.svg",
        "h2_vs_n.png",
        "p_delta_vs_n_over_d.png",
        "p_delta_vs_n_over_big_n.png",
        "kl_var_vs_alpha.svg",
        "kl_var_vs_lambda.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let read = |f: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let h2 = read("h2.csv");
    assert_eq!(h2.len(), 5);
    let col = |t: &Vec<Vec<String>>, name: &str| t[0].iter().position(|c| c == name).unwrap();
    let (hn, hm) = (col(&h2, "n"), col(&h2, "hellinger2_mean"));
    for r in &h2[1..] {
        let n: usize = r[hn].parse().unwrap();
        let m: f64 = r[hm].parse().unwrap();
        if n <= 4 {
            assert_eq!(m, 1.0, "H² = 1 for n <= d");
        } else {
            assert!(m < 1.0);
        }
    }
    let kl = read("kl_alpha.csv");
    let (kn, kt) = (col(&kl, "n"), col(&kl, "kl_var_theory"));
    for r in &kl[1..] {
        let n: f64 = r[kn].parse().unwrap();
        let t: f64 = r[kt].parse().unwrap();
        let want = theorem(4.0, n, 0.1, 2.0);
        assert!((t - want).abs() < 1e-7 * want, "{t} vs {want}");
    }
    let pd = read("p_delta.csv");
    assert_eq!(pd.len(), 4);
    let (pp, plo, phi) = (col(&pd, "p_delta_pos"), col(&pd, "p_lo"), col(&pd, "p_hi"));
    for r in &pd[1..] {
        let (p, lo, hi): (f64, f64, f64) = (
            r[pp].parse().unwrap(),
            r[plo].parse().unwrap(),
            r[phi].parse().unwrap(),
        );
        assert!(lo <= p && p <= hi && (0.0..=1.0).contains(&p));
    }
    let run = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(
        run.contains("linear sweep") && run.contains("seed = 5"),
        "{run}"
    );
    let png = std::fs::read(out.join("h2_vs_n.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
