//! Exact GELU and its derivative on f32 slices, written so that the compiler vectorises them
//! (no calls to libm's scalar `erff` / `expf`), and run on several threads.
//!
//! burn-flex evaluates `gelu` one element at a time through libm's `erff` on one thread, a
//! visible share of a sampling evaluation (docs/BENCHMARKS.md, "Figures behind the code's
//! thresholds").
//! These are the same functions (`0.5 x (1 + erf(x / √2))`, PyTorch's default GELU, and its
//! derivative `Φ(x) + x φ(x)`), with erf and exp from polynomial approximations accurate to a few
//! float ulps (tests against f64 libm below and in `tests/unet.rs`).
//!
//! No fused multiply-adds are written, so the numbers are the same on every x86-64 CPU whichever
//! vector width the loop was compiled for.

use rayon::prelude::*;

/// Elements per rayon task: small slices stay on the calling thread.
const CHUNK: usize = 16 * 1024;

/// erf on f32: the rational approximation used by Eigen and XLA for single precision
/// (`x P(x²) / Q(x²)` on `x` clamped to [-4, 4], where erf is ±1 in f32).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    // numerator (odd) and denominator (even) coefficients, highest power first
    const ALPHA: [f64; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const BETA: [f64; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[0] as f32;
    for a in &ALPHA[1..] {
        p = x2 * p + *a as f32;
    }
    let mut q = BETA[0] as f32;
    for b in &BETA[1..] {
        q = x2 * q + *b as f32;
    }
    x * p / q
}

/// exp on f32 for `x ≤ 0` (Cephes `expf`: `x = n ln 2 + r`, a degree-6 polynomial in `r`,
/// `2ⁿ` from the exponent bits); below -87 it returns `exp(-87) ≈ 1.6e-38`, not 0.
#[inline(always)]
fn exp_nonpos(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    // round to nearest without a call to `round`: valid for |t| < 2^22
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    // ln 2 = 355/512 (exact in f32) - 2.12194440e-4
    let r = x - n * (355.0 / 512.0) - n * (-2.12194440e-4f64 as f32);
    const P: [f64; 6] = [
        1.9875691500e-4,
        1.3981999507e-3,
        8.3334519073e-3,
        4.1665795894e-2,
        1.6666665459e-1,
        5.0000001201e-1,
    ];
    let mut y = P[0] as f32;
    for c in &P[1..] {
        y = y * r + *c as f32;
    }
    let y = y * (r * r) + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / √(2π)
const INV_SQRT_2PI: f32 = 0.398_942_280_401_432_7_f64 as f32;

/// `0.5 x (1 + erf(x / √2))`, as PyTorch's and burn's exact GELU.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// `d gelu / dx = Φ(x) + x φ(x)`.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp_nonpos(-0.5 * x * x);
    cdf + x * pdf
}

#[inline(always)]
fn gelu_loop(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = gelu(x);
    }
}

#[inline(always)]
fn gelu_backward_loop(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = g * gelu_grad(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gelu_loop_avx2(x: &[f32], y: &mut [f32]) {
    gelu_loop(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gelu_backward_loop_avx2(x: &[f32], g: &[f32], out: &mut [f32]) {
    gelu_backward_loop(x, g, out)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}

fn gelu_chunk(x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { gelu_loop_avx2(x, y) };
        return;
    }
    gelu_loop(x, y)
}

fn gelu_backward_chunk(x: &[f32], g: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { gelu_backward_loop_avx2(x, g, out) };
        return;
    }
    gelu_backward_loop(x, g, out)
}

/// `y = gelu(x)` element by element, on rayon's threads for long slices.
pub fn gelu_slice(x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "gelu_slice: lengths differ");
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| gelu_chunk(x, y));
}

/// `out = g · gelu'(x)` element by element (the backward pass of GELU for upstream gradient `g`).
pub fn gelu_backward_slice(x: &[f32], g: &[f32], out: &mut [f32]) {
    assert!(
        x.len() == g.len() && x.len() == out.len(),
        "gelu_backward_slice: lengths differ"
    );
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(o, (x, g))| gelu_backward_chunk(x, g, o));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu64(x: f64) -> f64 {
        0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
    }

    fn gelu_grad64(x: f64) -> f64 {
        let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        cdf + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// A dense grid over [-12, 12] plus the special points.
    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-240_000..=240_000).map(|i| i as f32 * 5e-5).collect();
        v.extend([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 1e4, -1e4]);
        v
    }

    #[test]
    fn erf_is_within_a_few_ulps_of_f64() {
        let (mut worst, mut at) = (0f64, 0f32);
        for x in grid() {
            let e = (erf(x) as f64 - libm::erf(x as f64)).abs();
            if e > worst {
                (worst, at) = (e, x);
            }
        }
        // measured: 3.95e-7 = 3.3 f32 epsilons (erf is at most 1 in magnitude)
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst |erf error| {worst:e} at {at}"
        );
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }

    #[test]
    fn exp_matches_f64_to_a_few_ulps() {
        let mut worst = 0f64;
        for i in 0..=86_900 {
            let x = -(i as f32) * 1e-3;
            let want = (x as f64).exp();
            let rel = ((exp_nonpos(x) as f64) - want).abs() / want;
            worst = worst.max(rel);
        }
        assert!(
            worst < 2.0 * f32::EPSILON as f64,
            "worst relative exp error {worst:e}"
        );
        assert_eq!(exp_nonpos(0.0), 1.0);
    }

    #[test]
    fn gelu_and_its_gradient_match_f64() {
        let xs = grid();
        let mut y = vec![0f32; xs.len()];
        gelu_slice(&xs, &mut y);
        let g: Vec<f32> = xs.iter().map(|&x| 1.0 + x.abs() * 0.01).collect();
        let mut dx = vec![0f32; xs.len()];
        gelu_backward_slice(&xs, &g, &mut dx);
        for i in 0..xs.len() {
            let x = xs[i] as f64;
            // absolute error relative to max(|x|, 1): the f32 formula 1 + erf(.) itself loses
            // precision for very negative x (as PyTorch's and libm-based burn's do).
            let scale = x.abs().max(1.0);
            let e = (y[i] as f64 - gelu64(x)).abs() / scale;
            assert!(
                e < 4.0 * f32::EPSILON as f64,
                "gelu({x}) = {} vs {}",
                y[i],
                gelu64(x)
            );
            let want = g[i] as f64 * gelu_grad64(x);
            let e = (dx[i] as f64 - want).abs() / (g[i] as f64 * scale);
            assert!(
                e < 4.0 * f32::EPSILON as f64,
                "gelu'({x}) = {} vs {want}",
                dx[i]
            );
        }
        // the SIMD and the scalar paths give the same bits
        let mut y2 = vec![0f32; xs.len()];
        gelu_loop(&xs, &mut y2);
        assert!(y.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
