//! Sample quality: distribution-level measures of how much a generated set G looks like the data,
//! computed against a reference set R drawn from the data (O in the sweep and `eval`), in the
//! space the rows live in (pixels, or per-image features).
//!
//! - **Fréchet distance** between the Gaussian fits of R and G (Heusel et al. 2017, "FID" in an
//!   Inception feature space; here pixel space unless features are given):
//!   `FD = |μ_R − μ_G|² + tr Σ_R + tr Σ_G − 2 tr (Σ_R^{1/2} Σ_G Σ_R^{1/2})^{1/2}`, with the
//!   covariances normalised by `n − 1`. The middle term equals `tr (Σ_R Σ_G)^{1/2}`; it is computed
//!   in the symmetric form, with the symmetric eigendecompositions of nalgebra (negative
//!   eigenvalues of the PSD matrices, rounding residues, are clamped to 0).
//! - **KID** (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel
//!   `k(x, y) = (x·y / d + 1)³`,
//!   `MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1)) − 2 Σ_{i,j} k(x_i, y_j) / (mn)`,
//!   averaged over `subsets` random subsets of `m = min(subset_size, |R|, |G|)` rows of each set
//!   (drawn without replacement); its s.e. is the standard deviation over the subsets (the spread
//!   of one size-m estimate, torch-fidelity's "KID std").
//! - **k-NN precision / recall** (Kynkäänniemi et al. 2019) and **density / coverage** (Naeem et al.
//!   2020), with `ρ_k(x)` the distance from `x` to its k-th nearest neighbour in its own set (itself
//!   excluded): precision = share of G inside some ball `B(r, ρ_k(r))`, r ∈ R; recall = share of R
//!   inside some ball `B(g, ρ_k(g))`, g ∈ G; density = `Σ_g #{r : g ∈ B(r, ρ_k(r))} / (k |G|)`;
//!   coverage = share of r ∈ R whose nearest g lies inside `B(r, ρ_k(r))`. Balls are closed (`≤`).
//!   k = 3 by default (Kynkäänniemi et al. use 3; Naeem et al. 5): the sets here are small
//!   (tens of generated images), and k must stay well below the set size.
//!
//! [`Reference`] prepares R once (Gaussian fit with its square root, k-NN radii); [`Reference::evaluate`]
//! gives all measures of one G ([`QualityValues`]). Everything is f64, exact (no approximate nearest
//! neighbours), and parallel with rayon over rows.

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{MetricsError, Result};
use crate::kde::Value;

/// Default k of the k-NN measures (Kynkäänniemi et al. 2019).
pub const DEFAULT_K: usize = 3;
/// Default KID subset size (torch-fidelity's 1000; capped by the set sizes).
pub const DEFAULT_KID_SUBSET: usize = 1000;
/// Default number of KID subsets (torch-fidelity's 100).
pub const DEFAULT_KID_SUBSETS: usize = 100;
/// Rows of O that `eval`, the audit and the sweep keep as the reference R (its first rows; O is
/// an i.i.d. draw or a file of distinct images): bounds the `|R|²` cost of the k-NN radii.
pub const REFERENCE_MAX: usize = 2000;

/// Checks a row-major set: `len = n d`, at least `min_rows` rows, every value finite. Returns it
/// as f64. Errors name the set.
fn checked<T: Value>(set: &str, x: &[T], n: usize, d: usize, min_rows: usize) -> Result<Vec<f64>> {
    if n == 0 {
        return Err(MetricsError::Empty { set: set.into() });
    }
    if d == 0 || x.len() != n * d {
        return Err(MetricsError::Shape {
            set: set.into(),
            len: x.len(),
            n,
            d,
        });
    }
    if n < min_rows {
        return Err(MetricsError::Invalid(format!(
            "{set} set has {n} samples; the quality measures need at least {min_rows}"
        )));
    }
    let v: Vec<f64> = x.iter().map(|&a| a.into()).collect();
    if let Some(i) = v.iter().position(|a| !a.is_finite()) {
        return Err(MetricsError::NonFinite {
            set: set.into(),
            row: i / d,
            pixel: i % d,
            value: v[i],
        });
    }
    Ok(v)
}

/// Mean and covariance (normalised by `n − 1`) of a set: its Gaussian fit.
#[derive(Clone, Debug)]
pub struct GaussianFit {
    pub n: usize,
    pub mean: Vec<f64>,
    pub cov: DMatrix<f64>,
}

impl GaussianFit {
    /// Fits `x` (`n x d`, row-major, n ≥ 2). Errors name `set`.
    pub fn new<T: Value>(set: &str, x: &[T], n: usize, d: usize) -> Result<Self> {
        let v = checked(set, x, n, d, 2)?;
        Ok(Self::from_f64(&v, n, d))
    }

