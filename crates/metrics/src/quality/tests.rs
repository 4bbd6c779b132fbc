use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn normals(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len).map(|_| StandardNormal.sample(rng)).collect()
}

/// A random SPD matrix `B Bᵀ + 0.1 I`.
fn spd(rng: &mut ChaCha8Rng, d: usize) -> DMatrix<f64> {
    let b = DMatrix::from_vec(d, d, normals(rng, d * d));
    &b * b.transpose() + DMatrix::identity(d, d) * 0.1
}

#[test]
fn frechet_matches_the_closed_form_of_two_2x2_gaussians() {
    // For 2x2 PSD A, B: AB has eigenvalues λ1, λ2 ≥ 0, so tr (AB)^{1/2} = √λ1 + √λ2 =
    // sqrt(tr AB + 2 sqrt(det AB)).
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..20 {
        let a = spd(&mut rng, 2);
        let b = spd(&mut rng, 2);
        let (ma, mb) = (normals(&mut rng, 2), normals(&mut rng, 2));
        let ab = &a * &b;
        let tr_sqrt = (ab.trace() + 2.0 * ab.determinant().sqrt()).sqrt();
        let dm = (ma[0] - mb[0]).powi(2) + (ma[1] - mb[1]).powi(2);
        let closed = dm + a.trace() + b.trace() - 2.0 * tr_sqrt;
        let got = frechet_gaussians(&ma, &a, &sqrt_psd(&a), &mb, &b);
        assert!((got - closed).abs() < 1e-9, "{got} vs {closed}");
    }
}

#[test]
fn frechet_of_commuting_covariances_is_the_sum_of_root_differences() {
    // Σ_a = Q diag(a) Qᵀ, Σ_b = Q diag(b) Qᵀ (Q a Householder reflection):
    // FD = |μ_a − μ_b|² + Σ (√a_i − √b_i)².
    let d = 7;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let v = DMatrix::from_vec(d, 1, normals(&mut rng, d));
    let q = DMatrix::identity(d, d) - &v * v.transpose() * (2.0 / v.norm_squared());
    let a: Vec<f64> = (0..d).map(|i| 0.5 + i as f64).collect();
    let b: Vec<f64> = (0..d).map(|i| 3.0 / (1.0 + i as f64)).collect();
    let ca = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(a.clone())) * q.transpose();
    let cb = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(b.clone())) * q.transpose();
    let (ma, mb) = (vec![1.0; d], vec![-0.5; d]);
    let closed: f64 = d as f64 * 2.25
        + a.iter()
            .zip(&b)
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    let got = frechet_gaussians(&ma, &ca, &sqrt_psd(&ca), &mb, &cb);
    assert!((got - closed).abs() < 1e-9, "{got} vs {closed}");
    // A Gaussian against itself: 0.
    assert!(frechet_gaussians(&ma, &ca, &sqrt_psd(&ca), &ma, &ca).abs() < 1e-9);
}

/// Denman–Beavers iteration for the principal square root of a matrix with positive real
/// eigenvalues (here the non-symmetric product Σ_a Σ_b): an independent dense computation.
fn denman_beavers(a: &DMatrix<f64>) -> DMatrix<f64> {
    let mut y = a.clone();
    let mut z = DMatrix::identity(a.nrows(), a.ncols());
    for _ in 0..100 {
        let yi = y.clone().try_inverse().unwrap();
        let zi = z.clone().try_inverse().unwrap();
        let ny = (&y + zi) * 0.5;
        let nz = (&z + yi) * 0.5;
        y = ny;
        z = nz;
    }
    y
}

#[test]
fn frechet_matches_an_independent_dense_square_root_of_the_product() {
    let d = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..5 {
        let a = spd(&mut rng, d);
        let b = spd(&mut rng, d);
        let (ma, mb) = (normals(&mut rng, d), normals(&mut rng, d));
        let s = denman_beavers(&(&a * &b));
        // The iteration converged: s² = AB.
        assert!((&s * &s - &a * &b).norm() < 1e-8 * (&a * &b).norm());
        let dm: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
        let dense = dm + a.trace() + b.trace() - 2.0 * s.trace();
        let got = frechet_gaussians(&ma, &a, &sqrt_psd(&a), &mb, &b);
        assert!(
            (got - dense).abs() < 1e-6 * dense.abs().max(1.0),
            "{got} vs {dense}"
        );
    }
}

