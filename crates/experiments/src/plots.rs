//! The report's figures (SVG + PNG through `memdiff_plot`), one set per
//! (data, px, protocol, bandwidth, dequantization, C):
//! - `p_delta_vs_n`: P(Δ>0) vs n with Wilson 95 % bands, one line per s, the oracle and copy
//!   null curves beside (dashed), and markers where the model differs from the oracle;
//! - `p_delta_u_vs_n`: the same for the unbiased Δ_U;
//! - `e_og_hat_vs_n`: Ê_OG vs n (log–log);
//! - `eta_vs_c`: η vs C, one line per s (one file per data/protocol);
//! - `samples_*`: generated images beside their nearest training images, one row per n;
//!
//! and, for sweeps with training snapshots, one set per (data, px, protocol, C, s, sampler):
//! - `f_mem_vs_step`: f_mem against the optimizer step, one line per n, Wilson bands, log x;
//! - `phase`: the phase diagram, f_mem over (step, n) as a heat map, each cell with f_mem, E_OG
//!   over the oracle's and the reading (C copying, G generalizing, U not yet trained), copying
//!   cells framed;
//! - `tau_mem_vs_n`: τ_mem against n (log–log) with bootstrap intervals, the fitted power law
//!   and the slope-1 reference line.
//!
//! and, for sweeps with `pair = true`, one per (data, px, protocol, C, s):
//! - `pair_vs_n`: three panels — the two networks' paired similarity against n (95 % band,
//!   floor and copy level dashed), f_mem against n, mean Δ_U against n — at the last snapshot;
//! - `pair_vs_step` (with 2 or more snapshots): the same three against the optimizer step, one
//!   line per n.
//!
//! The P(Δ>0)-versus-n figures use the last snapshot of each n.

use crate::report::{Report, ReportError, ReportRow, ALPHA};
use crate::trajectory::Trajectory;
use memdiff_metrics::summary::ProbeLevel;
use memdiff_plot::{HeatMap, LegendPos, LinePlot, Series};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type PanelKey = (String, usize, String, String, String, usize);

fn panel_key(r: &ReportRow) -> PanelKey {
    (
        r.data.clone(),
        r.px,
        r.protocol.clone(),
        r.bandwidth.clone(),
        r.dequantized.clone(),
        r.components,
    )
}

fn file_stem(k: &PanelKey, what: &str) -> String {
    let mut s = format!("{what}_{}_px{}_c{}", k.0, k.1, k.5);
    if k.2 != "default" {
        s.push_str(&format!("_{}", k.2));
    }
    if k.4 != "none" {
        s.push_str(&format!("_deq-{}", k.4));
    }
    if k.3 != "std-over-n" {
        let b: String =
            k.3.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
        s.push_str(&format!("_bw-{b}"));
    }
    s
}

/// Series label of a generator line.
fn label(r: &ReportRow) -> String {
    if r.generator == "model" {
        format!("model s={}", r.steps)
    } else {
        format!("{} (null)", r.generator)
    }
}

/// Lines per generator/steps of one panel, sorted by n.
fn lines<'a>(rows: &[&'a ReportRow]) -> BTreeMap<(usize, usize, String), Vec<&'a ReportRow>> {
    let mut by: BTreeMap<(usize, usize, String), Vec<&ReportRow>> = BTreeMap::new();
    for r in rows {
        let rank = match r.generator.as_str() {
            "model" => 0,
            "oracle" => 1,
            "copy" => 2,
            _ => 3,
        };
        by.entry((rank, r.steps, r.generator.clone()))
            .or_default()
            .push(r);
    }
    for v in by.values_mut() {
        v.sort_by_key(|r| r.n);
    }
    by
}