    fn from_f64(v: &[f64], n: usize, d: usize) -> Self {
        let mut mean = vec![0.0; d];
        for row in v.chunks_exact(d) {
            for (m, a) in mean.iter_mut().zip(row) {
                *m += a;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        // Centred data as a d x n matrix (column = sample); cov = X Xᵀ / (n − 1).
        let xc = DMatrix::from_fn(d, n, |i, j| v[j * d + i] - mean[i]);
        let mut cov = &xc * xc.transpose();
        cov /= (n - 1) as f64;
        Self { n, mean, cov }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// Symmetric square root of a symmetric PSD matrix (eigenvalues below 0, rounding residues,
/// clamped to 0).
pub fn sqrt_psd(a: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (a + a.transpose()) * 0.5;
    let e = SymmetricEigen::new(sym);
    let s = e.eigenvalues.map(|l| l.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&s) * e.eigenvectors.transpose()
}

/// `tr (A^{1/2} B A^{1/2})^{1/2}` given `A^{1/2}` (= `tr (AB)^{1/2}`).
fn trace_sqrt_product(sqrt_a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let m = sqrt_a * b * sqrt_a;
    let m = (&m + m.transpose()) * 0.5;
    SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum()
}

/// Fréchet distance between two Gaussians `N(μ_a, Σ_a)`, `N(μ_b, Σ_b)` (module doc), given
/// `Σ_a^{1/2}` (from [`sqrt_psd`]).
pub fn frechet_gaussians(
    mu_a: &[f64],
    cov_a: &DMatrix<f64>,
    sqrt_cov_a: &DMatrix<f64>,
    mu_b: &[f64],
    cov_b: &DMatrix<f64>,
) -> f64 {
    let dm: f64 = mu_a.iter().zip(mu_b).map(|(a, b)| (a - b) * (a - b)).sum();
    dm + cov_a.trace() + cov_b.trace() - 2.0 * trace_sqrt_product(sqrt_cov_a, cov_b)
}

/// Fréchet distance between the Gaussian fits of two sets (`n_a x d`, `n_b x d`; each ≥ 2 rows).
pub fn frechet_distance<A: Value, B: Value>(
    a: &[A],
    n_a: usize,
    b: &[B],
    n_b: usize,
    d: usize,
) -> Result<f64> {
    let fa = GaussianFit::new("reference", a, n_a, d)?;
    let fb = GaussianFit::new("generated", b, n_b, d)?;
    Ok(frechet_gaussians(
        &fa.mean,
        &fa.cov,
        &sqrt_psd(&fa.cov),
        &fb.mean,
        &fb.cov,
    ))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut it = a.chunks_exact(4).zip(b.chunks_exact(4));
    for (x, y) in &mut it {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let done = a.len() / 4 * 4;
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in done..a.len() {
        s += a[j] * b[j];
    }
    s
}

fn sqdist(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut it = a.chunks_exact(4).zip(b.chunks_exact(4));
    for (x, y) in &mut it {
        for l in 0..4 {
            let u = x[l] - y[l];
            acc[l] += u * u;
        }
    }
    let done = a.len() / 4 * 4;
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in done..a.len() {
        let u = a[j] - b[j];
        s += u * u;
    }
    s
}

/// The cubic polynomial kernel `(x·y / d + 1)³`.
pub fn poly_kernel(x: &[f64], y: &[f64]) -> f64 {
    let t = dot(x, y) / x.len() as f64 + 1.0;
    t * t * t
}

/// Unbiased MMD² with [`poly_kernel`] between rows `xi` of `x` and rows `yi` of `y` (each ≥ 2).
fn mmd2_rows(x: &[f64], xi: &[usize], y: &[f64], yi: &[usize], d: usize) -> f64 {
    fn row(s: &[f64], i: usize, d: usize) -> &[f64] {
        &s[i * d..(i + 1) * d]
    }
    let within = |s: &[f64], idx: &[usize]| -> f64 {
        let m = idx.len();
        // Per-row sums collected in order, then added in order: the same value on every run.
        let rows: Vec<f64> = (0..m)
            .into_par_iter()
            .map(|a| {
                (a + 1..m)
                    .map(|b| poly_kernel(row(s, idx[a], d), row(s, idx[b], d)))
                    .sum::<f64>()
            })
            .collect();
        let sum: f64 = rows.iter().sum();
        2.0 * sum / (m * (m - 1)) as f64
    };
    let cross: Vec<f64> = xi
        .par_iter()
        .map(|&a| {
            yi.iter()
                .map(|&b| poly_kernel(row(x, a, d), row(y, b, d)))
                .sum::<f64>()
        })
        .collect();
    let cross: f64 = cross.iter().sum();
    within(x, xi) + within(y, yi) - 2.0 * cross / (xi.len() * yi.len()) as f64
}

/// Unbiased MMD² with the cubic polynomial kernel between two whole sets (each ≥ 2 rows).
pub fn mmd2_unbiased<A: Value, B: Value>(
    a: &[A],
    n_a: usize,
    b: &[B],
    n_b: usize,
    d: usize,
) -> Result<f64> {
    let x = checked("reference", a, n_a, d, 2)?;
    let y = checked("generated", b, n_b, d, 2)?;
    Ok(mmd2_rows(
        &x,
        &(0..n_a).collect::<Vec<_>>(),
        &y,
        &(0..n_b).collect::<Vec<_>>(),
        d,
    ))
}

/// KID settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KidOptions {
    /// Rows per subset (capped at the smaller set's size).
    pub subset_size: usize,
    /// Number of subsets (1 when both sets are used whole).
    pub subsets: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self {
            subset_size: DEFAULT_KID_SUBSET,
            subsets: DEFAULT_KID_SUBSETS,
            seed: 0,
        }
    }
}

/// KID with its spread over subsets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Kid {
    /// Mean unbiased MMD² over the subsets.
    pub value: f64,
    /// Standard deviation over the subsets (0 when a single subset, the whole sets, is used).
    pub se: f64,
    pub subset_size: usize,
    pub subsets: usize,
}

/// SplitMix64: the subset draws (reproducible, no dependency).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// `m` distinct indices of `0..n` (partial Fisher–Yates).
    fn subset(&mut self, n: usize, m: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let j = i + (self.next() % (n - i) as u64) as usize;
            p.swap(i, j);
        }
        p.truncate(m);
        p
    }
}

