//! Data for memdiff: Gaussian mixtures, MNIST from IDX files, `.npy` arrays, PNG grids, and the
//! small I/O helpers every command shares (atomic writes, strict TOML configs, run records).
//!
//! Pixel values live in `[0, 1]` (SPEC §1); the network's `[-1, 1]` mapping belongs to the
//! diffusion crate.

pub mod atomic;
pub mod config;
pub mod images;

pub use images::ImageSet;
pub mod quantize;
pub mod recipe;
pub mod reference;