fn p_plot(k: &PanelKey, rows: &[&ReportRow], unbiased: bool) -> LinePlot {
    let sym = if unbiased { "Δ_U" } else { "Δ" };
    let mut p = LinePlot::new(
        format!(
            "P({sym}>0) vs n — {} px {} C={} ({} protocol)",
            k.0, k.1, k.5, k.2
        ),
        "training-set size n",
        format!("P({sym} > 0), Wilson 95 %"),
    );
    p.log_x = true;
    p.y_range = Some((-0.02, 1.02));
    p.legend = LegendPos::UpperLeft;
    let mut markers: Vec<(f64, f64)> = Vec::new();
    for (i, ((rank, _, _), v)) in lines(rows).into_iter().enumerate() {
        let pts: Vec<(f64, f64)> = v
            .iter()
            .map(|r| {
                let y = if unbiased {
                    r.p_delta_u_pos
                } else {
                    r.p_delta_pos
                };
                (r.n as f64, y)
            })
            .collect();
        let band: Vec<(f64, f64, f64)> = v
            .iter()
            .map(|r| {
                if unbiased {
                    (r.n as f64, r.p_delta_u_pos_lo, r.p_delta_u_pos_hi)
                } else {
                    (r.n as f64, r.p_delta_pos_lo, r.p_delta_pos_hi)
                }
            })
            .collect();
        let mut s = Series::line_and_points(label(v[0]), pts).with_color(i);
        if rank <= 1 {
            s = s.with_band(band);
        }
        if rank > 0 {
            s = s.dashed();
        }
        p.series.push(s);
        if rank == 0 && !unbiased {
            markers.extend(
                v.iter()
                    .filter(|r| r.vs_oracle_p.is_some_and(|p| p < ALPHA))
                    .map(|r| (r.n as f64, r.p_delta_pos)),
            );
        }
    }
    if !markers.is_empty() {
        p.series.push(
            Series::points(
                format!("model Δ differs from oracle's (Mann–Whitney p<{ALPHA})"),
                markers,
            )
            .with_color(7),
        );
    }
    p
}

fn e_og_plot(k: &PanelKey, rows: &[&ReportRow]) -> LinePlot {
    let mut p = LinePlot::new(
        format!(
            "Ê_OG vs n — {} px {} C={} ({} protocol)",
            k.0, k.1, k.5, k.2
        ),
        "training-set size n",
        "Ê_OG = E_OG(n) / E_OG(n_0)",
    );
    p.log_x = true;
    p.log_y = true;
    for (i, ((rank, _, _), v)) in lines(rows).into_iter().enumerate() {
        let pts: Vec<(f64, f64)> = v
            .iter()
            .filter(|r| r.e_og_hat.is_finite() && r.e_og_hat > 0.0)
            .map(|r| (r.n as f64, r.e_og_hat))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let mut s = Series::line_and_points(label(v[0]), pts).with_color(i);
        if rank > 0 {
            s = s.dashed();
        }
        p.series.push(s);
    }
    p
}

/// Writes every figure of the report under `out`; returns the files.
pub fn plot_all(rep: &Report, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut panels: BTreeMap<PanelKey, Vec<&ReportRow>> = BTreeMap::new();
    for r in rep.rows.iter().filter(|r| r.final_snapshot) {
        panels.entry(panel_key(r)).or_default().push(r);
    }
    let mut files = Vec::new();
    for t in &rep.trajectories {
        files.extend(trajectory_plots(t, out)?);
    }
    files.extend(axes_plots(rep, out)?);
    for (k, rows) in &panels {
        files.extend(p_plot(k, rows, false).save(&out.join(file_stem(k, "p_delta_vs_n")))?);
        files.extend(p_plot(k, rows, true).save(&out.join(file_stem(k, "p_delta_u_vs_n")))?);
        let e = e_og_plot(k, rows);
        if !e.series.is_empty() {
            files.extend(e.save(&out.join(file_stem(k, "e_og_hat_vs_n")))?);
        }
    }
    // η vs C, per (data, px, protocol): one line per (generator, s).
    type Lines = BTreeMap<(usize, String), Vec<(f64, f64)>>;
    let mut eta: BTreeMap<(String, usize, String), Lines> = BTreeMap::new();
    for e in &rep.eta {
        if e.eta.is_finite() {
            eta.entry((e.data.clone(), e.px, e.protocol.clone()))
                .or_default()
                .entry((e.steps, e.generator.clone()))
                .or_default()
                .push((e.components as f64, e.eta));
        }
    }
    for ((data, px, protocol), lines) in eta {
        let mut p = LinePlot::new(
            format!("η vs C — {data} px {px} ({protocol} protocol)"),
            "mixture components C",
            "η = −ln(1 − E_OG(n_max)/E_OG(n_min))",
        );
        for (i, ((steps, g), mut pts)) in lines.into_iter().enumerate() {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = if g == "model" {
                format!("model s={steps}")
            } else {
                format!("{g} (null)")
            };
            let mut s = Series::line_and_points(name, pts).with_color(i);
            if g != "model" {
                s = s.dashed();
            }
            p.series.push(s);
        }
        let mut stem = format!("eta_vs_c_{data}_px{px}");
        if protocol != "default" {
            stem.push_str(&format!("_{protocol}"));
        }
        files.extend(p.save(&out.join(stem))?);
    }
    Ok(files)
}

