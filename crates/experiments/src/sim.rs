//! One unit of a sweep: draw O and T, run the generators, evaluate, return the rows.
//!
//! The network is behind [`ModelRunner`] (implemented by the binary over burn, and by test
//! doubles here), so this crate stays free of the deep-learning framework.

use crate::config::{DataKind, Protocol, SweepConfig};
use crate::grid::{derive_seed, GeneratorKind, SimSeeds, Unit};
use crate::metric::{self, MetricSetup, Prepared};
use crate::pair::{PairReference, PairRow};
use crate::row::SimRow;
use memdiff_data::quantize::{self, Decision, Role};
use memdiff_data::reference::{self, Reference};
use memdiff_data::{GmmSpec, ImageSet};
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
    /// The loss probe (`loss_probe` in the config): images the network never sees (values in
    /// [0, 1]), on which, and on the training images, every snapshot measures the denoising
    /// loss at fixed noise levels (`memdiff_schedule::probe`) with `probe_seed`; `None`: off.
    pub held_out: Option<ImageSet>,
    pub probe_seed: u64,
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
    /// The loss probe's (mean, s.e.) per level (`memdiff_schedule::probe::LEVELS`) on the
    /// training images and on the job's held-out images; `None` without `held_out`.
    pub probe: Option<ProbeLosses>,
}

/// The denoising loss of one snapshot at the probe's levels (mean, s.e. per level).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeLosses {
    pub train: Vec<(f64, f64)>,
    pub held_out: Vec<(f64, f64)>,
}

/// What the network returns: one [`Snapshot`] per requested step (one at the end of training
/// when none were requested), in order, and how they were sampled.
#[derive(Clone, Debug)]
pub struct ModelOutput {
    pub snapshots: Vec<Snapshot>,
    /// The sampler, e.g. `ddpm/clipped-x0` (the `sampler` column of results.csv).
    pub sampler: String,
    /// Images per optimizer step the network trained with (the largest batch; 0: unknown).
    pub train_batch: usize,
}

/// Trains a fresh network on a training set (values in [0, 1]) and samples from it at every
/// snapshot of the job.
pub trait ModelRunner {
    fn train_and_sample(
        &mut self,
        job: &ModelJob,
        train: &ImageSet,
    ) -> Result<ModelOutput, BoxError>;

    /// Several networks at once (the two networks of the two-training-sets test): one result
    /// per job, in order. By default one after the other; a batching runner
    /// ([`crate::batch::Member`]) trains them as one ensemble.
    fn train_and_sample_many(
        &mut self,
        jobs: &[(&ModelJob, &ImageSet)],
    ) -> Vec<Result<ModelOutput, BoxError>> {
        jobs.iter()
            .map(|(job, train)| self.train_and_sample(job, train))
            .collect()
    }

