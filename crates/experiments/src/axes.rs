//! The number of diffusion steps s and the number of mixture components C as axes of a sweep
//! measured along training (docs/METHOD.md §7a), read from the trajectories
//! ([`crate::trajectory`]) and the groups of the main summary — the same numbers as the
//! trajectory tables.
//!
//! - [`s_axis`]: per (data, px, protocol, C) and training-set size n, every (s, sampler) at its
//!   budget (the last snapshot): f_mem with its Wilson interval, the Fréchet distance and E_OG
//!   over the oracle's, the reading, τ_onset and τ_mem; and the answer to seed 000's question
//!   for that n: the s with the best quality (smallest Fréchet distance over the oracle's; E_OG
//!   for results without it) among those whose samples do not copy (reading not "copying"), or
//!   none when every s copies.
//! - [`eta_along_training`]: seed 000's quality index η = −ln(1 − E_OG(n_large) / E_OG(n_small))
//!   at every snapshot step measured at both the smallest and the largest n of a family, with a
//!   95 % interval from the two means' standard errors (delta method: the ratio r has
//!   s.e.(r) = r √((se_l / e_l)² + (se_s / e_s)²), and η has s.e.(η) = s.e.(r) / (1 − r)).

use crate::trajectory::{Cell, Trajectory};
use memdiff_metrics::summary::GroupSummary;
use std::collections::BTreeMap;

/// The settings an axis is read over: everything but s (and the sampler) and n.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct AxisKey {
    pub data: String,
    pub px: u32,
    pub protocol: String,
    pub components: u32,
}

impl AxisKey {
    pub fn label(&self) -> String {
        format!("{} px {} C {}", self.data, self.px, self.components)
    }
    pub fn stem(&self) -> String {
        let mut s = format!("{}_px{}_c{}", self.data, self.px, self.components);
        if self.protocol != "default" {
            s.push_str(&format!("_{}", self.protocol));
        }
        s
    }
}

/// One (s, sampler) of one n at its budget.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SPoint {
    pub s: u32,
    pub sampler: String,
    /// The budget's step (the last snapshot of this n).
    pub train_step: u64,
    pub f_mem: f64,
    pub f_mem_lo: f64,
    pub f_mem_hi: f64,
    pub frechet_vs_oracle: f64,
    pub e_og_vs_oracle: f64,
    pub data_quality: bool,
    pub reading: String,
    pub tau_onset: Option<f64>,
    pub tau_mem: Option<f64>,
}

impl SPoint {
    /// The quality ratio the answer ranks by: Fréchet / oracle's, else E_OG / oracle's.
    pub fn quality(&self) -> f64 {
        if self.frechet_vs_oracle.is_finite() {
            self.frechet_vs_oracle
        } else {
            self.e_og_vs_oracle
        }
    }
    pub fn copies(&self) -> bool {
        self.reading == "copying"
    }
    /// `s = 100` or `s = 1000, ddim:50:eta0/clipped-x0` when another sampler shares the s.
    pub fn name(&self, plain_sampler: &str) -> String {
        if self.sampler == plain_sampler {
            format!("s = {}", self.s)
        } else {
            format!("s = {} ({})", self.s, self.sampler)
        }
    }
}

/// Every s of one n, and the answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SAxis {
    pub key: AxisKey,
    pub n: u64,
    /// Sorted by (s, sampler).
    pub points: Vec<SPoint>,
    /// Index in `points` of the best-quality s among those that do not copy; `None`: every s
    /// copies.
    pub best: Option<usize>,
    /// The answer in one sentence.
    pub answer: String,
}

/// The sampler most points use (named plainly in labels; the others are spelled out).
pub fn plain_sampler(points: &[SPoint]) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for p in points {
        *count.entry(p.sampler.as_str()).or_default() += 1;
    }
    count
        .into_iter()
        .max_by_key(|(name, c)| (*c, std::cmp::Reverse(*name)))
        .map_or(String::new(), |(s, _)| s.to_string())
}

