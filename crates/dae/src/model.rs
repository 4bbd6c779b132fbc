//! The tied two-layer denoising autoencoder (docs/METHOD.md §8, eq. (M2)):
//!
//! `f(x) = c x + Wᵀ σ(W x / √d) / √d`, with `W` a `k x d` matrix (row `j` is `w_j`), a scalar skip
//! connection `c` and an activation `σ`; `k = 0` is the skip-only denoiser `f(x) = c x`.
//!
//! One SGD step on a pair `(x0, x_t)` with residual `r = x0 − f(x_t)` and `u_j = w_j·x_t/√d`
//! (eq. (M4)):
//!
//! ```text
//! c   ← c   + (η/d²) r·x_t
//! w_j ← w_j + η [ σ(u_j) r/√d + σ'(u_j) (w_j·r/√d) x_t/√d ] − (η λ/d) w_j
//! ```
//!
//! i.e. plain SGD on `½‖r‖²` for `W` (plus weight decay `λ/(2d) ‖W‖²`) and on `½‖r‖²/d` with
//! step `η/d` for `c`, so that with `τ = steps/d` (the training time) both move on the same
//! `O(1)` scale of `τ` as `d` grows.

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Largest hidden width accepted (stack buffers).
pub const MAX_K: usize = 64;

/// The hidden units' activation `σ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
    Linear,
}

impl Activation {
    #[inline]
    pub fn f(self, u: f64) -> f64 {
        match self {
            Activation::Relu => u.max(0.0),
            Activation::Tanh => u.tanh(),
            Activation::Linear => u,
        }
    }
    /// The derivative `σ'(u)` (relu: 1 for `u > 0`, else 0).
    #[inline]
    pub fn df(self, u: f64) -> f64 {
        match self {
            Activation::Relu => {
                if u > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => {
                let t = u.tanh();
                1.0 - t * t
            }
            Activation::Linear => 1.0,
        }
    }
    /// Odd activations make the whole generative process equivariant under `x → −x`.
    pub fn is_odd(self) -> bool {
        matches!(self, Activation::Tanh | Activation::Linear)
    }
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Linear => "linear",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relu" => Ok(Self::Relu),
            "tanh" => Ok(Self::Tanh),
            "linear" => Ok(Self::Linear),
            _ => Err(format!(
                "unknown activation `{s}`: use relu, tanh or linear"
            )),
        }
    }
}

/// One denoiser `f(x) = c x + Wᵀ σ(W x/√d)/√d`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dae {
    pub d: usize,
    pub k: usize,
    pub act: Activation,
    /// Skip connection `c`.
    pub c: f64,
    /// `W`, row-major `k x d`.
    pub w: Vec<f64>,
}

/// Learning rate `η` and weight decay `λ` of the SGD step (eq. (M4)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub weight_decay: f64,
}

impl Dae {
    /// `W` with i.i.d. `N(0, init_std²)` entries (a rotation-invariant law), skip `c0`.
    pub fn random(
        d: usize,
        k: usize,
        act: Activation,
        init_std: f64,
        c0: f64,
        rng: &mut impl Rng,
    ) -> Self {
        assert!(k <= MAX_K, "k = {k} > MAX_K");
        let w = (0..k * d)
            .map(|_| init_std * rng.sample::<f64, _>(StandardNormal))
            .collect();
        Self {
            d,
            k,
            act,
            c: c0,
            w,
        }
    }

    /// Row `j` of `W`.
    #[inline]
    pub fn row(&self, j: usize) -> &[f64] {
        &self.w[j * self.d..(j + 1) * self.d]
    }

    /// Pre-activations `u_j = w_j·x/√d` into `u[..k]`.
    #[inline]
    fn pre(&self, x: &[f64], u: &mut [f64; MAX_K]) {
        let s = 1.0 / (self.d as f64).sqrt();
        for (j, uj) in u.iter_mut().enumerate().take(self.k) {
            *uj = dot(self.row(j), x) * s;
        }
    }

    /// `out = f(x)`.
    pub fn apply(&self, x: &[f64], out: &mut [f64]) {
        let mut u = [0.0; MAX_K];
        self.pre(x, &mut u);
        let s = 1.0 / (self.d as f64).sqrt();
        for (o, &xi) in out.iter_mut().zip(x) {
            *o = self.c * xi;
        }
        for (j, &uj) in u.iter().enumerate().take(self.k) {
            axpy(self.act.f(uj) * s, self.row(j), out);
        }
    }

    /// The per-sample loss `½‖x0 − f(x_t)‖²`.
    pub fn loss(&self, x0: &[f64], xt: &[f64]) -> f64 {
        let mut f = vec![0.0; self.d];
        self.apply(xt, &mut f);
        0.5 * x0.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
    }

