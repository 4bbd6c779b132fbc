//! Branch-free `exp` for non-positive arguments, written so that LLVM vectorises the loops that
//! call it (the per-pair kernel sums of the KDE metric spend nearly all their time in `exp`).
//!
//! Method: `exp(x) = 2^k exp(r)`, `k = round(x / ln 2)`, `r = x - k ln 2` (Cody–Waite split of
//! `ln 2`, so `r` is exact to about 1 ulp), `|r| <= ln 2 / 2`, `exp(r)` by its Taylor polynomial
//! of degree 13 (truncation `0.347^14 / 14! < 5e-18`), `2^k` assembled from bits. The relative
//! error is a few ulp (tested against `f64::exp` below); inputs below -700 are clamped to -700
//! (the result is then `~1e-304` instead of something smaller, irrelevant for kernel sums whose
//! cut-off keeps every argument above about -60).
#![allow(clippy::excessive_precision)] // constants written out to full double precision

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
pub(crate) const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1;
pub(crate) const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// `1/j!` for `j = 13` down to 0: the Taylor coefficients of `exp(r)`, Horner order.
pub(crate) const INV_FACT: [f64; 14] = [
    1.605_904_383_682_161_3e-10,
    2.087_675_698_786_810e-9,
    2.505_210_838_544_172e-8,
    2.755_731_922_398_589e-7,
    2.755_731_922_398_589_3e-6,
    2.480_158_730_158_730_2e-5,
    1.984_126_984_126_984_1e-4,
    1.388_888_888_888_888_9e-3,
    8.333_333_333_333_333e-3,
    4.166_666_666_666_666_4e-2,
    1.666_666_666_666_666_6e-1,
    0.5,
    1.0,
    1.0,
];

/// `a * b + c`, fused when `FMA` (only instantiate `FMA = true` inside code compiled with the
/// `fma` target feature; elsewhere `mul_add` would be a slow library call).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` for `x <= 0` (see the module doc for accuracy and range), with fused
/// multiply-adds when `FMA`.
#[inline(always)]
pub fn exp_nonpos_g<const FMA: bool>(x: f64) -> f64 {
    let x = x.max(-700.0);
    let t = x * LOG2E + SHIFT;
    let k = t - SHIFT;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, x));
    // Horner, 1/j! for j = 13 down to 0.
    let mut p = 1.605_904_383_682_161_3e-10; // 1/13!
    p = madd::<FMA>(p, r, 2.087_675_698_786_810e-9); // 1/12!
    p = madd::<FMA>(p, r, 2.505_210_838_544_172e-8); // 1/11!
    p = madd::<FMA>(p, r, 2.755_731_922_398_589e-7); // 1/10!
    p = madd::<FMA>(p, r, 2.755_731_922_398_589_3e-6); // 1/9!
    p = madd::<FMA>(p, r, 2.480_158_730_158_730_2e-5); // 1/8!
    p = madd::<FMA>(p, r, 1.984_126_984_126_984_1e-4); // 1/7!
    p = madd::<FMA>(p, r, 1.388_888_888_888_888_9e-3); // 1/6!
    p = madd::<FMA>(p, r, 8.333_333_333_333_333e-3); // 1/5!
    p = madd::<FMA>(p, r, 4.166_666_666_666_666_4e-2); // 1/4!
    p = madd::<FMA>(p, r, 1.666_666_666_666_666_6e-1); // 1/3!
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // Low bits of t hold k (two's complement); k + 1023 in [1, 1023] is the biased exponent.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_std_exp_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = 0.0f64;
        while x > -745.0 {
            let want = x.max(-700.0).exp();
            let got = exp_nonpos_g::<false>(x);
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
            x -= 0.001_237;
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        let mut x = 0.0f64;
        while x > -700.0 {
            let rel = ((exp_nonpos_g::<true>(x) - x.exp()) / x.exp()).abs();
            assert!(rel < 1e-15, "fma {x}: {rel:e}");
            x -= 0.0173;
        }
        assert_eq!(exp_nonpos_g::<false>(0.0), 1.0);
        assert!(
            (exp_nonpos_g::<false>(-0.5 * std::f64::consts::LN_2) - 0.5f64.sqrt()).abs() < 2e-16
        );
    }
}
