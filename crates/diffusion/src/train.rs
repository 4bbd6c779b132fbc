//! DDPM training (docs/METHOD.md §2): `t` uniform in `1..=s`, `eps ~ N(0, I)`,
//! `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`, loss = MSE(eps, eps_theta(x_t, t)),
//! Adam with PyTorch's defaults (epsilon 1e-8), optional EMA of the weights.
//!
//! Every step's randomness (the epoch's batch order, each image's `t` and `eps`) is derived from
//! `(seed, epoch)` or `(seed, step)` with ChaCha8, never from a device RNG, so a run resumed
//! from a checkpoint draws exactly what the uninterrupted run would have drawn. On the CPU
//! backends Adam's moments and the EMA live on the host as plain `f32` vectors, updated in one
//! fused pass; that makes them trivially serialisable and the update cheap. On a GPU the copies
//! to and from the host cost more than the network (docs/BENCHMARKS.md, "GPU"), so there the same update runs as tensor ops on the device
//! ([`DeviceAdam`]) and the host copies are made only for checkpoints.
//!
//! [`train_in_memory`] is the loop with no files (the sweep calls it once per simulation);
//! [`train_run`] adds the output folder: `metrics.csv`, checkpoints, resume.

use crate::backend::{backend_name, DeviceKind};
use crate::checkpoint::{self, CheckpointMeta, TrainingState};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::ProgressBar;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::ImageSet;
use memdiff_model::{ModelError, UNet, UNetConfig};
use memdiff_schedule::{BetaSchedule, Indexing, Schedule};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything that decides a training run. TOML keys are these field names; unknown keys are
/// errors, missing ones take the defaults below (the papers' settings where they have one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Image side (multiple of 8). Default 8 (d = 64, the papers' GMM runs).
    pub px: usize,
    /// Image channels. Default 1.
    pub channels: usize,
    /// U-Net base width `b`. Default 64 (12.9 M parameters).
    pub base_channels: usize,
    /// Diffusion steps `s`. Default 200 (the papers' neural runs).
    pub diffusion_steps: usize,
    /// Beta schedule. Default `linear`.
    pub schedule: BetaSchedule,
    /// Step labels given to the network. Default `standard`.
    pub indexing: Indexing,
    /// Passes over the training images. Default 10.
    pub epochs: usize,
    /// Images per optimizer step (the last batch of an epoch may be smaller). Default 128.
    pub batch: usize,
    /// Adam learning rate. Default 2e-4.
    pub lr: f64,
    /// Adam beta_1. Default 0.9.
    pub adam_beta1: f64,
    /// Adam beta_2. Default 0.999.
    pub adam_beta2: f64,
    /// Adam epsilon, added outside the square root as PyTorch does. Default 1e-8.
    pub adam_eps: f64,
    /// Seed of the weights' initialisation and of every draw of the run. Default 0.
    pub seed: u64,
    /// Decay of an exponential moving average of the weights (e.g. 0.999); none by default.
    pub ema: Option<f64>,
    /// Fraction of the images held out for a validation loss (the last ones, as the papers'
    /// code: it trains on the first 90 %). Default 0.
    pub val_fraction: f64,
    /// Write a checkpoint every this many optimizer steps (0: only at the end). Default 500.
    pub checkpoint_every: usize,
    /// Stop after this many optimizer steps in total, whatever `epochs` says (benchmarks,
    /// tests). Default none.
    pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            px: 8,
            channels: 1,
            base_channels: 64,
            diffusion_steps: 200,
            schedule: BetaSchedule::Linear,
            indexing: Indexing::Standard,
            epochs: 10,
            batch: 128,
            lr: 2e-4,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            seed: 0,
            ema: None,
            val_fraction: 0.0,
            checkpoint_every: 500,
            max_steps: None,
        }
    }
}

/// Why training could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("training setting `{field}` = {value}: {fix}")]
    Setting {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("the training images are {got} but the config says {want} (set px / channels to the data's shape, or resize the data)")]
    DataShape { got: String, want: String },
    #[error("training data holds no finite values in [0, 1]: image {image} has {value} (the network expects pixels in [0, 1])")]
    DataValue { image: usize, value: f32 },
    #[error("the loss became {loss} at optimizer step {step} (epoch {epoch}); {kept} (try a smaller --lr)")]
    NonFinite {
        loss: f32,
        step: usize,
        epoch: usize,
        kept: String,
    },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Resume(String),
    #[error("measuring the training snapshot at step {step}: {message}")]
    Snapshot { step: usize, message: String },
}

fn setting(field: &'static str, value: impl ToString, fix: &'static str) -> TrainError {
    TrainError::Setting {
        field,
        value: value.to_string(),
        fix,
    }
}

impl TrainConfig {
    pub fn unet(&self) -> UNetConfig {
        UNetConfig::new(self.px, self.channels, self.base_channels)
    }

