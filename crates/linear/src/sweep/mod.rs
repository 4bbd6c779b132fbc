//! The sweep that reproduces the seeds' linear-model figures (`memdiff linear sweep`, docs/METHOD.md
//! §6): for every dimension of `dims`, Monte Carlo points of each enabled section, written as one
//! CSV table per section ([`Table`]) and one figure per section ([`crate::plots`]).
//!
//! Sections, in the order they run: `kl_alpha` (KL_var/d vs α = d/n with Theorem 3.1's curve),
//! `kl_lambda` (KL_var/d vs λ̂), `h2` (H² vs n), `p_delta` (P(Δ>0) vs n/d) and `p_delta_large`
//! (P(Δ>0) as n approaches N; one original set O per dimension, shared with `p_delta`).
//!
//! Every point's simulations are seeded by [`point_seed`] (the one seed derivation,
//! `memdiff_data::seed::derive_seed`), so a sweep's numbers depend on its settings only.

mod config;

pub use config::{
    H2Section, KlAlphaSection, KlLambdaSection, PDeltaLargeSection, PDeltaSection, SweepConfig,
};

use std::path::{Path, PathBuf};

use memdiff_data::atomic::{self, WriteError};
use memdiff_data::config::RunRecord;
use memdiff_data::progress::ProgressBar;

use crate::{plots, simulate, theory, LinearError, OriginalSet, SimOptions, Summary};

/// Errors of a sweep, each one line that names the setting, the point or the file.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// An invalid setting (`h2.sims = 0: run at least one simulation`).
    #[error("{0}")]
    Config(String),
    #[error("cannot create output folder {}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `run.toml` could not be written.
    #[error("{0}")]
    Record(String),
    /// A point of the grid failed (`kl_alpha d = 16 n = 1600: ...`).
    #[error("{what}")]
    Point {
        what: String,
        #[source]
        source: LinearError,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Plot(#[from] memdiff_plot::PlotError),
}

/// One CSV table of the sweep: numbers and plain words only (no quoting needed).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File name in the output folder (`h2.csv`).
    pub file: &'static str,
    pub header: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The CSV text: the header line, then one line per row.
    pub fn to_csv(&self) -> String {
        let mut s = self.header.join(",");
        s.push('\n');
        for r in &self.rows {
            s.push_str(&r.join(","));
            s.push('\n');
        }
        s
    }

    /// Writes the table atomically into `out`; returns its path.
    pub fn write(&self, out: &Path) -> Result<PathBuf, WriteError> {
        let path = out.join(self.file);
        atomic::write_bytes(&path, self.to_csv().as_bytes())?;
        Ok(path)
    }
}

/// One dimension's curve of a section: points `(x, y)` and their band `(x, lo, hi)` (2 standard
/// errors for H², the 95% Wilson interval for P(Δ>0)).
#[derive(Debug, Clone, PartialEq)]
pub struct BandCurve {
    pub d: usize,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
}

/// One dimension's curves of `kl_alpha`: Theorem 3.1 on a fine α grid, the Monte Carlo
/// quadratic form `(α, mean/d, se/d)` and the exact KL_var `(α, mean/d)` where finite.
#[derive(Debug, Clone, PartialEq)]
pub struct KlAlphaCurves {
    pub d: usize,
    pub theory: Vec<(f64, f64)>,
    pub quad: Vec<(f64, f64, f64)>,
    pub exact: Vec<(f64, f64)>,
}

/// One dimension's curves of `kl_lambda`: Theorem 3.1 `(λ̂, KL/d)` where it applies and the
/// Monte Carlo quadratic form `(λ̂, mean/d)`.
#[derive(Debug, Clone, PartialEq)]
pub struct KlLambdaCurves {
    pub d: usize,
    pub theory: Vec<(f64, f64)>,
    pub quad: Vec<(f64, f64)>,
}

