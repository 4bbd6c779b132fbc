//! Closed forms between the generated Gaussian and the data law `N(mu 1, sigma^2 I)`, and the
//! full-dimensional KDE distances `E_TG`, `E_OG`, `Δ` of docs/METHOD.md §6 (seed 001 eq. 3.4, 3.7, B.10).
//!
//! Everything is evaluated per eigen-direction of `Sigma_G` in log space: at `d = 100` the
//! determinants and the Gaussian normalisations under- and overflow a plain product.

use crate::fit::Generator;
use crate::log_sum_exp;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::Serialize;
use std::f64::consts::PI;

/// Squared Hellinger distance `H^2 = 1 - BC` with the Bhattacharyya coefficient
/// `BC = [2^d sqrt(det Sigma_G det(sigma^2 I)) / det(Sigma_G + sigma^2 I)]^(1/2)
///       exp(-(1/4) (mu_G - mu)^T (Sigma_G + sigma^2 I)^-1 (mu_G - mu))`.
/// Exactly 1 when `Sigma_G` is singular (decided from the fit's rank).
pub fn hellinger2(g: &Generator, mu: f64, sigma: f64) -> f64 {
    if g.singular() {
        return 1.0;
    }
    let s2 = sigma * sigma;
    let delta = g.mu.map(|m| m - mu);
    let pd = g.evecs.tr_mul(&delta);
    let mut log_bc = 0.0;
    for i in 0..g.d() {
        let gi = g.evals[i];
        let c = gi + s2;
        // (1/2) log(2 sqrt(g s2) / (g + s2)) <= 0 (AM-GM), minus the mean part.
        log_bc += 0.5 * (2.0f64.ln() + 0.5 * (gi.ln() + s2.ln()) - c.ln());
        log_bc -= 0.25 * pd[i] * pd[i] / c;
    }
    (-log_bc.exp_m1()).clamp(0.0, 1.0)
}

/// `KL(rho_G | rho) = KL_mean + KL_var` (seed 001 eq. B.4, B.10; docs/METHOD.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Kl {
    /// `|mu - mu_G|^2 / (2 sigma^2)`.
    pub mean: f64,
    /// Exact `(1/2)[tr A - d - log det A]`, `A = Sigma_G / sigma^2`; `+inf` when singular.
    pub var: f64,
    /// Quadratic form `(1/4) tr((A - I)^2)` (what Theorem 3.1 expands).
    pub var_quad: f64,
}

impl Kl {
    /// The exact total `KL_mean + KL_var`.
    pub fn total(&self) -> f64 {
        self.mean + self.var
    }
}

pub fn kl(g: &Generator, mu: f64, sigma: f64) -> Kl {
    let s2 = sigma * sigma;
    let mean = g.mu.iter().map(|m| (m - mu) * (m - mu)).sum::<f64>() / (2.0 * s2);
    let mut var = 0.0;
    let mut quad = 0.0;
    for &gi in g.evals.iter() {
        let u = gi / s2 - 1.0;
        quad += 0.25 * u * u;
        // a - 1 - ln a, stable near a = 1
        var += 0.5 * (u - u.ln_1p());
    }
    if g.singular() {
        var = f64::INFINITY;
    }
    Kl {
        mean,
        var,
        var_quad: quad,
    }
}

/// `log` of the KDE width squared for a set of `m` points: see [`crate::EpsRule`]. Computed in
/// log form so that the diagonal self-terms of T and O cancel to rounding (docs/METHOD.md §6).
pub fn log_eps2(rule: crate::EpsRule, sigma: f64, m: usize, d: usize) -> f64 {
    match rule {
        crate::EpsRule::Mixing => 2.0 * sigma.ln() - 2.0 * (m as f64).ln() / d as f64,
        crate::EpsRule::L2Opt => 2.0 * crate::theory::eps_opt(sigma, m, d).ln(),
    }
}

/// `log((1/m) sum_k N(mu_G - y_k; 0, Sigma_G + eps^2 I))` given the projections
/// `proj = P^T (y_k - c)` (`d x m`) and `pmu = P^T (mu_G - c)` for any common shift `c`.
pub fn log_cross(g: &Generator, log_eps2: f64, proj: &DMatrix<f64>, pmu: &DVector<f64>) -> f64 {
    let d = g.d();
    let eps2 = log_eps2.exp();
    let inv_c: Vec<f64> = g.evals.iter().map(|&e| 1.0 / (e + eps2)).collect();
    let log_det: f64 = g.evals.iter().map(|&e| (e + eps2).ln()).sum();
    let norm = -0.5 * d as f64 * (2.0 * PI).ln() - 0.5 * log_det;
    let m = proj.ncols();
    let quad = |k: usize| -> f64 {
        let col = proj.column(k);
        let mut q = 0.0;
        for i in 0..d {
            let v = pmu[i] - col[i];
            q += v * v * inv_c[i];
        }
        -0.5 * q
    };
    let exps: Vec<f64> = if m * d > 1 << 16 {
        (0..m).into_par_iter().map(quad).collect()
    } else {
        (0..m).map(quad).collect()
    };
    norm + log_sum_exp(exps) - (m as f64).ln()
}

