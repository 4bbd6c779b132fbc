//! One training run measured along its training: the rows of `memdiff train --eval-at`
//! (`trajectory.csv`), one per snapshot.
//!
//! The quantities are the sweep's (docs/METHOD.md §2.6, §4, §7), computed by the same functions:
//! the metric ([`crate::metric::evaluate`]) against a reference set O drawn from the data
//! distribution and never trained on, f_mem ([`crate::metric::nearest`], d1/d2 < 1/3, Wilson
//! interval), the oracle's E_OG and sample quality on the same O (computed once: they do not
//! depend on training), the sample quality ([`crate::metric::quality`]), and the three-way verdict of [`memdiff_metrics::summary::verdict`]. Quantised data follow the
//! one policy of [`memdiff_data::quantize`].

use crate::config::{Dequantize, EvalAt};
use crate::metric::{self, MetricSetup, Prepared};
use memdiff_data::quantize::{self, Decision, Role};
use memdiff_data::recipe::DataRecipe;
use memdiff_data::seed::derive_seed;
use memdiff_data::ImageSet;
use memdiff_metrics::stats::{wilson, Z95};
use memdiff_metrics::summary::{at_data_quality, verdict, VerdictRule};
use memdiff_schedule::SampleOptions;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `[eval]` table of a train config (and the `--eval-*` flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Optimizer steps at which to measure: `"log:A..B:K"` or a list; the run's last step is
    /// always added.
    pub at: Option<EvalAt>,
    /// Samples generated at each snapshot.
    pub generated: usize,
    /// Size of the reference set O (held out from training).
    pub n_original: usize,
    /// Bandwidth rule of the metric (docs/METHOD.md §4); default the sweep's, `std-over-n`.
    pub bandwidth: String,
    /// Treatment of quantised data (docs/METHOD.md §1.3).
    pub dequantize: Dequantize,
    /// Seed of O, the oracle's draw and the sampling noise (default: the run's seed).
    pub seed: Option<u64>,
    /// Thresholds of the verdict.
    pub verdict: VerdictRule,
    /// Save a loadable checkpoint of every snapshot under `snapshots/step-SSSSSSSS/`.
    pub keep_weights: bool,
    /// How each snapshot is sampled (the `[sample]` keys of `memdiff sample`; DDIM with
    /// `sampling_steps` K < s is faster). The indexing is always the run's.
    pub sample: SampleOptions,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            at: None,
            generated: 100,
            n_original: 1000,
            bandwidth: MetricSetup::default().bandwidth,
            dequantize: Dequantize::Auto,
            seed: None,
            verdict: VerdictRule::default(),
            keep_weights: false,
            sample: SampleOptions::default(),
        }
    }
}