#[test]
fn gaussian_fit_of_a_set_is_the_sample_mean_and_n_minus_1_covariance() {
    let (n, d) = (9, 3);
    let x: Vec<f32> = (0..n * d).map(|i| ((i * 37 % 11) as f32) / 7.0).collect();
    let f = GaussianFit::new("t", &x, n, d).unwrap();
    for i in 0..d {
        let mi: f64 = (0..n).map(|r| x[r * d + i] as f64).sum::<f64>() / n as f64;
        assert!((f.mean[i] - mi).abs() < 1e-14);
        for j in 0..d {
            let mj: f64 = (0..n).map(|r| x[r * d + j] as f64).sum::<f64>() / n as f64;
            let c: f64 = (0..n)
                .map(|r| (x[r * d + i] as f64 - mi) * (x[r * d + j] as f64 - mj))
                .sum::<f64>()
                / (n - 1) as f64;
            assert!((f.cov[(i, j)] - c).abs() < 1e-13);
        }
    }
    // The set against itself: 0; against a shifted copy: the squared shift.
    assert!(frechet_distance(&x, n, &x, n, d).unwrap().abs() < 1e-9);
    let y: Vec<f32> = x.iter().map(|v| v + 2.0).collect();
    let fd = frechet_distance(&x, n, &y, n, d).unwrap();
    assert!((fd - 4.0 * d as f64).abs() < 1e-6, "{fd}");
}

fn brute_mmd2(x: &[f64], m: usize, y: &[f64], n: usize, d: usize) -> f64 {
    let k = |a: &[f64], b: &[f64]| {
        let s: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
        (s / d as f64 + 1.0).powi(3)
    };
    let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
    for i in 0..m {
        for j in 0..m {
            if i != j {
                xx += k(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if i != j {
                yy += k(&y[i * d..(i + 1) * d], &y[j * d..(j + 1) * d]);
            }
        }
    }
    for i in 0..m {
        for j in 0..n {
            xy += k(&x[i * d..(i + 1) * d], &y[j * d..(j + 1) * d]);
        }
    }
    xx / (m * (m - 1)) as f64 + yy / (n * (n - 1)) as f64 - 2.0 * xy / (m * n) as f64
}

#[test]
fn mmd2_matches_the_brute_force_double_sum() {
    let d = 5;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = normals(&mut rng, 13 * d);
    let y: Vec<f64> = normals(&mut rng, 8 * d).iter().map(|v| v + 0.3).collect();
    let brute = brute_mmd2(&x, 13, &y, 8, d);
    let got = mmd2_unbiased(&x, 13, &y, 8, d).unwrap();
    assert!(
        (got - brute).abs() < 1e-12 * brute.abs().max(1.0),
        "{got} {brute}"
    );
    // KID with subsets as large as both sets is the whole-set value, with one subset.
    let same = kid(
        &x[..8 * d],
        8,
        &y,
        8,
        d,
        &KidOptions {
            subset_size: 100,
            subsets: 10,
            seed: 0,
        },
    )
    .unwrap();
    assert_eq!(same.subsets, 1);
    assert!((same.value - brute_mmd2(&x[..8 * d], 8, &y, 8, d)).abs() < 1e-12);
}

#[test]
fn kid_of_two_draws_of_one_distribution_is_zero_within_its_spread() {
    // Unbiased: the mean over 200 independent pairs of draws is 0 within 3 s.e.
    let (n, d) = (20, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let v: Vec<f64> = (0..200)
        .map(|_| {
            let x = normals(&mut rng, n * d);
            let y = normals(&mut rng, n * d);
            mmd2_unbiased(&x, n, &y, n, d).unwrap()
        })
        .collect();
    let s = crate::stats::mean_se(&v);
    assert!(s.mean.abs() < 3.0 * s.se, "{} ± {}", s.mean, s.se);
    // KID over subsets: same distribution within 2 s.e. of 0; a shifted one far above.
    let x = normals(&mut rng, 300 * d);
    let y = normals(&mut rng, 300 * d);
    let o = KidOptions {
        subset_size: 50,
        subsets: 50,
        seed: 9,
    };
    let k0 = kid(&x, 300, &y, 300, d, &o).unwrap();
    assert!(k0.se > 0.0 && k0.value.abs() < 2.0 * k0.se, "{k0:?}");
    let z: Vec<f64> = y.iter().map(|a| a + 2.0).collect();
    let k1 = kid(&x, 300, &z, 300, d, &o).unwrap();
    assert!(k1.value > 3.0 * k1.se, "{k1:?}");
    // Reproducible for a seed.
    assert_eq!(kid(&x, 300, &y, 300, d, &o).unwrap(), k0);
}

#[allow(clippy::needless_range_loop)]
/// Brute-force precision / recall / density / coverage from fully sorted distance lists.
fn brute_knn(r: &[f64], n_r: usize, g: &[f64], n_g: usize, d: usize, k: usize) -> [f64; 4] {
    let dist = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q) * (p - q))
            .sum::<f64>()
            .sqrt()
    };
    let row = |s: &[f64], i: usize| s[i * d..(i + 1) * d].to_vec();
    let radius = |s: &[f64], n: usize, i: usize| {
        let mut v: Vec<f64> = (0..n)
            .filter(|&j| j != i)
            .map(|j| dist(&row(s, i), &row(s, j)))
            .collect();
        v.sort_by(f64::total_cmp);
        v[k - 1]
    };
    let rr: Vec<f64> = (0..n_r).map(|i| radius(r, n_r, i)).collect();
    let rg: Vec<f64> = (0..n_g).map(|i| radius(g, n_g, i)).collect();
    let mut prec = 0;
    let mut dens = 0;
    for j in 0..n_g {
        let c = (0..n_r)
            .filter(|&i| dist(&row(g, j), &row(r, i)) <= rr[i])
            .count();
        prec += (c > 0) as usize;
        dens += c;
    }
    let mut rec = 0;
    let mut cov = 0;
    for i in 0..n_r {
        rec += (0..n_g).any(|j| dist(&row(r, i), &row(g, j)) <= rg[j]) as usize;
        let near = (0..n_g)
            .map(|j| dist(&row(r, i), &row(g, j)))
            .fold(f64::INFINITY, f64::min);
        cov += (near <= rr[i]) as usize;
    }
    [
        prec as f64 / n_g as f64,
        rec as f64 / n_r as f64,
        dens as f64 / (k * n_g) as f64,
        cov as f64 / n_r as f64,
    ]
}

