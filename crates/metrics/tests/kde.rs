//! The fast metric against the brute-force double loop, the quadrature, invariances, the
//! analytical cut-off bound and the calibration facts of docs/METHOD.md §4b (unbiased Δ).

use memdiff_metrics::kde::{Bandwidth, KdeOptions, OriginalSet};
use memdiff_metrics::{naive, quadrature, stats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// `n x d` values of one of several kinds: continuous, u8 grid with few levels (ties), a
/// constant pixel, or a mix.
fn random_set(
    rng: &mut ChaCha8Rng,
    n: usize,
    d: usize,
    kind: u32,
    const_pixel: Option<usize>,
) -> Vec<f64> {
    let normal = Normal::new(0.5, 0.15).unwrap();
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        for i in 0..d {
            let x: f64 = match kind {
                0 => normal.sample(rng),
                1 => rng.random_range(0..6u32) as f64 * 40.0 / 255.0,
                _ => {
                    if rng.random_bool(0.5) {
                        rng.random_range(0..4u32) as f64 / 255.0
                    } else {
                        normal.sample(rng)
                    }
                }
            };
            v.push(if const_pixel == Some(i) {
                77.0 / 255.0
            } else {
                x
            });
        }
    }
    v
}

fn close(a: f64, b: f64, scale: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * scale
}

#[test]
fn fast_equals_naive_on_140_random_cases() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261125);
    let mut compared = 0;
    for case in 0..140u32 {
        let n_o = [1, 2, 3, 17, 60][rng.random_range(0..5)];
        let n_t = [1, 2, 5, 30][rng.random_range(0..4)];
        let n_g = [1, 2, 10][rng.random_range(0..3)];
        let d = rng.random_range(1..5);
        let kind = case % 3;
        let cp = if rng.random_bool(0.3) { Some(0) } else { None };
        let o = random_set(&mut rng, n_o, d, kind, cp);
        let mut t = random_set(&mut rng, n_t, d, kind, cp);
        let g = random_set(&mut rng, n_g, d, (kind + 1) % 3, None);
        if case % 7 == 0 {
            // T shares exact values with O (ties across sets).
            let k = n_t.min(n_o);
            t[..k * d].copy_from_slice(&o[..k * d]);
        }
        let mut opts = KdeOptions {
            bandwidth: match case % 4 {
                0 | 1 => Bandwidth::StdOverN,
                2 => Bandwidth::StdNPowMinus1OverD,
                _ => Bandwidth::Silverman,
            },
            paper_scale: case % 5 == 0,
            ..Default::default()
        };
        if case % 11 == 0 {
            opts.bandwidth = Bandwidth::Fixed(0.03);
        }
        if case % 6 == 0 {
            opts.min_std = Some(0.05);
        }
        if case % 9 == 0 {
            opts.min_bandwidth = Some(1.0 / 255.0);
        }
        let fast = OriginalSet::new(&o, n_o, d, &opts).and_then(|s| s.evaluate(&t, n_t, &g, n_g));
        let slow = naive::evaluate(&o, n_o, &t, n_t, &g, n_g, d, &opts);
        match (fast, slow) {
            (Ok(f), Ok(s)) => {
                let scale = f.e_tg.abs() + f.e_og.abs();
                assert_eq!(f.pixels_used, s.pixels_used, "case {case}");
                for (name, a, b) in [
                    ("e_tg", f.e_tg, s.e_tg),
                    ("e_og", f.e_og, s.e_og),
                    ("delta", f.delta, s.delta),
                    ("delta_unbiased", f.delta_unbiased, s.delta_unbiased),
                ] {
                    assert!(
                        close(a, b, scale, 1e-9),
                        "case {case} {name}: fast {a} naive {b}"
                    );
                }
                if n_t == 1 {
                    assert!(f.delta_unbiased.is_nan());
                }
                compared += 1;
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "case {case}"),
            (a, b) => panic!("case {case}: fast {a:?} vs naive {b:?}"),
        }
    }
    assert!(compared >= 100, "only {compared} cases compared");
}

