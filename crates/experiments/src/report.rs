//! `memdiff report DIR`: the aggregated table (CSV + Markdown), the calibrated verdicts and the
//! plots, from `results.csv` alone (so a fixture CSV gives a report too).
//!
//! The numbers come from `memdiff_metrics::summary` (groups = every settings column except
//! `sim` and `seed`): per group m simulations, P(Δ>0) with its Wilson 95 % interval, P(Δ_U>0)
//! with its interval, means ± standard errors of E_OG, E_TG, Δ, Δ_U, Ê_OG and Ê_TG (normalised
//! by the smallest n of the same settings), the mean NN memorized fraction, and for every
//! generator but the oracle the calibrated verdict (docs/METHOD.md §4b): its Δ values against the oracle's
//! at the same (data, px, C, n, s) — same O and T draws — by a two-sided Mann–Whitney test;
//! "towards copying" when its Δ sits below the oracle's (copies have the lowest Δ), "away from
//! copying" when above, "indistinguishable" at p ≥ 0.05, "cannot decide" when the two groups are
//! too small for any p below 0.05 (2 simulations against 2: p ≥ 0.245 whatever the values). η per (C, s, generator) from the
//! smallest and the largest n. This module lays them out (Markdown, CSV) and plots them.

use crate::row::SimRow;
use crate::trajectory::{self, Trajectory};
use memdiff_metrics::summary::{self, GroupSummary, VerdictRule};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::row::COLUMNS;

/// Significance level of the verdicts: the one of `memdiff_metrics` (`stats::ALPHA`).
pub use memdiff_metrics::stats::ALPHA;

/// (data, px, protocol, bandwidth, dequantized, C, n, s, generator, sampler).
type FinalKey = (
    String,
    usize,
    String,
    String,
    String,
    usize,
    usize,
    usize,
    String,
    String,
);

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
    /// Optimizer step of the training snapshot (0 for reference generators).
    pub train_step: u64,
    /// How the model was sampled (`-` for reference generators).
    pub sampler: String,
    /// Whether this is the last snapshot of its (settings, n): the row the main table and the
    /// P(Δ>0)-versus-n figures show.
    pub final_snapshot: bool,
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
    /// f_mem pooled over the group's generated samples, with its Wilson 95 % interval.
    pub f_mem: f64,
    pub f_mem_lo: f64,
    pub f_mem_hi: f64,
    /// Mean E_OG over the oracle's at the same settings (NaN for the oracle or without one).
    pub e_og_vs_oracle: f64,
    /// Mean quality of the group's samples against O's first rows (docs/METHOD.md §4.9): Fréchet
    /// distance, KID, k-NN precision / recall, density / coverage (NaN when not measured).
    pub frechet: f64,
    pub kid: f64,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
    /// The oracle's mean precision at the same settings (the reading's null; NaN without it).
    pub oracle_precision: f64,
    /// Mean Fréchet distance over the oracle's (NaN without it).
    pub frechet_vs_oracle: f64,
    /// The three-way reading of a model row: copying, generalizing or not yet trained.
    pub reading: String,
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
    /// Memorization along training (sweeps with several snapshots only).
    pub trajectories: Vec<Trajectory>,
    /// s as an axis (several s or samplers along training) and η per snapshot.
    pub s_axes: Vec<crate::axes::SAxis>,
    pub eta_steps: Vec<crate::axes::EtaPoint>,
    pub rule: VerdictRule,
}

fn report_row(g: &GroupSummary) -> ReportRow {
    let k = &g.key;
    let (p, auc, verdict) = match &g.vs_oracle {
        Some(c) if c.verdict == summary::CANNOT_DECIDE => (
            Some(c.test.p),
            Some(c.test.effect),
            format!(
                "cannot decide: with m = {} the test gives p ≥ {} whatever the values",
                g.m,
                fmt_p(c.min_p)
            ),
        ),
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
        train_step: k.train_step,
        sampler: k.sampler.clone(),
        final_snapshot: true,
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
        f_mem: g.f_mem.p,
        f_mem_lo: g.f_mem.lo,
        f_mem_hi: g.f_mem.hi,
        e_og_vs_oracle: g.e_og_vs_oracle.unwrap_or(f64::NAN),
        frechet: g.quality.frechet.mean,
        kid: g.quality.kid.mean,
        precision: g.quality.precision.mean,
        recall: g.quality.recall.mean,
        density: g.quality.density.mean,
        coverage: g.quality.coverage.mean,
        oracle_precision: g.oracle_precision.unwrap_or(f64::NAN),
        frechet_vs_oracle: g.frechet_vs_oracle.unwrap_or(f64::NAN),
        reading: g.verdict.map_or("–".into(), |v| v.to_string()),
        vs_oracle_p: p,
        vs_oracle_auc: auc,
        verdict,
    }
}

