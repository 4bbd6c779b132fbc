//! Memorization along training time (docs/METHOD.md §7): from the model rows of a sweep with
//! training snapshots (`train_step` > 0), per (data, px, protocol, C, s, sampler):
//!
//! - the trajectory table: per (n, snapshot) f_mem with its Wilson interval, E_OG over the
//!   oracle's, Δ_U and the three-way verdict (all from `memdiff_metrics::summary`, the numbers
//!   of the main table);
//! - τ_mem(n): the first training step at which f_mem reaches the verdict rule's
//!   `copy_fraction` (0.5 by default), interpolated linearly in log(step) between the last
//!   snapshot below it and the first at or above it, with a percentile bootstrap interval over
//!   simulations (resampling the simulations of each n with replacement);
//! - τ_onset(n): the same at the rule's `onset_fraction` (0.01 by default): where f_mem leaves 0,
//!   the onset Bonnaire et al. (2025) measure (τ_mem at 0.5 adds the rise time, and is censored
//!   when the plateau stays below 0.5);
//! - the log–log slopes of τ_mem and τ_onset against n (least squares over the n that reached
//!   it), with bootstrap intervals from the same resamples; the τ_onset slope also over the n
//!   whose onset is well above τ_gen only (τ_onset ≥ [`BEYOND_GEN`] · τ_gen: the regime where
//!   Bonnaire et al. find a slope of 1; below it memorization starts as soon as the network
//!   generates);
//! - the loss probe per snapshot (results with `loss_*` columns): the denoising loss on the
//!   training images and on held-out images at ᾱ ≈ 0.98, 0.8, 0.5, means over simulations, and
//!   per n the gap's onset: the first snapshot at which held-out minus training loss at
//!   ᾱ ≈ 0.98 exceeds [`GAP_Z`] standard errors;
//! - τ_gen(n): the first snapshot at the data's quality (`summary::at_data_quality`: Fréchet
//!   distance within the verdict tolerance of the oracle's; E_OG for results without it);
//! - EMM per snapshot (Gu et al. 2025): the largest n whose f_mem is at least 0.9.

use crate::row::SimRow;
use memdiff_metrics::summary::{GroupSummary, ProbeLevel, VerdictRule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// One simulation's snapshots: (step, memorized samples, generated samples).
type SimCurve = Vec<(u64, u64, u64)>;

/// f_mem threshold of Gu et al.'s effective model memorization (EMM).
pub const EMM_FRACTION: f64 = 0.9;
/// Bootstrap resamples for the τ_mem and slope intervals.
pub const BOOTSTRAP: usize = 1000;
/// τ_onset counts as well above τ_gen (the n the onset slope is fitted on) from this ratio.
pub const BEYOND_GEN: f64 = 2.0;
/// The loss gap's onset: held-out minus training loss above this many standard errors.
pub const GAP_Z: f64 = 3.0;

/// One family of trajectories: everything but n and the training step fixed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Family {
    pub data: String,
    pub px: u32,
    pub protocol: String,
    pub components: u32,
    pub steps: u32,
    pub sampler: String,
}

impl Family {
    fn of(r: &SimRow) -> Self {
        Family {
            data: r.data.clone(),
            px: r.px,
            protocol: r.protocol.clone(),
            components: r.components,
            steps: r.steps,
            sampler: r.sampler.clone(),
        }
    }
    /// A short label for titles and file names.
    pub fn label(&self) -> String {
        format!(
            "{} px {} C {} s {} ({})",
            self.data, self.px, self.components, self.steps, self.sampler
        )
    }
    pub fn stem(&self) -> String {
        let mut s = format!(
            "{}_px{}_c{}_s{}",
            self.data, self.px, self.components, self.steps
        );
        if self.protocol != "default" {
            s.push_str(&format!("_{}", self.protocol));
        }
        s
    }
}

