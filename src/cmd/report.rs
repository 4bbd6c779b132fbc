use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct ReportArgs {}

pub fn run(_args: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff report` is not implemented yet")
}