/// Errors of the probe, naming the setting or the file.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{field}: {message}")]
    Setting {
        field: &'static str,
        message: String,
    },
    #[error("reference set: {0}")]
    Data(#[from] memdiff_data::DataError),
    #[error("metric: {0}")]
    Metric(#[from] metric::MetricError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn setting(field: &'static str, message: impl Into<String>) -> ProbeError {
    ProbeError::Setting {
        field,
        message: message.into(),
    }
}

impl ProbeSettings {
    /// The snapshot steps of a run of `budget` optimizer steps (`None`: no snapshots asked).
    pub fn steps(&self, budget: usize) -> Result<Option<Vec<usize>>, ProbeError> {
        let Some(at) = &self.at else {
            return Ok(None);
        };
        if self.generated < 2 {
            return Err(setting(
                "eval.generated",
                format!("{} samples per snapshot: give at least 2", self.generated),
            ));
        }
        if self.n_original < 2 {
            return Err(setting(
                "eval.n_original",
                format!("O of {} images: give at least 2", self.n_original),
            ));
        }
        self.verdict.validate().map_err(|(field, message)| {
            setting(
                match field {
                    "verdict.copy_fraction" => "eval.verdict.copy_fraction",
                    "verdict.onset_fraction" => "eval.verdict.onset_fraction",
                    "verdict.frechet_tolerance" => "eval.verdict.frechet_tolerance",
                    _ => "eval.verdict.quality_tolerance",
                },
                message,
            )
        })?;
        at.resolve(budget)
            .map(Some)
            .map_err(|m| setting("eval_at", m))
    }
}

/// The reference set O and the oracle's samples for a run trained on `recipe`: fresh draws of
/// the mixture (GMM), or images of the same file or folder that are not in the training set
/// (MNIST, your own images), seeded by `seed`. A `.npy` recipe of the old form (no held-out
/// record) has no distribution to draw from: an error.
pub fn reference_sets(
    recipe: &DataRecipe,
    n_original: usize,
    generated: usize,
    seed: u64,
) -> Result<(ImageSet, ImageSet), ProbeError> {
    match recipe {
        DataRecipe::Gmm { spec, .. } => Ok((
            spec.sample(n_original, derive_seed(seed, "probe-original", &[]))?
                .0,
            spec.sample(generated, derive_seed(seed, "probe-oracle", &[]))?
                .0,
        )),
        DataRecipe::Mnist {
            images,
            resize,
            indices,
        } => {
            let all = memdiff_data::mnist::load_images(images)?;
            let (o, g) = held_out(&all, indices, n_original, generated, seed, images)?;
            Ok((resize.apply(&o)?, resize.apply(&g)?))
        }
        DataRecipe::Images { path, .. } => {
            let (all, indices) = recipe.pool()?.expect("an images recipe has a pool");
            Ok(held_out(&all, &indices, n_original, generated, seed, path)?)
        }
        DataRecipe::Npy { path, .. } => Err(setting(
            "eval_at",
            format!(
                "the training set is a file ({}): there is no distribution to draw a reference set O from, and this recipe (an old form) does not record which images were held out; train again with --data FILE --n N (fewer than its images) to measure along training",
                path.display()
            ),
        )),
    }
}

/// O and the oracle's draw: `n_original + generated` images of `all` outside `indices` (the
/// training rows), drawn with `seed`; `what` names the source in errors.
fn held_out(
    all: &ImageSet,
    indices: &[usize],
    n_original: usize,
    generated: usize,
    seed: u64,
    what: &Path,
) -> Result<(ImageSet, ImageSet), ProbeError> {
    let mut used = vec![false; all.n];
    for &i in indices {
        if i < all.n {
            used[i] = true;
        }
    }
    let rest: Vec<usize> = (0..all.n).filter(|&i| !used[i]).collect();
    let need = n_original + generated;
    if need > rest.len() {
        return Err(setting(
            "eval.n_original",
            format!(
                "O ({n_original}) and the oracle's draw ({generated}) need {need} images outside the training set; {} has {} (lower --eval-original or --eval-generate, or train on fewer with --n)",
                what.display(),
                rest.len()
            ),
        ));
    }
    let pick = memdiff_data::mnist::subset_indices(
        rest.len(),
        need,
        derive_seed(seed, "probe-heldout", &[]),
    )?;
    let o: Vec<usize> = pick[..n_original].iter().map(|&j| rest[j]).collect();
    let g: Vec<usize> = pick[n_original..].iter().map(|&j| rest[j]).collect();
    Ok((all.select(&o), all.select(&g)))
}

fn nan() -> f64 {
    f64::NAN
}

/// One snapshot of a run (a `trajectory.csv` row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    pub train_step: u64,
    pub n_train: u64,
    pub n_generated: u64,
    pub n_original: u64,
    pub sampler: String,
    pub dequantized: String,
    /// Mean training loss over the last (up to) 10 optimizer steps.
    pub loss: f64,
    pub e_tg: f64,
    pub e_og: f64,
    pub delta: f64,
    pub delta_unbiased: f64,
    /// The oracle's E_OG on the same O (the same at every snapshot).
    pub e_og_oracle: f64,
    pub e_og_vs_oracle: f64,
    pub nn_ratio_mean: f64,
    pub f_mem: f64,
    pub f_mem_lo: f64,
    pub f_mem_hi: f64,
    /// Sample quality against O's first rows (docs/METHOD.md §4.9; NaN when G has ≤ 3 rows):
    /// Fréchet distance (the reading's quality, against the oracle's), k-NN precision and
    /// recall, and the oracle's precision on the same O.
    #[serde(default = "nan")]
    pub frechet: f64,
    #[serde(default = "nan")]
    pub precision: f64,
    #[serde(default = "nan")]
    pub recall: f64,
    #[serde(default = "nan")]
    pub oracle_precision: f64,
    /// The oracle's Fréchet distance on the same O (the reading's null).
    #[serde(default = "nan")]
    pub oracle_frechet: f64,
    /// copying, generalizing or not-yet-trained.
    pub verdict: String,
    /// Training wall time up to this step (sampling and measuring excluded).
    pub train_seconds: f64,
}