/// One (n, snapshot) cell of a trajectory.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cell {
    pub n: u64,
    pub train_step: u64,
    pub sims: usize,
    pub f_mem: f64,
    pub f_mem_lo: f64,
    pub f_mem_hi: f64,
    /// Mean E_OG over the oracle group's mean E_OG (NaN without oracle rows).
    pub e_og_vs_oracle: f64,
    pub mean_delta_u: f64,
    /// Mean Fréchet distance, k-NN precision and recall of the snapshot's samples (NaN when not
    /// measured), the Fréchet distance over the oracle's and the oracle's precision at the same
    /// settings.
    pub frechet: f64,
    pub frechet_vs_oracle: f64,
    pub precision: f64,
    pub recall: f64,
    pub oracle_precision: f64,
    /// Whether the snapshot is at the data's quality (`summary::at_data_quality`).
    pub data_quality: bool,
    pub verdict: String,
    /// The loss probe per level of `summary::PROBE_LEVELS`: (training loss, its s.e., held-out
    /// loss, its s.e.), means over the simulations (s.e. combined as √Σse² / sims); NaN
    /// without probe columns.
    pub probe: [ProbeLevel; 3],
}

impl Cell {
    /// Held-out minus training loss at ᾱ ≈ 0.98 and its standard error.
    pub fn gap(&self) -> (f64, f64) {
        let (tr, tr_se, ho, ho_se) = self.probe[0];
        (ho - tr, (tr_se * tr_se + ho_se * ho_se).sqrt())
    }
}

/// τ_mem and τ_gen of one n.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Onset {
    pub n: u64,
    pub sims: usize,
    /// First step with f_mem ≥ the threshold (log-interpolated); `None`: not reached.
    pub tau_mem: Option<f64>,
    /// 95 % percentile bootstrap interval (resamples that never reach count as +∞).
    pub tau_mem_lo: Option<f64>,
    pub tau_mem_hi: Option<f64>,
    /// First step with f_mem ≥ the onset fraction (log-interpolated), and its interval.
    pub tau_onset: Option<f64>,
    pub tau_onset_lo: Option<f64>,
    pub tau_onset_hi: Option<f64>,
    /// First snapshot at the data's quality; `None`: not reached.
    pub tau_gen: Option<u64>,
    /// τ_onset ≥ [`BEYOND_GEN`] · τ_gen (both reached): fitted by the onset slope.
    pub beyond_gen: bool,
    /// First snapshot whose loss gap at ᾱ ≈ 0.98 exceeds [`GAP_Z`] s.e.; `None`: never, or
    /// no probe.
    pub gap_onset: Option<u64>,
    /// f_mem at the last snapshot, and that snapshot's step (the unit's budget).
    pub f_mem_final: f64,
    pub last_step: u64,
}

/// Slope of log τ_mem against log n.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Slope {
    /// The n values it was fitted on.
    pub points: usize,
    pub slope: f64,
    pub lo: f64,
    pub hi: f64,
}

/// EMM at one snapshot.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Emm {
    pub train_step: u64,
    /// Largest n with f_mem ≥ 0.9; `None`: no n reaches it.
    pub emm: Option<u64>,
}

/// Everything the report shows for one family.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub family: Family,
    /// The τ_mem threshold (copy fraction) and the τ_onset one (onset fraction).
    pub threshold: f64,
    pub onset_fraction: f64,
    /// Whether every n was measured at the same steps (a budget the same for every n).
    pub shared_steps: bool,
    /// Fréchet / oracle at or below this is the data's quality (1 + the rule's tolerance).
    pub frechet_limit: f64,
    pub cells: Vec<Cell>,
    pub onsets: Vec<Onset>,
    /// Slope of τ_mem against n.
    pub slope: Option<Slope>,
    /// Slope of τ_onset against n over the n with `beyond_gen`, and over every n that reached it.
    pub slope_onset: Option<Slope>,
    pub slope_onset_all: Option<Slope>,
    pub emm: Vec<Emm>,
}