    /// Checks every field; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.unet().validate()?;
        if self.diffusion_steps < 2 {
            return Err(setting(
                "diffusion_steps",
                self.diffusion_steps,
                "need s >= 2",
            ));
        }
        if self.batch == 0 {
            return Err(setting(
                "batch",
                self.batch,
                "need at least 1 image per step",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(setting(
                "lr",
                self.lr,
                "the learning rate must be a positive number",
            ));
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            return Err(setting(
                "adam_beta1/adam_beta2",
                format!("{}/{}", self.adam_beta1, self.adam_beta2),
                "Adam's betas must lie in [0, 1)",
            ));
        }
        if !(self.adam_eps.is_finite() && self.adam_eps > 0.0) {
            return Err(setting(
                "adam_eps",
                self.adam_eps,
                "must be a positive number",
            ));
        }
        if let Some(d) = self.ema {
            if !(0.0..1.0).contains(&d) {
                return Err(setting(
                    "ema",
                    d,
                    "the EMA decay must lie in [0, 1), e.g. 0.999",
                ));
            }
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(setting(
                "val_fraction",
                self.val_fraction,
                "must lie in [0, 1) (the papers hold out 0.1)",
            ));
        }
        if self.max_steps == Some(0) {
            return Err(setting("max_steps", 0, "leave it out or give at least 1"));
        }
        Ok(())
    }

    /// How many of `n` images are trained on (the first ones) and how many validate.
    pub fn split(&self, n: usize) -> (usize, usize) {
        let val = (self.val_fraction * n as f64).floor() as usize;
        (n - val, val)
    }

    /// Optimizer steps per epoch for `n_train` images (the last batch may be short).
    pub fn steps_per_epoch(&self, n_train: usize) -> usize {
        n_train.div_ceil(self.batch)
    }

    /// Total optimizer steps of the run.
    pub fn total_steps(&self, n_train: usize) -> usize {
        self.max_steps
            .unwrap_or(self.epochs * self.steps_per_epoch(n_train))
    }
}

/// A finished training: the model ready for inference (no autodiff), the EMA weights if asked,
/// every step's loss.
#[derive(Debug)]
pub struct Trained {
    pub model: UNet,
    pub ema: Option<UNet>,
    pub losses: Vec<f32>,
    /// Validation loss after each epoch (empty without a validation split).
    pub val_losses: Vec<f32>,
    /// Wall time of the optimizer steps.
    pub seconds: f64,
}

// ---------------------------------------------------------------------------------------------
// Seeds: every draw is a pure function of (seed, what, index).

const TAG_PERM: u64 = 0x7065_726d; // "perm"
const TAG_STEP: u64 = 0x7374_6570; // "step"
const TAG_VAL: u64 = 0x0076_616c; // "val"

// The mixer of the one seed derivation (`memdiff_data::seed`); the training draws keep their
// own composition of it so that every published run draws what it drew.
use memdiff_data::seed::mix as splitmix;

/// The RNG of draw `index` of kind `tag` in a run seeded `seed`.
pub fn derived_rng(seed: u64, tag: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix(splitmix(seed ^ splitmix(tag)) ^ index))
}

/// The order of the training images in `epoch`.
pub fn epoch_order(seed: u64, epoch: usize, n_train: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n_train).collect();
    idx.shuffle(&mut derived_rng(seed, TAG_PERM, epoch as u64));
    idx
}

/// A batch ready for the network: `x_t`, `eps` (row-major `(B, C, px, px)`) and the step
/// labels the network sees.
struct NoisyBatch {
    xt: Vec<f32>,
    eps: Vec<f32>,
    t_net: Vec<i64>,
    b: usize,
}

/// `x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps` for the images `rows` of `x0` (already in [-1, 1]),
/// with `t` and `eps` drawn from `rng` image by image.
fn noisy_batch(
    x0: &[f32],
    dim: usize,
    rows: &[usize],
    sched: &Schedule,
    indexing: Indexing,
    rng: &mut ChaCha8Rng,
) -> NoisyBatch {
    let b = rows.len();
    let s = sched.steps;
    let mut xt = Vec::with_capacity(b * dim);
    let mut eps = Vec::with_capacity(b * dim);
    let mut t_net = Vec::with_capacity(b);
    for &r in rows {
        let t = rng.random_range(1..=s);
        let ab = sched.alpha_bar(t);
        let (ca, cb) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
        t_net.push(indexing.net_t(t) as i64);
        for &x in &x0[r * dim..(r + 1) * dim] {
            let e: f32 = rng.sample(StandardNormal);
            xt.push(ca * x + cb * e);
            eps.push(e);
        }
    }
    NoisyBatch { xt, eps, t_net, b }
}

// ---------------------------------------------------------------------------------------------
// Parameters as host vectors, in the module's visiting order.

