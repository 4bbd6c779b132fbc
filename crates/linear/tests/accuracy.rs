//! Accuracy of the linear model against independent computations: quadrature, direct least
//! squares, Python-computed goldens for the theory, and the Monte Carlo vs Theorem 3.1.

use memdiff_linear::closed::{self, SetTerms};
use memdiff_linear::fit::{self, generator_from_cov, Generator};
use memdiff_linear::theory;
use memdiff_linear::{simulate, DataModel, EpsRule, OriginalSet, Params, Sampler, SimOptions};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

fn gauss_pdf(x: &[f64], mu: &[f64], cov: &DMatrix<f64>) -> f64 {
    let d = x.len();
    let v = DVector::from_iterator(d, x.iter().zip(mu).map(|(a, b)| a - b));
    let inv = cov.clone().try_inverse().unwrap();
    let q = (v.transpose() * inv * &v)[0];
    (-0.5 * q).exp() / ((2.0 * PI).powi(d as i32) * cov.determinant()).sqrt()
}

/// Midpoint-rule grid over a box (spectrally accurate for Gaussians that vanish at the edges).
fn grid(d: usize, lo: f64, hi: f64, k: usize) -> (Vec<Vec<f64>>, f64) {
    let h = (hi - lo) / k as f64;
    let axis: Vec<f64> = (0..k).map(|i| lo + (i as f64 + 0.5) * h).collect();
    let pts = if d == 1 {
        axis.iter().map(|&x| vec![x]).collect()
    } else {
        let mut v = Vec::new();
        for &a in &axis {
            for &b in &axis {
                v.push(vec![a, b]);
            }
        }
        v
    };
    (pts, h.powi(d as i32))
}

fn cases() -> Vec<(Generator, f64, f64, DMatrix<f64>)> {
    let g1 = DMatrix::from_row_slice(1, 1, &[0.64]);
    let g2 = DMatrix::from_row_slice(2, 2, &[0.7, 0.3, 0.3, 1.5]);
    vec![
        (
            generator_from_cov(DVector::from_vec(vec![10.3]), g1.clone(), 1e-12),
            10.0,
            1.3,
            g1,
        ),
        (
            generator_from_cov(DVector::from_vec(vec![10.4, 9.8]), g2.clone(), 1e-12),
            10.0,
            1.2,
            g2,
        ),
    ]
}

#[test]
fn hellinger_and_kl_match_quadrature_in_d1_and_d2() {
    for (g, mu, sigma, cov) in cases() {
        let d = g.d();
        let (pts, w) = grid(d, mu - 10.0, mu + 10.0, if d == 1 { 20000 } else { 700 });
        let target = DMatrix::<f64>::identity(d, d) * (sigma * sigma);
        let mus = vec![mu; d];
        let mg: Vec<f64> = g.mu.iter().copied().collect();
        let (mut bc, mut kl) = (0.0, 0.0);
        for x in &pts {
            let p = gauss_pdf(x, &mg, &cov);
            let q = gauss_pdf(x, &mus, &target);
            bc += (p * q).sqrt() * w;
            if p > 0.0 {
                kl += p * (p / q).ln() * w;
            }
        }
        let h2 = closed::hellinger2(&g, mu, sigma);
        assert!(
            close(h2, 1.0 - bc, 1e-6),
            "d={d}: H2 {h2} vs quadrature {}",
            1.0 - bc
        );
        let k = closed::kl(&g, mu, sigma);
        assert!(
            close(k.total(), kl, 1e-6),
            "d={d}: KL {} vs quadrature {kl}",
            k.total()
        );
        // Dense-matrix forms of the split and of the quadratic approximation.
        let a = &cov / (sigma * sigma);
        let var = 0.5 * (a.trace() - d as f64 - a.determinant().ln());
        let ai = &a - DMatrix::identity(d, d);
        let quad = 0.25 * (&ai * &ai).trace();
        let dm: f64 = mg.iter().map(|m| (m - mu).powi(2)).sum::<f64>() / (2.0 * sigma * sigma);
        assert!(
            close(k.var, var, 1e-12) && close(k.var_quad, quad, 1e-12) && close(k.mean, dm, 1e-12)
        );
    }
}