/// The first step at which `f` (pairs (step, f_mem), steps increasing) reaches `thr`,
/// interpolated linearly in log(step) from the previous snapshot; `None` if never.
pub fn first_crossing(curve: &[(u64, f64)], thr: f64) -> Option<f64> {
    let i = curve.iter().position(|&(_, f)| f >= thr)?;
    let (s1, f1) = curve[i];
    if i == 0 {
        return Some(s1 as f64);
    }
    let (s0, f0) = curve[i - 1];
    let w = if f1 > f0 { (thr - f0) / (f1 - f0) } else { 1.0 };
    let (l0, l1) = ((s0 as f64).ln(), (s1 as f64).ln());
    Some((l0 + w.clamp(0.0, 1.0) * (l1 - l0)).exp())
}

/// Least-squares slope of `(ln x, ln y)`; `None` for fewer than 2 distinct x.
pub fn loglog_slope(pts: &[(f64, f64)]) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let lx: Vec<f64> = pts.iter().map(|p| p.0.ln()).collect();
    let ly: Vec<f64> = pts.iter().map(|p| p.1.ln()).collect();
    let mx = lx.iter().sum::<f64>() / lx.len() as f64;
    let my = ly.iter().sum::<f64>() / ly.len() as f64;
    let sxx: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    Some(sxy / sxx)
}

/// Percentile `q` in [0, 1] of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Pooled f_mem per snapshot of the given simulations (`per_sim[sim]` = (step, memorized,
/// generated) by step).
fn curve(per_sim: &[&Vec<(u64, u64, u64)>], steps: &[u64]) -> Vec<(u64, f64)> {
    steps
        .iter()
        .enumerate()
        .map(|(j, &s)| {
            let (k, m) = per_sim
                .iter()
                .fold((0u64, 0u64), |(k, m), v| (k + v[j].1, m + v[j].2));
            (
                s,
                if m == 0 {
                    f64::NAN
                } else {
                    k as f64 / m as f64
                },
            )
        })
        .collect()
}