/// Aggregates results rows into the report table and η (through
/// `memdiff_metrics::summary::{summarize, eta}`, the same numbers `memdiff eval summarize` gives).
pub fn aggregate(rows: &[SimRow], rule: &VerdictRule) -> Report {
    let groups = summary::summarize_with(rows, rule);
    let mut out: Vec<ReportRow> = groups.iter().map(report_row).collect();
    // Only the last snapshot of each (settings, n) goes into the main table and P-vs-n figures.
    let mut last: std::collections::BTreeMap<FinalKey, u64> = Default::default();
    let key = |r: &ReportRow| {
        (
            r.data.clone(),
            r.px,
            r.protocol.clone(),
            r.bandwidth.clone(),
            r.dequantized.clone(),
            r.components,
            r.n,
            r.steps,
            r.generator.clone(),
            r.sampler.clone(),
        )
    };
    for r in &out {
        let e = last.entry(key(r)).or_insert(r.train_step);
        *e = (*e).max(r.train_step);
    }
    for r in &mut out {
        r.final_snapshot = last[&key(r)] == r.train_step;
    }
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
            .then(a.train_step.cmp(&b.train_step))
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
    let trajectories = trajectory::trajectories(rows, &groups, rule);
    let s_axes = crate::axes::s_axis(&trajectories);
    let eta_steps = crate::axes::eta_along_training(&groups);
    Report {
        rows: out,
        eta,
        trajectories,
        s_axes,
        eta_steps,
        rule: *rule,
    }
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
    let cf = rep.rule.copy_fraction;
    let tol = (rep.rule.quality_tolerance * 100.0).round();
    let ptol = (rep.rule.frechet_tolerance * 100.0).round();
    let mut s = String::new();
    let mut last: Option<(String, usize, String, String, String)> = None;
    for r in rep.rows.iter().filter(|r| r.final_snapshot) {
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
            s.push_str("| C | n | s | step | generator | sims | P(Δ>0) [95 % CI] | P(Δ_U>0) [95 % CI] | mean Δ ± se | mean Δ_U ± se | Ê_OG | E_OG / oracle | precision · recall | Fréchet / oracle | f_mem [95 % CI] | Δ vs oracle | reading |\n");
            s.push_str("| ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- | --- | ---: | ---: | --- | ---: | --- | --- | --- |\n");
            last = Some(head);
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2} [{:.2}, {:.2}] | {:.2} [{:.2}, {:.2}] | {} ± {} | {} ± {} | {} | {} | {} | {} | {} | {} | {} |",
            r.components,
            r.n,
            if r.steps == 0 { "–".to_string() } else { r.steps.to_string() },
            if r.train_step == 0 { "–".to_string() } else { r.train_step.to_string() },
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
            fnum(r.e_og_vs_oracle),
            if r.precision.is_nan() {
                "–".to_string()
            } else {
                format!("{:.2} · {:.2}", r.precision, r.recall)
            },
            fnum(r.frechet_vs_oracle),
            if r.f_mem.is_nan() {
                "–".to_string()
            } else {
                format!("{:.2} [{:.2}, {:.2}]", r.f_mem, r.f_mem_lo, r.f_mem_hi)
            },
            r.verdict,
            r.reading
        );
    }
    for t in &rep.trajectories {
        trajectory_markdown(&mut s, t, &rep.rule);
    }
    axes_markdown(&mut s, rep);
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
    s.push_str(&format!(
        "\nRead P(Δ>0) against the oracle row at the same n (docs/METHOD.md §4b): a generator that never saw T \
         has P(Δ>0) rising from ≈0.1 to ≈0.5 with n; copies stay near 0. Δ_U removes that offset \
         (oracle ≈ 0.5 at every n). \"Δ vs oracle\" is a two-sided Mann–Whitney test of the model's Δ \
         against the oracle's on the same O and T draws (\"cannot decide\" when the groups are too \
         small for any p below 0.05); it cannot see sample quality, so the reading adds the \
         data's quality: the Fréchet distance of the samples' Gaussian fit to O's (pixel space, \
         docs/METHOD.md §4.9) within {ptol} % of the oracle's, or, for results without it, E_OG \
         within {tol} % of the oracle's. Copying: f_mem ≥ {cf}, or Δ towards copying at the \
         data's quality; generalizing: not copying, at the data's quality; not yet trained: \
         further from the data (whatever Δ says). E_OG / oracle and the k-NN precision · recall \
         (k = 3) are shown beside it. f_mem is the fraction of generated samples whose nearest training image is \
         closer than a third of the second nearest (d1/d2 < 1/3). docs/METHOD.md §4b, §7.\n",
    ));
    if rep.rows.iter().any(|r| r.protocol == "papers-code") {
        s.push_str(
            "\nUnder the papers-code protocol O, T and G sit on different scales (docs/METHOD.md §5): every \
             reference generator, copy included, gets P(Δ>0) ≈ 1, so the copy's Δ is not below \
             the oracle's and the verdicts' \"towards/away from copying\" does not apply there.\n",
        );
    }
    s
}

