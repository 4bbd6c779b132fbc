//! Sampler tests against closed forms. With Gaussian data `N(m, v)` per pixel (network scale)
//! the optimal predictor is linear in `x_t`, `eps*(x, t) = sqrt(1 - ab)(x - sqrt(ab) m) / (ab v +
//! 1 - ab)`, so every step maps a Gaussian to a Gaussian: the exact output mean and variance of
//! any plan follow by propagating `(mean, var)` through `x' = c_x x + c_eps eps + sigma z`. Monte
//! Carlo runs of the real driver are compared with those numbers, with tolerances of a few
//! standard errors (pixels and images are independent, so `n * dim` draws).

use super::*;
use crate::BetaSchedule;

/// The optimal ε-predictor for per-pixel `N(m, v)` data under `schedule` (standard indexing).
struct GaussianEps {
    m: f64,
    v: f64,
    schedule: Schedule,
    indexing: Indexing,
}

impl GaussianEps {
    /// `(a, b)` with `eps = a x + b` at network step `net_t`.
    fn coef(&self, net_t: usize) -> (f64, f64) {
        let t = match self.indexing {
            Indexing::Standard => net_t,
            Indexing::PapersShifted => net_t + 1,
        };
        let ab = self.schedule.alpha_bar(t);
        let a = (1.0 - ab).sqrt() / (ab * self.v + 1.0 - ab);
        (a, -a * ab.sqrt() * self.m)
    }
}

impl EpsModel for GaussianEps {
    fn eps(&self, x: &[f32], _batch: usize, net_t: usize) -> Result<Vec<f32>, BoxError> {
        let (a, b) = self.coef(net_t);
        Ok(x.iter().map(|&v| (a * v as f64 + b) as f32).collect())
    }
}

fn zero_eps(x: &[f32], _b: usize, _t: usize) -> Result<Vec<f32>, BoxError> {
    Ok(vec![0.0; x.len()])
}

/// Exact output `(mean, var)` of `steps` with `eps = a(t) x + b(t)`, starting from `N(0, 1)`.
fn propagate(steps: &[Step], coef: impl Fn(usize) -> (f64, f64)) -> (f64, f64) {
    let (mut mean, mut var) = (0.0, 1.0);
    for st in steps {
        let (a, b) = coef(st.net_t);
        let k = st.c_x + st.c_eps * a;
        mean = k * mean + st.c_eps * b;
        var = k * k * var + st.sigma * st.sigma;
    }
    (mean, var)
}

