//! The linear sweep as a library: settings, validation messages, seeds, tables and the files of
//! a small run.

use memdiff_data::config::parse_toml;
use memdiff_data::progress::ProgressBar;
use memdiff_linear::sweep::{self, fmt_num, n_for_alpha, point_seed, SweepConfig, Table};

const SMALL: &str = r#"seed = 5
dims = [3, 4]
[h2]
n = [3, 4, 8]
sims = 4
[p_delta]
n_original = 60
n_over_d = [0.5, 2.0]
sims = 3
[p_delta_large]
d = 4
n = [40, 55]
sims = 2
[kl_alpha]
alpha = [0.1, 0.5]
sims = 5
[kl_lambda]
n = 50
lambda_hat = [0.1, 1.0]
sims = 3
"#;

fn small() -> SweepConfig {
    parse_toml(SMALL).unwrap()
}

#[test]
fn validation_names_the_key() {
    let msg = |toml: &str| small_with(toml).validate().unwrap_err().to_string();
    assert_eq!(
        msg("h2.sims = 0"),
        "h2.sims = 0: run at least one simulation"
    );
    assert_eq!(
        msg("dims = []"),
        "dims = []: give one or more dimensions between 1 and 4096"
    );
    assert_eq!(msg("h2.n = [1, 5]"), "h2.n = [1, 5]: every n must be >= 2");
    assert_eq!(
        msg("p_delta_large.n = [61]"),
        "p_delta_large.n = [61]: each n must be in 2..=p_delta.n_original (60)"
    );
    assert_eq!(
        msg("kl_lambda.lambda_hat = [0.0]"),
        "kl_lambda: n must be >= 2 and every lambda_hat > 0"
    );
    // Switched off, p_delta_large's n is not checked against N.
    small_with("p_delta_large.n = [61]\np_delta_large.enabled = false")
        .validate()
        .unwrap();
    let e = parse_toml::<SweepConfig>("[h2]\nsimz = 3\n").unwrap_err();
    assert!(e.contains("simz"), "{e}");
}

/// `SMALL` with `key = value` lines set (dotted keys of a section go into its table).
fn small_with(lines: &str) -> SweepConfig {
    let mut v: toml::Table = toml::from_str(SMALL).unwrap();
    for line in lines.lines() {
        let (k, x) = line.split_once(" = ").unwrap();
        let x: toml::Value =
            toml::from_str::<toml::Table>(&format!("x = {x}")).unwrap()["x"].clone();
        match k.split_once('.') {
            Some((sec, key)) => {
                v.get_mut(sec)
                    .unwrap()
                    .as_table_mut()
                    .unwrap()
                    .insert(key.into(), x);
            }
            None => {
                v.insert(k.into(), x);
            }
        }
    }
    parse_toml(&toml::to_string(&v).unwrap()).unwrap()
}

#[test]
fn point_seeds_and_grid() {
    // λ̂ enters by its bits: values closer than 1e-6 get different seeds (a (λ̂·1e6) as usize
    // key gave both 100000).
    let a = point_seed(1, 2, 16, 0.1f64.to_bits());
    let b = point_seed(1, 2, 16, (0.1f64 + 1e-9).to_bits());
    assert_ne!(a, b);
    // Every part counts.
    let base = point_seed(1, 1, 16, 100);
    for other in [
        point_seed(2, 1, 16, 100),
        point_seed(1, 3, 16, 100),
        point_seed(1, 1, 100, 100),
        point_seed(1, 1, 16, 101),
    ] {
        assert_ne!(base, other);
    }
    assert_eq!(n_for_alpha(16, 0.01), 1600);
    assert_eq!(n_for_alpha(100, 0.3), 333);
    assert_eq!(n_for_alpha(2, 0.95), 2);
    assert_eq!(n_for_alpha(1, 0.9), 2, "at least 2");
    assert_eq!(fmt_num(0.25), "2.50000000e-1");
    assert_eq!(fmt_num(f64::NAN), "nan");
    assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
    let t = Table {
        file: "x.csv",
        header: &["d", "n"],
        rows: vec![vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]],
    };
    assert_eq!(t.to_csv(), "d,n\n1,2\n3,4\n");
}

#[test]
fn small_run_writes_its_tables_and_counts_every_simulation() {
    let cfg = small();
    // 2 dims x (3 x 4 + 2 x 3 + 2 x 5 + 2 x 3) + 2 x 2
    assert_eq!(cfg.simulations(), 2 * (12 + 6 + 10 + 6) + 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lin");
    let pb = ProgressBar::hidden();
    let written = sweep::run(&cfg, &out, &pb).unwrap();
    assert_eq!(pb.position(), cfg.simulations());
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "kl_alpha.csv",
            "kl_var_vs_alpha.svg",
            "kl_var_vs_alpha.png",
            "kl_lambda.csv",
            "kl_var_vs_lambda.svg",
            "kl_var_vs_lambda.png",
            "h2.csv",
            "h2_vs_n.svg",
            "h2_vs_n.png",
            "p_delta.csv",
            "p_delta_vs_n_over_d.svg",
            "p_delta_vs_n_over_d.png",
            "p_delta_large.csv",
            "p_delta_vs_n_over_big_n.svg",
            "p_delta_vs_n_over_big_n.png",
        ]
    );
    assert!(out.join("run.toml").is_file());
    // The files are the sections' tables: same seeds, same numbers.
    let (h2, curves) = sweep::h2(&cfg, &ProgressBar::hidden()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("h2.csv")).unwrap(),
        h2.to_csv()
    );
    assert_eq!(h2.rows.len(), 2 * 3);
    // H² = 1 exactly for n <= d (singular Sigma_G), below 1 above.
    for c in &curves {
        for &(n, m) in &c.points {
            if n as usize <= c.d {
                assert_eq!(m, 1.0, "d = {} n = {n}", c.d);
            } else {
                assert!(m < 1.0, "d = {} n = {n}: {m}", c.d);
            }
        }
    }
    let originals = sweep::original_sets(&cfg, &ProgressBar::hidden()).unwrap();
    assert_eq!(
        originals.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        [3, 4],
        "p_delta_large.d = 4 is among dims: no second O"
    );
    let (pl, _) = sweep::p_delta_large(&cfg, &originals, &ProgressBar::hidden()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("p_delta_large.csv")).unwrap(),
        pl.to_csv()
    );
}

#[test]
fn switched_off_sections_write_nothing_and_bad_folders_are_named() {
    let mut cfg = small();
    cfg.kl_alpha.enabled = false;
    cfg.kl_lambda.enabled = false;
    cfg.h2.enabled = false;
    cfg.p_delta.enabled = false;
    let dir = tempfile::tempdir().unwrap();
    let pb = ProgressBar::hidden();
    let written = sweep::run(&cfg, &dir.path().join("o"), &pb).unwrap();
    assert_eq!(written.len(), 3, "{written:?}");
    assert_eq!(pb.position(), cfg.simulations());
    assert_eq!(cfg.simulations(), 4);
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let e = sweep::run(&cfg, &file.join("o"), &pb).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "cannot create output folder {}",
            file.join("o").display()
        )),
        "{e}"
    );
}
