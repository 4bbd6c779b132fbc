//! THE results table (`results.csv`): one row per simulation, written by the sweep and read by
//! `memdiff eval summarize` and the report.
//!
//! ## Columns, in this order
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `data` | text | `gmm` or `mnist` (data set) |
//! | `px` | int | image side (d = px² for one channel) |
//! | `d` | int | pixels per sample |
//! | `components` | int | GMM components C (0 for MNIST) |
//! | `n` | int | training-set size n of the grid point |
//! | `steps` | int | diffusion steps s (of the model the row belongs to; reference rows carry the s of the model grid point they sit beside) |
//! | `generator` | text | `model`, `oracle`, `copy` or `copy+noise:SIGMA` |
//! | `protocol` | text | `default` (one scale for all sets) or `papers-code` (docs/METHOD.md §5) |
//! | `sim` | int | simulation index at this grid point |
//! | `seed` | int | seed of the simulation |
//! | `n_original` | int | N, size of O |
//! | `n_train` | int | size of the T used in E_TG (0.9 n under `papers-code`) |
//! | `n_generated` | int | g |
//! | `bandwidth` | text | rule, as `std-over-n` / `std-n-pow-minus-1-over-d` / `silverman` / `fixed:V` |
//! | `dequantized` | text | `none`, `uniform` (U(0, 1/255) noise) or `floor` (eps ≥ 1/255) |
//! | `e_tg`, `e_og` | float | distances (docs/METHOD.md §4; units as the protocol, see `scale` in run.toml) |
//! | `delta` | float | `e_tg - e_og` (the papers' Δ) |
//! | `delta_unbiased` | float | Δ_U of docs/METHOD.md §4b (NaN if n_train = 1) |
//! | `nn_ratio_mean` | float | mean nearest/second-nearest distance ratio (NaN if not computed) |
//! | `nn_frac_memorized` | float | fraction of G with ratio < 1/3 (NaN if not computed) |
//! | `pixels_used`, `pixels_skipped` | int | usable / constant pixels |
//! | `train_seconds` | float | training wall time (NaN or empty for reference generators) |
//! | `final_loss` | float | last training loss (NaN or empty for reference generators) |
//! | `train_step` | int | optimizer step of the training snapshot the model row was sampled at (0 for reference generators, which do not depend on training) |
//! | `sampler` | text | how the model row was sampled, e.g. `ddpm/clipped-x0` or `ddim:50:eta0/clipped-x0` (`-` for reference generators) |
//! | `frechet` | float | Fréchet distance of the Gaussian fits of G and of O's first rows ([`crate::quality`], docs/METHOD.md §4.9) |
//! | `kid`, `kid_se` | float | KID (unbiased MMD², cubic kernel) and its spread over subsets |
//! | `precision`, `recall` | float | k-NN precision / recall of G against O's first rows (k = 3) |
//! | `density`, `coverage` | float | density / coverage (Naeem et al.), same k |
//! | `train_batch` | int | images per optimizer step the network trained with, min(batch, n) (0 for reference generators) |
//! | `loss_train_aLL`, `loss_held_aLL` (+ `_se`) | float | the loss probe (model rows of sweeps with `loss_probe`, else NaN): the denoising loss at ᾱ ≈ 0.LL (98, 80, 50: [`PROBE_LEVELS`]) of the snapshot's weights on the n training images and on held-out images, mean over images and its standard error |
//!
//! Files written before `train_step` and `sampler` existed (the first 25 columns only) are read
//! with `train_step = 0` and `sampler = -`; files written before the quality columns (27
//! columns) with NaN quality; files written before the loss probe (34 columns) with
//! `train_batch = 0` and NaN losses.
//!
//! Floats may be written as `NaN` or left empty (read as NaN). Use [`write_csv`] / [`read_csv`]
//! (or serde + the `csv` crate with [`SimRow`]; the header is [`HEADER`]).
//!
//! ## Aggregation ([`summarize`])
//! Rows are grouped by every settings column, i.e. all but `sim`, `seed` and the measured
//! columns. Per group: `m`, P(Δ > 0) and P(Δ_U > 0) with 95 % Wilson intervals, mean ± standard
//! error of `e_tg`, `e_og`, `delta`, `delta_unbiased`, of Ê_OG and Ê_TG (each row's value
//! divided by the group mean at the smallest `n` of its *family*: the rows sharing every
//! settings column except `n` and `n_train`), the mean `nn_frac_memorized`, and — for
//! generators other than the oracle — a Mann–Whitney comparison of the group's Δ with the
//! oracle group of the same settings (docs/METHOD.md §4b: read the model against the oracle). [`eta`] gives
//! η per family from the smallest and largest `n`.
//!
//! The oracle group of a model group is the one with the same settings, `train_step = 0` and
//! `sampler = -` (references are computed once per O and T). Per group also: f_mem, the pooled
//! fraction of generated samples with d1/d2 < 1/3 with its Wilson interval, the ratio of the
//! group's mean E_OG to its oracle group's, and the three-way [`Verdict`].

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{MetricsError, Result};
use crate::stats::{self, MannWhitney, MeanSe, Proportion};

