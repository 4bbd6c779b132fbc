use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct TrainArgs {}

pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff train` is not implemented yet")
}