/// The s axis of every family group with at least two (s, sampler) (module doc).
pub fn s_axis(trajectories: &[Trajectory]) -> Vec<SAxis> {
    let mut groups: BTreeMap<AxisKey, Vec<&Trajectory>> = BTreeMap::new();
    for t in trajectories {
        let f = &t.family;
        groups
            .entry(AxisKey {
                data: f.data.clone(),
                px: f.px,
                protocol: f.protocol.clone(),
                components: f.components,
            })
            .or_default()
            .push(t);
    }
    let mut out = Vec::new();
    for (key, ts) in groups {
        if ts.len() < 2 {
            continue;
        }
        let mut ns: Vec<u64> = ts
            .iter()
            .flat_map(|t| t.cells.iter().map(|c| c.n))
            .collect();
        ns.sort_unstable();
        ns.dedup();
        for n in ns {
            let mut points: Vec<SPoint> = ts
                .iter()
                .filter_map(|t| {
                    let last: &Cell = t
                        .cells
                        .iter()
                        .filter(|c| c.n == n)
                        .max_by_key(|c| c.train_step)?;
                    let onset = t.onsets.iter().find(|o| o.n == n);
                    Some(SPoint {
                        s: t.family.steps,
                        sampler: t.family.sampler.clone(),
                        train_step: last.train_step,
                        f_mem: last.f_mem,
                        f_mem_lo: last.f_mem_lo,
                        f_mem_hi: last.f_mem_hi,
                        frechet_vs_oracle: last.frechet_vs_oracle,
                        e_og_vs_oracle: last.e_og_vs_oracle,
                        data_quality: last.data_quality,
                        reading: last.verdict.clone(),
                        tau_onset: onset.and_then(|o| o.tau_onset),
                        tau_mem: onset.and_then(|o| o.tau_mem),
                    })
                })
                .collect();
            if points.len() < 2 {
                continue;
            }
            points.sort_by(|a, b| (a.s, &a.sampler).cmp(&(b.s, &b.sampler)));
            let best = points
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.copies() && p.quality().is_finite())
                .min_by(|a, b| a.1.quality().total_cmp(&b.1.quality()))
                .map(|(i, _)| i);
            let plain = plain_sampler(&points);
            let measure = if points.iter().all(|p| p.frechet_vs_oracle.is_finite()) {
                "Fréchet distance"
            } else {
                "E_OG"
            };
            let answer = match best {
                Some(i) => {
                    let p = &points[i];
                    format!(
                        "n = {n}: {} gives the best quality among the s whose samples do not copy ({measure} {:.2} × the oracle's, f_mem {:.2} [{:.2}, {:.2}] at step {}){}; {} of {} s copy.",
                        p.name(&plain),
                        p.quality(),
                        p.f_mem,
                        p.f_mem_lo,
                        p.f_mem_hi,
                        p.train_step,
                        if p.data_quality {
                            ""
                        } else {
                            ", though not at the data's quality"
                        },
                        points.iter().filter(|p| p.copies()).count(),
                        points.len()
                    )
                }
                None => format!(
                    "n = {n}: no s avoids copying at this n (every one of the {} s reads \"copying\" at its budget).",
                    points.len()
                ),
            };
            out.push(SAxis {
                key: key.clone(),
                n,
                points,
                best,
                answer,
            });
        }
    }
    out
}

/// η at one snapshot step of one family.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EtaPoint {
    pub key: AxisKey,
    pub s: u32,
    pub sampler: String,
    pub train_step: u64,
    pub n_small: u64,
    pub n_large: u64,
    pub e_og_small: f64,
    pub e_og_large: f64,
    /// η and its 95 % interval (NaN where E_OG(n_large) ≥ E_OG(n_small): η undefined).
    pub eta: f64,
    pub lo: f64,
    pub hi: f64,
}