/// The header line, in column order.
pub const HEADER: [&str; 47] = [
    "data",
    "px",
    "d",
    "components",
    "n",
    "steps",
    "generator",
    "protocol",
    "sim",
    "seed",
    "n_original",
    "n_train",
    "n_generated",
    "bandwidth",
    "dequantized",
    "e_tg",
    "e_og",
    "delta",
    "delta_unbiased",
    "nn_ratio_mean",
    "nn_frac_memorized",
    "pixels_used",
    "pixels_skipped",
    "train_seconds",
    "final_loss",
    "train_step",
    "sampler",
    "frechet",
    "kid",
    "kid_se",
    "precision",
    "recall",
    "density",
    "coverage",
    "train_batch",
    "loss_train_a98",
    "loss_train_a98_se",
    "loss_held_a98",
    "loss_held_a98_se",
    "loss_train_a80",
    "loss_train_a80_se",
    "loss_held_a80",
    "loss_held_a80_se",
    "loss_train_a50",
    "loss_train_a50_se",
    "loss_held_a50",
    "loss_held_a50_se",
];

/// The loss probe at one level: (training loss, its s.e., held-out loss, its s.e.).
pub type ProbeLevel = (f64, f64, f64, f64);

/// The target ᾱ of the loss-probe columns, in column order (`loss_*_a98` is ᾱ ≈ 0.98).
pub const PROBE_LEVELS: [f64; 3] = [0.98, 0.8, 0.5];

/// Columns of files written before `train_step` and `sampler` existed.
const LEGACY_COLUMNS: usize = 25;
/// Columns of files written before the quality columns existed.
const PRE_QUALITY_COLUMNS: usize = 27;
/// Columns of files written before `train_batch` and the loss-probe columns existed.
const PRE_PROBE_COLUMNS: usize = 34;

fn nan() -> f64 {
    f64::NAN
}

fn dash() -> String {
    "-".into()
}

fn f64_or_nan<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<f64, D::Error> {
    let s = String::deserialize(de)?;
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    t.parse::<f64>()
        .map_err(|_| serde::de::Error::custom(format!("not a number: {t:?}")))
}

/// One simulation (one row of `results.csv`); see the module doc for the columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimRow {
    pub data: String,
    pub px: u32,
    pub d: u32,
    pub components: u32,
    pub n: u64,
    pub steps: u32,
    pub generator: String,
    pub protocol: String,
    pub sim: u64,
    pub seed: u64,
    pub n_original: u64,
    pub n_train: u64,
    pub n_generated: u64,
    pub bandwidth: String,
    pub dequantized: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub e_tg: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub e_og: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub delta: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub delta_unbiased: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub nn_ratio_mean: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub nn_frac_memorized: f64,
    pub pixels_used: u64,
    pub pixels_skipped: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_seconds: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub final_loss: f64,
    #[serde(default)]
    pub train_step: u64,
    #[serde(default = "dash")]
    pub sampler: String,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub frechet: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub kid: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub kid_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub precision: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub recall: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub density: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub coverage: f64,
    #[serde(default)]
    pub train_batch: u64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a98: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a98_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a98: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a98_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a80: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a80_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a80: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a80_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a50: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_train_a50_se: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a50: f64,
    #[serde(default = "nan", deserialize_with = "f64_or_nan")]
    pub loss_held_a50_se: f64,
}

impl Default for SimRow {
    /// Empty text, zero counts, NaN measurements: for building rows field by field.
    fn default() -> Self {
        Self {
            data: String::new(),
            px: 0,
            d: 0,
            components: 0,
            n: 0,
            steps: 0,
            generator: String::new(),
            protocol: String::new(),
            sim: 0,
            seed: 0,
            n_original: 0,
            n_train: 0,
            n_generated: 0,
            bandwidth: String::new(),
            dequantized: String::new(),
            e_tg: f64::NAN,
            e_og: f64::NAN,
            delta: f64::NAN,
            delta_unbiased: f64::NAN,
            nn_ratio_mean: f64::NAN,
            nn_frac_memorized: f64::NAN,
            pixels_used: 0,
            pixels_skipped: 0,
            train_seconds: f64::NAN,
            final_loss: f64::NAN,
            train_step: 0,
            sampler: String::new(),
            frechet: f64::NAN,
            kid: f64::NAN,
            kid_se: f64::NAN,
            precision: f64::NAN,
            recall: f64::NAN,
            density: f64::NAN,
            coverage: f64::NAN,
            train_batch: 0,
            loss_train_a98: f64::NAN,
            loss_train_a98_se: f64::NAN,
            loss_held_a98: f64::NAN,
            loss_held_a98_se: f64::NAN,
            loss_train_a80: f64::NAN,
            loss_train_a80_se: f64::NAN,
            loss_held_a80: f64::NAN,
            loss_held_a80_se: f64::NAN,
            loss_train_a50: f64::NAN,
            loss_train_a50_se: f64::NAN,
            loss_held_a50: f64::NAN,
            loss_held_a50_se: f64::NAN,
        }
    }
}

