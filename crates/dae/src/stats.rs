//! What is measured on a set of generated samples: projections on the first axes (the centroid
//! plane / the top principal components), per-direction variances with standard errors, odd
//! moments (zero for a density symmetric under `x → −x`), modes of a 2-D kernel density
//! estimate, and the energy distance between two projected clouds.

use serde::Serialize;

/// The first `p` coordinates of each row of `x` (`m x d`), as `m` rows of `p`.
pub fn project(x: &[f64], d: usize, p: usize) -> Vec<Vec<f64>> {
    x.chunks(d).map(|r| r[..p].to_vec()).collect()
}

/// A mean with its standard error.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Est {
    pub value: f64,
    pub se: f64,
}

impl Est {
    /// Mean and standard error of `v`.
    pub fn mean_of(v: impl Iterator<Item = f64> + Clone) -> Self {
        let n = v.clone().count() as f64;
        let mean = v.clone().sum::<f64>() / n;
        let var = v.map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Est {
            value: mean,
            se: (var / n).sqrt(),
        }
    }
}

/// Sample variance of `v` with its standard error `√((μ4 − s⁴)/n)`.
pub fn variance(v: &[f64]) -> Est {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let s2 = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m4 = v.iter().map(|a| (a - mean).powi(4)).sum::<f64>() / n;
    Est {
        value: s2,
        se: ((m4 - s2 * s2).max(0.0) / n).sqrt(),
    }
}

/// Column `j` of `m` rows of `d` values.
pub fn column(x: &[f64], d: usize, j: usize) -> Vec<f64> {
    x.chunks(d).map(|r| r[j]).collect()
}

/// Mean over coordinates `from..d` of the per-coordinate sample variance, with the standard
/// error of that mean from the spread over coordinates.
pub fn bulk_variance(x: &[f64], d: usize, from: usize) -> Est {
    let m = x.len() / d;
    let mut sum = vec![0.0; d];
    let mut sq = vec![0.0; d];
    for r in x.chunks(d) {
        for j in from..d {
            sum[j] += r[j];
            sq[j] += r[j] * r[j];
        }
    }
    let vars = (from..d).map(|j| {
        let mean = sum[j] / m as f64;
        (sq[j] - m as f64 * mean * mean) / (m as f64 - 1.0)
    });
    Est::mean_of(vars)
}

/// The odd moments of the first two projected coordinates: `E y1, E y2, E y1³, E y2³,
/// E y1² y2, E y1 y2²` (about the origin). All vanish for a density symmetric under `y → −y`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OddMoments {
    pub names: Vec<String>,
    pub values: Vec<Est>,
    /// `max |value|/se` over the moments.
    pub max_abs_z: f64,
}

pub fn odd_moments(y: &[Vec<f64>]) -> OddMoments {
    let p = y.first().map_or(0, |r| r.len()).min(2);
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut push = |name: &str, f: &dyn Fn(&[f64]) -> f64| {
        names.push(name.to_string());
        values.push(Est::mean_of(y.iter().map(|r| f(r))));
    };
    push("E[y1]", &|r| r[0]);
    push("E[y1^3]", &|r| r[0].powi(3));
    if p == 2 {
        push("E[y2]", &|r| r[1]);
        push("E[y2^3]", &|r| r[1].powi(3));
        push("E[y1^2 y2]", &|r| r[0] * r[0] * r[1]);
        push("E[y1 y2^2]", &|r| r[0] * r[1] * r[1]);
    }
    let max_abs_z = values
        .iter()
        .map(|e| {
            if e.se > 0.0 {
                e.value.abs() / e.se
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max);
    OddMoments {
        names,
        values,
        max_abs_z,
    }
}

/// A local maximum of a 2-D kernel density estimate.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Mode {
    pub y1: f64,
    pub y2: f64,
    /// Density relative to the highest mode.
    pub height: f64,
}

/// Settings of the mode finder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModeOpts {
    /// Bandwidth as a fraction of Scott's rule `σ_a n^{−1/6}` (per axis).
    pub bandwidth: f64,
    /// Grid points per axis.
    pub grid: usize,
    /// Local maxima below this fraction of the highest one are dropped.
    pub threshold: f64,
}

