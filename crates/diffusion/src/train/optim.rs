//! Adam or SGD with momentum, and the EMA of the weights: on host vectors ([`HostAdam`], CPU backends) or as tensor ops
//! on the training device (`DeviceAdam`, GPU).

use super::*;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

/// The optimizer's state and update on host vectors, one fused, parallel pass per parameter,
/// then the optional EMA. Adam (PyTorch semantics: `p -= lr / (1 - b1^t) * m / (sqrt(v) /
/// sqrt(1 - b2^t) + eps)`), or under `optimizer = "sgd"` heavy-ball momentum (PyTorch's
/// `torch.optim.SGD(momentum=μ)`: `m = μ·m + g` (the first step `m = g`), `p -= lr·m`), which
/// keeps its buffer in `m` and leaves `v` at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAdam {
    pub step: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl HostAdam {
    pub fn new(params: &[(Vec<usize>, Vec<f32>)]) -> Self {
        Self {
            step: 0,
            m: params.iter().map(|(_, p)| vec![0.0; p.len()]).collect(),
            v: params.iter().map(|(_, p)| vec![0.0; p.len()]).collect(),
        }
    }

    /// One update of `params` (and `ema`, when given, with `decay`).
    pub fn update(
        &mut self,
        cfg: &TrainConfig,
        params: &mut [(Vec<usize>, Vec<f32>)],
        grads: &[Option<Vec<f32>>],
        ema: Option<(&mut [Vec<f32>], f64)>,
    ) {
        self.step += 1;
        const CHUNK: usize = 1 << 14;
        if cfg.optimizer == Optimizer::Sgd {
            let (mu, lr) = (cfg.momentum as f32, cfg.lr as f32);
            for (i, ((_, p), g)) in params.iter_mut().zip(grads).enumerate() {
                let Some(g) = g else { continue };
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(self.m[i].par_chunks_mut(CHUNK))
                    .for_each(|((p, g), m)| {
                        for k in 0..p.len() {
                            let mk = mu * m[k] + g[k];
                            m[k] = mk;
                            p[k] -= lr * mk;
                        }
                    });
            }
            update_ema(params, ema);
            return;
        }
        let t = self.step as i32;
        let (b1, b2) = (cfg.adam_beta1, cfg.adam_beta2);
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        let step_size = (cfg.lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = cfg.adam_eps as f32;
        let (b1f, b2f) = (b1 as f32, b2 as f32);
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        for (i, ((_, p), g)) in params.iter_mut().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(self.m[i].par_chunks_mut(CHUNK))
                .zip(self.v[i].par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| {
                    for k in 0..p.len() {
                        let gk = g[k];
                        let mk = b1f * m[k] + c1 * gk;
                        let vk = b2f * v[k] + c2 * gk * gk;
                        m[k] = mk;
                        v[k] = vk;
                        p[k] -= step_size * mk / (vk.sqrt() * inv_sqrt_bc2 + eps);
                    }
                });
        }
        update_ema(params, ema);
    }
}

/// `ema = decay·ema + (1 - decay)·p`, element by element.
fn update_ema(params: &[(Vec<usize>, Vec<f32>)], ema: Option<(&mut [Vec<f32>], f64)>) {
    const CHUNK: usize = 1 << 14;
    if let Some((ema, decay)) = ema {
        let (d, c) = (decay as f32, (1.0 - decay) as f32);
        for (e, (_, p)) in ema.iter_mut().zip(params.iter()) {
            e.par_chunks_mut(CHUNK)
                .zip(p.par_chunks(CHUNK))
                .for_each(|(e, p)| {
                    for k in 0..e.len() {
                        e[k] = d * e[k] + c * p[k];
                    }
                });
        }
    }
}

/// Adam + EMA as tensor ops on the training device, the same update as [`HostAdam`] (up to the
/// order of float operations): weights, moments and EMA stay on the device between steps.
#[derive(Debug, Clone)]
pub(crate) struct DeviceAdam {
    /// Weights, flattened, on the plain (non-autodiff) device.
    pub(crate) p: Vec<Tensor<1>>,
    pub(crate) m: Vec<Tensor<1>>,
    pub(crate) v: Vec<Tensor<1>>,
    pub(crate) ema: Option<Vec<Tensor<1>>>,
}

impl DeviceAdam {
    pub(crate) fn upload(
        params: &[(Vec<usize>, Vec<f32>)],
        adam: &HostAdam,
        ema: Option<&Vec<Vec<f32>>>,
        device: &Device,
    ) -> Self {
        Self {
            p: to_device(params.iter().map(|(_, p)| p.as_slice()), device),
            m: to_device(adam.m.iter().map(Vec::as_slice), device),
            v: to_device(adam.v.iter().map(Vec::as_slice), device),
            ema: ema.map(|e| to_device(e.iter().map(Vec::as_slice), device)),
        }
    }

    /// One update at Adam step `t` (1-based), as [`HostAdam::update`].
    pub(crate) fn update(&mut self, cfg: &TrainConfig, t: u64, grads: Vec<Option<Tensor<1>>>) {
        if cfg.optimizer == Optimizer::Sgd {
            for (i, g) in grads.into_iter().enumerate() {
                let Some(g) = g else { continue };
                let m = self.m[i].clone().mul_scalar(cfg.momentum) + g;
                self.p[i] = self.p[i].clone() - m.clone().mul_scalar(cfg.lr);
                self.m[i] = m;
            }
            self.update_ema(cfg);
            return;
        }
        let (b1, b2) = (cfg.adam_beta1, cfg.adam_beta2);
        let bc1 = 1.0 - b1.powi(t as i32);
        let bc2 = 1.0 - b2.powi(t as i32);
        let step_size = cfg.lr / bc1;
        let inv_sqrt_bc2 = 1.0 / bc2.sqrt();
        for (i, g) in grads.into_iter().enumerate() {
            let Some(g) = g else { continue };
            let m = self.m[i].clone().mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
            let v = self.v[i].clone().mul_scalar(b2) + (g.clone() * g).mul_scalar(1.0 - b2);
            let denom = v
                .clone()
                .sqrt()
                .mul_scalar(inv_sqrt_bc2)
                .add_scalar(cfg.adam_eps);
            self.p[i] = self.p[i].clone() - (m.clone() / denom).mul_scalar(step_size);
            self.m[i] = m;
            self.v[i] = v;
        }
        self.update_ema(cfg);
    }

    fn update_ema(&mut self, cfg: &TrainConfig) {
        if let (Some(ema), Some(d)) = (&mut self.ema, cfg.ema) {
            for (e, p) in ema.iter_mut().zip(&self.p) {
                *e = e.clone().mul_scalar(d) + p.clone().mul_scalar(1.0 - d);
            }
        }
    }
}