/// Builds every family's trajectory from the rows and the groups of the main summary (the same
/// `summarize_with` call, so the cells are the table's numbers). Families with a single
/// snapshot are left out (nothing to follow along training).
pub fn trajectories(
    rows: &[SimRow],
    groups: &[GroupSummary],
    rule: &VerdictRule,
) -> Vec<Trajectory> {
    let thr = rule.copy_fraction;
    // Model rows per family, n, sim: (step, memorized, generated).
    type Sims = BTreeMap<u64, Vec<(u64, u64, u64)>>;
    let mut fam: BTreeMap<Family, BTreeMap<u64, Sims>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.generator == "model" && r.nn_frac_memorized.is_finite())
    {
        let k = (r.nn_frac_memorized * r.n_generated as f64).round() as u64;
        fam.entry(Family::of(r))
            .or_default()
            .entry(r.n)
            .or_default()
            .entry(r.sim)
            .or_default()
            .push((r.train_step, k, r.n_generated));
    }
    // The loss probe's columns per (family, n, step): one entry per simulation.
    type Probe = [ProbeLevel; 3];
    let mut probes: BTreeMap<(Family, u64, u64), Vec<Probe>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.generator == "model" && r.loss_train_a98.is_finite())
    {
        probes
            .entry((Family::of(r), r.n, r.train_step))
            .or_default()
            .push(r.probe());
    }
    let mut out = Vec::new();
    for (family, by_n) in fam {
        // Each n's own snapshot steps (budgets may grow with n).
        let steps_of: BTreeMap<u64, Vec<u64>> = by_n
            .iter()
            .map(|(&n, sims)| {
                let mut v: Vec<u64> = sims.values().flat_map(|x| x.iter().map(|p| p.0)).collect();
                v.sort_unstable();
                v.dedup();
                (n, v)
            })
            .collect();
        if steps_of.values().all(|v| v.len() < 2) {
            continue;
        }
        let mut steps: Vec<u64> = steps_of.values().flatten().copied().collect();
        steps.sort_unstable();
        steps.dedup();
        let shared_steps = steps_of.values().all(|v| *v == steps);
        let in_family = |g: &&GroupSummary| {
            let k = &g.key;
            k.generator == "model"
                && k.data == family.data
                && k.px == family.px
                && k.protocol == family.protocol
                && k.components == family.components
                && k.steps == family.steps
                && k.sampler == family.sampler
        };
        let fgroups: Vec<&GroupSummary> = groups.iter().filter(in_family).collect();
        let mut cells: Vec<Cell> = fgroups
            .iter()
            .map(|g| Cell {
                n: g.key.n,
                train_step: g.key.train_step,
                sims: g.m,
                f_mem: g.f_mem.p,
                f_mem_lo: g.f_mem.lo,
                f_mem_hi: g.f_mem.hi,
                e_og_vs_oracle: g.e_og_vs_oracle.unwrap_or(f64::NAN),
                mean_delta_u: g.delta_unbiased.mean,
                frechet: g.quality.frechet.mean,
                frechet_vs_oracle: g.frechet_vs_oracle.unwrap_or(f64::NAN),
                precision: g.quality.precision.mean,
                recall: g.quality.recall.mean,
                oracle_precision: g.oracle_precision.unwrap_or(f64::NAN),
                data_quality: g.data_quality == Some(true),
                verdict: g.verdict.map_or("–".into(), |v| v.to_string()),
                probe: mean_probe(probes.get(&(family.clone(), g.key.n, g.key.train_step))),
            })
            .collect();
        cells.sort_by_key(|c| (c.n, c.train_step));

        // Per n: the simulations' curves (only sims measured at every snapshot of that n).
        let mut sims_of: BTreeMap<u64, Vec<SimCurve>> = BTreeMap::new();
        for (&n, sims) in &by_n {
            let st = &steps_of[&n];
            let mut v: Vec<SimCurve> = Vec::new();
            for rows in sims.values() {
                let mut r = rows.clone();
                r.sort_unstable();
                if r.iter().map(|p| p.0).eq(st.iter().copied()) {
                    v.push(r);
                }
            }
            if !v.is_empty() && st.len() >= 2 {
                sims_of.insert(n, v);
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0x007a_756d_656d);
        let ns: Vec<u64> = sims_of.keys().copied().collect();
        // For each threshold: the point estimate per n and boot[b][n index] (∞: not reached).
        let mut times = |thr: f64| -> (Vec<Option<f64>>, Vec<Vec<f64>>) {
            let mut boot = vec![vec![f64::INFINITY; ns.len()]; BOOTSTRAP];
            let mut point = Vec::with_capacity(ns.len());
            for (j, &n) in ns.iter().enumerate() {
                let sims = &sims_of[&n];
                let st = &steps_of[&n];
                let all: Vec<&Vec<_>> = sims.iter().collect();
                point.push(first_crossing(&curve(&all, st), thr));
                for b in boot.iter_mut() {
                    let pick: Vec<&Vec<_>> = (0..sims.len())
                        .map(|_| &sims[rng.random_range(0..sims.len())])
                        .collect();
                    b[j] = first_crossing(&curve(&pick, st), thr).unwrap_or(f64::INFINITY);
                }
            }
            (point, boot)
        };
        let (tau_mem, boot_mem) = times(thr);
        let (tau_on, boot_on) = times(rule.onset_fraction);
        let interval = |point: Option<f64>, boot: &[Vec<f64>], j: usize| {
            let mut taus: Vec<f64> = boot.iter().map(|b| b[j]).collect();
            taus.sort_by(f64::total_cmp);
            let finite = |x: f64| x.is_finite().then_some(x);
            (
                point.and_then(|_| finite(percentile(&taus, 0.025))),
                point.and_then(|_| finite(percentile(&taus, 0.975))),
            )
        };
        let mut onsets = Vec::new();
        for (j, &n) in ns.iter().enumerate() {
            let all: Vec<&Vec<_>> = sims_of[&n].iter().collect();
            let st = &steps_of[&n];
            let of_n: Vec<&Cell> = cells.iter().filter(|c| c.n == n).collect();
            let tau_gen = of_n.iter().find(|c| c.data_quality).map(|c| c.train_step);
            let last = curve(&all, st).last().map_or(f64::NAN, |x| x.1);
            let (mem_lo, mem_hi) = interval(tau_mem[j], &boot_mem, j);
            let (on_lo, on_hi) = interval(tau_on[j], &boot_on, j);
            let beyond_gen = match (tau_on[j], tau_gen) {
                (Some(on), Some(g)) => on >= BEYOND_GEN * g as f64,
                _ => false,
            };
            let gap_onset = of_n
                .iter()
                .find(|c| {
                    let (gap, se) = c.gap();
                    gap.is_finite() && se.is_finite() && gap > GAP_Z * se
                })
                .map(|c| c.train_step);
            onsets.push(Onset {
                n,
                sims: all.len(),
                tau_mem: tau_mem[j],
                tau_mem_lo: mem_lo,
                tau_mem_hi: mem_hi,
                tau_onset: tau_on[j],
                tau_onset_lo: on_lo,
                tau_onset_hi: on_hi,
                tau_gen,
                beyond_gen,
                gap_onset,
                f_mem_final: last,
                last_step: st.last().copied().unwrap_or(0),
            });
        }
        let fit = |use_n: &dyn Fn(usize) -> bool, point: &[Option<f64>], boot: &[Vec<f64>]| {
            let js: Vec<usize> = (0..ns.len())
                .filter(|&j| point[j].is_some() && use_n(j))
                .collect();
            fit_slope(&ns, &js, point, boot)
        };
        let slope = fit(&|_| true, &tau_mem, &boot_mem);
        let slope_onset = fit(&|j| onsets[j].beyond_gen, &tau_on, &boot_on);
        let slope_onset_all = fit(&|_| true, &tau_on, &boot_on);
        let emm = steps
            .iter()
            .map(|&s| Emm {
                train_step: s,
                emm: cells
                    .iter()
                    .filter(|c| c.train_step == s && c.f_mem >= EMM_FRACTION)
                    .map(|c| c.n)
                    .max(),
            })
            .collect();
        out.push(Trajectory {
            family,
            threshold: thr,
            onset_fraction: rule.onset_fraction,
            shared_steps,
            frechet_limit: 1.0 + rule.frechet_tolerance,
            cells,
            onsets,
            slope,
            slope_onset,
            slope_onset_all,
            emm,
        });
    }
    out
}