/// `log((1/m^2) sum_{i != j} N(y_i - y_j; 0, 2 eps^2 I))` over the columns of `y` (`-inf` for
/// fewer than 2 points). O(m^2 d), rows in parallel.
pub fn log_self_offdiag(y: &DMatrix<f64>, log_eps2: f64) -> f64 {
    let (d, m) = (y.nrows(), y.ncols());
    if m < 2 {
        return f64::NEG_INFINITY;
    }
    let inv4e = 1.0 / (4.0 * log_eps2.exp());
    let row = |i: usize| -> f64 {
        let a = y.column(i);
        let a = a.as_slice();
        let mut buf = Vec::with_capacity(m - i - 1);
        for j in (i + 1)..m {
            let b = y.column(j);
            let b = b.as_slice();
            let mut s = 0.0;
            for k in 0..d {
                let t = a[k] - b[k];
                s += t * t;
            }
            buf.push(-s * inv4e);
        }
        log_sum_exp(buf)
    };
    let rows: Vec<f64> = if m * m * d > 1 << 18 {
        (0..m - 1).into_par_iter().map(row).collect()
    } else {
        (0..m - 1).map(row).collect()
    };
    let log_norm = -0.5 * d as f64 * ((4.0 * PI).ln() + log_eps2);
    2.0f64.ln() + log_sum_exp(rows) + log_norm - 2.0 * (m as f64).ln()
}

/// `sum_{i<j} exp(-|y_i - y_j|^2 / (4 eps^2))` over all columns (plain sum, rows in parallel).
pub fn pair_kernel_sum(y: &DMatrix<f64>, log_eps2: f64) -> f64 {
    let m = y.ncols();
    let inv4e = 1.0 / (4.0 * log_eps2.exp());
    let row = |i: usize| -> f64 {
        let a = y.column(i);
        ((i + 1)..m)
            .map(|j| (-sqdist(&a, &y.column(j)) * inv4e).exp())
            .sum::<f64>()
    };
    // Collect, then sum in order: a parallel float reduction would depend on the thread count.
    let rows: Vec<f64> = (0..m.saturating_sub(1)).into_par_iter().map(row).collect();
    rows.iter().sum()
}

/// The part of [`pair_kernel_sum`] over pairs that touch at least one column of `comp`
/// (`in_comp[i]` marks them): `sum_{i in C} [sum_{j not in C} k_ij + sum_{j in C, j > i} k_ij]`.
pub fn pair_kernel_sum_touching(
    y: &DMatrix<f64>,
    log_eps2: f64,
    comp: &[usize],
    in_comp: &[bool],
) -> f64 {
    let m = y.ncols();
    let inv4e = 1.0 / (4.0 * log_eps2.exp());
    let row = |&i: &usize| -> f64 {
        let a = y.column(i);
        (0..m)
            .filter(|&j| j != i && (!in_comp[j] || j > i))
            .map(|j| (-sqdist(&a, &y.column(j)) * inv4e).exp())
            .sum::<f64>()
    };
    let rows: Vec<f64> = comp.par_iter().map(row).collect();
    rows.iter().sum()
}

fn sqdist<S1, S2>(
    a: &nalgebra::Matrix<f64, nalgebra::Dyn, nalgebra::U1, S1>,
    b: &nalgebra::Matrix<f64, nalgebra::Dyn, nalgebra::U1, S2>,
) -> f64
where
    S1: nalgebra::RawStorage<f64, nalgebra::Dyn>,
    S2: nalgebra::RawStorage<f64, nalgebra::Dyn>,
{
    let mut s = 0.0;
    for k in 0..a.nrows() {
        let t = a[k] - b[k];
        s += t * t;
    }
    s
}

/// `log((1/m^2) sum_{i != j} N(...; 0, 2 eps^2 I))` from a plain pair sum `sum_{i<j} k_ij`.
pub fn log_offdiag_from_pair_sum(pair_sum: f64, m: usize, d: usize, log_eps2: f64) -> f64 {
    2.0f64.ln() + pair_sum.ln()
        - 0.5 * d as f64 * ((4.0 * PI).ln() + log_eps2)
        - 2.0 * (m as f64).ln()
}

/// `log((1/m^2) sum_i N(0; 0, 2 eps^2 I)) = -log m - (d/2) log(4 pi eps^2)`.
pub fn log_self_diag(m: usize, d: usize, log_eps2: f64) -> f64 {
    -(m as f64).ln() - 0.5 * d as f64 * ((4.0 * PI).ln() + log_eps2)
}

