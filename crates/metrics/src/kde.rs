//! The per-pixel 1-D KDE distance of docs/METHOD.md §4 (and the unbiased Δ of docs/METHOD.md §4b), exact and fast.
//!
//! For a set A of `n_A` samples and pixel `i`, `rho_{A,i}(x) = (1/n_A) sum_k N(x | a_k, eps_{A,i}^2)`.
//! The distance between A and B is `E_AB = (1/d') sum_i ∫ (rho_{A,i} - rho_{B,i})^2 dx` over the
//! `d'` usable pixels, with the closed form `S_AA + S_BB - 2 S_AB`,
//! `S_AB = 1/(n_A n_B) sum_k sum_l K(a_k - b_l; eps_A^2 + eps_B^2)`,
//! `K(u; v) = exp(-u^2 / (2 v)) / sqrt(2 pi v)`. The default is the true L2 distance;
//! [`KdeOptions::paper_scale`] multiplies every reported term by `sqrt(2 pi)` (the seeds' code).
//!
//! ## Bandwidth (docs/METHOD.md §4)
//! `sigma_i` is the standard deviation of pixel `i` over the **original** set O, with the `N - 1`
//! denominator, times [`KdeOptions::sigma_scale`] (1 by default; the papers' code uses 1/255
//! with O on the ×255 scale), floored at [`KdeOptions::min_std`] if given. A pixel whose values
//! over O are all equal (`max == min`, not `sigma == 0`) has no bandwidth and is skipped and
//! counted, unless a `min_std` floor or a fixed bandwidth is given. Every set A (also G) uses
//! `eps_{A,i} = rule(sigma_i, n_A)` ([`Bandwidth`]), floored at
//! [`KdeOptions::min_bandwidth`] (the quantisation-step floor of docs/METHOD.md §4b).
//!
//! ## Exactness and speed
//! Per pixel, each set's values are sorted and equal values collapsed into counts (u8 data has
//! at most 256 groups). A pair sum only visits pairs within `R sqrt(v)` of each other (`R`
//! kernel widths, [`KdeOptions::cutoff`]). Every dropped term is at most `K(0; v) exp(-R^2 / 2)`,
//! so the dropped mass of a pair sum is at most `(pairs not visited) K(0; v) exp(-R^2/2)`; that
//! bound is computed, carried through the normalisation and reported
//! ([`KdeResult::e_tg_error_bound`]). The default `R^2 = 2 (ln max(n_A, n_B) + 36)` makes the
//! dropped mass of a self-term at most `e^-36 ≈ 2.3e-16` times its own diagonal. Sums are f64
//! with 8 independent accumulators, pixels run in parallel (rayon) and are reduced in pixel
//! order, so results do not depend on the thread count.
//!
//! ## Unbiased Δ (docs/METHOD.md §4b)
//! `U_AA` is the off-diagonal part of the self-term: pairs `k != l` divided by `n_A (n_A - 1)`
//! (NaN when `n_A = 1`). `delta_unbiased = U_TT - U_OO - 2 (S_TG - S_OG)`, reported beside the
//! papers' `delta = E_TG - E_OG`, never instead of it.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{MetricsError, Result};
use crate::fastexp::exp_nonpos_g;

/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// Pixels handled together when gathering columns (cache-friendly transposition).
const BLOCK: usize = 16;
/// Pixels per gathering pass over O (larger: fewer strided passes over the big set).
const BLOCK_O: usize = 64;

/// A value type the metric accepts (`f32`, `f64`, `u8`, ...).
pub trait Value: Copy + Into<f64> + Send + Sync {}
impl<T: Copy + Into<f64> + Send + Sync> Value for T {}

/// Bandwidth rule `eps_{A,i} = rule(sigma_i, n_A)` (docs/METHOD.md §4). Parses from / prints as
/// `std-over-n`, `std-n-pow-minus-1-over-d`, `silverman`, `fixed:VALUE`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Bandwidth {
    /// `sigma_i / n_A`: the papers' rule for the neural model (default).
    #[default]
    StdOverN,
    /// `sigma_i * n_A^(-1/d)`, `d` the pixel count: the linear model's rule (docs/METHOD.md §6).
    StdNPowMinus1OverD,
    /// Silverman's `1.06 sigma_i n_A^(-1/5)`.
    Silverman,
    /// The same fixed `eps` for every set and pixel (constant pixels are then kept).
    Fixed(f64),
}

impl Bandwidth {
    /// `eps` for a pixel with standard deviation `sigma`, set size `n`, pixel count `d`.
    pub fn eps(&self, sigma: f64, n: usize, d: usize) -> f64 {
        let n = n as f64;
        match *self {
            Bandwidth::StdOverN => sigma / n,
            Bandwidth::StdNPowMinus1OverD => sigma * n.powf(-1.0 / d as f64),
            Bandwidth::Silverman => 1.06 * sigma * n.powf(-0.2),
            Bandwidth::Fixed(v) => v,
        }
    }