/// Every float parameter of `model` as `(shape, values)`, in visiting order.
pub fn params_to_host(model: &UNet) -> Vec<(Vec<usize>, Vec<f32>)> {
    struct Collect(Vec<(Vec<usize>, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            let data = t.into_data().convert::<f32>();
            self.0.push((
                shape,
                data.try_into_vec::<f32>().expect("f32 parameter data"),
            ));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// Replaces every float parameter of `model` (visiting order) with `value(i, plain_device)`, a
/// flat tensor reshaped to the parameter's shape, keeping whether each one tracks gradients.
fn map_params(model: UNet, value: &mut dyn FnMut(usize, &Device) -> Tensor<1>) -> UNet {
    struct Load<'a> {
        value: &'a mut dyn FnMut(usize, &Device) -> Tensor<1>,
        i: usize,
    }
    impl ModuleMapper for Load<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let i = self.i;
            self.i += 1;
            param.map(|t| {
                let grad = t.is_require_grad();
                let device = t.device();
                let v = (self.value)(i, &device.clone().inner()).reshape(t.dims());
                let new = if device.is_autodiff() {
                    Tensor::<D>::from_inner(v)
                } else {
                    v
                };
                if grad {
                    new.require_grad()
                } else {
                    new
                }
            })
        }
    }
    model.map(&mut Load { value, i: 0 })
}

/// Replaces every float parameter of `model` with `values` (visiting order; shapes checked by
/// the caller), keeping whether each one tracks gradients.
pub fn params_from_host(model: UNet, values: &[&[f32]]) -> UNet {
    map_params(model, &mut |i, device| host_tensor(values[i], device))
}

fn grads_to_host(model: &UNet, grads: &Gradients) -> Vec<Option<Vec<f32>>> {
    grads_on_device(model, grads)
        .into_iter()
        .map(|g| g.map(|t| tensor_to_host(&t)))
        .collect()
}

/// Adam (PyTorch semantics: `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`) and
/// the optional EMA, on host vectors; one fused, parallel pass per parameter.
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
        let t = self.step as i32;
        let (b1, b2) = (cfg.adam_beta1, cfg.adam_beta2);
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        let step_size = (cfg.lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = cfg.adam_eps as f32;
        let (b1f, b2f) = (b1 as f32, b2 as f32);
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        const CHUNK: usize = 1 << 14;
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
}

/// Adam + EMA as tensor ops on the training device, the same update as [`HostAdam`] (up to the
/// order of float operations): weights, moments and EMA stay on the device between steps.
#[derive(Debug, Clone)]
struct DeviceAdam {
    /// Weights, flattened, on the plain (non-autodiff) device.
    p: Vec<Tensor<1>>,
    m: Vec<Tensor<1>>,
    v: Vec<Tensor<1>>,
    ema: Option<Vec<Tensor<1>>>,
}

/// A flat tensor on `device` holding a copy of `v`.
fn host_tensor(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

fn to_device<'a>(values: impl IntoIterator<Item = &'a [f32]>, device: &Device) -> Vec<Tensor<1>> {
    values.into_iter().map(|v| host_tensor(v, device)).collect()
}

fn tensor_to_host(t: &Tensor<1>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

fn to_host(values: &[Tensor<1>]) -> Vec<Vec<f32>> {
    values.iter().map(tensor_to_host).collect()
}

impl DeviceAdam {
    fn upload(
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
    fn update(&mut self, cfg: &TrainConfig, t: u64, grads: Vec<Option<Tensor<1>>>) {
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
        if let (Some(ema), Some(d)) = (&mut self.ema, cfg.ema) {
            for (e, p) in ema.iter_mut().zip(&self.p) {
                *e = e.clone().mul_scalar(d) + p.clone().mul_scalar(1.0 - d);
            }
        }
    }
}

/// Every parameter's gradient, flattened, left on the device.
fn grads_on_device(model: &UNet, grads: &Gradients) -> Vec<Option<Tensor<1>>> {
    struct Collect<'a> {
        grads: &'a Gradients,
        out: Vec<Option<Tensor<1>>>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param.val().grad(self.grads).map(|g| {
                let n = g.dims().iter().product::<usize>();
                g.reshape([n])
            });
            self.out.push(g);
        }
    }
    let mut c = Collect {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut c);
    c.out
}

/// Replaces every float parameter of `model` with the flattened device tensors `values`
/// (visiting order), keeping whether each one tracks gradients.
fn params_from_device(model: UNet, values: &[Tensor<1>]) -> UNet {
    map_params(model, &mut |i, _| values[i].clone())
}

// ---------------------------------------------------------------------------------------------
// The loop.

