//! Closed forms of the skip-only denoiser `f(x) = c x` (`k = 0`; docs/METHOD.md §8.4).
//!
//! With `m = E‖x0‖²/d` and `V(t) = t² m + (1 − t)²` (`E‖x_t‖²/d`):
//! - the optimum at time `t` is `c*(t) = t m / V(t)` (eq. (M6));
//! - SGD (eq. (M4)) from `c0` has, exactly in expectation for any `d`,
//!   `E c_s = c* + (c0 − c*) (1 − η V/d)^s`, i.e. `c* + (c0 − c*) e^{−η V τ}` at `τ = s/d`
//!   (eq. (M7));
//! - the sampler (eq. (M5)) maps every coordinate linearly, so the generated law is Gaussian,
//!   centred, with per-coordinate variance `v_N` from the recursion (eq. (M8))
//!   `v_{n+1} = A_n² v_n + 2 ε0 Δt (1 − t_n)²` (SDE; no noise term for the ODE),
//!   `A_n = 1 + Δt (c_n − 1)/(1 − t_n) − ε0 Δt (1 − t_n c_n)` (ODE: without the ε0 term),
//!   `v_0 = 1`. With `c_n = c*(t_n)` and `N → ∞` it tends to `m` in every direction, whatever
//!   the direction's own variance `λ_i`: the generated/target variance ratio of direction `i`
//!   is `m/λ_i` — below 1 along every direction with more than the average variance.

use crate::sample::Method;

/// `V(t) = t² m + (1 − t)²`.
pub fn v_t(t: f64, m: f64) -> f64 {
    t * t * m + (1.0 - t) * (1.0 - t)
}

/// The optimal skip connection `c*(t) = t m / V(t)` (eq. (M6)).
pub fn c_star(t: f64, m: f64) -> f64 {
    t * m / v_t(t, m)
}

/// `E c` after `steps` SGD steps at learning rate `lr` from `c0` in dimension `d` (eq. (M7)).
pub fn c_sgd(t: f64, m: f64, c0: f64, lr: f64, d: usize, steps: usize) -> f64 {
    let cs = c_star(t, m);
    let rate = 1.0 - lr * v_t(t, m) / d as f64;
    cs + (c0 - cs) * rate.powi(steps.min(i32::MAX as usize) as i32)
}

/// The generated per-coordinate variance `v_N` of the skip-only model with skips `c[n]` at the
/// times `t_n = n/N` (eq. (M8)).
pub fn generated_variance(c: &[f64], method: Method, eps0: f64) -> f64 {
    let n = c.len();
    let dt = 1.0 / n as f64;
    let mut v = 1.0;
    for (i, &ci) in c.iter().enumerate() {
        let t = i as f64 / n as f64;
        let mut a = 1.0 + dt * (ci - 1.0) / (1.0 - t);
        let mut noise = 0.0;
        if method == Method::Sde {
            a -= eps0 * dt * (1.0 - t * ci);
            noise = 2.0 * eps0 * dt * (1.0 - t) * (1.0 - t);
        }
        v = a * a * v + noise;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the optimal skips the generated variance tends to m as N grows (ODE and SDE), the
    /// continuous-time statement of docs/METHOD.md §8.4.
    #[test]
    fn optimal_skip_transports_to_the_average_eigenvalue() {
        for m in [0.05, 0.4, 1.0, 3.0] {
            for method in [Method::Ode, Method::Sde] {
                let n = 20_000;
                let c: Vec<f64> = (0..n).map(|i| c_star(i as f64 / n as f64, m)).collect();
                let v = generated_variance(&c, method, 1.0);
                assert!((v - m).abs() < 2e-3 * m.max(1.0), "{method:?} m={m}: {v}");
            }
        }
    }

    /// The ODE's last Euler step returns f(x) = c x, and c* minimises the quadratic loss.
    #[test]
    fn c_star_minimises_the_loss() {
        let (t, m) = (0.3, 0.7);
        // E (x0 - c x_t)^2 per coordinate = m - 2 c t m + c^2 V
        let loss = |c: f64| m - 2.0 * c * t * m + c * c * v_t(t, m);
        let cs = c_star(t, m);
        assert!(loss(cs) < loss(cs + 1e-3) && loss(cs) < loss(cs - 1e-3));
        assert!((c_sgd(t, m, 0.0, 0.5, 100, 1_000_000) - cs).abs() < 1e-12);
        assert_eq!(c_sgd(t, m, 0.2, 0.5, 100, 0), 0.2);
    }
}
