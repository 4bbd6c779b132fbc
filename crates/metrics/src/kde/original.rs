//! Preparation of O ([`OriginalSet::new`]: checks, bandwidths, sorted columns and self-terms,
//! once per grid point) and the evaluation of (T, G) against it ([`OriginalSet::evaluate`],
//! [`KdeResult`]).

use rayon::prelude::*;
use serde::Serialize;

use super::fast::{cross_term, self_term, Column, PixelTerms, SelfTerm};
use super::options::{KdeOptions, Value};
use crate::error::{MetricsError, Result};

/// Pixels handled together when gathering columns (cache-friendly transposition).
const BLOCK: usize = 16;
/// Pixels per gathering pass over O (larger: fewer strided passes over the big set).
const BLOCK_O: usize = 64;

/// The metric for one (O, T, G): pixel means of every term, scaled by [`KdeOptions::scale`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KdeResult {
    pub e_tg: f64,
    pub e_og: f64,
    /// `e_tg - e_og` (the papers' Δ).
    pub delta: f64,
    /// `u_tt - u_oo - 2 (s_tg - s_og)` (docs/METHOD.md §4b); NaN when T has one sample.
    pub delta_unbiased: f64,
    pub s_tt: f64,
    pub s_gg: f64,
    pub s_oo: f64,
    pub s_tg: f64,
    pub s_og: f64,
    pub u_tt: f64,
    pub u_oo: f64,
    pub pixels_used: usize,
    pub pixels_skipped: usize,
    pub n_original: usize,
    pub n_train: usize,
    pub n_generated: usize,
    /// The factor every term was multiplied by (1 or sqrt(2 pi)).
    pub scale: f64,
    /// Analytical bounds on the absolute cut-off error of `e_tg` and `e_og` (same units).
    pub e_tg_error_bound: f64,
    pub e_og_error_bound: f64,
    /// Mean over pixels of the share of `U_OO` / `U_TT` that comes from exactly equal values
    /// (near 1 for raw u8 data: ties dominate the self-terms, docs/METHOD.md §4b).
    pub tie_share_oo: f64,
    pub tie_share_tt: f64,
}

fn check_set<T: Value>(set: &str, data: &[T], n: usize, d: usize) -> Result<()> {
    if n == 0 {
        return Err(MetricsError::Empty { set: set.into() });
    }
    if d == 0 || data.len() != n * d {
        return Err(MetricsError::Shape {
            set: set.into(),
            len: data.len(),
            n,
            d,
        });
    }
    if let Some(pos) = data.iter().position(|&v| !v.into().is_finite()) {
        return Err(MetricsError::NonFinite {
            set: set.into(),
            row: pos / d,
            pixel: pos % d,
            value: data[pos].into(),
        });
    }
    Ok(())
}

/// Columns of `pixels` (row-major `(n, d)` data), gathered in one pass over the rows.
fn gather<T: Value>(data: &[T], n: usize, d: usize, pixels: &[usize]) -> Vec<Vec<f64>> {
    let mut cols: Vec<Vec<f64>> = pixels.iter().map(|_| vec![0.0; n]).collect();
    for (k, row) in data.chunks_exact(d).take(n).enumerate() {
        for (c, &p) in cols.iter_mut().zip(pixels) {
            c[k] = row[p].into();
        }
    }
    cols
}

/// The original set O, prepared once per grid point: per pixel `sigma_i`, the sorted column,
/// `eps_O`, `S_OO` and `U_OO`. Evaluate any number of (T, G) against it with
/// [`OriginalSet::evaluate`].
#[derive(Clone, Debug)]
pub struct OriginalSet {
    n: usize,
    d: usize,
    opts: KdeOptions,
    /// `sigma_i` (after scale and floor) for every pixel; NaN where skipped.
    sigma: Vec<f64>,
    /// Usable pixels, increasing.
    used: Vec<usize>,
    /// For each used pixel: column, eps_O and self-term.
    cols: Vec<Column>,
    eps: Vec<f64>,
    self_terms: Vec<SelfTerm>,
}