    /// Whether the rule uses `sigma_i` (all but `fixed`).
    pub fn uses_sigma(&self) -> bool {
        !matches!(self, Bandwidth::Fixed(_))
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bandwidth::StdOverN => f.write_str("std-over-n"),
            Bandwidth::StdNPowMinus1OverD => f.write_str("std-n-pow-minus-1-over-d"),
            Bandwidth::Silverman => f.write_str("silverman"),
            Bandwidth::Fixed(v) => write!(f, "fixed:{v}"),
        }
    }
}

impl FromStr for Bandwidth {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        match t {
            "std-over-n" => Ok(Bandwidth::StdOverN),
            "std-n-pow-minus-1-over-d" => Ok(Bandwidth::StdNPowMinus1OverD),
            "silverman" => Ok(Bandwidth::Silverman),
            _ => {
                let v = t
                    .strip_prefix("fixed:")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .ok_or_else(|| MetricsError::Bandwidth(s.to_string()))?;
                if v.is_finite() && v > 0.0 {
                    Ok(Bandwidth::Fixed(v))
                } else {
                    Err(MetricsError::Bandwidth(s.to_string()))
                }
            }
        }
    }
}

/// How the metric is evaluated. `Default` is the docs/METHOD.md §4 default (std-over-n, true L2).
#[derive(Clone, Debug, PartialEq)]
pub struct KdeOptions {
    /// Bandwidth rule.
    pub bandwidth: Bandwidth,
    /// Multiply every reported term by `sqrt(2 pi)` (the seeds' code convention).
    pub paper_scale: bool,
    /// Floor on `sigma_i` (after `sigma_scale`); with it constant pixels are kept.
    pub min_std: Option<f64>,
    /// Floor on every `eps` (e.g. the quantisation step 1/255, docs/METHOD.md §4b).
    pub min_bandwidth: Option<f64>,
    /// `sigma_i = std_i(O) * sigma_scale` (1; the papers' code: 1/255 with O ×255).
    pub sigma_scale: f64,
    /// Explicit `sigma_i` per pixel, instead of O's (pixels with `sigma_i <= 0` are skipped).
    pub sigma: Option<Vec<f64>>,
    /// Cut-off `R` in kernel widths; `None` chooses it from the error bound (module doc);
    /// `Some(f64::INFINITY)` visits every pair.
    pub cutoff: Option<f64>,
    /// Pixels to leave out (`true`), counted as skipped whatever the other options say; e.g.
    /// the pixels that were constant over O *before* dequantisation noise.
    pub exclude: Option<Vec<bool>>,
}

impl Default for KdeOptions {
    fn default() -> Self {
        Self {
            bandwidth: Bandwidth::StdOverN,
            paper_scale: false,
            min_std: None,
            min_bandwidth: None,
            sigma_scale: 1.0,
            sigma: None,
            cutoff: None,
            exclude: None,
        }
    }
}

impl KdeOptions {
    /// The factor applied to every reported term: `sqrt(2 pi)` with `paper_scale`, else 1.
    pub fn scale(&self) -> f64 {
        if self.paper_scale {
            (2.0 * std::f64::consts::PI).sqrt()
        } else {
            1.0
        }
    }

    /// Whether a pixel constant over O is used anyway: under a `min_std` floor, explicit
    /// `sigma`, or a bandwidth rule without `sigma` (`fixed:`). Otherwise it has no bandwidth and
    /// is skipped.
    pub fn keeps_constant_pixels(&self) -> bool {
        self.min_std.is_some() || self.sigma.is_some() || !self.bandwidth.uses_sigma()
    }

    fn validate(&self, d: usize) -> Result<()> {
        if let Bandwidth::Fixed(v) = self.bandwidth {
            if !(v.is_finite() && v > 0.0) {
                return Err(MetricsError::Bandwidth(format!("fixed:{v}")));
            }
        }
        let pos = |name: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(MetricsError::Invalid(format!(
                "{name} must be a positive finite number, got {x}"
            ))),
            _ => Ok(()),
        };
        pos("min_std", self.min_std)?;
        pos("min_bandwidth", self.min_bandwidth)?;
        pos("sigma_scale", Some(self.sigma_scale))?;
        if let Some(c) = self.cutoff {
            if c.is_nan() || c <= 0.0 {
                return Err(MetricsError::Invalid(format!(
                    "cutoff must be > 0 kernel widths, got {c}"
                )));
            }
        }
        if let Some(x) = &self.exclude {
            if x.len() != d {
                return Err(MetricsError::Invalid(format!(
                    "exclude mask has {} values but the sets have {d} pixels",
                    x.len()
                )));
            }
        }
        if let Some(s) = &self.sigma {
            if s.len() != d {
                return Err(MetricsError::Invalid(format!(
                    "explicit sigma has {} values but the sets have {d} pixels",
                    s.len()
                )));
            }
        }
        Ok(())
    }

    fn eps(&self, sigma: f64, n: usize, d: usize) -> f64 {
        let e = self.bandwidth.eps(sigma, n, d);
        match self.min_bandwidth {
            Some(f) => e.max(f),
            None => e,
        }
    }
}

