use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff bench` is not implemented yet")
}
