//! The sweep's grid as a list of independent work units, their seeds, and sharding.
//!
//! A *unit* `(C, n, s, sim)` is what is computed, written and skipped as a whole: draw O and T,
//! run every generator of the config on them (the reference generators — oracle, copy,
//! copy+noise — cost no training; "model" trains a fresh network with s steps and samples g
//! images), evaluate, one row per generator. Reference rows carry the s of the unit they sit
//! beside (the results.csv schema), so every (C, n, s) group has its own null curves.
//!
//! O and T depend only on `(seed, C, n, sim)` (not on s), so every s and every generator of one
//! simulation sees the same O and the same T: the null curves are paired with the model's (and
//! are identical across s). A sweep without "model" uses `s = 0`.

use crate::config::SweepConfig;

/// A generator of G.
#[derive(Clone, Debug, PartialEq)]
pub enum GeneratorKind {
    /// The trained network.
    Model,
    /// Fresh draws from the data distribution (never saw T).
    Oracle,
    /// g rows of T (seeded choice).
    Copy,
    /// g rows of T plus N(0, sigma²) per pixel.
    CopyNoise(f64),
}

impl GeneratorKind {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "model" => Ok(Self::Model),
            "oracle" => Ok(Self::Oracle),
            "copy" => Ok(Self::Copy),
            _ => {
                if let Some(v) = s.strip_prefix("copy+noise:") {
                    match v.parse::<f64>() {
                        Ok(x) if x >= 0.0 && x.is_finite() => Ok(Self::CopyNoise(x)),
                        _ => Err(format!(
                            "`{s}`: the noise sigma must be a number >= 0, e.g. copy+noise:0.05"
                        )),
                    }
                } else {
                    Err(format!(
                        "unknown generator `{s}`: use model, oracle, copy or copy+noise:SIGMA"
                    ))
                }
            }
        }
    }

    pub fn is_reference(&self) -> bool {
        !matches!(self, Self::Model)
    }
}

/// One unit of work (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    pub components: usize,
    pub n: usize,
    pub sim: usize,
    /// Diffusion steps (0 in a sweep without the model).
    pub steps: usize,
}

impl Unit {
    /// File-name-safe id, e.g. `c1-n100-s50-sim3`. `--only` takes it.
    pub fn id(&self) -> String {
        format!(
            "c{}-n{}-s{}-sim{}",
            self.components, self.n, self.steps, self.sim
        )
    }

    /// Parses [`Unit::id`].
    pub fn parse_id(s: &str) -> Result<Unit, String> {
        let err =
            || format!("unit id `{s}`: expected c<C>-n<n>-s<steps>-sim<k> (e.g. c1-n100-s50-sim3)");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 4 {
            return Err(err());
        }
        let num = |p: &str, pre: &str| -> Result<usize, String> {
            p.strip_prefix(pre)
                .and_then(|v| v.parse().ok())
                .ok_or_else(err)
        };
        let steps = num(parts[2], "s")?;
        Ok(Unit {
            components: num(parts[0], "c")?,
            n: num(parts[1], "n")?,
            steps,
            sim: num(parts[3], "sim")?,
        })
    }
}

/// Every unit of the sweep, in the canonical order (C, n, sim, s) — the order of [`Unit`]'s
/// `Ord`. results.csv is written in this order whatever order units finished in.
pub fn units(cfg: &SweepConfig) -> Vec<Unit> {
    let steps = cfg.steps_axis();
    let mut out = Vec::new();
    for &components in &cfg.components {
        for &n in &cfg.n {
            for sim in 0..cfg.sims {
                for &steps in &steps {
                    out.push(Unit {
                        components,
                        n,
                        sim,
                        steps,
                    });
                }
            }
        }
    }
    out
}

/// `--shard i/k`: this process runs the units whose canonical index j has `j % k == i`
/// (`i` counts from 0, like a SLURM array task id or a Kubernetes completion index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("--shard `{s}`: expected i/k with 0 <= i < k, e.g. 0/4");
        let (a, b) = s.split_once('/').ok_or_else(err)?;
        let index: usize = a.trim().parse().map_err(|_| err())?;
        let count: usize = b.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn select(&self, units: &[Unit]) -> Vec<Unit> {
        units
            .iter()
            .enumerate()
            .filter(|(j, _)| j % self.count == self.index)
            .map(|(_, u)| *u)
            .collect()
    }
}

/// The one seed derivation of memdiff (base seed, purpose tag, integers). Stable across
/// versions and platforms: results can be rerun from a row's values alone.
pub use memdiff_data::seed::derive_seed;

