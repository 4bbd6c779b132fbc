//! DDPM training, sampling and checkpoints for memdiff, on burn (flex CPU by default; wgpu /
//! cuda behind features).

pub mod backend;
pub mod checkpoint;
pub mod sample;
pub mod train;
