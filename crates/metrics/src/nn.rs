//! Nearest-neighbour audit (beyond the seeds; Carlini et al. 2023, Gu et al. 2023): for each
//! generated sample, the ℓ2 distance to its nearest and second-nearest training sample, their
//! ratio `d1 / d2` and the index of the nearest one. A ratio below 1/3 marks the sample as a
//! likely copy ("memorized", Carlini et al.'s threshold).

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{MetricsError, Result};
use crate::kde::Value;

/// Carlini et al.'s threshold on `d1 / d2`.
pub const MEMORIZED_RATIO: f64 = 1.0 / 3.0;

/// Neighbours of one generated sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Neighbour {
    /// Index (row) of the nearest training sample (the first one on exact distance ties).
    pub index: usize,
    /// ℓ2 distance to it.
    pub d1: f64,
    /// ℓ2 distance to the second-nearest training sample (infinite when T has one sample).
    pub d2: f64,
    /// Index (row) of the second-nearest training sample (`None` when T has one sample).
    pub second: Option<usize>,
    /// `d1 / d2`; NaN when T has one sample or both distances are 0.
    pub ratio: f64,
}

/// Summary over the generated set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NnSummary {
    /// Mean of the finite ratios (NaN if none).
    pub ratio_mean: f64,
    /// Fraction of generated samples with ratio < 1/3 (over those with a finite ratio).
    pub frac_memorized: f64,
    /// Mean `d1`.
    pub d1_mean: f64,
}

/// Nearest and second-nearest training sample of every generated sample (`t`: `n_t x d`,
/// `g`: `n_g x d`, row-major). Exact (brute force, f64), parallel over generated samples.
pub fn nearest_neighbours<T: Value, G: Value>(
    t: &[T],
    n_t: usize,
    g: &[G],
    n_g: usize,
    d: usize,
) -> Result<Vec<Neighbour>> {
    for (name, len, n) in [("train", t.len(), n_t), ("generated", g.len(), n_g)] {
        if n == 0 {
            return Err(MetricsError::Empty { set: name.into() });
        }
        if len != n * d {
            return Err(MetricsError::Shape {
                set: name.into(),
                len,
                n,
                d,
            });
        }
    }
    let tf: Vec<f64> = t.iter().map(|&v| v.into()).collect();
    Ok((0..n_g)
        .into_par_iter()
        .map(|i| {
            let q: Vec<f64> = g[i * d..(i + 1) * d].iter().map(|&v| v.into()).collect();
            let (mut b1, mut b2, mut idx, mut idx2) = (f64::INFINITY, f64::INFINITY, 0usize, None);
            for k in 0..n_t {
                let row = &tf[k * d..(k + 1) * d];
                let mut acc = [0.0f64; 4];
                let mut it = row.chunks_exact(4).zip(q.chunks_exact(4));
                for (a, b) in &mut it {
                    for l in 0..4 {
                        let u = a[l] - b[l];
                        acc[l] += u * u;
                    }
                }
                let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                let done = d / 4 * 4;
                for j in done..d {
                    let u = row[j] - q[j];
                    s += u * u;
                }
                if s < b1 {
                    b2 = b1;
                    b1 = s;
                    if k > 0 {
                        idx2 = Some(idx);
                    }
                    idx = k;
                } else if s < b2 {
                    b2 = s;
                    idx2 = Some(k);
                }
            }
            let (d1, d2) = (b1.sqrt(), b2.sqrt());
            let ratio = if d2.is_finite() && d2 > 0.0 {
                d1 / d2
            } else {
                f64::NAN
            };
            Neighbour {
                index: idx,
                d1,
                d2,
                second: idx2,
                ratio,
            }
        })
        .collect())
}

/// Mean ratio, fraction below 1/3, mean d1.
pub fn summarize(nb: &[Neighbour]) -> NnSummary {
    let finite: Vec<f64> = nb
        .iter()
        .map(|n| n.ratio)
        .filter(|r| r.is_finite())
        .collect();
    let m = finite.len() as f64;
    NnSummary {
        ratio_mean: finite.iter().sum::<f64>() / m,
        frac_memorized: finite.iter().filter(|&&r| r < MEMORIZED_RATIO).count() as f64 / m,
        d1_mean: nb.iter().map(|n| n.d1).sum::<f64>() / nb.len() as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_neighbours() {
        // T: (0,0), (3,4), (1,0); G: (0.1,0) near T0, (3,4) exactly T1.
        let t = [0.0f32, 0.0, 3.0, 4.0, 1.0, 0.0];
        let g = [0.1f64, 0.0, 3.0, 4.0];
        let nb = nearest_neighbours(&t, 3, &g, 2, 2).unwrap();
        assert_eq!(nb[0].index, 0);
        assert!((nb[0].d1 - 0.1).abs() < 1e-15 && (nb[0].d2 - 0.9).abs() < 1e-15);
        assert!((nb[0].ratio - 0.1 / 0.9).abs() < 1e-15);
        assert_eq!(nb[1].index, 1);
        assert_eq!(nb[1].d1, 0.0);
        // (3,4) to (1,0): sqrt(4 + 16)
        assert!((nb[1].d2 - 20f64.sqrt()).abs() < 1e-15);
        assert_eq!(nb[1].ratio, 0.0);
        // Second nearest: (0.1,0) -> T2 = (1,0) at 0.9; (3,4) -> T2 = (1,0) at sqrt(20) < 5.
        assert_eq!((nb[0].second, nb[1].second), (Some(2), Some(2)));
        let s = summarize(&nb);
        assert_eq!(s.frac_memorized, 1.0);
        assert!((s.ratio_mean - 0.1 / 0.9 / 2.0).abs() < 1e-15);
        // One training sample: no second neighbour.
        let nb = nearest_neighbours(&t[..2], 1, &g, 2, 2).unwrap();
        assert!(nb[0].ratio.is_nan() && nb[0].d2.is_infinite());
        assert_eq!(nb[0].second, None);
        assert!(nearest_neighbours(&t, 2, &g, 2, 2).is_err());
    }

    #[test]
    fn second_nearest_matches_a_full_sort() {
        // 40 training points, 15 queries in 5-D from a fixed LCG; the second entry of the
        // sorted distance list is the second neighbour, its distance d2.
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let d = 5;
        let t: Vec<f64> = (0..40 * d).map(|_| next()).collect();
        let g: Vec<f64> = (0..15 * d).map(|_| next()).collect();
        let nb = nearest_neighbours(&t, 40, &g, 15, d).unwrap();
        for (i, n) in nb.iter().enumerate() {
            let mut all: Vec<(f64, usize)> = (0..40)
                .map(|k| {
                    let s: f64 = (0..d).map(|j| (t[k * d + j] - g[i * d + j]).powi(2)).sum();
                    (s.sqrt(), k)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!((n.index, n.second), (all[0].1, Some(all[1].1)));
            assert!((n.d2 - all[1].0).abs() < 1e-12);
        }
    }
}
