//! The two-training-sets test in the sweep (`pair = true`, docs/METHOD.md §7b): one row of
//! `pairs.csv` per (model unit, snapshot), and its per-(n, snapshot) table.
//!
//! The statistics are `memdiff_metrics::pair`'s; this module fixes what they are computed on:
//! - the pair: network A's samples (trained on T, the unit's training set) against network B's
//!   (trained on T', an independent draw of the same size, seed `SimSeeds::pair_train_set`,
//!   from its own initialisation, `SimSeeds::pair_training`),
//!   both sampled with the unit's sampling seed, so sample i of each starts from the same noise;
//!   the samples as the network returns them (values in [0, 1], no dequantisation noise);
//! - the centre of the similarity: the per-pixel mean of the unit's O (the data);
//! - the floor: every ordered pair of distinct images among the first
//!   `memdiff_metrics::pair::FLOOR_MAX_ROWS` of O;
//! - the copy level: each sample of A against its nearest image of T and each sample of B
//!   against its nearest image of T', pooled (T and T' as the networks saw them).

use memdiff_data::ImageSet;
use memdiff_metrics::pair::{self, Level};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of `pairs.csv`: one (model unit, snapshot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub data: String,
    pub px: u32,
    pub d: u32,
    /// Mixture components (0 for MNIST).
    pub components: u32,
    pub n: u64,
    /// Diffusion steps s.
    pub steps: u32,
    pub protocol: String,
    pub sim: u64,
    /// Seed of network A's training set T (results.csv's `seed`).
    pub seed: u64,
    /// Seed of network B's training set T'.
    pub seed_pair: u64,
    /// Training images each network saw.
    pub n_train: u64,
    /// Sample pairs compared.
    pub n_generated: u64,
    /// Optimizer steps both networks had taken.
    pub train_step: u64,
    pub sampler: String,
    /// Mean L2 distance of the pairs (pixel units) and its normal 95 % interval.
    pub dist: f64,
    pub dist_lo: f64,
    pub dist_hi: f64,
    /// Mean centred cosine similarity of the pairs and its normal 95 % interval.
    pub similarity: f64,
    pub similarity_lo: f64,
    pub similarity_hi: f64,
    /// The same two numbers for independent draws from the data (the floor)…
    pub floor_dist: f64,
    pub floor_similarity: f64,
    /// …and for each sample against its nearest training image (the copy level).
    pub copy_dist: f64,
    pub copy_similarity: f64,
}

/// Column names of `pairs.csv`, in order.
pub const COLUMNS: [&str; 24] = [
    "data",
    "px",
    "d",
    "components",
    "n",
    "steps",
    "protocol",
    "sim",
    "seed",
    "seed_pair",
    "n_train",
    "n_generated",
    "train_step",
    "sampler",
    "dist",
    "dist_lo",
    "dist_hi",
    "similarity",
    "similarity_lo",
    "similarity_hi",
    "floor_dist",
    "floor_similarity",
    "copy_dist",
    "copy_similarity",
];

/// What one unit's pair rows are measured against: the centre and floor from O.
pub struct PairReference {
    pub centre: Vec<f64>,
    pub floor: Level,
}

impl PairReference {
    pub fn new(o: &ImageSet<f64>) -> Result<Self, memdiff_metrics::MetricsError> {
        let centre = pair::centre(&o.data, o.n, o.dim())?;
        let floor = pair::floor(&o.data, o.n, o.dim(), &centre)?;
        Ok(Self { centre, floor })
    }

    /// The paired numbers of one snapshot: samples `a` of the network trained on `t_a`, `b` of
    /// the one trained on `t_b` (same count, same noise). Returns the statistics part of a row.
    pub fn measure<A: memdiff_data::Pixel, T: memdiff_data::Pixel>(
        &self,
        a: &ImageSet<A>,
        b: &ImageSet<A>,
        t_a: &ImageSet<T>,
        t_b: &ImageSet<T>,
    ) -> Result<Measured, memdiff_metrics::MetricsError> {
        let d = a.dim();
        let p = pair::paired(&a.data, &b.data, a.n, d, &self.centre)?;
        let ca = pair::copy_level(&a.data, a.n, &t_a.data, t_a.n, d, &self.centre)?;
        let cb = pair::copy_level(&b.data, b.n, &t_b.data, t_b.n, d, &self.centre)?;
        Ok(Measured {
            paired: p,
            floor: self.floor,
            copy: pair::pool(&ca, &cb),
        })
    }
}

