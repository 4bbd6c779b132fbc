//! One row of `results.csv`: one (simulation, generator).
//!
//! The schema is `memdiff_metrics::summary::SimRow` (its module doc documents every column);
//! the sweep, the report and `memdiff eval summarize` all use it. In the sweep: reference rows
//! carry the s of the unit they sit beside (0 in a sweep without the model); `components` is 0
//! for MNIST; `seed` is the seed of the simulation's T draw (every other seed follows from the
//! config and the unit, see [`crate::grid::SimSeeds`]); `n_train` is the size of the T the
//! metric used (⌊0.9 n⌋ under papers-code); `train_seconds` and `final_loss` are NaN for
//! reference generators.

pub use memdiff_metrics::summary::{SimRow, HEADER as COLUMNS};
