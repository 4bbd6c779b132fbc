use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct ModelArgs {}

pub fn run(_args: ModelArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff model` is not implemented yet")
}