impl Default for ModeOpts {
    fn default() -> Self {
        Self {
            bandwidth: 1.0,
            grid: 80,
            threshold: 0.15,
        }
    }
}

/// The Gaussian KDE of 2-D points on a `grid x grid` lattice: `(x axis, y axis, density[iy][ix])`.
pub fn kde_grid(pts: &[Vec<f64>], opts: ModeOpts) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let n = pts.len() as f64;
    let axis = |a: usize| {
        let v: Vec<f64> = pts.iter().map(|r| r[a]).collect();
        let e = variance(&v);
        let h = opts.bandwidth * e.value.sqrt().max(1e-12) * n.powf(-1.0 / 6.0);
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min) - 3.0 * h;
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 3.0 * h;
        let g: Vec<f64> = (0..opts.grid)
            .map(|i| lo + (hi - lo) * i as f64 / (opts.grid - 1) as f64)
            .collect();
        (g, h)
    };
    let ((gx, hx), (gy, hy)) = (axis(0), axis(1));
    let mut dens = vec![vec![0.0; opts.grid]; opts.grid];
    let mut kx = vec![0.0; opts.grid];
    let mut ky = vec![0.0; opts.grid];
    for r in pts {
        for (k, g) in kx.iter_mut().zip(&gx) {
            let z = (g - r[0]) / hx;
            *k = if z.abs() < 5.0 {
                (-0.5 * z * z).exp()
            } else {
                0.0
            };
        }
        for (k, g) in ky.iter_mut().zip(&gy) {
            let z = (g - r[1]) / hy;
            *k = if z.abs() < 5.0 {
                (-0.5 * z * z).exp()
            } else {
                0.0
            };
        }
        for (row, &b) in dens.iter_mut().zip(&ky) {
            if b == 0.0 {
                continue;
            }
            for (v, &a) in row.iter_mut().zip(&kx) {
                *v += a * b;
            }
        }
    }
    let norm = 1.0 / (n * 2.0 * std::f64::consts::PI * hx * hy);
    for row in &mut dens {
        for v in row.iter_mut() {
            *v *= norm;
        }
    }
    (gx, gy, dens)
}

/// Modes of the 2-D KDE of `pts` (their first two coordinates): grid points higher than their
/// eight neighbours and at least `threshold` times the highest such point, highest first.
pub fn modes_2d(pts: &[Vec<f64>], opts: ModeOpts) -> Vec<Mode> {
    if pts.len() < 2 || pts[0].len() < 2 {
        return Vec::new();
    }
    let (gx, gy, dens) = kde_grid(pts, opts);
    let g = opts.grid;
    let mut found = Vec::new();
    for iy in 1..g - 1 {
        for ix in 1..g - 1 {
            let v = dens[iy][ix];
            let mut is_max = true;
            for dy in [-1i64, 0, 1] {
                for dx in [-1i64, 0, 1] {
                    if (dx, dy) == (0, 0) {
                        continue;
                    }
                    let w = dens[(iy as i64 + dy) as usize][(ix as i64 + dx) as usize];
                    if w >= v {
                        is_max = false;
                    }
                }
            }
            if is_max {
                found.push((gx[ix], gy[iy], v));
            }
        }
    }
    let top = found.iter().map(|m| m.2).fold(0.0, f64::max);
    found.sort_by(|a, b| b.2.total_cmp(&a.2));
    // A lower maximum joins a higher one unless the density dips between them below
    // `VALLEY` times the lower one (along the straight segment): noise bumps on one mode's top
    // are not modes.
    let at = |x: f64, y: f64| {
        let ix = ((x - gx[0]) / (gx[g - 1] - gx[0]) * (g - 1) as f64).round() as usize;
        let iy = ((y - gy[0]) / (gy[g - 1] - gy[0]) * (g - 1) as f64).round() as usize;
        dens[iy.min(g - 1)][ix.min(g - 1)]
    };
    let mut kept: Vec<(f64, f64, f64)> = Vec::new();
    for &(x, y, v) in &found {
        if v < opts.threshold * top {
            continue;
        }
        let separate = kept.iter().all(|&(a, b, _)| {
            (0..=40).any(|i| {
                let f = i as f64 / 40.0;
                at(x + f * (a - x), y + f * (b - y)) < VALLEY * v
            })
        });
        if separate {
            kept.push((x, y, v));
        }
    }
    kept.into_iter()
        .map(|(a, b, v)| Mode {
            y1: a,
            y2: b,
            height: v / top,
        })
        .collect()
}

