//! The one error type of the metrics crate.

/// Everything that can go wrong in the metric, the statistics and the results table. Messages
/// name the offending set / field and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A set's flat data length is not `n * d`.
    #[error("{set} set: {len} values is not {n} samples x {d} pixels")]
    Shape {
        set: String,
        len: usize,
        n: usize,
        d: usize,
    },
    /// A set has no samples.
    #[error("{set} set is empty (it needs at least one sample)")]
    Empty { set: String },
    /// NaN or infinity in a set.
    #[error(
        "{set} set: sample {row}, pixel {pixel} is {value} (only finite values can be evaluated)"
    )]
    NonFinite {
        set: String,
        row: usize,
        pixel: usize,
        value: f64,
    },
    /// Sets with different pixel counts.
    #[error("{set} set has {got} pixels per sample but the original set has {expected} (all sets must have the same pixel count)")]
    PixelCount {
        set: String,
        expected: usize,
        got: usize,
    },
    /// Every pixel was constant over the original set.
    #[error("no usable pixel: all {skipped} pixels are constant over the original set (give a sigma floor, e.g. --min-std 0.01, or a fixed bandwidth)")]
    NoUsablePixels { skipped: usize },
    /// A bandwidth rule string or value that cannot be used.
    #[error("bad bandwidth {0:?}: expected std-over-n, std-n-pow-minus-1-over-d, silverman or fixed:VALUE with VALUE > 0")]
    Bandwidth(String),
    /// η needs E_OG(n_large) < E_OG(n_small).
    #[error("eta = -log(1 - E_OG(n_large)/E_OG(n_small)) needs the ratio below 1, got E_OG(n={n_large}) = {e_large} / E_OG(n={n_small}) = {e_small} = {ratio}")]
    EtaRatio {
        n_small: u64,
        n_large: u64,
        e_small: f64,
        e_large: f64,
        ratio: f64,
    },
    /// Any other invalid argument (sizes, options).
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing the results table.
    #[error("results table: {0}")]
    Csv(String),
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, MetricsError>;
