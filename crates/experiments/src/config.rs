//! The sweep's settings file (`configs/*.toml`), strict: an unknown key is an error naming it.
//!
//! The `[train]` and `[sample]` tables are passed through untouched to the trainer and sampler
//! (their own strict structs, `memdiff_diffusion::train::TrainConfig` and
//! `memdiff_diffusion::sample::SampleOptions`), so this crate does not depend on burn. The sweep
//! overrides `px`, `steps`, `seed` (and `indexing` under `protocol = "papers-code"`) per run.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Which data a sweep draws O and T from: `data = "gmm"`, `data = "mnist"`, or your own images,
/// `data = { path = "faces/", px = 32 }` ([`ImagesData`]).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum DataKind {
    /// The isotropic Gaussian mixture of docs/METHOD.md §1, "centred" layout.
    #[default]
    Gmm,
    /// The shipped MNIST subset (or another IDX file), resized to `px`.
    Mnist,
    /// A folder of PNG / JPEG images, a `.npz`, `.npy` or IDX file (`memdiff_data::source`):
    /// O, T and the oracle's draw are disjoint images of it, drawn per simulation.
    Images(ImagesData),
}

/// Your own images as a sweep's data: `data = { path = "...", px = 32 }`, with the reading
/// options of `memdiff_data::ReadOptions` (`fit`, `layout`, `array`, `recursive`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesData {
    /// The folder or file (relative to the working folder unless absolute); validation makes
    /// it absolute, which sweep.toml records.
    pub path: String,
    /// Image side; sets the sweep's `px` (the images must have it, or `fit` brings them to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub px: Option<usize>,
    /// "none" (default), "resize" or "crop" to `px`.
    #[serde(default)]
    pub fit: memdiff_data::Fit,
    /// "auto" (default), "nchw" or "nhwc" for a rank-4 array.
    #[serde(default)]
    pub layout: memdiff_data::Layout,
    /// Member of a `.npz` (default `arr_0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<String>,
    /// Read subfolders too.
    #[serde(default)]
    pub recursive: bool,
    /// The source's content hash, recorded by validation (sweep.toml): a resumed sweep on a
    /// changed source is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl ImagesData {
    /// The reading options at side `px`.
    pub fn read_options(&self, px: usize) -> memdiff_data::ReadOptions {
        memdiff_data::ReadOptions {
            layout: self.layout,
            array: self.array.clone(),
            recursive: self.recursive,
            fit: self.fit,
            px: Some(px),
        }
    }
}

impl std::fmt::Display for DataKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataKind::Gmm => "gmm",
            DataKind::Mnist => "mnist",
            DataKind::Images(_) => "images",
        })
    }
}

impl Serialize for DataKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DataKind::Gmm => s.serialize_str("gmm"),
            DataKind::Mnist => s.serialize_str("mnist"),
            DataKind::Images(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DataKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DataKind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"gmm\", \"mnist\" or a table { path = \"...\", px = 32 }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DataKind, E> {
                match v {
                    "gmm" => Ok(DataKind::Gmm),
                    "mnist" => Ok(DataKind::Mnist),
                    _ => Err(E::custom(format!(
                        "unknown data `{v}`: use \"gmm\", \"mnist\" or your own images as data = {{ path = \"...\", px = 32 }}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DataKind, A::Error> {
                ImagesData::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(DataKind::Images)
            }
        }
        d.deserialize_any(V)
    }
}

/// How the metric's three sets are put on scales (docs/METHOD.md §4 default, docs/METHOD.md §5 papers' code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// One scale ([0, 1]) for O, T and G; T is the whole training set; true L2 distance.
    #[default]
    Default,
    /// The seeds' code (docs/METHOD.md §5): O raw (×255), T = the 90 % training split mapped to [-1, 1],
    /// G in [0, 1], sigma = std(O)/255, `sqrt(2π)` scale, shifted diffusion indices, one fixed O,
    /// g samples drawn one at a time.
    PapersCode,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Default => "default",
            Protocol::PapersCode => "papers-code",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Self::Default),
            "papers-code" => Ok(Self::PapersCode),
            _ => Err(format!(
                "unknown protocol `{s}`: use default or papers-code"
            )),
        }
    }
}

