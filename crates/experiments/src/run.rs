//! The sweep driver: expand the grid, skip finished units, run the rest (this shard's share),
//! write each unit atomically, rebuild results.csv, write the report.
//!
//! [`run_sweep`] runs the units one at a time; [`run_sweep_concurrent`] runs K of them at once,
//! one worker thread per runner, each unit still computed whole by one worker from its own seeds,
//! so every unit's rows are those it gets alone, and results.csv (rebuilt in grid order from the
//! unit files) is the same as a one-at-a-time run's, timing columns aside.

use crate::config::SweepConfig;
use crate::grid::{units, Shard, Unit};
use crate::row::SimRow;
use crate::sim::{ModelRunner, SimContext, SimError};
use crate::store::{StoreError, SweepDir};
use memdiff_data::progress::ProgressBar;

/// Errors of a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigInvalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("unit {0} is not in this config's grid (C, n, s and sim must be listed values)")]
    NotInGrid(String),
    #[error("cannot start the sweep's worker threads: {0}")]
    Threads(String),
}

/// Options of one sweep invocation.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub shard: Shard,
    /// Stop after this many units (None: all). For tests and for time-boxed runs.
    pub max_units: Option<usize>,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// [`run_sweep_concurrent`]: rayon threads of each worker (None: the global pool's threads,
    /// `RAYON_NUM_THREADS` or the cores, split evenly between the workers, at least 1 each).
    pub threads_per_job: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            max_units: None,
            progress: true,
            threads_per_job: None,
        }
    }
}

/// What a sweep invocation did.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOutcome {
    /// Units of the whole grid / of this shard / already finished before / computed now.
    pub total: usize,
    pub in_shard: usize,
    pub skipped: usize,
    pub computed: usize,
    /// All rows in results.csv after this run.
    pub rows: usize,
    /// Every unit of the grid is finished (in this folder).
    pub complete: bool,
}

/// Runs (or resumes) a sweep into `dir`, one unit at a time in this thread.
pub fn run_sweep(
    cfg: SweepConfig,
    dir: &SweepDir,
    opts: &RunOptions,
    runner: &mut dyn ModelRunner,
) -> Result<SweepOutcome, SweepError> {
    drive(cfg, dir, opts, |cfg, todo, bar| {
        let mut ctx = unit_context(cfg, dir)?;
        for u in todo {
            bar.set_message(u.id());
            let out = ctx.run_unit(u, runner)?;
            write_unit(cfg, dir, u, &out)?;
            bar.inc(1);
        }
        Ok(todo.len())
    })
}