fn kid_f64(x: &[f64], n_x: usize, y: &[f64], n_y: usize, d: usize, o: &KidOptions) -> Result<Kid> {
    if o.subset_size < 2 || o.subsets == 0 {
        return Err(MetricsError::Invalid(format!(
            "KID needs a subset size >= 2 and at least 1 subset (got {} and {})",
            o.subset_size, o.subsets
        )));
    }
    let m = o.subset_size.min(n_x).min(n_y);
    if m == n_x && m == n_y {
        let all: Vec<usize> = (0..m).collect();
        return Ok(Kid {
            value: mmd2_rows(x, &all, y, &all, d),
            se: 0.0,
            subset_size: m,
            subsets: 1,
        });
    }
    let mut rng = SplitMix(o.seed ^ 0x4B49_445F_5345_4544);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..o.subsets)
        .map(|_| (rng.subset(n_x, m), rng.subset(n_y, m)))
        .collect();
    // Large subsets: one kernel matrix over the rows the subsets use, then sums per subset
    // (cost Σ rows² d once instead of subsets · 3m² d); small ones: kernels per subset.
    let (ux, uy) = (
        distinct(n_x, draws.iter().map(|p| &p.0)),
        distinct(n_y, draws.iter().map(|p| &p.1)),
    );
    let gram = (ux + uy) <= GRAM_MAX_ROWS
        && ((ux + uy) * (ux + uy)) as f64 <= (o.subsets * 3 * m * m) as f64 / 2.0;
    let v = if gram {
        mmd2_subsets_gram(x, n_x, y, n_y, d, &draws)
    } else {
        draws
            .iter()
            .map(|(a, b)| mmd2_rows(x, a, y, b, d))
            .collect()
    };
    let s = crate::stats::mean_se(&v);
    let sd = if v.len() > 1 {
        (v.iter().map(|a| (a - s.mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Kid {
        value: s.mean,
        se: sd,
        subset_size: m,
        subsets: o.subsets,
    })
}

/// Number of distinct indices (below `n`) over `sets`.
fn distinct<'a>(n: usize, sets: impl Iterator<Item = &'a Vec<usize>>) -> usize {
    let mut seen = vec![false; n];
    for s in sets {
        s.iter().for_each(|&i| seen[i] = true);
    }
    seen.iter().filter(|&&b| b).count()
}

/// Most rows (of both sets together) whose kernel matrix KID builds (8 bytes each entry).
const GRAM_MAX_ROWS: usize = 6000;

/// Unbiased MMD² of every subset pair from one kernel matrix over the rows they use.
fn mmd2_subsets_gram(
    x: &[f64],
    n_x: usize,
    y: &[f64],
    n_y: usize,
    d: usize,
    draws: &[(Vec<usize>, Vec<usize>)],
) -> Vec<f64> {
    // Position of each used row in Z = (used rows of x, then used rows of y).
    let mut pos_x = vec![usize::MAX; n_x];
    let mut pos_y = vec![usize::MAX; n_y];
    let mut rows: Vec<&[f64]> = Vec::new();
    for (a, _) in draws {
        for &i in a {
            if pos_x[i] == usize::MAX {
                pos_x[i] = rows.len();
                rows.push(&x[i * d..(i + 1) * d]);
            }
        }
    }
    for (_, b) in draws {
        for &i in b {
            if pos_y[i] == usize::MAX {
                pos_y[i] = rows.len();
                rows.push(&y[i * d..(i + 1) * d]);
            }
        }
    }
    let u = rows.len();
    let k: Vec<f64> = (0..u)
        .into_par_iter()
        .flat_map_iter(|i| {
            let rows = &rows;
            (0..u).map(move |j| poly_kernel(rows[i], rows[j]))
        })
        .collect();
    draws
        .par_iter()
        .map(|(a, b)| {
            let pa: Vec<usize> = a.iter().map(|&i| pos_x[i]).collect();
            let pb: Vec<usize> = b.iter().map(|&i| pos_y[i]).collect();
            let within = |p: &[usize]| {
                let m = p.len();
                let mut s = 0.0;
                for i in 0..m {
                    for j in i + 1..m {
                        s += k[p[i] * u + p[j]];
                    }
                }
                2.0 * s / (m * (m - 1)) as f64
            };
            let mut cross = 0.0;
            for &i in &pa {
                for &j in &pb {
                    cross += k[i * u + j];
                }
            }
            within(&pa) + within(&pb) - 2.0 * cross / (pa.len() * pb.len()) as f64
        })
        .collect()
}

/// KID between two sets (each ≥ 2 rows): module doc.
pub fn kid<A: Value, B: Value>(
    a: &[A],
    n_a: usize,
    b: &[B],
    n_b: usize,
    d: usize,
    opts: &KidOptions,
) -> Result<Kid> {
    let x = checked("reference", a, n_a, d, 2)?;
    let y = checked("generated", b, n_b, d, 2)?;
    kid_f64(&x, n_a, &y, n_b, d, opts)
}

/// Squared distance from every row to its k-th nearest other row of the same set.
fn knn_radii2(x: &[f64], n: usize, d: usize, k: usize) -> Vec<f64> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            let mut ds: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| sqdist(xi, &x[j * d..(j + 1) * d]))
                .collect();
            let (_, kth, _) = ds.select_nth_unstable_by(k - 1, f64::total_cmp);
            *kth
        })
        .collect()
}