/// A point's seed from the run seed, a section tag (1 `kl_alpha`, 2 `kl_lambda`, 3 `h2`, 4 the
/// original sets, 5 `p_delta` and `p_delta_large`), the dimension and the point: the one seed
/// derivation (`memdiff_data::seed::derive_seed`). `x` is the point's n, or a float's bits (λ̂),
/// so that close values never share a seed.
pub fn point_seed(seed: u64, tag: u64, d: usize, x: u64) -> u64 {
    memdiff_data::seed::derive_seed(seed, "linear", &[tag, d as u64, x])
}

/// The training-set size of `kl_alpha`'s point α in dimension `d`: `round(d / α)`, at least 2.
pub fn n_for_alpha(d: usize, alpha: f64) -> usize {
    ((d as f64 / alpha).round() as usize).max(2)
}

/// A number in the tables: `{:.8e}`, or `nan`, `inf`, `-inf`.
pub fn fmt_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.8e}")
    } else if x.is_nan() {
        "nan".into()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// Runs every enabled section of `cfg` into the folder `out` (created; `run.toml` records the
/// settings). `progress` advances by one per simulation ([`SweepConfig::simulations`] in all)
/// and names the section running. Returns the files written, tables and figures, in order.
pub fn run(
    cfg: &SweepConfig,
    out: &Path,
    progress: &ProgressBar,
) -> Result<Vec<PathBuf>, SweepError> {
    cfg.validate()?;
    std::fs::create_dir_all(out).map_err(|source| SweepError::Folder {
        path: out.to_path_buf(),
        source,
    })?;
    RunRecord::new("linear sweep", "cpu", cfg.seed, cfg)
        .write(out)
        .map_err(|e| SweepError::Record(e.to_string()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    if cfg.kl_alpha.enabled {
        let (table, curves) = kl_alpha(cfg, progress)?;
        written.push(table.write(out)?);
        written.extend(plots::kl_alpha(&cfg.kl_alpha, &curves).save(&out.join("kl_var_vs_alpha"))?);
    }
    if cfg.kl_lambda.enabled {
        let (table, curves) = kl_lambda(cfg, progress)?;
        written.push(table.write(out)?);
        written
            .extend(plots::kl_lambda(&cfg.kl_lambda, &curves).save(&out.join("kl_var_vs_lambda"))?);
    }
    if cfg.h2.enabled {
        let (table, curves) = h2(cfg, progress)?;
        written.push(table.write(out)?);
        written.extend(plots::h2(&cfg.h2, &curves).save(&out.join("h2_vs_n"))?);
    }
    if cfg.p_delta.enabled || cfg.p_delta_large.enabled {
        let originals = original_sets(cfg, progress)?;
        if cfg.p_delta.enabled {
            let (table, curves) = p_delta(cfg, &originals, progress)?;
            written.push(table.write(out)?);
            written.extend(
                plots::p_delta(&cfg.p_delta, &curves).save(&out.join("p_delta_vs_n_over_d"))?,
            );
        }
        if cfg.p_delta_large.enabled {
            let (table, curve) = p_delta_large(cfg, &originals, progress)?;
            written.push(table.write(out)?);
            written.extend(
                plots::p_delta_large(cfg.p_delta.n_original, &curve)
                    .save(&out.join("p_delta_vs_n_over_big_n"))?,
            );
        }
    }
    Ok(written)
}

fn point_error(what: String) -> impl FnOnce(LinearError) -> SweepError {
    move |source| SweepError::Point { what, source }
}

/// KL_var/d vs α: Monte Carlo (quadratic and exact forms) and Theorem 3.1.
pub fn kl_alpha(
    cfg: &SweepConfig,
    progress: &ProgressBar,
) -> Result<(Table, Vec<KlAlphaCurves>), SweepError> {
    let s = &cfg.kl_alpha;
    let f = fmt_num;
    let tick = || progress.inc(1);
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &d in &cfg.dims {
        progress.set_message(format!("KL vs alpha, d = {d}"));
        let mut quad = Vec::new();
        let mut exact = Vec::new();
        for &alpha in &s.alpha {
            let n = n_for_alpha(d, alpha);
            let p = cfg.params(d, n, s.lambda_hat, s.data_model);
            let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 1, d, n as u64));
            let (_, sm) = simulate(&p, &opts, None, &tick)
                .map_err(point_error(format!("kl_alpha d = {d} n = {n}")))?;
            let th = theory::kl_var_theorem(d, n, s.lambda_hat, cfg.t).map(|t| t.total);
            let df = d as f64;
            let alpha_eff = p.alpha();
            quad.push((alpha_eff, sm.kl_var_quad.mean / df, sm.kl_var_quad.se / df));
            if sm.kl_var.mean.is_finite() {
                exact.push((alpha_eff, sm.kl_var.mean / df));
            }
            rows.push(vec![
                d.to_string(),
                n.to_string(),
                f(alpha_eff),
                f(s.lambda_hat),
                s.data_model.to_string(),
                s.sims.to_string(),
                sm.singular.to_string(),
                f(sm.kl_var_quad.mean),
                f(sm.kl_var_quad.se),
                f(sm.kl_var.mean),
                f(sm.kl_var.se),
                f(sm.kl_mean.mean),
                th.map(f).unwrap_or_else(|| "nan".into()),
            ]);
        }
        // Theory curve on a fine alpha grid below 1.
        let theory: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let lo = s
                    .alpha
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
                    .min(0.01);
                let a = (lo.ln() + (0.995f64.ln() - lo.ln()) * i as f64 / 199.0).exp();
                let th = theory::kl_var_theorem_alpha(d, a, s.lambda_hat, cfg.t)
                    .map_or(f64::NAN, |t| t.total);
                (a, th / d as f64)
            })
            .collect();
        curves.push(KlAlphaCurves {
            d,
            theory,
            quad,
            exact,
        });
    }
    let table = Table {
        file: "kl_alpha.csv",
        header: &[
            "d",
            "n",
            "alpha",
            "lambda_hat",
            "data_model",
            "sims",
            "singular",
            "kl_var_quad_mean",
            "kl_var_quad_se",
            "kl_var_mean",
            "kl_var_se",
            "kl_mean_mean",
            "kl_var_theory",
        ],
        rows,
    };
    Ok((table, curves))
}