#[test]
fn closed_form_matches_quadrature() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (n_o, n_t, n_g, kind) in [
        (40, 5, 3, 0),
        (200, 20, 10, 0),
        (100, 12, 4, 2),
        (50, 10, 5, 1),
    ] {
        let d = 3;
        let o = random_set(&mut rng, n_o, d, kind, None);
        let t = random_set(&mut rng, n_t, d, kind, None);
        let g = random_set(&mut rng, n_g, d, 0, None);
        let orig = OriginalSet::new(&o, n_o, d, &KdeOptions::default()).unwrap();
        let q = quadrature::check(&orig, &t, n_t, &g, n_g, d).unwrap();
        assert_eq!(q.pixels.len(), d);
        assert!(q.max_rel_diff < 1e-9, "{q:?}");
        // and the closed form is the brute force
        let s = naive::evaluate(&o, n_o, &t, n_t, &g, n_g, d, &KdeOptions::default()).unwrap();
        let mean_tg: f64 = q.pixels.iter().map(|p| p.quad_e_tg).sum::<f64>() / d as f64;
        assert!(
            (mean_tg - s.e_tg).abs() < 1e-9 * s.e_tg.abs(),
            "{mean_tg} {}",
            s.e_tg
        );
    }
}

#[test]
fn invariances_permutation_swap_shift() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (n_o, n_t, n_g, d) = (300, 40, 10, 4);
    let o = random_set(&mut rng, n_o, d, 0, None);
    let t = random_set(&mut rng, n_t, d, 0, None);
    let g = random_set(&mut rng, n_g, d, 0, None);
    let opts = KdeOptions::default();
    let orig = OriginalSet::new(&o, n_o, d, &opts).unwrap();
    let base = orig.evaluate(&t, n_t, &g, n_g).unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
    // Row permutation of every set.
    let perm = |v: &[f64], n: usize| -> Vec<f64> {
        (0..n)
            .rev()
            .flat_map(|k| v[k * d..(k + 1) * d].to_vec())
            .collect()
    };
    let orig_p = OriginalSet::new(&perm(&o, n_o), n_o, d, &opts).unwrap();
    let r = orig_p
        .evaluate(&perm(&t, n_t), n_t, &perm(&g, n_g), n_g)
        .unwrap();
    assert!(rel(r.e_tg, base.e_tg) < 1e-12 && rel(r.e_og, base.e_og) < 1e-12);
    assert!(rel(r.delta_unbiased, base.delta_unbiased) < 1e-10);
    // Swapping the roles of A and B: distance(T, G) == distance(G, T).
    let r = orig.evaluate(&g, n_g, &t, n_t).unwrap();
    assert!(rel(r.e_tg, base.e_tg) < 1e-12, "{} {}", r.e_tg, base.e_tg);
    // Shift every set by the same constant.
    let sh = |v: &[f64]| v.iter().map(|x| x + 3.25).collect::<Vec<_>>();
    let r = OriginalSet::new(&sh(&o), n_o, d, &opts)
        .unwrap()
        .evaluate(&sh(&t), n_t, &sh(&g), n_g)
        .unwrap();
    assert!(rel(r.e_tg, base.e_tg) < 1e-9 && rel(r.e_og, base.e_og) < 1e-9);
    assert!(rel(r.delta, base.delta) < 1e-8);
    // f32 input gives the f64 answer of the rounded values.
    let o32: Vec<f32> = o.iter().map(|&x| x as f32).collect();
    let o64: Vec<f64> = o32.iter().map(|&x| x as f64).collect();
    let a = OriginalSet::new(&o32, n_o, d, &opts)
        .unwrap()
        .evaluate(&t, n_t, &g, n_g)
        .unwrap();
    let b = OriginalSet::new(&o64, n_o, d, &opts)
        .unwrap()
        .evaluate(&t, n_t, &g, n_g)
        .unwrap();
    assert_eq!(a, b);
    // paper scale is sqrt(2 pi) times the true L2 value.
    let ps = KdeOptions {
        paper_scale: true,
        ..Default::default()
    };
    let r = OriginalSet::new(&o, n_o, d, &ps)
        .unwrap()
        .evaluate(&t, n_t, &g, n_g)
        .unwrap();
    assert!(rel(r.e_og, base.e_og * (2.0 * std::f64::consts::PI).sqrt()) < 1e-14);
}