fn opt_step(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.0}"))
}

/// The s-axis sections (quality and f_mem against s per n, the answer per n) and η along
/// training against C.
fn axes_markdown(s: &mut String, rep: &Report) {
    let mut last_key = None;
    for a in &rep.s_axes {
        if last_key != Some(&a.key) {
            last_key = Some(&a.key);
            let _ = writeln!(
                s,
                "\n### Diffusion steps s along training: {} (protocol {})\n\nEach network trained and sampled with its own s, read at its budget (the last snapshot): f_mem [95 % CI] · Fréchet/oracle · E_OG/oracle · reading, and the onsets. The answer per n: the s with the best quality (smallest Fréchet distance over the oracle's) among those whose samples do not copy.\n",
                a.key.label(),
                a.key.protocol
            );
            s.push_str("| n | s | step | f_mem [95 % CI] | Fréchet / oracle | E_OG / oracle | reading | τ_onset | τ_mem |\n| ---: | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |\n");
        }
        let plain = crate::axes::plain_sampler(&a.points);
        for (i, p) in a.points.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {:.2} [{:.2}, {:.2}] | {} | {} | {} | {} | {} |",
                a.n,
                p.name(&plain),
                if a.best == Some(i) { " **best**" } else { "" },
                p.train_step,
                p.f_mem,
                p.f_mem_lo,
                p.f_mem_hi,
                fnum(p.frechet_vs_oracle),
                fnum(p.e_og_vs_oracle),
                p.reading,
                opt_step(p.tau_onset),
                opt_step(p.tau_mem)
            );
        }
    }
    if !rep.s_axes.is_empty() {
        s.push('\n');
        for a in &rep.s_axes {
            let _ = writeln!(s, "- {}", a.answer);
        }
    }
    // η along training: only where the sweep has several C (seed 000's "η grows with C").
    let cs: std::collections::BTreeSet<u32> =
        rep.eta_steps.iter().map(|e| e.key.components).collect();
    if cs.len() >= 2 {
        s.push_str("\n### η along training against C\n\nη = −ln(1 − E_OG(n_large) / E_OG(n_small)) at each snapshot step (smaller is better), 95 % interval from the two means' standard errors (delta method):\n\n| data | C | s | step | n_small | n_large | E_OG(n_small) | E_OG(n_large) | η [95 % CI] |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
        for e in &rep.eta_steps {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                e.key.data,
                e.key.components,
                e.s,
                e.train_step,
                e.n_small,
                e.n_large,
                fnum(e.e_og_small),
                fnum(e.e_og_large),
                if e.eta.is_nan() {
                    "undefined (ratio ≥ 1)".to_string()
                } else {
                    format!("{:.3} [{:.3}, {:.3}]", e.eta, e.lo, e.hi)
                }
            );
        }
    }
}