/// O prepared once, T treated once, the oracle's E_OG: everything a snapshot is measured
/// against.
pub struct Probe {
    prep: Prepared,
    t: ImageSet<f64>,
    policy: Decision,
    e_og_oracle: f64,
    oracle_quality: memdiff_metrics::quality::QualityValues,
    n_original: usize,
    rule: VerdictRule,
}

impl Probe {
    /// Prepares the probe from the raw (untreated) O, T and oracle draw.
    pub fn new(
        o_raw: &ImageSet,
        t_raw: &ImageSet,
        oracle_raw: &ImageSet,
        settings: &ProbeSettings,
        seed: u64,
    ) -> Result<Self, ProbeError> {
        let policy = quantize::decide(settings.dequantize, seed, o_raw, t_raw);
        let o = policy.apply(o_raw, Role::Original);
        let t = policy.apply(t_raw, Role::Train);
        let setup = MetricSetup::for_policy(&settings.bandwidth, &policy, false);
        let prep = metric::prepare(&o, &setup)?.with_quality(metric::prepare_quality(&o).ok());
        let oracle = policy.apply(oracle_raw, Role::Generated);
        let e_og_oracle = metric::evaluate(&prep, &t, &oracle)?.e_og;
        let oracle_quality = metric::quality(&prep, &oracle)?;
        Ok(Self {
            prep,
            t,
            policy,
            e_og_oracle,
            oracle_quality,
            n_original: o.n,
            rule: settings.verdict,
        })
    }

    /// The oracle's E_OG on this probe's O.
    pub fn e_og_oracle(&self) -> f64 {
        self.e_og_oracle
    }

    /// Measures one snapshot's samples (values in [0, 1], untreated).
    pub fn measure(
        &self,
        train_step: usize,
        generated: &ImageSet,
        sampler: &str,
        loss: f64,
        train_seconds: f64,
    ) -> Result<ProbeRow, ProbeError> {
        if generated.dim() != self.t.dim() {
            return Err(setting(
                "eval",
                format!(
                    "the samples have {} pixels, the training images {}",
                    generated.dim(),
                    self.t.dim()
                ),
            ));
        }
        if let Some(i) = generated.data.iter().position(|v| !v.is_finite()) {
            return Err(setting(
                "eval",
                format!(
                    "generated value {i} at step {train_step} is not finite (training diverged?)"
                ),
            ));
        }
        let g = self.policy.apply(generated, Role::Generated);
        let v = metric::evaluate(&self.prep, &self.t, &g)?;
        let nn = metric::nearest(&g, &self.t)?;
        let copies = (nn.frac_memorized * g.n as f64).round() as u64;
        let f = wilson(copies, g.n as u64, Z95);
        let ratio = v.e_og / self.e_og_oracle;
        let q = metric::quality(&self.prep, &g)?;
        let quality = at_data_quality(
            &self.rule,
            Some((q.frechet, self.oracle_quality.frechet)),
            Some(ratio),
        );
        let reading = verdict(&self.rule, &f, None, quality)
            .map(|x| x.to_string().replace(' ', "-"))
            .unwrap_or_else(|| "-".into());
        Ok(ProbeRow {
            train_step: train_step as u64,
            n_train: self.t.n as u64,
            n_generated: g.n as u64,
            n_original: self.n_original as u64,
            sampler: sampler.to_string(),
            dequantized: self.policy.treatment.to_string(),
            loss,
            e_tg: v.e_tg,
            e_og: v.e_og,
            delta: v.delta,
            delta_unbiased: v.delta_unbiased,
            e_og_oracle: self.e_og_oracle,
            e_og_vs_oracle: ratio,
            nn_ratio_mean: nn.ratio_mean,
            f_mem: f.p,
            f_mem_lo: f.lo,
            f_mem_hi: f.hi,
            frechet: q.frechet,
            precision: q.precision,
            recall: q.recall,
            oracle_precision: self.oracle_quality.precision,
            oracle_frechet: self.oracle_quality.frechet,
            verdict: reading,
            train_seconds,
        })
    }
}

