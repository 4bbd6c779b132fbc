//! `memdiff`: measure when diffusion models memorize their training data.
//!
//! The binary is thin: it parses arguments, sets up logging and calls into the crates.

use clap::{Parser, Subcommand};

mod cmd;

/// Measure when diffusion models memorize their training data.
///
/// Train DDPM U-Nets on Gaussian mixtures and MNIST, sample them with s diffusion steps, and
/// measure memorization with the per-pixel KDE metric (E_TG, E_OG, Δ) — read against the null
/// curves of reference generators (SPEC §4b).
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
    Data(cmd::data::DataArgs),
    /// Memorization metric E_TG, E_OG, Δ for sets of images or a checkpoint; summaries of results.
    Eval(cmd::eval::EvalArgs),
    /// Train a DDPM U-Net.
    Train(cmd::train::TrainArgs),
    /// Sample images from a trained checkpoint.
    Sample(cmd::sample::SampleArgs),
    /// Facts about the U-Net (parameter count, multiply-adds).
    Model(cmd::model::ModelArgs),
    /// Export a checkpoint's weights as safetensors.
    Export(cmd::export::ExportArgs),
    /// Throughput benchmarks (training step, sampling, KDE).
    Bench(cmd::bench::BenchArgs),
    /// Sweep over n, s, C and simulations (resumable, shardable).
    Sweep(cmd::sweep::SweepArgs),
    /// Aggregate a sweep folder into tables and plots.
    Report(cmd::report::ReportArgs),
    /// The linear one-step diffusion model: theory, Monte Carlo, sweeps.
    Linear(cmd::linear::LinearArgs),
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

fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
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
    };
    if let Err(e) = result {
        // One line: the whole context chain, outermost first.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