/// The automatic cut-off in kernel widths for a pair sum of sets of sizes `na`, `nb`.
pub fn auto_cutoff(na: usize, nb: usize) -> f64 {
    let n = na.max(nb).max(1) as f64;
    (2.0 * (n.ln() + 36.0)).sqrt()
}

/// `K(u; v) = exp(-u^2 / (2 v)) / sqrt(2 pi v)`.
#[inline]
pub fn kernel(u: f64, v: f64) -> f64 {
    (-(u * u) / (2.0 * v)).exp() * INV_SQRT_2PI / v.sqrt()
}

/// One pixel's values over a set: sorted, equal values collapsed into counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Distinct values, increasing.
    pub x: Vec<f64>,
    /// Multiplicity of each value; `None` when all are 1.
    pub c: Option<Vec<f64>>,
    /// `cum[j]` = number of samples in groups `< j` (length `x.len() + 1`); `None` with `c`.
    cum: Option<Vec<f64>>,
    /// Number of samples (sum of the counts).
    pub n: usize,
    /// Ordered pairs `k != l` with exactly equal values, `sum_j c_j (c_j - 1)`.
    tie_pairs: f64,
}

impl Column {
    /// Sorts `v` (finite values) and collapses ties into counts when that pays (at most a
    /// quarter as many distinct values as samples, e.g. u8 data); rare ties stay as repeated
    /// values, which the pair sums handle exactly (pairs at distance 0).
    pub fn from_values(mut v: Vec<f64>) -> Self {
        let n = v.len();
        radix_sort_f64(&mut v);
        let mut distinct = 0usize;
        let mut tie_pairs = 0.0f64;
        let mut run = 0.0f64;
        for j in 0..n {
            if j > 0 && v[j] == v[j - 1] {
                run += 1.0;
            } else {
                tie_pairs += run * (run - 1.0);
                run = 1.0;
                distinct += 1;
            }
        }
        tie_pairs += run * (run - 1.0);
        if distinct * 4 > n {
            return Column {
                x: v,
                c: None,
                cum: None,
                n,
                tie_pairs,
            };
        }
        let mut x = Vec::with_capacity(distinct);
        let mut c: Vec<f64> = Vec::with_capacity(distinct);
        for &val in &v {
            match x.last() {
                Some(&last) if last == val => *c.last_mut().unwrap() += 1.0,
                _ => {
                    x.push(val);
                    c.push(1.0);
                }
            }
        }
        let mut cum = Vec::with_capacity(x.len() + 1);
        let mut s = 0.0;
        cum.push(0.0);
        for &k in &c {
            s += k;
            cum.push(s);
        }
        Column {
            x,
            c: Some(c),
            cum: Some(cum),
            n,
            tie_pairs,
        }
    }

    /// Ordered pairs `k != l` with equal values that are collapsed into counts (0 when the
    /// column keeps repeated values).
    fn collapsed_tie_pairs(&self) -> f64 {
        if self.c.is_some() {
            self.tie_pairs
        } else {
            0.0
        }
    }

    #[inline(always)]
    fn count(&self, j: usize) -> f64 {
        match &self.c {
            Some(c) => c[j],
            None => 1.0,
        }
    }

    #[inline(always)]
    fn cum(&self, j: usize) -> f64 {
        match &self.cum {
            Some(c) => c[j],
            None => j as f64,
        }
    }

    /// Number of ordered pairs `k != l` with exactly equal values: `sum_j c_j (c_j - 1)`.
    pub fn tie_pairs(&self) -> f64 {
        self.tie_pairs
    }

    /// Smallest and largest value.
    pub fn min_max(&self) -> (f64, f64) {
        (self.x[0], *self.x.last().unwrap())
    }

    /// Standard deviation with the `n - 1` denominator (0 for `n = 1`), two-pass in f64.
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        let mean = (0..self.x.len())
            .map(|j| self.count(j) * self.x[j])
            .sum::<f64>()
            / n;
        let ss: f64 = (0..self.x.len())
            .map(|j| {
                let u = self.x[j] - mean;
                self.count(j) * u * u
            })
            .sum();
        (ss / (n - 1.0)).sqrt()
    }
}

