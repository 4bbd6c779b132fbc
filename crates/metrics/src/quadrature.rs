//! Numerical cross-check of the closed form (docs/METHOD.md §4: "a grid quadrature is a useful
//! cross-check"). For a few pixels, `∫ rho_A^2`, `∫ rho_B^2` and `∫ rho_A rho_B` are integrated
//! numerically and combined into `E_TG`, `E_OG`, then compared with the closed form.
//!
//! Method: the trapezoid rule on the uniform lattice `x = k h`, `h = eps_min / 3` (`eps_min` the
//! narrower of the two bandwidths involved), restricted to the lattice points within 14 kernel
//! widths of a sample of the narrower set (outside, the integrand is below `e^-98` of its
//! peak). For integrands that are sums of Gaussians of width `>= eps_min / sqrt 2` the trapezoid
//! rule on a uniform lattice converges exponentially (its error is about `2 exp(-2 pi^2 s^2 /
//! h^2)`, `< 1e-30` here), so the comparison checks the closed form to rounding. The densities
//! are evaluated directly, `rho(x) = (1/n) sum_k N(x | a_k, eps^2)` over the samples within 38
//! widths (`exp(-722)` underflows to 0 in f64 anyway).

use serde::Serialize;

use crate::error::Result;
use crate::kde::{Column, OriginalSet, Value};

const W_DOMAIN: f64 = 14.0;
const W_EVAL: f64 = 38.0;

/// One pixel's closed-form and quadrature values (unscaled, true L2 units).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QuadPixel {
    pub pixel: usize,
    pub closed_e_tg: f64,
    pub quad_e_tg: f64,
    pub closed_e_og: f64,
    pub quad_e_og: f64,
    pub rel_diff: f64,
}

/// The cross-check over a few pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuadratureReport {
    pub pixels: Vec<QuadPixel>,
    /// Largest relative difference `|quad - closed| / |closed|` over pixels and both distances.
    pub max_rel_diff: f64,
    /// Lattice points evaluated in total.
    pub points: u64,
}

fn density(col: &Column, eps: f64, x: f64) -> f64 {
    let lo = col.x.partition_point(|&a| a < x - W_EVAL * eps);
    let hi = col.x.partition_point(|&a| a <= x + W_EVAL * eps);
    let inv = 1.0 / (2.0 * eps * eps);
    let norm = 1.0 / ((2.0 * std::f64::consts::PI).sqrt() * eps * col.n as f64);
    let mut s = 0.0;
    for j in lo..hi {
        let u = x - col.x[j];
        let c = col.c.as_ref().map_or(1.0, |c| c[j]);
        s += c * (-(u * u) * inv).exp();
    }
    s * norm
}

/// `∫ f(x) dx` by the trapezoid rule on the lattice `k h`, over the lattice points within
/// `W_DOMAIN * eps_dom` of a value of `dom`.
fn lattice_integral(dom: &Column, eps_dom: f64, h: f64, f: impl Fn(f64) -> f64) -> (f64, u64) {
    let w = W_DOMAIN * eps_dom;
    let (mut sum, mut pts) = (0.0f64, 0u64);
    let mut next_k = i64::MIN; // first lattice index not yet visited
    let mut j = 0;
    while j < dom.x.len() {
        // Merge overlapping windows.
        let lo = dom.x[j] - w;
        let mut hi = dom.x[j] + w;
        j += 1;
        while j < dom.x.len() && dom.x[j] - w <= hi {
            hi = dom.x[j] + w;
            j += 1;
        }
        let k0 = ((lo / h).ceil() as i64).max(next_k);
        let k1 = (hi / h).floor() as i64;
        for k in k0..=k1 {
            sum += f(k as f64 * h);
            pts += 1;
        }
        next_k = next_k.max(k1 + 1);
    }
    (sum * h, pts)
}

/// `(∫ rho_A^2, ∫ rho_B^2, ∫ rho_A rho_B)` for two columns.
fn integrals(a: &Column, ea: f64, b: &Column, eb: f64) -> ([f64; 3], u64) {
    let (aa, p1) = lattice_integral(a, ea, ea / 3.0, |x| density(a, ea, x).powi(2));
    let (bb, p2) = lattice_integral(b, eb, eb / 3.0, |x| density(b, eb, x).powi(2));
    let (nar, en) = if ea <= eb { (a, ea) } else { (b, eb) };
    let (ab, p3) = lattice_integral(nar, en, en / 3.0, |x| density(a, ea, x) * density(b, eb, x));
    ([aa, bb, ab], p1 + p2 + p3)
}

/// Integrates `npix` pixels (spread evenly over the usable ones) numerically and compares
/// `E_TG`, `E_OG` with the closed form of [`OriginalSet::evaluate_terms`].
pub fn check<T: Value, G: Value>(
    orig: &OriginalSet,
    t: &[T],
    n_t: usize,
    g: &[G],
    n_g: usize,
    npix: usize,
) -> Result<QuadratureReport> {
    let terms = orig.evaluate_terms(t, n_t, g, n_g)?;
    let used = orig.used_pixels();
    let d = orig.d();
    let npix = npix.clamp(1, used.len());
    let mut out = Vec::new();
    let mut max_rel: f64 = 0.0;
    let mut points = 0;
    for q in 0..npix {
        let j = q * used.len() / npix;
        let p = used[j];
        let tcol = Column::from_values((0..n_t).map(|k| t[k * d + p].into()).collect());
        let gcol = Column::from_values((0..n_g).map(|k| g[k * d + p].into()).collect());
        let (ocol, eo) = orig.column(j);
        let tm = &terms[j];
        let ([tt, gg, tg], p1) = integrals(&tcol, tm.eps_t, &gcol, tm.eps_g);
        let ([oo, _, og], p2) = integrals(ocol, eo, &gcol, tm.eps_g);
        points += p1 + p2;
        let quad_e_tg = tt + gg - 2.0 * tg;
        let quad_e_og = oo + gg - 2.0 * og;
        let rel = ((quad_e_tg - tm.e_tg) / tm.e_tg)
            .abs()
            .max(((quad_e_og - tm.e_og) / tm.e_og).abs());
        max_rel = max_rel.max(rel);
        out.push(QuadPixel {
            pixel: p,
            closed_e_tg: tm.e_tg,
            quad_e_tg,
            closed_e_og: tm.e_og,
            quad_e_og,
            rel_diff: rel,
        });
    }
    Ok(QuadratureReport {
        pixels: out,
        max_rel_diff: max_rel,
        points,
    })
}
