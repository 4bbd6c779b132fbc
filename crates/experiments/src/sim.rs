//! One unit of a sweep: draw O and T, run the generators, evaluate, return the rows.
//!
//! The network is behind [`ModelRunner`] (implemented by the binary over burn, and by test
//! doubles here), so this crate stays free of the deep-learning framework.

use crate::config::{DataKind, Protocol, SweepConfig};
use crate::grid::{derive_seed, GeneratorKind, SimSeeds, Unit};
use crate::metric::{self, MetricSetup, Prepared};
use crate::row::SimRow;
use memdiff_data::{GmmSpec, ImageSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the network is asked to do in one model unit.
#[derive(Clone, Debug)]
pub struct ModelJob {
    pub unit: Unit,
    pub px: usize,
    pub steps: usize,
    /// Generated samples wanted.
    pub generated: usize,
    pub train_seed: u64,
    pub sample_seed: u64,
    /// Papers' code: shifted diffusion indices, g samples drawn one at a time.
    pub papers_code: bool,
    /// The config's `[train]` and `[sample]` tables.
    pub train: toml::Table,
    pub sample: toml::Table,
    /// Training budget in optimizer steps (`None`: the `[train]` table's epochs).
    pub train_steps: Option<usize>,
    /// Optimizer steps at which to sample the current weights, sorted, the last one the
    /// budget; empty: sample once at the end of training.
    pub snapshots: Vec<usize>,
}

/// One measured state of the network: `generated` images (values in [0, 1]) sampled from the
/// weights after `step` optimizer steps.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub step: usize,
    pub generated: ImageSet,
    /// Training wall time up to this step (sampling excluded).
    pub train_seconds: f64,
    /// Mean training loss over the last (up to) 10 optimizer steps before the snapshot.
    pub loss: f64,
}

/// What the network returns: one [`Snapshot`] per requested step (one at the end of training
/// when none were requested), in order, and how they were sampled.
#[derive(Clone, Debug)]
pub struct ModelOutput {
    pub snapshots: Vec<Snapshot>,
    /// The sampler, e.g. `ddpm/clipped-x0` (the `sampler` column of results.csv).
    pub sampler: String,
}

/// Trains a fresh network on a training set (values in [0, 1]) and samples from it at every
/// snapshot of the job.
pub trait ModelRunner {
    fn train_and_sample(
        &mut self,
        job: &ModelJob,
        train: &ImageSet,
    ) -> Result<ModelOutput, BoxError>;
}

/// Errors of one unit, naming it.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unit {unit}: {message}")]
    Data { unit: String, message: String },
    #[error("unit {unit}: {source}")]
    Metric {
        unit: String,
        source: metric::MetricError,
    },
    #[error("unit {unit}: training/sampling failed: {source}")]
    Model { unit: String, source: BoxError },
    #[error("unit {unit}: cannot save samples: {source}")]
    Samples {
        unit: String,
        source: memdiff_data::DataError,
    },
}

/// Shared state across units: the config, the MNIST pool, and O's prepared statistics cache
/// (one O per grid point and simulation; every s and generator of it reuses it, and with a
/// fixed O every unit does).
pub struct SimContext {
    pub cfg: SweepConfig,
    pool: Option<ImageSet>,
    cache: Option<(u64, usize, usize, ImageSet, Prepared)>,
    /// Where `sim 0` of every model grid point saves a few G with their nearest T (None: don't).
    pub samples_dir: Option<PathBuf>,
    warned_ties: bool,
}

fn tracing_warn(msg: &str) {
    eprintln!("warning: {msg}");
}

const QUANT: f64 = 1.0 / 255.0;

/// True if every value sits on the k/255 grid (within 1e-6): u8 data.
pub fn is_quantised(set: &ImageSet) -> bool {
    set.data
        .iter()
        .all(|&v| ((v as f64) * 255.0 - ((v as f64) * 255.0).round()).abs() < 1e-4)
}

/// Adds seeded U(0, 1/255) noise to every value (one quantisation step: the value k/255 becomes
/// uniform on [k/255, (k+1)/255)).
pub fn dequantise(set: &ImageSet, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = set.clone();
    for v in &mut out.data {
        *v += (rng.random::<f64>() * QUANT) as f32;
    }
    out
}

fn map(set: &ImageSet, f: impl Fn(f32) -> f32) -> ImageSet {
    let mut out = set.clone();
    out.data.iter_mut().for_each(|v| *v = f(*v));
    out
}

