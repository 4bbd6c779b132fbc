//! `memdiff report DIR`: the aggregated table (CSV + Markdown), the calibrated verdicts and the
//! plots, from `results.csv` alone (so a fixture CSV gives a report too).
//!
//! The numbers come from `memdiff_metrics::summary` (groups = every settings column except
//! `sim` and `seed`): per group m simulations, P(Δ>0) with its Wilson 95 % interval, P(Δ_U>0)
//! with its interval, means ± standard errors of E_OG, E_TG, Δ, Δ_U, Ê_OG and Ê_TG (normalised
//! by the smallest n of the same settings), the mean NN memorized fraction, and for every
//! generator but the oracle the calibrated verdict (SPEC §4b): its Δ values against the oracle's
//! at the same (data, px, C, n, s) — same O and T draws — by a two-sided Mann–Whitney test;
//! "towards copying" when its Δ sits below the oracle's (copies have the lowest Δ), "away from
//! copying" when above, "indistinguishable" at p ≥ 0.05. η per (C, s, generator) from the
//! smallest and the largest n. This module lays them out (Markdown, CSV) and plots them.

use crate::row::SimRow;
use memdiff_metrics::summary::{self, GroupSummary};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::row::COLUMNS;

/// Significance level of the verdicts: the one of `memdiff_metrics` (`stats::ALPHA`).
pub use memdiff_metrics::stats::ALPHA;

/// One line of the aggregated table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReportRow {
    pub data: String,
    pub px: usize,
    pub protocol: String,
    pub bandwidth: String,
    pub dequantized: String,
    pub components: usize,
    pub n: usize,
    pub steps: usize,
    pub generator: String,
    pub sims: usize,
    pub k_delta_pos: usize,
    pub p_delta_pos: f64,
    pub p_delta_pos_lo: f64,
    pub p_delta_pos_hi: f64,
    pub k_delta_u_pos: usize,
    pub p_delta_u_pos: f64,
    pub p_delta_u_pos_lo: f64,
    pub p_delta_u_pos_hi: f64,
    pub mean_e_og: f64,
    pub se_e_og: f64,
    pub mean_e_tg: f64,
    pub se_e_tg: f64,
    pub mean_delta: f64,
    pub se_delta: f64,
    pub mean_delta_u: f64,
    pub se_delta_u: f64,
    pub e_og_hat: f64,
    pub e_tg_hat: f64,
    pub nn_frac_memorized: f64,
    /// Two-sided Mann–Whitney p-value of the model's Δ against the oracle's (model rows with an
    /// oracle at the same n only).
    pub vs_oracle_p: Option<f64>,
    /// Probability that a model Δ exceeds an oracle Δ (U / (m1 m2)); 0.5 = no shift.
    pub vs_oracle_auc: Option<f64>,
    pub verdict: String,
}

/// η per (data, px, protocol, C, s, generator) from the smallest and the largest n.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EtaRow {
    pub data: String,
    pub px: usize,
    pub protocol: String,
    pub components: usize,
    pub steps: usize,
    pub generator: String,
    pub n_small: usize,
    pub n_large: usize,
    pub e_og_small: f64,
    pub e_og_large: f64,
    /// `-ln(1 - E_OG(n_large)/E_OG(n_small))`; NaN when the ratio is not below 1.
    pub eta: f64,
}

/// Everything the report shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub rows: Vec<ReportRow>,
    pub eta: Vec<EtaRow>,
}