/// The seeds of one simulation. O and T do not depend on s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimSeeds {
    /// O: per (C, n, sim) when fresh, per C when fixed.
    pub original: u64,
    /// T (also the MNIST pool permutation for T / oracle).
    pub train_set: u64,
    /// The second, independent training set of the two-training-sets test (`pair = true`).
    pub pair_train_set: u64,
    /// Reference generators (the oracle's draw, the copy's row choice, its noise) and the
    /// dequantisation noise of O, T and G (`memdiff_data::quantize`): the seed `eval --seed`
    /// takes for the same sets. Shared across s, so the reference rows of one simulation are the
    /// same at every s.
    pub reference: u64,
    /// Network training (model units).
    pub training: u64,
    /// The second network's initialisation and training draws (`pair = true`): its own, so
    /// that two barely trained networks do not agree merely through a shared initialisation.
    pub pair_training: u64,
    /// Sampling (model units).
    pub sampling: u64,
}

impl SimSeeds {
    pub fn new(cfg: &SweepConfig, u: &Unit) -> SimSeeds {
        let (c, n, sim, s) = (
            u.components as u64,
            u.n as u64,
            u.sim as u64,
            u.steps as u64,
        );
        let base = cfg.seed;
        let original = if cfg.fresh_original {
            derive_seed(base, "original", &[c, n, sim])
        } else {
            derive_seed(base, "original-fixed", &[c])
        };
        SimSeeds {
            original,
            train_set: derive_seed(base, "train-set", &[c, n, sim]),
            pair_train_set: derive_seed(base, "train-set-pair", &[c, n, sim]),
            reference: derive_seed(base, "reference", &[c, n, sim]),
            training: derive_seed(base, "training", &[c, n, s, sim]),
            pair_training: derive_seed(base, "training-pair", &[c, n, s, sim]),
            sampling: derive_seed(base, "sampling", &[c, n, s, sim]),
        }
    }

    /// The one number recorded in the `seed` column: the T seed, shared by all rows of one
    /// simulation (the other seeds follow from the config and the unit).
    pub fn row_seed(&self) -> u64 {
        self.train_set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SweepConfig {
        SweepConfig {
            components: vec![1, 2],
            n: vec![10, 100],
            steps: vec![20, 50],
            sims: 3,
            ..Default::default()
        }
    }

    #[test]
    fn units_cover_the_grid_once() {
        let u = units(&cfg());
        // 2 C x 2 n x 3 sims x 2 s
        assert_eq!(u.len(), 2 * 2 * 3 * 2);
        let mut sorted = u.clone();
        sorted.sort();
        assert_eq!(sorted, u, "canonical order is Unit's Ord");
        let mut v = u.clone();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), u.len());
        for x in &u {
            assert_eq!(Unit::parse_id(&x.id()).unwrap(), *x);
        }
        assert_eq!(u[0].id(), "c1-n10-s20-sim0");
        assert_eq!(u[1].id(), "c1-n10-s50-sim0");
    }

    #[test]
    fn shards_partition_the_units() {
        let u = units(&cfg());
        let mut all: Vec<Unit> = (0..5)
            .flat_map(|i| Shard { index: i, count: 5 }.select(&u))
            .collect();
        all.sort();
        let mut want = u.clone();
        want.sort();
        assert_eq!(all, want);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("a/3".parse::<Shard>().is_err());
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
    }

    #[test]
    fn seeds_share_o_and_t_across_steps_not_across_sims() {
        let c = cfg();
        let a = SimSeeds::new(
            &c,
            &Unit {
                components: 1,
                n: 10,
                sim: 0,
                steps: 20,
            },
        );
        let b = SimSeeds::new(
            &c,
            &Unit {
                components: 1,
                n: 10,
                sim: 0,
                steps: 50,
            },
        );
        let d = SimSeeds::new(
            &c,
            &Unit {
                components: 1,
                n: 10,
                sim: 1,
                steps: 20,
            },
        );
        assert_eq!((a.original, a.train_set), (b.original, b.train_set));
        assert_ne!(a.training, b.training);
        assert_ne!(a.train_set, d.train_set);
        assert_ne!(a.original, d.original);
        let fixed = SweepConfig {
            fresh_original: false,
            ..cfg()
        };
        let a = SimSeeds::new(
            &fixed,
            &Unit {
                components: 1,
                n: 10,
                sim: 0,
                steps: 20,
            },
        );
        let d = SimSeeds::new(
            &fixed,
            &Unit {
                components: 1,
                n: 100,
                sim: 1,
                steps: 20,
            },
        );
        assert_eq!(a.original, d.original);
    }

    #[test]
    fn generator_names() {
        assert_eq!(
            GeneratorKind::parse("copy+noise:0.05").unwrap(),
            GeneratorKind::CopyNoise(0.05)
        );
        assert!(GeneratorKind::parse("copy+noise:-1").is_err());
        assert!(GeneratorKind::parse("orcale")
            .unwrap_err()
            .contains("orcale"));
    }
}