impl SimRow {
    /// Sets the loss-probe columns: (mean, s.e.) per level of [`PROBE_LEVELS`], on the training
    /// images and on the held-out images.
    pub fn set_probe(&mut self, train: &[(f64, f64)], held: &[(f64, f64)]) {
        let at = |v: &[(f64, f64)], i: usize| v.get(i).copied().unwrap_or((f64::NAN, f64::NAN));
        (self.loss_train_a98, self.loss_train_a98_se) = at(train, 0);
        (self.loss_held_a98, self.loss_held_a98_se) = at(held, 0);
        (self.loss_train_a80, self.loss_train_a80_se) = at(train, 1);
        (self.loss_held_a80, self.loss_held_a80_se) = at(held, 1);
        (self.loss_train_a50, self.loss_train_a50_se) = at(train, 2);
        (self.loss_held_a50, self.loss_held_a50_se) = at(held, 2);
    }

    /// The loss-probe columns as (train mean, train s.e., held-out mean, held-out s.e.) per
    /// level of [`PROBE_LEVELS`].
    pub fn probe(&self) -> [ProbeLevel; 3] {
        [
            (
                self.loss_train_a98,
                self.loss_train_a98_se,
                self.loss_held_a98,
                self.loss_held_a98_se,
            ),
            (
                self.loss_train_a80,
                self.loss_train_a80_se,
                self.loss_held_a80,
                self.loss_held_a80_se,
            ),
            (
                self.loss_train_a50,
                self.loss_train_a50_se,
                self.loss_held_a50,
                self.loss_held_a50_se,
            ),
        ]
    }

    /// Sets the quality columns from one evaluation.
    pub fn set_quality(&mut self, q: &crate::quality::QualityValues) {
        self.frechet = q.frechet;
        self.kid = q.kid;
        self.kid_se = q.kid_se;
        self.precision = q.precision;
        self.recall = q.recall;
        self.density = q.density;
        self.coverage = q.coverage;
    }
}

/// Writes the header and `rows` as CSV.
pub fn write_csv<W: Write>(w: W, rows: &[SimRow]) -> Result<()> {
    let mut wr = csv::WriterBuilder::new().has_headers(false).from_writer(w);
    wr.write_record(HEADER)
        .map_err(|e| MetricsError::Csv(e.to_string()))?;
    for r in rows {
        wr.serialize(r)
            .map_err(|e| MetricsError::Csv(e.to_string()))?;
    }
    wr.flush().map_err(|e| MetricsError::Csv(e.to_string()))
}

/// Reads a results table. The header must be exactly [`HEADER`] (an older or foreign file is
/// refused with the first differing column named); errors name the line.
pub fn read_csv<R: Read>(r: R) -> Result<Vec<SimRow>> {
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(r);
    let hdr = rd
        .headers()
        .map_err(|e| MetricsError::Csv(e.to_string()))?
        .clone();
    let got: Vec<&str> = hdr.iter().collect();
    if got != HEADER
        && ![LEGACY_COLUMNS, PRE_QUALITY_COLUMNS, PRE_PROBE_COLUMNS]
            .iter()
            .any(|&k| got == HEADER[..k])
    {
        let i = got
            .iter()
            .zip(HEADER.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(HEADER.len()));
        return Err(MetricsError::Csv(format!(
            "header column {} is {:?}, expected {:?} (the columns must be exactly: {})",
            i + 1,
            got.get(i).copied().unwrap_or("<missing>"),
            HEADER.get(i).copied().unwrap_or("<none>"),
            HEADER.join(",")
        )));
    }
    let mut rows = Vec::new();
    for (i, rec) in rd.deserialize::<SimRow>().enumerate() {
        let row = rec.map_err(|e| MetricsError::Csv(format!("line {}: {e}", i + 2)))?;
        rows.push(row);
    }
    Ok(rows)
}

/// The settings of a group (every column but `sim`, `seed` and the measurements).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    pub data: String,
    pub px: u32,
    pub d: u32,
    pub components: u32,
    pub steps: u32,
    pub protocol: String,
    pub n_original: u64,
    pub n_generated: u64,
    pub bandwidth: String,
    pub dequantized: String,
    pub generator: String,
    pub sampler: String,
    pub n: u64,
    pub n_train: u64,
    pub train_step: u64,
}

impl GroupKey {
    fn of(r: &SimRow) -> Self {
        GroupKey {
            data: r.data.clone(),
            px: r.px,
            d: r.d,
            components: r.components,
            steps: r.steps,
            protocol: r.protocol.clone(),
            n_original: r.n_original,
            n_generated: r.n_generated,
            bandwidth: r.bandwidth.clone(),
            dequantized: r.dequantized.clone(),
            generator: r.generator.clone(),
            sampler: r.sampler.clone(),
            n: r.n,
            n_train: r.n_train,
            train_step: r.train_step,
        }
    }
    /// The family: the key without `n`, `n_train` and `train_step` (for Ê and η; the
    /// training step differs between n when training is a fixed number of epochs).
    fn family(&self) -> GroupKey {
        GroupKey {
            n: 0,
            n_train: 0,
            train_step: 0,
            ..self.clone()
        }
    }
    /// The same settings with the oracle generator (which has no training step or sampler).
    pub fn oracle(&self) -> GroupKey {
        GroupKey {
            generator: "oracle".into(),
            sampler: dash(),
            train_step: 0,
            ..self.clone()
        }
    }
}