/// Treatment of quantised data before the metric: the one policy of every entry point,
/// `memdiff_data::quantize` (auto, uniform, floor, none; noise on O, T and G alike).
pub use memdiff_data::quantize::Mode as Dequantize;

/// GMM layout (docs/METHOD.md §1 "centred": `mu_c = mu0 + (c - (C-1)/2) spacing`, `sigma_c = sigma`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GmmSettings {
    pub mu0: f64,
    pub spacing: f64,
    pub sigma: f64,
    /// Clip samples to [0, 1] (docs/METHOD.md §1: off unless asked).
    pub clip: bool,
}

impl Default for GmmSettings {
    fn default() -> Self {
        Self {
            mu0: 0.5,
            spacing: 0.1,
            sigma: 0.1,
            clip: false,
        }
    }
}

/// MNIST source, found by [`memdiff_data::mnist::locate`] when the config is validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MnistSettings {
    /// IDX images file (gzipped or plain; relative to the working folder unless absolute), or
    /// "shipped:mnist-10k" (the default): then `dir`, else `$MEMDIFF_MNIST_DIR`, else the
    /// shipped 10k subset embedded in the binary. Validation replaces it by what was found (an
    /// absolute path or "shipped:mnist-10k"), which sweep.toml records.
    pub images: String,
    /// Folder with the full MNIST files (its train-images-idx3-ubyte[.gz] is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Zero-pad 28 → 32 instead of a bilinear resize to `px` (needs px = 32).
    pub pad: bool,
}

impl Default for MnistSettings {
    fn default() -> Self {
        Self {
            images: memdiff_data::mnist::SHIPPED.into(),
            dir: None,
            pad: false,
        }
    }
}

/// A whole sweep. Every list is a grid axis; `sims` simulations run at each grid point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Free text: what this sweep is for.
    pub name: String,
    /// Base seed; every other seed is derived from it and the unit's grid values.
    pub seed: u64,
    pub data: DataKind,
    /// Image side; d = px².
    pub px: usize,
    /// Mixture components C (GMM). Ignored for MNIST (use `[1]`).
    pub components: Vec<usize>,
    /// Training-set sizes n.
    pub n: Vec<usize>,
    /// Diffusion steps s (trained and sampled with).
    pub steps: Vec<usize>,
    /// Simulations per grid point.
    pub sims: usize,
    /// Size N of the original set O.
    pub n_original: usize,
    /// Generated samples g per simulation.
    pub generated: usize,
    /// "model" and/or the reference generators "oracle", "copy", "copy+noise:SIGMA".
    pub generators: Vec<String>,
    pub protocol: Protocol,
    /// Draw a fresh O for every simulation (docs/METHOD.md §4b; default) instead of the papers' single O.
    /// Forced off under `protocol = "papers-code"`.
    pub fresh_original: bool,
    /// Bandwidth rule of the metric (`std-over-n`, ...; see `memdiff eval --help`).
    pub bandwidth: String,
    /// Quantised data treatment: auto | uniform | floor | none.
    pub dequantize: Dequantize,
    /// The version of the quantised-data policy (`memdiff_data::quantize::POLICY`) the sweep ran
    /// under: set by [`SweepConfig::validate`] and recorded in `sweep.toml`; leave it out of a
    /// config. A `sweep.toml` without it predates the one policy (version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dequantize_policy: Option<u32>,
    /// Nearest-neighbour ratios (Carlini et al.) of every generated sample against T.
    pub nn: bool,
    /// Generated images saved (with their nearest training images) per grid point, from sim 0:
    /// at the last snapshot, and with `eval_at` at every snapshot (the report's
    /// `samples_c<C>_s<s>_snapshots.png`).
    pub save_images: usize,
    /// Also write every generated image of sim 0's last snapshot, per model grid point, as a
    /// folder of PNGs (`samples/<stem>-png/00000.png ...`) and a `.npz` (`samples/<stem>.npz`,
    /// `arr_0` (g, h, w, c) uint8), as the FID tools read them. Needs `save_images > 0`.
    pub export_samples: bool,
    /// The two-training-sets test (docs/METHOD.md §7b): every model simulation also trains a
    /// second network, same settings but its own initialisation, on an independent training
    /// set of the same n, and at
    /// every snapshot both sample from the same noise; their paired distance and similarity go
    /// to `pairs.csv`. Doubles the training cost. Needs the model generator.
    pub pair: bool,
    pub gmm: GmmSettings,
    pub mnist: MnistSettings,
    /// Passed to the trainer (`TrainConfig`); px, steps, seed are set per run.
    pub train: toml::Table,
    /// Passed to the sampler (`SampleOptions`).
    pub sample: toml::Table,
    /// Training budget in optimizer steps (replaces `train.epochs`: a fixed number of epochs
    /// gives small n few steps and confounds n with training time): a number, the same for
    /// every n, or a budget that grows with n, `"A*n"` or `"max(F, A*n)"` (A·n steps, at least
    /// F; Bonnaire et al.'s τ_mem ∝ n needs budgets ∝ n).
    pub train_steps: Option<Budget>,
    /// Training snapshots: optimizer steps at which the current weights (the EMA weights if
    /// kept) are sampled and measured, without stopping training. `"log:A..B:K"` (K steps
    /// spaced evenly in log between A and B, rounded; B = `end` is each unit's own budget) or a
    /// list `[100, 1000, 5000]`. The final step (the unit's budget) is always measured. Needs
    /// `train_steps`.
    pub eval_at: Option<EvalAt>,
    /// The loss probe (docs/METHOD.md §7): at every snapshot, the denoising loss at fixed
    /// noise levels on the n training images and on this many held-out images (fresh mixture
    /// draws; for image data, images in none of O, T and the oracle's draw), in results.csv's
    /// `loss_*` columns and the trajectory. Off when left out. It never changes training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_probe: Option<usize>,
    /// Thresholds of the three-way verdict (copying / generalizing / not yet trained).
    pub verdict: memdiff_metrics::summary::VerdictRule,
}

