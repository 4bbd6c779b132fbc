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
//!
//! Modules: `config` (settings, errors), `rng` (seeded draws), `params` (parameters as flat
//! vectors), `optim` (Adam, EMA), `trainer` (the loop's state and step), `run` (in-memory and
//! checkpointed runs).

mod config;
mod ensemble;
mod optim;
mod params;
mod rng;
mod run;
mod trainer;

pub use config::*;
pub use ensemble::*;
pub use optim::*;
pub use params::*;
pub use rng::*;
pub use run::*;
pub use trainer::*;