/// Comparison of a group's Δ with the oracle's at the same settings (two-sided Mann–Whitney).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OracleComparison {
    pub test: MannWhitney,
    /// The smallest p the test can give for these two group sizes
    /// ([`stats::mann_whitney_min_p`]).
    pub min_p: f64,
    /// `towards copying` (Δ stochastically smaller than the oracle's, p < [`stats::ALPHA`]),
    /// `away from copying` (larger, p < ALPHA), `indistinguishable`, or [`CANNOT_DECIDE`] when
    /// the groups are too small for any p below ALPHA (2 simulations against 2: p ≥ 0.245
    /// whatever the values).
    pub verdict: String,
}

/// The Δ-vs-oracle verdict of groups too small for the test to reach [`stats::ALPHA`].
pub const CANNOT_DECIDE: &str = "cannot decide (too few simulations)";

/// Aggregates of one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSummary {
    pub key: GroupKey,
    pub m: usize,
    /// P(Δ > 0) with its Wilson interval.
    pub p_delta: Proportion,
    /// P(Δ_U > 0) over the rows with a finite Δ_U.
    pub p_delta_unbiased: Proportion,
    pub e_tg: MeanSe,
    pub e_og: MeanSe,
    pub delta: MeanSe,
    pub delta_unbiased: MeanSe,
    /// E_OG / mean E_OG at the family's smallest n.
    pub ehat_og: MeanSe,
    pub ehat_tg: MeanSe,
    /// The smallest n of the family (the Ê reference).
    pub n0: u64,
    pub nn_frac_memorized: MeanSe,
    /// f_mem: generated samples with d1/d2 < 1/3 over all generated samples of the group
    /// (pooled over simulations), with its Wilson interval; `m = 0` without nearest neighbours.
    pub f_mem: Proportion,
    /// Mean E_OG over the oracle group's mean E_OG (same O and T draws); `None` without one.
    pub e_og_vs_oracle: Option<f64>,
    /// Model (or copy) vs oracle at the same settings; `None` for the oracle or without one.
    pub vs_oracle: Option<OracleComparison>,
    /// Means ± s.e. of the quality columns.
    pub quality: QualitySummary,
    /// The oracle group's mean precision (the reading's null); `None` without one.
    pub oracle_precision: Option<f64>,
    /// Mean Fréchet distance over the oracle group's; `None` without one.
    pub frechet_vs_oracle: Option<f64>,
    /// Whether the group is at the data's quality ([`at_data_quality`]); `None` for the oracle
    /// or without one.
    pub data_quality: Option<bool>,
    /// The three-way reading of a model group ([`Verdict`]); `None` for reference generators.
    pub verdict: Option<Verdict>,
}

/// Means ± s.e. of a group's quality columns (NaN rows, from files without them, left out).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualitySummary {
    pub frechet: MeanSe,
    pub kid: MeanSe,
    pub precision: MeanSe,
    pub recall: MeanSe,
    pub density: MeanSe,
    pub coverage: MeanSe,
}

/// Thresholds of the three-way [`Verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictRule {
    /// f_mem at or above this is copying (default 0.5, the onset threshold of τ_mem).
    pub copy_fraction: f64,
    /// Without quality columns (older results): E_OG within `(1 + quality_tolerance)` times the
    /// oracle's counts as the data's quality.
    pub quality_tolerance: f64,
    /// Mean Fréchet distance within `(1 + frechet_tolerance)` times the oracle group's counts as
    /// the data's quality (docs/METHOD.md §4.9: two oracle draws of 30 samples differ by a
    /// ratio with s.d. 0.05 on MNIST px 16 and 0.09 on a GMM at px 8).
    pub frechet_tolerance: f64,
    /// f_mem at or above this marks the onset of memorization τ_onset along training (default
    /// 0.01: the first copies; a sweep needs ≥ 1 / onset_fraction samples per snapshot, pooled
    /// over simulations, to resolve it).
    pub onset_fraction: f64,
}

/// Default [`VerdictRule::frechet_tolerance`].
pub const FRECHET_TOLERANCE: f64 = 0.25;

impl Default for VerdictRule {
    fn default() -> Self {
        Self {
            copy_fraction: 0.5,
            quality_tolerance: 0.5,
            frechet_tolerance: FRECHET_TOLERANCE,
            onset_fraction: 0.01,
        }
    }
}

impl VerdictRule {
    /// Checks the thresholds; an error names the key (`verdict.copy_fraction`, …).
    pub fn validate(&self) -> std::result::Result<(), (&'static str, &'static str)> {
        if !(self.quality_tolerance >= 0.0 && self.quality_tolerance.is_finite()) {
            return Err(("verdict.quality_tolerance", "must be a number >= 0"));
        }
        if !(self.frechet_tolerance >= 0.0 && self.frechet_tolerance.is_finite()) {
            return Err(("verdict.frechet_tolerance", "must be a number >= 0"));
        }
        if !(self.copy_fraction > 0.0 && self.copy_fraction <= 1.0) {
            return Err(("verdict.copy_fraction", "must be in (0, 1]"));
        }
        if !(self.onset_fraction > 0.0 && self.onset_fraction <= self.copy_fraction) {
            return Err((
                "verdict.onset_fraction",
                "must be in (0, copy_fraction] (e.g. 0.01)",
            ));
        }
        Ok(())
    }
}