/// KL_var/d vs λ̂ at fixed n: Monte Carlo (quadratic form) and Theorem 3.1.
pub fn kl_lambda(
    cfg: &SweepConfig,
    progress: &ProgressBar,
) -> Result<(Table, Vec<KlLambdaCurves>), SweepError> {
    let s = &cfg.kl_lambda;
    let f = fmt_num;
    let tick = || progress.inc(1);
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &d in &cfg.dims {
        progress.set_message(format!("KL vs lambda_hat, d = {d}"));
        let mut quad = Vec::new();
        let mut theory_curve = Vec::new();
        for &lh in &s.lambda_hat {
            let p = cfg.params(d, s.n, lh, s.data_model);
            let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 2, d, lh.to_bits()));
            let (_, sm) = simulate(&p, &opts, None, &tick)
                .map_err(point_error(format!("kl_lambda d = {d} lambda_hat = {lh}")))?;
            let th = theory::kl_var_theorem(d, s.n, lh, cfg.t).map(|t| t.total);
            quad.push((lh, sm.kl_var_quad.mean / d as f64));
            if let Some(t) = th {
                theory_curve.push((lh, t / d as f64));
            }
            rows.push(vec![
                d.to_string(),
                s.n.to_string(),
                f(p.alpha()),
                f(lh),
                s.data_model.to_string(),
                s.sims.to_string(),
                f(sm.kl_var_quad.mean),
                f(sm.kl_var_quad.se),
                f(sm.kl_var.mean),
                f(sm.kl_var.se),
                f(sm.kl_mean.mean),
                th.map(f).unwrap_or_else(|| "nan".into()),
            ]);
        }
        curves.push(KlLambdaCurves {
            d,
            theory: theory_curve,
            quad,
        });
    }
    let table = Table {
        file: "kl_lambda.csv",
        header: &[
            "d",
            "n",
            "alpha",
            "lambda_hat",
            "data_model",
            "sims",
            "kl_var_quad_mean",
            "kl_var_quad_se",
            "kl_var_mean",
            "kl_var_se",
            "kl_mean_mean",
            "kl_var_theory",
        ],
        rows,
    };
    Ok((table, curves))
}