#[test]
fn singular_generator_gives_h2_one_and_infinite_kl() {
    let v = DVector::from_vec(vec![1.0, 2.0, 0.5]);
    let cov = &v * v.transpose(); // rank 1
    let g = generator_from_cov(DVector::from_vec(vec![10.0; 3]), cov, 1e-10);
    assert_eq!(g.rank, 1);
    assert_eq!(closed::hellinger2(&g, 10.0, 1.0), 1.0);
    let k = closed::kl(&g, 10.0, 1.0);
    assert!(k.var.is_infinite() && k.var_quad.is_finite());
    // quadratic form: eigenvalues (5.25, 0, 0) -> (1/4)(4.25^2 + 1 + 1)
    assert!(close(k.var_quad, 0.25 * (4.25f64.powi(2) + 2.0), 1e-12));
}

fn draw(p: &Params, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let y = fit::draw_y(p, p.n, &mut rng);
    let x = fit::draw_x_given_y(p, &y, &mut rng);
    (y, x)
}

#[test]
fn least_squares_matches_direct_solutions() {
    // n > d: ordinary least squares with an intercept column, solved by SVD.
    let p = Params::new(5, 50, 1.0);
    let (y, x) = draw(&p, 3);
    let f = fit::fit(&p, &y, &x).unwrap();
    assert_eq!(f.rank, 5);
    let design = DMatrix::from_fn(p.n, 6, |r, c| if c == 0 { 1.0 } else { x[(c - 1, r)] });
    let coef = design
        .clone()
        .svd(true, true)
        .solve(&y.transpose(), 1e-14)
        .unwrap(); // 6 x d
    for j in 0..5 {
        assert!((f.theta0[j] - coef[(0, j)]).abs() < 1e-9);
        for i in 0..5 {
            assert!((f.theta1[(j, i)] - coef[(i + 1, j)]).abs() < 1e-9);
        }
    }
    // n <= d: minimum-norm solution theta_1^T = pinv(x) y on centred data; rank n - 1.
    let p = Params::new(6, 4, 1.0);
    let (y, x) = draw(&p, 4);
    let f = fit::fit(&p, &y, &x).unwrap();
    assert_eq!(f.rank, 3);
    let center = |m: &DMatrix<f64>| {
        let mean = m.column_mean();
        let mut c = m.clone();
        for mut col in c.column_iter_mut() {
            col -= &mean;
        }
        c.transpose()
    };
    let (xc, yc) = (center(&x), center(&y));
    let t1t = xc.clone().pseudo_inverse(1e-10).unwrap() * &yc;
    assert!((f.theta1.transpose() - t1t).abs().max() < 1e-9);
    let g = f.generator();
    assert!(g.singular() && g.rank == 3);
    // ridge: (x^T x + n R I)^-1 x^T y
    let p = Params {
        ridge: 0.3,
        ..Params::new(6, 4, 1.0)
    };
    let f = fit::fit(&p, &y, &x).unwrap();
    let a = xc.transpose() * &xc + DMatrix::identity(6, 6) * (4.0 * 0.3);
    let t1t = a.try_inverse().unwrap() * xc.transpose() * &yc;
    assert!((f.theta1.transpose() - t1t).abs().max() < 1e-9);
}

#[test]
fn theory_matches_python_goldens() {
    let t = theory::kl_var_theorem(100, 1000, 0.1, 2.0).unwrap();
    assert!(close(t.first_order, 0.009988986811573149, 1e-12));
    assert!(close(t.second_order, 0.2428983392906979, 1e-12));
    assert!(close(t.total, 0.25288732610227105, 1e-12));
    assert!(theory::kl_var_theorem(100, 100, 0.1, 2.0).is_none());
    // alpha -> 0: (d/4) lambda_hat^2 (1 - e^{-2T})^2
    let lim = theory::kl_var_theorem(16, 1 << 40, 0.5, 2.0).unwrap().total;
    assert!(close(
        lim,
        4.0 * 0.25 * (1.0 - (-4.0f64).exp()).powi(2),
        1e-9
    ));
    assert!(close(
        theory::t_mix(1.0, 1000, 100),
        1.023830333021288,
        1e-12
    ));
    assert!(close(
        theory::eps_opt(1.0, 1000, 100),
        0.9070462274012402,
        1e-12
    ));
    assert!(close(theory::t_mix(2.0, 50, 16), 0.9968237577079218, 1e-12));
    assert!(close(
        theory::eps_opt(2.0, 50, 16),
        1.5255304115653519,
        1e-12
    ));
    assert!(theory::t_mix(1.0, 1, 10).is_infinite());
}

