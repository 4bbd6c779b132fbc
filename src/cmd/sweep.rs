use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct SweepArgs {}

pub fn run(_args: SweepArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff sweep` is not implemented yet")
}
