//! The fast path's inner loops: weighted exponential sums over a window, offset sums of a
//! self-sum, the cross and self pair sums (generic over FMA), and their AVX2/FMA versions chosen
//! at run time.

use super::fast::{Column, PairSum};
use super::INV_SQRT_2PI;
use crate::fastexp::exp_nonpos_g;

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
pub(super) fn cross_impl<const FMA: bool>(a: &Column, b: &Column, v: f64, r: f64) -> PairSum {
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
pub(super) fn self_offdiag_impl<const FMA: bool>(a: &Column, v: f64, r: f64) -> PairSum {
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn cross_avx2(a: &Column, b: &Column, v: f64, r: f64) -> PairSum {
    cross_impl::<true>(a, b, v, r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn self_offdiag_avx2(a: &Column, v: f64, r: f64) -> PairSum {
    self_offdiag_impl::<true>(a, v, r)
}

#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
