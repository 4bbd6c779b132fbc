//! One module per subcommand: its clap arguments and a `run` that calls into the crates.
pub mod audit;
pub mod bench;
pub mod bench_conv;
pub mod bench_kde;
pub mod bench_sample;
pub mod bench_train;
pub mod dae;
pub mod data;
pub mod eval;
pub mod export;
pub mod linear;
pub mod model;
pub mod report;
pub mod sample;
pub mod sweep;
pub mod train;
