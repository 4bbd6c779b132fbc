//! The sweep folder: one CSV per finished unit under `DIR/sims/`, each written atomically
//! (temp file + fsync + rename), so a killed sweep loses at most the unit in flight and a file
//! that exists is complete. `results.csv` is rebuilt from them in the canonical unit order, so
//! a resumed, sharded-and-merged or uninterrupted sweep writes the same table.
//!
//! Layout:
//! - `sweep.toml`: the resolved config (a resume or merge must match its fingerprint);
//! - `run.toml`: version, backend, seed, settings (RunRecord);
//! - `sims/<unit-id>.csv`: rows of one unit;
//! - `pairs/<unit-id>.csv` (`pair = true`): the unit's two-training-sets rows, written before
//!   its `sims/` file; `pairs.csv`: those of every finished unit, rebuilt like results.csv;
//! - `samples/<grid-point>.{g,nn}.csv`: a few generated images and their nearest training images;
//! - `results.csv`: every row; `report/`: tables and plots.

use crate::config::SweepConfig;
use crate::grid::Unit;
use crate::pair::PairRow;
use crate::row::SimRow;
use memdiff_data::atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of the sweep folder.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message} (delete the file to recompute it)")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path} was written by a sweep with different settings than this config; use another --out folder or the config recorded there.\n  recorded: {recorded}\n  now:      {now}")]
    Mismatch {
        path: PathBuf,
        recorded: String,
        now: String,
    },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path} holds results computed under quantised-data policy {recorded}; this memdiff computes policy {now} (docs/METHOD.md §4.5) and does not mix the two: use another --out folder")]
    Policy {
        path: PathBuf,
        recorded: u32,
        now: u32,
    },
}