/// What a run is in the middle of: weights, optimizer, EMA and how many steps are done.
pub struct Trainer {
    pub cfg: TrainConfig,
    /// Weights on the autodiff device.
    model: UNet,
    params: Vec<(Vec<usize>, Vec<f32>)>,
    adam: HostAdam,
    ema: Option<Vec<Vec<f32>>>,
    /// On GPU backends: weights, moments and EMA on the device; `params`, `adam.m`, `adam.v`
    /// and `ema` above are then stale between [`Trainer::state`] calls (`adam.step` is kept).
    dev_opt: Option<DeviceAdam>,
    /// Optimizer steps done.
    pub step: usize,
    sched: Schedule,
    x0: Vec<f32>,
    dim: usize,
    n_train: usize,
    n_val: usize,
    device: Device,
    pub losses: Vec<f32>,
    pub val_losses: Vec<f32>,
    /// Where the last step's time went.
    pub last_times: StepTimes,
}

/// Seconds of one step by phase: forward + loss, backward, and the optimizer (Adam + EMA; on CPU
/// backends with the gradients copied to the host and the weights back).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepTimes {
    pub forward: f64,
    pub backward: f64,
    pub optimizer: f64,
}

/// Checks the data against the config and maps it to `[-1, 1]`.
fn prepare_data(cfg: &TrainConfig, data: &ImageSet) -> Result<Vec<f32>, TrainError> {
    if data.channels != cfg.channels || data.h != cfg.px || data.w != cfg.px {
        return Err(TrainError::DataShape {
            got: format!("{} x {} x {}", data.channels, data.h, data.w),
            want: format!("{} x {} x {}", cfg.channels, cfg.px, cfg.px),
        });
    }
    let (n_train, _) = cfg.split(data.n);
    if n_train == 0 {
        return Err(setting(
            "n",
            data.n,
            "no training images (give more images or a smaller val_fraction)",
        ));
    }
    let dim = data.dim();
    if let Some(k) = data.data.iter().position(|v| !v.is_finite()) {
        return Err(TrainError::DataValue {
            image: k / dim,
            value: data.data[k],
        });
    }
    Ok(data.data.iter().map(|&v| 2.0 * v - 1.0).collect())
}

impl Trainer {
    /// A fresh run: weights initialised from `cfg.seed` on `device` (a plain device; the
    /// trainer wraps it with autodiff).
    pub fn new(cfg: &TrainConfig, data: &ImageSet, device: &Device) -> Result<Self, TrainError> {
        cfg.validate()?;
        let x0 = prepare_data(cfg, data)?;
        let ad = device.clone().autodiff();
        let model = cfg.unet().init_seeded(&ad, cfg.seed)?;
        let params = params_to_host(&model);
        let adam = HostAdam::new(&params);
        let ema = cfg
            .ema
            .map(|_| params.iter().map(|(_, p)| p.clone()).collect());
        let (n_train, n_val) = cfg.split(data.n);
        Ok(Self {
            cfg: cfg.clone(),
            model,
            params,
            adam,
            ema,
            dev_opt: None,
            step: 0,
            sched: Schedule::new(cfg.schedule, cfg.diffusion_steps)
                .map_err(|_| setting("diffusion_steps", cfg.diffusion_steps, "need s >= 2"))?,
            x0,
            dim: data.dim(),
            n_train,
            n_val,
            device: ad,
            losses: Vec::new(),
            val_losses: Vec::new(),
            last_times: StepTimes::default(),
        }
        .with_device_optimizer(!memdiff_model::is_cpu(device)))
    }

    /// Runs Adam and the EMA as tensor ops on the device (`true`, the default off the CPU
    /// backends) or on host vectors (`false`, the default on flex and ndarray). The two give the
    /// same update up to float rounding.
    pub fn with_device_optimizer(mut self, on: bool) -> Self {
        self.sync_host();
        self.dev_opt = on.then(|| {
            DeviceAdam::upload(
                &self.params,
                &self.adam,
                self.ema.as_ref(),
                &self.device.clone().inner(),
            )
        });
        self
    }

    /// Copies the device optimizer's weights, moments and EMA into the host vectors.
    fn sync_host(&mut self) {
        if self.dev_opt.is_some() {
            let state = self.state();
            for ((_, p), v) in self.params.iter_mut().zip(state.params) {
                *p = v;
            }
            self.adam = state.adam;
            self.ema = state.ema;
        }
    }

    /// Continues from a saved state (same config and data as when it was saved).
    pub fn from_state(
        cfg: &TrainConfig,
        data: &ImageSet,
        device: &Device,
        state: TrainingState,
        losses: Vec<f32>,
        val_losses: Vec<f32>,
    ) -> Result<Self, TrainError> {
        let mut tr = Self::new(cfg, data, device)?;
        checkpoint::check_shapes(&tr.params, &state.params)?;
        for ((_, p), v) in tr.params.iter_mut().zip(state.params) {
            *p = v;
        }
        tr.model = params_from_host(
            tr.model,
            &tr.params
                .iter()
                .map(|(_, p)| p.as_slice())
                .collect::<Vec<_>>(),
        );
        tr.adam = state.adam;
        tr.ema = state.ema;
        tr.step = state.step;
        let on = tr.dev_opt.is_some();
        tr.dev_opt = None;
        let mut tr = tr.with_device_optimizer(on);
        tr.losses = losses;
        tr.val_losses = val_losses;
        Ok(tr)
    }

