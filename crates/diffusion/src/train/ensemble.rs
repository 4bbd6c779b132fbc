//! K trainings of one shape as one computation ([`EnsembleTrainer`]): the K networks' weights
//! are stacked in one [`EnsembleUNet`], every step runs the K batches through it at once, and
//! Adam and the EMA update the stacked vectors in one pass.
//!
//! Network `k` is the training [`Trainer`] would run with `cfgs[k]` on `data[k]`: the same
//! initial weights (from its own seed), the same batch order, `t` and `eps` (its own seeded
//! streams), the same loss (the mean over its own batch: the K losses are summed, so each
//! network's gradient is its own) and the same Adam and EMA arithmetic, element by element. Its
//! numbers do not depend on K or on which networks it shares a step with (tested bit for bit);
//! against [`Trainer`] they agree up to float rounding (the norms and affine layers of the
//! ensemble sum in another order; docs/METHOD.md §3).

use super::*;
use burn::tensor::{Device, Int, Tensor, TensorData};
use memdiff_data::ImageSet;
use memdiff_model::{EnsembleUNet, UNet};
use memdiff_schedule::Schedule;

/// What must be equal for two trainings to share an ensemble: everything in the config but the
/// seed and how the budget is written (epochs or max_steps), plus the total number of steps and
/// the batch size at every step (`full:B` when every batch is full, else the training-set size).
pub fn ensemble_key(cfg: &TrainConfig, n_train: usize) -> String {
    let mut c = cfg.clone();
    c.seed = 0;
    c.epochs = 0;
    c.max_steps = None;
    c.checkpoint_every = 0;
    let batches = if n_train >= cfg.batch && n_train.is_multiple_of(cfg.batch) {
        format!("full:{}", cfg.batch)
    } else {
        format!("n:{n_train}")
    };
    format!(
        "{}|steps:{}|{batches}",
        toml::to_string(&c).unwrap_or_default(),
        cfg.total_steps(n_train)
    )
}

/// K trainings in the middle of their run (module docs).
pub struct EnsembleTrainer {
    cfgs: Vec<TrainConfig>,
    model: EnsembleUNet,
    /// Stacked parameters `(K, ...)`, flat, in visiting order.
    params: Vec<(Vec<usize>, Vec<f32>)>,
    adam: HostAdam,
    ema: Option<Vec<Vec<f32>>>,
    /// Optimizer steps done (the same for every network).
    pub step: usize,
    sched: Schedule,
    x0: Vec<Vec<f32>>,
    dim: usize,
    n_train: Vec<usize>,
    device: Device,
    /// An inference U-Net of the shape, to receive one network's weights.
    template: UNet,
    /// Each network's loss at every step.
    pub losses: Vec<Vec<f32>>,
}

