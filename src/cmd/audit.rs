//! `memdiff eval --checkpoint DIR`: generate from a checkpoint and evaluate against its own
//! training set (owned by the sampling work, called from `eval`).

pub fn run(_args: &super::eval::EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`memdiff eval --checkpoint` is not implemented yet")
}