/// Runs (or resumes) a sweep into `dir` with one worker thread per runner, each taking the next
/// unfinished unit (in grid order) as it frees up: `runners.len()` trainings at once on one
/// device. Every unit is computed whole by one worker, with its own [`SimContext`], and written
/// to its own file as soon as it is done, so an interrupted run resumes as a sequential one
/// does and results.csv (rebuilt in grid order) equals [`run_sweep`]'s, timing columns aside.
/// Each worker runs in its own rayon pool of `opts.threads_per_job` threads (CPU backends).
/// After a unit fails no new unit is started; the units already running finish and are kept,
/// and the error of the earliest failed unit (in grid order) is returned.
pub fn run_sweep_concurrent(
    cfg: SweepConfig,
    dir: &SweepDir,
    opts: &RunOptions,
    runners: &mut [Box<dyn ModelRunner + Send>],
) -> Result<SweepOutcome, SweepError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    assert!(!runners.is_empty(), "run_sweep_concurrent needs a runner");
    let threads = opts
        .threads_per_job
        .unwrap_or_else(|| rayon::current_num_threads() / runners.len())
        .max(1);
    drive(cfg, dir, opts, |cfg, todo, bar| {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        // One worker: take units until none is left or another worker failed.
        let work =
            |runner: &mut Box<dyn ModelRunner + Send>| -> Result<usize, (usize, SweepError)> {
                let mut ctx = unit_context(cfg, dir).map_err(|e| (0, e))?;
                let mut done = 0;
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(u) = todo.get(i) else { break };
                    bar.set_message(u.id());
                    let written = ctx
                        .run_unit(u, runner.as_mut())
                        .map_err(SweepError::from)
                        .and_then(|out| write_unit(cfg, dir, u, &out));
                    if let Err(e) = written {
                        stop.store(true, Ordering::SeqCst);
                        return Err((i, e));
                    }
                    done += 1;
                    bar.inc(1);
                }
                Ok(done)
            };
        let outcomes: Vec<Result<usize, (usize, SweepError)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = runners
                .iter_mut()
                .map(|runner| {
                    let work = &work;
                    scope.spawn(move || {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .map_err(|e| (0, SweepError::Threads(e.to_string())))?;
                        let done = pool.install(|| work(&mut *runner));
                        runner.finished();
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut computed = 0;
        let mut first: Option<(usize, SweepError)> = None;
        for o in outcomes {
            match o {
                Ok(n) => computed += n,
                Err((i, e)) => {
                    if first.as_ref().is_none_or(|(j, _)| i < *j) {
                        first = Some((i, e));
                    }
                }
            }
        }
        match first {
            Some((_, e)) => Err(e),
            None => Ok(computed),
        }
    })
}

/// Writes a finished unit: its pair rows first (with `pair`), then its results file, whose
/// existence marks the unit finished.
fn write_unit(
    cfg: &SweepConfig,
    dir: &SweepDir,
    u: &Unit,
    out: &crate::sim::UnitRows,
) -> Result<(), SweepError> {
    if cfg.pair {
        dir.write_pairs(u, &out.pairs)?;
    }
    dir.write_unit(u, &out.rows)?;
    Ok(())
}

/// The state one worker computes units with.
fn unit_context(cfg: &SweepConfig, dir: &SweepDir) -> Result<SimContext, SweepError> {
    let mut ctx = SimContext::new(cfg.clone())?;
    if cfg.save_images > 0 {
        ctx.samples_dir = Some(dir.samples());
    }
    Ok(ctx)
}

/// What both drivers share: check and claim the folder, list this shard's unfinished units (at
/// most `max_units`), let `compute` run them (it returns how many it finished), then rebuild
/// results.csv.
fn drive(
    mut cfg: SweepConfig,
    dir: &SweepDir,
    opts: &RunOptions,
    compute: impl FnOnce(&SweepConfig, &[Unit], &ProgressBar) -> Result<usize, SweepError>,
) -> Result<SweepOutcome, SweepError> {
    cfg.validate()?;
    dir.claim(&cfg)?;
    let all = units(&cfg);
    let mine = opts.shard.select(&all);
    let todo: Vec<Unit> = mine.iter().copied().filter(|u| !dir.is_done(u)).collect();
    let skipped = mine.len() - todo.len();
    let limit = opts.max_units.unwrap_or(usize::MAX).min(todo.len());
    let bar = memdiff_data::progress::bar_if(opts.progress, todo.len() as u64, "units");
    let computed = compute(&cfg, &todo[..limit], &bar)?;
    bar.finish_and_clear();
    let rows = dir.rebuild_results()?;
    let finished = dir.finished()?;
    let complete = all.iter().all(|u| finished.contains_key(u));
    Ok(SweepOutcome {
        total: all.len(),
        in_shard: mine.len(),
        skipped,
        computed,
        rows: rows.len(),
        complete,
    })
}

/// Recomputes one unit (e.g. to check a row) without touching any folder.
pub fn run_one(
    mut cfg: SweepConfig,
    id: &str,
    runner: &mut dyn ModelRunner,
) -> Result<Vec<SimRow>, SweepError> {
    cfg.validate()?;
    let u = Unit::parse_id(id).map_err(|_| SweepError::NotInGrid(id.to_string()))?;
    if !units(&cfg).contains(&u) {
        return Err(SweepError::NotInGrid(id.to_string()));
    }
    let mut ctx = SimContext::new(cfg)?;
    Ok(ctx.run_unit(&u, runner)?.rows)
}

/// Writes the report of a sweep folder (`DIR/report/`); returns the Markdown table and files.
pub fn report_dir(dir: &SweepDir) -> Result<(String, Vec<std::path::PathBuf>), SweepError> {
    let rows = crate::store::read_rows(&dir.results())?;
    report_rows(dir, &rows, &dir.report_dir())
}

/// Writes the report of `rows` (results.csv of the sweep folder `dir`: its saved samples, its
/// verdict rule and, under `pair = true`, its pairs.csv) into `out`.
pub fn report_rows(
    dir: &SweepDir,
    rows: &[SimRow],
    out: &std::path::Path,
) -> Result<(String, Vec<std::path::PathBuf>), SweepError> {
    let (rep, mut md, mut files) = crate::report::write_tables(rows, out, &dir.verdict_rule())?;
    files.extend(crate::plots::plot_all(&rep, out)?);
    let samples = dir.samples();
    if samples.is_dir() {
        files.extend(crate::plots::sample_grids(&samples, out)?);
    }
    if dir.pairs().is_file() {
        let pairs = crate::store::read_pairs(&dir.pairs())?;
        if !pairs.is_empty() {
            let (cells, section, table) = crate::pair::write_table(&pairs, rows, out)?;
            md.push_str(&section);
            files.push(table);
            files.extend(crate::plots::pair_plots(&cells, out)?);
        }
    }
    let p = out.join("summary.md");
    memdiff_data::atomic::write_bytes(&p, format!("# memdiff sweep report\n{md}").as_bytes())
        .map_err(crate::report::ReportError::from)?;
    files.push(p);
    // Last: the page shows every file written above, and the sweep's settings.
    files.push(crate::html::write_index(
        out,
        &md,
        &files,
        Some(&dir.config_path()),
    )?);
    Ok((md, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{BoxError, ModelJob, ModelOutput};
    use crate::store::rows_to_csv;
    use memdiff_data::ImageSet;

    /// A stand-in network: "generates" noisy copies of its training rows (seeded by the job).
    struct FakeModel;
    impl ModelRunner for FakeModel {
        fn train_and_sample(
            &mut self,
            job: &ModelJob,
            train: &ImageSet,
        ) -> Result<ModelOutput, BoxError> {
            let idx: Vec<usize> = (0..job.generated)
                .map(|i| (i * 7 + job.sample_seed as usize % 5) % train.n)
                .collect();
            let steps = if job.snapshots.is_empty() {
                vec![10]
            } else {
                job.snapshots.clone()
            };
            // A "network" whose samples approach rows of T as training goes on.
            let snapshots = steps
                .iter()
                .map(|&step| {
                    let mut g = train.select(&idx);
                    let spread = 0.02 * 100.0 / (100.0 + step as f32);
                    for (i, v) in g.data.iter_mut().enumerate() {
                        *v += (((i as u64).wrapping_mul(job.train_seed) % 1000) as f32 / 1000.0
                            - 0.5)
                            * spread;
                    }
                    // A probe whose training loss falls below the held-out one as it goes
                    // on: the held-out images' mean pixel as the held-out loss.
                    let probe = job.held_out.as_ref().map(|h| {
                        let held =
                            h.data.iter().map(|&v| v as f64).sum::<f64>() / h.data.len() as f64;
                        crate::sim::ProbeLosses {
                            train: vec![(held * 100.0 / (100.0 + step as f64), 0.01); 3],
                            held_out: vec![(held, 0.01); 3],
                        }
                    });
                    crate::sim::Snapshot {
                        step,
                        generated: g,
                        train_seconds: step as f64 * 1e-3,
                        loss: 0.5,
                        probe,
                    }
                })
                .collect();
            Ok(ModelOutput {
                snapshots,
                sampler: "fake".into(),
                train_batch: train.n.min(4),
            })
        }
    }

    /// The same samples `g` at every snapshot of the job.
    fn same_at_every_snapshot(job: &ModelJob, g: ImageSet, sampler: &str) -> ModelOutput {
        ModelOutput {
            snapshots: job
                .snapshots
                .iter()
                .map(|&step| crate::sim::Snapshot {
                    step,
                    generated: g.clone(),
                    train_seconds: 0.0,
                    loss: 0.0,
                    probe: None,
                })
                .collect(),
            sampler: sampler.into(),
            train_batch: 0,
        }
    }

    /// A "network" that copies rows of its training set, the rows chosen by the sampling seed
    /// (the copy generator: the same choice for both networks of a pair).
    struct Copier;
    impl ModelRunner for Copier {
        fn train_and_sample(
            &mut self,
            job: &ModelJob,
            train: &ImageSet,
        ) -> Result<ModelOutput, BoxError> {
            let g = memdiff_data::reference::copy_rows(train, job.generated, job.sample_seed)?.0;
            Ok(same_at_every_snapshot(job, g, "copy"))
        }
    }

    /// One fixed "checkpoint": its samples depend on the sampling seed only, not on the data.
    struct SameCheckpoint;
    impl ModelRunner for SameCheckpoint {
        fn train_and_sample(
            &mut self,
            job: &ModelJob,
            train: &ImageSet,
        ) -> Result<ModelOutput, BoxError> {
            let d = train.dim();
            let data = (0..job.generated * d)
                .map(|i| ((i as u64 * 2654435761 + job.sample_seed) % 1000) as f32 / 1000.0)
                .collect();
            let g = ImageSet::new(job.generated, train.channels, train.h, train.w, data);
            Ok(same_at_every_snapshot(job, g, "fixed"))
        }
    }

    fn pair_cfg() -> SweepConfig {
        let mut c = tiny();
        c.pair = true;
        c.generators = vec!["model".into(), "copy".into()];
        c.generated = 60;
        c.train_steps = Some(50.into());
        c.eval_at = Some(crate::config::EvalAt::List(vec![5]));
        c.validate().unwrap();
        c
    }

    #[test]
    fn pair_rows_are_written_resumed_and_merged() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = SweepDir::new(tmp.path().join("whole"));
        run_sweep(pair_cfg(), &whole, &opts(), &mut FakeModel).unwrap();
        let pairs = crate::store::read_pairs(&whole.pairs()).unwrap();
        // 6 units x 2 snapshots, in unit order, both networks sampled with one seed.
        assert_eq!(pairs.len(), 12);
        let steps: Vec<u64> = pairs.iter().map(|p| p.train_step).collect();
        assert_eq!(&steps[..4], &[5, 50, 5, 50]);
        for p in &pairs {
            assert_ne!(p.seed, p.seed_pair);
            assert_eq!((p.n_generated, p.sampler.as_str()), (60, "fake"));
            assert!(p.dist_lo <= p.dist && p.dist <= p.dist_hi);
            assert!(p.similarity_lo <= p.similarity && p.similarity <= p.similarity_hi);
            // FakeModel copies rows of its T with a little noise: the copy level is near
            // (0, 1), the pairs are as far apart as independent data (the floor).
            assert!(p.copy_dist < 0.2 && p.copy_similarity > 0.95, "{p:?}");
            assert!(p.dist > 0.5 * p.floor_dist, "{p:?}");
        }
        // The seed columns match results.csv's.
        let rows = crate::store::read_rows(&whole.results()).unwrap();
        assert!(pairs.iter().all(|p| rows
            .iter()
            .any(|r| r.seed == p.seed && r.n == p.n && r.sim == p.sim)));

        // The report: one cell per (n, snapshot) over the 3 simulations, beside f_mem.
        let cells = crate::pair::cells(&pairs, &rows);
        assert_eq!(cells.len(), 4);
        let c = &cells[1];
        assert_eq!((c.n, c.train_step, c.sims), (5, 50, 3));
        let want: Vec<f64> = pairs
            .iter()
            .filter(|p| p.n == 5 && p.train_step == 50)
            .map(|p| p.similarity)
            .collect();
        assert!((c.similarity - want.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        assert!(c.similarity_lo <= c.similarity && c.similarity <= c.similarity_hi);
        let f: Vec<f64> = rows
            .iter()
            .filter(|r| r.generator == "model" && r.n == 5 && r.train_step == 50)
            .map(|r| r.nn_frac_memorized)
            .collect();
        assert!((c.f_mem - f.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        let (md, files) = report_dir(&whole).unwrap();
        assert!(md.contains("## Two training sets"), "{md}");
        assert!(md.contains("| gmm | 8 | 1 | 10 | 5 | 50 | 3 |"), "{md}");
        let summary = std::fs::read_to_string(whole.report_dir().join("summary.md")).unwrap();
        assert!(summary.contains("## Two training sets"));
        for f in [
            "pairs_summary.csv",
            "pair_vs_n_gmm_px8_c1_s10.png",
            "pair_vs_step_gmm_px8_c1_s10.svg",
        ] {
            assert!(files.iter().any(|x| x.ends_with(f)), "{f}: {files:?}");
        }

        let resumed = SweepDir::new(tmp.path().join("resumed"));
        let part = RunOptions {
            max_units: Some(2),
            ..opts()
        };
        run_sweep(pair_cfg(), &resumed, &part, &mut FakeModel).unwrap();
        assert_eq!(crate::store::read_pairs(&resumed.pairs()).unwrap().len(), 4);
        run_sweep(pair_cfg(), &resumed, &opts(), &mut FakeModel).unwrap();
        let bytes = |p: std::path::PathBuf| std::fs::read(p).unwrap();
        assert_eq!(bytes(resumed.pairs()), bytes(whole.pairs()));

        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (i, p) in [(0, &a), (1, &b)] {
            let sh = RunOptions {
                shard: crate::grid::Shard { index: i, count: 2 },
                ..opts()
            };
            run_sweep(pair_cfg(), &SweepDir::new(p), &sh, &mut FakeModel).unwrap();
        }
        let merged = SweepDir::new(tmp.path().join("merged"));
        crate::store::merge(&[a, b], &merged.root).unwrap();
        assert_eq!(bytes(merged.pairs()), bytes(whole.pairs()));

        // pair = true without the model is refused, naming the key.
        let mut c = pair_cfg();
        c.generators = vec!["copy".into()];
        assert_eq!(c.validate().unwrap_err().field, "pair");
    }

    #[test]
    fn one_checkpoint_twice_gives_similarity_one_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SweepDir::new(tmp.path());
        run_sweep(pair_cfg(), &d, &opts(), &mut SameCheckpoint).unwrap();
        let pairs = crate::store::read_pairs(&d.pairs()).unwrap();
        assert_eq!(pairs.len(), 12);
        for p in &pairs {
            assert_eq!((p.dist, p.dist_lo, p.dist_hi), (0.0, 0.0, 0.0));
            assert_eq!(
                (p.similarity, p.similarity_lo, p.similarity_hi),
                (1.0, 1.0, 1.0)
            );
        }
    }

    #[test]
    fn copy_generators_on_two_independent_sets_give_the_copy_level_and_the_floor() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SweepDir::new(tmp.path());
        let mut c = pair_cfg();
        c.n = vec![200];
        c.sims = 2;
        c.generated = 100;
        c.eval_at = None;
        run_sweep(c.clone(), &d, &opts(), &mut Copier).unwrap();
        let pairs = crate::store::read_pairs(&d.pairs()).unwrap();
        assert_eq!(pairs.len(), 2);
        let ctx = crate::sim::SimContext::new(c.clone()).unwrap();
        for (u, p) in units(&c).iter().zip(&pairs) {
            // Each sample is a training image: the copy level is exactly (0, 1).
            assert_eq!((p.copy_dist, p.copy_similarity), (0.0, 1.0));
            // Pair i is row k_i of T against row k_i of T' (one seed chose both): two
            // independent data images, whose mean is computed here by brute force.
            let seeds = crate::grid::SimSeeds::new(&c, u);
            let (o, t, _) = ctx.draw(u, &seeds).unwrap();
            let t2 = ctx.draw_pair_train(u, &seeds).unwrap();
            let (_, k) = memdiff_data::reference::copy_rows(&t, 100, seeds.sampling).unwrap();
            let centre = memdiff_metrics::pair::centre(&o.data, o.n, o.dim()).unwrap();
            let (mut sd, mut ss) = (0.0, 0.0);
            for &j in &k {
                let (x, y) = memdiff_metrics::pair::pair_values(t.row(j), t2.row(j), &centre);
                sd += x;
                ss += y;
            }
            assert!((p.dist - sd / 100.0).abs() < 1e-12, "{p:?}");
            assert!((p.similarity - ss / 100.0).abs() < 1e-12, "{p:?}");
            // ... so the floor lies in their interval.
            assert!(
                p.similarity_lo <= p.floor_similarity && p.floor_similarity <= p.similarity_hi,
                "{p:?}"
            );
            assert!(
                p.dist_lo <= p.floor_dist && p.floor_dist <= p.dist_hi,
                "{p:?}"
            );
        }
    }

    fn tiny() -> SweepConfig {
        SweepConfig {
            seed: 7,
            px: 8,
            n: vec![5, 20],
            steps: vec![10],
            sims: 3,
            n_original: 300,
            generated: 6,
            save_images: 2,
            ..Default::default()
        }
    }

    fn opts() -> RunOptions {
        RunOptions {
            progress: false,
            ..Default::default()
        }
    }

    fn results(dir: &SweepDir) -> Vec<u8> {
        std::fs::read(dir.results()).unwrap()
    }

    #[test]
    fn interrupted_resume_and_shards_equal_one_run() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = SweepDir::new(tmp.path().join("whole"));
        let o = run_sweep(tiny(), &whole, &opts(), &mut FakeModel).unwrap();
        assert_eq!((o.total, o.computed, o.skipped), (6, 6, 0));
        assert!(o.complete);
        // 6 units x 4 generators (model, oracle, copy, copy+noise)
        let rows = crate::store::read_rows(&whole.results()).unwrap();
        assert_eq!(rows.len(), 24);
        assert!(rows
            .iter()
            .all(|r| r.steps == 10 && r.e_og > 0.0 && r.pixels_used == 64));
        // copies sit below the oracle on average (docs/METHOD.md §4b)
        let mean = |g: &str| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.generator == g)
                .map(|r| r.delta_unbiased)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(
            mean("copy") < mean("oracle"),
            "{} {}",
            mean("copy"),
            mean("oracle")
        );

        // Interrupted after 2 units, then resumed.
        let resumed = SweepDir::new(tmp.path().join("resumed"));
        let part = run_sweep(
            tiny(),
            &resumed,
            &RunOptions {
                max_units: Some(2),
                ..opts()
            },
            &mut FakeModel,
        )
        .unwrap();
        assert!(!part.complete);
        let again = run_sweep(tiny(), &resumed, &opts(), &mut FakeModel).unwrap();
        assert_eq!((again.skipped, again.computed), (2, 4));
        assert_eq!(results(&resumed), results(&whole));

        // Two shards merged.
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (i, p) in [(0, &a), (1, &b)] {
            let sh = RunOptions {
                shard: crate::grid::Shard { index: i, count: 2 },
                ..opts()
            };
            let r = run_sweep(tiny(), &SweepDir::new(p), &sh, &mut FakeModel).unwrap();
            assert_eq!(r.in_shard, 3);
        }
        let merged = tmp.path().join("merged");
        crate::store::merge(&[a, b], &merged).unwrap();
        assert_eq!(results(&SweepDir::new(&merged)), results(&whole));
        assert!(SweepDir::new(&merged)
            .samples()
            .join("c1-n5-s10.npy")
            .is_file());

        // One unit recomputed alone gives its rows.
        let one = run_one(tiny(), "c1-n20-s10-sim2", &mut FakeModel).unwrap();
        let want: Vec<_> = rows
            .iter()
            .filter(|r| r.n == 20 && r.sim == 2)
            .cloned()
            .collect();
        assert_eq!(rows_to_csv(&one), rows_to_csv(&want));
        assert!(matches!(
            run_one(tiny(), "c1-n21-s10-sim2", &mut FakeModel),
            Err(SweepError::NotInGrid(_))
        ));

        // A different config into the same folder is refused, naming the difference.
        let mut other = tiny();
        other.generated = 7;
        let e = run_sweep(other, &whole, &opts(), &mut FakeModel).unwrap_err();
        assert!(e.to_string().contains("generated"), "{e}");

        // The report is written, with plots.
        let (md, files) = report_dir(&whole).unwrap();
        assert!(md.contains("| 1 | 20 | 10 | 10 | model |"), "{md}");
        assert!(
            files
                .iter()
                .any(|f| f.ends_with("p_delta_vs_n_gmm_px8_c1.png")),
            "{files:?}"
        );
        assert!(
            files.iter().any(|f| f.ends_with("samples_c1_s10.png")),
            "{files:?}"
        );
        check_index(&whole, &md);
    }

    /// `report/index.html`: every figure file of the report folder embedded and named, the
    /// table's numbers, the recorded settings; no script, nothing fetched from a network.
    fn check_index(d: &SweepDir, md: &str) {
        let page = std::fs::read_to_string(d.report_dir().join("index.html")).unwrap();
        let mut figures = 0;
        for e in std::fs::read_dir(d.report_dir()).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".png") {
                figures += 1;
                assert!(
                    page.contains(&format!("<a href=\"{name}\">{name}</a>")),
                    "{name}"
                );
                assert!(
                    page.contains(&format!("<img alt=\"{name}\" src=\"data:image/png;base64,")),
                    "{name}"
                );
            }
        }
        assert!(figures >= 3, "{figures} figures");
        assert_eq!(page.matches("<img ").count(), figures);
        // Every row of every Markdown table is a row of an HTML table, cell by cell.
        let flat = page
            .replace("<td class=\"num\">", "<td>")
            .replace("<td class=\"nw\">", "<td>")
            .replace("<th>", "<td>")
            .replace("</th>", "</td>");
        let mut rows = 0;
        for l in md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
        {
            let want: String = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|c| format!("<td>{}</td>", crate::html::esc(c.trim())))
                .collect();
            assert!(flat.contains(&format!("<tr>{want}</tr>")), "{l}");
            rows += 1;
        }
        assert!(rows >= 5, "{rows} table rows");
        let cfg = std::fs::read_to_string(d.config_path()).unwrap();
        assert!(page.contains(&crate::html::esc(&cfg)), "settings");
        assert!(
            !page.contains("<script") && !page.contains("http://") && !page.contains("https://")
        );
    }

    /// FakeModel that fails on the units listed (by id).
    struct Failing(Vec<String>);
    impl ModelRunner for Failing {
        fn train_and_sample(
            &mut self,
            job: &ModelJob,
            train: &ImageSet,
        ) -> Result<ModelOutput, BoxError> {
            if self.0.contains(&job.unit.id()) {
                return Err(format!("no luck for {}", job.unit.id()).into());
            }
            FakeModel.train_and_sample(job, train)
        }
    }

    fn fakes(k: usize) -> Vec<Box<dyn ModelRunner + Send>> {
        (0..k)
            .map(|_| Box::new(FakeModel) as Box<dyn ModelRunner + Send>)
            .collect()
    }

    #[test]
    fn concurrent_workers_give_the_one_at_a_time_results() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.train_steps = Some(400.into());
        c.eval_at = Some(crate::config::EvalAt::List(vec![4, 40]));
        let one = SweepDir::new(tmp.path().join("one"));
        run_sweep(c.clone(), &one, &opts(), &mut FakeModel).unwrap();
        for k in [2, 3, 8] {
            let d = SweepDir::new(tmp.path().join(format!("k{k}")));
            let o = run_sweep_concurrent(c.clone(), &d, &opts(), &mut fakes(k)).unwrap();
            assert_eq!((o.total, o.computed, o.rows, o.complete), (6, 6, 36, true));
            assert_eq!(results(&d), results(&one), "{k} workers");
            assert_eq!(
                std::fs::read(d.samples().join("c1-n5-s10.npy")).unwrap(),
                std::fs::read(one.samples().join("c1-n5-s10.npy")).unwrap()
            );
        }
        // Interrupted after 3 units by 2 workers, resumed by 3: the same table.
        let part = SweepDir::new(tmp.path().join("part"));
        let limited = RunOptions {
            max_units: Some(3),
            ..opts()
        };
        let o = run_sweep_concurrent(c.clone(), &part, &limited, &mut fakes(2)).unwrap();
        assert_eq!((o.computed, o.complete), (3, false));
        assert_eq!(part.finished().unwrap().len(), 3);
        let o = run_sweep_concurrent(c.clone(), &part, &opts(), &mut fakes(3)).unwrap();
        assert_eq!((o.skipped, o.computed, o.complete), (3, 3, true));
        assert_eq!(results(&part), results(&one));
    }

    /// Sizes of the calls a batch runner received.
    type Calls = std::sync::Arc<std::sync::Mutex<Vec<usize>>>;

    /// A batch runner over [`FakeModel`] that groups jobs by n and records each call's size.
    struct FakeBatch(Calls);
    impl crate::batch::BatchRunner for FakeBatch {
        fn key(&self, job: &ModelJob, _train: &ImageSet) -> Result<String, BoxError> {
            Ok(format!("n{}", job.unit.n))
        }
        fn train_many(
            &self,
            jobs: &[(&ModelJob, &ImageSet)],
        ) -> Vec<Result<ModelOutput, BoxError>> {
            assert!(jobs.iter().all(|(j, _)| j.unit.n == jobs[0].0.unit.n));
            self.0.lock().unwrap().push(jobs.len());
            jobs.iter()
                .map(|(j, t)| FakeModel.train_and_sample(j, t))
                .collect()
        }
    }

    fn members(k: usize) -> (Vec<Box<dyn ModelRunner + Send>>, Calls) {
        let calls: Calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let m = crate::batch::Ensembler::members(Box::new(FakeBatch(calls.clone())), k, k, 2, 1)
            .unwrap()
            .into_iter()
            .map(|m| Box::new(m) as Box<dyn ModelRunner + Send>)
            .collect();
        (m, calls)
    }

    #[test]
    fn the_pairs_two_networks_are_asked_for_together_and_give_the_same_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.pair = true;
        c.train_steps = Some(400.into());
        c.eval_at = Some(crate::config::EvalAt::List(vec![4, 40]));
        let one = SweepDir::new(tmp.path().join("one"));
        run_sweep(c.clone(), &one, &opts(), &mut FakeModel).unwrap();
        let pairs = |d: &SweepDir| std::fs::read(d.root.join("pairs.csv")).unwrap();
        for k in [1, 2, 3] {
            let d = SweepDir::new(tmp.path().join(format!("k{k}")));
            let (mut m, calls) = members(k);
            run_sweep_concurrent(c.clone(), &d, &opts(), &mut m).unwrap();
            assert_eq!(results(&d), results(&one), "K = {k}");
            assert_eq!(pairs(&d), pairs(&one), "K = {k}");
            // Two networks per unit, each trained once.
            let calls = calls.lock().unwrap().clone();
            assert_eq!(calls.iter().sum::<usize>(), 12, "K = {k}: {calls:?}");
        }
    }

    #[test]
    fn batched_trainings_give_the_one_at_a_time_results_whatever_k_and_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.train_steps = Some(400.into());
        c.eval_at = Some(crate::config::EvalAt::List(vec![4, 40]));
        let one = SweepDir::new(tmp.path().join("one"));
        run_sweep(c.clone(), &one, &opts(), &mut FakeModel).unwrap();
        for k in [1, 2, 3, 6] {
            let d = SweepDir::new(tmp.path().join(format!("k{k}")));
            let (mut m, calls) = members(k);
            let o = run_sweep_concurrent(c.clone(), &d, &opts(), &mut m).unwrap();
            assert_eq!((o.total, o.computed, o.rows, o.complete), (6, 6, 36, true));
            assert_eq!(results(&d), results(&one), "K = {k}");
            let mut calls = calls.lock().unwrap().clone();
            calls.sort();
            // every network trained once, never more than K or a mixed n per call
            assert_eq!(calls.iter().sum::<usize>(), 6, "K = {k}: {calls:?}");
            assert!(calls.iter().all(|&c| c <= k), "K = {k}: {calls:?}");
            if k == 6 {
                // all six units ask at once; two lanes share the cost (images): n = 20's three
                // networks (60 of 75) go one per call, n = 5's three (15) in one call
                assert_eq!(calls, vec![1, 1, 1, 3]);
            }
            if k == 1 {
                assert_eq!(calls, vec![1; 6]);
            }
        }
        // Interrupted after 3 units with K = 2, resumed with K = 3: the same table.
        let part = SweepDir::new(tmp.path().join("part"));
        let limited = RunOptions {
            max_units: Some(3),
            ..opts()
        };
        let o = run_sweep_concurrent(c.clone(), &part, &limited, &mut members(2).0).unwrap();
        assert_eq!((o.computed, o.complete), (3, false));
        let o = run_sweep_concurrent(c.clone(), &part, &opts(), &mut members(3).0).unwrap();
        assert_eq!((o.skipped, o.computed, o.complete), (3, 3, true));
        assert_eq!(results(&part), results(&one));
    }

    #[test]
    fn a_failing_unit_stops_the_workers_and_keeps_the_finished_units() {
        let tmp = tempfile::tempdir().unwrap();
        let d = SweepDir::new(tmp.path());
        // Units in grid order: c1-n5-s10-sim0..2, c1-n20-s10-sim0..2.
        let bad = vec!["c1-n20-s10-sim2".to_string(), "c1-n5-s10-sim2".to_string()];
        let mut runners: Vec<Box<dyn ModelRunner + Send>> = vec![
            Box::new(Failing(bad.clone())),
            Box::new(Failing(bad.clone())),
        ];
        let e = run_sweep_concurrent(tiny(), &d, &opts(), &mut runners).unwrap_err();
        // The earliest failed unit in grid order is the one reported.
        assert_eq!(
            e.to_string(),
            "unit c1-n5-s10-sim2: training/sampling failed: no luck for c1-n5-s10-sim2"
        );
        let done = d.finished().unwrap();
        assert!(!done.keys().any(|u| bad.contains(&u.id())), "{done:?}");
        assert!(done.len() >= 2, "{done:?}");
        // A rerun with working runners completes the sweep.
        let o = run_sweep_concurrent(tiny(), &d, &opts(), &mut fakes(2)).unwrap();
        assert!(o.complete);
        assert_eq!(o.skipped + o.computed, 6);
    }

    #[test]
    fn snapshots_give_one_model_row_each_and_references_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.train_steps = Some(400.into());
        c.eval_at = Some(crate::config::EvalAt::List(vec![4, 40]));
        c.validate().unwrap();
        let d = SweepDir::new(tmp.path());
        run_sweep(c, &d, &opts(), &mut FakeModel).unwrap();
        // The page of a sweep with snapshots: the trajectory figures and tables too.
        let (md, files) = report_dir(&d).unwrap();
        assert!(
            files
                .iter()
                .any(|f| f.ends_with("phase_gmm_px8_c1_s10.png")),
            "{files:?}"
        );
        check_index(&d, &md);
        let rows = crate::store::read_rows(&d.results()).unwrap();
        // 6 units x (3 model snapshots + 3 reference generators).
        assert_eq!(rows.len(), 36);
        let model: Vec<_> = rows.iter().filter(|r| r.generator == "model").collect();
        let steps: Vec<u64> = model.iter().take(3).map(|r| r.train_step).collect();
        assert_eq!(steps, vec![4, 40, 400]);
        assert!(model.iter().all(|r| r.sampler == "fake"));
        assert!(rows
            .iter()
            .filter(|r| r.generator != "model")
            .all(|r| r.train_step == 0 && r.sampler == "-"));
        // The fake network converges to rows of T: f_mem grows along training.
        let f = |step: u64| {
            let v: Vec<f64> = model
                .iter()
                .filter(|r| r.train_step == step)
                .map(|r| r.nn_frac_memorized)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(f(400) >= f(4), "{} {}", f(4), f(400));
        // Every snapshot has a verdict against the one oracle group of its sets.
        let g = memdiff_metrics::summary::summarize(&rows);
        assert!(g
            .iter()
            .filter(|x| x.key.generator == "model")
            .all(|x| x.verdict.is_some() && x.e_og_vs_oracle.is_some()));
    }

    #[test]
    fn papers_code_uses_the_split_and_fixed_o() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.protocol = crate::config::Protocol::PapersCode;
        c.sims = 2;
        c.n = vec![20];
        let d = SweepDir::new(tmp.path());
        run_sweep(c, &d, &opts(), &mut FakeModel).unwrap();
        let rows = crate::store::read_rows(&d.results()).unwrap();
        assert!(rows
            .iter()
            .all(|r| r.n_train == 18 && r.protocol == "papers-code"));
        // Under the seeds' scales every reference generator gets Δ > 0 (docs/METHOD.md §4b).
        assert!(rows
            .iter()
            .filter(|r| r.generator != "model")
            .all(|r| r.delta > 0.0));
    }

    #[test]
    fn mnist_pair_draws_a_second_training_set_apart_from_o_t_and_the_oracle() {
        let images = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/mnist/mnist-10k-images-idx3-ubyte.gz"
        );
        let mut c = SweepConfig {
            data: crate::config::DataKind::Mnist,
            px: 8,
            n: vec![20],
            sims: 1,
            n_original: 300,
            generated: 5,
            generators: vec!["model".into(), "oracle".into()],
            save_images: 0,
            pair: true,
            mnist: crate::config::MnistSettings {
                images: images.into(),
                dir: None,
                pad: false,
            },
            ..Default::default()
        };
        c.validate().unwrap();
        let ctx = crate::sim::SimContext::new(c.clone()).unwrap();
        let u = units(&c)[0];
        let seeds = crate::grid::SimSeeds::new(&c, &u);
        let (o, t, oracle) = ctx.draw(&u, &seeds).unwrap();
        let t2 = ctx.draw_pair_train(&u, &seeds).unwrap();
        assert_eq!(t2.n, 20);
        // No image of T' is an image of O, T or the oracle's draw (the pool's distinct images).
        for set in [&o, &t, oracle.as_ref().unwrap()] {
            for i in 0..t2.n {
                assert!((0..set.n).all(|j| set.row(j) != t2.row(i)));
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let d = SweepDir::new(tmp.path());
        run_sweep(c, &d, &opts(), &mut FakeModel).unwrap();
        let pairs = crate::store::read_pairs(&d.pairs()).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].components, pairs[0].n_train), (0, 20));
        assert!(pairs[0].floor_dist > 0.0 && pairs[0].similarity.is_finite());
    }

    #[test]
    fn mnist_is_dequantised_by_default_and_says_so() {
        let images = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/mnist/mnist-10k-images-idx3-ubyte.gz"
        );
        let cfg = |deq: crate::config::Dequantize| SweepConfig {
            data: crate::config::DataKind::Mnist,
            px: 8,
            n: vec![20],
            sims: 2,
            n_original: 300,
            generated: 5,
            generators: vec!["oracle".into(), "copy".into()],
            dequantize: deq,
            save_images: 0,
            mnist: crate::config::MnistSettings {
                images: images.into(),
                dir: None,
                pad: false,
            },
            ..Default::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let rows = |deq| {
            let d = SweepDir::new(tmp.path().join(format!("{deq:?}")));
            run_sweep(cfg(deq), &d, &opts(), &mut FakeModel).unwrap();
            crate::store::read_rows(&d.results()).unwrap()
        };
        let raw = rows(crate::config::Dequantize::None);
        let deq = rows(crate::config::Dequantize::Auto);
        assert!(raw
            .iter()
            .all(|r| r.dequantized == "none" && r.components == 0 && r.steps == 0));
        assert!(deq.iter().all(|r| r.dequantized == "uniform"));
        // The constant (zero) border pixels of the raw O are skipped, also after the noise
        // (one policy: memdiff_data::quantize).
        assert!(raw[0].pixels_skipped > 0, "{:?}", raw[0]);
        assert_eq!(deq[0].pixels_skipped, raw[0].pixels_skipped);
        assert_ne!(rows_to_csv(&raw), rows_to_csv(&deq));
    }
}