/// The "memorization along training" section of one family.
fn trajectory_markdown(s: &mut String, t: &Trajectory, rule: &VerdictRule) {
    let f = &t.family;
    let _ = writeln!(
        s,
        "\n### Memorization along training: {} (protocol {})\n",
        f.label(),
        f.protocol
    );
    let mut steps: Vec<u64> = t.cells.iter().map(|c| c.train_step).collect();
    steps.sort_unstable();
    steps.dedup();
    let cell_text = |c: &trajectory::Cell| {
        format!(
            "{:.2} [{:.2}, {:.2}] · {} · {} · {} · {}",
            c.f_mem,
            c.f_mem_lo,
            c.f_mem_hi,
            fnum(c.e_og_vs_oracle),
            fnum(c.frechet_vs_oracle),
            if c.precision.is_nan() {
                "–".to_string()
            } else {
                format!("{:.2} ({})", c.precision, fnum(c.oracle_precision))
            },
            c.verdict
        )
    };
    let mut ns: Vec<u64> = t.cells.iter().map(|c| c.n).collect();
    ns.dedup();
    let probed = t.cells.iter().any(|c| c.probe[0].0.is_finite());
    if t.shared_steps && !probed {
        let _ = writeln!(
            s,
            "f_mem [95 % CI] · E_OG/oracle · Fréchet/oracle · precision (oracle's) · reading, per training-set size n (rows) and optimizer step (columns):\n"
        );
        s.push_str("| n |");
        for st in &steps {
            let _ = write!(s, " {st} |");
        }
        s.push_str("\n| ---: |");
        for _ in &steps {
            s.push_str(" --- |");
        }
        s.push('\n');
        for &n in &ns {
            let _ = write!(s, "| {n} |");
            for st in &steps {
                match t.cells.iter().find(|c| c.n == n && c.train_step == *st) {
                    Some(c) => {
                        let _ = write!(s, " {} |", cell_text(c));
                    }
                    None => s.push_str(" – |"),
                }
            }
            s.push('\n');
        }
    } else {
        // Each n at its own snapshots (budgets that grow with n), or with the loss probe: one
        // row per (n, step).
        let _ = writeln!(
            s,
            "Per training-set size n and optimizer step: f_mem [95 % CI] · E_OG/oracle · Fréchet/oracle · precision (oracle's) · reading{}:\n",
            if probed {
                "; the loss probe at ᾱ ≈ 0.98: denoising loss on the n training images and on held-out images (± s.e.), and their gap"
            } else {
                ""
            }
        );
        s.push_str(
            "| n | step | step / n | f_mem · E_OG/oracle · Fréchet/oracle · precision · reading |",
        );
        if probed {
            s.push_str(" train loss | held-out loss | gap |");
        }
        s.push_str("\n| ---: | ---: | ---: | --- |");
        if probed {
            s.push_str(" ---: | ---: | ---: |");
        }
        s.push('\n');
        for c in &t.cells {
            let _ = write!(
                s,
                "| {} | {} | {:.1} | {} |",
                c.n,
                c.train_step,
                c.train_step as f64 / c.n as f64,
                cell_text(c)
            );
            if probed {
                let (tr, tr_se, ho, ho_se) = c.probe[0];
                let (gap, gap_se) = c.gap();
                let _ = write!(
                    s,
                    " {tr:.4} ± {tr_se:.4} | {ho:.4} ± {ho_se:.4} | {gap:+.4} ± {gap_se:.4} |"
                );
            }
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "\nOnsets: τ_onset = first step with f_mem ≥ {} (where f_mem leaves 0), τ_mem = first step with f_mem ≥ {} (both log-interpolated between snapshots; 95 % bootstrap over simulations), τ_gen = first snapshot at the data's quality (Fréchet ≤ {:.2} × the oracle's; without it: E_OG ≤ {:.2} × the oracle's); the loss gap's onset = first snapshot whose held-out minus training denoising loss at ᾱ ≈ 0.98 exceeds {} s.e.\n",
        t.onset_fraction,
        t.threshold,
        1.0 + rule.frechet_tolerance,
        1.0 + rule.quality_tolerance,
        trajectory::GAP_Z
    );
    let _ = writeln!(
        s,
        "| n | sims | budget | τ_onset [95 % CI] | τ_onset / n | τ_mem [95 % CI] | τ_gen | τ_onset ≥ {} τ_gen | loss-gap onset | f_mem at the last step |\n| ---: | ---: | ---: | --- | ---: | --- | ---: | :---: | ---: | ---: |",
        trajectory::BEYOND_GEN
    );
    let tau_text = |v: Option<f64>, lo: Option<f64>, hi: Option<f64>, last: u64| match v {
        Some(v) => format!(
            "{v:.0} [{}, {}]",
            opt_step(lo),
            hi.map_or("not reached".into(), |x| format!("{x:.0}"))
        ),
        None => format!("not reached by step {last}"),
    };
    for o in &t.onsets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            o.n,
            o.sims,
            o.last_step,
            tau_text(o.tau_onset, o.tau_onset_lo, o.tau_onset_hi, o.last_step),
            o.tau_onset
                .map_or("–".into(), |v| format!("{:.1}", v / o.n as f64)),
            tau_text(o.tau_mem, o.tau_mem_lo, o.tau_mem_hi, o.last_step),
            o.tau_gen.map_or("not reached".into(), |v| v.to_string()),
            if o.beyond_gen { "yes" } else { "no" },
            o.gap_onset.map_or("–".into(), |v| v.to_string()),
            o.f_mem_final
        );
    }
    let slope_line = |name: &str, sl: &Option<trajectory::Slope>, over: &str| {
        match sl {
        Some(sl) => format!(
            "- {name} ∝ n^a: a = {:.2} [{:.2}, {:.2}] (least squares in log–log over {} values of n{over}; 95 % bootstrap).\n",
            sl.slope, sl.lo, sl.hi, sl.points
        ),
        None => format!("- {name} ∝ n^a: fewer than two n{over}, no slope.\n"),
    }
    };
    s.push('\n');
    s.push_str(&slope_line(
        "τ_onset",
        &t.slope_onset,
        &format!(", those with τ_onset ≥ {} τ_gen", trajectory::BEYOND_GEN),
    ));
    s.push_str(&slope_line(
        "τ_onset",
        &t.slope_onset_all,
        " that reached it",
    ));
    s.push_str(&slope_line(
        "τ_mem (f_mem ≥ copy fraction)",
        &t.slope,
        " that reached it",
    ));
    s.push_str("\nBonnaire et al. (2025) find τ_onset ∝ n (a = 1) where τ_onset ≫ τ_gen.\n");
    if !t.shared_steps {
        // Each n at its own steps: no step has every n.
        return;
    }
    s.push_str("\nEMM (largest n with f_mem ≥ 0.9, Gu et al. 2025) per step: ");
    let e: Vec<String> = t
        .emm
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.train_step,
                e.emm.map_or("–".into(), |v| v.to_string())
            )
        })
        .collect();
    s.push_str(&e.join(", "));
    s.push('\n');
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