/// H² vs n with a band of 2 standard errors.
pub fn h2(
    cfg: &SweepConfig,
    progress: &ProgressBar,
) -> Result<(Table, Vec<BandCurve>), SweepError> {
    let s = &cfg.h2;
    let f = fmt_num;
    let tick = || progress.inc(1);
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &d in &cfg.dims {
        progress.set_message(format!("H2 vs n, d = {d}"));
        let mut points = Vec::new();
        let mut band = Vec::new();
        for &n in &s.n {
            let p = cfg.params(d, n, s.lambda_hat, s.data_model);
            let opts = SimOptions::new(s.sims, point_seed(cfg.seed, 3, d, n as u64));
            let (_, sm) = simulate(&p, &opts, None, &tick)
                .map_err(point_error(format!("h2 d = {d} n = {n}")))?;
            let (m, se) = (sm.hellinger2.mean, sm.hellinger2.se);
            points.push((n as f64, m));
            let se = if se.is_finite() { se } else { 0.0 };
            band.push((n as f64, m - 2.0 * se, m + 2.0 * se));
            rows.push(vec![
                d.to_string(),
                n.to_string(),
                f(n as f64 / d as f64),
                f(s.lambda_hat),
                s.data_model.to_string(),
                s.sims.to_string(),
                sm.singular.to_string(),
                f(m),
                f(sm.hellinger2.se),
                f(sm.kl_var.mean),
                f(sm.kl_var_quad.mean),
                f(sm.kl_mean.mean),
            ]);
        }
        curves.push(BandCurve { d, points, band });
    }
    let table = Table {
        file: "h2.csv",
        header: &[
            "d",
            "n",
            "n_over_d",
            "lambda_hat",
            "data_model",
            "sims",
            "singular",
            "hellinger2_mean",
            "hellinger2_se",
            "kl_var_mean",
            "kl_var_quad_mean",
            "kl_mean_mean",
        ],
        rows,
    };
    Ok((table, curves))
}

/// The original sets O of the P(Δ>0) sections: one per dimension (the seeds' protocol), those
/// of `dims` when `p_delta` runs and `p_delta_large.d`'s when that runs.
pub fn original_sets(
    cfg: &SweepConfig,
    progress: &ProgressBar,
) -> Result<Vec<(usize, OriginalSet)>, SweepError> {
    let s = &cfg.p_delta;
    let big_n = s.n_original;
    let mut dims: Vec<usize> = Vec::new();
    if s.enabled {
        dims.extend(&cfg.dims);
    }
    if cfg.p_delta_large.enabled && !dims.contains(&cfg.p_delta_large.d) {
        dims.push(cfg.p_delta_large.d);
    }
    let mut originals = Vec::new();
    for &d in &dims {
        progress.set_message(format!("original set, d = {d}, N = {big_n}"));
        let p = cfg.params(d, 2, s.lambda_hat, s.data_model);
        let o = OriginalSet::draw(&p, big_n, s.eps_rule, point_seed(cfg.seed, 4, d, 0))
            .map_err(point_error(format!("original set d = {d}")))?;
        originals.push((d, o));
    }
    Ok(originals)
}

const P_DELTA_HEADER: &[&str] = &[
    "d",
    "n",
    "n_over_d",
    "n_original",
    "lambda_hat",
    "data_model",
    "sims",
    "singular",
    "delta_pos",
    "p_delta_pos",
    "p_lo",
    "p_hi",
    "delta_rel_mean",
    "delta_rel_se",
    "hellinger2_mean",
];