/// A training budget as written in the config (`train_steps`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Budget {
    Steps(usize),
    Formula(String),
}

impl Budget {
    /// The budget in optimizer steps of a unit with `n` training images.
    pub fn resolve(&self, n: usize) -> Result<usize, String> {
        let steps = match self {
            Budget::Steps(s) => *s,
            Budget::Formula(f) => {
                let usage = || {
                    format!("\"{f}\" is not a budget: write a number of optimizer steps, \"A*n\" or \"max(F, A*n)\" (e.g. \"max(2000, 300*n)\")")
                };
                let term = |t: &str| -> Result<u128, String> {
                    let t = t.trim();
                    let num = |x: &str| x.trim().parse::<u128>().map_err(|_| usage());
                    match t.split_once('*') {
                        Some((a, b)) if b.trim() == "n" => {
                            num(a)?.checked_mul(n as u128).ok_or_else(usage)
                        }
                        Some((a, b)) if a.trim() == "n" => {
                            num(b)?.checked_mul(n as u128).ok_or_else(usage)
                        }
                        Some(_) => Err(usage()),
                        None if t == "n" => Ok(n as u128),
                        None => num(t),
                    }
                };
                let f = f.trim();
                let v = match f.strip_prefix("max(").and_then(|r| r.strip_suffix(')')) {
                    Some(inner) => {
                        let (a, b) = inner.split_once(',').ok_or_else(usage)?;
                        term(a)?.max(term(b)?)
                    }
                    None => term(f)?,
                };
                usize::try_from(v)
                    .map_err(|_| format!("\"{f}\" at n = {n} is {v} steps: too many"))?
            }
        };
        if steps == 0 {
            return Err(format!("0 optimizer steps at n = {n}: give at least 1"));
        }
        Ok(steps)
    }
}

impl From<usize> for Budget {
    fn from(s: usize) -> Self {
        Budget::Steps(s)
    }
}

/// A snapshot schedule as written in the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EvalAt {
    List(Vec<usize>),
    Text(String),
}