/// A sweep output folder.
#[derive(Clone, Debug)]
pub struct SweepDir {
    pub root: PathBuf,
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Rows to CSV text (header + rows), the results.csv format.
pub fn rows_to_csv(rows: &[SimRow]) -> Vec<u8> {
    let mut out = Vec::new();
    memdiff_metrics::summary::write_csv(&mut out, rows).expect("writing CSV to memory cannot fail");
    out
}

/// Reads a pairs table (`pairs.csv` or one unit's pair file).
pub fn read_pairs(path: &Path) -> Result<Vec<PairRow>, StoreError> {
    let bytes = std::fs::read(path).map_err(read_err(path))?;
    crate::pair::parse(path, &bytes).map_err(|message| StoreError::Corrupt {
        path: path.to_path_buf(),
        message,
    })
}

/// Reads rows from a CSV file of the results schema.
pub fn read_rows(path: &Path) -> Result<Vec<SimRow>, StoreError> {
    let bytes = std::fs::read(path).map_err(read_err(path))?;
    parse_rows(path, &bytes)
}

pub fn parse_rows(path: &Path, bytes: &[u8]) -> Result<Vec<SimRow>, StoreError> {
    memdiff_metrics::summary::read_csv(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl SweepDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn sims(&self) -> PathBuf {
        self.root.join("sims")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn results(&self) -> PathBuf {
        self.root.join("results.csv")
    }
    /// `pairs.csv`: the two-training-sets rows (`pair = true`).
    pub fn pairs(&self) -> PathBuf {
        self.root.join("pairs.csv")
    }
    fn pair_dir(&self) -> PathBuf {
        self.root.join("pairs")
    }
    pub fn pair_path(&self, u: &Unit) -> PathBuf {
        self.pair_dir().join(format!("{}.csv", u.id()))
    }

    /// Writes one unit's pair rows (before [`SweepDir::write_unit`]).
    pub fn write_pairs(&self, u: &Unit, rows: &[PairRow]) -> Result<(), StoreError> {
        atomic::write_bytes(&self.pair_path(u), &crate::pair::to_csv(rows))?;
        Ok(())
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("sweep.toml")
    }

    /// The verdict thresholds recorded in `sweep.toml` (the defaults when there is none, e.g.
    /// for a bare results.csv).
    pub fn verdict_rule(&self) -> memdiff_metrics::summary::VerdictRule {
        std::fs::read_to_string(self.config_path())
            .ok()
            .and_then(|t| toml::from_str::<crate::SweepConfig>(&t).ok())
            .map(|c| c.verdict)
            .unwrap_or_default()
    }
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }

    pub fn unit_path(&self, u: &Unit) -> PathBuf {
        self.sims().join(format!("{}.csv", u.id()))
    }

    /// A unit is finished iff its file exists (files appear only by atomic rename).
    pub fn is_done(&self, u: &Unit) -> bool {
        self.unit_path(u).is_file()
    }

    pub fn write_unit(&self, u: &Unit, rows: &[SimRow]) -> Result<(), StoreError> {
        atomic::write_bytes(&self.unit_path(u), &rows_to_csv(rows))?;
        Ok(())
    }

    /// The recorded config, if any.
    pub fn recorded_config(&self) -> Result<Option<SweepConfig>, StoreError> {
        let p = self.config_path();
        if !p.exists() {
            return Ok(None);
        }
        memdiff_data::config::load_toml(&p)
            .map(Some)
            .map_err(|e| StoreError::Config {
                path: p.clone(),
                message: e.to_string(),
            })
    }

    /// Records `cfg` in `sweep.toml` after checking it against what is recorded there (the grid
    /// lists may differ: units are keyed by their grid values; the recorded grid becomes the
    /// union, so extending a sweep reuses the finished units).
    pub fn claim(&self, cfg: &SweepConfig) -> Result<(), StoreError> {
        let mut merged = cfg.clone();
        if let Some(old) = self.recorded_config()? {
            if let Some(e) = policy_mismatch(self.config_path(), &old, cfg) {
                return Err(e);
            }
            if old.fingerprint() != cfg.fingerprint() {
                return Err(StoreError::Mismatch {
                    path: self.config_path(),
                    recorded: first_difference(&old.fingerprint(), &cfg.fingerprint()).0,
                    now: first_difference(&old.fingerprint(), &cfg.fingerprint()).1,
                });
            }
            union_grid(&mut merged, &old);
        }
        self.write_config(&merged)
    }

    fn write_config(&self, cfg: &SweepConfig) -> Result<(), StoreError> {
        let text = toml::to_string_pretty(cfg).map_err(|e| StoreError::Config {
            path: self.config_path(),
            message: e.to_string(),
        })?;
        atomic::write_bytes(&self.config_path(), text.as_bytes())?;
        Ok(())
    }

    /// Every finished unit file, keyed (and so ordered) by unit.
    pub fn finished(&self) -> Result<BTreeMap<Unit, PathBuf>, StoreError> {
        let mut out = BTreeMap::new();
        let dir = self.sims();
        if !dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(&dir).map_err(read_err(&dir))? {
            let e = e.map_err(read_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a temp file of a write in flight or killed
            }
            if let Some(id) = name.strip_suffix(".csv") {
                if let Ok(u) = Unit::parse_id(id) {
                    out.insert(u, e.path());
                }
            }
        }
        Ok(out)
    }

    /// Rebuilds `results.csv` from every finished unit, in canonical order; returns the rows.
    pub fn rebuild_results(&self) -> Result<Vec<SimRow>, StoreError> {
        let mut rows = Vec::new();
        for path in self.finished()?.values() {
            rows.extend(read_rows(path)?);
        }
        atomic::write_bytes(&self.results(), &rows_to_csv(&rows))?;
        self.rebuild_pairs()?;
        Ok(rows)
    }

    /// Rebuilds `pairs.csv` from the pair files of the finished units (when there are any).
    fn rebuild_pairs(&self) -> Result<(), StoreError> {
        if !self.pair_dir().is_dir() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for u in self.finished()?.keys() {
            let p = self.pair_path(u);
            if p.is_file() {
                rows.extend(read_pairs(&p)?);
            }
        }
        atomic::write_bytes(&self.pairs(), &crate::pair::to_csv(&rows))?;
        Ok(())
    }
}

/// The error for two configs whose quantised-data policies differ where the policy acts
/// (`recorded` first; [`SweepConfig::fingerprint`]).
fn policy_mismatch(path: PathBuf, recorded: &SweepConfig, now: &SweepConfig) -> Option<StoreError> {
    let version = |c: &SweepConfig| {
        c.dequantize_can_act()
            .then(|| c.dequantize_policy.unwrap_or(1))
    };
    match (version(recorded), version(now)) {
        (Some(recorded), Some(now)) if recorded != now => Some(StoreError::Policy {
            path,
            recorded,
            now,
        }),
        _ => None,
    }
}

fn first_difference(a: &str, b: &str) -> (String, String) {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return (x.to_string(), y.to_string());
        }
    }
    (a.to_string(), b.to_string())
}

