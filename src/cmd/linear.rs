use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct LinearArgs {}

pub fn run(_args: LinearArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff linear` is not implemented yet")
}
