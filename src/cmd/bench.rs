//! `memdiff bench ...`: throughput benchmarks. Each prints its figures; compare them with
//! `../shared/bench/torch_ref.py` run right before or after on the same idle machine.
use clap::{Args, Subcommand};

/// Throughput benchmarks (training step, sampling, KDE metric, convolutions).
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand, Debug)]
enum BenchWhat {
    /// Training steps of the U-Net per second (img/s).
    Train(super::bench_train::BenchTrainArgs),
    /// Batched ancestral sampling.
    Sample(super::bench_sample::BenchSampleArgs),
    /// The exact KDE metric on synthetic sets.
    Kde(super::bench_kde::BenchKdeArgs),
    /// The U-Net's 3×3 convolutions, each implementation side by side.
    Conv(super::bench_conv::BenchConvArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Train(a) => super::bench_train::run(a),
        BenchWhat::Sample(a) => super::bench_sample::run(a),
        BenchWhat::Kde(a) => super::bench_kde::run(a),
        BenchWhat::Conv(a) => super::bench_conv::run(a),
    }
}