impl EnsembleTrainer {
    /// K fresh trainings: `cfgs[k]` on `data[k]` (pixels in `[0, 1]`), on `device` (plain; the
    /// trainer wraps it with autodiff). The configs must share [`ensemble_key`] and keep no
    /// validation split.
    pub fn new(
        cfgs: &[TrainConfig],
        data: &[&ImageSet],
        device: &Device,
    ) -> Result<Self, TrainError> {
        assert!(
            !cfgs.is_empty() && cfgs.len() == data.len(),
            "one config per training set, at least one"
        );
        let mut x0 = Vec::with_capacity(cfgs.len());
        let mut n_train = Vec::with_capacity(cfgs.len());
        for (cfg, d) in cfgs.iter().zip(data) {
            cfg.validate()?;
            if cfg.val_fraction > 0.0 {
                return Err(setting(
                    "val_fraction",
                    cfg.val_fraction,
                    "trainings batched as one ensemble keep no validation split: set it to 0",
                ));
            }
            x0.push(prepare_data(cfg, d)?);
            n_train.push(cfg.split(d.n).0);
        }
        let key = ensemble_key(&cfgs[0], n_train[0]);
        if let Some(k) = (1..cfgs.len()).find(|&k| ensemble_key(&cfgs[k], n_train[k]) != key) {
            return Err(setting(
                "ensemble",
                k,
                "this training differs from the first in shape, settings, budget or batch sizes: it cannot share the ensemble",
            ));
        }
        let plain = device.clone();
        let ad = device.clone().autodiff();
        let unet = cfgs[0].unet();
        let singles: Vec<Vec<(Vec<usize>, Vec<f32>)>> = cfgs
            .iter()
            .map(|c| Ok(params_to_host(&unet.init_seeded(&plain, c.seed)?)))
            .collect::<Result<_, TrainError>>()?;
        let params: Vec<(Vec<usize>, Vec<f32>)> = (0..singles[0].len())
            .map(|i| {
                let mut shape = vec![cfgs.len()];
                shape.extend(&singles[0][i].0);
                let values = singles
                    .iter()
                    .flat_map(|s| s[i].1.iter().copied())
                    .collect();
                (shape, values)
            })
            .collect();
        let model = EnsembleUNet::zeros(&unet, cfgs.len(), &ad)?;
        let model = params_from_host(
            model,
            &params.iter().map(|(_, p)| p.as_slice()).collect::<Vec<_>>(),
        );
        let adam = HostAdam::new(&params);
        let ema = cfgs[0]
            .ema
            .map(|_| params.iter().map(|(_, p)| p.clone()).collect());
        let cfg = &cfgs[0];
        Ok(Self {
            cfgs: cfgs.to_vec(),
            model,
            params,
            adam,
            ema,
            step: 0,
            sched: Schedule::new(cfg.schedule, cfg.diffusion_steps)
                .map_err(|_| setting("diffusion_steps", cfg.diffusion_steps, "need s >= 2"))?,
            dim: data[0].dim(),
            x0,
            losses: vec![Vec::new(); cfgs.len()],
            n_train,
            template: unet.init(&plain)?,
            device: ad,
        })
    }

    /// Networks in the ensemble.
    pub fn k(&self) -> usize {
        self.cfgs.len()
    }

    pub fn total_steps(&self) -> usize {
        self.cfgs[0].total_steps(self.n_train[0])
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps()
    }

    /// Network `k`'s mean loss over its last (up to) 10 steps (NaN before the first).
    pub fn recent_loss(&self, k: usize) -> f64 {
        recent_mean(&self.losses[k])
    }

    /// The next step's forward pass: each network's loss (the mean squared error over its own
    /// batch) as a `(K, 1)` tensor that tracks gradients.
    fn losses_of_next_step(&self) -> Tensor<2> {
        let k_nets = self.k();
        let (c, px) = (self.cfgs[0].channels, self.cfgs[0].px);
        let mut xt = Vec::new();
        let mut eps = Vec::new();
        let mut t = Vec::new();
        let mut b = 0;
        for k in 0..k_nets {
            let cfg = &self.cfgs[k];
            let spe = cfg.steps_per_epoch(self.n_train[k]);
            let (epoch, j) = (self.step / spe, self.step % spe);
            let order = epoch_order(cfg.seed, epoch, self.n_train[k]);
            let rows = &order[j * cfg.batch..((j + 1) * cfg.batch).min(self.n_train[k])];
            let mut rng = derived_rng(cfg.seed, TAG_STEP, self.step as u64);
            let nb = noisy_batch(
                &self.x0[k],
                self.dim,
                rows,
                &self.sched,
                cfg.indexing,
                &mut rng,
            );
            b = nb.b;
            xt.extend(nb.xt);
            eps.extend(nb.eps);
            t.extend(nb.t_net);
        }
        let n = k_nets * b;
        let xt = Tensor::<4>::from_data(TensorData::new(xt, [n, c, px, px]), &self.device);
        let eps = Tensor::<4>::from_data(TensorData::new(eps, [n, c, px, px]), &self.device);
        let t = Tensor::<1, Int>::from_data(TensorData::new(t, [n]), &self.device);
        let pred = self.model.forward(xt, t);
        (pred - eps)
            .square()
            .reshape([k_nets, b * self.dim])
            .mean_dim(1)
    }