#[test]
fn knn_measures_match_a_brute_force_count() {
    let d = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let r = normals(&mut rng, 40 * d);
    for (shift, k) in [(0.0, 3), (0.7, 3), (2.0, 5), (0.3, 1)] {
        let g: Vec<f64> = normals(&mut rng, 25 * d)
            .iter()
            .map(|v| v * 1.3 + shift)
            .collect();
        let q = knn_quality(&r, 40, &g, 25, d, k).unwrap();
        let b = brute_knn(&r, 40, &g, 25, d, k);
        assert_eq!([q.precision, q.recall, q.density, q.coverage], b, "k {k}");
        // The prepared reference gives the same numbers.
        let opts = QualityOptions {
            k,
            ..Default::default()
        };
        let v = Reference::new(&r, 40, d, &opts)
            .unwrap()
            .evaluate(&g, 25)
            .unwrap();
        assert_eq!([v.precision, v.recall, v.density, v.coverage], b);
        assert!((v.frechet - frechet_distance(&r, 40, &g, 25, d).unwrap()).abs() < 1e-12);
    }
    // A far-away G: precision, recall, density, coverage all 0.
    let far: Vec<f64> = r.iter().map(|v| v + 100.0).collect();
    let q = knn_quality(&r, 40, &far, 40, d, 3).unwrap();
    assert_eq!([q.precision, q.recall, q.density, q.coverage], [0.0; 4]);
}

#[test]
fn a_set_against_itself_has_precision_recall_and_coverage_1() {
    let d = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let r: Vec<f64> = (0..30 * d).map(|_| rng.random::<f64>()).collect();
    let q = knn_quality(&r, 30, &r, 30, 4, 3).unwrap();
    assert_eq!((q.precision, q.recall, q.coverage), (1.0, 1.0, 1.0));
    // Distinct distances: every ball holds its centre and its k nearest: density (k + 1) / k.
    assert!((q.density - 4.0 / 3.0).abs() < 1e-15);
}

#[test]
fn bad_inputs_give_one_clear_error_each() {
    let x = vec![0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0]; // 3 x 2
    let e = knn_quality(&x, 3, &x, 3, 2, 3).unwrap_err().to_string();
    assert!(e.contains("k = 3") && e.contains("3 samples"), "{e}");
    let mut bad = x.clone();
    bad[3] = f64::NAN;
    let e = frechet_distance(&x, 3, &bad, 3, 2).unwrap_err().to_string();
    assert!(e.contains("generated set: sample 1, pixel 1 is NaN"), "{e}");
    let e = kid(&x, 3, &x[..4], 3, 2, &KidOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("generated set: 4 values is not 3 samples x 2"),
        "{e}"
    );
    let e = Reference::new(&x[..2], 1, 2, &QualityOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("at least 2"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn kid_from_one_kernel_matrix_equals_kernels_per_subset() {
    let d = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x = normals(&mut rng, 70 * d);
    let y: Vec<f64> = normals(&mut rng, 50 * d).iter().map(|v| v + 0.2).collect();
    let mut r = SplitMix(3);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..20)
        .map(|_| (r.subset(70, 30), r.subset(50, 30)))
        .collect();
    let gram = mmd2_subsets_gram(&x, 70, &y, 50, d, &draws);
    for ((a, b), g) in draws.iter().zip(&gram) {
        let direct = mmd2_rows(&x, a, &y, b, d);
        assert!(
            (g - direct).abs() < 1e-12 * direct.abs().max(1.0),
            "{g} {direct}"
        );
        // And the brute-force double sum over the subset's rows.
        let xs: Vec<f64> = a
            .iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
            .collect();
        let ys: Vec<f64> = b
            .iter()
            .flat_map(|&i| y[i * d..(i + 1) * d].to_vec())
            .collect();
        assert!((g - brute_mmd2(&xs, 30, &ys, 30, d)).abs() < 1e-12 * direct.abs().max(1.0));
    }
}