impl EvalAt {
    /// The sorted, distinct optimizer steps of the schedule, each in `1..=budget`; the budget
    /// itself is added as the last snapshot.
    pub fn resolve(&self, budget: usize) -> Result<Vec<usize>, String> {
        let steps = match self {
            EvalAt::List(v) => {
                if v.is_empty() {
                    return Err("the list is empty: give at least one optimizer step".into());
                }
                if v.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "{v:?} is not strictly increasing: list the steps in order, once each"
                    ));
                }
                v.clone()
            }
            EvalAt::Text(t) => parse_log_schedule(t, budget)?,
        };
        if steps.first() == Some(&0) {
            return Err("step 0 is before any training: snapshots start at step 1".into());
        }
        if let Some(&last) = steps.last() {
            if last > budget {
                return Err(format!(
                    "step {last} is beyond the budget of {budget} optimizer steps"
                ));
            }
        }
        let mut out = steps;
        if out.last() != Some(&budget) {
            out.push(budget);
        }
        Ok(out)
    }
}

/// `log:A..B:K`: K integers spaced evenly in log from A to B (both kept), rounded, distinct;
/// B = `end` is `budget`.
fn parse_log_schedule(t: &str, budget: usize) -> Result<Vec<usize>, String> {
    let usage = || {
        format!("\"{t}\" is not a schedule: write \"log:A..B:K\" (e.g. \"log:100..20000:10\"; B = end is each unit's budget) or a list of steps")
    };
    let rest = t.strip_prefix("log:").ok_or_else(usage)?;
    let (range, k) = rest.rsplit_once(':').ok_or_else(usage)?;
    let (a, b) = range.split_once("..").ok_or_else(usage)?;
    let num = |x: &str| x.trim().parse::<usize>().map_err(|_| usage());
    let b = if b.trim() == "end" {
        Ok(budget)
    } else {
        num(b)
    };
    let (a, b, k) = (num(a)?, b?, num(k)?);
    if a == 0 {
        return Err("step 0 is before any training: snapshots start at step 1".into());
    }
    if b < a {
        return Err(format!(
            "log:{a}..{b}: the range is reversed (write the smaller step first)"
        ));
    }
    if k == 0 || (k == 1 && a != b) {
        return Err(format!(
            "{t}: K = {k} points cannot span {a}..{b}: give K >= 2"
        ));
    }
    let (la, lb) = ((a as f64).ln(), (b as f64).ln());
    let mut v: Vec<usize> = (0..k)
        .map(|i| {
            let f = if k == 1 {
                0.0
            } else {
                i as f64 / (k - 1) as f64
            };
            (la + f * (lb - la)).exp().round() as usize
        })
        .collect();
    v[0] = a;
    v[k - 1] = b;
    v.dedup();
    Ok(v)
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            seed: 0,
            data: DataKind::Gmm,
            px: 8,
            components: vec![1],
            n: vec![10, 100, 1000],
            steps: vec![200],
            sims: 20,
            n_original: 10_000,
            generated: 10,
            generators: vec![
                "model".into(),
                "oracle".into(),
                "copy".into(),
                "copy+noise:0.05".into(),
            ],
            protocol: Protocol::Default,
            fresh_original: true,
            bandwidth: "std-over-n".into(),
            dequantize: Dequantize::Auto,
            dequantize_policy: None,
            nn: true,
            save_images: 8,
            export_samples: false,
            pair: false,
            gmm: GmmSettings::default(),
            mnist: MnistSettings::default(),
            train: toml::Table::new(),
            sample: toml::Table::new(),
            train_steps: None,
            eval_at: None,
            loss_probe: None,
            verdict: Default::default(),
        }
    }
}