    pub fn n_train(&self) -> usize {
        self.n_train
    }
    pub fn total_steps(&self) -> usize {
        self.cfg.total_steps(self.n_train)
    }
    /// Mean training loss over the last (up to) 10 optimizer steps (NaN before the first).
    pub fn recent_loss(&self) -> f64 {
        let tail = &self.losses[self.losses.len().saturating_sub(10)..];
        if tail.is_empty() {
            f64::NAN
        } else {
            tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64
        }
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.cfg.steps_per_epoch(self.n_train)
    }
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps()
    }
    /// The epoch the next step belongs to (0-based).
    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch()
    }

    /// One optimizer step; returns its loss (before the update). A non-finite loss leaves the
    /// weights untouched.
    pub fn step(&mut self) -> Result<f32, TrainError> {
        let spe = self.steps_per_epoch();
        let (epoch, k) = (self.step / spe, self.step % spe);
        let order = epoch_order(self.cfg.seed, epoch, self.n_train);
        let rows = &order[k * self.cfg.batch..((k + 1) * self.cfg.batch).min(self.n_train)];
        let mut rng = derived_rng(self.cfg.seed, TAG_STEP, self.step as u64);
        let nb = noisy_batch(
            &self.x0,
            self.dim,
            rows,
            &self.sched,
            self.cfg.indexing,
            &mut rng,
        );
        let (c, px) = (self.cfg.channels, self.cfg.px);
        let xt = Tensor::<4>::from_data(TensorData::new(nb.xt, [nb.b, c, px, px]), &self.device);
        let eps = Tensor::<4>::from_data(TensorData::new(nb.eps, [nb.b, c, px, px]), &self.device);
        let t = Tensor::<1, Int>::from_data(TensorData::new(nb.t_net, [nb.b]), &self.device);
        let t0 = Instant::now();
        let pred = self.model.forward(xt, t);
        let loss = (pred - eps).square().mean();
        let value: f32 = loss.clone().into_scalar::<f32>();
        let t1 = Instant::now();
        if !value.is_finite() {
            return Err(TrainError::NonFinite {
                loss: value,
                step: self.step + 1,
                epoch,
                kept: String::new(),
            });
        }
        let grads = loss.backward();
        let t2 = Instant::now();
        if let Some(d) = &mut self.dev_opt {
            let g = grads_on_device(&self.model, &grads);
            drop(grads);
            self.adam.step += 1;
            d.update(&self.cfg, self.adam.step, g);
            self.model = params_from_device(self.model.clone(), &d.p);
            return Ok(self.finish_step(value, t0, t1, t2, spe));
        }
        let g = grads_to_host(&self.model, &grads);
        drop(grads);
        let decay = self.cfg.ema;
        self.adam.update(
            &self.cfg,
            &mut self.params,
            &g,
            match (&mut self.ema, decay) {
                (Some(e), Some(d)) => Some((e.as_mut_slice(), d)),
                _ => None,
            },
        );
        let values: Vec<&[f32]> = self.params.iter().map(|(_, p)| p.as_slice()).collect();
        self.model = params_from_host(self.model.clone(), &values);
        Ok(self.finish_step(value, t0, t1, t2, spe))
    }

    fn finish_step(
        &mut self,
        value: f32,
        t0: Instant,
        t1: Instant,
        t2: Instant,
        spe: usize,
    ) -> f32 {
        let t3 = Instant::now();
        self.last_times = StepTimes {
            forward: (t1 - t0).as_secs_f64(),
            backward: (t2 - t1).as_secs_f64(),
            optimizer: (t3 - t2).as_secs_f64(),
        };
        self.step += 1;
        self.losses.push(value);
        if self.n_val > 0 && self.step.is_multiple_of(spe) {
            let v = self.validation_loss();
            self.val_losses.push(v);
        }
        value
    }

    /// Mean MSE over the held-out images, with `t` and `eps` fixed by the seed (the same draw
    /// after every epoch), on the current weights.
    pub fn validation_loss(&self) -> f32 {
        let model = self.model.valid();
        let dev = self.device.clone().inner();
        let rows: Vec<usize> = (self.n_train..self.n_train + self.n_val).collect();
        let mut rng = derived_rng(self.cfg.seed, TAG_VAL, 0);
        let (c, px) = (self.cfg.channels, self.cfg.px);
        let mut total = 0.0f64;
        for chunk in rows.chunks(self.cfg.batch) {
            let nb = noisy_batch(
                &self.x0,
                self.dim,
                chunk,
                &self.sched,
                self.cfg.indexing,
                &mut rng,
            );
            let xt = Tensor::<4>::from_data(TensorData::new(nb.xt, [nb.b, c, px, px]), &dev);
            let eps = Tensor::<4>::from_data(TensorData::new(nb.eps, [nb.b, c, px, px]), &dev);
            let t = Tensor::<1, Int>::from_data(TensorData::new(nb.t_net, [nb.b]), &dev);
            let se: f32 = (model.forward(xt, t) - eps)
                .square()
                .sum()
                .into_scalar::<f32>();
            total += se as f64;
        }
        (total / (self.n_val * self.dim) as f64) as f32
    }

    /// The current weights as an inference model on the plain device.
    pub fn model(&self) -> UNet {
        self.model.valid()
    }

    /// The EMA weights as an inference model, if the run keeps an EMA.
    pub fn ema_model(&self) -> Option<UNet> {
        if let Some(d) = &self.dev_opt {
            let e = d.ema.as_ref()?;
            return Some(params_from_device(self.model.clone(), e).valid());
        }
        let e = self.ema.as_ref()?;
        let e: Vec<&[f32]> = e.iter().map(Vec::as_slice).collect();
        Some(params_from_host(self.model.valid(), &e))
    }

    /// What a checkpoint stores (weights, Adam moments, EMA, step).
    pub fn state(&self) -> TrainingState {
        if let Some(d) = &self.dev_opt {
            return TrainingState {
                step: self.step,
                params: to_host(&d.p),
                adam: HostAdam {
                    step: self.adam.step,
                    m: to_host(&d.m),
                    v: to_host(&d.v),
                },
                ema: d.ema.as_ref().map(|e| to_host(e)),
            };
        }
        TrainingState {
            step: self.step,
            params: self.params.iter().map(|(_, p)| p.clone()).collect(),
            adam: self.adam.clone(),
            ema: self.ema.clone(),
        }
    }

    pub(crate) fn shapes(&self) -> Vec<Vec<usize>> {
        self.params.iter().map(|(s, _)| s.clone()).collect()
    }
}

