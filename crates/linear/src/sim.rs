//! Monte Carlo over simulations: fresh training pairs per simulation, the fit, `H^2`, `KL`, and
//! (with an original set O) the full-dimensional `E_TG`, `E_OG`, `Δ` and P(Δ>0).
//!
//! Reproducibility: simulation `s` draws from `ChaCha8Rng::seed_from_u64(seed)` on stream `s + 1`
//! (O uses stream 0), so results do not depend on the number of threads.

use crate::closed::{self, DeltaTerms, Kl, SetTerms};
use crate::fit::{self, Generator};
use crate::params::{EpsRule, Params};
use crate::{invalid, Result};
use memdiff_metrics::stats::{wilson, Proportion, Z95};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

/// The original set O of N points (one draw for all simulations, as in the seeds) with its
/// KDE width and its off-diagonal self-term, computed once.
#[derive(Debug, Clone)]
pub struct OriginalSet {
    /// Points minus `mu` (`d x N`): distances are shift-invariant and this avoids cancellation.
    pub y0: DMatrix<f64>,
    pub mu: f64,
    pub eps_rule: EpsRule,
    pub log_eps2: f64,
    pub log_off: f64,
}

impl OriginalSet {
    /// Draws `n_original` points from the data model's law of `Y` (`ChaCha8`, `seed`, stream 0).
    pub fn draw(p: &Params, n_original: usize, eps_rule: EpsRule, seed: u64) -> Result<Self> {
        p.validate()?;
        if n_original < 2 {
            return Err(invalid(
                "n_original",
                n_original,
                "the original set needs at least 2 points",
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let y = fit::draw_y(p, n_original, &mut rng);
        Ok(Self::from_points(p, &y, eps_rule))
    }

    /// Uses given points (`d x N`, raw values).
    pub fn from_points(p: &Params, y: &DMatrix<f64>, eps_rule: EpsRule) -> Self {
        let y0 = y.map(|v| v - p.mu);
        let log_eps2 = closed::log_eps2(eps_rule, p.sigma, y.ncols(), p.d);
        let log_off = closed::log_self_offdiag(&y0, log_eps2);
        Self {
            y0,
            mu: p.mu,
            eps_rule,
            log_eps2,
            log_off,
        }
    }

    pub fn len(&self) -> usize {
        self.y0.ncols()
    }

    pub fn is_empty(&self) -> bool {
        self.y0.ncols() == 0
    }
}

/// How simulations are run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimOptions {
    pub sims: usize,
    pub seed: u64,
    /// With an original set: T is a random subset of O (seed 000 §3.2: "train ... on a subset of
    /// it"), otherwise T is drawn independently of O.
    pub train_subset: bool,
    pub sampler: Sampler,
}

/// How the training pairs of a simulation are drawn when no original set is involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Wishart sufficient statistics when `n - 1 >= 2d` and no `Δ` is needed, else explicit.
    #[default]
    Auto,
    /// Always draw every pair.
    Explicit,
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Sampler::Auto),
            "explicit" => Ok(Sampler::Explicit),
            _ => Err(format!(
                "unknown sampler `{s}` (expected `auto` or `explicit`)"
            )),
        }
    }
}

impl SimOptions {
    /// `sims` simulations from `seed`, T a subset of O when O is given, automatic sampler.
    pub fn new(sims: usize, seed: u64) -> Self {
        Self {
            sims,
            seed,
            train_subset: true,
            sampler: Sampler::Auto,
        }
    }

    /// Whether the Wishart sampler is used at these settings.
    pub fn uses_wishart(&self, p: &Params, with_original: bool) -> bool {
        self.sampler == Sampler::Auto && !with_original && p.n > 2 * p.d
    }
}

/// One simulation's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimRecord {
    pub sim: usize,
    /// Rank of the fit (`min(n - 1, d)` with probability 1).
    pub rank: usize,
    pub kl: Kl,
    pub hellinger2: f64,
    pub delta: Option<DeltaTerms>,
}

/// Mean and standard error over simulations; the mean is `+inf` if any value is infinite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub se: f64,
}

