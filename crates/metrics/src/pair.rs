//! The two-training-sets test (Kadkhodaie et al., ICLR 2024; docs/METHOD.md §8): two networks
//! trained on independent training sets of the same size sample from the same noise; sample `i`
//! of one is compared with sample `i` of the other. When they generalize, the pair is nearly the
//! same image; when they memorize, each lands on its own training set and the pair is as far
//! apart as two independent draws from the data.
//!
//! Two numbers per pair of images `(a, b)`:
//! - the L2 distance `||a - b||` (pixel units: values as stored, [0, 1] for the sweep's images);
//! - the centred cosine similarity `<a - c, b - c> / (||a - c|| ||b - c||)` with `c` the
//!   per-pixel mean of the data (one centre vector for every number of one comparison: the
//!   sweep takes O's mean, `eval --pair-with` the mean of its original set). Centring on the data
//!   mean makes two independent draws score about 0 (their centred inner product has mean 0),
//!   whatever the shared structure of the images. A centred image equal to the centre (norm 0)
//!   scores 1 against another such image and 0 against any other.
//!
//! and three levels that read them:
//! - [`paired`]: the mean over the `m` pairs `(a_i, b_i)`, with a normal 95 % interval
//!   (mean ± 1.96 s.e., sample s.d. over the pairs);
//! - [`floor`]: the mean over every ordered pair `(x_i, x_j)`, `i != j`, of a set of independent
//!   draws from the data — what two networks that each return an unrelated data image give;
//! - [`copy_level`]: the mean over the samples of each sample against its nearest training image
//!   (Euclidean nearest, [`crate::nn`]) — 0 and 1 for a network that copies its training set.
//!
//! Pure functions over row-major `(n, d)` slices of any [`Value`]; sums in f64.

use serde::Serialize;

use crate::error::{MetricsError, Result};
use crate::kde::Value;
use crate::stats::{mean_se, neumaier_sum, Z95};

/// Paired numbers of two sample sets, with normal 95 % intervals over the pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairStats {
    /// Pairs compared.
    pub m: usize,
    /// Mean L2 distance of the pairs and its interval.
    pub dist: f64,
    pub dist_lo: f64,
    pub dist_hi: f64,
    /// Mean centred cosine similarity of the pairs and its interval.
    pub similarity: f64,
    pub similarity_lo: f64,
    pub similarity_hi: f64,
}

/// A reference level: mean distance and mean centred cosine similarity over `m` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Level {
    pub m: usize,
    pub dist: f64,
    pub similarity: f64,
}

/// Rows of a data set the floor uses at most (the first ones: `m (m - 1)` ordered pairs).
pub const FLOOR_MAX_ROWS: usize = 256;

fn check<V: Value>(set: &str, x: &[V], n: usize, d: usize) -> Result<()> {
    if n == 0 || d == 0 {
        return Err(MetricsError::Empty { set: set.into() });
    }
    if x.len() != n * d {
        return Err(MetricsError::Shape {
            set: set.into(),
            len: x.len(),
            n,
            d,
        });
    }
    if let Some(i) = x.iter().position(|&v| !v.into().is_finite()) {
        return Err(MetricsError::NonFinite {
            set: set.into(),
            row: i / d,
            pixel: i % d,
            value: x[i].into(),
        });
    }
    Ok(())
}

fn check_centre(centre: &[f64], d: usize) -> Result<()> {
    if centre.len() != d {
        return Err(MetricsError::PixelCount {
            set: "centre".into(),
            expected: d,
            got: centre.len(),
        });
    }
    Ok(())
}

/// The per-pixel mean of a set (the centre of the similarity).
pub fn centre<V: Value>(x: &[V], n: usize, d: usize) -> Result<Vec<f64>> {
    check("centre", x, n, d)?;
    Ok((0..d)
        .map(|j| neumaier_sum((0..n).map(|i| x[i * d + j].into())) / n as f64)
        .collect())
}

/// Distance and centred cosine similarity of one pair of images.
pub fn pair_values<A: Value, B: Value>(a: &[A], b: &[B], centre: &[f64]) -> (f64, f64) {
    let (mut dd, mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((&x, &y), &c) in a.iter().zip(b).zip(centre) {
        let (x, y): (f64, f64) = (x.into(), y.into());
        let u = x - y;
        dd += u * u;
        let (p, q) = (x - c, y - c);
        ab += p * q;
        aa += p * p;
        bb += q * q;
    }
    // sqrt(fl(s * s)) == s in binary floating point, so an image against itself gives 1 exactly.
    let sim = if aa == 0.0 && bb == 0.0 {
        1.0
    } else if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        (ab / (aa * bb).sqrt()).clamp(-1.0, 1.0)
    };
    (dd.sqrt(), sim)
}

