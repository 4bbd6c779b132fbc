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

/// How image files are read (`memdiff_data::source`): the flags shared by every command that
/// takes data (`eval`, `train`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReadArgs {
    /// Axis order of a rank-4 array: nchw (n, c, h, w) or nhwc (n, h, w, c). Default: inferred
    /// where only one of axis 1 and axis 3 is 1 or 3 (e.g. (n, 32, 32, 3) is nhwc), else an error.
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<memdiff_data::Layout>,
    /// Array of a .npz to read (default arr_0, else its only array).
    #[arg(long, value_name = "NAME")]
    pub npz_array: Option<String>,
    /// Read the subfolders of an image folder too (files sorted by their relative path).
    #[arg(long)]
    pub recursive: bool,
    /// Bring every image to --px x --px: resize (whole image) or crop (centred square, then
    /// resize). Filter: triangle (bilinear, antialiased when shrinking), values clamped to [0, 1].
    #[arg(long, value_name = "HOW")]
    pub fit: Option<memdiff_data::Fit>,
}

impl ReadArgs {
    /// The reading options, with the side `px` that a fit brings the images to.
    pub fn options(&self, px: Option<usize>) -> memdiff_data::ReadOptions {
        let fit = self.fit.unwrap_or_default();
        memdiff_data::ReadOptions {
            layout: self.layout.unwrap_or_default(),
            array: self.npz_array.clone(),
            recursive: self.recursive,
            fit,
            px: if fit == memdiff_data::Fit::None {
                None
            } else {
                px
            },
        }
    }

    /// Whether any flag is given.
    pub fn any(&self) -> bool {
        self.layout.is_some() || self.npz_array.is_some() || self.recursive || self.fit.is_some()
    }
}
