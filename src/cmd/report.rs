//! `memdiff report DIR`: the aggregated table, verdicts and plots of a sweep folder.

use anyhow::Context;
use clap::Args;
use memdiff_experiments::SweepDir;
use std::path::PathBuf;

/// Aggregate a sweep folder (its results.csv) into DIR/report/: summary.csv, summary.md, eta.csv
/// and the plots (SVG + PNG): P(Δ>0) and P(Δ_U>0) vs n with Wilson bands and the oracle / copy
/// null curves, Ê_OG vs n, η vs C, generated samples beside their nearest training images (a
/// labelled row per n); with a pairs.csv (`pair = true`), the two-training-sets table and
/// figures; and index.html, the whole report as one self-contained page (tables, every figure
/// embedded, the sweep's settings; no script, no network). Prints the Markdown table.
///
/// Example: memdiff report out/sweeps/quick
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A sweep folder (holding results.csv), or a results.csv file.
    #[arg(value_name = "DIR|FILE")]
    pub input: PathBuf,
    /// Where to write (default: DIR/report, or FILE's folder/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let (csv, root) = if args.input.is_dir() {
        (args.input.join("results.csv"), args.input.clone())
    } else {
        let root = args
            .input
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        (args.input.clone(), root)
    };
    let rows = memdiff_experiments::store::read_rows(&csv)
        .with_context(|| "reading the results table (run `memdiff sweep` first)".to_string())?;
    let dir = SweepDir::new(&root);
    let out = args.out.unwrap_or_else(|| dir.report_dir());
    let (md, files) = memdiff_experiments::run::report_rows(&dir, &rows, &out)
        .with_context(|| format!("writing the report into {}", out.display()))?;
    println!("{md}");
    eprintln!("report: {} files in {}", files.len(), out.display());
    Ok(())
}