/// What a model group is doing at its training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// f_mem ≥ `copy_fraction`, or Δ stochastically below the oracle's (towards the copy
    /// generator) while E_OG is within the tolerance of the oracle's.
    Copying,
    /// Not copying, Δ not below the oracle's, and E_OG within the tolerance of the oracle's.
    Generalizing,
    /// Neither: E_OG is more than the tolerance above the oracle's (samples far from the data).
    /// Δ cannot tell such a generator from the oracle (the metric does not measure quality).
    NotYetTrained,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Copying => "copying",
            Self::Generalizing => "generalizing",
            Self::NotYetTrained => "not yet trained",
        })
    }
}

/// Whether a group's samples are at the data's quality: its mean Fréchet distance
/// (`frechet = (group, oracle group)`) is within `1 + frechet_tolerance` times the oracle's;
/// when either is unknown (results written before the quality columns, papers-code), its mean
/// E_OG is within `1 + quality_tolerance` times the oracle's. `None` without an oracle group.
pub fn at_data_quality(
    rule: &VerdictRule,
    frechet: Option<(f64, f64)>,
    e_og_vs_oracle: Option<f64>,
) -> Option<bool> {
    let ratio = e_og_vs_oracle?;
    Some(match frechet {
        Some((f, fo)) if f.is_finite() && fo.is_finite() && fo > 0.0 => {
            f <= fo * (1.0 + rule.frechet_tolerance)
        }
        _ => ratio.is_finite() && ratio <= 1.0 + rule.quality_tolerance,
    })
}

/// The three-way verdict from f_mem, the rank test against the oracle and the data-quality
/// test ([`at_data_quality`]). Without nearest neighbours (f_mem unknown) only the other two
/// inputs decide; without an oracle group (`quality` None) there is no verdict.
pub fn verdict(
    rule: &VerdictRule,
    f_mem: &Proportion,
    vs_oracle: Option<&OracleComparison>,
    quality: Option<bool>,
) -> Option<Verdict> {
    let quality = quality?;
    let copies = f_mem.m > 0 && f_mem.p >= rule.copy_fraction;
    let towards = vs_oracle.is_some_and(|c| c.verdict == "towards copying");
    Some(if copies || (towards && quality) {
        Verdict::Copying
    } else if quality {
        Verdict::Generalizing
    } else {
        Verdict::NotYetTrained
    })
}

/// Groups `rows` and aggregates each group (module doc), sorted by settings then `n`, with the
/// default [`VerdictRule`].
pub fn summarize(rows: &[SimRow]) -> Vec<GroupSummary> {
    summarize_with(rows, &VerdictRule::default())
}