/// Sample `i` of `a` against sample `i` of `b` (both `n x d`), centred on `centre` (length `d`).
pub fn paired<A: Value, B: Value>(
    a: &[A],
    b: &[B],
    n: usize,
    d: usize,
    centre: &[f64],
) -> Result<PairStats> {
    check("first sample", a, n, d)?;
    check("second sample", b, n, d)?;
    check_centre(centre, d)?;
    let (dist, sim): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|i| pair_values(&a[i * d..(i + 1) * d], &b[i * d..(i + 1) * d], centre))
        .unzip();
    let (ds, ss) = (mean_se(&dist), mean_se(&sim));
    // One pair: no spread to estimate, the interval is the value itself.
    let half = |se: f64| if se.is_finite() { Z95 * se } else { 0.0 };
    Ok(PairStats {
        m: n,
        dist: ds.mean,
        dist_lo: ds.mean - half(ds.se),
        dist_hi: ds.mean + half(ds.se),
        similarity: ss.mean,
        similarity_lo: (ss.mean - half(ss.se)).max(-1.0),
        similarity_hi: (ss.mean + half(ss.se)).min(1.0),
    })
}

fn mean_level(vals: impl Iterator<Item = (f64, f64)>) -> Level {
    let (d, s): (Vec<f64>, Vec<f64>) = vals.unzip();
    let m = d.len();
    Level {
        m,
        dist: neumaier_sum(d) / m as f64,
        similarity: neumaier_sum(s) / m as f64,
    }
}

/// The floor: the mean over every ordered pair `(x_i, x_j)`, `i != j`, of the first
/// `min(n, FLOOR_MAX_ROWS)` rows of `x` (independent draws from the data). Needs 2 rows.
pub fn floor<V: Value>(x: &[V], n: usize, d: usize, centre: &[f64]) -> Result<Level> {
    check("data", x, n, d)?;
    check_centre(centre, d)?;
    let m = n.min(FLOOR_MAX_ROWS);
    if m < 2 {
        return Err(MetricsError::Invalid(
            "the floor needs at least 2 data images".into(),
        ));
    }
    let row = |i: usize| &x[i * d..(i + 1) * d];
    Ok(mean_level((0..m).flat_map(|i| {
        (0..m)
            .filter(move |&j| j != i)
            .map(move |j| pair_values(row(i), row(j), centre))
    })))
}

/// The copy level: each sample of `g` (`n_g x d`) against its nearest image of `t` (`n_t x d`),
/// averaged over the samples.
pub fn copy_level<G: Value, T: Value>(
    g: &[G],
    n_g: usize,
    t: &[T],
    n_t: usize,
    d: usize,
    centre: &[f64],
) -> Result<Level> {
    check("generated", g, n_g, d)?;
    check("train", t, n_t, d)?;
    check_centre(centre, d)?;
    let nb = crate::nn::nearest_neighbours(t, n_t, g, n_g, d)?;
    Ok(mean_level(nb.iter().enumerate().map(|(i, n)| {
        pair_values(
            &g[i * d..(i + 1) * d],
            &t[n.index * d..(n.index + 1) * d],
            centre,
        )
    })))
}

