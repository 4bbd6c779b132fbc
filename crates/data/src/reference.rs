//! Reference generators of known behaviour (docs/METHOD.md §4b, issue 9): they give the null curves the
//! model's Δ must be read against, and cost no training.
//!
//! - `oracle`: fresh draws from the data distribution that never saw T (nor O): exact GMM
//!   samples with a fresh seed ([`oracle_gmm`]), or, for data known only through a file
//!   (MNIST), rows held out of both T and O ([`holdout`]).
//! - `copy`: G = g rows of T drawn uniformly **with replacement** ([`copy_rows`]): g i.i.d.
//!   samples of T's empirical distribution, i.e. of a model that has memorized T exactly. The
//!   same definition at every g and n (no switch at g = n); a row may repeat, as it would in the
//!   samples of such a model.
//! - `copy+noise:SIGMA`: those copies plus independent `N(0, SIGMA^2)` per pixel
//!   ([`copy_noise`]); values are not clipped.
//!
//! `eval --generator` and the sweep both use this module, with the seed
//! [`generator_seed`]`(base, generator)`. Everything is seeded (`ChaCha8Rng::seed_from_u64`),
//! deterministic whatever the thread count.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::{DataError, GmmSpec, ImageSet, Pixel};

/// Which reference generator. Parses from / prints as `oracle`, `copy`, `copy+noise:SIGMA`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reference {
    Oracle,
    Copy,
    CopyNoise(f64),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Oracle => f.write_str("oracle"),
            Reference::Copy => f.write_str("copy"),
            Reference::CopyNoise(s) => write!(f, "copy+noise:{s}"),
        }
    }
}