fn report_row(g: &GroupSummary) -> ReportRow {
    let k = &g.key;
    let (p, auc, verdict) = match &g.vs_oracle {
        Some(c) => (
            Some(c.test.p),
            Some(c.test.effect),
            format!("{} (p={})", c.verdict, fmt_p(c.test.p)),
        ),
        None if k.generator == "oracle" => (None, None, "(the null)".to_string()),
        None => (None, None, "no oracle rows to compare".to_string()),
    };
    ReportRow {
        data: k.data.clone(),
        px: k.px as usize,
        protocol: k.protocol.clone(),
        bandwidth: k.bandwidth.clone(),
        dequantized: k.dequantized.clone(),
        components: k.components as usize,
        n: k.n as usize,
        steps: k.steps as usize,
        generator: k.generator.clone(),
        sims: g.m,
        k_delta_pos: g.p_delta.k as usize,
        p_delta_pos: g.p_delta.p,
        p_delta_pos_lo: g.p_delta.lo,
        p_delta_pos_hi: g.p_delta.hi,
        k_delta_u_pos: g.p_delta_unbiased.k as usize,
        p_delta_u_pos: g.p_delta_unbiased.p,
        p_delta_u_pos_lo: g.p_delta_unbiased.lo,
        p_delta_u_pos_hi: g.p_delta_unbiased.hi,
        mean_e_og: g.e_og.mean,
        se_e_og: g.e_og.se,
        mean_e_tg: g.e_tg.mean,
        se_e_tg: g.e_tg.se,
        mean_delta: g.delta.mean,
        se_delta: g.delta.se,
        mean_delta_u: g.delta_unbiased.mean,
        se_delta_u: g.delta_unbiased.se,
        e_og_hat: g.ehat_og.mean,
        e_tg_hat: g.ehat_tg.mean,
        nn_frac_memorized: g.nn_frac_memorized.mean,
        vs_oracle_p: p,
        vs_oracle_auc: auc,
        verdict,
    }
}

/// Aggregates results rows into the report table and η (through
/// `memdiff_metrics::summary::{summarize, eta}`, the same numbers `memdiff eval summarize` gives).
pub fn aggregate(rows: &[SimRow]) -> Report {
    let groups = summary::summarize(rows);
    let mut out: Vec<ReportRow> = groups.iter().map(report_row).collect();
    // Table order: per (data, px, protocol, ..., C, n): model rows by s, then the references.
    out.sort_by(|a, b| {
        let ka = (
            &a.data,
            a.px,
            &a.protocol,
            &a.bandwidth,
            &a.dequantized,
            a.components,
            a.n,
        );
        let kb = (
            &b.data,
            b.px,
            &b.protocol,
            &b.bandwidth,
            &b.dequantized,
            b.components,
            b.n,
        );
        ka.cmp(&kb)
            .then(generator_rank(&a.generator).cmp(&generator_rank(&b.generator)))
            .then(a.generator.cmp(&b.generator))
            .then(a.steps.cmp(&b.steps))
    });
    let eta = summary::eta(&groups)
        .into_iter()
        .map(|e| EtaRow {
            data: e.key.data,
            px: e.key.px as usize,
            protocol: e.key.protocol,
            components: e.key.components as usize,
            steps: e.key.steps as usize,
            generator: e.key.generator,
            n_small: e.n_small as usize,
            n_large: e.n_large as usize,
            e_og_small: e.e_og_small,
            e_og_large: e.e_og_large,
            eta: e.eta.unwrap_or(f64::NAN),
        })
        .collect();
    Report { rows: out, eta }
}

fn generator_rank(g: &str) -> usize {
    match g {
        "model" => 0,
        "oracle" => 1,
        "copy" => 2,
        _ => 3,
    }
}

fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn fnum(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.3}")
    } else {
        format!("{x:.3e}")
    }
}