/// Aggregates `rows` and writes the tables under `out`: `summary.csv`, `eta.csv` and, with
/// snapshots, `trajectory.csv` and `onsets.csv`. Returns the aggregate (for the figures,
/// [`crate::plots`]), its Markdown (for `summary.md`) and the written files. The whole report
/// (figures, pair section, `summary.md`, `index.html`) is [`crate::run::report_rows`].
pub fn write_tables(
    rows: &[SimRow],
    out: &Path,
    rule: &VerdictRule,
) -> Result<(Report, String, Vec<PathBuf>), ReportError> {
    if rows.is_empty() {
        return Err(ReportError::Empty(out.to_path_buf()));
    }
    let rep = aggregate(rows, rule);
    let md = markdown(&rep);
    let mut files = Vec::new();
    let p = out.join("summary.csv");
    memdiff_data::atomic::write_bytes(&p, &to_csv(&rep.rows))?;
    files.push(p);
    let p = out.join("eta.csv");
    memdiff_data::atomic::write_bytes(&p, &to_csv(&rep.eta))?;
    files.push(p);
    if !rep.trajectories.is_empty() {
        let cells: Vec<_> = rep
            .trajectories
            .iter()
            .flat_map(|t| t.cells.iter().map(move |c| (t.family.label(), c)))
            .map(|(family, c)| TrajectoryCsv {
                family,
                n: c.n,
                train_step: c.train_step,
                sims: c.sims,
                f_mem: c.f_mem,
                f_mem_lo: c.f_mem_lo,
                f_mem_hi: c.f_mem_hi,
                e_og_vs_oracle: c.e_og_vs_oracle,
                mean_delta_u: c.mean_delta_u,
                frechet: c.frechet,
                precision: c.precision,
                recall: c.recall,
                oracle_precision: c.oracle_precision,
                frechet_vs_oracle: c.frechet_vs_oracle,
                reading: c.verdict.clone(),
                loss_train_a98: c.probe[0].0,
                loss_train_a98_se: c.probe[0].1,
                loss_held_a98: c.probe[0].2,
                loss_held_a98_se: c.probe[0].3,
                loss_train_a80: c.probe[1].0,
                loss_train_a80_se: c.probe[1].1,
                loss_held_a80: c.probe[1].2,
                loss_held_a80_se: c.probe[1].3,
                loss_train_a50: c.probe[2].0,
                loss_train_a50_se: c.probe[2].1,
                loss_held_a50: c.probe[2].2,
                loss_held_a50_se: c.probe[2].3,
            })
            .collect();
        let p = out.join("trajectory.csv");
        memdiff_data::atomic::write_bytes(&p, &to_csv(&cells))?;
        files.push(p);
        let onsets: Vec<_> = rep
            .trajectories
            .iter()
            .flat_map(|t| t.onsets.iter().map(move |o| (t, o)))
            .map(|(t, o)| OnsetCsv {
                family: t.family.label(),
                n: o.n,
                sims: o.sims,
                tau_mem: o.tau_mem.unwrap_or(f64::NAN),
                tau_mem_lo: o.tau_mem_lo.unwrap_or(f64::NAN),
                tau_mem_hi: o.tau_mem_hi.unwrap_or(f64::NAN),
                tau_gen: o.tau_gen.map_or(f64::NAN, |v| v as f64),
                f_mem_final: o.f_mem_final,
                slope: t.slope.as_ref().map_or(f64::NAN, |s| s.slope),
                slope_lo: t.slope.as_ref().map_or(f64::NAN, |s| s.lo),
                slope_hi: t.slope.as_ref().map_or(f64::NAN, |s| s.hi),
                budget: o.last_step,
                tau_onset: o.tau_onset.unwrap_or(f64::NAN),
                tau_onset_lo: o.tau_onset_lo.unwrap_or(f64::NAN),
                tau_onset_hi: o.tau_onset_hi.unwrap_or(f64::NAN),
                onset_beyond_gen: o.beyond_gen,
                loss_gap_onset: o.gap_onset.map_or(f64::NAN, |v| v as f64),
                onset_slope: t.slope_onset.as_ref().map_or(f64::NAN, |s| s.slope),
                onset_slope_lo: t.slope_onset.as_ref().map_or(f64::NAN, |s| s.lo),
                onset_slope_hi: t.slope_onset.as_ref().map_or(f64::NAN, |s| s.hi),
                onset_slope_all: t.slope_onset_all.as_ref().map_or(f64::NAN, |s| s.slope),
                onset_slope_all_lo: t.slope_onset_all.as_ref().map_or(f64::NAN, |s| s.lo),
                onset_slope_all_hi: t.slope_onset_all.as_ref().map_or(f64::NAN, |s| s.hi),
            })
            .collect();
        let p = out.join("onsets.csv");
        memdiff_data::atomic::write_bytes(&p, &to_csv(&onsets))?;
        files.push(p);
    }
    if !rep.s_axes.is_empty() {
        let rows: Vec<_> = rep
            .s_axes
            .iter()
            .flat_map(|a| {
                a.points.iter().enumerate().map(move |(i, p)| SAxisCsv {
                    data: a.key.data.clone(),
                    px: a.key.px,
                    protocol: a.key.protocol.clone(),
                    components: a.key.components,
                    n: a.n,
                    s: p.s,
                    sampler: p.sampler.clone(),
                    train_step: p.train_step,
                    f_mem: p.f_mem,
                    f_mem_lo: p.f_mem_lo,
                    f_mem_hi: p.f_mem_hi,
                    frechet_vs_oracle: p.frechet_vs_oracle,
                    e_og_vs_oracle: p.e_og_vs_oracle,
                    reading: p.reading.clone(),
                    tau_onset: p.tau_onset.unwrap_or(f64::NAN),
                    tau_mem: p.tau_mem.unwrap_or(f64::NAN),
                    best: a.best == Some(i),
                })
            })
            .collect();
        let p = out.join("s_axis.csv");
        memdiff_data::atomic::write_bytes(&p, &to_csv(&rows))?;
        files.push(p);
    }
    if !rep.eta_steps.is_empty() {
        let p = out.join("eta_along_training.csv");
        let rows: Vec<_> = rep
            .eta_steps
            .iter()
            .map(|e| EtaStepCsv {
                data: e.key.data.clone(),
                px: e.key.px,
                protocol: e.key.protocol.clone(),
                components: e.key.components,
                s: e.s,
                sampler: e.sampler.clone(),
                train_step: e.train_step,
                n_small: e.n_small,
                n_large: e.n_large,
                e_og_small: e.e_og_small,
                e_og_large: e.e_og_large,
                eta: e.eta,
                eta_lo: e.lo,
                eta_hi: e.hi,
            })
            .collect();
        memdiff_data::atomic::write_bytes(&p, &to_csv(&rows))?;
        files.push(p);
    }
    Ok((rep, md, files))
}