/// A kernel pair sum and the analytical bound on what its cut-off dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairSum {
    /// The sum of `K(a_k - b_l; v)` over the visited pairs (kernel normalisation included).
    pub sum: f64,
    /// Number of (ordered) pairs visited.
    pub kept_pairs: f64,
    /// Upper bound on the dropped mass: `(pairs not visited) K(0; v) exp(-R^2/2)`.
    pub dropped_bound: f64,
}

#[inline(always)]
fn wsum_plain<const FMA: bool>(xs: &[f64], y: f64, s: f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let len8 = xs.len() / 8 * 8;
    let yy = [y; 8];
    for b in (0..len8).step_by(8) {
        let x8 = &xs[b..b + 8];
        for l in 0..8 {
            let u = x8[l] - yy[l];
            acc[l] += exp_nonpos_g::<FMA>(-(u * u) * s);
        }
    }
    for (l, &x) in xs[len8..].iter().enumerate() {
        let u = x - y;
        acc[l] += exp_nonpos_g::<FMA>(-(u * u) * s);
    }
    lanes_sum(&acc)
}

#[inline(always)]
fn wsum_weighted<const FMA: bool>(xs: &[f64], cs: &[f64], y: f64, s: f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let len = xs.len().min(cs.len());
    let len8 = len / 8 * 8;
    for b in (0..len8).step_by(8) {
        let (x8, c8) = (&xs[b..b + 8], &cs[b..b + 8]);
        for l in 0..8 {
            let u = x8[l] - y;
            acc[l] += c8[l] * exp_nonpos_g::<FMA>(-(u * u) * s);
        }
    }
    for j in len8..len {
        let u = xs[j] - y;
        acc[j - len8] += cs[j] * exp_nonpos_g::<FMA>(-(u * u) * s);
    }
    lanes_sum(&acc)
}

#[inline(always)]
fn wsum<const FMA: bool>(col: &Column, lo: usize, hi: usize, y: f64, s: f64) -> f64 {
    match &col.c {
        Some(c) => wsum_weighted::<FMA>(&col.x[lo..hi], &c[lo..hi], y, s),
        None => {
            #[cfg(target_arch = "x86_64")]
            if FMA {
                // SAFETY: `FMA = true` is only instantiated inside the `avx2,fma` functions,
                // which are only called after `has_avx2()` confirmed both features.
                return unsafe { wsum_plain_avx2(&col.x[lo..hi], y, s) };
            }
            wsum_plain::<FMA>(&col.x[lo..hi], y, s)
        }
    }
}

/// 4-lane [`exp_nonpos_g::<true>`].
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_v(x: std::arch::x86_64::__m256d) -> std::arch::x86_64::__m256d {
    use std::arch::x86_64::*;
    let x = _mm256_max_pd(x, _mm256_set1_pd(-700.0));
    let shift = _mm256_set1_pd(6_755_399_441_055_744.0);
    let t = _mm256_add_pd(
        _mm256_mul_pd(x, _mm256_set1_pd(std::f64::consts::LOG2_E)),
        shift,
    );
    let k = _mm256_sub_pd(t, shift);
    let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(crate::fastexp::LN2_HI), x);
    let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(crate::fastexp::LN2_LO), r);
    let mut p = _mm256_set1_pd(crate::fastexp::INV_FACT[0]);
    for &c in &crate::fastexp::INV_FACT[1..] {
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
    }
    let bits = _mm256_slli_epi64::<52>(_mm256_add_epi64(
        _mm256_castpd_si256(t),
        _mm256_set1_epi64x(1023),
    ));
    _mm256_mul_pd(p, _mm256_castsi256_pd(bits))
}

/// Lanes of `offset_sum` (no counts) with intrinsics; `lo.len() == hi.len()`, a multiple of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn offset_plain_avx2(lo: &[f64], hi: &[f64], s: f64, acc: &mut [f64; 8]) {
    use std::arch::x86_64::*;
    let ns = _mm256_set1_pd(-s);
    let mut a0 = _mm256_loadu_pd(acc.as_ptr());
    let mut a1 = _mm256_loadu_pd(acc.as_ptr().add(4));
    let (pl, ph) = (lo.as_ptr(), hi.as_ptr());
    let mut b = 0;
    while b + 8 <= lo.len().min(hi.len()) {
        let u0 = _mm256_sub_pd(_mm256_loadu_pd(ph.add(b)), _mm256_loadu_pd(pl.add(b)));
        let u1 = _mm256_sub_pd(
            _mm256_loadu_pd(ph.add(b + 4)),
            _mm256_loadu_pd(pl.add(b + 4)),
        );
        a0 = _mm256_add_pd(a0, exp_v(_mm256_mul_pd(_mm256_mul_pd(u0, u0), ns)));
        a1 = _mm256_add_pd(a1, exp_v(_mm256_mul_pd(_mm256_mul_pd(u1, u1), ns)));
        b += 8;
    }
    _mm256_storeu_pd(acc.as_mut_ptr(), a0);
    _mm256_storeu_pd(acc.as_mut_ptr().add(4), a1);
}

