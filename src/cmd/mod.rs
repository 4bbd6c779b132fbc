//! One module per subcommand: its clap arguments and a `run` that calls into the crates.
pub mod audit;
pub mod bench;
pub mod bench_conv;
pub mod bench_kde;
pub mod bench_sample;
pub mod bench_train;
pub mod dae;
pub mod data;
pub mod eval;
pub mod export;
pub mod linear;
pub mod metric_json;
pub mod model;
pub mod pair;
pub mod report;
pub mod sample;
pub mod sweep;
pub mod train;

/// The first log line of a command that writes into a folder: which one and, for the default
/// path, that it is relative to the working folder (named in full).
pub fn log_output_folder(out: &std::path::Path, default: bool) {
    if default {
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|e| format!("(unknown: {e})"));
        tracing::info!(
            "output folder {} (the default, relative to the working folder {cwd})",
            out.display()
        );
    } else {
        tracing::info!("output folder {}", out.display());
    }
}