/// Reads `trajectory.csv`.
pub fn read_rows(path: &Path) -> Result<Vec<ProbeRow>, ProbeError> {
    let file = |message: String| ProbeError::File {
        path: path.display().to_string(),
        message,
    };
    let mut r = csv::Reader::from_path(path).map_err(|e| file(e.to_string()))?;
    r.deserialize()
        .collect::<Result<Vec<ProbeRow>, _>>()
        .map_err(|e| {
            file(format!(
                "{e} (not a trajectory.csv written by memdiff train?)"
            ))
        })
}

/// Writes `trajectory.csv` atomically.
pub fn write_rows(path: &Path, rows: &[ProbeRow]) -> Result<(), ProbeError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).expect("memory write");
    }
    let bytes = w.into_inner().expect("memory write");
    memdiff_data::atomic::write_bytes(path, &bytes).map_err(|e| ProbeError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The rows of `trajectory.csv` a run resumed at `step` keeps: those measured at or before it
/// (a killed run may have measured a snapshot after its last checkpoint; it is measured again,
/// to the same numbers). No file: none.
pub fn rows_up_to(path: &Path, step: usize) -> Result<Vec<ProbeRow>, ProbeError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rows = read_rows(path)?;
    rows.retain(|r| r.train_step as usize <= step);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_data::GmmSpec;

    fn spec() -> GmmSpec {
        GmmSpec::centred(8, 2, 0.5, 0.1, 0.1).unwrap()
    }

    fn settings() -> ProbeSettings {
        ProbeSettings {
            at: Some(EvalAt::Text("log:10..100:3".into())),
            generated: 40,
            n_original: 200,
            ..Default::default()
        }
    }

    fn probe(t: &ImageSet) -> Probe {
        let recipe = DataRecipe::Gmm {
            spec: spec(),
            n: t.n,
            seed: 1,
        };
        let (o, oracle) = reference_sets(&recipe, 200, 40, 7).unwrap();
        Probe::new(&o, t, &oracle, &settings(), 7).unwrap()
    }

    #[test]
    fn copies_of_the_training_set_read_as_copying_and_fresh_draws_as_generalizing() {
        let t = spec().sample(20, 1).unwrap().0;
        let p = probe(&t);
        // 40 exact copies of T: every d1 is 0, so f_mem = 1 and E_TG = 0.
        let copies = t.select(&(0..40).map(|i| i % 20).collect::<Vec<_>>());
        let r = p.measure(10, &copies, "test", 0.5, 1.0).unwrap();
        assert_eq!((r.f_mem, r.verdict.as_str()), (1.0, "copying"));
        assert_eq!(r.n_train, 20);
        // Wilson interval of 40 / 40.
        let w = wilson(40, 40, Z95);
        assert_eq!((r.f_mem_lo, r.f_mem_hi), (w.lo, w.hi));
        // The oracle's own draw: E_OG equals the oracle's, so the ratio is exactly 1.
        let recipe = DataRecipe::Gmm {
            spec: spec(),
            n: 20,
            seed: 1,
        };
        let (_, oracle) = reference_sets(&recipe, 200, 40, 7).unwrap();
        let r = p.measure(100, &oracle, "test", 0.1, 2.0).unwrap();
        assert_eq!(r.e_og_vs_oracle, 1.0);
        assert_eq!(r.e_og, p.e_og_oracle());
        assert!(r.f_mem < 0.2, "fresh draws are not copies: {}", r.f_mem);
        assert_eq!(r.verdict, "generalizing");
        // Far from the data (every pixel near 0.95): not yet trained.
        let far = (0..40 * 64)
            .map(|i| 0.95 + 0.0001 * (i % 7) as f32)
            .collect();
        let noise = ImageSet::new(40, 1, 8, 8, far);
        let r = p.measure(100, &noise, "test", 0.1, 2.0).unwrap();
        assert!(r.e_og_vs_oracle > 1.5, "{}", r.e_og_vs_oracle);
        assert_eq!(r.verdict, "not-yet-trained");
    }

    #[test]
    fn the_metric_is_the_sweeps() {
        // Same O, T, G through crate::metric directly: the same numbers bit for bit.
        let t = spec().sample(20, 3).unwrap().0;
        let p = probe(&t);
        let g = spec().sample(40, 9).unwrap().0;
        let r = p.measure(5, &g, "x", 0.0, 0.0).unwrap();
        let recipe = DataRecipe::Gmm {
            spec: spec(),
            n: 20,
            seed: 3,
        };
        let (o, _) = reference_sets(&recipe, 200, 40, 7).unwrap();
        let prep = metric::prepare(&o.to_f64(), &MetricSetup::default()).unwrap();
        let v = metric::evaluate(&prep, &t.to_f64(), &g.to_f64()).unwrap();
        assert_eq!((r.e_tg, r.e_og, r.delta), (v.e_tg, v.e_og, v.delta));
        let nn = metric::nearest(&g, &t).unwrap();
        assert_eq!(r.nn_ratio_mean, nn.ratio_mean);
    }

    #[test]
    fn mnist_reference_sets_never_contain_a_training_digit() {
        let images = memdiff_data::mnist::SHIPPED.into();
        let recipe =
            DataRecipe::mnist_subset(images, memdiff_data::Resize::Bilinear(8), 50, 4).unwrap();
        let DataRecipe::Mnist { indices, .. } = &recipe else {
            unreachable!()
        };
        let t = recipe.build().unwrap();
        let (o, g) = reference_sets(&recipe, 300, 30, 4).unwrap();
        assert_eq!((o.n, g.n, o.dim()), (300, 30, 64));
        // No row of O or of the oracle's draw equals a training row.
        for set in [&o, &g] {
            for i in 0..set.n {
                assert!((0..t.n).all(|j| set.row(i) != t.row(j)), "row {i}");
            }
        }
        assert_eq!(indices.len(), 50);
        // Too many asked: one error naming the setting.
        let e = reference_sets(&recipe, 10_000, 30, 4)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("eval.n_original: "), "{e}");
    }

    #[test]
    fn schedules_and_settings_errors_name_the_key() {
        let s = settings();
        assert_eq!(s.steps(100).unwrap(), Some(vec![10, 32, 100]));
        assert_eq!(s.steps(200).unwrap(), Some(vec![10, 32, 100, 200]));
        let e = s.steps(50).unwrap_err().to_string();
        assert!(
            e.starts_with("eval_at: step 100 is beyond the budget"),
            "{e}"
        );
        let none = ProbeSettings::default();
        assert_eq!(none.steps(100).unwrap(), None);
        let mut one = settings();
        one.generated = 1;
        assert!(one
            .steps(100)
            .unwrap_err()
            .to_string()
            .starts_with("eval.generated: "));
        let npy = DataRecipe::Npy {
            path: "/x/t.npy".into(),
            indices: None,
        };
        let e = reference_sets(&npy, 10, 10, 0).unwrap_err().to_string();
        assert!(
            e.starts_with("eval_at: the training set is a file (/x/t.npy)"),
            "{e}"
        );
    }

    #[test]
    fn trajectory_csv_round_trips_and_resume_keeps_the_rows_up_to_the_checkpoint() {
        let t = spec().sample(20, 1).unwrap().0;
        let p = probe(&t);
        let g = spec().sample(40, 2).unwrap().0;
        let rows: Vec<ProbeRow> = [10, 32, 100]
            .iter()
            .map(|&s| p.measure(s, &g, "ddpm/clipped-x0", 0.25, s as f64).unwrap())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trajectory.csv");
        write_rows(&path, &rows).unwrap();
        assert_eq!(read_rows(&path).unwrap(), rows);
        assert_eq!(rows_up_to(&path, 50).unwrap(), rows[..2].to_vec());
        assert!(rows_up_to(&dir.path().join("none.csv"), 50)
            .unwrap()
            .is_empty());
        std::fs::write(&path, "train_step,x\n1,2\n").unwrap();
        let e = read_rows(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
    }
}