/// [`summarize`] with the given verdict thresholds.
pub fn summarize_with(rows: &[SimRow], rule: &VerdictRule) -> Vec<GroupSummary> {
    let mut groups: BTreeMap<GroupKey, Vec<&SimRow>> = BTreeMap::new();
    for r in rows {
        groups.entry(GroupKey::of(r)).or_default().push(r);
    }
    // Family reference: the smallest n, at the same training step when it was measured there
    // (snapshots), else at its last step (epoch-based training ends at a step that grows with n).
    let mut n0: BTreeMap<GroupKey, u64> = BTreeMap::new();
    for k in groups.keys() {
        let e = n0.entry(k.family()).or_insert(k.n);
        *e = (*e).min(k.n);
    }
    let mut base_at: BTreeMap<(GroupKey, u64), (u64, f64, f64)> = BTreeMap::new();
    let mut base_last: BTreeMap<GroupKey, (u64, u64, f64, f64)> = BTreeMap::new();
    for (k, rs) in groups.iter().filter(|(k, _)| n0[&k.family()] == k.n) {
        let e_og = stats::mean_se(&rs.iter().map(|r| r.e_og).collect::<Vec<_>>()).mean;
        let e_tg = stats::mean_se(&rs.iter().map(|r| r.e_tg).collect::<Vec<_>>()).mean;
        base_at.insert((k.family(), k.train_step), (k.n, e_og, e_tg));
        let last = base_last
            .entry(k.family())
            .or_insert((k.train_step, k.n, e_og, e_tg));
        if k.train_step >= last.0 {
            *last = (k.train_step, k.n, e_og, e_tg);
        }
    }
    let base = |k: &GroupKey| {
        base_at
            .get(&(k.family(), k.train_step))
            .copied()
            .unwrap_or_else(|| {
                let (_, n, og, tg) = base_last[&k.family()];
                (n, og, tg)
            })
    };
    groups
        .iter()
        .map(|(k, rs)| {
            let col = |f: fn(&SimRow) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let delta = col(|r| r.delta);
            let du = col(|r| r.delta_unbiased);
            let fin = |v: &[f64]| v.iter().filter(|x| x.is_finite()).count() as u64;
            let pos = |v: &[f64]| v.iter().filter(|x| **x > 0.0).count() as u64;
            let (n0, og0, tg0) = base(k);
            let vs_oracle = if k.generator != "oracle" {
                groups.get(&k.oracle()).and_then(|orows| {
                    let od: Vec<f64> = orows.iter().map(|r| r.delta).collect();
                    let min_p = stats::mann_whitney_min_p(
                        delta.iter().filter(|x| x.is_finite()).count(),
                        od.iter().filter(|x| x.is_finite()).count(),
                    );
                    stats::mann_whitney(&delta, &od)
                        .ok()
                        .map(|t| OracleComparison {
                            min_p,
                            verdict: if min_p >= stats::ALPHA {
                                CANNOT_DECIDE.into()
                            } else if t.p >= stats::ALPHA {
                                "indistinguishable".into()
                            } else if t.effect < 0.5 {
                                "towards copying".into()
                            } else {
                                "away from copying".into()
                            },
                            test: t,
                        })
                })
            } else {
                None
            };
            let with_nn: Vec<&&SimRow> = rs
                .iter()
                .filter(|r| r.nn_frac_memorized.is_finite())
                .collect();
            let f_mem = stats::wilson(
                with_nn
                    .iter()
                    .map(|r| (r.nn_frac_memorized * r.n_generated as f64).round() as u64)
                    .sum(),
                with_nn.iter().map(|r| r.n_generated).sum(),
                stats::Z95,
            );
            let e_og_vs_oracle = groups
                .get(&k.oracle())
                .filter(|_| k.generator != "oracle")
                .map(|orows| {
                    let o = stats::mean_se(&orows.iter().map(|r| r.e_og).collect::<Vec<_>>()).mean;
                    stats::mean_se(&col(|r| r.e_og)).mean / o
                });
            let quality = QualitySummary {
                frechet: stats::mean_se(&col(|r| r.frechet)),
                kid: stats::mean_se(&col(|r| r.kid)),
                precision: stats::mean_se(&col(|r| r.precision)),
                recall: stats::mean_se(&col(|r| r.recall)),
                density: stats::mean_se(&col(|r| r.density)),
                coverage: stats::mean_se(&col(|r| r.coverage)),
            };
            let oracle_rows = groups.get(&k.oracle()).filter(|_| k.generator != "oracle");
            let oracle_mean = |f: fn(&SimRow) -> f64| {
                oracle_rows.map(|orows| {
                    stats::mean_se(&orows.iter().map(|r| f(r)).collect::<Vec<_>>()).mean
                })
            };
            let oracle_precision = oracle_mean(|r| r.precision);
            let oracle_frechet = oracle_mean(|r| r.frechet);
            let frechet_vs_oracle = oracle_frechet.map(|o| quality.frechet.mean / o);
            let data_quality = at_data_quality(
                rule,
                oracle_frechet.map(|o| (quality.frechet.mean, o)),
                e_og_vs_oracle,
            );
            let verdict = if k.generator == "model" {
                verdict(rule, &f_mem, vs_oracle.as_ref(), data_quality)
            } else {
                None
            };
            GroupSummary {
                key: k.clone(),
                m: rs.len(),
                p_delta: stats::wilson(pos(&delta), fin(&delta), stats::Z95),
                p_delta_unbiased: stats::wilson(pos(&du), fin(&du), stats::Z95),
                e_tg: stats::mean_se(&col(|r| r.e_tg)),
                e_og: stats::mean_se(&col(|r| r.e_og)),
                delta: stats::mean_se(&delta),
                delta_unbiased: stats::mean_se(&du),
                ehat_og: stats::mean_se(&rs.iter().map(|r| r.e_og / og0).collect::<Vec<_>>()),
                ehat_tg: stats::mean_se(&rs.iter().map(|r| r.e_tg / tg0).collect::<Vec<_>>()),
                n0,
                nn_frac_memorized: stats::mean_se(&col(|r| r.nn_frac_memorized)),
                f_mem,
                e_og_vs_oracle,
                vs_oracle,
                quality,
                oracle_precision,
                frechet_vs_oracle,
                data_quality,
                verdict,
            }
        })
        .collect()
}

/// η of one family (settings without n): from the mean E_OG at its smallest and largest n.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EtaRow {
    /// The family's settings (`n` and `n_train` set to 0).
    pub key: GroupKey,
    pub n_small: u64,
    pub n_large: u64,
    pub e_og_small: f64,
    pub e_og_large: f64,
    /// η, or `None` with `error` when it is undefined (ratio not below 1, or a single n).
    pub eta: Option<f64>,
    pub error: Option<String>,
}

