//! The training loop's state and one optimizer step ([`Trainer`]).

use super::*;
use crate::checkpoint::{self, TrainingState};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use memdiff_data::ImageSet;
use memdiff_model::UNet;
use memdiff_schedule::Schedule;
use std::time::Instant;

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
    pub(crate) n_train: usize,
    pub(crate) n_val: usize,
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

/// Mean of the last (up to) 10 losses of a trace (NaN before the first).
pub(crate) fn recent_mean(losses: &[f32]) -> f64 {
    let tail = &losses[losses.len().saturating_sub(10)..];
    if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64
    }
}

/// Checks the data against the config and maps it to `[-1, 1]`.
pub(crate) fn prepare_data(cfg: &TrainConfig, data: &ImageSet) -> Result<Vec<f32>, TrainError> {
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
        recent_mean(&self.losses)
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

    /// The weights snapshots sample from: the EMA weights when the run keeps an EMA, else the
    /// current ones.
    pub fn sampling_model(&self) -> UNet {
        self.ema_model().unwrap_or_else(|| self.model())
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
