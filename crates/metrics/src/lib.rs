//! memdiff-metrics: the per-pixel KDE memorization metric of docs/METHOD.md §4 / §4b (exact and fast),
//! its brute-force reference and quadrature cross-check, the nearest-neighbour audit, the
//! two-training-sets test ([`pair`]), the
//! statistics over simulations (docs/METHOD.md §4, §5) and the `results.csv` schema.
//!
//! No deep-learning dependency: pure functions over row-major `(n, d)` slices of any
//! [`kde::Value`] (`f32`, `f64`, `u8`, ...).
//!
//! Typical use (one O per grid point, many (T, G)):
//! ```
//! use memdiff_metrics::kde::{KdeOptions, OriginalSet};
//! let o: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32) / 101.0).collect(); // 100 x 2
//! let t: Vec<f32> = (0..20).map(|i| ((i * 13 % 17) as f32) / 17.0).collect(); // 10 x 2
//! let g: Vec<f32> = vec![0.2, 0.4, 0.6, 0.8]; // 2 x 2
//! let orig = OriginalSet::new(&o, 100, 2, &KdeOptions::default()).unwrap();
//! let r = orig.evaluate(&t, 10, &g, 2).unwrap();
//! assert!((r.delta - (r.e_tg - r.e_og)).abs() < 1e-12);
//! ```

pub mod error;
mod fastexp;
pub mod kde;
pub mod naive;
pub mod nn;
pub mod pair;
pub mod quadrature;
pub mod quality;
pub mod stats;
pub mod summary;

pub use error::{MetricsError, Result};
pub use kde::{Bandwidth, KdeOptions, KdeResult, OriginalSet};
pub use summary::SimRow;
