use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct SampleArgs {}

pub fn run(_args: SampleArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff sample` is not implemented yet")
}
