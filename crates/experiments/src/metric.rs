//! The sweep's adapter over the metric (docs/METHOD.md §4): O's statistics prepared once, then E_TG, E_OG,
//! Δ, Δ_U for each (T, G), the nearest-neighbour ratios, and the sample quality of each G
//! against O's first rows (`memdiff_metrics::quality`, docs/METHOD.md §4.9). Everything the sweep asks of
//! `memdiff_metrics` goes through here.

use memdiff_data::{ImageSet, Pixel};
use memdiff_metrics::quality::{self, QualityOptions, QualityValues};
use memdiff_metrics::{kde, nn};

/// How the metric is set up for one protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSetup {
    /// Bandwidth rule name (`std-over-n`, ...).
    pub bandwidth: String,
    /// Floor every bandwidth at this value (quantisation step 1/255 under `dequantize = floor`).
    pub bandwidth_floor: Option<f64>,
    /// Multiply distances by sqrt(2π) (the papers' code).
    pub paper_scale: bool,
    /// Divide the per-pixel std of O by this before use (255 under papers-code, where O is raw).
    pub sigma_divisor: f64,
    /// Pixels left out of the metric (`memdiff_data::quantize::Decision::exclude`: those
    /// constant over the raw O when noise was added).
    pub exclude: Option<Vec<bool>>,
}

impl Default for MetricSetup {
    fn default() -> Self {
        Self {
            bandwidth: "std-over-n".into(),
            bandwidth_floor: None,
            paper_scale: false,
            sigma_divisor: 1.0,
            exclude: None,
        }
    }
}

impl MetricSetup {
    /// The setup for the quantised-data `policy` (its bandwidth floor and excluded pixels) with
    /// the bandwidth rule `bandwidth`; `papers_code` takes the papers' scale (O raw in [0, 255]).
    pub fn for_policy(
        bandwidth: &str,
        policy: &memdiff_data::quantize::Decision,
        papers_code: bool,
    ) -> Self {
        Self {
            bandwidth: bandwidth.to_string(),
            bandwidth_floor: policy.min_bandwidth(),
            exclude: policy.exclude(false),
            paper_scale: papers_code,
            sigma_divisor: if papers_code { 255.0 } else { 1.0 },
        }
    }
}

/// The numbers of one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MetricValues {
    pub e_tg: f64,
    pub e_og: f64,
    pub delta: f64,
    pub delta_unbiased: f64,
    pub pixels_used: usize,
    pub pixels_skipped: usize,
    /// Share of O's / T's self-term pairs that are exact ties (near 1: raw u8 data, docs/METHOD.md §4b).
    pub tie_share_oo: f64,
    pub tie_share_tt: f64,
}

/// Errors of the metric.
#[derive(Debug, thiserror::Error)]
#[error("metric: {0}")]
pub struct MetricError(pub String);

/// O's per-pixel statistics (sigma_i, sorted columns, S_OO, U_OO), computed once per O.
pub struct Prepared {
    inner: kde::OriginalSet,
    quality: Option<quality::Reference>,
}

impl Prepared {
    /// Attaches the quality reference ([`prepare_quality`]) to O's statistics.
    pub fn with_quality(mut self, q: Option<quality::Reference>) -> Self {
        self.quality = q;
        self
    }
}

/// The quality reference: O's first [`quality::REFERENCE_MAX`] rows, their Gaussian fit and
/// k-NN radii (k = 3), in the data's scale.
pub fn prepare_quality<V: Pixel>(o: &ImageSet<V>) -> Result<quality::Reference, MetricError> {
    quality::Reference::first_rows(&o.data, o.n, o.dim(), &QualityOptions::default()).map_err(err)
}

/// The quality of `g` against the prepared reference; all NaN without one or when G has no
/// more rows than k.
pub fn quality<G: Pixel>(p: &Prepared, g: &ImageSet<G>) -> Result<QualityValues, MetricError> {
    match &p.quality {
        Some(r) if g.n > r.options().k => r.evaluate(&g.data, g.n).map_err(err),
        _ => Ok(QualityValues::nan()),
    }
}

fn err(e: memdiff_metrics::error::MetricsError) -> MetricError {
    MetricError(e.to_string())
}

/// Prepares O for [`evaluate`] (docs/METHOD.md §4: sigma_i from O with N − 1, constant pixels skipped).
pub fn prepare<V: Pixel>(o: &ImageSet<V>, setup: &MetricSetup) -> Result<Prepared, MetricError> {
    let mut opts = kde::KdeOptions {
        bandwidth: setup.bandwidth.parse().map_err(err)?,
        paper_scale: setup.paper_scale,
        min_bandwidth: setup.bandwidth_floor,
        sigma_scale: 1.0 / setup.sigma_divisor,
        ..Default::default()
    };
    if !opts.keeps_constant_pixels() {
        opts.exclude = setup.exclude.clone();
    }
    let inner = kde::OriginalSet::new(&o.data, o.n, o.dim(), &opts).map_err(err)?;
    Ok(Prepared {
        inner,
        quality: None,
    })
}

/// E_TG, E_OG, Δ, Δ_U of (T, G) against the prepared O.
pub fn evaluate<T: Pixel, G: Pixel>(
    p: &Prepared,
    t: &ImageSet<T>,
    g: &ImageSet<G>,
) -> Result<MetricValues, MetricError> {
    let r = p.inner.evaluate(&t.data, t.n, &g.data, g.n).map_err(err)?;
    Ok(MetricValues {
        e_tg: r.e_tg,
        e_og: r.e_og,
        delta: r.delta,
        delta_unbiased: r.delta_unbiased,
        pixels_used: r.pixels_used,
        pixels_skipped: r.pixels_skipped,
        tie_share_oo: r.tie_share_oo,
        tie_share_tt: r.tie_share_tt,
    })
}

/// Nearest-neighbour summary of G against T: mean of d1/d2 and the fraction with d1/d2 < 1/3
/// (Carlini et al.), plus every generated image's nearest training index.
#[derive(Clone, Debug, PartialEq)]
pub struct NnValues {
    pub ratio_mean: f64,
    pub frac_memorized: f64,
    pub nearest: Vec<usize>,
}

pub fn nearest<G: Pixel, T: Pixel>(
    g: &ImageSet<G>,
    t: &ImageSet<T>,
) -> Result<NnValues, MetricError> {
    let nb = nn::nearest_neighbours(&t.data, t.n, &g.data, g.n, g.dim()).map_err(err)?;
    let s = nn::summarize(&nb);
    Ok(NnValues {
        ratio_mean: s.ratio_mean,
        frac_memorized: s.frac_memorized,
        nearest: nb.iter().map(|x| x.index).collect(),
    })
}
