use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct DataArgs {}

pub fn run(_args: DataArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff data` is not implemented yet")
}