/// Sample grids: for every (C, s) with saved samples, one PNG whose row i shows the saved
/// generated images of the i-th smallest n, each followed by its nearest training image.
pub fn sample_grids(samples: &Path, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    crate::samples::grids(samples, out)
}

fn short(v: &str) -> &'static str {
    match v {
        "copying" => "C",
        "generalizing" => "G",
        "not yet trained" => "U",
        _ => "–",
    }
}

/// The three figures of one trajectory family.
pub fn trajectory_plots(t: &Trajectory, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    let stem = t.family.stem();
    let label = t.family.label();
    let mut ns: Vec<u64> = t.cells.iter().map(|c| c.n).collect();
    ns.dedup();
    let mut steps: Vec<u64> = t.cells.iter().map(|c| c.train_step).collect();
    steps.sort_unstable();
    steps.dedup();

    let mut p = LinePlot::new(
        format!("f_mem along training — {label}"),
        "optimizer step",
        "f_mem (d1/d2 < 1/3), Wilson 95 %",
    );
    p.log_x = true;
    p.y_range = Some((-0.02, 1.02));
    p.legend = LegendPos::UpperLeft;
    for (i, n) in ns.iter().enumerate() {
        let c: Vec<_> = t.cells.iter().filter(|c| c.n == *n).collect();
        let pts = c.iter().map(|c| (c.train_step as f64, c.f_mem)).collect();
        let band = c
            .iter()
            .map(|c| (c.train_step as f64, c.f_mem_lo, c.f_mem_hi))
            .collect();
        p.series.push(
            Series::line_and_points(format!("n = {n}"), pts)
                .with_band(band)
                .with_color(i),
        );
    }
    p.series.push(
        Series::line(
            format!("onset threshold {}", t.threshold),
            vec![
                (*steps.first().unwrap_or(&1) as f64, t.threshold),
                (*steps.last().unwrap_or(&1) as f64, t.threshold),
            ],
        )
        .dashed()
        .with_color(7),
    );
    files.extend(p.save(&out.join(format!("f_mem_vs_step_{stem}")))?);

    // The collapse (Bonnaire et al.'s Fig. 2 inset): f_mem over its largest value per n, against
    // step / n and against step; curves that rise together against step / n say τ ∝ n.
    for (x_over_n, name, x_label) in [
        (true, "collapse_vs_step_over_n", "optimizer step / n"),
        (false, "collapse_vs_step", "optimizer step"),
    ] {
        let mut p = LinePlot::new(
            format!("f_mem / max f_mem along training — {label}"),
            x_label,
            "f_mem / its largest value at that n",
        );
        p.log_x = true;
        p.y_range = Some((-0.02, 1.02));
        p.legend = LegendPos::UpperLeft;
        let mut any = false;
        for (i, n) in ns.iter().enumerate() {
            let c: Vec<_> = t.cells.iter().filter(|c| c.n == *n).collect();
            let top = c.iter().map(|c| c.f_mem).fold(0.0, f64::max);
            if top <= 0.0 {
                continue;
            }
            any = true;
            let pts = c
                .iter()
                .map(|c| {
                    let x = c.train_step as f64;
                    (if x_over_n { x / *n as f64 } else { x }, c.f_mem / top)
                })
                .collect();
            p.series.push(
                Series::line_and_points(format!("n = {n} (max {top:.2})"), pts).with_color(i),
            );
        }
        if any {
            files.extend(p.save(&out.join(format!("{name}_{stem}")))?);
        }
    }

    // The loss probe per n: training and held-out denoising loss at ᾱ ≈ 0.98 against step.
    for (i, n) in ns.iter().enumerate() {
        let c: Vec<_> = t
            .cells
            .iter()
            .filter(|c| c.n == *n && c.probe[0].0.is_finite())
            .collect();
        if c.is_empty() {
            continue;
        }
        let mut p = LinePlot::new(
            format!("denoising loss at ᾱ ≈ 0.98, n = {n} — {label}"),
            "optimizer step",
            "mean (ε̂ − ε)² per pixel, ± 2 s.e.",
        );
        p.log_x = true;
        p.legend = LegendPos::LowerLeft;
        let band = |f: fn(&ProbeLevel) -> (f64, f64)| {
            c.iter()
                .map(|c| {
                    let (m, se) = f(&c.probe[0]);
                    (c.train_step as f64, m - 2.0 * se, m + 2.0 * se)
                })
                .collect::<Vec<_>>()
        };
        let line = |f: fn(&ProbeLevel) -> (f64, f64)| {
            c.iter()
                .map(|c| (c.train_step as f64, f(&c.probe[0]).0))
                .collect::<Vec<_>>()
        };
        let train = |p: &ProbeLevel| (p.0, p.1);
        let held = |p: &ProbeLevel| (p.2, p.3);
        p.series.push(
            Series::line_and_points("training images", line(train))
                .with_band(band(train))
                .with_color(i),
        );
        p.series.push(
            Series::line_and_points("held-out images", line(held))
                .with_band(band(held))
                .dashed()
                .with_color(7),
        );
        if let Some(o) = t.onsets.iter().find(|o| o.n == *n) {
            if let Some(g) = o.gap_onset {
                p.title.push_str(&format!(" (gap from step {g})"));
            }
        }
        files.extend(p.save(&out.join(format!("loss_probe_n{n}_{stem}")))?);
    }

    // Sample quality along training: Fréchet distance over the oracle's per n (the reading's
    // quality), with the tolerance line, when measured.
    if t.cells.iter().any(|c| c.frechet_vs_oracle.is_finite()) {
        let mut q = LinePlot::new(
            format!("sample quality along training — {label}"),
            "optimizer step",
            "Fréchet distance / oracle's (pixel space)",
        );
        q.log_x = true;
        q.log_y = true;
        q.legend = LegendPos::UpperRight;
        for (i, n) in ns.iter().enumerate() {
            let pts = t
                .cells
                .iter()
                .filter(|c| c.n == *n)
                .map(|c| (c.train_step as f64, c.frechet_vs_oracle))
                .collect();
            q.series
                .push(Series::line_and_points(format!("n = {n}"), pts).with_color(i));
        }
        let (s0, s1) = (
            *steps.first().unwrap_or(&1) as f64,
            *steps.last().unwrap_or(&1) as f64,
        );
        q.series.push(
            Series::line(
                format!("data's quality ≤ {:.2}", t.frechet_limit),
                vec![(s0, t.frechet_limit), (s1, t.frechet_limit)],
            )
            .dashed()
            .with_color(7),
        );
        files.extend(q.save(&out.join(format!("quality_vs_step_{stem}")))?);
    }

    // Budgets that grow with n: columns are each n's own snapshots, in order (step in the cell).
    let snap_index = |c: &crate::trajectory::Cell| {
        if t.shared_steps {
            steps.iter().position(|s| *s == c.train_step).unwrap_or(0)
        } else {
            t.cells
                .iter()
                .filter(|d| d.n == c.n && d.train_step < c.train_step)
                .count()
        }
    };
    let snaps_per_n = ns
        .iter()
        .map(|n| t.cells.iter().filter(|c| c.n == *n).count())
        .max()
        .unwrap_or(0);
    let cols = if t.shared_steps {
        steps.len()
    } else {
        snaps_per_n
    };
    let mut h = HeatMap {
        title: format!("Phase diagram — {label}: f_mem · E_OG/oracle · Fréchet/oracle · reading"),
        x_label: if t.shared_steps {
            "optimizer step   (C copying, G generalizing, U not yet trained; copying framed)".into()
        } else {
            "each n's own snapshots in order (@ step)   (C copying, G generalizing, U not yet trained)"
                .into()
        },
        y_label: "training-set size n".into(),
        x_ticks: if t.shared_steps {
            steps.iter().map(|s| s.to_string()).collect()
        } else {
            (1..=snaps_per_n).map(|i| format!("#{i}")).collect()
        },
        y_ticks: ns.iter().map(|n| n.to_string()).collect(),
        cells: Vec::new(),
        framed: Vec::new(),
        size: (140 + 110 * cols as u32, 130 + 70 * ns.len() as u32),
    };
    h.size.0 = h.size.0.max(700);
    for c in &t.cells {
        let x = snap_index(c);
        let y = ns.iter().position(|n| *n == c.n).unwrap_or(0);
        let ratio = if c.e_og_vs_oracle.is_finite() {
            format!("{:.1}x", c.e_og_vs_oracle)
        } else {
            "–".into()
        };
        let prec = if c.frechet_vs_oracle.is_finite() {
            format!(" F{:.1}x", c.frechet_vs_oracle)
        } else {
            String::new()
        };
        h.cells.push((
            x,
            y,
            c.f_mem,
            if t.shared_steps {
                format!("{:.2}\n{ratio}{prec} {}", c.f_mem, short(&c.verdict))
            } else {
                format!(
                    "{:.2} @{}\n{ratio}{prec} {}",
                    c.f_mem,
                    c.train_step,
                    short(&c.verdict)
                )
            },
        ));
        if c.verdict == "copying" {
            h.framed.push((x, y));
        }
    }
    files.extend(h.save(&out.join(format!("phase_{stem}")))?);

    let any = t
        .onsets
        .iter()
        .any(|o| o.tau_mem.is_some() || o.tau_onset.is_some());
    if any {
        let mut p = LinePlot::new(
            format!("τ_onset, τ_mem, τ_gen vs n — {label}"),
            "training-set size n",
            format!(
                "optimizer step: f_mem ≥ {} (onset), ≥ {} (τ_mem)",
                t.onset_fraction, t.threshold
            ),
        );
        p.log_x = true;
        p.log_y = true;
        p.legend = LegendPos::UpperLeft;
        let mut first: Option<(f64, f64)> = None;
        let n_max = t.onsets.iter().map(|o| o.n as f64).fold(0.0, f64::max);
        type Pick = fn(&crate::trajectory::Onset) -> (Option<f64>, Option<f64>, Option<f64>);
        type Fitted = fn(&crate::trajectory::Onset) -> bool;
        // τ_onset's fit over the n beyond τ_gen, or over every n when fewer than two are.
        let (onset_slope, onset_fitted, onset_over): (_, Fitted, _) = match &t.slope_onset {
            Some(sl) => (Some(sl), |o| o.beyond_gen, " (τ_onset ≥ 2 τ_gen)"),
            None => (t.slope_onset_all.as_ref(), |_| true, " (every n)"),
        };
        struct Kind<'a> {
            name: &'static str,
            pick: Pick,
            slope: Option<&'a crate::trajectory::Slope>,
            fitted: Fitted,
            over: &'static str,
            color: usize,
        }
        let kinds = [
            Kind {
                name: "τ_onset",
                pick: |o| (o.tau_onset, o.tau_onset_lo, o.tau_onset_hi),
                slope: onset_slope,
                fitted: onset_fitted,
                over: onset_over,
                color: 2,
            },
            Kind {
                name: "τ_mem",
                pick: |o| (o.tau_mem, o.tau_mem_lo, o.tau_mem_hi),
                slope: t.slope.as_ref(),
                fitted: |_| true,
                over: "",
                color: 0,
            },
        ];
        for Kind {
            name,
            pick,
            slope,
            fitted,
            over,
            color,
        } in kinds
        {
            let reached: Vec<_> = t.onsets.iter().filter(|o| pick(o).0.is_some()).collect();
            if reached.is_empty() {
                continue;
            }
            let pts: Vec<(f64, f64)> = reached
                .iter()
                .map(|o| (o.n as f64, pick(o).0.unwrap()))
                .collect();
            first.get_or_insert(pts[0]);
            let band = reached
                .iter()
                .map(|o| {
                    let (v, lo, hi) = pick(o);
                    let v = v.unwrap();
                    (o.n as f64, lo.unwrap_or(v), hi.unwrap_or(v))
                })
                .collect();
            p.series.push(
                Series::points(format!("{name} (95 % bootstrap)"), pts)
                    .with_band(band)
                    .with_color(color),
            );
            if let Some(sl) = slope {
                // The least-squares line through the fitted points' log-means.
                let fit: Vec<(f64, f64)> = reached
                    .iter()
                    .filter(|o| fitted(o))
                    .map(|o| (o.n as f64, pick(o).0.unwrap()))
                    .collect();
                if let (Some(a), Some(b)) = (fit.first(), fit.last()) {
                    let m = fit.len() as f64;
                    let mx = fit.iter().map(|p| p.0.ln()).sum::<f64>() / m;
                    let my = fit.iter().map(|p| p.1.ln()).sum::<f64>() / m;
                    let at = |n: f64| (my + sl.slope * (n.ln() - mx)).exp();
                    p.series.push(
                        Series::line(
                            format!(
                                "{name} fit{over}: slope {:.2} [{:.2}, {:.2}]",
                                sl.slope, sl.lo, sl.hi
                            ),
                            vec![(a.0, at(a.0)), (b.0, at(b.0))],
                        )
                        .with_color(color),
                    );
                }
            }
        }
        let gap: Vec<(f64, f64)> = t
            .onsets
            .iter()
            .filter_map(|o| o.gap_onset.map(|g| (o.n as f64, g as f64)))
            .collect();
        if !gap.is_empty() {
            p.series
                .push(Series::points("loss-gap onset (ᾱ ≈ 0.98)", gap).with_color(4));
        }
        let gen: Vec<(f64, f64)> = t
            .onsets
            .iter()
            .filter_map(|o| o.tau_gen.map(|g| (o.n as f64, g as f64)))
            .collect();
        if !gen.is_empty() {
            p.series
                .push(Series::points("τ_gen (data's quality)", gen).with_color(3));
        }
        if let Some((n0, t0)) = first {
            p.series.push(
                Series::line(
                    "slope 1 (Bonnaire et al.)",
                    vec![(n0, t0), (n_max, t0 * n_max / n0)],
                )
                .dashed()
                .with_color(7),
            );
        }
        files.extend(p.save(&out.join(format!("tau_mem_vs_n_{stem}")))?);
    }
    Ok(files)
}

