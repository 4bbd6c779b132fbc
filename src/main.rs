//! `memdiff`: measure when diffusion models memorize their training data.
//!
//! The binary is thin: it parses arguments, sets up logging and calls into the crates.

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the U-Net allocates and frees multi-megabyte tensors at
/// every layer, and glibc hands those back to the kernel and faults them in again each time
/// (docs/BENCHMARKS.md, "Host kernels").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;

/// Measure when diffusion models memorize their training data.
///
/// Train DDPM U-Nets on Gaussian mixtures and MNIST, sample them with s diffusion steps, and
/// measure memorization with the per-pixel KDE metric (E_TG, E_OG, Δ) — read against the null
/// curves of reference generators (docs/METHOD.md §4b).
///
/// Example: memdiff sweep --config configs/quick.toml
#[derive(Parser, Debug)]
#[command(name = "memdiff", version, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides both -v and -q.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make data sets: Gaussian mixtures and MNIST subsets as .npy (+ PNG grid).
    #[command(
        after_help = "Examples:\n  memdiff data gmm --px 8 --components 3 --n 10000 --seed 1 --out O.npy --png O.png\n  memdiff data mnist --px 16 --n 1000 --seed 1 --out M.npy"
    )]
    Data(cmd::data::DataArgs),
    /// Memorization metric E_TG, E_OG, Δ for sets of images or a checkpoint; summaries of results.
    #[command(
        after_help = "Examples:\n  memdiff eval --original O.npy --train T.npy --generated G.npy --nn\n  memdiff eval --original O.npy --train T.npy --generator oracle --json\n  memdiff eval --checkpoint checkpoints/g1 --generate 10 --nn\n  memdiff eval --checkpoint checkpoints/g1 --generate 100 --sampler ddim --sampling-steps 50\n  memdiff eval summarize out/sweeps/quick/results.csv"
    )]
    Eval(cmd::eval::EvalArgs),
    /// Train a DDPM U-Net.
    #[command(
        after_help = "Example:\n  memdiff train --data gmm --n 1000 --steps 200 --epochs 10 --out checkpoints/g1"
    )]
    Train(cmd::train::TrainArgs),
    /// Sample images from a trained checkpoint.
    #[command(
        after_help = "Example:\n  memdiff sample --checkpoint checkpoints/g1 --n 64 --out G.npy --png G.png"
    )]
    Sample(cmd::sample::SampleArgs),
    /// Facts about the U-Net (parameter count, multiply-adds).
    #[command(after_help = "Example:\n  memdiff model info --px 8 --base-channels 64")]
    Model(cmd::model::ModelArgs),
    /// Export a checkpoint's weights as safetensors.
    #[command(
        after_help = "Example:\n  memdiff export --checkpoint checkpoints/g1 --out model.safetensors"
    )]
    Export(cmd::export::ExportArgs),
    /// Throughput benchmarks (training step, sampling, KDE, convolutions).
    #[command(
        after_help = "Examples:\n  memdiff bench train --px 8 --batch 128 --base-channels 64 --steps 5 --warmup 1\n  memdiff bench sample --px 16 --n 10 --steps 100\n  memdiff bench kde --n-original 100000 --n-train 10000 --g 10 --d 256\n  memdiff bench conv --px 8 --batch 128 --device wgpu"
    )]
    Bench(cmd::bench::BenchArgs),
    /// Sweep over n, s, C and simulations (resumable, shardable).
    #[command(
        after_help = "Examples:\n  memdiff sweep --config configs/quick.toml\n  memdiff sweep --config configs/paper-gmm-d64.toml --shard 0/16 --out out/d64/shard-0\n  memdiff sweep merge out/d64/shard-* --out out/d64/all"
    )]
    Sweep(cmd::sweep::SweepArgs),
    /// Aggregate a sweep folder into tables and plots.
    #[command(after_help = "Example:\n  memdiff report out/sweeps/quick")]
    Report(cmd::report::ReportArgs),
    /// The linear one-step diffusion model: theory, Monte Carlo, sweeps.
    #[command(
        after_help = "Examples:\n  memdiff linear theory --d 100 --n 1000 --lambda-hat 0.1 --json\n  memdiff linear simulate --data-model reverse --d 100 --n 1000 --lambda-hat 0.1 --sims 500 --seed 1\n  memdiff linear sweep --config configs/linear.toml --out out/linear"
    )]
    Linear(cmd::linear::LinearArgs),
    /// The two-layer denoising autoencoder of seed 002: density over training time, mode and
    /// model collapse (docs/METHOD.md §8).
    #[command(
        after_help = "Examples:\n  memdiff dae run --config configs/dae-gmm-relu.toml --out out/dae/gmm-relu\n  memdiff dae run --config configs/dae-mnist7.toml --out out/dae/mnist7 --json\n  memdiff dae closed-form --m 0.3 --steps 20"
    )]
    Dae(cmd::dae::DaeArgs),
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

/// mimalloc 3.3.2's option `purge_delay`: its place in `mi_option_t` of the bundled
/// `mimalloc.h`, valid for that version only (checked at run time).
const MI_VERSION: i32 = 30302;
const MI_PURGE_DELAY: i32 = 15;

/// Keeps freed memory in the process instead of returning it to the kernel after a delay
/// (`purge_delay = -1`). At px 32 every activation is a 16–64 MB block
/// that is freed and allocated again within the step: with the defaults each came back as fresh
/// zeroed pages (about 50,000 page faults per step at batch 64, 14 % of the CPU time in the
/// kernel's `clear_page`; docs/BENCHMARKS.md). The process keeps its peak memory.
///
/// Returns the linked mimalloc's version when it is not the one the option index is valid for
/// (then nothing is set; `main` logs it).
fn tune_allocator() -> Option<i32> {
    use libmimalloc_sys::{mi_option_set, mi_version};
    // SAFETY: plain calls into mimalloc, before any other thread exists.
    unsafe {
        let v = mi_version();
        if v == MI_VERSION {
            mi_option_set(MI_PURGE_DELAY, -1);
            None
        } else {
            Some(v)
        }
    }
}

fn main() {
    let skipped = tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    if let Some(v) = skipped {
        tracing::warn!(
            "mimalloc {v} is linked, not {MI_VERSION}: its purge_delay option was not set (the option index is valid for {MI_VERSION} only; training at px 32 may fault its memory in again at every step)"
        );
    }
    // Every command runs on a thread of the rayon pool that burn's CPU backend and the GEMMs use:
    // called from outside it, each tensor op would hand its work to the pool and wait for it
    // (a futex round trip per op, about a third of a tiny training step: docs/BENCHMARKS.md,
    // "Many small networks at once").
    let pool = match rayon::ThreadPoolBuilder::new().build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start the worker threads: {e}");
            std::process::exit(1);
        }
    };
    let result = pool.install(move || run(cli.command));
    if let Err(e) = result {
        // One line: the whole context chain, outermost first.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(a) => cmd::data::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Sample(a) => cmd::sample::run(a),
        Command::Model(a) => cmd::model::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Linear(a) => cmd::linear::run(a),
        Command::Dae(a) => cmd::dae::run(a),
    }
}
