//! Closed-form theory: Theorem 3.1 of seed 000 (docs/METHOD.md §6), the mixing time (eq. 2.9) and the
//! L2-optimal KDE width (eq. 2.11).

use serde::Serialize;

/// Theorem 3.1's `<KL_var>` (ridgeless, `alpha = d/n < 1`, to `O(lambda_hat^2)`), split into its
/// order-`lambda_hat` and order-`lambda_hat^2` terms. It expands the quadratic form
/// `(1/4) tr((A - I)^2)` of the `reverse` data model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TheoremKl {
    pub first_order: f64,
    pub second_order: f64,
    pub total: f64,
}

/// `<KL_var> = d alpha l e^{-4T}(e^{2T}-1) / (2(1-alpha))
///  + d l^2 e^{-8T}(e^{2T}-1)^2 / (4(1-alpha)^3) (alpha + (1-alpha)^3 e^{4T} + 4 alpha (1-alpha)^2 e^{2T})`
/// with `l = lambda_hat`. `None` for `alpha >= 1` (the bound is for the under-parameterised side).
pub fn kl_var_theorem(d: usize, n: usize, lambda_hat: f64, t: f64) -> Option<TheoremKl> {
    kl_var_theorem_alpha(d, d as f64 / n as f64, lambda_hat, t)
}

/// [`kl_var_theorem`] at a real-valued `alpha` (the theorem depends on n only through alpha).
pub fn kl_var_theorem_alpha(d: usize, a: f64, lambda_hat: f64, t: f64) -> Option<TheoremKl> {
    let df = d as f64;
    if a.is_nan() || a >= 1.0 {
        return None;
    }
    let e2 = (2.0 * t).exp();
    let g = (2.0 * t).exp_m1(); // e^{2T} - 1
    let first = df * a * lambda_hat * (-4.0 * t).exp() * g / (2.0 * (1.0 - a));
    let b = 1.0 - a;
    let second = df * lambda_hat * lambda_hat * (-8.0 * t).exp() * g * g / (4.0 * b * b * b)
        * (a + b * b * b * e2 * e2 + 4.0 * a * b * b * e2);
    Some(TheoremKl {
        first_order: first,
        second_order: second,
        total: first + second,
    })
}

/// Mixing time `t_M = (1/2) log(1 + sigma^2 / (n^(2/d) - 1))` (eq. 2.9); `+inf` for `n <= 1`.
pub fn t_mix(sigma: f64, n: usize, d: usize) -> f64 {
    let denom = (2.0 * (n as f64).ln() / d as f64).exp_m1();
    if denom <= 0.0 {
        return f64::INFINITY;
    }
    0.5 * (sigma * sigma / denom).ln_1p()
}

/// L2-optimal Gaussian KDE width `(4/(d+2))^(1/(d+4)) sigma n^(-1/(d+4))` (eq. 2.11).
pub fn eps_opt(sigma: f64, n: usize, d: usize) -> f64 {
    let df = d as f64;
    (4.0 / (df + 2.0)).powf(1.0 / (df + 4.0)) * sigma * (n as f64).powf(-1.0 / (df + 4.0))
}

/// The seeds' width `sigma n^(-1/d)` (the large-d form of eq. 2.11 and of `sqrt(2 t_M)`).
pub fn eps_mixing(sigma: f64, n: usize, d: usize) -> f64 {
    sigma * (n as f64).powf(-1.0 / d as f64)
}