/// The probe columns of one cell's simulations averaged (module doc); NaN without any.
fn mean_probe(v: Option<&Vec<[ProbeLevel; 3]>>) -> [ProbeLevel; 3] {
    let nan = (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return [nan; 3];
    };
    let m = v.len() as f64;
    let mut out = [nan; 3];
    for (l, o) in out.iter_mut().enumerate() {
        let mean = |f: fn(&ProbeLevel) -> f64| v.iter().map(|p| f(&p[l])).sum::<f64>() / m;
        let se =
            |f: fn(&ProbeLevel) -> f64| v.iter().map(|p| f(&p[l]).powi(2)).sum::<f64>().sqrt() / m;
        *o = (mean(|p| p.0), se(|p| p.1), mean(|p| p.2), se(|p| p.3));
    }
    out
}

/// The log–log least-squares slope of τ against n over the n indices `js` (their point
/// estimates), with the percentile interval of the bootstrap resamples in which every one of
/// them was reached; `None` for fewer than two n.
fn fit_slope(ns: &[u64], js: &[usize], point: &[Option<f64>], boot: &[Vec<f64>]) -> Option<Slope> {
    if js.len() < 2 {
        return None;
    }
    let pts: Vec<(f64, f64)> = js
        .iter()
        .map(|&j| (ns[j] as f64, point[j].expect("reached")))
        .collect();
    let slope = loglog_slope(&pts)?;
    let mut bs: Vec<f64> = boot
        .iter()
        .filter(|b| js.iter().all(|&j| b[j].is_finite()))
        .filter_map(|b| {
            let p: Vec<(f64, f64)> = js.iter().map(|&j| (ns[j] as f64, b[j])).collect();
            loglog_slope(&p)
        })
        .collect();
    bs.sort_by(f64::total_cmp);
    let (lo, hi) = if bs.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (percentile(&bs, 0.025), percentile(&bs, 0.975))
    };
    Some(Slope {
        points: js.len(),
        slope,
        lo,
        hi,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The reading at the last snapshot of each n.
    fn final_verdicts(t: &Trajectory) -> Vec<(u64, String)> {
        let mut last: BTreeMap<u64, &Cell> = BTreeMap::new();
        for c in &t.cells {
            last.insert(c.n, c); // cells are sorted by (n, step): the last wins
        }
        last.into_iter()
            .map(|(n, c)| (n, c.verdict.clone()))
            .collect()
    }

    #[test]
    fn crossing_is_interpolated_in_log_steps() {
        // 0.2 at 100, 0.8 at 10000: 0.5 is halfway in log, i.e. at 1000.
        let c = [(100, 0.2), (10_000, 0.8)];
        assert!((first_crossing(&c, 0.5).unwrap() - 1000.0).abs() < 1e-9);
        assert_eq!(first_crossing(&c, 0.9), None);
        assert_eq!(first_crossing(&[(50, 0.6)], 0.5), Some(50.0));
    }

    #[test]
    fn loglog_slope_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [4.0, 16.0, 64.0].iter().map(|&n| (n, 30.0 * n)).collect();
        assert!((loglog_slope(&pts).unwrap() - 1.0).abs() < 1e-12);
        let sq: Vec<(f64, f64)> = [2.0, 3.0].iter().map(|&n: &f64| (n, n * n)).collect();
        assert!((loglog_slope(&sq).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(loglog_slope(&[(1.0, 2.0)]), None);
    }

    /// Rows of a made-up sweep where sim s at size n memorizes `k(n, step)` of 10 samples.
    fn rows(k: impl Fn(u64, u64, u64) -> u64) -> Vec<SimRow> {
        let mut v = Vec::new();
        for n in [4u64, 16, 64] {
            for sim in 0..4u64 {
                for step in [100u64, 1000, 10_000] {
                    let mut r = base(n, sim);
                    r.generator = "model".into();
                    r.train_step = step;
                    r.sampler = "ddpm/clipped-x0".into();
                    r.nn_frac_memorized = k(n, sim, step) as f64 / 10.0;
                    r.e_og = if step == 100 { 3.0 } else { 1.1 };
                    v.push(r);
                }
                v.push(base(n, sim));
            }
        }
        v
    }

    pub(crate) fn base(n: u64, sim: u64) -> SimRow {
        SimRow {
            data: "gmm".into(),
            px: 8,
            d: 64,
            components: 1,
            n,
            steps: 100,
            generator: "oracle".into(),
            protocol: "default".into(),
            sim,
            seed: sim,
            n_original: 100,
            n_train: n,
            n_generated: 10,
            bandwidth: "std-over-n".into(),
            dequantized: "none".into(),
            e_tg: 1.0,
            e_og: 1.0,
            delta: sim as f64 * 0.01,
            delta_unbiased: 0.0,
            nn_ratio_mean: 0.5,
            nn_frac_memorized: 0.0,
            pixels_used: 64,
            pixels_skipped: 0,
            train_seconds: 1.0,
            final_loss: 0.1,
            train_step: 0,
            sampler: "-".into(),
            ..Default::default()
        }
    }

    #[test]
    fn onsets_slope_and_emm_of_a_made_up_sweep() {
        // n = 4 copies everything from step 1000, n = 16 from 10000, n = 64 never.
        let r = rows(|n, _sim, step| match (n, step) {
            (4, s) if s >= 1000 => 10,
            (16, 10_000) => 10,
            _ => 0,
        });
        let rule = VerdictRule::default();
        let g = memdiff_metrics::summary::summarize_with(&r, &rule);
        let t = trajectories(&r, &g, &rule);
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert_eq!(t.cells.len(), 9);
        let on: Vec<(u64, Option<f64>)> = t.onsets.iter().map(|o| (o.n, o.tau_mem)).collect();
        // 0 -> 1 between snapshots: the log-midpoint.
        let mid = |a: f64, b: f64| (a * b).sqrt();
        assert!((on[0].1.unwrap() - mid(100.0, 1000.0)).abs() < 1e-9);
        assert!((on[1].1.unwrap() - mid(1000.0, 10_000.0)).abs() < 1e-9);
        assert_eq!(on[2], (64, None));
        // Every simulation agrees: the bootstrap interval is the point.
        assert_eq!(t.onsets[0].tau_mem_lo, t.onsets[0].tau_mem);
        let s = t.slope.as_ref().unwrap();
        assert_eq!(s.points, 2);
        assert!((s.slope - (10.0f64).ln() / (4.0f64).ln()).abs() < 1e-9);
        let emm: Vec<Option<u64>> = t.emm.iter().map(|e| e.emm).collect();
        assert_eq!(emm, vec![None, Some(4), Some(16)]);
        // τ_gen: E_OG is 3x the oracle's at step 100, within tolerance from 1000.
        assert!(t.onsets.iter().all(|o| o.tau_gen == Some(1000)));
        let v = final_verdicts(t);
        assert_eq!(v[0].1, "copying");
        assert_eq!(v[2].1, "generalizing");
    }

    #[test]
    fn bootstrap_interval_covers_disagreeing_simulations() {
        // Half the simulations of n = 4 copy from step 1000, the other half from 10000.
        let r = rows(|n, sim, step| match (n, sim % 2, step) {
            (4, 0, s) if s >= 1000 => 10,
            (4, 1, 10_000) => 10,
            (16, _, 10_000) => 10,
            _ => 0,
        });
        let rule = VerdictRule::default();
        let g = memdiff_metrics::summary::summarize_with(&r, &rule);
        let t = &trajectories(&r, &g, &rule)[0];
        let o = &t.onsets[0];
        // Pooled f_mem is exactly 0.5 at 1000: the onset is step 1000.
        assert!((o.tau_mem.unwrap() - 1000.0).abs() < 1e-6);
        assert!(o.tau_mem_lo.unwrap() < 1000.0 && o.tau_mem_hi.unwrap() > 1000.0);
    }

    #[test]
    fn onset_gap_and_slopes_with_budgets_that_grow_with_n() {
        // Each n measured at its own steps n, 10 n, 100 n (a budget of 100 n), 100 samples.
        // f_mem: n = 64 and 256: 0, 0.02, 0.6, so f_mem = 0.01 is crossed halfway in log
        // between n and 10 n: τ_onset = √10 n; n = 16 copies 2 % from its first snapshot:
        // τ_onset = 16. τ_gen: n = 16 never at the data's quality (E_OG 5 × the oracle's),
        // the others from their first snapshot, so only n = 64, 256 have τ_onset ≥ 2 τ_gen.
        // Loss probe: n = 64's training loss falls from 0.9 to 0.5 at 10 n (s.e. 0.01), its
        // held-out loss stays 0.9; n = 256's both stay at 0.9; n = 16 has no probe.
        let mut r = Vec::new();
        for n in [16u64, 64, 256] {
            for sim in 0..2 {
                let mut oracle = base(n, sim);
                oracle.n_generated = 100;
                r.push(oracle);
                for (j, step) in [n, 10 * n, 100 * n].into_iter().enumerate() {
                    let mut m = base(n, sim);
                    m.generator = "model".into();
                    m.train_step = step;
                    m.sampler = "ddpm/clipped-x0".into();
                    m.n_generated = 100;
                    m.nn_frac_memorized = match (n, j) {
                        (16, 0) => 0.02,
                        (16, _) => 0.6,
                        (_, 0) => 0.0,
                        (_, 1) => 0.02,
                        _ => 0.6,
                    };
                    m.e_og = if n == 16 { 5.0 } else { 1.0 };
                    if n != 16 {
                        let tr = if n == 64 && j > 0 { 0.5 } else { 0.9 };
                        m.set_probe(&[(tr, 0.01); 3], &[(0.9, 0.01); 3]);
                    }
                    r.push(m);
                }
            }
        }
        let rule = VerdictRule::default();
        let g = memdiff_metrics::summary::summarize_with(&r, &rule);
        let t = &trajectories(&r, &g, &rule)[0];
        assert!(!t.shared_steps);
        assert_eq!(t.cells.len(), 9);
        let o: BTreeMap<u64, &Onset> = t.onsets.iter().map(|o| (o.n, o)).collect();
        assert_eq!(o[&16].tau_onset, Some(16.0));
        for n in [64u64, 256] {
            let want = 10f64.sqrt() * n as f64;
            assert!(
                (o[&n].tau_onset.unwrap() - want).abs() < 1e-9 * want,
                "n = {n}"
            );
            // Identical simulations: the interval is the point.
            assert_eq!(o[&n].tau_onset_lo, o[&n].tau_onset);
            // τ_mem at 0.5: (0.5 - 0.02) / (0.6 - 0.02) of the way from 10 n to 100 n in log.
            let w = 0.48 / 0.58;
            let tm = (((10 * n) as f64).ln() + w * 10f64.ln()).exp();
            assert!((o[&n].tau_mem.unwrap() - tm).abs() < 1e-9 * tm);
            assert_eq!(o[&n].tau_gen, Some(n));
            assert!(o[&n].beyond_gen);
            assert_eq!(o[&n].last_step, 100 * n);
        }
        assert_eq!(o[&16].tau_gen, None);
        assert!(!o[&16].beyond_gen);
        // The onset slope over the n beyond τ_gen is 1; over every n it is not.
        let sl = t.slope_onset.as_ref().unwrap();
        assert_eq!(sl.points, 2);
        assert!((sl.slope - 1.0).abs() < 1e-12);
        let all = t.slope_onset_all.as_ref().unwrap();
        assert_eq!(all.points, 3);
        // By hand: ln τ = (ln 16, ln 64 + ½ ln 10, ln 256 + ½ ln 10) against ln n.
        let pts = [
            (16.0, 16.0),
            (64.0, 64.0 * 10f64.sqrt()),
            (256.0, 256.0 * 10f64.sqrt()),
        ];
        assert!((all.slope - loglog_slope(&pts).unwrap()).abs() < 1e-12);
        assert!(all.slope > 1.1);
        // The loss gap: 0.4 ± 0.0141 opens at n = 64's second snapshot; none at 256 or 16.
        assert_eq!(o[&64].gap_onset, Some(640));
        assert_eq!(o[&256].gap_onset, None);
        assert_eq!(o[&16].gap_onset, None);
        let c = t
            .cells
            .iter()
            .find(|c| c.n == 64 && c.train_step == 640)
            .unwrap();
        let (gap, se) = c.gap();
        assert!((gap - 0.4).abs() < 1e-12);
        // Two simulations of s.e. 0.01 each: the mean's s.e. is √2·0.01 / 2 per set.
        assert!((se - 0.01).abs() < 1e-12, "{se}");
        assert!(t
            .cells
            .iter()
            .filter(|c| c.n == 16)
            .all(|c| c.probe[0].0.is_nan()));
    }
}