/// Sample mean and (n-1) variance, f64.
fn moments(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// `|got - want| <= z * SE` for the mean and the variance of `count` Gaussian draws.
fn assert_moments(got: (f64, f64), want: (f64, f64), count: usize, z: f64, what: &str) {
    let c = count as f64;
    let se_mean = (want.1 / c).sqrt();
    let se_var = want.1 * (2.0 / (c - 1.0)).sqrt();
    assert!(
        (got.0 - want.0).abs() <= z * se_mean,
        "{what}: mean {} vs {} (SE {se_mean})",
        got.0,
        want.0
    );
    assert!(
        (got.1 - want.1).abs() <= z * se_var,
        "{what}: var {} vs {} (SE {se_var})",
        got.1,
        want.1
    );
}

fn raw_opts(sampler: Sampler) -> SampleOptions {
    SampleOptions {
        sampler,
        clamp: false,
        form: Form::Eps,
        batch: 37,
        ..Default::default()
    }
}

#[test]
fn zero_predictor_matches_the_closed_form_of_the_chain() {
    // eps = 0: x_0 = x_s / sqrt(ab_s) + sum_{t=2..s} sqrt(beta_t) z_t / sqrt(ab_{t-1}), so
    // mean 0 and var = 1/ab_s + sum_{t=2..s} beta_t / ab_{t-1} (written from docs/METHOD.md §2, not from
    // the step coefficients).
    let sch = Schedule::new(BetaSchedule::Linear, 10).unwrap();
    let var = 1.0 / sch.alpha_bar(10)
        + (2..=10)
            .map(|t| sch.beta(t) / sch.alpha_bar(t - 1))
            .sum::<f64>();
    let (n, dim) = (64, 256);
    let x = run_chain(
        &zero_eps,
        &sch,
        dim,
        n,
        &raw_opts(Sampler::Ddpm),
        7,
        &mut || {},
    )
    .unwrap();
    assert_moments(moments(&x), (0.0, var), n * dim, 5.0, "zero predictor");
    // And the propagation helper agrees with the closed form (checks the test itself).
    let steps = plan(&sch, &raw_opts(Sampler::Ddpm)).unwrap();
    let (pm, pv) = propagate(&steps, |_| (0.0, 0.0));
    assert_eq!(pm, 0.0);
    assert!((pv - var).abs() < 1e-12 * var, "{pv} vs {var}");
}

#[test]
fn optimal_predictor_recovers_gaussian_data_ancestral() {
    // s = 1000 (linear): the chain starts at ab_s = 4e-5, i.e. at noise.
    let sch = Schedule::new(BetaSchedule::Linear, 1000).unwrap();
    let model = GaussianEps {
        m: 0.3,
        v: 0.04,
        schedule: sch.clone(),
        indexing: Indexing::Standard,
    };
    let opts = raw_opts(Sampler::Ddpm);
    let exact = propagate(&plan(&sch, &opts).unwrap(), |t| model.coef(t));
    // The discretised chain with the exact predictor lands on the data distribution.
    assert!((exact.0 - 0.3).abs() < 2e-3, "exact mean {}", exact.0);
    assert!((exact.1 / 0.04 - 1.0).abs() < 0.02, "exact var {}", exact.1);
    let (n, dim) = (100, 64);
    let x = run_chain(&model, &sch, dim, n, &opts, 1, &mut || {}).unwrap();
    assert_moments(moments(&x), exact, n * dim, 5.0, "ddpm vs exact");
    assert_moments(moments(&x), (0.3, 0.04), n * dim, 6.0, "ddpm vs data");
}

#[test]
fn ddim_k_equal_s_eta_one_has_the_statistics_of_ancestral_sampling() {
    // DDIM with K = s and eta = 1 *is* ancestral sampling with sigma_t^2 = beta~_t (the
    // posterior variance, Ho et al. 2020's second choice): same mean coefficients, step by step.
    // docs/METHOD.md §2's ancestral chain uses sigma_t^2 = beta_t, which differs at the smallest t; for
    // this data that moves the output variance by about 2.4 % (exact figures below).
    let sch = Schedule::new(BetaSchedule::Cosine, 1000).unwrap();
    let model = GaussianEps {
        m: 0.1,
        v: 0.04,
        schedule: sch.clone(),
        indexing: Indexing::Standard,
    };
    let ddpm = raw_opts(Sampler::Ddpm);
    let ddim = SampleOptions {
        eta: 1.0,
        sampling_steps: Some(1000),
        ..raw_opts(Sampler::Ddim)
    };
    let (pa, pb) = (plan(&sch, &ddpm).unwrap(), plan(&sch, &ddim).unwrap());
    for (a, b) in pa.iter().zip(&pb) {
        assert_eq!((a.t, a.net_t), (b.t, b.net_t));
        assert!((a.c_x - b.c_x).abs() < 1e-9 * a.c_x, "t={}", a.t);
        assert!(
            (a.c_eps - b.c_eps).abs() < 1e-9 * a.c_eps.abs(),
            "t={}",
            a.t
        );
        let t = a.t;
        let post = if t > 1 {
            (1.0 - sch.alpha_bar(t - 1)) / (1.0 - sch.alpha_bar(t)) * sch.beta(t)
        } else {
            0.0
        };
        assert!(
            (b.sigma * b.sigma - post).abs() <= 1e-12 * post.max(1e-300),
            "t={t}"
        );
    }
    let e_ddpm = propagate(&pa, |t| model.coef(t));
    let e_ddim = propagate(&pb, |t| model.coef(t));
    assert!((e_ddpm.0 - e_ddim.0).abs() < 1e-9, "{e_ddpm:?} {e_ddim:?}");
    assert!(
        (e_ddim.1 / e_ddpm.1 - 1.0).abs() < 0.03,
        "{e_ddpm:?} {e_ddim:?}"
    );
    // Monte Carlo: both samplers' outputs against their exact moments and each other.
    let (n, dim) = (64, 64);
    let xa = run_chain(&model, &sch, dim, n, &ddpm, 3, &mut || {}).unwrap();
    let xb = run_chain(&model, &sch, dim, n, &ddim, 4, &mut || {}).unwrap();
    let (ma, mb) = (moments(&xa), moments(&xb));
    assert_moments(ma, e_ddpm, n * dim, 5.0, "ddpm vs exact");
    assert_moments(mb, e_ddim, n * dim, 5.0, "ddim eta 1 vs exact");
    let c = (n * dim) as f64;
    assert!(
        (ma.0 - mb.0).abs() < 5.0 * (2.0 * e_ddpm.1 / c).sqrt(),
        "{ma:?} vs {mb:?}"
    );
    assert!(
        (mb.1 / ma.1 - 1.0).abs() < 0.03 + 5.0 * (4.0 / c).sqrt(),
        "{ma:?} vs {mb:?}"
    );
}

#[test]
fn ddim_with_fewer_steps_matches_its_exact_moments() {
    let sch = Schedule::new(BetaSchedule::Linear, 1000).unwrap();
    let model = GaussianEps {
        m: 0.1,
        v: 0.04,
        schedule: sch.clone(),
        indexing: Indexing::Standard,
    };
    for spacing in [
        TimestepSpacing::Trailing,
        TimestepSpacing::Leading,
        TimestepSpacing::Linspace,
    ] {
        let opts = SampleOptions {
            sampling_steps: Some(50),
            spacing,
            ..raw_opts(Sampler::Ddim)
        };
        let steps = plan(&sch, &opts).unwrap();
        assert_eq!(steps.len(), 50);
        assert_eq!(steps.last().unwrap().t_prev, 0);
        assert!(steps.iter().all(|s| s.sigma == 0.0));
        let exact = propagate(&steps, |t| model.coef(t));
        let (n, dim) = (50, 64);
        let x = run_chain(&model, &sch, dim, n, &opts, 5, &mut || {}).unwrap();
        assert_moments(moments(&x), exact, n * dim, 5.0, &format!("ddim {spacing}"));
    }
    // Deterministic DDIM over all s steps lands on the data (to 2 %); with K = 50 it shrinks
    // the variance (each step loses cos(angle) of the signal/noise rotation), exactly:
    let full = SampleOptions {
        sampling_steps: None,
        ..raw_opts(Sampler::Ddim)
    };
    let e = propagate(&plan(&sch, &full).unwrap(), |t| model.coef(t));
    assert!(
        (e.0 - 0.1).abs() < 2e-3 && (e.1 / 0.04 - 1.0).abs() < 0.02,
        "{e:?}"
    );
}

#[test]
fn same_seed_same_images_whatever_the_batch() {
    let sch = Schedule::new(BetaSchedule::Linear, 20).unwrap();
    let model = GaussianEps {
        m: 0.0,
        v: 0.1,
        schedule: sch.clone(),
        indexing: Indexing::Standard,
    };
    let run = |batch: usize, seed: u64| {
        let opts = SampleOptions {
            batch,
            ..Default::default()
        };
        run_chain(&model, &sch, 16, 10, &opts, seed, &mut || {}).unwrap()
    };
    let a = run(3, 42);
    assert_eq!(a, run(3, 42));
    assert_eq!(a, run(10, 42));
    assert_eq!(a, run(1, 42));
    assert_ne!(a, run(3, 43));
    // The first 4 images of a call for 4 are the first 4 of a call for 10.
    let opts = SampleOptions::default();
    let b = run_chain(&model, &sch, 16, 4, &opts, 42, &mut || {}).unwrap();
    assert_eq!(b[..], a[..64]);
}

#[test]
fn progress_counts_network_evaluations() {
    let sch = Schedule::new(BetaSchedule::Linear, 12).unwrap();
    let mut calls = 0;
    let opts = SampleOptions {
        batch: 4,
        ..Default::default()
    };
    run_chain(&zero_eps, &sch, 4, 10, &opts, 0, &mut || calls += 1).unwrap();
    assert_eq!(calls, 3 * 12);
}

#[test]
fn network_sees_t_or_t_minus_one() {
    use std::cell::RefCell;
    let sch = Schedule::new(BetaSchedule::Linear, 5).unwrap();
    for (indexing, want) in [
        (Indexing::Standard, vec![5, 4, 3, 2, 1]),
        (Indexing::PapersShifted, vec![4, 3, 2, 1, 0]),
    ] {
        let seen = RefCell::new(Vec::new());
        let rec = |x: &[f32], _b: usize, t: usize| -> Result<Vec<f32>, BoxError> {
            seen.borrow_mut().push(t);
            Ok(vec![0.0; x.len()])
        };
        let opts = SampleOptions {
            indexing,
            ..Default::default()
        };
        run_chain(&rec, &sch, 1, 1, &opts, 0, &mut || {}).unwrap();
        assert_eq!(*seen.borrow(), want);
    }
    assert_eq!(
        "papers-shifted".parse::<Indexing>().unwrap(),
        Indexing::PapersShifted
    );
    assert_eq!(Indexing::PapersShifted.to_string(), "papers-shifted");
}

#[test]
fn step_coefficients() {
    let sch = Schedule::new(BetaSchedule::Linear, 100).unwrap();
    // The last ancestral step is the x0 prediction, i.e. DDIM from t = 1 to 0.
    let a = ddpm_step(&sch, 1, Indexing::Standard);
    let b = ddim_step(&sch, 1, 0, 1.0, Indexing::Standard);
    assert!((a.c_x - b.c_x).abs() < 1e-12 && (a.c_eps - b.c_eps).abs() < 1e-12);
    assert_eq!((a.sigma, b.sigma), (0.0, 0.0));
    // DDIM eta = 1, K = s: sigma^2 is the posterior variance beta~_t.
    let t = 50;
    let d = ddim_step(&sch, t, t - 1, 1.0, Indexing::Standard);
    let post = (1.0 - sch.alpha_bar(t - 1)) / (1.0 - sch.alpha_bar(t)) * sch.beta(t);
    assert!((d.sigma * d.sigma - post).abs() < 1e-15);
    // ... and its mean coefficients equal the posterior mean's (DDPM) ones.
    let p = ddpm_step(&sch, t, Indexing::Standard);
    assert!((d.c_x - p.c_x).abs() < 1e-9, "{} {}", d.c_x, p.c_x);
    assert!((d.c_eps - p.c_eps).abs() < 1e-9, "{} {}", d.c_eps, p.c_eps);
}

#[test]
fn bad_options_are_clear_errors() {
    let sch = Schedule::new(BetaSchedule::Linear, 10).unwrap();
    let e = plan(
        &sch,
        &SampleOptions {
            sampling_steps: Some(5),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--sampler ddim"), "{e}");
    for eta in [-0.1, 1.5, f64::NAN] {
        let e = plan(
            &sch,
            &SampleOptions {
                sampler: Sampler::Ddim,
                eta,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("[0, 1]"), "{e}");
    }
    let e = plan(
        &sch,
        &SampleOptions {
            sampler: Sampler::Ddim,
            sampling_steps: Some(11),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("between 1 and 10"), "{e}");
    let nan = |x: &[f32], _b: usize, _t: usize| -> Result<Vec<f32>, BoxError> {
        Ok(vec![f32::NAN; x.len()])
    };
    let e = run_chain(&nan, &sch, 4, 2, &SampleOptions::default(), 0, &mut || {}).unwrap_err();
    assert!(e.to_string().contains("t = 10"), "{e}");
    let short = |_x: &[f32], _b: usize, _t: usize| -> Result<Vec<f32>, BoxError> { Ok(vec![0.0]) };
    let e = run_chain(&short, &sch, 4, 2, &SampleOptions::default(), 0, &mut || {}).unwrap_err();
    assert!(e.to_string().contains("expected 8"), "{e}");
}

#[test]
fn pixels_are_clamped_then_mapped() {
    let mut x = vec![-2.0, -1.0, 0.0, 0.5, 3.0];
    to_pixels(&mut x, true);
    assert_eq!(x, vec![0.0, 0.0, 0.5, 0.75, 1.0]);
    let mut y = vec![-2.0, 3.0];
    to_pixels(&mut y, false);
    assert_eq!(y, vec![-0.5, 2.0]);
}

/// Every (schedule, sampler, K, eta) the clipped-x0 tests run.
fn clip_cases() -> Vec<(Schedule, SampleOptions, &'static str)> {
    let mut cases = Vec::new();
    for (kind, s) in [
        (BetaSchedule::Linear, 1000),
        (BetaSchedule::Linear, 50),
        (BetaSchedule::ScaledLinear, 200),
        (BetaSchedule::Cosine, 100),
    ] {
        let sch = Schedule::new(kind, s).unwrap();
        let base = SampleOptions {
            clamp: false,
            batch: 50,
            ..Default::default()
        };
        let ddpm = SampleOptions {
            sampler: Sampler::Ddpm,
            ..base.clone()
        };
        let ddim_all = SampleOptions {
            sampler: Sampler::Ddim,
            sampling_steps: Some(s),
            eta: 1.0,
            ..base.clone()
        };
        let ddim_few = SampleOptions {
            sampler: Sampler::Ddim,
            sampling_steps: Some(s / 10),
            eta: 0.0,
            ..base.clone()
        };
        for (o, what) in [
            (ddpm, "ddpm"),
            (ddim_all, "ddim K=s eta=1"),
            (ddim_few, "ddim K=s/10 eta=0"),
        ] {
            cases.push((sch.clone(), o, what));
        }
    }
    cases
}

#[test]
fn clipped_x0_step_is_the_eps_step_where_the_clip_does_not_bind() {
    // Written from the posterior mean, not from the step coefficients: for x0 inside [-1, 1] the
    // two forms are the same affine map of (x_t, eps).
    for (sch, opts, what) in clip_cases() {
        let clipped = plan(&sch, &opts).unwrap();
        let eps_form = plan(
            &sch,
            &SampleOptions {
                form: Form::Eps,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(clipped.len(), eps_form.len());
        for (c, e) in clipped.iter().zip(&eps_form) {
            assert_eq!(
                (c.t, c.t_prev, c.net_t, c.sigma),
                (e.t, e.t_prev, e.net_t, e.sigma)
            );
            let k = c.x0.expect("clipped form has x0 coefficients");
            assert!(e.x0.is_none());
            for &x0 in &[-0.9, -0.2, 0.0, 0.35, 0.99] {
                for &eps in &[-1.5, 0.0, 0.7] {
                    // x_t consistent with that x0 prediction and eps.
                    let x = k.sqrt_ab * x0 + k.sqrt_1m_ab * eps;
                    let got = k.apply(x, eps);
                    let want = e.c_x * x + e.c_eps * eps;
                    assert!(
                        (got - want).abs() <= 1e-9 * (1.0 + want.abs()),
                        "{what} t={}: {got} vs {want}",
                        c.t
                    );
                }
            }
        }
    }
}

#[test]
fn clipped_x0_with_the_optimal_predictor_reproduces_gaussian_data() {
    // Data N(0.2, 0.04) per pixel in network scale: the clip never binds for the optimal
    // predictor, so each run must match the exact moments of its (affine) chain; where the
    // schedule reaches noise (ab_s < 1e-2) and the sampler keeps every step, those are the
    // data's moments for ancestral sampling (DDIM's own discretisation moves them: variance
    // 0.034 instead of 0.04 with s/10 deterministic steps at linear s = 1000, and 0.0345 with
    // K = s, eta = 1 at scaled-linear s = 200, in both forms).
    let (m, v) = (0.2, 0.04);
    for (sch, opts, what) in clip_cases() {
        let model = GaussianEps {
            m,
            v,
            schedule: sch.clone(),
            indexing: Indexing::Standard,
        };
        let steps = plan(&sch, &opts).unwrap();
        let exact = propagate(&steps, |t| model.coef(t));
        let (n, dim) = (100, 40);
        let x = run_chain(&model, &sch, dim, n, &opts, 5, &mut || {}).unwrap();
        let label = format!("{} s={} {what}", sch.kind, sch.steps);
        assert_moments(moments(&x), exact, n * dim, 5.0, &label);
        let all_steps = opts.sampling_steps.is_none_or(|k| k == sch.steps);
        if sch.alpha_bar(sch.steps) < 1e-2 && all_steps && opts.sampler == Sampler::Ddpm {
            assert_moments(
                moments(&x),
                (m, v),
                n * dim,
                6.0,
                &format!("{label} vs data"),
            );
        }
    }
}

#[test]
fn clipped_x0_output_is_in_range_for_any_network() {
    // The last clipped-x0 step (t = 1, ab_0 = 1) returns the clipped x0 itself, so the chain's
    // output lies in [-1, 1] before any final clamp, whatever the network says. The eps-form
    // with the same wrong network (eps = 0.5 x_t + 0.3) leaves the range on the cosine schedule.
    let sch = Schedule::new(BetaSchedule::Cosine, 100).unwrap();
    let wrong = |x: &[f32], _b: usize, _t: usize| -> Result<Vec<f32>, BoxError> {
        Ok(x.iter().map(|v| 0.5 * v + 0.3).collect())
    };
    let outside = |form: Form, sampler: Sampler, k: Option<usize>| {
        let opts = SampleOptions {
            form,
            sampler,
            sampling_steps: k,
            clamp: false,
            ..Default::default()
        };
        let x = run_chain(&wrong, &sch, 64, 20, &opts, 3, &mut || {}).unwrap();
        x.iter().filter(|v| v.abs() > 1.0).count() as f64 / x.len() as f64
    };
    for (sampler, k) in [(Sampler::Ddpm, None), (Sampler::Ddim, Some(20))] {
        assert_eq!(outside(Form::ClippedX0, sampler, k), 0.0);
        let eps = outside(Form::Eps, sampler, k);
        assert!(
            eps > 0.5,
            "{sampler}: eps-form share outside [-1, 1] is {eps}"
        );
    }
}

#[test]
fn form_names_round_trip() {
    for f in [Form::ClippedX0, Form::Eps] {
        assert_eq!(f.to_string().parse::<Form>().unwrap(), f);
    }
    assert!("x0"
        .parse::<Form>()
        .unwrap_err()
        .contains("clipped-x0 or eps"));
    assert_eq!(SampleOptions::default().form, Form::ClippedX0);
}
