//! DDPM training, sampling and checkpoints for memdiff, on burn (flex CPU by default; wgpu /
//! cuda behind features).

pub mod audit;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod export;
pub mod quality;
pub mod sample;
pub mod train;

pub use memdiff_model::{UNet, UNetConfig};
