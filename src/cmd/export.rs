use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct ExportArgs {}

pub fn run(_args: ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff export` is not implemented yet")
}