/// η (docs/METHOD.md §4, seed 000) per family of [`summarize`]'s groups.
pub fn eta(groups: &[GroupSummary]) -> Vec<EtaRow> {
    let mut fams: BTreeMap<GroupKey, Vec<&GroupSummary>> = BTreeMap::new();
    for g in groups {
        fams.entry(g.key.family()).or_default().push(g);
    }
    fams.into_iter()
        .map(|(key, gs)| {
            // The end of training at each end of the n range (its last snapshot).
            let small = gs
                .iter()
                .min_by_key(|g| (g.key.n, std::cmp::Reverse(g.key.train_step)))
                .unwrap();
            let large = gs
                .iter()
                .max_by_key(|g| (g.key.n, g.key.train_step))
                .unwrap();
            let (eta, error) = if small.key.n == large.key.n {
                (None, Some("only one n in this family".to_string()))
            } else {
                match stats::eta(small.key.n, small.e_og.mean, large.key.n, large.e_og.mean) {
                    Ok(v) => (Some(v), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            };
            EtaRow {
                key,
                n_small: small.key.n,
                n_large: large.key.n,
                e_og_small: small.e_og.mean,
                e_og_large: large.e_og.mean,
                eta,
                error,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(generator: &str, step: u64, sim: u64, e_og: f64, delta: f64, frac: f64) -> SimRow {
        SimRow {
            data: "gmm".into(),
            px: 8,
            d: 64,
            components: 1,
            n: 16,
            steps: 100,
            generator: generator.into(),
            protocol: "default".into(),
            sim,
            seed: sim,
            n_original: 1000,
            n_train: 16,
            n_generated: 20,
            bandwidth: "std-over-n".into(),
            dequantized: "none".into(),
            e_tg: e_og + delta,
            e_og,
            delta,
            delta_unbiased: delta,
            nn_ratio_mean: 0.5,
            nn_frac_memorized: frac,
            pixels_used: 64,
            pixels_skipped: 0,
            train_seconds: 1.5,
            final_loss: 0.25,
            train_step: step,
            sampler: if generator == "model" {
                "ddpm/clipped-x0".into()
            } else {
                "-".into()
            },
            frechet: 2.0,
            kid: 0.1,
            kid_se: 0.05,
            precision: 0.9,
            recall: 0.5,
            density: 1.0,
            coverage: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn snapshots_are_read_against_the_oracle_of_their_sets() {
        let mut rows = Vec::new();
        for sim in 0..8 {
            let jitter = sim as f64 * 1e-3;
            rows.push(row("oracle", 0, sim, 1.0 + jitter, -0.1 + jitter, 0.0));
            // step 100: far from the data (E_OG 3x the oracle's, Fréchet 4x), Δ like the
            // oracle's.
            let mut far = row("model", 100, sim, 3.0 + jitter, -0.1 + jitter, 0.0);
            far.frechet = 8.0;
            rows.push(far);
            // step 1000: at the data's quality, like the oracle.
            rows.push(row("model", 1000, sim, 1.1 + jitter, -0.1 + jitter, 0.05));
            // step 5000: 15 of 20 samples are copies.
            rows.push(row("model", 5000, sim, 1.0 + jitter, -0.8 + jitter, 0.75));
        }
        let g = summarize(&rows);
        let at = |step: u64| {
            g.iter()
                .find(|x| x.key.generator == "model" && x.key.train_step == step)
                .unwrap()
        };
        assert_eq!(at(100).verdict, Some(Verdict::NotYetTrained));
        assert!((at(100).e_og_vs_oracle.unwrap() - 3.0035 / 1.0035).abs() < 1e-12);
        assert_eq!(at(1000).verdict, Some(Verdict::Generalizing));
        assert_eq!(at(5000).verdict, Some(Verdict::Copying));
        // Pooled f_mem: 8 sims x 15 copies of 160 samples.
        let f = at(5000).f_mem;
        assert_eq!((f.k, f.m), (120, 160));
        assert!(f.lo < 0.75 && f.hi > 0.75 && f.lo > 0.6);
        let o = g.iter().find(|x| x.key.generator == "oracle").unwrap();
        assert_eq!(o.verdict, None);
        assert_eq!(o.e_og_vs_oracle, None);
        assert_eq!(at(100).oracle_precision, Some(0.9));
        assert_eq!(at(100).frechet_vs_oracle, Some(4.0));
        assert_eq!(at(100).data_quality, Some(false));
    }

    #[test]
    fn frechet_decides_quality_and_e_og_only_without_it() {
        // Clean samples with a faint haze: E_OG 1.85x the oracle's, Fréchet 1.2x.
        let mut rows = Vec::new();
        for sim in 0..4 {
            rows.push(row("oracle", 0, sim, 1.0, 0.0, 0.0));
            let mut m = row("model", 100, sim, 1.85, 0.0, 0.0);
            m.frechet = 2.4;
            rows.push(m);
        }
        let model = |rows: &[SimRow]| {
            summarize(rows)
                .into_iter()
                .find(|x| x.key.generator == "model")
                .unwrap()
        };
        let g = model(&rows);
        assert_eq!(g.verdict, Some(Verdict::Generalizing));
        assert!((g.frechet_vs_oracle.unwrap() - 1.2).abs() < 1e-12);
        // Above the tolerance: 2.6 > 1.25 x 2.
        for r in rows.iter_mut().filter(|r| r.generator == "model") {
            r.frechet = 2.6;
        }
        assert_eq!(model(&rows).verdict, Some(Verdict::NotYetTrained));
        // Older results without the quality columns: E_OG decides (1.85 > 1.5).
        for r in rows.iter_mut() {
            r.frechet = f64::NAN;
        }
        let g = model(&rows);
        assert_eq!(g.verdict, Some(Verdict::NotYetTrained));
        assert_eq!(g.frechet_vs_oracle.map(f64::is_nan), Some(true));
        // At the boundary: exactly 1.25x is quality.
        let rule = VerdictRule::default();
        assert_eq!(
            at_data_quality(&rule, Some((2.5, 2.0)), Some(9.0)),
            Some(true)
        );
        assert_eq!(at_data_quality(&rule, Some((2.5, 2.0)), None), None);
    }

    #[test]
    fn verdict_needs_an_oracle_and_reads_the_rank_test_with_quality() {
        let rule = VerdictRule::default();
        let none = stats::wilson(0, 0, stats::Z95);
        assert_eq!(verdict(&rule, &none, None, None), None);
        let q = |ratio: f64| at_data_quality(&rule, None, Some(ratio));
        let towards = OracleComparison {
            test: stats::mann_whitney(&[0.0, 0.1, 0.2], &[1.0, 1.1, 1.2]).unwrap(),
            min_p: stats::mann_whitney_min_p(3, 3),
            verdict: "towards copying".into(),
        };
        // Δ towards copying but samples far from the data: not yet trained, not copying.
        assert_eq!(
            verdict(&rule, &none, Some(&towards), q(2.0)),
            Some(Verdict::NotYetTrained)
        );
        assert_eq!(
            verdict(&rule, &none, Some(&towards), q(1.2)),
            Some(Verdict::Copying)
        );
        let half = stats::wilson(10, 20, stats::Z95);
        assert_eq!(verdict(&rule, &half, None, q(5.0)), Some(Verdict::Copying));
    }

    #[test]
    fn two_simulations_cannot_decide_whatever_their_values() {
        // The copy generator's Δ far below the oracle's in both sims: still p = 0.245.
        let mut rows = Vec::new();
        for sim in 0..2 {
            rows.push(row("oracle", 0, sim, 1.0, 0.1 + sim as f64 * 0.01, 0.0));
            rows.push(row("copy", 0, sim, 1.0, -5.0 - sim as f64, 1.0));
        }
        let g = summarize(&rows);
        let c = g.iter().find(|x| x.key.generator == "copy").unwrap();
        let v = c.vs_oracle.as_ref().unwrap();
        assert_eq!(v.verdict, CANNOT_DECIDE);
        assert!((v.test.p - v.min_p).abs() < 1e-15 && v.min_p > 0.245);
        // Eight sims each: the same separation is "towards copying".
        let mut rows = Vec::new();
        for sim in 0..8 {
            rows.push(row("oracle", 0, sim, 1.0, 0.1 + sim as f64 * 0.01, 0.0));
            rows.push(row("copy", 0, sim, 1.0, -5.0 - sim as f64, 1.0));
        }
        let g = summarize(&rows);
        let c = g.iter().find(|x| x.key.generator == "copy").unwrap();
        assert_eq!(c.vs_oracle.as_ref().unwrap().verdict, "towards copying");
    }

    #[test]
    fn epoch_based_steps_that_grow_with_n_keep_one_family() {
        // Fixed epochs: n = 16 ends at step 10, n = 64 at step 40 (one family for Ê and η).
        let mut rows = Vec::new();
        for sim in 0..3 {
            let mut a = row("model", 10, sim, 2.0, 0.0, 0.0);
            a.n = 16;
            let mut b = row("model", 40, sim, 1.0, 0.0, 0.0);
            b.n = 64;
            rows.extend([a, b]);
        }
        let g = summarize(&rows);
        let big = g.iter().find(|x| x.key.n == 64).unwrap();
        assert_eq!(big.n0, 16);
        assert!((big.ehat_og.mean - 0.5).abs() < 1e-12);
        let e = eta(&g);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].n_small, e[0].n_large), (16, 64));
        assert!((e[0].eta.unwrap() - 2f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn legacy_results_without_snapshot_columns_are_read() {
        let mut full = row("copy", 0, 1, 1.0, -1.0, 1.0);
        full.train_batch = 16;
        full.set_probe(
            &[(0.5, 0.01), (0.4, 0.02), (0.3, 0.03)],
            &[(0.6, 0.01), (0.5, 0.02), (0.4, 0.03)],
        );
        let mut buf = Vec::new();
        write_csv(&mut buf, std::slice::from_ref(&full)).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with(&HEADER.join(",")));
        let back = read_csv(text.as_bytes()).unwrap();
        assert_eq!(back, vec![full.clone()]);
        assert_eq!(back[0].probe()[1], (0.4, 0.02, 0.5, 0.02));
        // Drop the last two columns of every line: an older file.
        let legacy: String = text
            .lines()
            .map(|l| {
                let v: Vec<&str> = l.split(',').collect();
                v[..LEGACY_COLUMNS].join(",") + "\n"
            })
            .collect();
        let old = read_csv(legacy.as_bytes()).unwrap();
        assert_eq!((old[0].train_step, old[0].sampler.as_str()), (0, "-"));
        // Without the quality columns: NaN quality, the rest as written.
        let pre: String = text
            .lines()
            .map(|l| {
                let v: Vec<&str> = l.split(',').collect();
                v[..PRE_QUALITY_COLUMNS].join(",") + "\n"
            })
            .collect();
        let old = read_csv(pre.as_bytes()).unwrap();
        assert!(old[0].frechet.is_nan() && old[0].precision.is_nan() && old[0].coverage.is_nan());
        assert_eq!((old[0].train_step, old[0].e_og), (0, 1.0));
        // Without the loss probe: batch 0, NaN losses, the quality as written.
        let pre: String = text
            .lines()
            .map(|l| {
                let v: Vec<&str> = l.split(',').collect();
                v[..PRE_PROBE_COLUMNS].join(",") + "\n"
            })
            .collect();
        let old = read_csv(pre.as_bytes()).unwrap();
        assert_eq!((old[0].train_batch, old[0].coverage), (0, 0.5));
        assert!(old[0].probe().iter().all(|p| p.0.is_nan() && p.3.is_nan()));
    }
}