impl Stat {
    pub fn of(xs: &[f64]) -> Self {
        let m = xs.len();
        if m == 0 {
            return Stat {
                mean: f64::NAN,
                se: f64::NAN,
            };
        }
        if xs.iter().any(|x| x.is_infinite()) {
            return Stat {
                mean: f64::INFINITY,
                se: f64::NAN,
            };
        }
        let mean = xs.iter().sum::<f64>() / m as f64;
        let se = if m > 1 {
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (m - 1) as f64;
            (var / m as f64).sqrt()
        } else {
            f64::NAN
        };
        Stat { mean, se }
    }
}

/// Aggregates over simulations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub sims: usize,
    /// Simulations whose `Sigma_G` is singular (`n <= d`).
    pub singular: usize,
    pub kl_var: Stat,
    pub kl_var_quad: Stat,
    pub kl_mean: Stat,
    pub hellinger2: Stat,
    /// P(Δ>0) with its 95 % Wilson interval (only with an original set).
    pub p_delta_pos: Option<Proportion>,
    /// Mean Δ in units of `∫rho^2` (only with an original set).
    pub delta_rel: Option<Stat>,
}

impl Summary {
    pub fn of(records: &[SimRecord]) -> Self {
        let col = |f: &dyn Fn(&SimRecord) -> f64| records.iter().map(f).collect::<Vec<f64>>();
        let deltas: Vec<&DeltaTerms> = records.iter().filter_map(|r| r.delta.as_ref()).collect();
        let (p_delta_pos, delta_rel) = if deltas.is_empty() {
            (None, None)
        } else {
            let k = deltas.iter().filter(|t| t.delta > 0.0).count() as u64;
            let rel: Vec<f64> = deltas.iter().map(|t| t.delta_rel).collect();
            (
                Some(wilson(k, deltas.len() as u64, Z95)),
                Some(Stat::of(&rel)),
            )
        };
        Summary {
            sims: records.len(),
            singular: records.iter().filter(|r| r.kl.var.is_infinite()).count(),
            kl_var: Stat::of(&col(&|r| r.kl.var)),
            kl_var_quad: Stat::of(&col(&|r| r.kl.var_quad)),
            kl_mean: Stat::of(&col(&|r| r.kl.mean)),
            hellinger2: Stat::of(&col(&|r| r.hellinger2)),
            p_delta_pos,
            delta_rel,
        }
    }
}

/// Checks the settings of a simulation run (errors name the field and the fix).
pub fn check(p: &Params, opts: &SimOptions, original: Option<&OriginalSet>) -> Result<()> {
    p.validate()?;
    if opts.sims == 0 {
        return Err(invalid("sims", opts.sims, "run at least one simulation"));
    }
    if let Some(o) = original {
        if o.y0.nrows() != p.d {
            return Err(invalid(
                "d",
                p.d,
                "the original set was drawn at another dimension",
            ));
        }
        if opts.train_subset && p.n > o.len() {
            return Err(invalid(
                "n",
                p.n,
                "T is a subset of O: use n <= n_original (or draw T independently)",
            ));
        }
    }
    Ok(())
}

/// When T is a large subset of O (`n^2 > 2 (N - n) N`), T's off-diagonal self-term is computed as
/// all O pairs (at T's width, once per run) minus the pairs touching O \ T: O((N - n) N d) per
/// simulation instead of O(n^2 d). Returns the all-pairs sum, or `None` when the direct sum is
/// cheaper (or the sum underflows).
fn complement_base(p: &Params, opts: &SimOptions, o: &OriginalSet) -> Option<f64> {
    let (n, big) = (p.n as f64, o.len() as f64);
    if !opts.train_subset || n * n <= 2.0 * (big - n) * big {
        return None;
    }
    let log_eps2_t = closed::log_eps2(o.eps_rule, p.sigma, p.n, p.d);
    let s = closed::pair_kernel_sum(&o.y0, log_eps2_t);
    (s > 0.0 && s.is_finite()).then_some(s)
}

/// Simulation number `sim` (deterministic in `(seed, sim)`).
pub fn run_one(
    p: &Params,
    opts: &SimOptions,
    original: Option<&OriginalSet>,
    sim: usize,
) -> Result<SimRecord> {
    let base = original.and_then(|o| complement_base(p, opts, o));
    run_one_with(p, opts, original, sim, base)
}

