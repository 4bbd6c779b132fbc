//! `memdiff bench sample`.
use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct BenchSampleArgs {}

pub fn run(_args: BenchSampleArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff bench sample` is not implemented yet")
}