/// One P(Δ>0) point: its summary and table row.
fn p_delta_point(
    cfg: &SweepConfig,
    originals: &[(usize, OriginalSet)],
    progress: &ProgressBar,
    d: usize,
    n: usize,
    sims: usize,
) -> Result<(Summary, Vec<String>), SweepError> {
    let s = &cfg.p_delta;
    let f = fmt_num;
    let tick = || progress.inc(1);
    let orig = &originals
        .iter()
        .find(|(x, _)| *x == d)
        .expect("drawn by original_sets")
        .1;
    let p = cfg.params(d, n, s.lambda_hat, s.data_model);
    let opts = SimOptions::new(sims, point_seed(cfg.seed, 5, d, n as u64));
    let (_, sm) = simulate(&p, &opts, Some(orig), &tick)
        .map_err(point_error(format!("p_delta d = {d} n = {n}")))?;
    let pd = sm.p_delta_pos.expect("original set given");
    let dr = sm.delta_rel.expect("original set given");
    let row = vec![
        d.to_string(),
        n.to_string(),
        f(n as f64 / d as f64),
        s.n_original.to_string(),
        f(s.lambda_hat),
        s.data_model.to_string(),
        sims.to_string(),
        sm.singular.to_string(),
        pd.k.to_string(),
        f(pd.p),
        f(pd.lo),
        f(pd.hi),
        f(dr.mean),
        f(dr.se),
        f(sm.hellinger2.mean),
    ];
    Ok((sm, row))
}

/// P(Δ>0) vs n/d with its 95% Wilson interval (`originals` from [`original_sets`]).
pub fn p_delta(
    cfg: &SweepConfig,
    originals: &[(usize, OriginalSet)],
    progress: &ProgressBar,
) -> Result<(Table, Vec<BandCurve>), SweepError> {
    let s = &cfg.p_delta;
    let big_n = s.n_original;
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for &d in &cfg.dims {
        progress.set_message(format!("P(Δ>0) vs n/d, d = {d}"));
        let mut points = Vec::new();
        let mut band = Vec::new();
        for &r in &s.n_over_d {
            let n = ((r * d as f64).round() as usize).clamp(2, big_n);
            let (sm, row) = p_delta_point(cfg, originals, progress, d, n, s.sims)?;
            let pd = sm.p_delta_pos.expect("original set given");
            let x = n as f64 / d as f64;
            points.push((x, pd.p));
            band.push((x, pd.lo, pd.hi));
            rows.push(row);
        }
        curves.push(BandCurve { d, points, band });
    }
    let table = Table {
        file: "p_delta.csv",
        header: P_DELTA_HEADER,
        rows,
    };
    Ok((table, curves))
}

/// P(Δ>0) as n approaches N (x = n/N) in dimension `p_delta_large.d`, on `p_delta`'s O.
pub fn p_delta_large(
    cfg: &SweepConfig,
    originals: &[(usize, OriginalSet)],
    progress: &ProgressBar,
) -> Result<(Table, BandCurve), SweepError> {
    let l = &cfg.p_delta_large;
    let big_n = cfg.p_delta.n_original;
    let d = l.d;
    progress.set_message(format!("P(Δ>0) as n -> N, d = {d}"));
    let mut rows = Vec::new();
    let mut points = Vec::new();
    let mut band = Vec::new();
    for &n in &l.n {
        let (sm, row) = p_delta_point(cfg, originals, progress, d, n, l.sims)?;
        let pd = sm.p_delta_pos.expect("original set given");
        let x = n as f64 / big_n as f64;
        points.push((x, pd.p));
        band.push((x, pd.lo, pd.hi));
        rows.push(row);
    }
    let table = Table {
        file: "p_delta_large.csv",
        header: P_DELTA_HEADER,
        rows,
    };
    Ok((table, BandCurve { d, points, band }))
}