fn run_one_with(
    p: &Params,
    opts: &SimOptions,
    original: Option<&OriginalSet>,
    sim: usize,
    all_pairs: Option<f64>,
) -> Result<SimRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(sim as u64 + 1);
    if original.is_none() && opts.uses_wishart(p, false) {
        let st = fit::Stats::draw_wishart(p, p.n, &mut rng)?;
        let f = fit::fit_stats(p, &st)?;
        let g = f.generator();
        return Ok(SimRecord {
            sim,
            rank: f.rank,
            kl: closed::kl(&g, p.mu, p.sigma),
            hellinger2: closed::hellinger2(&g, p.mu, p.sigma),
            delta: None,
        });
    }
    let subset: Option<Vec<usize>> = match original {
        Some(o) if opts.train_subset => {
            Some(rand::seq::index::sample(&mut rng, o.len(), p.n).into_vec())
        }
        _ => None,
    };
    let y = match (&subset, original) {
        (Some(idx), Some(o)) => DMatrix::from_fn(p.d, p.n, |r, c| o.y0[(r, idx[c])] + p.mu),
        _ => fit::draw_y(p, p.n, &mut rng),
    };
    let x = fit::draw_x_given_y(p, &y, &mut rng);
    let f = fit::fit(p, &y, &x)?;
    let g = f.generator();
    let kl = closed::kl(&g, p.mu, p.sigma);
    let hellinger2 = closed::hellinger2(&g, p.mu, p.sigma);
    let delta = original.map(|o| delta_for(p, &g, o, &y, subset.as_deref(), all_pairs));
    Ok(SimRecord {
        sim,
        rank: f.rank,
        kl,
        hellinger2,
        delta,
    })
}

fn delta_for(
    p: &Params,
    g: &Generator,
    o: &OriginalSet,
    y: &DMatrix<f64>,
    subset: Option<&[usize]>,
    all_pairs: Option<f64>,
) -> DeltaTerms {
    let pt = g.evecs.transpose();
    let pmu = &pt * g.mu.map(|m| m - o.mu);
    let proj_o = &pt * &o.y0;
    let y0 = y.map(|v| v - o.mu);
    let proj_t = match subset {
        Some(idx) => DMatrix::from_fn(p.d, idx.len(), |r, c| proj_o[(r, idx[c])]),
        None => &pt * &y0,
    };
    let log_eps2_t = closed::log_eps2(o.eps_rule, p.sigma, p.n, p.d);
    let direct = || closed::log_self_offdiag(&y0, log_eps2_t);
    let log_off = match (subset, all_pairs) {
        (Some(idx), Some(all)) => {
            let mut in_t = vec![false; o.len()];
            for &i in idx {
                in_t[i] = true;
            }
            let in_comp: Vec<bool> = in_t.iter().map(|b| !b).collect();
            let comp: Vec<usize> = (0..o.len()).filter(|&i| in_comp[i]).collect();
            let removed = closed::pair_kernel_sum_touching(&o.y0, log_eps2_t, &comp, &in_comp);
            let t_sum = all - removed;
            // Only trust the difference when it keeps most of its digits.
            if t_sum > 1e-6 * all {
                closed::log_offdiag_from_pair_sum(t_sum, p.n, p.d, log_eps2_t)
            } else {
                direct()
            }
        }
        _ => direct(),
    };
    let t = SetTerms {
        proj: &proj_t,
        m: p.n,
        log_eps2: log_eps2_t,
        log_off,
    };
    let os = SetTerms {
        proj: &proj_o,
        m: o.len(),
        log_eps2: o.log_eps2,
        log_off: o.log_off,
    };
    closed::delta_terms(g, &pmu, &t, &os, closed::log_rho2(p.sigma, p.d))
}

/// Runs `opts.sims` simulations in parallel; `progress` is called once per finished simulation.
pub fn simulate(
    p: &Params,
    opts: &SimOptions,
    original: Option<&OriginalSet>,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<SimRecord>, Summary)> {
    check(p, opts, original)?;
    let all_pairs = original.and_then(|o| complement_base(p, opts, o));
    let records: Vec<SimRecord> = (0..opts.sims)
        .into_par_iter()
        .map(|s| {
            let r = run_one_with(p, opts, original, s, all_pairs);
            progress();
            r
        })
        .collect::<Result<Vec<_>>>()?;
    let summary = Summary::of(&records);
    Ok((records, summary))
}