/// The statistics of one snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub paired: pair::PairStats,
    pub floor: Level,
    pub copy: Level,
}

/// Rows to CSV text (header + rows).
pub fn to_csv(rows: &[PairRow]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(COLUMNS).expect("memory write");
    for r in rows {
        w.serialize(r).expect("memory write");
    }
    w.into_inner().expect("memory write")
}

/// Parses `pairs.csv` text; errors name the file, the line and the field.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<PairRow>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != COLUMNS {
        return Err(format!(
            "{}: not a pairs table: expected the columns {}",
            path.display(),
            COLUMNS.join(",")
        ));
    }
    r.deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| format!("{} line {}: {e}", path.display(), i + 2)))
        .collect()
}

/// One line of the pair table: one (data, px, protocol, C, s, n, snapshot) over its simulations,
/// beside the model's f_mem and Δ_U from results.csv at the same key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairCell {
    pub data: String,
    pub px: u32,
    pub protocol: String,
    pub components: u32,
    pub steps: u32,
    pub n: u64,
    pub train_step: u64,
    pub sims: usize,
    pub dist: f64,
    /// Mean similarity over the simulations; its 95 % interval (normal over the simulations'
    /// means with 2 or more, the one simulation's interval over its pairs otherwise).
    pub similarity: f64,
    pub similarity_lo: f64,
    pub similarity_hi: f64,
    pub floor_dist: f64,
    pub floor_similarity: f64,
    pub copy_dist: f64,
    pub copy_similarity: f64,
    /// The model's mean f_mem and Δ_U at this key (NaN when results.csv has no such row).
    pub f_mem: f64,
    pub delta_u: f64,
}

impl PairCell {
    /// The figure family: everything but n and the snapshot.
    pub fn family(&self) -> (String, u32, String, u32, u32) {
        (
            self.data.clone(),
            self.px,
            self.protocol.clone(),
            self.components,
            self.steps,
        )
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    memdiff_metrics::stats::mean_se(&v.collect::<Vec<_>>()).mean
}

/// Aggregates pair rows per (data, px, protocol, C, s, n, snapshot), joined with the model rows
/// of results.csv at the same key and simulation.
pub fn cells(pairs: &[PairRow], rows: &[crate::SimRow]) -> Vec<PairCell> {
    use std::collections::BTreeMap;
    type Key = (String, u32, String, u32, u32, u64, u64);
    let mut by: BTreeMap<Key, Vec<&PairRow>> = BTreeMap::new();
    for p in pairs {
        by.entry((
            p.data.clone(),
            p.px,
            p.protocol.clone(),
            p.components,
            p.steps,
            p.n,
            p.train_step,
        ))
        .or_default()
        .push(p);
    }
    by.into_iter()
        .map(
            |((data, px, protocol, components, steps, n, train_step), v)| {
                let model: Vec<&crate::SimRow> = rows
                    .iter()
                    .filter(|r| {
                        r.generator == "model"
                            && r.data == data
                            && r.px == px
                            && r.protocol == protocol
                            && r.components == components
                            && r.steps == steps
                            && r.n == n
                            && r.train_step == train_step
                            && v.iter().any(|p| p.sim == r.sim)
                    })
                    .collect();
                let sims: Vec<f64> = v.iter().map(|p| p.similarity).collect();
                let ms = memdiff_metrics::stats::mean_se(&sims);
                let (lo, hi) = if v.len() >= 2 {
                    let h = memdiff_metrics::stats::Z95 * ms.se;
                    ((ms.mean - h).max(-1.0), (ms.mean + h).min(1.0))
                } else {
                    (v[0].similarity_lo, v[0].similarity_hi)
                };
                PairCell {
                    data,
                    px,
                    protocol,
                    components,
                    steps,
                    n,
                    train_step,
                    sims: v.len(),
                    dist: mean(v.iter().map(|p| p.dist)),
                    similarity: ms.mean,
                    similarity_lo: lo,
                    similarity_hi: hi,
                    floor_dist: mean(v.iter().map(|p| p.floor_dist)),
                    floor_similarity: mean(v.iter().map(|p| p.floor_similarity)),
                    copy_dist: mean(v.iter().map(|p| p.copy_dist)),
                    copy_similarity: mean(v.iter().map(|p| p.copy_similarity)),
                    f_mem: mean(model.iter().map(|r| r.nn_frac_memorized)),
                    delta_u: mean(model.iter().map(|r| r.delta_unbiased)),
                }
            },
        )
        .collect()
}

/// The Markdown section of the pair table.
pub fn markdown(cells: &[PairCell]) -> String {
    let mut s = String::from(
        "\n## Two training sets (pair = true, docs/METHOD.md §7b)\n\n\
         Two networks trained on independent training sets of the same n, sampled from the same \
         noise: mean paired L2 distance and centred cosine similarity (95 % interval), against \
         independent data pairs (floor) and each sample's nearest training image (copy level); \
         beside the model's f_mem and Δ_U. Near the floor: each network copies its own set; \
         near 1: both generalize to the same function.\n\n\
         | data | px | C | s | n | step | sims | dist | similarity [95 %] | floor dist / sim | copy dist / sim | f_mem | Δ_U |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} [{:.3}, {:.3}] | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} | {:.3e} |\n",
            c.data,
            c.px,
            c.components,
            c.steps,
            c.n,
            c.train_step,
            c.sims,
            c.dist,
            c.similarity,
            c.similarity_lo,
            c.similarity_hi,
            c.floor_dist,
            c.floor_similarity,
            c.copy_dist,
            c.copy_similarity,
            c.f_mem,
            c.delta_u
        ));
    }
    s
}

