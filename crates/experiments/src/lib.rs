//! memdiff-experiments: sweeps over n, s, C and simulations — resumable, sharded — and their
//! reports (tables, calibrated verdicts, plots).
//!
//! - [`config::SweepConfig`]: the strict settings file (`configs/*.toml`);
//! - [`grid`]: the units of work, their seeds, `--shard i/k`;
//! - [`sim`]: one unit (draw O and T, generators, metric), the network behind [`sim::ModelRunner`];
//! - [`pair`]: the two-training-sets test (`pair = true`): `pairs.csv` rows and their table;
//! - [`store`]: the sweep folder (one atomic file per finished unit, results.csv, merge);
//! - [`probe`]: one training run measured at snapshots (`memdiff train --eval-at`);
//! - [`batch`]: the sweep's networks trained as batched ensembles ([`batch::Ensembler`]);
//! - [`trajectory`]: memorization along training (onsets, slopes, the loss probe); [`axes`]: s
//!   and C as axes of it (the best s per n, η per snapshot);
//! - [`run`]: the driver; [`report`] and [`plots`]: the aggregated table and figures;
//!   [`html`]: the report as one page.
//!
//! No deep-learning framework here: the binary implements [`sim::ModelRunner`] over burn.

pub mod axes;
pub mod batch;
pub mod config;
pub mod grid;
pub mod html;
pub mod metric;
pub mod pair;
pub mod plots;
pub mod probe;
pub mod report;
pub mod row;
pub mod run;
pub mod samples;
pub mod sim;
pub mod store;
pub mod trajectory;

pub use config::SweepConfig;
pub use row::SimRow;
pub use run::{report_dir, run_one, run_sweep, run_sweep_concurrent, RunOptions, SweepOutcome};
pub use sim::{ModelJob, ModelOutput, ModelRunner};
pub use store::SweepDir;