fn check_k(set: &str, n: usize, k: usize) -> Result<()> {
    if k == 0 || k >= n {
        return Err(MetricsError::Invalid(format!(
            "k = {k} nearest neighbours needs 1 <= k < the {set} set's size ({n} samples): lower k or give more samples"
        )));
    }
    Ok(())
}

/// k-NN precision, recall, density and coverage of one G (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KnnQuality {
    pub k: usize,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
}

/// Precision / recall / density / coverage of `g` against `r` given r's squared radii.
fn knn_quality_f64(
    r: &[f64],
    n_r: usize,
    r_rad2: &[f64],
    g: &[f64],
    n_g: usize,
    d: usize,
    k: usize,
) -> KnnQuality {
    let g_rad2 = knn_radii2(g, n_g, d, k);
    // Per reference row: which g lie in its ball (precision, density), whether it lies in some
    // g's ball (recall), whether its nearest g lies in its ball (coverage).
    let (in_ball, recalled, covered) = (0..n_r)
        .into_par_iter()
        .fold(
            || (vec![0u64; n_g], 0u64, 0u64),
            |(mut cnt, mut rec, mut cov), i| {
                let ri = &r[i * d..(i + 1) * d];
                let mut near = f64::INFINITY;
                let mut hit = false;
                for (j, c) in cnt.iter_mut().enumerate() {
                    let s = sqdist(ri, &g[j * d..(j + 1) * d]);
                    if s <= r_rad2[i] {
                        *c += 1;
                    }
                    hit |= s <= g_rad2[j];
                    near = near.min(s);
                }
                rec += hit as u64;
                cov += (near <= r_rad2[i]) as u64;
                (cnt, rec, cov)
            },
        )
        .reduce(
            || (vec![0u64; n_g], 0, 0),
            |(mut a, ra, ca), (b, rb, cb)| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                (a, ra + rb, ca + cb)
            },
        );
    KnnQuality {
        k,
        precision: in_ball.iter().filter(|&&c| c > 0).count() as f64 / n_g as f64,
        recall: recalled as f64 / n_r as f64,
        density: in_ball.iter().sum::<u64>() as f64 / (k * n_g) as f64,
        coverage: covered as f64 / n_r as f64,
    }
}