/// η per snapshot step (module doc), for model groups measured along training.
pub fn eta_along_training(groups: &[GroupSummary]) -> Vec<EtaPoint> {
    type FamilyKey = (AxisKey, u32, String, u64);
    let mut fam: BTreeMap<FamilyKey, Vec<&GroupSummary>> = BTreeMap::new();
    for g in groups
        .iter()
        .filter(|g| g.key.generator == "model" && g.key.train_step > 0)
    {
        let k = &g.key;
        fam.entry((
            AxisKey {
                data: k.data.clone(),
                px: k.px,
                protocol: k.protocol.clone(),
                components: k.components,
            },
            k.steps,
            k.sampler.clone(),
            k.train_step,
        ))
        .or_default()
        .push(g);
    }
    let mut out = Vec::new();
    for ((key, s, sampler, step), gs) in fam {
        let small = gs.iter().min_by_key(|g| g.key.n).expect("non-empty");
        let large = gs.iter().max_by_key(|g| g.key.n).expect("non-empty");
        if small.key.n == large.key.n {
            continue;
        }
        let (es, el) = (small.e_og.mean, large.e_og.mean);
        let r = el / es;
        let (eta, lo, hi) = if r.is_finite() && (0.0..1.0).contains(&r) {
            let eta = -(1.0 - r).ln();
            let rel = |m: &memdiff_metrics::stats::MeanSe| {
                if m.se.is_finite() {
                    (m.se / m.mean).powi(2)
                } else {
                    0.0
                }
            };
            let se_r = r * (rel(&small.e_og) + rel(&large.e_og)).sqrt();
            let se = se_r / (1.0 - r);
            (eta, eta - 1.96 * se, eta + 1.96 * se)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        out.push(EtaPoint {
            key,
            s,
            sampler,
            train_step: step,
            n_small: small.key.n,
            n_large: large.key.n,
            e_og_small: es,
            e_og_large: el,
            eta,
            lo,
            hi,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::report::aggregate;
    use crate::trajectory::tests::base;
    use memdiff_metrics::summary::{SimRow, VerdictRule};

    /// A made-up sweep over s = 10, 100, 1000 at n = 8 and 128, two snapshots, two simulations:
    /// `model(n, s, step) = (f_mem, Fréchet)`; every oracle row has Fréchet 1 and E_OG 1.
    fn sweep(model: impl Fn(u64, u32, u64) -> (f64, f64)) -> Vec<SimRow> {
        let mut v = Vec::new();
        for n in [8u64, 128] {
            for s in [10u32, 100, 1000] {
                for sim in 0..2 {
                    let mut o = base(n, sim);
                    o.steps = s;
                    o.n_generated = 100;
                    o.frechet = 1.0;
                    v.push(o);
                    for step in [100u64, 1000] {
                        let (f, fr) = model(n, s, step);
                        let mut m = base(n, sim);
                        m.steps = s;
                        m.n_generated = 100;
                        m.generator = "model".into();
                        m.sampler = "ddpm/clipped-x0".into();
                        m.train_step = step;
                        m.nn_frac_memorized = f;
                        m.frechet = fr;
                        v.push(m);
                    }
                }
            }
        }
        v
    }

    #[test]
    fn the_best_s_among_those_that_do_not_copy_and_a_case_where_every_s_copies() {
        // n = 8 copies at every s by step 1000. n = 128: s = 10 does not copy but stays far
        // (Fréchet 2 × the oracle's), s = 100 does not copy and is at the data's quality
        // (1.1 ×), s = 1000 is closest (1.0 ×) but copies (f_mem 0.6).
        let rows = sweep(|n, s, step| match (n, s, step) {
            (8, _, 1000) => (0.9, 1.0),
            (8, _, _) => (0.0, 3.0),
            (_, 10, _) => (0.0, 2.0),
            (_, 100, _) => (0.0, 1.1),
            (_, _, 1000) => (0.6, 1.0),
            _ => (0.0, 3.0),
        });
        let rep = aggregate(&rows, &VerdictRule::default());
        assert_eq!(rep.s_axes.len(), 2);
        let small = &rep.s_axes[0];
        assert_eq!(small.n, 8);
        assert_eq!(small.best, None);
        assert!(
            small.answer.contains("no s avoids copying"),
            "{}",
            small.answer
        );
        let large = &rep.s_axes[1];
        assert_eq!(large.n, 128);
        let s: Vec<u32> = large.points.iter().map(|p| p.s).collect();
        assert_eq!(s, vec![10, 100, 1000]);
        assert_eq!(large.best, Some(1));
        let best = &large.points[1];
        assert!((best.frechet_vs_oracle - 1.1).abs() < 1e-12);
        assert_eq!(best.train_step, 1000);
        assert!(best.data_quality);
        assert_eq!(large.points[2].reading, "copying");
        assert!(
            large
                .answer
                .starts_with("n = 128: s = 100 gives the best quality")
                && large.answer.contains("1.10 × the oracle's")
                && large.answer.contains("1 of 3 s copy"),
            "{}",
            large.answer
        );
        // The tables and figures are written.
        let dir = tempfile::tempdir().unwrap();
        let (_, md, files) =
            crate::report::write_tables(&rows, dir.path(), &VerdictRule::default()).unwrap();
        assert!(md.contains("### Diffusion steps s along training"), "{md}");
        assert!(md.contains("| 128 | s = 100 **best** |"), "{md}");
        let csv = std::fs::read_to_string(dir.path().join("s_axis.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 6);
        assert!(files.iter().any(|f| f.ends_with("s_axis.csv")));
        let figs = crate::plots::axes_plots(&rep, dir.path()).unwrap();
        for f in ["s_axis_n128_gmm_px8_c1.svg", "phase_s_n8_gmm_px8_c1.png"] {
            assert!(figs.iter().any(|p| p.ends_with(f)), "{f}: {figs:?}");
        }
    }

    #[test]
    fn eta_per_snapshot_matches_a_hand_computation() {
        // E_OG per simulation: n = 8: 2.0, 2.2 (mean 2.1, s.e. 0.1); n = 128: 1.0, 1.2 (mean
        // 1.1, s.e. 0.1). r = 1.1 / 2.1 = 0.523810, η = −ln(1 − r) = 0.741937, s.e.(r) =
        // r √((0.1/2.1)² + (0.1/1.1)²) = 0.053757, s.e.(η) = 0.112888: [0.520676, 0.963198].
        let mut rows = sweep(|_, _, _| (0.0, 1.0));
        rows.retain(|r| r.steps == 100);
        for r in rows.iter_mut().filter(|r| r.generator == "model") {
            r.e_og = match r.n {
                8 => 2.0,
                _ => 1.0,
            } + 0.2 * r.sim as f64;
        }
        let rep = aggregate(&rows, &VerdictRule::default());
        let e = &rep.eta_steps;
        assert_eq!(e.len(), 2);
        for p in e {
            assert_eq!((p.n_small, p.n_large, p.s), (8, 128, 100));
            assert!((p.eta - 0.7419373447293773).abs() < 1e-12, "{p:?}");
            assert!((p.lo - 0.5206763123616229).abs() < 1e-9, "{p:?}");
            assert!((p.hi - 0.9631983770971317).abs() < 1e-9, "{p:?}");
        }
        assert_eq!(
            e.iter().map(|p| p.train_step).collect::<Vec<_>>(),
            vec![100, 1000]
        );
    }
}