    /// Called once when the worker using this runner takes no more units (a batching runner,
    /// [`crate::batch::Member`], then stops waiting for it).
    fn finished(&mut self) {}
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

/// Shared state across units: the config, the pool of images (MNIST, your own), and O's
/// prepared statistics cache
/// (one O per grid point and simulation; every s and generator of it reuses it, and with a
/// fixed O every unit does).
pub struct SimContext {
    pub cfg: SweepConfig,
    pool: Option<ImageSet>,
    cache: Option<(u64, usize, usize, Prepared)>,
    /// Where `sim 0` of every model grid point saves a few G with their nearest T (None: don't).
    pub samples_dir: Option<PathBuf>,
    warned_ties: bool,
    told_policy: bool,
}

/// Rows of T used by the papers' code (the 90 % training split; at least 1).
pub fn papers_split(n: usize) -> usize {
    ((n as f64 * 0.9).floor() as usize).max(1)
}

impl SimContext {
    pub fn new(cfg: SweepConfig) -> Result<Self, SimError> {
        let err = |e: memdiff_data::DataError| SimError::Data {
            unit: "-".into(),
            message: e.to_string(),
        };
        let source = match &cfg.data {
            DataKind::Gmm => None,
            DataKind::Mnist => {
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
                        message: format!(
                            "mnist.pad gives side 32 but px = {}: set px = 32",
                            cfg.px
                        ),
                    });
                }
                Some((resize.apply(&raw).map_err(err)?, cfg.mnist.images.clone()))
            }
            DataKind::Images(d) => {
                let path = Path::new(&d.path);
                let src = memdiff_data::read_source(path, &d.read_options(cfg.px)).map_err(err)?;
                if let Some(h) = d.hash.as_ref().filter(|h| **h != src.hash) {
                    return Err(err(memdiff_data::DataError::Changed {
                        path: path.to_path_buf(),
                        recorded: h.clone(),
                        now: src.hash,
                    }));
                }
                Some((src.set, d.path.clone()))
            }
        };
        let pool = if let Some((img, name)) = source {
            let max_n = cfg.n.iter().max().copied().unwrap_or(0);
            // pair = true: a second training set, disjoint from the first, O and the oracle's.
            let sets = if cfg.pair { 2 } else { 1 };
            let need = cfg.n_original + sets * max_n + cfg.generated;
            if need > img.n {
                let what = if cfg.pair {
                    "n_original + 2 max n (pair = true) + generated"
                } else {
                    "n_original + max n + generated"
                };
                return Err(SimError::Data {
                    unit: "-".into(),
                    message: format!(
                        "{name} holds {} images but {what} = {need}: lower n_original or n",
                        img.n
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
            told_policy: false,
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

    /// (O, T, oracle pool) of the unit, before any dequantisation (O and T are what
    /// `eval --original/--train` takes to give this unit's numbers, with `--seed` the unit's
    /// `SimSeeds::reference`; the oracle's G is the pool).
    pub fn draw(
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
                let (perm, pick) = self.pool_split(pool, u, s)?;
                let (o_idx, rest) = perm.split_at(c.n_original);
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

    /// The image pool's split for unit `u`: a permutation of the pool whose first `n_original`
    /// images are O, and the positions (in the rest) of T's n images then the oracle's draw.
    fn pool_split(
        &self,
        pool: &ImageSet,
        u: &Unit,
        s: &SimSeeds,
    ) -> Result<(Vec<usize>, Vec<usize>), SimError> {
        let err = |e: memdiff_data::DataError| SimError::Data {
            unit: u.id(),
            message: e.to_string(),
        };
        let c = &self.cfg;
        let perm = memdiff_data::mnist::subset_indices(pool.n, pool.n, s.original).map_err(err)?;
        let pick = memdiff_data::mnist::subset_indices(
            pool.n - c.n_original,
            u.n + c.generated,
            s.train_set,
        )
        .map_err(err)?;
        Ok((perm, pick))
    }

    /// The second training set of the two-training-sets test (`pair = true`), raw: the unit's
    /// n, drawn with `SimSeeds::pair_train_set`; under MNIST from the pool images that are in
    /// none of O, T and the oracle's draw.
    pub fn draw_pair_train(&self, u: &Unit, s: &SimSeeds) -> Result<ImageSet, SimError> {
        match &self.pool {
            None => self.gmm(u, u.n, s.pair_train_set),
            Some(pool) => {
                let err = |e: memdiff_data::DataError| SimError::Data {
                    unit: u.id(),
                    message: e.to_string(),
                };
                let free = self.free_pool(pool, u, s)?;
                let sub = memdiff_data::mnist::subset_indices(free.len(), u.n, s.pair_train_set)
                    .map_err(err)?;
                let idx: Vec<usize> = sub.iter().map(|&j| free[j]).collect();
                Ok(pool.select(&idx))
            }
        }
    }

    /// The loss probe's `m` held-out images of unit `u`, raw: fresh draws of the mixture (GMM),
    /// or pool images in none of O, T and the oracle's draw (MNIST, your own images; as many
    /// as are left, at most `m`).
    pub fn draw_held_out(&self, u: &Unit, s: &SimSeeds, m: usize) -> Result<ImageSet, SimError> {
        let seed = derive_seed(s.reference, "loss-held-out", &[]);
        match &self.pool {
            None => self.gmm(u, m, seed),
            Some(pool) => {
                let free = self.free_pool(pool, u, s)?;
                let sub = memdiff_data::mnist::subset_indices(free.len(), m.min(free.len()), seed)
                    .map_err(|e| SimError::Data {
                        unit: u.id(),
                        message: format!("loss probe: {e}"),
                    })?;
                Ok(pool.select(&sub.iter().map(|&j| free[j]).collect::<Vec<_>>()))
            }
        }
    }

    /// The pool images in none of unit `u`'s O, T and oracle draw.
    fn free_pool(&self, pool: &ImageSet, u: &Unit, s: &SimSeeds) -> Result<Vec<usize>, SimError> {
        let (perm, pick) = self.pool_split(pool, u, s)?;
        let rest = &perm[self.cfg.n_original..];
        let mut used = vec![false; rest.len()];
        for &j in &pick {
            used[j] = true;
        }
        Ok((0..rest.len())
            .filter(|&j| !used[j])
            .map(|j| rest[j])
            .collect())
    }

    /// Computes every row of one unit (and its pair rows under `pair = true`).
    pub fn run_unit(
        &mut self,
        u: &Unit,
        runner: &mut dyn ModelRunner,
    ) -> Result<UnitRows, SimError> {
        let cfg = self.cfg.clone();
        let seeds = SimSeeds::new(&cfg, u);
        let papers = cfg.protocol == Protocol::PapersCode;
        let (o_raw, t_raw, oracle_pool) = self.draw(u, &seeds)?;
        // Quantised data: the one policy (memdiff_data::quantize), decided on the raw O and T,
        // noise on O, T and every G made outside it, seeded by the unit's reference seed.
        let policy = quantize::decide(cfg.dequantize, seeds.reference, &o_raw, &t_raw);
        let o = policy.apply(&o_raw, Role::Original);
        let t_full = policy.apply(&t_raw, Role::Train);
        let n_t = if papers { papers_split(u.n) } else { u.n };
        let t = t_full.select(&(0..n_t).collect::<Vec<_>>());
        // The pair test's centre and floor come from the treated O (before O moves into the cache).
        let pair_ref = if cfg.pair && cfg.has_model() {
            Some(PairReference::new(&o).map_err(|e| SimError::Metric {
                unit: u.id(),
                source: metric::MetricError(e.to_string()),
            })?)
        } else {
            None
        };
        // O's statistics: once per O (cache keyed by its seed, its noise and size).
        let o_key = derive_seed(
            seeds.original,
            policy.treatment.as_str(),
            &[policy.noise_seed(Role::Original)],
        );
        let hit = matches!(&self.cache, Some((s, n0, d0, _)) if *s == o_key && *n0 == o.n && *d0 == o.dim());
        if !hit {
            // Sample quality against O's first rows, in the data's scale (not under papers-code,
            // whose sets are on different scales).
            let q = if papers {
                None
            } else {
                match metric::prepare_quality(&o) {
                    Ok(q) => Some(q),
                    Err(e) => {
                        tracing::warn!("unit {}: no quality measures: {e}", u.id());
                        None
                    }
                }
            };
            let o_eval = if papers { o.map(|v| v * 255.0) } else { o };
            let prep = metric::prepare(
                &o_eval,
                &MetricSetup::for_policy(&cfg.bandwidth, &policy, papers),
            )
            .map_err(|source| SimError::Metric {
                unit: u.id(),
                source,
            })?
            .with_quality(q);
            self.cache = Some((o_key, o_eval.n, o_eval.dim(), prep));
        }
        let prep = &self.cache.as_ref().expect("filled above").3;
        let t_eval = if papers {
            t.map(|v| 2.0 * v - 1.0)
        } else {
            t.clone()
        };

        // The network trains on the T the metric sees (treated), in f32.
        let t_train = t.map(|v| v as f32);

        let generators: Vec<(String, GeneratorKind)> = cfg
            .generators
            .iter()
            .map(|g| (g.clone(), GeneratorKind::parse(g).expect("validated")))
            .collect();
        let mut rows = Vec::new();
        let mut pairs = Vec::new();
        for (name, kind) in generators {
            // Reference generators: memdiff_data::reference, seeded as `eval --generator`.
            let data_err = |e: memdiff_data::DataError| SimError::Data {
                unit: u.id(),
                message: e.to_string(),
            };
            // `raw` is the G of the rows' tie share: the model's samples, the oracle's draws.
            let measured: Vec<Measured> = match kind {
                GeneratorKind::Oracle => {
                    let raw = match &oracle_pool {
                        Some(p) => p.clone(),
                        None => self.gmm(
                            u,
                            cfg.generated,
                            reference::generator_seed(seeds.reference, &Reference::Oracle),
                        )?,
                    };
                    vec![Measured::reference(
                        policy.apply(&raw, Role::Generated),
                        Some(raw),
                    )]
                }
                // Copies of the treated T: no second noise (memdiff_data::quantize).
                GeneratorKind::Copy => {
                    let seed = reference::generator_seed(seeds.reference, &Reference::Copy);
                    let g = reference::copy_rows(&t, cfg.generated, seed).map_err(data_err)?;
                    vec![Measured::reference(g.0, None)]
                }
                GeneratorKind::CopyNoise(sd) => {
                    let r = Reference::CopyNoise(sd);
                    let seed = reference::generator_seed(seeds.reference, &r);
                    let g = reference::copy_noise(&t, cfg.generated, sd, seed).map_err(data_err)?;
                    vec![Measured::reference(g.0, None)]
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
                        train_steps: cfg.budget(u.n),
                        snapshots: cfg.snapshots(u.n),
                        held_out: match cfg.loss_probe {
                            Some(m) => Some(
                                policy
                                    .apply(&self.draw_held_out(u, &seeds, m)?, Role::Original)
                                    .map(|v| v as f32),
                            ),
                            None => None,
                        },
                        probe_seed: derive_seed(seeds.sampling, "loss-probe", &[]),
                    };
                    // Under the pair test, network B (its own T' and seed) trains beside A.
                    let pair = match &pair_ref {
                        Some(_) => Some(self.pair_job(u, &seeds, &job, &t, &policy)?),
                        None => None,
                    };
                    let t_b_train = pair.as_ref().map(|(_, t_b)| t_b.map(|v| v as f32));
                    let mut jobs = vec![(&job, &t_train)];
                    if let (Some((job_b, _)), Some(t_b)) = (&pair, &t_b_train) {
                        jobs.push((job_b, t_b));
                    }
                    let mut outs = runner.train_and_sample_many(&jobs).into_iter();
                    let model_err = |source| SimError::Model {
                        unit: u.id(),
                        source,
                    };
                    let out = outs
                        .next()
                        .expect("one result per job")
                        .map_err(model_err)?;
                    check_output(u, &job, &out, t.dim(), "")?;
                    if let (Some(r), Some((_, t_b))) = (&pair_ref, &pair) {
                        let out_b = outs
                            .next()
                            .expect("one result per job")
                            .map_err(model_err)?;
                        pairs = self.pair_rows(u, &seeds, &job, [&out, &out_b], r, [&t, t_b])?;
                    }
                    let train_batch = out.train_batch as u64;
                    let mut v = Vec::with_capacity(out.snapshots.len());
                    for snap in out.snapshots {
                        let g = snap.generated;
                        let treated = policy.apply(&g, Role::Generated);
                        v.push(Measured {
                            g: treated,
                            raw: Some(g),
                            train_step: snap.step as u64,
                            train_seconds: snap.train_seconds,
                            loss: snap.loss,
                            sampler: out.sampler.clone(),
                            train_batch,
                            probe: snap.probe,
                        });
                    }
                    v
                }
            };
            let last = measured.len().saturating_sub(1);
            for (si, m) in measured.into_iter().enumerate() {
                let Measured {
                    g,
                    raw,
                    train_step,
                    train_seconds,
                    loss,
                    sampler,
                    train_batch,
                    probe,
                } = m;
                let v = metric::evaluate(prep, &t_eval, &g).map_err(|source| SimError::Metric {
                    unit: u.id(),
                    source,
                })?;
                let quality = metric::quality(prep, &g).map_err(|source| SimError::Metric {
                    unit: u.id(),
                    source,
                })?;
                // The tie shares and the treatment: said once per sweep (debug for every unit);
                // a warning, once, when ties dominate untreated.
                let ties_g = raw.as_ref().map(|r| policy.ties_of(r));
                let line = format!(
                    "unit {} {name}: {}",
                    u.id(),
                    policy.summary(ties_g, raw.is_some())
                );
                if self.told_policy {
                    tracing::debug!("{line}");
                } else {
                    self.told_policy = true;
                    tracing::info!("{line}");
                }
                if let Some(w) = policy.warning(ties_g) {
                    if !self.warned_ties {
                        self.warned_ties = true;
                        tracing::warn!("unit {} {name}: {w}", u.id());
                    }
                }
                let nn = if cfg.nn {
                    Some(metric::nearest(&g, &t).map_err(|source| SimError::Metric {
                        unit: u.id(),
                        source,
                    })?)
                } else {
                    None
                };
                // The last snapshot's images, and with snapshots every snapshot's as well.
                let save = si == last || last > 0;
                if kind == GeneratorKind::Model && save && u.sim == 0 && cfg.save_images > 0 {
                    if let Some(dir) = &self.samples_dir {
                        let nn = match &nn {
                            Some(x) => x.clone(),
                            None => metric::nearest(&g, &t).map_err(|source| SimError::Metric {
                                unit: u.id(),
                                source,
                            })?,
                        };
                        // The raw images: the model's samples and the training images (untreated).
                        let raw_g = raw.as_ref().expect("the model's G");
                        let k = cfg.save_images.min(g.n);
                        let mut data = Vec::with_capacity(2 * k * g.dim());
                        for i in 0..k {
                            data.extend_from_slice(raw_g.row(i));
                            data.extend_from_slice(t_raw.row(nn.nearest[i]));
                        }
                        let set = ImageSet::new(2 * k, g.channels, g.h, g.w, data);
                        let mut stems = Vec::new();
                        if last > 0 {
                            stems.push(crate::samples::snapshot_stem(u, train_step));
                        }
                        if si == last {
                            stems.push(crate::samples::stem(u));
                        }
                        for stem in stems {
                            let path = dir.join(format!("{stem}.npy"));
                            memdiff_data::npy::write_npy(&path, &set).map_err(|source| {
                                SimError::Samples {
                                    unit: u.id(),
                                    source,
                                }
                            })?;
                        }
                        if si == last && cfg.export_samples {
                            let stem = crate::samples::stem(u);
                            let samples = |source| SimError::Samples {
                                unit: u.id(),
                                source,
                            };
                            // This unit's own output: a rerun (a resumed sweep) replaces it.
                            let png = dir.join(format!("{stem}-png"));
                            let _ = std::fs::remove_dir_all(&png);
                            memdiff_data::export::write_png_dir(&png, raw_g).map_err(samples)?;
                            memdiff_data::export::write_npz(
                                &dir.join(format!("{stem}.npz")),
                                raw_g,
                            )
                            .map_err(samples)?;
                        }
                    }
                }
                let mut row = SimRow {
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
                    dequantized: policy.treatment.to_string(),
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
                    ..Default::default()
                };
                row.set_quality(&quality);
                row.train_batch = train_batch;
                if let Some(p) = &probe {
                    row.set_probe(&p.train, &p.held_out);
                }
                rows.push(row);
            }
        }
        Ok(UnitRows { rows, pairs })
    }

    /// Network B of the two-training-sets test (`crate::pair`): A's job (same settings and
    /// sampling noise) with its own training seed, on a second training set T' of the unit's n
    /// given T's treatment with its own noise stream; returns B's job and T' (treated).
    fn pair_job(
        &self,
        u: &Unit,
        seeds: &SimSeeds,
        job: &ModelJob,
        t: &ImageSet<f64>,
        policy: &Decision,
    ) -> Result<(ModelJob, ImageSet<f64>), SimError> {
        let t_b_raw = self.draw_pair_train(u, seeds)?;
        let policy_b = Decision {
            seed: derive_seed(seeds.reference, "pair", &[]),
            ..policy.clone()
        };
        let t_b = policy_b
            .apply(&t_b_raw, Role::Train)
            .select(&(0..t.n).collect::<Vec<_>>());
        let job_b = ModelJob {
            train_seed: seeds.pair_training,
            // B's losses are not recorded.
            held_out: None,
            ..job.clone()
        };
        Ok((job_b, t_b))
    }

    /// The pair rows of one model unit: every snapshot pair of networks A and B measured
    /// against the unit's centre and floor; `t`, `t_b` are the sets A and B trained on.
    fn pair_rows(
        &self,
        u: &Unit,
        seeds: &SimSeeds,
        job: &ModelJob,
        [out, out_b]: [&ModelOutput; 2],
        reference: &PairReference,
        [t, t_b]: [&ImageSet<f64>; 2],
    ) -> Result<Vec<PairRow>, SimError> {
        let cfg = &self.cfg;
        let metric_err = |e: memdiff_metrics::MetricsError| SimError::Metric {
            unit: u.id(),
            source: metric::MetricError(e.to_string()),
        };
        check_output(u, job, out_b, t.dim(), " B")?;
        if out_b.snapshots.len() != out.snapshots.len() {
            return Err(SimError::Data {
                unit: u.id(),
                message: format!(
                    "network B returned {} snapshots, network A {}",
                    out_b.snapshots.len(),
                    out.snapshots.len()
                ),
            });
        }
        let mut rows = Vec::with_capacity(out.snapshots.len());
        for (a, b) in out.snapshots.iter().zip(&out_b.snapshots) {
            if a.step != b.step {
                return Err(SimError::Data {
                    unit: u.id(),
                    message: format!(
                        "networks A and B sampled at steps {} and {}",
                        a.step, b.step
                    ),
                });
            }
            let m = reference
                .measure(&a.generated, &b.generated, t, t_b)
                .map_err(metric_err)?;
            rows.push(PairRow {
                data: cfg.data.to_string(),
                px: cfg.px as u32,
                d: t.dim() as u32,
                components: u.components as u32,
                n: u.n as u64,
                steps: u.steps as u32,
                protocol: cfg.protocol.to_string(),
                sim: u.sim as u64,
                seed: seeds.row_seed(),
                seed_pair: seeds.pair_train_set,
                n_train: t.n as u64,
                n_generated: a.generated.n as u64,
                train_step: a.step as u64,
                sampler: out.sampler.clone(),
                dist: m.paired.dist,
                dist_lo: m.paired.dist_lo,
                dist_hi: m.paired.dist_hi,
                similarity: m.paired.similarity,
                similarity_lo: m.paired.similarity_lo,
                similarity_hi: m.paired.similarity_hi,
                floor_dist: m.floor.dist,
                floor_similarity: m.floor.similarity,
                copy_dist: m.copy.dist,
                copy_similarity: m.copy.similarity,
            });
        }
        Ok(rows)
    }
}

/// Rows of one unit: results.csv rows and, under `pair = true`, pairs.csv rows.
#[derive(Clone, Debug, Default)]
pub struct UnitRows {
    pub rows: Vec<SimRow>,
    pub pairs: Vec<PairRow>,
}

/// Checks a model's output against its job: the snapshot steps, the image count and size, and
/// finite values. `which` names the network in the message ("" or " B").
fn check_output(
    u: &Unit,
    job: &ModelJob,
    out: &ModelOutput,
    dim: usize,
    which: &str,
) -> Result<(), SimError> {
    let bad = |message: String| SimError::Data {
        unit: u.id(),
        message,
    };
    let want: Vec<usize> = out.snapshots.iter().map(|s| s.step).collect();
    if !job.snapshots.is_empty() && want != job.snapshots {
        return Err(bad(format!(
            "the model{which} returned snapshots at steps {want:?}; expected {:?}",
            job.snapshots
        )));
    }
    for snap in &out.snapshots {
        let g = &snap.generated;
        if g.n != job.generated || g.dim() != dim {
            return Err(bad(format!(
                "the model{which} returned {} images of {} pixels; expected {} of {}",
                g.n,
                g.dim(),
                job.generated,
                dim
            )));
        }
        if let Some(i) = g.data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "generated value {i} of the model{which} at step {} is not finite (training diverged?)",
                snap.step
            )));
        }
    }
    Ok(())
}

/// One generated set to measure: a reference generator's, or a model snapshot's.
struct Measured {
    /// The set the metric sees (treated by the quantisation policy).
    g: ImageSet<f64>,
    /// The untreated G behind the rows' tie share (model samples, oracle draws).
    raw: Option<ImageSet>,
    train_step: u64,
    train_seconds: f64,
    loss: f64,
    sampler: String,
    train_batch: u64,
    probe: Option<ProbeLosses>,
}

impl Measured {
    fn reference(g: ImageSet<f64>, raw: Option<ImageSet>) -> Self {
        Self {
            g,
            raw,
            train_step: 0,
            train_seconds: f64::NAN,
            loss: f64::NAN,
            sampler: "-".into(),
            train_batch: 0,
            probe: None,
        }
    }
}