/// One row of `trajectory.csv`.
#[derive(serde::Serialize)]
struct TrajectoryCsv {
    family: String,
    n: u64,
    train_step: u64,
    sims: usize,
    f_mem: f64,
    f_mem_lo: f64,
    f_mem_hi: f64,
    e_og_vs_oracle: f64,
    mean_delta_u: f64,
    frechet: f64,
    precision: f64,
    recall: f64,
    oracle_precision: f64,
    frechet_vs_oracle: f64,
    reading: String,
    loss_train_a98: f64,
    loss_train_a98_se: f64,
    loss_held_a98: f64,
    loss_held_a98_se: f64,
    loss_train_a80: f64,
    loss_train_a80_se: f64,
    loss_held_a80: f64,
    loss_held_a80_se: f64,
    loss_train_a50: f64,
    loss_train_a50_se: f64,
    loss_held_a50: f64,
    loss_held_a50_se: f64,
}

/// One row of `onsets.csv` (NaN: not reached / undefined).
#[derive(serde::Serialize)]
struct OnsetCsv {
    family: String,
    n: u64,
    sims: usize,
    tau_mem: f64,
    tau_mem_lo: f64,
    tau_mem_hi: f64,
    tau_gen: f64,
    f_mem_final: f64,
    slope: f64,
    slope_lo: f64,
    slope_hi: f64,
    budget: u64,
    tau_onset: f64,
    tau_onset_lo: f64,
    tau_onset_hi: f64,
    onset_beyond_gen: bool,
    loss_gap_onset: f64,
    onset_slope: f64,
    onset_slope_lo: f64,
    onset_slope_hi: f64,
    onset_slope_all: f64,
    onset_slope_all_lo: f64,
    onset_slope_all_hi: f64,
}

/// One row of `s_axis.csv`.
#[derive(serde::Serialize)]
struct SAxisCsv {
    data: String,
    px: u32,
    protocol: String,
    components: u32,
    n: u64,
    s: u32,
    sampler: String,
    train_step: u64,
    f_mem: f64,
    f_mem_lo: f64,
    f_mem_hi: f64,
    frechet_vs_oracle: f64,
    e_og_vs_oracle: f64,
    reading: String,
    tau_onset: f64,
    tau_mem: f64,
    best: bool,
}

/// One row of `eta_along_training.csv`.
#[derive(serde::Serialize)]
struct EtaStepCsv {
    data: String,
    px: u32,
    protocol: String,
    components: u32,
    s: u32,
    sampler: String,
    train_step: u64,
    n_small: u64,
    n_large: u64,
    e_og_small: f64,
    e_og_large: f64,
    eta: f64,
    eta_lo: f64,
    eta_hi: f64,
}

fn to_csv<T: serde::Serialize>(rows: &[T]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).expect("memory write");
    }
    w.into_inner().expect("memory write")
}