/// [`wsum_plain`] with explicit AVX2/FMA intrinsics (LLVM only vectorised it 2-wide). Same
/// operations, lanes and order as `wsum_plain::<true>`, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wsum_plain_avx2(xs: &[f64], y: f64, s: f64) -> f64 {
    use std::arch::x86_64::*;
    let len8 = xs.len() / 8 * 8;
    let yv = _mm256_set1_pd(y);
    let ns = _mm256_set1_pd(-s);
    let (mut a0, mut a1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let p = xs.as_ptr();
    let mut b = 0;
    while b < len8 {
        let u0 = _mm256_sub_pd(_mm256_loadu_pd(p.add(b)), yv);
        let u1 = _mm256_sub_pd(_mm256_loadu_pd(p.add(b + 4)), yv);
        a0 = _mm256_add_pd(a0, exp_v(_mm256_mul_pd(_mm256_mul_pd(u0, u0), ns)));
        a1 = _mm256_add_pd(a1, exp_v(_mm256_mul_pd(_mm256_mul_pd(u1, u1), ns)));
        b += 8;
    }
    let mut acc = [0.0f64; 8];
    _mm256_storeu_pd(acc.as_mut_ptr(), a0);
    _mm256_storeu_pd(acc.as_mut_ptr().add(4), a1);
    for (l, &x) in xs[len8..].iter().enumerate() {
        let u = x - y;
        acc[l] += exp_nonpos_g::<true>(-(u * u) * s);
    }
    lanes_sum(&acc)
}

#[inline(always)]
fn cross_impl<const FMA: bool>(a: &Column, b: &Column, v: f64, r: f64) -> PairSum {
    // Outer loop over the column with fewer groups, windows into the other.
    let (outer, inner) = if a.x.len() <= b.x.len() {
        (a, b)
    } else {
        (b, a)
    };
    let s = 0.5 / v;
    let cut = r * v.sqrt();
    let k0 = INV_SQRT_2PI / v.sqrt();
    let m = inner.x.len();
    let (mut lo, mut hi) = (0usize, 0usize);
    let (mut sum, mut kept) = (0.0f64, 0.0f64);
    for j in 0..outer.x.len() {
        let y = outer.x[j];
        while lo < m && inner.x[lo] < y - cut {
            lo += 1;
        }
        if hi < lo {
            hi = lo;
        }
        while hi < m && inner.x[hi] <= y + cut {
            hi += 1;
        }
        if hi > lo {
            let cj = outer.count(j);
            sum += cj * wsum::<FMA>(inner, lo, hi, y, s);
            kept += cj * (inner.cum(hi) - inner.cum(lo));
        }
    }
    let dropped = (a.n as f64 * b.n as f64 - kept).max(0.0);
    PairSum {
        sum: sum * k0,
        kept_pairs: kept,
        dropped_bound: dropped * k0 * (-0.5 * r * r).exp(),
    }
}

/// Adds `w_j exp(-(hi_j - lo_j)^2 s)` to `acc` and `w_j` to `wacc` (lane `j % 8`),
/// `w_j = c(lo_j) c(hi_j)` (1 without counts).
#[inline(always)]
fn offset_sum<const FMA: bool>(
    lo: &[f64],
    hi: &[f64],
    c: Option<(&[f64], &[f64])>,
    s: f64,
    acc: &mut [f64; 8],
    wacc: &mut [f64; 8],
) {
    let len = lo.len().min(hi.len());
    let len8 = len / 8 * 8;
    match c {
        None => {
            #[cfg(target_arch = "x86_64")]
            if FMA {
                // SAFETY: as in `wsum` (FMA = true only inside checked avx2,fma code).
                unsafe { offset_plain_avx2(&lo[..len8], &hi[..len8], s, acc) };
            }
            #[cfg(target_arch = "x86_64")]
            let vec_done = FMA;
            #[cfg(not(target_arch = "x86_64"))]
            let vec_done = false;
            if !vec_done {
                for b in (0..len8).step_by(8) {
                    let (l8, h8) = (&lo[b..b + 8], &hi[b..b + 8]);
                    for l in 0..8 {
                        let u = h8[l] - l8[l];
                        acc[l] += exp_nonpos_g::<FMA>(-(u * u) * s);
                    }
                }
            }
            for j in len8..len {
                let u = hi[j] - lo[j];
                acc[j - len8] += exp_nonpos_g::<FMA>(-(u * u) * s);
            }
            wacc[0] += len as f64;
        }
        Some((cl, ch)) => {
            let len = len.min(cl.len()).min(ch.len());
            let len8 = len / 8 * 8;
            for b in (0..len8).step_by(8) {
                let (l8, h8) = (&lo[b..b + 8], &hi[b..b + 8]);
                let (cl8, ch8) = (&cl[b..b + 8], &ch[b..b + 8]);
                for l in 0..8 {
                    let u = h8[l] - l8[l];
                    let cw = cl8[l] * ch8[l];
                    acc[l] += cw * exp_nonpos_g::<FMA>(-(u * u) * s);
                    wacc[l] += cw;
                }
            }
            for j in len8..len {
                let u = hi[j] - lo[j];
                let cw = cl[j] * ch[j];
                acc[j - len8] += cw * exp_nonpos_g::<FMA>(-(u * u) * s);
                wacc[j - len8] += cw;
            }
        }
    }
}