#[test]
fn cutoff_error_is_bounded_and_tiny_at_realistic_sizes() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n_o, n_t, n_g, d) = (3000, 300, 10, 2);
    let o = random_set(&mut rng, n_o, d, 0, None);
    let t = random_set(&mut rng, n_t, d, 0, None);
    let g = random_set(&mut rng, n_g, d, 0, None);
    let opts = KdeOptions::default();
    let fast = OriginalSet::new(&o, n_o, d, &opts)
        .unwrap()
        .evaluate(&t, n_t, &g, n_g)
        .unwrap();
    let slow = naive::evaluate(&o, n_o, &t, n_t, &g, n_g, d, &opts).unwrap();
    assert!((fast.e_tg - slow.e_tg).abs() < 1e-11 * slow.e_tg);
    assert!((fast.e_og - slow.e_og).abs() < 1e-11 * slow.e_og);
    assert!(
        fast.e_tg_error_bound < 1e-14 * fast.e_tg,
        "{}",
        fast.e_tg_error_bound
    );
    assert!(
        fast.e_og_error_bound < 1e-14 * fast.e_og,
        "{}",
        fast.e_og_error_bound
    );
    // A deliberately short cut-off: the reported bound covers the true error.
    for r in [1.0, 2.0, 3.0] {
        let o2 = KdeOptions {
            cutoff: Some(r),
            ..Default::default()
        };
        let f = OriginalSet::new(&o, n_o, d, &o2)
            .unwrap()
            .evaluate(&t, n_t, &g, n_g)
            .unwrap();
        assert!(
            (f.e_og - slow.e_og).abs() <= f.e_og_error_bound * (1.0 + 1e-9) + 1e-12,
            "r {r}"
        );
        assert!(
            (f.e_tg - slow.e_tg).abs() <= f.e_tg_error_bound * (1.0 + 1e-9) + 1e-12,
            "r {r}"
        );
        assert!(f.e_og_error_bound > 0.0);
    }
}

#[test]
fn constant_pixels_are_skipped_by_max_eq_min() {
    // Pixel 0 constant at 77/255 (f32 std is ~1e-8, not 0), pixel 1 varies.
    let n = 50;
    let o: Vec<f32> = (0..n)
        .flat_map(|k| [77.0f32 / 255.0, k as f32 / n as f32])
        .collect();
    let t = o[..20].to_vec();
    let g = o[20..26].to_vec();
    let r = OriginalSet::new(&o, n, 2, &KdeOptions::default())
        .unwrap()
        .evaluate(&t, 10, &g, 3)
        .unwrap();
    assert_eq!((r.pixels_used, r.pixels_skipped), (1, 1));
    let fl = KdeOptions {
        min_std: Some(0.01),
        ..Default::default()
    };
    let r = OriginalSet::new(&o, n, 2, &fl)
        .unwrap()
        .evaluate(&t, 10, &g, 3)
        .unwrap();
    assert_eq!((r.pixels_used, r.pixels_skipped), (2, 0));
    let ex = KdeOptions {
        min_std: Some(0.01),
        exclude: Some(vec![false, true]),
        ..Default::default()
    };
    let r = OriginalSet::new(&o, n, 2, &ex)
        .unwrap()
        .evaluate(&t, 10, &g, 3)
        .unwrap();
    assert_eq!((r.pixels_used, r.pixels_skipped), (1, 1));
    let all_const = vec![0.5f32; 10];
    let e = OriginalSet::new(&all_const, 5, 2, &KdeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("--min-std"), "{e}");
    // Errors name the set.
    let orig = OriginalSet::new(&o, n, 2, &KdeOptions::default()).unwrap();
    let e = orig
        .evaluate(&[0.1f32, 0.2, 0.3], 1, &g, 3)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train set has 3 pixels") && e.contains("has 2"),
        "{e}"
    );
    let e = orig
        .evaluate(&t, 10, &[0.1f32, f32::NAN], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("generated set: sample 0, pixel 1 is NaN"), "{e}");
}