/// Two levels of the same kind pooled, weighted by their pair counts (e.g. the copy levels of
/// the two networks).
pub fn pool(a: &Level, b: &Level) -> Level {
    let m = a.m + b.m;
    let w = |x: f64, y: f64| (x * a.m as f64 + y * b.m as f64) / m as f64;
    Level {
        m,
        dist: w(a.dist, b.dist),
        similarity: w(a.similarity, b.similarity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random set (n x d) in [0, 1).
    fn set(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n * d)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn identical_sets_give_similarity_one_and_distance_zero_exactly() {
        let (n, d) = (50, 37);
        let x = set(n, d, 3);
        let c = centre(&set(200, d, 4), 200, d).unwrap();
        let p = paired(&x, &x, n, d, &c).unwrap();
        assert_eq!(p.m, n);
        assert_eq!((p.dist, p.dist_lo, p.dist_hi), (0.0, 0.0, 0.0));
        assert_eq!(
            (p.similarity, p.similarity_lo, p.similarity_hi),
            (1.0, 1.0, 1.0)
        );
        // f32 images against their f64 copy: the same values, the same answer.
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
        let p = paired(&x32, &x64, n, d, &c).unwrap();
        assert_eq!((p.dist, p.similarity), (0.0, 1.0));
    }

    #[test]
    fn hand_made_pairs_give_the_closed_forms() {
        // Centre 0: (1,0)-(0,1): dist sqrt 2, cos 0; (1,1)-(2,2): sqrt 2, 1; (1,0)-(-1,0): 2, -1.
        let a = [1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let b = [0.0, 1.0, 2.0, 2.0, -1.0, 0.0];
        let p = paired(&a, &b, 3, 2, &[0.0, 0.0]).unwrap();
        let s2 = 2f64.sqrt();
        assert!((p.dist - (2.0 * s2 + 2.0) / 3.0).abs() < 1e-15);
        assert!(p.similarity.abs() < 1e-15);
        // similarities (0, 1, -1): s.d. 1, s.e. 1/sqrt 3, so ±1.13, clipped to [-1, 1].
        assert!(Z95 / 3f64.sqrt() > 1.0);
        assert_eq!((p.similarity_lo, p.similarity_hi), (-1.0, 1.0));
        // distances (sqrt2, sqrt2, 2): mean mu, s.d. with m - 1.
        let mu = (2.0 * s2 + 2.0) / 3.0;
        let sd = ((2.0 * (s2 - mu).powi(2) + (2.0 - mu).powi(2)) / 2.0).sqrt();
        assert!((p.dist_hi - mu - Z95 * sd / 3f64.sqrt()).abs() < 1e-12);
        // The centre moves the similarity, not the distance: centre (1, 0) makes the first
        // pair (0,0)-(-1,1): norm 0 against norm > 0 scores 0; (0,1)-(1,2): 2/sqrt(1*5).
        let (dd, s) = pair_values(&a[2..4], &b[2..4], &[1.0, 0.0]);
        assert!((dd - s2).abs() < 1e-15 && (s - 2.0 / 5f64.sqrt()).abs() < 1e-15);
        assert_eq!(pair_values(&[1.0, 0.0], &[0.0, 1.0], &[1.0, 0.0]).1, 0.0);
        assert_eq!(
            pair_values(&[1.0, 0.0], &[1.0, 0.0], &[1.0, 0.0]),
            (0.0, 1.0)
        );
        // One pair: the interval is the value.
        let p = paired(&a[..2], &b[..2], 1, 2, &[0.0, 0.0]).unwrap();
        assert_eq!((p.dist_lo, p.dist_hi), (s2, s2));
    }

    /// The floor by brute force, written out independently of the module's loops.
    fn brute_floor(x: &[f64], n: usize, d: usize, c: &[f64]) -> (f64, f64) {
        let (mut sd, mut ss, mut k) = (0.0, 0.0, 0.0);
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let (xi, xj) = (&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
                let dist: f64 = xi.iter().zip(xj).map(|(a, b)| (a - b) * (a - b)).sum();
                let ab: f64 = (0..d).map(|l| (xi[l] - c[l]) * (xj[l] - c[l])).sum();
                let aa: f64 = (0..d).map(|l| (xi[l] - c[l]).powi(2)).sum();
                let bb: f64 = (0..d).map(|l| (xj[l] - c[l]).powi(2)).sum();
                sd += dist.sqrt();
                ss += ab / (aa.sqrt() * bb.sqrt());
                k += 1.0;
            }
        }
        (sd / k, ss / k)
    }

    #[test]
    fn a_set_paired_with_shuffled_copies_of_itself_gives_the_floor() {
        let (n, d) = (40, 16);
        let x = set(n, d, 11);
        let c = centre(&x, n, d).unwrap();
        let f = floor(&x, n, d, &c).unwrap();
        assert_eq!(f.m, n * (n - 1));
        let (bd, bs) = brute_floor(&x, n, d, &c);
        assert!((f.dist - bd).abs() < 1e-12, "{} {bd}", f.dist);
        assert!((f.similarity - bs).abs() < 1e-12, "{} {bs}", f.similarity);
        // The n - 1 cyclic shifts pair every i with every j != i once: their paired means
        // average to the floor exactly.
        let (mut sd, mut ss) = (0.0, 0.0);
        for k in 1..n {
            let shifted: Vec<f64> = (0..n)
                .flat_map(|i| x[((i + k) % n) * d..((i + k) % n + 1) * d].to_vec())
                .collect();
            let p = paired(&x, &shifted, n, d, &c).unwrap();
            sd += p.dist;
            ss += p.similarity;
        }
        assert!((sd / (n - 1) as f64 - f.dist).abs() < 1e-12);
        assert!((ss / (n - 1) as f64 - f.similarity).abs() < 1e-12);
        // One derangement (a shuffle with no fixed point): its interval holds the floor.
        let perm: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        assert!(perm.iter().enumerate().all(|(i, &j)| i != j));
        let shuffled: Vec<f64> = perm
            .iter()
            .flat_map(|&j| x[j * d..(j + 1) * d].to_vec())
            .collect();
        let p = paired(&x, &shuffled, n, d, &c).unwrap();
        assert!(p.similarity_lo <= f.similarity && f.similarity <= p.similarity_hi);
        assert!(p.dist_lo <= f.dist && f.dist <= p.dist_hi);
        // Uniform pixels, own mean as centre: independent pairs score about 0.
        assert!(f.similarity.abs() < 0.05, "{}", f.similarity);
    }

    #[test]
    fn the_floor_uses_the_first_rows_only() {
        let d = 3;
        let x = set(FLOOR_MAX_ROWS + 10, d, 5);
        let c = vec![0.5; d];
        let all = floor(&x, FLOOR_MAX_ROWS + 10, d, &c).unwrap();
        let first = floor(&x[..FLOOR_MAX_ROWS * d], FLOOR_MAX_ROWS, d, &c).unwrap();
        assert_eq!(all, first);
        assert!(floor(&x[..d], 1, d, &c).is_err());
    }

    #[test]
    fn copy_level_of_copies_and_of_a_hand_made_set() {
        let (n, d) = (12, 5);
        let t = set(n, d, 8);
        let c = centre(&t, n, d).unwrap();
        // Copies of rows of T: distance 0, similarity 1, exactly.
        let g: Vec<f64> = [3, 0, 11, 3]
            .iter()
            .flat_map(|&j| t[j * d..(j + 1) * d].to_vec())
            .collect();
        let l = copy_level(&g, 4, &t, n, d, &c).unwrap();
        assert_eq!((l.m, l.dist, l.similarity), (4, 0.0, 1.0));
        // T = {(0,0), (2,0)}, G = {(0.5,0), (2,1)}: nearest (0,0) at 0.5 and (2,0) at 1.
        // Centre (1, 0): cosines (-0.5·-1)/(0.5·1) = 1 and (1·1)/(sqrt2·1) = 1/sqrt2.
        let l = copy_level(
            &[0.5, 0.0, 2.0, 1.0],
            2,
            &[0.0, 0.0, 2.0, 0.0],
            2,
            2,
            &[1.0, 0.0],
        )
        .unwrap();
        assert!((l.dist - 0.75).abs() < 1e-15);
        assert!((l.similarity - (1.0 + 0.5f64.sqrt()) / 2.0).abs() < 1e-15);
        let both = pool(
            &l,
            &Level {
                m: 6,
                dist: 1.75,
                similarity: 0.0,
            },
        );
        assert_eq!(both.m, 8);
        assert!((both.dist - (2.0 * 0.75 + 6.0 * 1.75) / 8.0).abs() < 1e-15);
    }

    #[test]
    fn bad_shapes_and_values_are_named() {
        let c = [0.0, 0.0];
        let e = paired(&[0.0, 1.0, 2.0], &[0.0, 1.0], 1, 2, &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "first sample set: 3 values is not 1 samples x 2 pixels"
        );
        let e = paired(&[0.0, 1.0], &[0.0, f64::NAN], 1, 2, &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "second sample set: sample 0, pixel 1 is NaN (only finite values can be evaluated)"
        );
        let e = paired(&[0.0, 1.0], &[0.0, 1.0], 1, 2, &[0.0]).unwrap_err();
        assert!(e.to_string().starts_with("centre set has 1 pixels"), "{e}");
        assert!(paired::<f64, f64>(&[], &[], 0, 2, &c).is_err());
    }
}