/// The s-axis figures (per n: f_mem and quality against s at the budget; τ against s; the
/// (s, step) phase diagram) and η along training against C.
pub fn axes_plots(rep: &Report, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    for a in &rep.s_axes {
        let stem = a.key.stem();
        let label = a.key.label();
        let plain = crate::axes::plain_sampler(&a.points);
        let on_plain: Vec<_> = a.points.iter().filter(|p| p.sampler == plain).collect();
        let others: Vec<_> = a.points.iter().filter(|p| p.sampler != plain).collect();
        let mut p = LinePlot::new(
            format!("n = {} at the budget, against s — {label}", a.n),
            "diffusion steps s (trained and sampled with)",
            "f_mem (Wilson 95 %)   ·   quality = oracle's Fréchet / model's",
        );
        p.log_x = true;
        p.y_range = Some((-0.02, 1.05));
        p.legend = LegendPos::UpperLeft;
        p.series.push(
            Series::line_and_points(
                "f_mem",
                on_plain.iter().map(|q| (q.s as f64, q.f_mem)).collect(),
            )
            .with_band(
                on_plain
                    .iter()
                    .map(|q| (q.s as f64, q.f_mem_lo, q.f_mem_hi))
                    .collect(),
            )
            .with_color(0),
        );
        let quality: Vec<(f64, f64)> = on_plain
            .iter()
            .filter(|q| q.quality().is_finite() && q.quality() > 0.0)
            .map(|q| (q.s as f64, 1.0 / q.quality()))
            .collect();
        if !quality.is_empty() {
            p.series
                .push(Series::line_and_points("quality (1 = the oracle's)", quality).with_color(2));
        }
        for (j, q) in others.iter().enumerate() {
            p.series.push(
                Series::points(
                    format!("{}: f_mem", q.name(&plain)),
                    vec![(q.s as f64, q.f_mem)],
                )
                .with_color(4 + j),
            );
            if q.quality().is_finite() && q.quality() > 0.0 {
                p.series.push(
                    Series::points(
                        format!("{}: quality", q.name(&plain)),
                        vec![(q.s as f64, 1.0 / q.quality())],
                    )
                    .with_color(5 + j),
                );
            }
        }
        files.extend(p.save(&out.join(format!("s_axis_n{}_{stem}", a.n)))?);
    }
    // τ_onset and τ_mem against s, one line per n.
    let mut by_key: BTreeMap<&crate::axes::AxisKey, Vec<&crate::axes::SAxis>> = BTreeMap::new();
    for a in &rep.s_axes {
        by_key.entry(&a.key).or_default().push(a);
    }
    for (key, axes) in by_key {
        let mut p = LinePlot::new(
            format!("onsets against s — {}", key.label()),
            "diffusion steps s",
            "optimizer step: τ_onset (solid), τ_mem (dashed)",
        );
        p.log_x = true;
        p.log_y = true;
        p.legend = LegendPos::UpperLeft;
        for (i, a) in axes.iter().enumerate() {
            let plain = crate::axes::plain_sampler(&a.points);
            let pts = |f: fn(&crate::axes::SPoint) -> Option<f64>| -> Vec<(f64, f64)> {
                a.points
                    .iter()
                    .filter(|q| q.sampler == plain)
                    .filter_map(|q| f(q).map(|v| (q.s as f64, v)))
                    .collect()
            };
            let on = pts(|q| q.tau_onset);
            if !on.is_empty() {
                p.series.push(
                    Series::line_and_points(format!("n = {}: τ_onset", a.n), on).with_color(i),
                );
            }
            let mem = pts(|q| q.tau_mem);
            if !mem.is_empty() {
                p.series.push(
                    Series::line_and_points(format!("n = {}: τ_mem", a.n), mem)
                        .dashed()
                        .with_color(i),
                );
            }
        }
        if !p.series.is_empty() {
            files.extend(p.save(&out.join(format!("tau_vs_s_{}", key.stem())))?);
        }
        // The (s, step) phase diagram per n, from the trajectories of this key.
        for a in &axes {
            let ts: Vec<&Trajectory> = rep
                .trajectories
                .iter()
                .filter(|t| {
                    let f = &t.family;
                    f.data == key.data
                        && f.px == key.px
                        && f.protocol == key.protocol
                        && f.components == key.components
                })
                .collect();
            let mut steps: Vec<u64> = ts
                .iter()
                .flat_map(|t| t.cells.iter().filter(|c| c.n == a.n).map(|c| c.train_step))
                .collect();
            steps.sort_unstable();
            steps.dedup();
            let rows: Vec<(String, &Trajectory)> = ts
                .iter()
                .map(|t| {
                    let plain = crate::axes::plain_sampler(&a.points);
                    let name = if t.family.sampler == plain {
                        format!("s = {}", t.family.steps)
                    } else {
                        format!("s = {} ({})", t.family.steps, t.family.sampler)
                    };
                    (name, *t)
                })
                .collect();
            let mut h = HeatMap {
                title: format!("Phase diagram over (s, step), n = {} — {}", a.n, key.label()),
                x_label: "optimizer step   (C copying, G generalizing, U not yet trained; copying framed)"
                    .into(),
                y_label: "diffusion steps s".into(),
                x_ticks: steps.iter().map(|s| s.to_string()).collect(),
                y_ticks: rows.iter().map(|r| r.0.clone()).collect(),
                cells: Vec::new(),
                framed: Vec::new(),
                size: (
                    (140 + 110 * steps.len() as u32).max(700),
                    130 + 70 * rows.len() as u32,
                ),
            };
            for (y, (_, t)) in rows.iter().enumerate() {
                for c in t.cells.iter().filter(|c| c.n == a.n) {
                    let x = steps.iter().position(|s| *s == c.train_step).unwrap_or(0);
                    h.cells.push((
                        x,
                        y,
                        c.f_mem,
                        format!("{:.2}\n{}", c.f_mem, short(&c.verdict)),
                    ));
                    if c.verdict == "copying" {
                        h.framed.push((x, y));
                    }
                }
            }
            files.extend(h.save(&out.join(format!("phase_s_n{}_{}", a.n, key.stem())))?);
        }
    }
    // η along training, one line per (C, s), where the sweep has several C.
    let cs: std::collections::BTreeSet<u32> =
        rep.eta_steps.iter().map(|e| e.key.components).collect();
    if cs.len() >= 2 {
        let mut lines: BTreeMap<(String, u32, u32, String), Vec<&crate::axes::EtaPoint>> =
            BTreeMap::new();
        for e in rep.eta_steps.iter().filter(|e| e.eta.is_finite()) {
            lines
                .entry((e.key.data.clone(), e.key.px, e.s, e.sampler.clone()))
                .or_default()
                .push(e);
        }
        for ((data, px, s_steps, _), pts) in lines {
            let mut p = LinePlot::new(
                format!("η along training against C — {data} px {px} s {s_steps}"),
                "optimizer step",
                "η = −ln(1 − E_OG(n_large)/E_OG(n_small)), 95 %",
            );
            p.log_x = true;
            p.legend = LegendPos::UpperRight;
            let mut by_c: BTreeMap<u32, Vec<&crate::axes::EtaPoint>> = BTreeMap::new();
            for e in pts {
                by_c.entry(e.key.components).or_default().push(e);
            }
            for (i, (c, v)) in by_c.iter().enumerate() {
                p.series.push(
                    Series::line_and_points(
                        format!("C = {c}"),
                        v.iter().map(|e| (e.train_step as f64, e.eta)).collect(),
                    )
                    .with_band(
                        v.iter()
                            .map(|e| (e.train_step as f64, e.lo, e.hi))
                            .collect(),
                    )
                    .with_color(i),
                );
            }
            files.extend(p.save(&out.join(format!("eta_vs_step_{data}_px{px}_s{s_steps}")))?);
        }
    }
    Ok(files)
}