/// Writes `pairs_summary.csv` under `out`; returns the cells (for the figures,
/// [`crate::plots::pair_plots`]), the Markdown section and the file.
pub fn write_table(
    pairs: &[PairRow],
    rows: &[crate::SimRow],
    out: &Path,
) -> Result<(Vec<PairCell>, String, std::path::PathBuf), crate::report::ReportError> {
    let cells = cells(pairs, rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in &cells {
        w.serialize(c).expect("memory write");
    }
    let p = out.join("pairs_summary.csv");
    memdiff_data::atomic::write_bytes(&p, &w.into_inner().expect("memory write"))?;
    let md = markdown(&cells);
    Ok((cells, md, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> PairRow {
        PairRow {
            data: "gmm".into(),
            px: 8,
            d: 64,
            components: 1,
            n: 4,
            steps: 10,
            protocol: "default".into(),
            sim: 1,
            seed: 11,
            seed_pair: 12,
            n_train: 4,
            n_generated: 6,
            train_step: 40,
            sampler: "ddpm/clipped-x0".into(),
            dist: 0.5,
            dist_lo: 0.25,
            dist_hi: 0.75,
            similarity: 0.9,
            similarity_lo: 0.8,
            similarity_hi: 1.0,
            floor_dist: 2.0,
            floor_similarity: -0.01,
            copy_dist: 1.0,
            copy_similarity: 0.5,
        }
    }

    #[test]
    fn csv_round_trip_and_errors() {
        let rows = vec![row(), PairRow { sim: 2, ..row() }];
        let text = to_csv(&rows);
        let s = String::from_utf8(text.clone()).unwrap();
        assert_eq!(s.lines().next().unwrap(), COLUMNS.join(","));
        assert_eq!(parse(Path::new("p.csv"), &text).unwrap(), rows);
        let e = parse(Path::new("p.csv"), b"a,b\n1,2\n").unwrap_err();
        assert!(e.starts_with("p.csv: not a pairs table"), "{e}");
        let bad = s.replace("0.9,", "x,");
        let e = parse(Path::new("p.csv"), bad.as_bytes()).unwrap_err();
        assert!(e.starts_with("p.csv line 2: "), "{e}");
    }
}
