use super::kernels::{cross_impl, self_offdiag_impl};
use super::*;

#[test]
fn bandwidth_round_trips_and_rejects() {
    for s in [
        "std-over-n",
        "std-n-pow-minus-1-over-d",
        "silverman",
        "fixed:0.25",
    ] {
        let b: Bandwidth = s.parse().unwrap();
        assert_eq!(b.to_string(), s);
    }
    for s in ["", "fixed:", "fixed:-1", "fixed:nan", "fixed:inf", "scott"] {
        let e = s.parse::<Bandwidth>().unwrap_err().to_string();
        assert!(e.contains("std-over-n"), "{e}");
    }
    assert_eq!(Bandwidth::StdOverN.eps(0.5, 10, 4), 0.05);
    assert!((Bandwidth::StdNPowMinus1OverD.eps(1.0, 16, 4) - 0.5).abs() < 1e-15);
    assert!((Bandwidth::Silverman.eps(1.0, 32, 4) - 1.06 * 0.5).abs() < 1e-15);
}

#[test]
fn column_collapses_ties_and_counts() {
    let c = Column::from_values(vec![3.0, 1.0, 3.0, 2.0, 3.0, 1.0]);
    assert_eq!(c.x, vec![1.0, 1.0, 2.0, 3.0, 3.0, 3.0]); // few ties: kept as values
    assert!(c.c.is_none());
    assert_eq!(c.tie_pairs(), 2.0 + 6.0);
    let many: Vec<f64> = [3.0, 1.0, 3.0, 2.0, 3.0, 1.0].repeat(4);
    let cc = Column::from_values(many);
    assert_eq!(cc.x, vec![1.0, 2.0, 3.0]);
    assert_eq!(cc.c.as_deref(), Some(&[8.0, 4.0, 12.0][..]));
    assert_eq!(cc.tie_pairs(), 56.0 + 12.0 + 132.0);
    assert_eq!(cc.n, 24);
    assert!((cc.std() - c.std() * (5.0f64 * 24.0 / 23.0 / 6.0).sqrt()).abs() < 1e-14);
    let std = c.std();
    // mean 13/6; direct two-pass.
    let v = [3.0, 1.0, 3.0, 2.0, 3.0, 1.0f64];
    let m = v.iter().sum::<f64>() / 6.0;
    let want = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 5.0).sqrt();
    assert!((std - want).abs() < 1e-15);
}

#[test]
fn portable_path_equals_dispatched_path() {
    // The generic (non-AVX2) kernels give the same sums as the dispatched ones to rounding.
    let mk = |n: usize, m: usize| {
        Column::from_values((0..n).map(|i| ((i * 7919) % m) as f64 / m as f64).collect())
    };
    for (a, b) in [
        (mk(300, 1000), mk(17, 50)),
        (mk(2000, 64), mk(9, 9)),
        (mk(1, 3), mk(1, 5)),
    ] {
        for v in [1e-6, 1e-3, 0.05] {
            let r = auto_cutoff(a.n, b.n);
            let (x, y) = (cross_impl::<false>(&a, &b, v, r), cross_sum(&a, &b, v, r));
            assert!(
                (x.sum - y.sum).abs() <= 1e-13 * y.sum.abs().max(1e-300),
                "{x:?} {y:?}"
            );
            assert_eq!(x.kept_pairs, y.kept_pairs);
            let (x, y) = (
                self_offdiag_impl::<false>(&a, v, r),
                self_offdiag_sum(&a, v, r),
            );
            assert!(
                (x.sum - y.sum).abs() <= 1e-13 * y.sum.abs().max(1e-300),
                "{x:?} {y:?}"
            );
            assert_eq!(x.kept_pairs, y.kept_pairs);
        }
    }
}

#[test]
fn radix_sort_sorts() {
    let mut v: Vec<f64> = (0..5000)
        .map(|i| ((i as f64 * 0.618_033_988_75).fract() - 0.3) * 10f64.powi(i % 7 - 3))
        .collect();
    v[17] = -0.0;
    v[18] = 0.0;
    v[19] = f64::MAX;
    v[20] = f64::MIN_POSITIVE / 4.0;
    let mut w = v.clone();
    radix_sort_f64(&mut v);
    w.sort_unstable_by(f64::total_cmp);
    assert_eq!(
        v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    let mut f: Vec<f64> = (0..3000)
        .map(|i| (i * 7919 % 3001) as f32 as f64 / 255.0)
        .collect();
    let mut g = f.clone();
    radix_sort_f64(&mut f);
    g.sort_unstable_by(f64::total_cmp);
    assert_eq!(f, g);
}

#[test]
fn cutoff_bound_covers_the_dropped_mass() {
    // Small cut-off on purpose: the bound must exceed the true dropped mass.
    let a = Column::from_values((0..50).map(|i| (i as f64 * 0.37).sin()).collect());
    let b = Column::from_values((0..30).map(|i| (i as f64 * 0.91).cos()).collect());
    let v = 0.01;
    for r in [0.5, 1.0, 2.0, 4.0] {
        let full = cross_sum(&a, &b, v, f64::INFINITY).sum;
        let cut = cross_sum(&a, &b, v, r);
        assert!(full - cut.sum >= -1e-12);
        assert!(full - cut.sum <= cut.dropped_bound * (1.0 + 1e-12), "r {r}");
        let full = self_offdiag_sum(&a, v, f64::INFINITY).sum;
        let cut = self_offdiag_sum(&a, v, r);
        assert!(full - cut.sum >= -1e-12);
        assert!(full - cut.sum <= cut.dropped_bound * (1.0 + 1e-12), "r {r}");
    }
}