/// Rows of T used by the papers' code (the 90 % training split; at least 1).
pub fn papers_split(n: usize) -> usize {
    ((n as f64 * 0.9).floor() as usize).max(1)
}

impl SimContext {
    pub fn new(cfg: SweepConfig) -> Result<Self, SimError> {
        let pool = if cfg.data == DataKind::Mnist {
            let err = |e: memdiff_data::DataError| SimError::Data {
                unit: "-".into(),
                message: e.to_string(),
            };
            let raw =
                memdiff_data::mnist::load_images(Path::new(&cfg.mnist.images)).map_err(err)?;
            let resize = if cfg.mnist.pad {
                memdiff_data::Resize::Pad32
            } else {
                memdiff_data::Resize::Bilinear(cfg.px)
            };
            if resize.side() != cfg.px {
                return Err(SimError::Data {
                    unit: "-".into(),
                    message: format!("mnist.pad gives side 32 but px = {}: set px = 32", cfg.px),
                });
            }
            let img = resize.apply(&raw).map_err(err)?;
            let need = cfg.n_original + cfg.n.iter().max().copied().unwrap_or(0) + cfg.generated;
            if need > img.n {
                return Err(SimError::Data {
                    unit: "-".into(),
                    message: format!(
                        "{} holds {} images but n_original + max n + generated = {need}: lower n_original or n",
                        cfg.mnist.images, img.n
                    ),
                });
            }
            Some(img)
        } else {
            None
        };
        Ok(Self {
            cfg,
            pool,
            cache: None,
            samples_dir: None,
            warned_ties: false,
        })
    }

    fn spec(&self, u: &Unit) -> Result<GmmSpec, SimError> {
        let g = &self.cfg.gmm;
        let mut spec = GmmSpec::centred(self.cfg.px, u.components, g.mu0, g.spacing, g.sigma)
            .map_err(|e| SimError::Data {
                unit: u.id(),
                message: e.to_string(),
            })?;
        spec.clip = g.clip;
        Ok(spec)
    }

    fn gmm(&self, u: &Unit, n: usize, seed: u64) -> Result<ImageSet, SimError> {
        self.spec(u)?
            .sample(n, seed)
            .map(|x| x.0)
            .map_err(|e| SimError::Data {
                unit: u.id(),
                message: e.to_string(),
            })
    }

    /// (O, T, oracle pool) of the unit, before any dequantisation.
    fn draw(
        &self,
        u: &Unit,
        s: &SimSeeds,
    ) -> Result<(ImageSet, ImageSet, Option<ImageSet>), SimError> {
        let c = &self.cfg;
        match &self.pool {
            None => Ok((
                self.gmm(u, c.n_original, s.original)?,
                self.gmm(u, u.n, s.train_set)?,
                None,
            )),
            Some(pool) => {
                let err = |e: memdiff_data::DataError| SimError::Data {
                    unit: u.id(),
                    message: e.to_string(),
                };
                let perm =
                    memdiff_data::mnist::subset_indices(pool.n, pool.n, s.original).map_err(err)?;
                let (o_idx, rest) = perm.split_at(c.n_original);
                let pick =
                    memdiff_data::mnist::subset_indices(rest.len(), u.n + c.generated, s.train_set)
                        .map_err(err)?;
                let t_idx: Vec<usize> = pick[..u.n].iter().map(|&j| rest[j]).collect();
                let or_idx: Vec<usize> = pick[u.n..].iter().map(|&j| rest[j]).collect();
                Ok((
                    pool.select(o_idx),
                    pool.select(&t_idx),
                    Some(pool.select(&or_idx)),
                ))
            }
        }
    }

    fn setup(&self) -> MetricSetup {
        MetricSetup {
            bandwidth: self.cfg.bandwidth.clone(),
            bandwidth_floor: (self.cfg.dequantize_resolved() == "floor").then_some(QUANT),
            paper_scale: self.cfg.protocol == Protocol::PapersCode,
            sigma_divisor: if self.cfg.protocol == Protocol::PapersCode {
                255.0
            } else {
                1.0
            },
        }
    }

    /// Dequantises a set drawn from the data (O, T, the oracle's draw) under
    /// `dequantize = uniform`: MNIST sets always (u8 at the source; after a bilinear resize the
    /// values leave the k/255 grid but the exact ties — the zero background — remain), other
    /// sets when their values sit on the k/255 grid.
    fn deq(&self, set: ImageSet, seed: u64) -> ImageSet {
        if self.cfg.dequantize_resolved() == "uniform"
            && (self.pool.is_some() || is_quantised(&set))
        {
            dequantise(&set, derive_seed(seed, "dequantise", &[]))
        } else {
            set
        }
    }