/// `log ∫ rho_G^2 = -(d/2) log(4 pi) - (1/2) log det Sigma_G` (`+inf` when singular).
pub fn log_gg(g: &Generator) -> f64 {
    if g.singular() {
        return f64::INFINITY;
    }
    -0.5 * g.d() as f64 * (4.0 * PI).ln() - 0.5 * g.evals.iter().map(|e| e.ln()).sum::<f64>()
}

/// `sum_k s_k exp(l_k)` for signed log-magnitudes, scaled by the largest to avoid under/overflow.
pub fn signed_sum(terms: &[(f64, f64)]) -> f64 {
    let m = terms
        .iter()
        .filter(|t| t.0 != 0.0)
        .map(|t| t.1)
        .fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return 0.0;
    }
    if m == f64::INFINITY {
        return f64::INFINITY;
    }
    let s: f64 = terms
        .iter()
        .filter(|t| t.0 != 0.0)
        .map(|&(sign, l)| sign * (l - m).exp())
        .sum();
    s * m.exp()
}

/// The three full-dimensional distances of one simulation and the logs of their parts.
/// `*_rel` values are in units of `∫rho^2 = (4 pi sigma^2)^(-d/2)` of the data law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeltaTerms {
    pub e_tg: f64,
    pub e_og: f64,
    /// `Δ = E_TG - E_OG = S_TT - S_OO - 2 (S_TG - S_OG)`: `∫rho_G^2` cancels, finite always.
    pub delta: f64,
    pub delta_rel: f64,
    pub log_s_gg: f64,
    pub log_s_tg: f64,
    pub log_s_og: f64,
    pub log_s_tt_diag: f64,
    pub log_s_tt_off: f64,
    pub log_s_oo_diag: f64,
    pub log_s_oo_off: f64,
}

/// Inputs of [`delta_terms`] for one set (T or O): the projections of its points, its size, its
/// width and its off-diagonal self-term.
pub struct SetTerms<'a> {
    pub proj: &'a DMatrix<f64>,
    pub m: usize,
    pub log_eps2: f64,
    pub log_off: f64,
}

/// `E_TG`, `E_OG`, `Δ` (seed 001 eq. 3.7 with `theta_1 theta_1^T`). `pmu = P^T (mu_G - c)` with
/// the same shift `c` as the sets' projections; `log_rho2` = `log ∫rho^2` for the `_rel` values.
pub fn delta_terms(
    g: &Generator,
    pmu: &DVector<f64>,
    t: &SetTerms<'_>,
    o: &SetTerms<'_>,
    log_rho2: f64,
) -> DeltaTerms {
    let d = g.d();
    let log_s_tg = log_cross(g, t.log_eps2, t.proj, pmu);
    let log_s_og = log_cross(g, o.log_eps2, o.proj, pmu);
    let log_tt_diag = log_self_diag(t.m, d, t.log_eps2);
    let log_oo_diag = log_self_diag(o.m, d, o.log_eps2);
    let log_gg = log_gg(g);
    // diag_T - diag_O = e^b expm1(a - b): the two cancel exactly in real arithmetic under the
    // mixing rule, so take their difference before adding the small terms.
    let dd = (log_tt_diag - log_oo_diag).exp_m1();
    let diag_term = if dd == 0.0 {
        (0.0, f64::NEG_INFINITY)
    } else {
        (dd.signum(), log_oo_diag + dd.abs().ln())
    };
    let ln2 = 2.0f64.ln();
    let terms = [
        diag_term,
        (1.0, t.log_off),
        (-1.0, o.log_off),
        (-1.0, ln2 + log_s_tg),
        (1.0, ln2 + log_s_og),
    ];
    let delta = signed_sum(&terms);
    let shifted: Vec<(f64, f64)> = terms.iter().map(|&(s, l)| (s, l - log_rho2)).collect();
    let delta_rel = signed_sum(&shifted);
    let e = |cross: f64, diag: f64, off: f64| {
        if g.singular() {
            f64::INFINITY
        } else {
            signed_sum(&[(1.0, log_gg), (-1.0, ln2 + cross), (1.0, diag), (1.0, off)])
        }
    };
    let e_tg = e(log_s_tg, log_tt_diag, t.log_off);
    let e_og = e(log_s_og, log_oo_diag, o.log_off);
    DeltaTerms {
        e_tg,
        e_og,
        delta,
        delta_rel,
        log_s_gg: log_gg,
        log_s_tg,
        log_s_og,
        log_s_tt_diag: log_tt_diag,
        log_s_tt_off: t.log_off,
        log_s_oo_diag: log_oo_diag,
        log_s_oo_off: o.log_off,
    }
}

/// `log ∫ rho^2` for `rho = N(mu, sigma^2 I_d)`: `-(d/2) log(4 pi sigma^2)`.
pub fn log_rho2(sigma: f64, d: usize) -> f64 {
    -0.5 * d as f64 * (4.0 * PI * sigma * sigma).ln()
}
