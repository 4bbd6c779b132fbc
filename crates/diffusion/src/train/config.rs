//! Settings of a training run ([`TrainConfig`], TOML keys), its errors and its result.

use crate::checkpoint;
use memdiff_model::{ModelError, UNet, UNetConfig};
use memdiff_schedule::{BetaSchedule, Indexing};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// The optimizer: `adam` (default) or `sgd` (with `momentum`; Bonnaire et al.'s runs).
    pub optimizer: Optimizer,
    /// Learning rate (Adam's or SGD's). Default 2e-4.
    pub lr: f64,
    /// SGD momentum μ (PyTorch's: `buf = μ·buf + g`, `p -= lr·buf`, no dampening). Default 0.9;
    /// ignored by Adam.
    pub momentum: f64,
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
            optimizer: Optimizer::Adam,
            lr: 2e-4,
            momentum: 0.9,
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

/// Which update the trainer applies to the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam (PyTorch semantics; `adam_beta1`, `adam_beta2`, `adam_eps`).
    #[default]
    Adam,
    /// Stochastic gradient descent with heavy-ball momentum (`momentum`).
    Sgd,
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

pub(crate) fn setting(field: &'static str, value: impl ToString, fix: &'static str) -> TrainError {
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
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(setting(
                "momentum",
                self.momentum,
                "SGD's momentum must lie in [0, 1), e.g. 0.95",
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