fn img_per_s(imgs: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        imgs as f64 / secs
    } else {
        0.0
    }
}

fn show(pb: Option<&ProgressBar>, tr: &Trainer, loss: f32, rate: f64) {
    if let Some(pb) = pb {
        pb.set_position(tr.step as u64);
        pb.set_message(format!(
            "epoch {} loss {loss:.4} {rate:.0} img/s",
            tr.epoch().min(tr.cfg.epochs.max(1) - 1) + 1
        ));
    }
}

/// Trains a fresh model on `data` (pixels in `[0, 1]`) with no files written. `device` is a
/// plain device ([`crate::backend::device`]).
pub fn train_in_memory(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    progress: Option<&ProgressBar>,
) -> Result<Trained, TrainError> {
    train_in_memory_with_snapshots(cfg, data, device, progress, &[], &mut |_| Ok(()))
}

/// Error of a snapshot callback.
pub type SnapshotError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// [`train_in_memory`], calling `on_snapshot` with the trainer right after each optimizer step
/// listed in `at` (sorted; steps beyond the run are never reached). The callback may read the
/// weights ([`Trainer::model`], [`Trainer::ema_model`]) but cannot change them, and it draws
/// no randomness from the training streams, so the loss trace is the same with or without
/// snapshots (tested bit for bit).
pub fn train_in_memory_with_snapshots(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    progress: Option<&ProgressBar>,
    at: &[usize],
    on_snapshot: &mut dyn FnMut(&Trainer) -> Result<(), SnapshotError>,
) -> Result<Trained, TrainError> {
    let mut tr = Trainer::new(cfg, data, device)?;
    if let Some(pb) = progress {
        pb.set_length(tr.total_steps() as u64);
    }
    let t0 = Instant::now();
    let mut imgs = 0;
    let mut next = 0;
    let mut in_snapshots = 0.0;
    while !tr.is_done() {
        let loss = tr.step().map_err(|e| match e {
            TrainError::NonFinite {
                loss, step, epoch, ..
            } => TrainError::NonFinite {
                loss,
                step,
                epoch,
                kept: "no weights were kept (in-memory training)".into(),
            },
            e => e,
        })?;
        imgs += cfg.batch.min(tr.n_train);
        show(
            progress,
            &tr,
            loss,
            img_per_s(imgs, t0.elapsed().as_secs_f64() - in_snapshots),
        );
        while next < at.len() && at[next] <= tr.step {
            if at[next] == tr.step {
                let s0 = Instant::now();
                on_snapshot(&tr).map_err(|e| TrainError::Snapshot {
                    step: tr.step,
                    message: e.to_string(),
                })?;
                in_snapshots += s0.elapsed().as_secs_f64();
            }
            next += 1;
        }
    }
    let seconds = t0.elapsed().as_secs_f64() - in_snapshots;
    Ok(Trained {
        model: tr.model(),
        ema: tr.ema_model(),
        losses: tr.losses,
        val_losses: tr.val_losses,
        seconds,
    })
}

/// Where and how [`train_run`] writes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder (created).
    pub out: PathBuf,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    pub device: DeviceKind,
    /// How to rebuild the training set (recorded in every checkpoint).
    pub recipe: DataRecipe,
}