impl OriginalSet {
    /// Prepares O (`n` samples of `d` pixels, row-major).
    pub fn new<T: Value>(data: &[T], n: usize, d: usize, opts: &KdeOptions) -> Result<Self> {
        check_set("original", data, n, d)?;
        opts.validate(d)?;
        let all: Vec<usize> = (0..d).collect();
        type Prepared = Option<(Column, f64, SelfTerm)>;
        let blocks: Vec<(Vec<f64>, Vec<Prepared>)> = all
            .par_chunks(BLOCK_O)
            .map(|pix| {
                let cols = gather(data, n, d, pix);
                // Columns of the block in parallel too (finer tasks balance a loaded machine).
                let per: Vec<(f64, Prepared)> = pix
                    .par_iter()
                    .zip(cols.into_par_iter())
                    .map(|(&p, v)| {
                        let col = Column::from_values(v);
                        let (lo, hi) = col.min_max();
                        let mut sigma = match &opts.sigma {
                            Some(s) => s[p],
                            None => col.std() * opts.sigma_scale,
                        };
                        let mut usable = match &opts.sigma {
                            Some(_) => sigma.is_finite() && sigma > 0.0,
                            None => hi != lo,
                        };
                        if let Some(f) = opts.min_std {
                            sigma = if sigma.is_finite() { sigma.max(f) } else { f };
                            usable = true;
                        }
                        if !opts.bandwidth.uses_sigma() {
                            usable = true;
                        }
                        if opts.exclude.as_ref().is_some_and(|x| x[p]) {
                            usable = false;
                        }
                        if usable {
                            let eps = opts.eps(sigma, n, d);
                            let st = self_term(&col, eps, opts.cutoff);
                            (sigma, Some((col, eps, st)))
                        } else {
                            (f64::NAN, None)
                        }
                    })
                    .collect();
                let (sig, out): (Vec<f64>, Vec<Prepared>) = per.into_iter().unzip();
                (sig, out)
            })
            .collect();
        let mut sigma = Vec::with_capacity(d);
        let mut used = Vec::new();
        let mut cols = Vec::new();
        let mut eps = Vec::new();
        let mut self_terms = Vec::new();
        let mut p = 0;
        for (sig, out) in blocks {
            sigma.extend(sig);
            for o in out {
                if let Some((c, e, st)) = o {
                    used.push(p);
                    cols.push(c);
                    eps.push(e);
                    self_terms.push(st);
                }
                p += 1;
            }
        }
        if used.is_empty() {
            return Err(MetricsError::NoUsablePixels { skipped: d });
        }
        Ok(Self {
            n,
            d,
            opts: opts.clone(),
            sigma,
            used,
            cols,
            eps,
            self_terms,
        })
    }