#[test]
fn theorem_3_1_matches_reverse_monte_carlo_of_the_quadratic_form() {
    for n in [200, 1000] {
        let p = Params::new(100, n, 0.1).with_model(DataModel::Reverse);
        let (_, s) = simulate(&p, &SimOptions::new(300, 11), None, &|| {}).unwrap();
        let th = theory::kl_var_theorem(100, n, 0.1, 2.0).unwrap().total;
        let (mc, se) = (s.kl_var_quad.mean, s.kl_var_quad.se);
        assert!(
            (mc - th).abs() <= 0.03 * th + 3.0 * se,
            "n={n}: MC {mc} ± {se} vs theorem {th}"
        );
        // The exact form lies below the quadratic one by the cubic term (about -6.5 %).
        let r = s.kl_var.mean / mc;
        assert!((0.90..0.96).contains(&r), "n={n}: exact/quadratic = {r}");
    }
}

#[test]
fn wishart_sampler_has_the_law_of_explicit_sampling() {
    for model in [DataModel::Forward, DataModel::Reverse] {
        let p = Params::new(8, 60, 0.5).with_model(model);
        let mut o = SimOptions::new(600, 5);
        assert!(o.uses_wishart(&p, false));
        let (_, a) = simulate(&p, &o, None, &|| {}).unwrap();
        o.sampler = Sampler::Explicit;
        let (_, b) = simulate(&p, &o, None, &|| {}).unwrap();
        for (x, y) in [
            (a.kl_var_quad, b.kl_var_quad),
            (a.hellinger2, b.hellinger2),
            (a.kl_mean, b.kl_mean),
        ] {
            let tol = 4.0 * (x.se * x.se + y.se * y.se).sqrt();
            assert!((x.mean - y.mean).abs() < tol, "{model}: {x:?} vs {y:?}");
        }
    }
}