/// What [`train_run`] did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub steps: usize,
    pub epochs: usize,
    pub final_loss: Option<f32>,
    pub seconds: f64,
    pub img_per_s: f64,
    pub resumed_from: Option<usize>,
}

/// Test hook: sleep this many milliseconds after every step (lets a test kill the process in
/// the middle of a run).
const DELAY_ENV: &str = "MEMDIFF_TRAIN_STEP_DELAY_MS";

/// The checkpointed run behind `memdiff train`: `metrics.csv` (one row per optimizer step,
/// appended as it goes), `val.csv` with a validation split, a checkpoint every
/// `checkpoint_every` steps and at the end. With `resume`, continues from the checkpoint in
/// `out` so that the loss trace equals the uninterrupted run's exactly (same backend).
pub fn train_run(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    opts: &RunOptions,
    progress: Option<&ProgressBar>,
) -> Result<RunSummary, TrainError> {
    train_run_with_snapshots(cfg, data, device, opts, progress, &[], false, &mut |_| {
        Ok(())
    })
}

/// Folder of the checkpoint kept at snapshot `step` by [`train_run_with_snapshots`] (a complete
/// checkpoint folder: `memdiff eval --checkpoint` and `memdiff sample` read it).
pub fn snapshot_dir(out: &Path, step: usize) -> PathBuf {
    out.join("snapshots").join(format!("step-{step:08}"))
}