/// An impossible sweep setting.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("sweep config field `{field}`: {message}")]
pub struct ConfigInvalid {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> ConfigInvalid {
    ConfigInvalid {
        field,
        message: message.into(),
    }
}

impl SweepConfig {
    /// Checks sizes and names; applies the papers'-code implications.
    pub fn validate(&mut self) -> Result<(), ConfigInvalid> {
        if let DataKind::Images(d) = &self.data {
            if let Some(px) = d.px {
                self.px = px;
            }
        }
        if self.px == 0 || !self.px.is_multiple_of(8) {
            return Err(bad(
                "px",
                format!(
                    "{} is not a positive multiple of 8 (the U-Net halves it 3 times)",
                    self.px
                ),
            ));
        }
        if self.n.is_empty() || self.n.contains(&0) {
            return Err(bad("n", "give at least one training-set size, all >= 1"));
        }
        let policy = memdiff_data::quantize::POLICY;
        match self.dequantize_policy {
            Some(v) if v != policy => {
                return Err(bad(
                    "dequantize_policy",
                    format!(
                        "{v}: this memdiff implements quantised-data policy {policy} (docs/METHOD.md §4.5); the sweep records the key in sweep.toml, leave it out of a config"
                    ),
                ))
            }
            _ => self.dequantize_policy = Some(policy),
        }
        if self.has_model() && (self.steps.is_empty() || self.steps.iter().any(|&s| s < 2)) {
            return Err(bad(
                "steps",
                "give at least one number of diffusion steps, all >= 2",
            ));
        }
        if self.data == DataKind::Gmm
            && (self.components.is_empty() || self.components.contains(&0))
        {
            return Err(bad(
                "components",
                "give at least one component count, all >= 1",
            ));
        }
        if let DataKind::Images(d) = &mut self.data {
            if !(self.components == [1] || self.components == [0]) {
                return Err(bad(
                    "components",
                    "your own images have no mixture components: leave it out",
                ));
            }
            self.components = vec![0];
            let abs = std::path::absolute(&d.path)
                .map_err(|e| bad("data.path", format!("{}: {e}", d.path)))?;
            d.path = abs.to_string_lossy().into_owned();
            d.px = Some(self.px);
            let src = memdiff_data::read_source(&abs, &d.read_options(self.px))
                .map_err(|e| bad("data", e.to_string()))?;
            match &d.hash {
                Some(h) if *h != src.hash => {
                    return Err(bad(
                        "data.hash",
                        memdiff_data::DataError::Changed {
                            path: abs,
                            recorded: h.clone(),
                            now: src.hash,
                        }
                        .to_string(),
                    ))
                }
                _ => d.hash = Some(src.hash),
            }
            // The network takes the images' channels (1 greyscale, 3 RGB).
            self.train.insert(
                "channels".into(),
                toml::Value::Integer(src.set.channels as i64),
            );
        }
        if self.data == DataKind::Mnist {
            if !(self.components == [1] || self.components == [0]) {
                return Err(bad(
                    "components",
                    "MNIST has no mixture components: leave it out",
                ));
            }
            // results.csv records components = 0 for MNIST.
            self.components = vec![0];
            let m = &mut self.mnist;
            let file = (m.images != memdiff_data::mnist::SHIPPED).then(|| Path::new(&m.images));
            let found = memdiff_data::mnist::locate(file, m.dir.as_deref().map(Path::new))
                .map_err(|e| {
                    let field = match (file, &m.dir) {
                        (None, Some(_)) => "mnist.dir",
                        _ => "mnist.images",
                    };
                    bad(field, e.to_string())
                })?;
            m.images = found.to_string_lossy().into_owned();
        }
        if self.export_samples && self.save_images == 0 {
            return Err(bad(
                "export_samples",
                "writes sim 0's samples beside the saved images: set save_images >= 1",
            ));
        }
        if self.sims == 0 {
            return Err(bad("sims", "need at least 1 simulation per grid point"));
        }
        if self.generated == 0 {
            return Err(bad("generated", "need at least 1 generated sample"));
        }
        if self.n_original < 2 {
            return Err(bad(
                "n_original",
                "the original set needs at least 2 samples",
            ));
        }
        if self.generators.is_empty() {
            return Err(bad(
                "generators",
                "list at least one of model, oracle, copy, copy+noise:SIGMA",
            ));
        }
        for g in &self.generators {
            crate::grid::GeneratorKind::parse(g).map_err(|m| bad("generators", m))?;
        }
        let mut seen = self.generators.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.generators.len() {
            return Err(bad("generators", "a generator is listed twice"));
        }
        for list in [&mut self.n, &mut self.steps, &mut self.components] {
            list.sort_unstable();
            list.dedup();
        }
        if self.protocol == Protocol::PapersCode {
            self.fresh_original = false;
            if self.n.iter().any(|&n| n < 2) {
                return Err(bad("n", "papers-code splits T 90/10: need n >= 2"));
            }
        }
        if !(self.gmm.sigma > 0.0 && self.gmm.sigma.is_finite()) {
            return Err(bad("gmm.sigma", "must be a positive number"));
        }
        if let Some(b) = &self.train_steps {
            for &n in &self.n {
                b.resolve(n).map_err(|m| bad("train_steps", m))?;
            }
        }
        if self.train_steps.is_some()
            && (self.train.contains_key("epochs") || self.train.contains_key("max_steps"))
        {
            return Err(bad(
                "train_steps",
                "set either train_steps or train.epochs / train.max_steps, not both",
            ));
        }
        if let Some(e) = &self.eval_at {
            let budget = self.train_steps.as_ref().ok_or_else(|| {
                bad(
                    "eval_at",
                    "snapshots need a budget in optimizer steps: set train_steps",
                )
            })?;
            for &n in &self.n {
                let b = budget.resolve(n).map_err(|m| bad("train_steps", m))?;
                e.resolve(b)
                    .map_err(|m| bad("eval_at", format!("at n = {n}: {m}")))?;
            }
        }
        if self.loss_probe == Some(0) {
            return Err(bad(
                "loss_probe",
                "0 held-out images: leave the key out, or give at least 2",
            ));
        }
        if self.loss_probe.is_some() && !self.has_model() {
            return Err(bad(
                "loss_probe",
                "the loss probe measures the network: add \"model\" to generators",
            ));
        }
        if self.pair && !self.has_model() {
            return Err(bad(
                "pair",
                "the two-training-sets test compares two networks: add \"model\" to generators",
            ));
        }
        self.verdict
            .validate()
            .map_err(|(field, message)| bad(field, message))?;
        for (k, v) in &self.train {
            if ["px", "diffusion_steps", "seed"].contains(&k.as_str()) {
                return Err(bad(
                    "train",
                    format!(
                        "`train.{k} = {v}` is set by the sweep per run: remove it (use the top-level `{}`)",
                        match k.as_str() {
                            "diffusion_steps" => "steps",
                            other => other,
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether "model" is among the generators.
    pub fn has_model(&self) -> bool {
        self.generators.iter().any(|g| g == "model")
    }

    /// The s axis of the grid: the `steps` list, or `[0]` in a sweep without the model.
    pub fn steps_axis(&self) -> Vec<usize> {
        if self.has_model() {
            self.steps.clone()
        } else {
            vec![0]
        }
    }

    /// The training budget in optimizer steps of a unit with `n` training images (`None`:
    /// epoch-based training). Validated configs resolve for every n of the grid.
    pub fn budget(&self, n: usize) -> Option<usize> {
        self.train_steps.as_ref().and_then(|b| b.resolve(n).ok())
    }

    /// The optimizer steps at which the model rows of a unit with `n` training images are
    /// measured: the resolved `eval_at`, or just the budget, or empty (the end of an
    /// epoch-based training).
    pub fn snapshots(&self, n: usize) -> Vec<usize> {
        match (self.budget(n), &self.eval_at) {
            (Some(b), Some(e)) => e.resolve(b).unwrap_or_else(|_| vec![b]),
            (Some(b), None) => vec![b],
            _ => Vec::new(),
        }
    }

    /// Whether the quantised-data policy can change this sweep's numbers: not under
    /// `dequantize = "none"`, nor under `auto` on unclipped Gaussian-mixture data (continuous
    /// draws: never on the grid, no ties).
    pub fn dequantize_can_act(&self) -> bool {
        match self.dequantize {
            Dequantize::None => false,
            Dequantize::Auto => self.data != DataKind::Gmm || self.gmm.clip,
            Dequantize::Uniform | Dequantize::Floor => true,
        }
    }

    /// The part of the config that determines every row's numbers apart from the grid lists:
    /// a resumed or merged sweep must match it exactly. It includes the quantised-data policy's
    /// version where that policy can act ([`SweepConfig::dequantize_can_act`]; an unrecorded
    /// version is 1, the sweeps before the one policy).
    pub fn fingerprint(&self) -> String {
        let mut c = self.clone();
        c.dequantize_policy = self
            .dequantize_can_act()
            .then(|| self.dequantize_policy.unwrap_or(1));
        // The data actually read: MNIST settings do not matter to a GMM sweep, and sweeps
        // recorded before the subset was embedded name it by its repository path.
        if c.data != DataKind::Mnist {
            c.mnist = MnistSettings::default();
        } else if memdiff_data::mnist::is_shipped(Path::new(&c.mnist.images)) {
            c.mnist.images = memdiff_data::mnist::SHIPPED.into();
        }
        c.mnist.dir = None;
        c.name.clear();
        c.components.clear();
        c.n.clear();
        c.steps.clear();
        c.sims = 0;
        c.generators.clear();
        c.save_images = 0;
        c.export_samples = false;
        c.verdict = Default::default();
        toml::to_string(&c).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_data::config::parse_toml;

    #[test]
    fn mnist_source_is_resolved_and_recorded() {
        use memdiff_data::mnist::SHIPPED;
        let mnist = |table: &str| -> SweepConfig {
            parse_toml(&format!("data = \"mnist\"\n[mnist]\n{table}\n")).unwrap()
        };
        // The repository path of the shipped subset (old configs) is the embedded subset.
        let mut c = mnist("images = \"data/mnist/mnist-10k-images-idx3-ubyte.gz\"");
        c.validate().unwrap();
        assert_eq!(c.mnist.images, SHIPPED);
        // A folder with the full files: its training images, by absolute path.
        let tmp = tempfile::tempdir().unwrap();
        let full = tmp.path().join("train-images-idx3-ubyte.gz");
        std::fs::write(&full, b"x").unwrap();
        let mut c = mnist(&format!("dir = {:?}", tmp.path().display().to_string()));
        c.validate().unwrap();
        assert_eq!(Path::new(&c.mnist.images), full);
        // Errors name the key and the path.
        let mut c = mnist(&format!(
            "dir = {:?}",
            tmp.path().join("no").display().to_string()
        ));
        let e = c.validate().unwrap_err();
        assert!(e.field == "mnist.dir" && e.message.contains("no"), "{e}");
        let mut c = mnist("images = \"nope-images.gz\"");
        let e = c.validate().unwrap_err();
        assert!(
            e.field == "mnist.images" && e.message.contains("nope-images.gz"),
            "{e}"
        );
        // Fingerprints: a sweep.toml written before the subset was embedded matches today's
        // default; MNIST settings do not enter a GMM sweep's; another file does enter MNIST's.
        let old = mnist("images = \"data/mnist/mnist-10k-images-idx3-ubyte.gz\"");
        assert_eq!(old.fingerprint(), mnist("").fingerprint());
        assert_ne!(
            old.fingerprint(),
            mnist("images = \"/a/b.gz\"").fingerprint()
        );
        let gmm: SweepConfig = parse_toml("[mnist]\nimages = \"x.gz\"\n").unwrap();
        assert_eq!(gmm.fingerprint(), SweepConfig::default().fingerprint());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse_toml::<SweepConfig>("px = 8\nsimz = 3\n").unwrap_err();
        assert!(e.contains("simz") && e.starts_with("line 2"), "{e}");
        let e = parse_toml::<SweepConfig>("[gmm]\nsigmaa = 1\n").unwrap_err();
        assert!(e.contains("sigmaa"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut c: SweepConfig = parse_toml("px = 12").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "px");
        let mut c: SweepConfig = parse_toml("generators = [\"model\", \"copi\"]").unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("copi"), "{e}");
        let mut c: SweepConfig = parse_toml("[train]\ndiffusion_steps = 3").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "train");
        let mut c: SweepConfig =
            parse_toml("n = [100, 10, 100]\nprotocol = \"papers-code\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.n, vec![10, 100]);
        assert!(!c.fresh_original);
    }

    #[test]
    fn shipped_sweep_configs_validate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in [
            "quick",
            "memorization",
            "tau-scaling",
            "steps",
            "steps-linear",
            "eta-components",
            "mnist-memorization",
            "mnist",
            "paper-gmm-d64",
            "paper-gmm-d256",
        ] {
            let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
            let mut c: SweepConfig =
                parse_toml(&text).unwrap_or_else(|e| panic!("configs/{name}.toml: {e}"));
            c.validate()
                .unwrap_or_else(|e| panic!("configs/{name}.toml: {e}"));
            if name == "memorization" {
                // log:500..12000:6 -> 500 * 24^(i/5), rounded.
                assert_eq!(c.snapshots(2), vec![500, 944, 1783, 3366, 6355, 12000]);
            }
        }
    }

    #[test]
    fn snapshot_schedules_resolve_or_name_the_key() {
        let mut c: SweepConfig =
            parse_toml("train_steps = 20000\neval_at = \"log:100..20000:4\"").unwrap();
        c.validate().unwrap();
        // 100 * 200^(i/3): 100, 585, 3420, 20000.
        assert_eq!(c.snapshots(10), vec![100, 585, 3420, 20000]);
        let mut c: SweepConfig = parse_toml("train_steps = 500\neval_at = [10, 100]").unwrap();
        c.validate().unwrap();
        assert_eq!(c.snapshots(10), vec![10, 100, 500]);
        for (text, needle) in [
            ("train_steps = 500\neval_at = []", "empty"),
            (
                "train_steps = 500\neval_at = [100, 10]",
                "not strictly increasing",
            ),
            ("train_steps = 500\neval_at = [0, 10]", "step 0"),
            (
                "train_steps = 500\neval_at = [10, 600]",
                "beyond the budget",
            ),
            ("train_steps = 500\neval_at = \"log:10..5:3\"", "reversed"),
            ("train_steps = 500\neval_at = \"lin:1..5:3\"", "log:A..B:K"),
            ("eval_at = [10]", "train_steps"),
        ] {
            let mut c: SweepConfig = parse_toml(text).unwrap();
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, "eval_at", "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        let mut c: SweepConfig = parse_toml("train_steps = 0").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "train_steps");
        let mut c: SweepConfig = parse_toml("train_steps = 5\n[train]\nepochs = 3").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "train_steps");
    }

    #[test]
    fn budgets_that_grow_with_n_resolve_per_unit_with_their_own_snapshots() {
        let mut c: SweepConfig = parse_toml(
            "n = [4, 64]\ntrain_steps = \"max(1000, 300*n)\"\neval_at = \"log:10..end:3\"",
        )
        .unwrap();
        c.validate().unwrap();
        // n = 4: max(1000, 1200) = 1200; n = 64: 19200. log 10..B, 3 points: 10, sqrt(10 B), B.
        assert_eq!((c.budget(4), c.budget(64)), (Some(1200), Some(19200)));
        assert_eq!(c.snapshots(4), vec![10, 110, 1200]);
        assert_eq!(c.snapshots(64), vec![10, 438, 19200]);
        let c: SweepConfig = parse_toml("train_steps = \"max(5000, 3 * n)\"").unwrap();
        assert_eq!((c.budget(10), c.budget(2000)), (Some(5000), Some(6000)));
        let c: SweepConfig = parse_toml("train_steps = \"n*7\"").unwrap();
        assert_eq!(c.budget(3), Some(21));
        // A number stays a number when written back (old sweeps' fingerprints are unchanged).
        let c: SweepConfig = parse_toml("train_steps = 12000").unwrap();
        assert!(c.fingerprint().contains("train_steps = 12000\n"));
        for (text, needle) in [
            ("train_steps = \"300*m\"", "not a budget"),
            ("train_steps = \"max(300*n)\"", "not a budget"),
            ("train_steps = \"0*n\"", "0 optimizer steps at n = 10"),
        ] {
            let mut c: SweepConfig = parse_toml(text).unwrap();
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, "train_steps", "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        // A fixed step beyond the smallest unit's budget names that n.
        let mut c: SweepConfig =
            parse_toml("n = [4, 64]\ntrain_steps = \"300*n\"\neval_at = [2000]").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("at n = 4: step 2000 is beyond the budget of 1200"),
            "{e}"
        );
    }

    #[test]
    fn the_pair_config_loads_and_pair_defaults_to_off() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/pair.toml");
        let mut c: SweepConfig = memdiff_data::config::load_toml(Path::new(path)).unwrap();
        c.validate().unwrap();
        assert!(c.pair && c.has_model());
        assert_eq!(c.snapshots(c.n[0]).last(), Some(&12000));
        assert!(!SweepConfig::default().pair);
        // pair is part of the fingerprint: a folder run without it is not resumed with it.
        let mut off = c.clone();
        off.pair = false;
        assert_ne!(off.fingerprint(), c.fingerprint());
    }
}