    /// Number of original samples.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Pixels per sample.
    pub fn d(&self) -> usize {
        self.d
    }
    /// The options it was prepared with.
    pub fn options(&self) -> &KdeOptions {
        &self.opts
    }
    /// `sigma_i` per pixel (NaN where skipped).
    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }
    /// The usable pixels, increasing.
    pub fn used_pixels(&self) -> &[usize] {
        &self.used
    }
    /// Sorted column of the `j`-th usable pixel and its `eps_O`.
    pub fn column(&self, j: usize) -> (&Column, f64) {
        (&self.cols[j], self.eps[j])
    }

    /// Per-pixel terms (unscaled) of T (`n_t` x d) and G (`n_g` x d) against this O.
    pub fn evaluate_terms<T: Value, G: Value>(
        &self,
        t: &[T],
        n_t: usize,
        g: &[G],
        n_g: usize,
    ) -> Result<Vec<PixelTerms>> {
        let d = self.d;
        for (name, len, n) in [("train", t.len(), n_t), ("generated", g.len(), n_g)] {
            if n > 0 && len % n == 0 && len / n != d {
                return Err(MetricsError::PixelCount {
                    set: name.into(),
                    expected: d,
                    got: len / n,
                });
            }
        }
        check_set("train", t, n_t, d)?;
        check_set("generated", g, n_g, d)?;
        let opts = &self.opts;
        let idx: Vec<usize> = (0..self.used.len()).collect();
        let blocks: Vec<Vec<PixelTerms>> = idx
            .par_chunks(BLOCK)
            .map(|js| {
                let pix: Vec<usize> = js.iter().map(|&j| self.used[j]).collect();
                let tc = gather(t, n_t, d, &pix);
                let gc = gather(g, n_g, d, &pix);
                js.iter()
                    .zip(tc.into_iter().zip(gc))
                    .map(|(&j, (tv, gv))| {
                        let tcol = Column::from_values(tv);
                        let gcol = Column::from_values(gv);
                        let sigma = self.sigma[self.used[j]];
                        let eps_o = self.eps[j];
                        let eps_t = opts.eps(sigma, n_t, d);
                        let eps_g = opts.eps(sigma, n_g, d);
                        let so = self.self_terms[j];
                        let st = self_term(&tcol, eps_t, opts.cutoff);
                        let sg = self_term(&gcol, eps_g, opts.cutoff);
                        let (s_tg, b_tg) = cross_term(&tcol, eps_t, &gcol, eps_g, opts.cutoff);
                        let (s_og, b_og) =
                            cross_term(&self.cols[j], eps_o, &gcol, eps_g, opts.cutoff);
                        PixelTerms {
                            pixel: self.used[j],
                            sigma,
                            eps_o,
                            eps_t,
                            eps_g,
                            s_oo: so.s,
                            u_oo: so.u,
                            s_tt: st.s,
                            u_tt: st.u,
                            s_gg: sg.s,
                            s_tg,
                            s_og,
                            e_tg: st.s + sg.s - 2.0 * s_tg,
                            e_og: so.s + sg.s - 2.0 * s_og,
                            bound_tg: st.bound + sg.bound + 2.0 * b_tg,
                            bound_og: so.bound + sg.bound + 2.0 * b_og,
                            tie_share_oo: so.tie_share,
                            tie_share_tt: st.tie_share,
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(blocks.into_iter().flatten().collect())
    }

    /// E_TG, E_OG, Δ, Δ_U and every term, averaged over the usable pixels (scaled).
    pub fn evaluate<T: Value, G: Value>(
        &self,
        t: &[T],
        n_t: usize,
        g: &[G],
        n_g: usize,
    ) -> Result<KdeResult> {
        let terms = self.evaluate_terms(t, n_t, g, n_g)?;
        Ok(self.summarize_terms(&terms, n_t, n_g))
    }

    /// Averages per-pixel terms (in pixel order) into a [`KdeResult`].
    pub fn summarize_terms(&self, terms: &[PixelTerms], n_t: usize, n_g: usize) -> KdeResult {
        let m = terms.len() as f64;
        let sc = self.opts.scale();
        let mean = |f: &dyn Fn(&PixelTerms) -> f64| -> f64 {
            crate::stats::neumaier_sum(terms.iter().map(f)) / m
        };
        let e_tg = mean(&|p| p.e_tg) * sc;
        let e_og = mean(&|p| p.e_og) * sc;
        let s_tt = mean(&|p| p.s_tt) * sc;
        let s_gg = mean(&|p| p.s_gg) * sc;
        let s_oo = mean(&|p| p.s_oo) * sc;
        let s_tg = mean(&|p| p.s_tg) * sc;
        let s_og = mean(&|p| p.s_og) * sc;
        let u_tt = mean(&|p| p.u_tt) * sc;
        let u_oo = mean(&|p| p.u_oo) * sc;
        // Δ_U per pixel then averaged: avoids the cancellation of averaged large terms.
        let delta_unbiased = mean(&|p| p.u_tt - p.u_oo - 2.0 * (p.s_tg - p.s_og)) * sc;
        let delta = mean(&|p| p.e_tg - p.e_og) * sc;
        KdeResult {
            e_tg,
            e_og,
            delta,
            delta_unbiased,
            s_tt,
            s_gg,
            s_oo,
            s_tg,
            s_og,
            u_tt,
            u_oo,
            pixels_used: terms.len(),
            pixels_skipped: self.d - terms.len(),
            n_original: self.n,
            n_train: n_t,
            n_generated: n_g,
            scale: sc,
            e_tg_error_bound: mean(&|p| p.bound_tg) * sc,
            e_og_error_bound: mean(&|p| p.bound_og) * sc,
            tie_share_oo: mean(&|p| p.tie_share_oo),
            tie_share_tt: mean(&|p| p.tie_share_tt),
        }
    }
}

/// One-shot convenience: prepare O and evaluate (T, G) against it.
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
) -> Result<KdeResult> {
    OriginalSet::new(o, n_o, d, opts)?.evaluate(t, n_t, g, n_g)
}