/// [`train_run`], calling `on_snapshot` with the trainer right after each optimizer step listed
/// in `at` (sorted; steps at or before a resumed checkpoint are skipped), before that step's
/// checkpoint is written: a run killed after measuring a snapshot but before checkpointing it
/// measures it again on resume. With `keep_weights`, each snapshot's weights are also saved as a
/// checkpoint in [`snapshot_dir`]. As with [`train_in_memory_with_snapshots`], the callback
/// cannot change the weights or the training streams; its time is left out of the rates.
#[allow(clippy::too_many_arguments)]
pub fn train_run_with_snapshots(
    cfg: &TrainConfig,
    data: &ImageSet,
    device: &Device,
    opts: &RunOptions,
    progress: Option<&ProgressBar>,
    at: &[usize],
    keep_weights: bool,
    on_snapshot: &mut dyn FnMut(&Trainer) -> Result<(), SnapshotError>,
) -> Result<RunSummary, TrainError> {
    cfg.validate()?;
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Io {
        path: out.clone(),
        source,
    })?;
    let metrics = out.join("metrics.csv");
    let val_path = out.join("val.csv");
    let mut tr = if opts.resume {
        let meta = checkpoint::load_meta(out)?;
        // Only how long to train and how often to checkpoint may change on resume.
        let mut saved = meta.train.clone();
        saved.epochs = cfg.epochs;
        saved.max_steps = cfg.max_steps;
        saved.checkpoint_every = cfg.checkpoint_every;
        if &saved != cfg {
            return Err(TrainError::Resume(format!(
                "--resume: the settings differ from the checkpoint's in {} ({}); resume with the same settings (they are in {}/checkpoint.toml) or start a new --out",
                out.display(),
                checkpoint::diff_fields(&saved, cfg),
                out.display()
            )));
        }
        if meta.backend != backend_name(opts.device) {
            tracing::warn!(
                "resuming a {} checkpoint on {}: the loss trace will not match the uninterrupted run bit for bit",
                meta.backend,
                backend_name(opts.device)
            );
        }
        let (_, state) = checkpoint::load_state(out)?;
        let losses = read_losses(&metrics, state.step)?;
        let (n_train, _) = cfg.split(data.n);
        let per_epoch = cfg.steps_per_epoch(n_train);
        let val = if val_path.exists() {
            read_losses(&val_path, state.step / per_epoch)?
        } else {
            Vec::new()
        };
        Trainer::from_state(cfg, data, device, state, losses, val)?
    } else {
        Trainer::new(cfg, data, device)?
    };
    let resumed_from = opts.resume.then_some(tr.step);
    // metrics.csv holds exactly the steps done so far, then grows line by line.
    let spe = tr.steps_per_epoch();
    write_losses(&metrics, &tr.losses, Some(spe))?;
    if tr.n_val > 0 {
        write_losses(&val_path, &tr.val_losses, None)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics)
        .map_err(|source| TrainError::Io {
            path: metrics.clone(),
            source,
        })?;
    let delay = std::env::var(DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let meta_for = |tr: &Trainer| CheckpointMeta {
        train: cfg.clone(),
        data: opts.recipe.clone(),
        step: tr.step,
        epoch: tr.step / tr.steps_per_epoch(),
        n_train: tr.n_train,
        backend: backend_name(opts.device).to_string(),
        memdiff_version: env!("CARGO_PKG_VERSION").to_string(),
        rng: checkpoint::RngState {
            scheme: "chacha8 per (seed, epoch) batch order and per (seed, step) t and eps".into(),
            seed: cfg.seed,
            next_step: tr.step,
        },
        finished: tr.is_done(),
    };
    if let Some(pb) = progress {
        pb.set_length(tr.total_steps() as u64);
        pb.set_position(tr.step as u64);
    }
    let t0 = Instant::now();
    let start_step = tr.step;
    let mut imgs = 0usize;
    let mut last_ckpt = checkpoint::latest_step(out);
    let mut next = 0;
    let mut in_snapshots = 0.0;
    while !tr.is_done() {
        let loss = match tr.step() {
            Ok(l) => l,
            Err(TrainError::NonFinite {
                loss, step, epoch, ..
            }) => {
                let kept = match last_ckpt {
                    Some(s) => format!(
                        "the last good checkpoint (step {s}) is kept in {}",
                        out.display()
                    ),
                    None => "no checkpoint had been written yet".to_string(),
                };
                return Err(TrainError::NonFinite {
                    loss,
                    step,
                    epoch,
                    kept,
                });
            }
            Err(e) => return Err(e),
        };
        writeln!(log, "{},{},{}", tr.step, (tr.step - 1) / spe + 1, loss)
            .and_then(|_| log.flush())
            .map_err(|source| TrainError::Io {
                path: metrics.clone(),
                source,
            })?;
        if tr.n_val > 0 && tr.step.is_multiple_of(spe) {
            write_losses(&val_path, &tr.val_losses, None)?;
        }
        imgs += cfg.batch.min(tr.n_train);
        show(
            progress,
            &tr,
            loss,
            img_per_s(imgs, t0.elapsed().as_secs_f64() - in_snapshots),
        );
        while next < at.len() && at[next] <= tr.step {
            if at[next] == tr.step {
                let s0 = Instant::now();
                if keep_weights {
                    let dir = snapshot_dir(out, tr.step);
                    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                    checkpoint::save(&dir, &meta_for(&tr), &tr.state(), &tr.shapes())?;
                }
                on_snapshot(&tr).map_err(|e| TrainError::Snapshot {
                    step: tr.step,
                    message: e.to_string(),
                })?;
                in_snapshots += s0.elapsed().as_secs_f64();
            }
            next += 1;
        }
        let due = cfg.checkpoint_every > 0 && tr.step.is_multiple_of(cfg.checkpoint_every);
        if due && !tr.is_done() {
            checkpoint::save(out, &meta_for(&tr), &tr.state(), &tr.shapes())?;
            last_ckpt = Some(tr.step);
        }
        if let Some(ms) = delay {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
    let seconds = t0.elapsed().as_secs_f64() - in_snapshots;
    if last_ckpt != Some(tr.step) {
        checkpoint::save(out, &meta_for(&tr), &tr.state(), &tr.shapes())?;
    }
    // The final file, complete and written atomically.
    write_losses(&metrics, &tr.losses, Some(spe))?;
    Ok(RunSummary {
        steps: tr.step,
        epochs: tr.step.div_ceil(tr.steps_per_epoch()),
        final_loss: tr.losses.last().copied(),
        seconds,
        img_per_s: img_per_s(imgs, seconds),
        resumed_from: resumed_from.filter(|_| start_step > 0),
    })
}

/// Writes the loss file atomically: `step,epoch,loss` rows (1-based step and epoch) with
/// `per_epoch` steps per epoch, or `epoch,val_loss` rows when `per_epoch` is `None`. Losses are
/// in Rust's shortest round-trip form, so the file compares exactly.
fn write_losses(path: &Path, losses: &[f32], per_epoch: Option<usize>) -> Result<(), TrainError> {
    memdiff_data::atomic::write_with(path, |w| {
        match per_epoch {
            Some(spe) => {
                writeln!(w, "step,epoch,loss")?;
                for (i, l) in losses.iter().enumerate() {
                    writeln!(w, "{},{},{}", i + 1, i / spe + 1, l)?;
                }
            }
            None => {
                writeln!(w, "epoch,val_loss")?;
                for (i, l) in losses.iter().enumerate() {
                    writeln!(w, "{},{}", i + 1, l)?;
                }
            }
        }
        Ok(())
    })
    .map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e.source,
    })
}

/// The first `keep` losses of a metrics file (a torn last line after a kill is dropped).
fn read_losses(path: &Path, keep: usize) -> Result<Vec<f32>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::with_capacity(keep);
    for line in text.lines().skip(1) {
        if out.len() == keep {
            break;
        }
        let loss = line.rsplit(',').next().and_then(|v| v.parse::<f32>().ok());
        match loss {
            Some(l) => out.push(l),
            None => break,
        }
    }
    if out.len() < keep {
        return Err(TrainError::Resume(format!(
            "{} holds {} losses but the checkpoint is at step {keep}; the folder was edited by hand — start a new --out",
            path.display(),
            out.len()
        )));
    }
    Ok(out)
}