/// k-NN precision / recall / density / coverage of `g` against the reference `r` (module doc);
/// `k < |R|` and `k < |G|`.
pub fn knn_quality<A: Value, B: Value>(
    r: &[A],
    n_r: usize,
    g: &[B],
    n_g: usize,
    d: usize,
    k: usize,
) -> Result<KnnQuality> {
    let rv = checked("reference", r, n_r, d, 1)?;
    let gv = checked("generated", g, n_g, d, 1)?;
    check_k("reference", n_r, k)?;
    check_k("generated", n_g, k)?;
    let rad = knn_radii2(&rv, n_r, d, k);
    Ok(knn_quality_f64(&rv, n_r, &rad, &gv, n_g, d, k))
}

/// Settings of [`Reference`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QualityOptions {
    /// k of the k-NN measures.
    pub k: usize,
    pub kid: KidOptions,
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self {
            k: DEFAULT_K,
            kid: KidOptions::default(),
        }
    }
}

/// Every quality measure of one G against the reference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QualityValues {
    /// Fréchet distance of the Gaussian fits (squared units of the rows).
    pub frechet: f64,
    pub kid: f64,
    pub kid_se: f64,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
    pub k: usize,
}

impl QualityValues {
    /// All NaN (not computed).
    pub fn nan() -> Self {
        Self {
            frechet: f64::NAN,
            kid: f64::NAN,
            kid_se: f64::NAN,
            precision: f64::NAN,
            recall: f64::NAN,
            density: f64::NAN,
            coverage: f64::NAN,
            k: 0,
        }
    }
}

/// The reference set R prepared once: its rows, Gaussian fit with `Σ_R^{1/2}`, k-NN radii.
pub struct Reference {
    data: Vec<f64>,
    n: usize,
    d: usize,
    fit: GaussianFit,
    sqrt_cov: DMatrix<f64>,
    rad2: Vec<f64>,
    opts: QualityOptions,
}

impl Reference {
    /// Prepares `r` (`n x d`; n > k and n ≥ 2). Errors name the reference set.
    pub fn new<T: Value>(r: &[T], n: usize, d: usize, opts: &QualityOptions) -> Result<Self> {
        let data = checked("reference", r, n, d, 2)?;
        check_k("reference", n, opts.k)?;
        let fit = GaussianFit::from_f64(&data, n, d);
        let sqrt_cov = sqrt_psd(&fit.cov);
        let rad2 = knn_radii2(&data, n, d, opts.k);
        Ok(Self {
            data,
            n,
            d,
            fit,
            sqrt_cov,
            rad2,
            opts: *opts,
        })
    }

    /// Prepares the first [`REFERENCE_MAX`] rows of `x` (`n x d`), or all of them when fewer.
    pub fn first_rows<T: Value>(
        x: &[T],
        n: usize,
        d: usize,
        opts: &QualityOptions,
    ) -> Result<Self> {
        let m = n.min(REFERENCE_MAX);
        Self::new(&x[..m * d], m, d, opts)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn dim(&self) -> usize {
        self.d
    }

    pub fn options(&self) -> &QualityOptions {
        &self.opts
    }

    /// All measures of `g` (`n_g x d`; n_g > k, n_g ≥ 2). Errors name the generated set.
    pub fn evaluate<T: Value>(&self, g: &[T], n_g: usize) -> Result<QualityValues> {
        let gv = checked("generated", g, n_g, self.d, 2)?;
        check_k("generated", n_g, self.opts.k)?;
        let gf = GaussianFit::from_f64(&gv, n_g, self.d);
        let frechet = frechet_gaussians(
            &self.fit.mean,
            &self.fit.cov,
            &self.sqrt_cov,
            &gf.mean,
            &gf.cov,
        );
        let kid = kid_f64(&self.data, self.n, &gv, n_g, self.d, &self.opts.kid)?;
        let q = knn_quality_f64(
            &self.data,
            self.n,
            &self.rad2,
            &gv,
            n_g,
            self.d,
            self.opts.k,
        );
        Ok(QualityValues {
            frechet,
            kid: kid.value,
            kid_se: kid.se,
            precision: q.precision,
            recall: q.recall,
            density: q.density,
            coverage: q.coverage,
            k: q.k,
        })
    }
}

#[cfg(test)]
mod tests;