/// Brute-force `E_TG`, `E_OG` by quadrature (d = 1, 2) against the closed form, including a
/// singular generator in d = 2 (`∫rho_G f` as a 1-D integral along its support line).
#[test]
fn kde_distances_match_quadrature() {
    let mu = 10.0;
    let sigma = 1.0;
    for (d, singular) in [(1, false), (2, false), (2, true)] {
        let mut rng = ChaCha8Rng::seed_from_u64(9 + d as u64);
        let p = Params::new(d, 3, 1.0);
        let t = fit::draw_y(&p, 3, &mut rng);
        let o = fit::draw_y(&p, 5, &mut rng);
        let cov = if d == 1 {
            DMatrix::from_row_slice(1, 1, &[0.8])
        } else if singular {
            DMatrix::from_row_slice(2, 2, &[0.9, 0.6, 0.6, 0.4])
        } else {
            DMatrix::from_row_slice(2, 2, &[0.9, 0.2, 0.2, 1.1])
        };
        let mg = DVector::from_fn(d, |i, _| mu + 0.3 - 0.5 * i as f64);
        let g = generator_from_cov(mg.clone(), cov.clone(), 1e-9);
        assert_eq!(g.singular(), singular);
        let (le_t, le_o) = (0.5f64.ln(), 0.3f64.ln()); // eps^2 = 0.5 and 0.3
        let pt = g.evecs.transpose();
        let shift = |m: &DMatrix<f64>| m.map(|v| v - mu);
        let (pt_t, pt_o) = (&pt * shift(&t), &pt * shift(&o));
        let pmu = &pt * mg.map(|v| v - mu);
        let ts = SetTerms {
            proj: &pt_t,
            m: 3,
            log_eps2: le_t,
            log_off: closed::log_self_offdiag(&shift(&t), le_t),
        };
        let os = SetTerms {
            proj: &pt_o,
            m: 5,
            log_eps2: le_o,
            log_off: closed::log_self_offdiag(&shift(&o), le_o),
        };
        let r = closed::delta_terms(&g, &pmu, &ts, &os, closed::log_rho2(sigma, d));
        let kde = |set: &DMatrix<f64>, e2: f64, x: &[f64]| -> f64 {
            let c = DMatrix::<f64>::identity(d, d) * e2;
            set.column_iter()
                .map(|col| gauss_pdf(x, col.as_slice(), &c))
                .sum::<f64>()
                / set.ncols() as f64
        };
        let (pts, w) = grid(d, mu - 9.0, mu + 9.0, if d == 1 { 20000 } else { 500 });
        let (mut tt, mut oo) = (0.0, 0.0);
        for x in &pts {
            tt += kde(&t, 0.5, x).powi(2) * w;
            oo += kde(&o, 0.3, x).powi(2) * w;
        }
        // ∫rho_G f: along G = mu_G + sqrt(g1) u v1 for the singular case, else on the grid.
        let cross = |set: &DMatrix<f64>, e2: f64| -> f64 {
            if singular {
                let v1 = g.evecs.column(0).into_owned();
                let s1 = g.evals[0].sqrt();
                let k = 4000;
                let h = 16.0 / k as f64;
                (0..k)
                    .map(|i| {
                        let u = -8.0 + (i as f64 + 0.5) * h;
                        let x = &mg + &v1 * (s1 * u);
                        (-0.5 * u * u).exp() / (2.0 * PI).sqrt() * kde(set, e2, x.as_slice()) * h
                    })
                    .sum()
            } else {
                pts.iter()
                    .map(|x| gauss_pdf(x, mg.as_slice(), &cov) * kde(set, e2, x) * w)
                    .sum()
            }
        };
        let (tg, og) = (cross(&t, 0.5), cross(&o, 0.3));
        let delta = tt - oo - 2.0 * (tg - og);
        assert!(
            close(r.delta, delta, 1e-6),
            "d={d} singular={singular}: Δ {} vs {delta}",
            r.delta
        );
        if singular {
            assert!(r.e_tg.is_infinite() && r.e_og.is_infinite() && r.delta.is_finite());
        } else {
            let gg: f64 = pts
                .iter()
                .map(|x| gauss_pdf(x, mg.as_slice(), &cov).powi(2) * w)
                .sum();
            assert!(
                close(r.e_tg, gg + tt - 2.0 * tg, 1e-6),
                "d={d}: E_TG {}",
                r.e_tg
            );
            assert!(
                close(r.e_og, gg + oo - 2.0 * og, 1e-6),
                "d={d}: E_OG {}",
                r.e_og
            );
        }
        let unit = (4.0 * PI * sigma * sigma).powf(-(d as f64) / 2.0);
        assert!(close(r.delta_rel, r.delta / unit, 1e-9));
    }
}

#[test]
fn complement_pair_sum_equals_the_direct_one() {
    let p = Params::new(3, 2, 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let y = fit::draw_y(&p, 40, &mut rng).map(|v| v - 10.0);
    let le = 0.2f64.ln();
    let idx: Vec<usize> = (0..40).filter(|i| i % 4 != 1).collect();
    let in_comp: Vec<bool> = (0..40).map(|i| i % 4 == 1).collect();
    let comp: Vec<usize> = (0..40).filter(|&i| in_comp[i]).collect();
    let sub = DMatrix::from_fn(3, idx.len(), |r, c| y[(r, idx[c])]);
    let all = closed::pair_kernel_sum(&y, le);
    let touching = closed::pair_kernel_sum_touching(&y, le, &comp, &in_comp);
    let direct = closed::pair_kernel_sum(&sub, le);
    assert!(close(all - touching, direct, 1e-12));
    let lo = closed::log_offdiag_from_pair_sum(direct, idx.len(), 3, le);
    assert!(close(lo, closed::log_self_offdiag(&sub, le), 1e-12));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let p = Params::new(4, 150, 1.0);
    let o = OriginalSet::draw(&p, 200, EpsRule::Mixing, 3).unwrap();
    for n in [20, 150] {
        let p = Params { n, ..p };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| simulate(&p, &SimOptions::new(12, 8), Some(&o), &|| {}).unwrap())
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.0, b.0, "n={n}");
    }
}

