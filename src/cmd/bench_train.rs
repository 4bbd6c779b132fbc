//! `memdiff bench train`.
use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct BenchTrainArgs {}

pub fn run(_args: BenchTrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff bench train` is not implemented yet")
}
