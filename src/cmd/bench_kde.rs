//! `memdiff bench kde`.
use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct BenchKdeArgs {}

pub fn run(_args: BenchKdeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff bench kde` is not implemented yet")
}
