//! The sweep driver: expand the grid, skip finished units, run the rest (this shard's share),
//! write each unit atomically, rebuild results.csv, write the report.

use crate::config::SweepConfig;
use crate::grid::{units, Shard, Unit};
use crate::row::SimRow;
use crate::sim::{ModelRunner, SimContext, SimError};
use crate::store::{StoreError, SweepDir};

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
}

/// Options of one sweep invocation.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub shard: Shard,
    /// Stop after this many units (None: all). For tests and for time-boxed runs.
    pub max_units: Option<usize>,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            max_units: None,
            progress: true,
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

/// Runs (or resumes) a sweep into `dir`.
pub fn run_sweep(
    mut cfg: SweepConfig,
    dir: &SweepDir,
    opts: &RunOptions,
    runner: &mut dyn ModelRunner,
) -> Result<SweepOutcome, SweepError> {
    cfg.validate()?;
    dir.claim(&cfg)?;
    let all = units(&cfg);
    let mine = opts.shard.select(&all);
    let todo: Vec<Unit> = mine.iter().copied().filter(|u| !dir.is_done(u)).collect();
    let skipped = mine.len() - todo.len();
    let mut ctx = SimContext::new(cfg.clone())?;
    if cfg.save_images > 0 {
        ctx.samples_dir = Some(dir.samples());
    }
    let bar = if opts.progress {
        indicatif::ProgressBar::new(todo.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} units, ETA {eta} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let limit = opts.max_units.unwrap_or(usize::MAX);
    let mut computed = 0;
    for u in todo.iter().take(limit) {
        bar.set_message(u.id());
        let rows = ctx.run_unit(u, runner)?;
        dir.write_unit(u, &rows)?;
        computed += 1;
        bar.inc(1);
    }
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
    Ok(ctx.run_unit(&u, runner)?)
}

/// Writes the report of a sweep folder (`DIR/report/`); returns the Markdown table and files.
pub fn report_dir(dir: &SweepDir) -> Result<(String, Vec<std::path::PathBuf>), SweepError> {
    let rows = crate::store::read_rows(&dir.results())?;
    let samples = dir.samples();
    Ok(crate::report::write_report(
        &rows,
        &dir.report_dir(),
        samples.is_dir().then_some(samples.as_path()),
        &dir.verdict_rule(),
        Some(&dir.config_path()),
    )?)
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
                    crate::sim::Snapshot {
                        step,
                        generated: g,
                        train_seconds: step as f64 * 1e-3,
                        loss: 0.5,
                    }
                })
                .collect();
            Ok(ModelOutput {
                snapshots,
                sampler: "fake".into(),
            })
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

    #[test]
    fn snapshots_give_one_model_row_each_and_references_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = tiny();
        c.train_steps = Some(400);
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
