//! Data for memdiff: Gaussian mixtures, MNIST from IDX files, `.npy` arrays, PNG grids, and the
//! small I/O helpers every command shares (atomic writes, strict TOML configs, run records).
//!
//! Pixel values live in `[0, 1]` (docs/METHOD.md §1); the network's `[-1, 1]` mapping belongs to the
//! diffusion crate.
//!
//! Entry points: [`source::read_source`] (a folder of PNG / JPEG, `.npz`, `.npy` or IDX, with
//! layout, fit and a content hash), [`export`] (PNG folders and `.npz` out), [`npy::read_images`] / [`npy::write_npy`], [`idx::read_images_any`] (any
//! supported file, by content), [`mnist::load_images`], [`gmm::GmmSpec`], [`png::write_grid`],
//! [`recipe::DataRecipe`]. Every fallible function returns a [`DataError`] whose message names
//! the file or setting and what to do.

pub mod atomic;
pub mod config;
pub mod error;
pub mod export;
pub mod gmm;
pub mod idx;
pub mod images;
pub mod mnist;
pub mod npy;
pub mod png;
pub mod progress;

pub use error::{check_side, DataError};
pub use gmm::{GmmComponent, GmmSpec};
pub use idx::{read_images_any, read_images_any_f64};
pub use images::{ImageSet, Pixel};
pub use mnist::Resize;
pub use recipe::DataRecipe;
pub mod quantize;
pub mod recipe;
pub mod reference;
pub mod seed;
pub mod source;
pub use source::{read_source, Fit, Layout, ReadOptions};