fn union_grid(into: &mut SweepConfig, other: &SweepConfig) {
    fn u(a: &mut Vec<usize>, b: &[usize]) {
        a.extend_from_slice(b);
        a.sort_unstable();
        a.dedup();
    }
    u(&mut into.components, &other.components);
    u(&mut into.n, &other.n);
    u(&mut into.steps, &other.steps);
    into.sims = into.sims.max(other.sims);
    for g in &other.generators {
        if !into.generators.contains(g) {
            into.generators.push(g.clone());
        }
    }
    into.save_images = into.save_images.max(other.save_images);
    into.export_samples |= other.export_samples;
}

/// `memdiff sweep merge A B … --out DIR`: copies every finished unit (and saved samples) of the
/// shard folders into `out`, checks they were run with the same settings, and rebuilds
/// results.csv. A unit present in several folders must have the same rows (timings aside).
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<(SweepConfig, Vec<SimRow>), StoreError> {
    let dst = SweepDir::new(out);
    let mut cfg: Option<SweepConfig> = dst.recorded_config()?;
    for input in inputs {
        let src = SweepDir::new(input);
        let c = src.recorded_config()?.ok_or_else(|| StoreError::Read {
            path: src.config_path(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a sweep folder (no sweep.toml)",
            ),
        })?;
        match &mut cfg {
            None => cfg = Some(c),
            Some(acc) => {
                if let Some(e) = policy_mismatch(src.config_path(), acc, &c) {
                    return Err(e);
                }
                if acc.fingerprint() != c.fingerprint() {
                    let (a, b) = first_difference(&acc.fingerprint(), &c.fingerprint());
                    return Err(StoreError::Mismatch {
                        path: src.config_path(),
                        recorded: a,
                        now: b,
                    });
                }
                union_grid(acc, &c);
            }
        }
    }
    let cfg = cfg.ok_or_else(|| StoreError::Config {
        path: out.to_path_buf(),
        message: "nothing to merge: give at least one sweep folder".into(),
    })?;
    dst.write_config(&cfg)?;
    for input in inputs {
        let src = SweepDir::new(input);
        if src.root == dst.root {
            continue;
        }
        for (u, path) in src.finished()? {
            let target = dst.unit_path(&u);
            let bytes = std::fs::read(&path).map_err(read_err(&path))?;
            if target.exists() {
                let a = without_timing(read_rows(&target)?);
                let b = without_timing(parse_rows(&path, &bytes)?);
                if rows_to_csv(&a) != rows_to_csv(&b) {
                    return Err(StoreError::Corrupt {
                        path: path.clone(),
                        message: format!(
                            "unit {} differs from the copy already in {}",
                            u.id(),
                            target.display()
                        ),
                    });
                }
                continue;
            }
            atomic::write_bytes(&target, &bytes)?;
        }
        // Pair files (pair = true): with their units, compared like them.
        for u in src.finished()?.keys() {
            let (from, to) = (src.pair_path(u), dst.pair_path(u));
            if !from.is_file() {
                continue;
            }
            let bytes = std::fs::read(&from).map_err(read_err(&from))?;
            if to.exists() {
                if std::fs::read(&to).map_err(read_err(&to))? != bytes {
                    return Err(StoreError::Corrupt {
                        path: from.clone(),
                        message: format!(
                            "the pair rows of unit {} differ from the copy already in {}",
                            u.id(),
                            to.display()
                        ),
                    });
                }
                continue;
            }
            atomic::write_bytes(&to, &bytes)?;
        }
        let samples = src.samples();
        if samples.is_dir() {
            for e in std::fs::read_dir(&samples).map_err(read_err(&samples))? {
                let e = e.map_err(read_err(&samples))?;
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let target = dst.samples().join(&name);
                if target.exists() {
                    continue;
                }
                if e.path().is_dir() {
                    // An exported PNG folder (export_samples): its files, one level.
                    for f in std::fs::read_dir(e.path()).map_err(read_err(&e.path()))? {
                        let f = f.map_err(read_err(&e.path()))?;
                        let bytes = std::fs::read(f.path()).map_err(read_err(&f.path()))?;
                        atomic::write_bytes(&target.join(f.file_name()), &bytes)?;
                    }
                } else {
                    let bytes = std::fs::read(e.path()).map_err(read_err(&e.path()))?;
                    atomic::write_bytes(&target, &bytes)?;
                }
            }
        }
    }
    let rows = dst.rebuild_results()?;
    Ok((cfg, rows))
}