    /// One optimizer step of every network; returns their losses (before the update). A
    /// non-finite loss leaves every network's weights untouched.
    pub fn step(&mut self) -> Result<Vec<f32>, TrainError> {
        let per_net = self.losses_of_next_step();
        let values: Vec<f32> = per_net
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 losses");
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            let spe = self.cfgs[k].steps_per_epoch(self.n_train[k]);
            return Err(TrainError::NonFinite {
                loss: values[k],
                step: self.step + 1,
                epoch: self.step / spe,
                kept: format!("network {k} of the ensemble"),
            });
        }
        let grads = per_net.sum().backward();
        let g = grads_to_host(&self.model, &grads);
        drop(grads);
        let decay = self.cfgs[0].ema;
        self.adam.update(
            &self.cfgs[0],
            &mut self.params,
            &g,
            match (&mut self.ema, decay) {
                (Some(e), Some(d)) => Some((e.as_mut_slice(), d)),
                _ => None,
            },
        );
        let v: Vec<&[f32]> = self.params.iter().map(|(_, p)| p.as_slice()).collect();
        self.model = params_from_host(self.model.clone(), &v);
        self.step += 1;
        for (l, &v) in self.losses.iter_mut().zip(&values) {
            l.push(v);
        }
        Ok(values)
    }

    /// Network `k`'s slice of each stacked vector.
    fn slices<'a>(&self, stacked: impl Iterator<Item = &'a Vec<f32>>, k: usize) -> Vec<&'a [f32]> {
        let kn = self.k();
        stacked
            .map(|v| {
                let len = v.len() / kn;
                &v[k * len..(k + 1) * len]
            })
            .collect()
    }

    /// Network `k`'s current weights as an inference U-Net.
    pub fn model(&self, k: usize) -> UNet {
        let v = self.slices(self.params.iter().map(|(_, p)| p), k);
        params_from_host(self.template.clone(), &v)
    }

    /// Network `k`'s EMA weights as an inference U-Net, if the runs keep an EMA.
    pub fn ema_model(&self, k: usize) -> Option<UNet> {
        let e = self.ema.as_ref()?;
        let v = self.slices(e.iter(), k);
        Some(params_from_host(self.template.clone(), &v))
    }

    /// The weights network `k`'s snapshots sample from: EMA when kept, else the current ones.
    pub fn sampling_model(&self, k: usize) -> UNet {
        self.ema_model(k).unwrap_or_else(|| self.model(k))
    }

    /// Network `k`'s state as [`Trainer::state`] gives it (weights, Adam moments, EMA, step).
    pub fn state(&self, k: usize) -> crate::checkpoint::TrainingState {
        let own =
            |s: Vec<&[f32]>| -> Vec<Vec<f32>> { s.into_iter().map(<[f32]>::to_vec).collect() };
        crate::checkpoint::TrainingState {
            step: self.step,
            params: own(self.slices(self.params.iter().map(|(_, p)| p), k)),
            adam: HostAdam {
                step: self.adam.step,
                m: own(self.slices(self.adam.m.iter(), k)),
                v: own(self.slices(self.adam.v.iter(), k)),
            },
            ema: self.ema.as_ref().map(|e| own(self.slices(e.iter(), k))),
        }
    }
}

/// Trains K networks as one ensemble ([`EnsembleTrainer`]), calling `on_snapshot` right after
/// each optimizer step listed in `at` (as [`train_in_memory_with_snapshots`] does for one).
/// Returns each network's loss trace.
pub fn train_ensemble_with_snapshots(
    cfgs: &[TrainConfig],
    data: &[&ImageSet],
    device: &Device,
    progress: Option<&indicatif::ProgressBar>,
    at: &[usize],
    on_snapshot: &mut dyn FnMut(&EnsembleTrainer) -> Result<(), SnapshotError>,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut tr = EnsembleTrainer::new(cfgs, data, device)?;
    if let Some(pb) = progress {
        pb.set_length(tr.total_steps() as u64);
    }
    let mut snaps = Snapshots::new(at);
    while !tr.is_done() {
        tr.step().map_err(nothing_kept)?;
        if let Some(pb) = progress {
            pb.set_position(tr.step as u64);
        }
        snaps.at_step(tr.step, || {
            on_snapshot(&tr).map_err(|e| TrainError::Snapshot {
                step: tr.step,
                message: e.to_string(),
            })
        })?;
    }
    Ok(tr.losses)
}