/// See [`modes_2d`].
const VALLEY: f64 = 0.9;

/// Mean over the `reference` modes of the distance to the nearest mode of `modes` (∞ if
/// `modes` is empty).
pub fn mode_error(modes: &[Mode], reference: &[(f64, f64)]) -> f64 {
    let s: f64 = reference
        .iter()
        .map(|&(a, b)| {
            modes
                .iter()
                .map(|m| ((m.y1 - a).powi(2) + (m.y2 - b).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    s / reference.len() as f64
}

/// The energy distance `2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖` between two clouds (V-statistics
/// over all pairs; zero only for equal laws in the limit).
pub fn energy_distance(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let mean_dist = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        let mut s = 0.0;
        for p in a {
            for q in b {
                s += p
                    .iter()
                    .zip(q)
                    .map(|(u, v)| (u - v).powi(2))
                    .sum::<f64>()
                    .sqrt();
            }
        }
        s / (a.len() * b.len()) as f64
    };
    2.0 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn cloud(centres: &[(f64, f64)], std: f64, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let (a, b) = centres[i % centres.len()];
                vec![
                    a + std * r.sample::<f64, _>(StandardNormal),
                    b + std * r.sample::<f64, _>(StandardNormal),
                ]
            })
            .collect()
    }

    #[test]
    fn modes_of_a_known_mixture() {
        let c = [(0.0, 3.0), (-2.6, -1.5), (2.6, -1.5)];
        let pts = cloud(&c, 0.6, 3000, 1);
        let m = modes_2d(&pts, ModeOpts::default());
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(mode_error(&m, &c) < 0.25, "{}", mode_error(&m, &c));
        let one = cloud(&[(1.0, -1.0)], 1.0, 3000, 2);
        let m1 = modes_2d(&one, ModeOpts::default());
        assert_eq!(m1.len(), 1, "{m1:?}");
        assert!(mode_error(&m1, &[(1.0, -1.0)]) < 0.25);
    }

    #[test]
    fn odd_moments_detect_asymmetry() {
        let tri = cloud(&[(0.0, 3.0), (-2.6, -1.5), (2.6, -1.5)], 0.5, 3000, 3);
        assert!(odd_moments(&tri).max_abs_z > 10.0);
        let sym: Vec<Vec<f64>> = tri
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i % 2 == 0 {
                    r.clone()
                } else {
                    vec![-r[0], -r[1]]
                }
            })
            .collect();
        // Not exactly antisymmetric pairs, but a symmetric law: within a few standard errors.
        assert!(odd_moments(&sym).max_abs_z < 4.0);
    }

    #[test]
    fn variance_standard_error_matches_the_gaussian_formula() {
        let mut r = ChaCha8Rng::seed_from_u64(4);
        let v: Vec<f64> = (0..20_000)
            .map(|_| 2.0 * r.sample::<f64, _>(StandardNormal))
            .collect();
        let e = variance(&v);
        // Gaussian: Var(s²) = 2σ⁴/n → se = 4 √(2/20000) = 0.04
        assert!((e.se - 0.04).abs() < 0.004, "{e:?}");
        assert!((e.value - 4.0).abs() < 4.0 * e.se, "{e:?}");
    }

    #[test]
    fn energy_distance_is_small_for_equal_laws_and_large_otherwise() {
        let a = cloud(&[(0.0, 0.0)], 1.0, 500, 5);
        let b = cloud(&[(0.0, 0.0)], 1.0, 500, 6);
        let c = cloud(&[(2.0, 0.0)], 1.0, 500, 7);
        let (same, diff) = (energy_distance(&a, &b), energy_distance(&a, &c));
        assert!(same < 0.05 && diff > 1.0, "{same} {diff}");
    }
}