/// One-component GMM of docs/METHOD.md §1: every pixel N(0.5, 0.1²).
fn gmm(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Vec<f64> {
    let nd = Normal::new(0.5, 0.1).unwrap();
    (0..n * d).map(|_| nd.sample(rng)).collect()
}

/// docs/METHOD.md §4b: the oracle's mean Δ_U is 0 within its standard error (checked at 3 standard
/// errors: a 1-SE band holds only 68 % of the time for each n), its biased Δ is negative with
/// mean ≈ -(1/n - 1/N) ∫p², and copies of T give Δ_U < 0.
#[test]
fn unbiased_delta_calibration() {
    let (big_n, d, g, reps) = (2000, 8, 10, 150);
    let int_p2 = 1.0 / (2.0 * std::f64::consts::PI.sqrt() * 0.1);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for n in [10usize, 100, 1000] {
        let (mut du, mut dl, mut cu) = (vec![], vec![], vec![]);
        for _ in 0..reps {
            let o = gmm(&mut rng, big_n, d);
            let t = gmm(&mut rng, n, d);
            let gen = gmm(&mut rng, g, d);
            let orig = OriginalSet::new(&o, big_n, d, &KdeOptions::default()).unwrap();
            let r = orig.evaluate(&t, n, &gen, g).unwrap();
            du.push(r.delta_unbiased);
            dl.push(r.delta);
            let rows: Vec<usize> = (0..g).map(|_| rng.random_range(0..n)).collect();
            let copy: Vec<f64> = rows
                .iter()
                .flat_map(|&k| t[k * d..(k + 1) * d].to_vec())
                .collect();
            cu.push(orig.evaluate(&t, n, &copy, g).unwrap().delta_unbiased);
        }
        let u = stats::mean_se(&du);
        assert!(
            u.mean.abs() < 3.0 * u.se,
            "oracle n={n}: mean Δ_U {} ± {}",
            u.mean,
            u.se
        );
        let b = stats::mean_se(&dl);
        let want = -(1.0 / n as f64 - 1.0 / big_n as f64) * int_p2;
        assert!(
            (b.mean - want).abs() < 3.0 * b.se + 0.02 * want.abs(),
            "n={n}: Δ {} ± {} vs {want}",
            b.mean,
            b.se
        );
        if n == 10 {
            assert!(b.mean < -3.0 * b.se, "n={n}: biased Δ should be negative");
        }
        let c = stats::mean_se(&cu);
        assert!(
            c.mean < -3.0 * c.se,
            "copy n={n}: mean Δ_U {} ± {}",
            c.mean,
            c.se
        );
        eprintln!("n={n}: oracle Δ_U {:.4} ± {:.4}, Δ {:.4} ± {:.4} (want {want:.4}), copy Δ_U {:.4} ± {:.4}", u.mean, u.se, b.mean, b.se, c.mean, c.se);
        let neg = cu.iter().filter(|&&x| x < 0.0).count() as f64 / reps as f64;
        // g = 10 copies among n = 1000 rows: the copy term shrinks like 1/n (measured 0.8).
        let min_neg = if n <= 100 { 0.95 } else { 0.7 };
        assert!(neg > min_neg, "copy n={n}: only {neg} of Δ_U negative");
    }
}