/// The two-training-sets figures (module doc) of the pair table's cells.
pub fn pair_plots(
    cells: &[crate::pair::PairCell],
    out: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut fam: BTreeMap<_, Vec<&crate::pair::PairCell>> = BTreeMap::new();
    for c in cells {
        fam.entry(c.family()).or_default().push(c);
    }
    let mut files = Vec::new();
    for ((data, px, protocol, comp, steps), v) in fam {
        let label = format!("{data} px {px} C={comp} s={steps}");
        let mut stem = format!("{data}_px{px}_c{comp}_s{steps}");
        if protocol != "default" {
            stem.push_str(&format!("_{protocol}"));
        }
        let last = v.iter().map(|c| c.train_step).max().unwrap_or(0);
        let mut ns: Vec<u64> = v.iter().map(|c| c.n).collect();
        ns.sort_unstable();
        ns.dedup();
        let mut at_last: Vec<_> = v.iter().filter(|c| c.train_step == last).collect();
        at_last.sort_by_key(|c| c.n);
        let panel = |title: String, x: &str, y: &str| {
            let mut p = LinePlot::new(title, x, y);
            p.log_x = true;
            p.size = (640, 520);
            p
        };
        let xs = |f: &dyn Fn(&crate::pair::PairCell) -> f64| -> Vec<(f64, f64)> {
            at_last.iter().map(|c| (c.n as f64, f(c))).collect()
        };
        let mut a = panel(
            format!("paired similarity — {label}, step {last}"),
            "training-set size n",
            "centred cosine similarity",
        );
        a.legend = LegendPos::LowerLeft;
        a.series.push(
            Series::line_and_points("two networks, same noise", xs(&|c| c.similarity))
                .with_band(
                    at_last
                        .iter()
                        .map(|c| (c.n as f64, c.similarity_lo, c.similarity_hi))
                        .collect(),
                )
                .with_color(0),
        );
        a.series.push(
            Series::line(
                "floor (independent data pairs)",
                xs(&|c| c.floor_similarity),
            )
            .dashed()
            .with_color(7),
        );
        a.series.push(
            Series::line(
                "copy level (nearest training image)",
                xs(&|c| c.copy_similarity),
            )
            .dashed()
            .with_color(3),
        );
        let mut b = panel(
            format!("f_mem — {label}, step {last}"),
            "training-set size n",
            "f_mem (d1/d2 < 1/3)",
        );
        b.y_range = Some((-0.02, 1.02));
        b.series
            .push(Series::line_and_points("model", xs(&|c| c.f_mem)).with_color(1));
        let mut d = panel(
            format!("Δ_U — {label}, step {last}"),
            "training-set size n",
            "mean Δ_U",
        );
        d.series
            .push(Series::line_and_points("model", xs(&|c| c.delta_u)).with_color(2));
        files.extend(memdiff_plot::save_row(
            &[a, b, d],
            &out.join(format!("pair_vs_n_{stem}")),
        )?);

        let mut steps_seen: Vec<u64> = v.iter().map(|c| c.train_step).collect();
        steps_seen.sort_unstable();
        steps_seen.dedup();
        if steps_seen.len() >= 2 {
            let mut panels = [
                panel(
                    format!("paired similarity — {label}"),
                    "optimizer step",
                    "centred cosine similarity",
                ),
                panel(
                    format!("f_mem — {label}"),
                    "optimizer step",
                    "f_mem (d1/d2 < 1/3)",
                ),
                panel(format!("Δ_U — {label}"), "optimizer step", "mean Δ_U"),
            ];
            panels[1].y_range = Some((-0.02, 1.02));
            for (i, n) in ns.iter().enumerate() {
                let mut c: Vec<_> = v.iter().filter(|c| c.n == *n).collect();
                c.sort_by_key(|c| c.train_step);
                let pts = |f: &dyn Fn(&crate::pair::PairCell) -> f64| -> Vec<(f64, f64)> {
                    c.iter().map(|c| (c.train_step as f64, f(c))).collect()
                };
                panels[0].series.push(
                    Series::line_and_points(format!("n = {n}"), pts(&|c| c.similarity))
                        .with_band(
                            c.iter()
                                .map(|c| (c.train_step as f64, c.similarity_lo, c.similarity_hi))
                                .collect(),
                        )
                        .with_color(i),
                );
                panels[1].series.push(
                    Series::line_and_points(format!("n = {n}"), pts(&|c| c.f_mem)).with_color(i),
                );
                panels[2].series.push(
                    Series::line_and_points(format!("n = {n}"), pts(&|c| c.delta_u)).with_color(i),
                );
            }
            files.extend(memdiff_plot::save_row(
                &panels,
                &out.join(format!("pair_vs_step_{stem}")),
            )?);
        }
    }
    Ok(files)
}