fn lanes_sum(a: &[f64; 8]) -> f64 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Self-sum over pairs `j < j + k` by offsets `k`, in blocks of `SELF_BLOCK` consecutive `j`:
/// every pair within the cut-off is visited (each block goes up to the largest window of its
/// `j`s), a few beyond it too (exact terms, counted as kept). Vectorises across `j`.
#[inline(always)]
fn self_offdiag_impl<const FMA: bool>(a: &Column, v: f64, r: f64) -> PairSum {
    const SELF_BLOCK: usize = 32;
    let s = 0.5 / v;
    let cut = r * v.sqrt();
    let k0 = INV_SQRT_2PI / v.sqrt();
    let x = &a.x;
    let m = x.len();
    let ties = a.collapsed_tie_pairs();
    let mut hi = 0usize;
    let mut acc = [0.0f64; 8];
    let mut wacc = [0.0f64; 8];
    let mut j0 = 0;
    while j0 < m {
        let j1 = (j0 + SELF_BLOCK).min(m);
        let mut kmax = 0usize;
        for j in j0..j1 {
            if hi < j + 1 {
                hi = j + 1;
            }
            let lim = x[j] + cut;
            while hi < m && x[hi] <= lim {
                hi += 1;
            }
            kmax = kmax.max(hi - j - 1);
        }
        for k in 1..=kmax {
            let jend = j1.min(m - k);
            if jend <= j0 {
                break;
            }
            let c = a.c.as_ref().map(|c| (&c[j0..jend], &c[j0 + k..jend + k]));
            offset_sum::<FMA>(
                &x[j0..jend],
                &x[j0 + k..jend + k],
                c,
                s,
                &mut acc,
                &mut wacc,
            );
        }
        j0 = j1;
    }
    let sum = lanes_sum(&acc);
    let kept_half = lanes_sum(&wacc);
    let n = a.n as f64;
    let kept = ties + 2.0 * kept_half;
    let dropped = (n * (n - 1.0) - kept).max(0.0);
    PairSum {
        sum: (ties + 2.0 * sum) * k0,
        kept_pairs: kept,
        dropped_bound: dropped * k0 * (-0.5 * r * r).exp(),
    }
}