    /// One SGD step (eq. (M4)) on the pair `(x0, x_t)`; `r` is scratch of length `d`. Returns
    /// the per-coordinate loss `½‖r‖²/d` before the step.
    pub fn sgd_step(&mut self, x0: &[f64], xt: &[f64], opt: Sgd, r: &mut [f64]) -> f64 {
        let d = self.d as f64;
        let s = 1.0 / d.sqrt();
        let mut u = [0.0; MAX_K];
        self.pre(xt, &mut u);
        // r = x0 − f(x_t)
        for ((ri, &a), &x) in r.iter_mut().zip(x0).zip(xt) {
            *ri = a - self.c * x;
        }
        let mut h = [0.0; MAX_K];
        for j in 0..self.k {
            h[j] = self.act.f(u[j]);
            axpy(-h[j] * s, self.row(j), r);
        }
        let loss = 0.5 * dot(r, r) / d;
        let rx = dot(r, xt);
        let decay = 1.0 - opt.lr * opt.weight_decay / d;
        for j in 0..self.k {
            let g = dot(self.row(j), r) * s;
            let a = opt.lr * h[j] * s;
            let b = opt.lr * self.act.df(u[j]) * g * s;
            let row = &mut self.w[j * self.d..(j + 1) * self.d];
            for ((w, &ri), &x) in row.iter_mut().zip(r.iter()).zip(xt) {
                *w = decay * *w + a * ri + b * x;
            }
        }
        self.c += opt.lr / (d * d) * rx;
        loss
    }

    /// The overlap matrix `W Wᵀ/d` (`k x k`, row-major).
    pub fn overlap(&self) -> Vec<f64> {
        let mut q = vec![0.0; self.k * self.k];
        for a in 0..self.k {
            for b in 0..self.k {
                q[a * self.k + b] = dot(self.row(a), self.row(b)) / self.d as f64;
            }
        }
        q
    }
}

#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators: the compiler vectorises this and the order is fixed (deterministic).
    let mut s = [0.0f64; 4];
    let n4 = a.len() / 4 * 4;
    for (ca, cb) in a[..n4].chunks_exact(4).zip(b[..n4].chunks_exact(4)) {
        for i in 0..4 {
            s[i] += ca[i] * cb[i];
        }
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for i in n4..a.len() {
        t += a[i] * b[i];
    }
    t
}

#[inline]
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The SGD step equals a step along minus the finite-difference gradient of the loss it
    /// states: ½‖r‖² for W (+ λ/(2d)‖W‖²) with rate η, ½‖r‖²/d with rate η/d for c.
    #[test]
    fn sgd_step_matches_finite_difference_gradient() {
        for act in [Activation::Tanh, Activation::Relu, Activation::Linear] {
            let (d, k) = (7, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let m = Dae::random(d, k, act, 1.0, 0.3, &mut rng);
            let x0: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
            let xt: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
            let opt = Sgd {
                lr: 1e-3,
                weight_decay: 0.7,
            };
            let lam = opt.weight_decay;
            let obj = |m: &Dae| {
                m.loss(&x0, &xt) + lam / (2.0 * d as f64) * m.w.iter().map(|w| w * w).sum::<f64>()
            };
            let mut stepped = m.clone();
            let mut r = vec![0.0; d];
            stepped.sgd_step(&x0, &xt, opt, &mut r);
            let h = 1e-6;
            for i in 0..k * d {
                let mut p = m.clone();
                p.w[i] += h;
                let mut q = m.clone();
                q.w[i] -= h;
                let grad = (obj(&p) - obj(&q)) / (2.0 * h);
                let want = m.w[i] - opt.lr * grad;
                assert!(
                    (stepped.w[i] - want).abs() < 1e-9,
                    "{act:?} w[{i}]: {} vs {want}",
                    stepped.w[i]
                );
            }
            let mut p = m.clone();
            p.c += h;
            let mut q = m.clone();
            q.c -= h;
            let gc = (p.loss(&x0, &xt) - q.loss(&x0, &xt)) / (2.0 * h) / d as f64;
            let want = m.c - opt.lr / d as f64 * gc;
            assert!((stepped.c - want).abs() < 1e-10, "{act:?} c");
        }
    }

    #[test]
    fn tanh_and_linear_denoisers_are_odd() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for act in [Activation::Tanh, Activation::Linear, Activation::Relu] {
            let m = Dae::random(9, 4, act, 1.0, 0.4, &mut rng);
            let x: Vec<f64> = (0..9).map(|_| rng.sample(StandardNormal)).collect();
            let nx: Vec<f64> = x.iter().map(|v| -v).collect();
            let (mut a, mut b) = (vec![0.0; 9], vec![0.0; 9]);
            m.apply(&x, &mut a);
            m.apply(&nx, &mut b);
            let odd = a.iter().zip(&b).all(|(p, q)| (p + q).abs() < 1e-12);
            assert_eq!(odd, act.is_odd(), "{act:?}");
        }
    }
}
