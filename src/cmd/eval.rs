use clap::Args;

/// (not implemented yet)
#[derive(Args, Debug)]
pub struct EvalArgs {}

pub fn run(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff eval` is not implemented yet")
}