impl FromStr for Reference {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        let bad = || {
            DataError::invalid(
                "generator",
                format!("{s:?} is not a reference generator: use oracle, copy or copy+noise:SIGMA (SIGMA >= 0, e.g. copy+noise:0.05)"),
            )
        };
        match s.trim() {
            "oracle" => Ok(Reference::Oracle),
            "copy" => Ok(Reference::Copy),
            t => {
                let v: f64 = t
                    .strip_prefix("copy+noise:")
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(bad)?;
                if v.is_finite() && v >= 0.0 {
                    Ok(Reference::CopyNoise(v))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

fn check_g(g: usize) -> Result<(), DataError> {
    if g == 0 {
        return Err(DataError::invalid(
            "g",
            "asked for 0 generated samples (use at least 1)",
        ));
    }
    Ok(())
}

/// The seed of reference generator `r` under a base seed (the `--seed` of `eval`, a sweep
/// unit's reference seed): `derive_seed(base, r.to_string(), [])`.
pub fn generator_seed(base: u64, r: &Reference) -> u64 {
    crate::seed::derive_seed(base, &r.to_string(), &[])
}

/// The row choice of [`copy_rows`]: `g` indices uniform on `0..n`, with replacement.
fn draw_rows(rng: &mut ChaCha8Rng, n: usize, g: usize) -> Vec<usize> {
    (0..g).map(|_| rng.random_range(0..n)).collect()
}

fn check_train(n: usize) -> Result<(), DataError> {
    if n == 0 {
        return Err(DataError::invalid("train", "the training set is empty"));
    }
    Ok(())
}

/// `g` rows of `train` drawn uniformly with replacement (module doc), and their indices.
pub fn copy_rows<V: Copy>(
    train: &ImageSet<V>,
    g: usize,
    seed: u64,
) -> Result<(ImageSet<V>, Vec<usize>), DataError> {
    check_g(g)?;
    check_train(train.n)?;
    let idx = draw_rows(&mut ChaCha8Rng::seed_from_u64(seed), train.n, g);
    Ok((train.select(&idx), idx))
}

/// [`copy_rows`] plus independent `N(0, sigma^2)` noise on every value (not clipped, added in
/// f64 and stored as `V`). The noise continues the generator that chose the rows.
pub fn copy_noise<V: Pixel>(
    train: &ImageSet<V>,
    g: usize,
    sigma: f64,
    seed: u64,
) -> Result<(ImageSet<V>, Vec<usize>), DataError> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(DataError::invalid(
            "sigma",
            format!("copy+noise needs a finite sigma >= 0, got {sigma}"),
        ));
    }
    check_g(g)?;
    check_train(train.n)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let idx = draw_rows(&mut rng, train.n, g);
    let mut set = train.select(&idx);
    for v in set.data.iter_mut() {
        let z: f64 = rng.sample(StandardNormal);
        *v = V::from_f64((*v).into() + sigma * z);
    }
    Ok((set, idx))
}

/// Oracle for a Gaussian mixture: `g` fresh samples of `spec` (use a seed that no other set of
/// the simulation uses).
pub fn oracle_gmm(spec: &GmmSpec, g: usize, seed: u64) -> Result<ImageSet, DataError> {
    check_g(g)?;
    Ok(spec.sample(g, seed)?.0)
}

/// Oracle for data known only through a file: picks `g` rows of `pool` (seeded, without
/// replacement) among the rows that are equal to no row of `exclude` (the training set), and
/// returns them with the rest of the pool. Used as `(G, O') = holdout(O, T, g, seed)`: G never
/// saw T, and E_OG is then computed against O' (O without G's rows), so G is independent of
/// both sets it is compared with.
pub fn holdout<V: Pixel>(
    pool: &ImageSet<V>,
    exclude: &ImageSet<V>,
    g: usize,
    seed: u64,
) -> Result<(ImageSet<V>, ImageSet<V>), DataError> {
    check_g(g)?;
    let key = |r: &[V]| {
        r.iter()
            .map(|&v| Into::<f64>::into(v).to_bits())
            .collect::<Vec<u64>>()
    };
    let excluded: HashSet<Vec<u64>> = (0..exclude.n).map(|i| key(exclude.row(i))).collect();
    let free: Vec<usize> = (0..pool.n)
        .filter(|&i| !excluded.contains(&key(pool.row(i))))
        .collect();
    // Keep at least 2 rows in the rest (the metric's sigma needs them).
    if free.len() < g || pool.n < g + 2 {
        return Err(DataError::invalid(
            "generator",
            format!(
                "oracle needs {g} rows of the original set that are not in the training set and 2 more to remain, but only {} of {} rows are not in T",
                free.len(),
                pool.n
            ),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pick: Vec<usize> = sample(&mut rng, free.len(), g)
        .into_iter()
        .map(|j| free[j])
        .collect();
    pick.sort_unstable();
    let picked: HashSet<usize> = pick.iter().copied().collect();
    let rest: Vec<usize> = (0..pool.n).filter(|i| !picked.contains(i)).collect();
    Ok((pool.select(&pick), pool.select(&rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, d: usize) -> ImageSet {
        ImageSet::new(n, 1, 1, d, (0..n * d).map(|i| i as f32 / 100.0).collect())
    }

    #[test]
    fn parse_and_print() {
        for s in ["oracle", "copy", "copy+noise:0.05", "copy+noise:0"] {
            assert_eq!(s.parse::<Reference>().unwrap().to_string(), s);
        }
        for s in [
            "",
            "model",
            "copy+noise:",
            "copy+noise:-1",
            "copy+noise:nan",
        ] {
            let e = s.parse::<Reference>().unwrap_err().to_string();
            assert!(e.contains("copy+noise:SIGMA"), "{e}");
        }
    }

    #[test]
    fn copies_are_rows_of_t() {
        let t = rows(20, 3);
        let (g, idx) = copy_rows(&t, 5, 1).unwrap();
        assert_eq!(g.n, 5);
        for (k, &i) in idx.iter().enumerate() {
            assert_eq!(g.row(k), t.row(i));
        }
        assert_eq!(copy_rows(&t, 5, 1).unwrap().1, idx, "seeded");
        // With replacement at every g: 400 draws of 20 rows repeat, and every row is hit with
        // frequency near 1/20 (binomial sd 0.011).
        let (_, many) = copy_rows(&t, 400, 7).unwrap();
        for r in 0..20 {
            let f = many.iter().filter(|&&i| i == r).count() as f64 / 400.0;
            assert!((f - 0.05).abs() < 0.045, "row {r}: {f}");
        }
        // copy+noise chooses the same rows as copy under the same seed.
        assert_eq!(copy_noise(&t, 400, 0.1, 7).unwrap().1, many);
        let (g, _) = copy_rows(&t, 50, 2).unwrap();
        assert_eq!(g.n, 50);
        let (gn, idx) = copy_noise(&t, 400, 0.05, 3).unwrap();
        let diffs: Vec<f64> = (0..gn.n)
            .flat_map(|k| {
                let (a, b) = (gn.row(k).to_vec(), t.row(idx[k]).to_vec());
                a.into_iter()
                    .zip(b)
                    .map(|(x, y)| x as f64 - y as f64)
                    .collect::<Vec<_>>()
            })
            .collect();
        let m = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let sd = (diffs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / diffs.len() as f64).sqrt();
        assert!(m.abs() < 0.01 && (sd - 0.05).abs() < 0.005, "{m} {sd}");
        assert!(copy_rows(&t, 0, 1).is_err());
    }

    #[test]
    fn holdout_avoids_t_and_splits_o() {
        let o = rows(30, 2);
        let t = o.select(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let (g, rest) = holdout(&o, &t, 6, 4).unwrap();
        assert_eq!((g.n, rest.n), (6, 24));
        for k in 0..g.n {
            assert!((0..t.n).all(|j| t.row(j) != g.row(k)));
            assert!((0..rest.n).all(|j| rest.row(j) != g.row(k)));
        }
        let e = holdout(&o, &t, 21, 4).unwrap_err().to_string();
        assert!(e.contains("only 20 of 30 rows"), "{e}");
    }
}