/// Memorization when n <= d (singular fit, Δ finite and negative), generalization at n = 4d.
#[test]
fn delta_sign_and_finiteness_on_singular_and_regular_fits() {
    let p = Params::new(16, 8, 1.0);
    let o = OriginalSet::draw(&p, 2000, EpsRule::Mixing, 21).unwrap();
    let (recs, s) = simulate(&p, &SimOptions::new(40, 2), Some(&o), &|| {}).unwrap();
    assert_eq!(s.singular, 40);
    for r in &recs {
        let t = r.delta.unwrap();
        assert!(t.delta.is_finite() && t.e_tg.is_infinite() && r.hellinger2 == 1.0);
    }
    let pd = s.p_delta_pos.unwrap();
    assert!(pd.p <= 0.2, "singular: P(Δ>0) = {pd:?}");
    let p = Params { n: 64, ..p };
    let (_, s) = simulate(&p, &SimOptions::new(40, 2), Some(&o), &|| {}).unwrap();
    let pd = s.p_delta_pos.unwrap();
    assert!(s.singular == 0 && pd.p >= 0.8, "n = 4d: P(Δ>0) = {pd:?}");
}

#[test]
fn invalid_settings_name_the_field() {
    let e = Params::new(16, 1, 1.0).validate().unwrap_err().to_string();
    assert!(e.contains("n = 1"), "{e}");
    let e = Params {
        sigma: -1.0,
        ..Params::new(16, 10, 1.0)
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(e.contains("sigma = -1"), "{e}");
    let p = Params::new(2, 50, 1.0);
    let o = OriginalSet::draw(&p, 20, EpsRule::Mixing, 1).unwrap();
    let e = simulate(&p, &SimOptions::new(2, 1), Some(&o), &|| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("n = 50") && e.contains("n_original"), "{e}");
}

#[test]
fn data_models_have_the_stated_joint_law() {
    let p = Params::new(3, 10, 0.7);
    let (et, dt) = (p.t.exp(), p.delta_t());
    // reverse: X ~ N(mu_X, sigma_X^2), Y = e^T X + Z  =>  Var X, Cov(X, Y), E X from (a, b, c)
    let r = p.with_model(DataModel::Reverse);
    let (a, b, c) = r.x_given_y();
    let vy = r.y_variance();
    let sx2 = (-2.0 * p.t).exp() + dt;
    assert!(close(vy, et * et * sx2 + dt, 1e-12));
    assert!(close(b * b * vy + c * c, sx2, 1e-12));
    assert!(close(b * vy, et * sx2, 1e-12));
    assert!(close(a + b * p.mu, p.mu / et, 1e-12));
    // forward: X = e^{-T} Y + sqrt(Delta_T) Z
    let (a, b, c) = p.x_given_y();
    assert!(a == 0.0 && close(b, 1.0 / et, 1e-15) && close(c * c, dt, 1e-12));
    // The forward generator uses the sample estimate of eq. 3.2, the reverse one the population.
    let (y, x) = draw(&p, 6);
    let f = fit::fit(&p, &y, &x).unwrap();
    let ybar = y.column_mean();
    let ss: f64 = y
        .column_iter()
        .map(|col| (col - &ybar).norm_squared())
        .sum();
    assert!(close(f.sigma_x2, ss / 30.0 / (et * et) + dt, 1e-12));
    assert!((f.mu_x.clone() - &ybar / et).abs().max() < 1e-12);
    let f = fit::fit(&r, &y, &x).unwrap();
    assert!(close(f.sigma_x2, sx2, 1e-12) && (f.mu_x[0] - p.mu / et).abs() < 1e-12);
    // The L2-optimal width rule.
    let le = closed::log_eps2(EpsRule::L2Opt, 2.0, 50, 16);
    assert!(close(le, 2.0 * 1.5255304115653519f64.ln(), 1e-12));
}
