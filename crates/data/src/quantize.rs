//! Quantised data (SPEC §4b): detection, seeded dequantisation, and the tie fraction.
//!
//! Raw u8 images (MNIST) take at most 256 values per pixel. With the metric's narrow kernels
//! (`eps = sigma / n`), exactly equal values dominate every self-term and the metric stops
//! measuring anything else (SPEC §4b: E_OG ≈ 1.25e5, P(Δ>0) = 0 for every generator). Two
//! treatments:
//! - **uniform** (default for quantised inputs): add independent `U(0, 1/255)` noise to every
//!   value, seeded ([`dequantize_uniform`]). Convention: the noise is one-sided, so the value
//!   `k/255` becomes uniform on `[k/255, (k+1)/255)` — the usual "uniform dequantisation" of
//!   density modelling. It shifts the set's mean by `+0.5/255`; apply it to every quantised set
//!   of an evaluation (O and T), not to continuous model output, and read that `0.002` offset
//!   as negligible beside the bandwidths of T-G and O-G (`~ sigma / g`).
//! - **floor**: keep the values, floor the metric's bandwidth at one quantisation step
//!   ([`QUANT_STEP`]; `memdiff_metrics::KdeOptions::min_bandwidth`).
//!
//! Say which was applied in every output (`dequantized = none | uniform | floor`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::ImageSet;

/// One quantisation step of u8 data in `[0, 1]`: `1/255`.
pub const QUANT_STEP: f64 = 1.0 / 255.0;

/// Tolerance of the grid test (values within `1e-6` of some `k/255`).
pub const GRID_TOL: f64 = 1e-6;

/// Rows per independently seeded chunk of [`dequantize_uniform`] (part of its definition).
pub const CHUNK_ROWS: usize = 64;

/// Whether every value lies on the `k/255` grid (within [`GRID_TOL`]), i.e. the set is u8
/// data divided by 255. An empty set is not quantised.
pub fn is_quantized(values: &[f32]) -> bool {
    !values.is_empty()
        && values.par_iter().all(|&v| {
            let v = v as f64;
            let k = (v * 255.0).round();
            (v - k / 255.0).abs() <= GRID_TOL
        })
}

/// Adds `U(0, 1/255)` noise to every value (module doc), seeded: rows are processed in chunks
/// of [`CHUNK_ROWS`], chunk `k` by `ChaCha8Rng::seed_from_u64(seed)` on stream `k`, so the
/// result does not depend on the thread count.
pub fn dequantize_uniform(set: &mut ImageSet, seed: u64) {
    let d = set.dim();
    if d == 0 {
        return;
    }
    set.data
        .par_chunks_mut(CHUNK_ROWS * d)
        .enumerate()
        .for_each(|(k, chunk)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(k as u64);
            for v in chunk.iter_mut() {
                let u: f64 = rng.random();
                *v = (*v as f64 + u * QUANT_STEP) as f32;
            }
        });
}

/// The fraction of ordered pairs `(k, l)`, `k != l`, of samples that share exactly the same
/// value, averaged over pixels: 0 for continuous data, near 1 for raw u8 images with many
/// equal (e.g. black) pixels. When it is well above `1/n`, exact ties dominate the set's
/// self-term under `eps = sigma / n` (SPEC §4b): warn and dequantise. NaN for fewer than 2
/// samples.
pub fn tie_fraction(set: &ImageSet) -> f64 {
    let (n, d) = (set.n, set.dim());
    if n < 2 || d == 0 {
        return f64::NAN;
    }
    let pairs = n as f64 * (n as f64 - 1.0);
    let total: f64 = (0..d)
        .into_par_iter()
        .map(|i| {
            let mut col: Vec<f32> = (0..n).map(|k| set.data[k * d + i]).collect();
            col.sort_unstable_by(f32::total_cmp);
            let mut ties = 0.0f64;
            let mut run = 1.0f64;
            for j in 1..n {
                if col[j] == col[j - 1] {
                    run += 1.0;
                } else {
                    ties += run * (run - 1.0);
                    run = 1.0;
                }
            }
            ties += run * (run - 1.0);
            ties / pairs
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    total / d as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(data: Vec<f32>, n: usize) -> ImageSet {
        let d = data.len() / n;
        ImageSet::new(n, 1, 1, d, data)
    }

    #[test]
    fn detects_the_255_grid() {
        let q: Vec<f32> = (0..=255).map(|k| k as f32 / 255.0).collect();
        assert!(is_quantized(&q));
        let mut c = q.clone();
        c[7] += 1e-4;
        assert!(!is_quantized(&c));
        assert!(!is_quantized(&[0.5f32, 0.123_456]));
        assert!(!is_quantized(&[]));
    }

    #[test]
    fn dequantize_stays_in_the_step_and_is_seeded() {
        let data: Vec<f32> = (0..1000).map(|k| (k % 256) as f32 / 255.0).collect();
        let mut a = set(data.clone(), 100);
        let mut b = set(data.clone(), 100);
        dequantize_uniform(&mut a, 9);
        dequantize_uniform(&mut b, 9);
        assert_eq!(a, b);
        let mut c = set(data.clone(), 100);
        dequantize_uniform(&mut c, 10);
        assert_ne!(a, c);
        let mut mean_shift = 0.0;
        for (x, y) in data.iter().zip(&a.data) {
            let u = (*y as f64 - *x as f64) / QUANT_STEP;
            assert!((-1e-5..1.0 + 1e-5).contains(&u), "{u}");
            mean_shift += u;
        }
        mean_shift /= data.len() as f64;
        assert!((mean_shift - 0.5).abs() < 0.05, "{mean_shift}");
        assert!(!is_quantized(&a.data));
    }

    #[test]
    fn tie_fraction_counts_equal_pairs() {
        // Pixel 0: values (0, 0, 0, 1) -> 3*2 = 6 of 12 ordered pairs; pixel 1 all distinct.
        let s = set(vec![0.0, 0.1, 0.0, 0.2, 0.0, 0.3, 1.0, 0.4], 4);
        assert!((tie_fraction(&s) - 0.25).abs() < 1e-15);
        let s = set(vec![0.5; 6], 3);
        assert_eq!(tie_fraction(&s), 1.0);
        assert!(tie_fraction(&set(vec![0.5, 0.5], 1)).is_nan());
    }
}