    /// Computes every row of one unit.
    pub fn run_unit(
        &mut self,
        u: &Unit,
        runner: &mut dyn ModelRunner,
    ) -> Result<Vec<SimRow>, SimError> {
        let cfg = self.cfg.clone();
        let seeds = SimSeeds::new(&cfg, u);
        let papers = cfg.protocol == Protocol::PapersCode;
        let (o_raw, t_full, oracle_pool) = self.draw(u, &seeds)?;
        // Dequantise O and T (quantised data only), each with its own seed.
        let o = self.deq(o_raw, seeds.original);
        let t_full = self.deq(t_full, seeds.train_set);
        let n_t = if papers { papers_split(u.n) } else { u.n };
        let t = t_full.select(&(0..n_t).collect::<Vec<_>>());
        // O's statistics: once per O (cache keyed by its seed and size).
        let hit = matches!(&self.cache, Some((s, n0, d0, _, _)) if *s == seeds.original && *n0 == o.n && *d0 == o.dim());
        if !hit {
            let o_eval = if papers {
                map(&o, |v| v * 255.0)
            } else {
                o.clone()
            };
            let prep =
                metric::prepare(&o_eval, &self.setup()).map_err(|source| SimError::Metric {
                    unit: u.id(),
                    source,
                })?;
            self.cache = Some((seeds.original, o.n, o.dim(), o, prep));
        }
        let prep = &self.cache.as_ref().expect("filled above").4;
        let t_eval = if papers {
            map(&t, |v| 2.0 * v - 1.0)
        } else {
            t.clone()
        };

        let generators: Vec<(String, GeneratorKind)> = cfg
            .generators
            .iter()
            .map(|g| (g.clone(), GeneratorKind::parse(g).expect("validated")))
            .collect();
        let mut rows = Vec::new();
        for (name, kind) in generators {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seeds.reference, &name, &[]));
            let measured: Vec<Measured> = match kind {
                GeneratorKind::Oracle => {
                    let g = match &oracle_pool {
                        Some(p) => self.deq(p.clone(), seeds.reference),
                        None => self.gmm(
                            u,
                            cfg.generated,
                            derive_seed(seeds.reference, "oracle", &[]),
                        )?,
                    };
                    vec![Measured::reference(g)]
                }
                GeneratorKind::Copy | GeneratorKind::CopyNoise(_) => {
                    let idx: Vec<usize> = (0..cfg.generated)
                        .map(|_| rng.random_range(0..t.n))
                        .collect();
                    let mut g = t.select(&idx);
                    if let GeneratorKind::CopyNoise(sd) = kind {
                        let normal = rand_distr::Normal::new(0.0, sd).expect("sd >= 0 validated");
                        for v in &mut g.data {
                            *v += rand_distr::Distribution::sample(&normal, &mut rng) as f32;
                        }
                    }
                    vec![Measured::reference(g)]
                }
                GeneratorKind::Model => {
                    let job = ModelJob {
                        unit: *u,
                        px: cfg.px,
                        steps: u.steps,
                        generated: cfg.generated,
                        train_seed: seeds.training,
                        sample_seed: seeds.sampling,
                        papers_code: papers,
                        train: cfg.train.clone(),
                        sample: cfg.sample.clone(),
                        train_steps: cfg.train_steps,
                        snapshots: cfg.snapshots(),
                    };
                    let out =
                        runner
                            .train_and_sample(&job, &t)
                            .map_err(|source| SimError::Model {
                                unit: u.id(),
                                source,
                            })?;
                    let want: Vec<usize> = out.snapshots.iter().map(|s| s.step).collect();
                    if !job.snapshots.is_empty() && want != job.snapshots {
                        return Err(SimError::Data {
                            unit: u.id(),
                            message: format!(
                                "the model returned snapshots at steps {want:?}; expected {:?}",
                                job.snapshots
                            ),
                        });
                    }
                    let mut v = Vec::with_capacity(out.snapshots.len());
                    for snap in out.snapshots {
                        let g = snap.generated;
                        if g.n != cfg.generated || g.dim() != t.dim() {
                            return Err(SimError::Data {
                                unit: u.id(),
                                message: format!(
                                    "the model returned {} images of {} pixels; expected {} of {}",
                                    g.n,
                                    g.dim(),
                                    cfg.generated,
                                    t.dim()
                                ),
                            });
                        }
                        if let Some(i) = g.data.iter().position(|v| !v.is_finite()) {
                            return Err(SimError::Data {
                                unit: u.id(),
                                message: format!(
                                    "generated value {i} at step {} is not finite (training diverged?)",
                                    snap.step
                                ),
                            });
                        }
                        v.push(Measured {
                            g,
                            train_step: snap.step as u64,
                            train_seconds: snap.train_seconds,
                            loss: snap.loss,
                            sampler: out.sampler.clone(),
                        });
                    }
                    v
                }
            };
            let last = measured.len().saturating_sub(1);
            for (
                si,
                Measured {
                    g,
                    train_step,
                    train_seconds,
                    loss,
                    sampler,
                },
            ) in measured.into_iter().enumerate()
            {
                let v = metric::evaluate(prep, &t_eval, &g).map_err(|source| SimError::Metric {
                    unit: u.id(),
                    source,
                })?;
                if v.tie_share_oo > 0.5 && cfg.dequantize_resolved() == "none" && !self.warned_ties
                {
                    self.warned_ties = true;
                    tracing_warn(&format!(
                    "exact ties make up {:.0} % of O's self-term pairs: the metric is dominated by \
                     quantisation (SPEC §4b); use dequantize = \"uniform\" or \"floor\"",
                    100.0 * v.tie_share_oo
                ));
                }
                let nn = if cfg.nn {
                    Some(metric::nearest(&g, &t).map_err(|source| SimError::Metric {
                        unit: u.id(),
                        source,
                    })?)
                } else {
                    None
                };
                if kind == GeneratorKind::Model && si == last && u.sim == 0 && cfg.save_images > 0 {
                    if let Some(dir) = &self.samples_dir {
                        let nn = match &nn {
                            Some(x) => x.clone(),
                            None => metric::nearest(&g, &t).map_err(|source| SimError::Metric {
                                unit: u.id(),
                                source,
                            })?,
                        };
                        let k = cfg.save_images.min(g.n);
                        let mut data = Vec::with_capacity(2 * k * g.dim());
                        for i in 0..k {
                            data.extend_from_slice(g.row(i));
                            data.extend_from_slice(t.row(nn.nearest[i]));
                        }
                        let set = ImageSet::new(2 * k, g.channels, g.h, g.w, data);
                        let path = dir.join(format!("{}.npy", crate::samples::stem(u)));
                        memdiff_data::npy::write_npy(&path, &set).map_err(|source| {
                            SimError::Samples {
                                unit: u.id(),
                                source,
                            }
                        })?;
                    }
                }
                rows.push(SimRow {
                    data: cfg.data.to_string(),
                    px: cfg.px as u32,
                    d: t.dim() as u32,
                    components: u.components as u32,
                    n: u.n as u64,
                    steps: u.steps as u32,
                    generator: name.clone(),
                    protocol: cfg.protocol.to_string(),
                    sim: u.sim as u64,
                    seed: seeds.row_seed(),
                    n_original: cfg.n_original as u64,
                    n_train: t.n as u64,
                    n_generated: g.n as u64,
                    bandwidth: cfg.bandwidth.clone(),
                    dequantized: cfg.dequantize_resolved().to_string(),
                    e_tg: v.e_tg,
                    e_og: v.e_og,
                    delta: v.delta,
                    delta_unbiased: v.delta_unbiased,
                    nn_ratio_mean: nn.as_ref().map_or(f64::NAN, |x| x.ratio_mean),
                    nn_frac_memorized: nn.as_ref().map_or(f64::NAN, |x| x.frac_memorized),
                    pixels_used: v.pixels_used as u64,
                    pixels_skipped: v.pixels_skipped as u64,
                    train_seconds,
                    final_loss: loss,
                    train_step,
                    sampler,
                });
            }
        }
        Ok(rows)
    }
}

/// One generated set to measure: a reference generator's, or a model snapshot's.
struct Measured {
    g: ImageSet,
    train_step: u64,
    train_seconds: f64,
    loss: f64,
    sampler: String,
}

impl Measured {
    fn reference(g: ImageSet) -> Self {
        Self {
            g,
            train_step: 0,
            train_seconds: f64::NAN,
            loss: f64::NAN,
            sampler: "-".into(),
        }
    }
}
