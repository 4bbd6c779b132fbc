//! The fast path: per pixel, a sorted column with ties collapsed ([`Column`]), kernel pair sums
//! that visit only pairs within the cut-off ([`cross_sum`], [`self_offdiag_sum`]) with the bound
//! on what they drop, and the per-pixel terms built from them ([`self_term`], [`cross_term`]).

use serde::Serialize;

#[cfg(target_arch = "x86_64")]
use super::kernels::{cross_avx2, has_avx2, self_offdiag_avx2};
use super::kernels::{cross_impl, self_offdiag_impl};
use super::options::auto_cutoff;
use super::INV_SQRT_2PI;

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
    pub(super) fn collapsed_tie_pairs(&self) -> f64 {
        if self.c.is_some() {
            self.tie_pairs
        } else {
            0.0
        }
    }

    #[inline(always)]
    pub(super) fn count(&self, j: usize) -> f64 {
        match &self.c {
            Some(c) => c[j],
            None => 1.0,
        }
    }

    #[inline(always)]
    pub(super) fn cum(&self, j: usize) -> f64 {
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
