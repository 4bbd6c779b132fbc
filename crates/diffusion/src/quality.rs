//! Sample quality of a generated set beside its nulls, for `eval` on files and the checkpoint
//! audit (docs/METHOD.md §4.9): `memdiff_metrics::quality` (Fréchet distance, KID, k-NN
//! precision / recall / density / coverage) of G against a reference R taken from O, and the same
//! numbers for the oracle (rows of O held out from R, none of them in T) and the copy generator
//! (rows of T drawn with replacement), both with as many rows as G, so a reader sees what
//! "the data's quality" and "copies" give on the same sets.
//!
//! R is the first [`QUALITY_REFERENCE_MAX`] rows of O after the oracle's rows are held out (O is
//! an i.i.d. draw or a file of distinct images; the cap bounds the k-NN radii's `|R|²` cost).
//! The sweep computes the same measures per row (`memdiff_experiments::metric::quality`) with
//! its own oracle and copy rows.

use anyhow::Context;
use memdiff_data::reference::{self, Reference as Generator};
use memdiff_data::{ImageSet, Pixel};
use memdiff_metrics::quality::{QualityOptions, QualityValues, Reference};
use serde::Serialize;
use std::fmt::Write as _;

/// Rows of O the quality reference keeps.
pub use memdiff_metrics::quality::REFERENCE_MAX as QUALITY_REFERENCE_MAX;

/// The quality of G and of its two nulls against one reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualityBeside {
    /// k of the k-NN measures.
    pub k: usize,
    /// Rows of R.
    pub reference_rows: usize,
    pub generated: QualityValues,
    /// The oracle null (`None`, with `oracle_note`, when O has too few rows outside T).
    pub oracle: Option<QualityValues>,
    pub oracle_note: Option<String>,
    pub copy: QualityValues,
}

/// Quality of `g` against O beside the oracle's and the copy generator's (module doc). `seed`
/// chooses the null rows (the copy generator's seed of `memdiff_data::reference`, and another
/// for the held-out oracle rows). Errors name the set (k too large for G, NaN values, ...).
pub fn quality_beside_nulls<G: Pixel>(
    o: &ImageSet<f64>,
    t: &ImageSet<f64>,
    g: &ImageSet<G>,
    seed: u64,
    opts: &QualityOptions,
) -> anyhow::Result<QualityBeside> {
    let ng = g.n;
    let oracle_seed = reference::generator_seed(seed ^ 0x5155_414c_4954_5900, &Generator::Oracle);
    let (oracle_set, rest, oracle_note) = match reference::holdout(o, t, ng, oracle_seed) {
        Ok((held, rest)) => (Some(held), rest, None),
        Err(e) => (None, o.clone(), Some(e.to_string())),
    };
    let r = Reference::first_rows(&rest.data, rest.n, rest.dim(), opts)
        .context("quality reference (rows of the original set)")?;
    let generated = r
        .evaluate(&g.data, ng)
        .context("quality of the generated set")?;
    let oracle = match &oracle_set {
        Some(s) => Some(r.evaluate(&s.data, s.n).context("quality of the oracle")?),
        None => None,
    };
    let (copy, _) = reference::copy_rows(t, ng, reference::generator_seed(seed, &Generator::Copy))
        .context("copy generator for the quality null")?;
    let copy = r
        .evaluate(&copy.data, copy.n)
        .context("quality of the copy generator")?;
    Ok(QualityBeside {
        k: opts.k,
        reference_rows: r.len(),
        generated,
        oracle,
        oracle_note,
        copy,
    })
}

/// The quality block of the printed tables: one line per measure, G beside the oracle and copy.
pub fn text(q: &QualityBeside) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "quality vs {} rows of O (k = {}) {:>14} {:>14} {:>14}",
        q.reference_rows, q.k, "generated", "oracle", "copy"
    );
    let get = |v: Option<&QualityValues>, f: fn(&QualityValues) -> f64| {
        v.map_or("-".to_string(), |v| format!("{:.6e}", f(v)))
    };
    type Field = fn(&QualityValues) -> f64;
    let lines: [(&str, Field); 7] = [
        ("frechet", |v| v.frechet),
        ("kid", |v| v.kid),
        ("kid_se", |v| v.kid_se),
        ("precision", |v| v.precision),
        ("recall", |v| v.recall),
        ("density", |v| v.density),
        ("coverage", |v| v.coverage),
    ];
    let width = format!("quality vs {} rows of O (k = {})", q.reference_rows, q.k).len();
    for (name, f) in lines {
        let _ = writeln!(
            s,
            "  {name:<w$} {:>14} {:>14} {:>14}",
            get(Some(&q.generated), f),
            get(q.oracle.as_ref(), f),
            get(Some(&q.copy), f),
            w = width - 2
        );
    }
    if let Some(n) = &q.oracle_note {
        let _ = writeln!(s, "  (no oracle null: {n})");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_use_the_same_reference_and_copies_are_rows_of_t() {
        // O: 60 points on a line, T: 5 of them, G: 6 points; k = 3.
        let o = ImageSet::new(
            60,
            1,
            1,
            2,
            (0..120)
                .map(|i| (i / 2) as f64 + (i % 2) as f64 * 0.5)
                .collect(),
        );
        let t = o.select(&[0, 10, 20, 30, 40]);
        let g = ImageSet::new(6, 1, 1, 2, (0..12).map(|i| i as f32 * 3.0).collect());
        let q = quality_beside_nulls(&o, &t, &g, 7, &QualityOptions::default()).unwrap();
        assert_eq!((q.k, q.reference_rows), (3, 54));
        // Every null row is a row of O: the oracle's lie inside R's balls; the copies too,
        // unless the rows picked are among the 6 held out.
        let oracle = q.oracle.unwrap();
        assert!(oracle.precision > 0.8, "{oracle:?}");
        assert!(q.copy.precision > 0.0);
        // Deterministic for a seed.
        assert_eq!(
            quality_beside_nulls(&o, &t, &g, 7, &QualityOptions::default()).unwrap(),
            q
        );
        // G too small for k: one line naming the generated set.
        let g2 = ImageSet::new(3, 1, 1, 2, vec![0.0f32; 6]);
        let e = format!(
            "{:#}",
            quality_beside_nulls(&o, &t, &g2, 7, &QualityOptions::default()).unwrap_err()
        );
        assert!(e.contains("generated set's size (3 samples)"), "{e}");
        assert!(text(&q).contains("precision"));
    }
}