/// The report table as Markdown (what the terminal prints).
pub fn markdown(rep: &Report) -> String {
    let mut s = String::new();
    let mut last: Option<(String, usize, String, String, String)> = None;
    for r in &rep.rows {
        let head = (
            r.data.clone(),
            r.px,
            r.protocol.clone(),
            r.bandwidth.clone(),
            r.dequantized.clone(),
        );
        if last.as_ref() != Some(&head) {
            let _ = writeln!(
                s,
                "\n### data {}, px {}, protocol {}, bandwidth {}, dequantization {}\n",
                head.0, head.1, head.2, head.3, head.4
            );
            s.push_str("| C | n | s | generator | sims | P(Δ>0) [95 % CI] | P(Δ_U>0) [95 % CI] | mean Δ ± se | mean Δ_U ± se | Ê_OG | Ê_TG | NN memorized | model vs oracle |\n");
            s.push_str("| ---: | ---: | ---: | --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: | --- |\n");
            last = Some(head);
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2} [{:.2}, {:.2}] | {:.2} [{:.2}, {:.2}] | {} ± {} | {} ± {} | {} | {} | {} | {} |",
            r.components,
            r.n,
            if r.steps == 0 { "–".to_string() } else { r.steps.to_string() },
            r.generator,
            r.sims,
            r.p_delta_pos,
            r.p_delta_pos_lo,
            r.p_delta_pos_hi,
            r.p_delta_u_pos,
            r.p_delta_u_pos_lo,
            r.p_delta_u_pos_hi,
            fnum(r.mean_delta),
            fnum(r.se_delta),
            fnum(r.mean_delta_u),
            fnum(r.se_delta_u),
            fnum(r.e_og_hat),
            fnum(r.e_tg_hat),
            fnum(r.nn_frac_memorized),
            r.verdict
        );
    }
    if !rep.eta.is_empty() {
        s.push_str("\n### η = −ln(1 − E_OG(n_large) / E_OG(n_small)) (smaller is better)\n\n");
        s.push_str("| data | protocol | C | s | generator | n_small | n_large | E_OG(n_small) | E_OG(n_large) | η |\n");
        s.push_str("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for e in &rep.eta {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                e.data,
                e.protocol,
                e.components,
                if e.steps == 0 {
                    "–".to_string()
                } else {
                    e.steps.to_string()
                },
                e.generator,
                e.n_small,
                e.n_large,
                fnum(e.e_og_small),
                fnum(e.e_og_large),
                if e.eta.is_nan() {
                    "undefined (ratio ≥ 1)".to_string()
                } else {
                    fnum(e.eta)
                }
            );
        }
    }
    s.push_str(
        "\nRead P(Δ>0) against the oracle row at the same n (SPEC §4b): a generator that never saw T \
         has P(Δ>0) rising from ≈0.1 to ≈0.5 with n; copies stay near 0. Δ_U removes that offset \
         (oracle ≈ 0.5 at every n). The verdict is a two-sided Mann–Whitney test of the model's Δ \
         against the oracle's on the same O and T draws.\n",
    );
    if rep.rows.iter().any(|r| r.protocol == "papers-code") {
        s.push_str(
            "\nUnder the papers-code protocol O, T and G sit on different scales (SPEC §5): every \
             reference generator, copy included, gets P(Δ>0) ≈ 1, so the copy's Δ is not below \
             the oracle's and the verdicts' \"towards/away from copying\" does not apply there.\n",
        );
    }
    s
}

/// Errors of the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Write(#[from] memdiff_data::atomic::WriteError),
    #[error(transparent)]
    Plot(#[from] memdiff_plot::PlotError),
    #[error("saved samples: {0}")]
    Samples(String),
    #[error("{0}: no rows to report (has the sweep finished any simulation?)")]
    Empty(PathBuf),
}

/// Writes `report/summary.csv`, `summary.md`, `eta.csv` and the plots under `out`; returns the
/// Markdown and the written files.
pub fn write_report(
    rows: &[SimRow],
    out: &Path,
    samples: Option<&Path>,
) -> Result<(String, Vec<PathBuf>), ReportError> {
    if rows.is_empty() {
        return Err(ReportError::Empty(out.to_path_buf()));
    }
    let rep = aggregate(rows);
    let md = markdown(&rep);
    let mut files = Vec::new();
    let p = out.join("summary.csv");
    memdiff_data::atomic::write_bytes(&p, &to_csv(&rep.rows))?;
    files.push(p);
    let p = out.join("eta.csv");
    memdiff_data::atomic::write_bytes(&p, &to_csv(&rep.eta))?;
    files.push(p);
    let p = out.join("summary.md");
    memdiff_data::atomic::write_bytes(&p, format!("# memdiff sweep report\n{md}").as_bytes())?;
    files.push(p);
    files.extend(crate::plots::plot_all(&rep, out)?);
    if let Some(dir) = samples {
        files.extend(crate::plots::sample_grids(dir, out)?);
    }
    Ok((md, files))
}

fn to_csv<T: serde::Serialize>(rows: &[T]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).expect("memory write");
    }
    w.into_inner().expect("memory write")
}