/// Sorts finite f64 values ascending (LSD radix sort on order-preserving u64 keys, 11-bit
/// digits, passes whose digit is the same for every key skipped; small inputs use pdqsort).
pub fn radix_sort_f64(v: &mut [f64]) {
    let n = v.len();
    if n < 512 {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    const BITS: u32 = 11;
    const NB: usize = 1 << BITS;
    const PASSES: usize = 6; // 66 bits >= 64
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // SAFETY: f64 and u64 have the same size and alignment and every bit pattern is a valid
    // u64; the keys are turned back into the same f64 values below.
    let keys: &mut [u64] = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u64, n) };
    let mut hist = vec![[0usize; NB]; PASSES];
    for k in keys.iter_mut() {
        let b = *k;
        *k = if b >> 63 == 1 { !b } else { b | (1 << 63) };
        for (p, h) in hist.iter_mut().enumerate() {
            h[((*k >> (p as u32 * BITS)) as usize) & (NB - 1)] += 1;
        }
    }
    SCRATCH.with(|cell| {
        let mut tmp = cell.borrow_mut();
        if tmp.len() < n {
            tmp.resize(n, 0);
        }
        let tmp = &mut tmp[..n];
        let mut in_keys = true; // data currently in `keys` (else in `tmp`)
        for (p, h) in hist.iter_mut().enumerate() {
            if h.contains(&n) {
                continue; // every key has the same digit here
            }
            let mut off = 0;
            for c in h.iter_mut() {
                let t = *c;
                *c = off;
                off += t;
            }
            let shift = p as u32 * BITS;
            let (src, dst): (&[u64], &mut [u64]) = if in_keys {
                (&*keys, &mut *tmp)
            } else {
                (&*tmp, &mut *keys)
            };
            for &k in src {
                let b = ((k >> shift) as usize) & (NB - 1);
                dst[h[b]] = k;
                h[b] += 1;
            }
            in_keys = !in_keys;
        }
        if !in_keys {
            keys.copy_from_slice(tmp);
        }
    });
    for k in keys.iter_mut() {
        let b = *k;
        *k = if b >> 63 == 1 { b & !(1 << 63) } else { !b };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cross_avx2(a: &Column, b: &Column, v: f64, r: f64) -> PairSum {
    cross_impl::<true>(a, b, v, r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn self_offdiag_avx2(a: &Column, v: f64, r: f64) -> PairSum {
    self_offdiag_impl::<true>(a, v, r)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// `sum_k sum_l K(a_k - b_l; v)` over all pairs of two columns, visiting only pairs within
/// `r` kernel widths (`r = f64::INFINITY`: all pairs). The per-pixel primitive of docs/METHOD.md §4;
/// divide by `n_A n_B` for `S_AB`.
pub fn cross_sum(a: &Column, b: &Column, v: f64, r: f64) -> PairSum {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports avx2 and fma (checked just above).
        return unsafe { cross_avx2(a, b, v, r) };
    }
    cross_impl::<false>(a, b, v, r)
}

/// `sum_{k != l} K(a_k - a_l; v)`: the off-diagonal part of a set's self-sum (exact ties
/// included as `c (c - 1) K(0; v)`). The full self-sum adds `n K(0; v)`.
pub fn self_offdiag_sum(a: &Column, v: f64, r: f64) -> PairSum {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports avx2 and fma (checked just above).
        return unsafe { self_offdiag_avx2(a, v, r) };
    }
    self_offdiag_impl::<false>(a, v, r)
}

/// `S_AA` and `U_AA` (normalised) of one column with bandwidth `eps`, plus the bound on the
/// error of `S_AA` and the share of the off-diagonal mass that comes from exact ties.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SelfTerm {
    pub s: f64,
    pub u: f64,
    pub bound: f64,
    pub tie_share: f64,
}

/// The self-terms of one column (`cutoff = None`: automatic).
pub fn self_term(a: &Column, eps: f64, cutoff: Option<f64>) -> SelfTerm {
    let v = 2.0 * eps * eps;
    let r = cutoff.unwrap_or_else(|| auto_cutoff(a.n, a.n));
    let off = self_offdiag_sum(a, v, r);
    let n = a.n as f64;
    let k0 = INV_SQRT_2PI / v.sqrt();
    let tie_mass = a.tie_pairs() * k0;
    SelfTerm {
        s: (off.sum + n * k0) / (n * n),
        u: if a.n > 1 {
            off.sum / (n * (n - 1.0))
        } else {
            f64::NAN
        },
        bound: off.dropped_bound / (n * n),
        tie_share: if off.sum > 0.0 {
            tie_mass / off.sum
        } else {
            0.0
        },
    }
}

/// `S_AB` (normalised) of two columns and the bound on its error.
pub fn cross_term(
    a: &Column,
    eps_a: f64,
    b: &Column,
    eps_b: f64,
    cutoff: Option<f64>,
) -> (f64, f64) {
    let v = eps_a * eps_a + eps_b * eps_b;
    let r = cutoff.unwrap_or_else(|| auto_cutoff(a.n, b.n));
    let p = cross_sum(a, b, v, r);
    let nn = a.n as f64 * b.n as f64;
    (p.sum / nn, p.dropped_bound / nn)
}

/// All terms of one usable pixel, unscaled (true L2 units).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PixelTerms {
    pub pixel: usize,
    pub sigma: f64,
    pub eps_o: f64,
    pub eps_t: f64,
    pub eps_g: f64,
    pub s_oo: f64,
    pub u_oo: f64,
    pub s_tt: f64,
    pub u_tt: f64,
    pub s_gg: f64,
    pub s_tg: f64,
    pub s_og: f64,
    pub e_tg: f64,
    pub e_og: f64,
    /// Bounds on the cut-off error of `e_tg`, `e_og`.
    pub bound_tg: f64,
    pub bound_og: f64,
    pub tie_share_oo: f64,
    pub tie_share_tt: f64,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_round_trips_and_rejects() {
        for s in [
            "std-over-n",
            "std-n-pow-minus-1-over-d",
            "silverman",
            "fixed:0.25",
        ] {
            let b: Bandwidth = s.parse().unwrap();
            assert_eq!(b.to_string(), s);
        }
        for s in ["", "fixed:", "fixed:-1", "fixed:nan", "fixed:inf", "scott"] {
            let e = s.parse::<Bandwidth>().unwrap_err().to_string();
            assert!(e.contains("std-over-n"), "{e}");
        }
        assert_eq!(Bandwidth::StdOverN.eps(0.5, 10, 4), 0.05);
        assert!((Bandwidth::StdNPowMinus1OverD.eps(1.0, 16, 4) - 0.5).abs() < 1e-15);
        assert!((Bandwidth::Silverman.eps(1.0, 32, 4) - 1.06 * 0.5).abs() < 1e-15);
    }

    #[test]
    fn column_collapses_ties_and_counts() {
        let c = Column::from_values(vec![3.0, 1.0, 3.0, 2.0, 3.0, 1.0]);
        assert_eq!(c.x, vec![1.0, 1.0, 2.0, 3.0, 3.0, 3.0]); // few ties: kept as values
        assert!(c.c.is_none());
        assert_eq!(c.tie_pairs(), 2.0 + 6.0);
        let many: Vec<f64> = [3.0, 1.0, 3.0, 2.0, 3.0, 1.0].repeat(4);
        let cc = Column::from_values(many);
        assert_eq!(cc.x, vec![1.0, 2.0, 3.0]);
        assert_eq!(cc.c.as_deref(), Some(&[8.0, 4.0, 12.0][..]));
        assert_eq!(cc.tie_pairs(), 56.0 + 12.0 + 132.0);
        assert_eq!(cc.n, 24);
        assert!((cc.std() - c.std() * (5.0f64 * 24.0 / 23.0 / 6.0).sqrt()).abs() < 1e-14);
        let std = c.std();
        // mean 13/6; direct two-pass.
        let v = [3.0, 1.0, 3.0, 2.0, 3.0, 1.0f64];
        let m = v.iter().sum::<f64>() / 6.0;
        let want = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 5.0).sqrt();
        assert!((std - want).abs() < 1e-15);
    }

    #[test]
    fn portable_path_equals_dispatched_path() {
        // The generic (non-AVX2) kernels give the same sums as the dispatched ones to rounding.
        let mk = |n: usize, m: usize| {
            Column::from_values((0..n).map(|i| ((i * 7919) % m) as f64 / m as f64).collect())
        };
        for (a, b) in [
            (mk(300, 1000), mk(17, 50)),
            (mk(2000, 64), mk(9, 9)),
            (mk(1, 3), mk(1, 5)),
        ] {
            for v in [1e-6, 1e-3, 0.05] {
                let r = auto_cutoff(a.n, b.n);
                let (x, y) = (cross_impl::<false>(&a, &b, v, r), cross_sum(&a, &b, v, r));
                assert!(
                    (x.sum - y.sum).abs() <= 1e-13 * y.sum.abs().max(1e-300),
                    "{x:?} {y:?}"
                );
                assert_eq!(x.kept_pairs, y.kept_pairs);
                let (x, y) = (
                    self_offdiag_impl::<false>(&a, v, r),
                    self_offdiag_sum(&a, v, r),
                );
                assert!(
                    (x.sum - y.sum).abs() <= 1e-13 * y.sum.abs().max(1e-300),
                    "{x:?} {y:?}"
                );
                assert_eq!(x.kept_pairs, y.kept_pairs);
            }
        }
    }

    #[test]
    fn radix_sort_sorts() {
        let mut v: Vec<f64> = (0..5000)
            .map(|i| ((i as f64 * 0.618_033_988_75).fract() - 0.3) * 10f64.powi(i % 7 - 3))
            .collect();
        v[17] = -0.0;
        v[18] = 0.0;
        v[19] = f64::MAX;
        v[20] = f64::MIN_POSITIVE / 4.0;
        let mut w = v.clone();
        radix_sort_f64(&mut v);
        w.sort_unstable_by(f64::total_cmp);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let mut f: Vec<f64> = (0..3000)
            .map(|i| (i * 7919 % 3001) as f32 as f64 / 255.0)
            .collect();
        let mut g = f.clone();
        radix_sort_f64(&mut f);
        g.sort_unstable_by(f64::total_cmp);
        assert_eq!(f, g);
    }

    #[test]
    fn cutoff_bound_covers_the_dropped_mass() {
        // Small cut-off on purpose: the bound must exceed the true dropped mass.
        let a = Column::from_values((0..50).map(|i| (i as f64 * 0.37).sin()).collect());
        let b = Column::from_values((0..30).map(|i| (i as f64 * 0.91).cos()).collect());
        let v = 0.01;
        for r in [0.5, 1.0, 2.0, 4.0] {
            let full = cross_sum(&a, &b, v, f64::INFINITY).sum;
            let cut = cross_sum(&a, &b, v, r);
            assert!(full - cut.sum >= -1e-12);
            assert!(full - cut.sum <= cut.dropped_bound * (1.0 + 1e-12), "r {r}");
            let full = self_offdiag_sum(&a, v, f64::INFINITY).sum;
            let cut = self_offdiag_sum(&a, v, r);
            assert!(full - cut.sum >= -1e-12);
            assert!(full - cut.sum <= cut.dropped_bound * (1.0 + 1e-12), "r {r}");
        }
    }
}
