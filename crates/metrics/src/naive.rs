//! The straightforward reference: docs/METHOD.md §4 as written, an O(n_A n_B d) double loop over all pairs
//! with `f64::exp`, no sorting, no cut-off, no tie collapsing. Used by tests and benchmarks to
//! check the fast path; do not use it for real sets.

use crate::error::{MetricsError, Result};
use crate::kde::{kernel, KdeOptions, Value};

/// What the reference computes (already scaled by [`KdeOptions::scale`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NaiveResult {
    pub e_tg: f64,
    pub e_og: f64,
    pub delta: f64,
    pub delta_unbiased: f64,
    pub pixels_used: usize,
}

fn col<T: Value>(data: &[T], n: usize, d: usize, i: usize) -> Vec<f64> {
    (0..n).map(|k| data[k * d + i].into()).collect()
}

/// `sum_k sum_l K(a_k - b_l; v)`, every pair.
pub fn pair_sum(a: &[f64], b: &[f64], v: f64) -> f64 {
    let mut s = 0.0;
    for &x in a {
        for &y in b {
            s += kernel(x - y, v);
        }
    }
    s
}

/// `sum_{k != l} K(a_k - a_l; v)`.
pub fn offdiag_sum(a: &[f64], v: f64) -> f64 {
    let mut s = 0.0;
    for (k, &x) in a.iter().enumerate() {
        for (l, &y) in a.iter().enumerate() {
            if k != l {
                s += kernel(x - y, v);
            }
        }
    }
    s
}

/// E_TG, E_OG, Δ, Δ_U by brute force, with the same options as the fast path (the explicit
/// `sigma`, `sigma_scale`, floors and the bandwidth rule are honoured; the cut-off is not).
#[allow(clippy::too_many_arguments)]
pub fn evaluate<O: Value, T: Value, G: Value>(
    o: &[O],
    n_o: usize,
    t: &[T],
    n_t: usize,
    g: &[G],
    n_g: usize,
    d: usize,
    opts: &KdeOptions,
) -> Result<NaiveResult> {
    let (mut etg, mut eog, mut du, mut used) = (0.0, 0.0, 0.0, 0usize);
    for i in 0..d {
        let oc = col(o, n_o, d, i);
        let tc = col(t, n_t, d, i);
        let gc = col(g, n_g, d, i);
        let n = n_o as f64;
        let mean = oc.iter().sum::<f64>() / n;
        let var = oc.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let mx = oc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mn = oc.iter().cloned().fold(f64::INFINITY, f64::min);
        let mut sigma = match &opts.sigma {
            Some(s) => s[i],
            None if n_o > 1 => var.sqrt() * opts.sigma_scale,
            None => 0.0,
        };
        let mut usable = match &opts.sigma {
            Some(_) => sigma > 0.0,
            None => mx != mn,
        };
        if let Some(f) = opts.min_std {
            sigma = sigma.max(f);
            usable = true;
        }
        if !opts.bandwidth.uses_sigma() {
            usable = true;
        }
        if opts.exclude.as_ref().is_some_and(|x| x[i]) {
            usable = false;
        }
        if !usable {
            continue;
        }
        used += 1;
        let eps = |m: usize| {
            let e = opts.bandwidth.eps(sigma, m, d);
            opts.min_bandwidth.map_or(e, |f| e.max(f))
        };
        let (eo, et, eg) = (eps(n_o), eps(n_t), eps(n_g));
        let (no, nt, ng) = (n_o as f64, n_t as f64, n_g as f64);
        let s_oo = pair_sum(&oc, &oc, 2.0 * eo * eo) / (no * no);
        let s_tt = pair_sum(&tc, &tc, 2.0 * et * et) / (nt * nt);
        let s_gg = pair_sum(&gc, &gc, 2.0 * eg * eg) / (ng * ng);
        let s_tg = pair_sum(&tc, &gc, et * et + eg * eg) / (nt * ng);
        let s_og = pair_sum(&oc, &gc, eo * eo + eg * eg) / (no * ng);
        let u_tt = offdiag_sum(&tc, 2.0 * et * et) / (nt * (nt - 1.0));
        let u_oo = offdiag_sum(&oc, 2.0 * eo * eo) / (no * (no - 1.0));
        etg += s_tt + s_gg - 2.0 * s_tg;
        eog += s_oo + s_gg - 2.0 * s_og;
        du += u_tt - u_oo - 2.0 * (s_tg - s_og);
    }
    if used == 0 {
        return Err(MetricsError::NoUsablePixels { skipped: d });
    }
    let sc = opts.scale() / used as f64;
    Ok(NaiveResult {
        e_tg: etg * sc,
        e_og: eog * sc,
        delta: (etg - eog) * sc,
        delta_unbiased: du * sc,
        pixels_used: used,
    })
}