/// Rows with the wall-clock column zeroed: what must match between two runs of one unit
/// (compare their [`rows_to_csv`] text: NaN fields make `==` on rows false).
pub fn without_timing(mut rows: Vec<SimRow>) -> Vec<SimRow> {
    for r in &mut rows {
        r.train_seconds = 0.0;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_data::config::parse_toml;

    fn validated(text: &str) -> SweepConfig {
        let mut c: SweepConfig = parse_toml(text).unwrap();
        c.validate().unwrap();
        c
    }

    /// A `sweep.toml` as recorded before the policy had a version (no `dequantize_policy`).
    fn record_without_policy(dir: &SweepDir, cfg: &SweepConfig) {
        let mut old = cfg.clone();
        old.dequantize_policy = None;
        let text = toml::to_string_pretty(&old).unwrap();
        assert!(!text.contains("dequantize_policy"));
        std::fs::create_dir_all(&dir.root).unwrap();
        std::fs::write(dir.config_path(), text).unwrap();
    }

    #[test]
    fn a_folder_of_another_quantisation_policy_is_refused_where_the_policy_acts() {
        let policy = memdiff_data::quantize::POLICY;
        let tmp = tempfile::tempdir().unwrap();
        // MNIST under auto: the policy decides the numbers. It is recorded, and a folder
        // recorded under policy 1 (no key) is not resumed.
        let mnist = validated("data = \"mnist\"\n");
        assert_eq!(mnist.dequantize_policy, Some(policy));
        let fresh = SweepDir::new(tmp.path().join("fresh"));
        std::fs::create_dir_all(&fresh.root).unwrap();
        fresh.claim(&mnist).unwrap();
        let text = std::fs::read_to_string(fresh.config_path()).unwrap();
        assert!(
            text.contains(&format!("dequantize_policy = {policy}")),
            "{text}"
        );
        fresh.claim(&mnist).unwrap();
        let old = SweepDir::new(tmp.path().join("old"));
        record_without_policy(&old, &mnist);
        let e = old.claim(&mnist).unwrap_err();
        assert!(
            matches!(e, StoreError::Policy { recorded: 1, now, .. } if now == policy),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{} holds results computed under quantised-data policy 1; this memdiff computes policy {policy} (docs/METHOD.md §4.5) and does not mix the two: use another --out folder",
                old.config_path().display()
            )
        );
        // The fingerprints differ by that line.
        let mut unrecorded = mnist.clone();
        unrecorded.dequantize_policy = None;
        assert_eq!(
            first_difference(&unrecorded.fingerprint(), &mnist.fingerprint()),
            (
                "dequantize_policy = 1".to_string(),
                format!("dequantize_policy = {policy}")
            )
        );
        // ... nor merged with one of today's (recorded: the first folder's).
        let e = merge(
            &[fresh.root.clone(), old.root.clone()],
            &tmp.path().join("m"),
        )
        .unwrap_err();
        assert!(
            matches!(e, StoreError::Policy { recorded, now: 1, .. } if recorded == policy),
            "{e}"
        );
        for (text, acts) in [
            ("data = \"mnist\"\ndequantize = \"uniform\"\n", true),
            ("data = \"mnist\"\ndequantize = \"floor\"\n", true),
            ("data = \"gmm\"\ndequantize = \"uniform\"\n", true),
            ("data = \"gmm\"\n[gmm]\nclip = true\n", true),
            // Where it cannot act, an older folder is resumed.
            ("data = \"mnist\"\ndequantize = \"none\"\n", false),
            ("data = \"gmm\"\n", false),
        ] {
            let cfg = validated(text);
            assert_eq!(cfg.dequantize_can_act(), acts, "{text}");
            let dir = SweepDir::new(tmp.path().join(format!("d{}", text.len())));
            record_without_policy(&dir, &cfg);
            assert_eq!(dir.claim(&cfg).is_ok(), !acts, "{text}");
        }
    }

    #[test]
    fn a_config_cannot_set_another_policy() {
        let mut c: SweepConfig = parse_toml("dequantize_policy = 1\n").unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "dequantize_policy");
        assert!(
            e.message
                .starts_with("1: this memdiff implements quantised-data policy 2"),
            "{e}"
        );
        validated(&format!(
            "dequantize_policy = {}\n",
            memdiff_data::quantize::POLICY
        ));
    }
}
