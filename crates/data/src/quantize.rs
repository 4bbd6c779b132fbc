//! Quantised data: one policy for every entry point (`memdiff eval` on files, the checkpoint
//! audit `eval --checkpoint`, the sweep), docs/METHOD.md §4b.
//!
//! **What breaks the metric.** With the metric's narrow kernels (`eps = sigma / n`), two samples
//! with exactly the same value at a pixel add a full `K(0)` to that set's self-term, as much as
//! a sample with itself. Raw u8 images (MNIST) tie on most pixel pairs, and so do resized or
//! padded digits (the black background stays exactly 0 off the `k/255` grid), clipped model
//! output, or any data with repeated values; then the self-terms count equal values and the
//! metric measures nothing else (E_OG ~ 1e5, P(Δ>0) = 0 for every generator).
//!
//! **The measure** ([`tie_share`]): per pixel, of the self-term's zero-distance terms (the `n`
//! diagonal ones and the `t` ordered pairs `k != l` with equal values), the share that are ties,
//! `t / (t + n)`, averaged over the pixels the metric uses (those not constant over the raw O).
//! 0 for continuous data; above [`TIE_DOMINANCE`] (ties outnumber the diagonal) the ties
//! dominate the self-term.
//!
//! **The decision** ([`decide`], from the raw O and T: the data, not the generator):
//! - `auto` (default): `uniform` if O or T lies on the `k/255` grid ([`GRID_TOL`]) or its ties
//!   dominate, else `none`;
//! - `uniform`: add independent `U(0, 1/255)` noise to O, T and G alike ([`Decision::apply`]).
//!   One-sided: `k/255` becomes uniform on `[k/255, (k+1)/255)` (the usual uniform
//!   dequantisation of density modelling; it shifts every set's mean by `+0.5/255`, the same for
//!   all three sets). Pixels constant over the raw O stay out of the metric
//!   ([`Decision::exclude`]): the noise would make them vary, and they would compare noise only.
//!   G means every G made outside the policy: a file, the model's samples, the oracle's draws.
//!   Copies (`copy`, `copy+noise`) are rows of the treated T and get no second noise: a copy is
//!   an exact copy of the T the metric sees;
//! - `floor`: keep the values, floor the metric's bandwidth at one step ([`QUANT_STEP`]);
//! - `none`: raw values; every entry point warns when ties dominate a set
//!   ([`Decision::warning`]).
//!
//! **Noise streams.** One seed per evaluation (`eval --seed`, the audit's `--seed`, a sweep
//! unit's reference seed): the noise of role `r` (O, T, G) is drawn from
//! `derive_seed(seed, "dequantise", [r])` ([`crate::seed::derive_seed`]), in chunks of
//! [`CHUNK_ROWS`] rows (chunk `k` on stream `k`), so it does not depend on the thread count.
//! Treated values are `f64` ([`ImageSet<f64>`]): nothing is rounded on the way to the metric.
//!
//! An empty set is not quantised and has tie share 0. Every output says which treatment ran
//! (`dequantized = none | uniform | floor`) and the tie shares of the raw sets.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{ImageSet, Pixel};

/// The version of this policy, recorded with a sweep's results (`sweep.toml`) so that a sweep
/// folder is never resumed or merged under another policy. Raise it with every change here that
/// changes numbers (which sets get noise, the streams, the tolerances, the excluded pixels).
/// 1: the sweep's own treatment before this module (no noise on the model's G, grid tolerance
/// `1e-4/255`, constant pixels kept); 2: this module.
pub const POLICY: u32 = 2;

/// One quantisation step of u8 data in `[0, 1]`: `1/255`.
pub const QUANT_STEP: f64 = 1.0 / 255.0;

/// Tolerance of the grid test (values within `1e-6` of some `k/255`; f32 rounding of `k/255`
/// is below `3e-8`).
pub const GRID_TOL: f64 = 1e-6;

/// Rows per independently seeded chunk of the dequantisation noise (part of its definition).
pub const CHUNK_ROWS: usize = 64;

/// Ties dominate a set's self-term when their share ([`tie_share`]) is above this: more tied
/// pairs than diagonal terms.
pub const TIE_DOMINANCE: f64 = 0.5;

/// What the user asks for (`--dequantize`, the sweep's `dequantize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `uniform` when the data (O or T) is quantised or tie-dominated, else `none`.
    #[default]
    Auto,
    /// Seeded U(0, 1/255) noise on O, T and G alike.
    Uniform,
    /// Floor every bandwidth at the quantisation step 1/255.
    Floor,
    /// Raw values (warns when exact ties dominate).
    None,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Uniform => "uniform",
            Mode::Floor => "floor",
            Mode::None => "none",
        })
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "uniform" => Ok(Self::Uniform),
            "floor" => Ok(Self::Floor),
            "none" => Ok(Self::None),
            _ => Err(format!(
                "unknown dequantize `{s}`: use auto, uniform, floor or none"
            )),
        }
    }
}

/// What was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    None,
    Uniform,
    Floor,
}

impl Treatment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Treatment::None => "none",
            Treatment::Uniform => "uniform",
            Treatment::Floor => "floor",
        }
    }
}

impl fmt::Display for Treatment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three sets of the metric; each has its own noise stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Original,
    Train,
    Generated,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Original => "original",
            Role::Train => "train",
            Role::Generated => "generated",
        }
    }
    fn index(&self) -> u64 {
        match self {
            Role::Original => 0,
            Role::Train => 1,
            Role::Generated => 2,
        }
    }
}

/// Whether every value lies on the `k/255` grid (within [`GRID_TOL`]), i.e. the set is u8
/// data divided by 255. An empty set is not quantised.
pub fn is_quantized<V: Pixel>(values: &[V]) -> bool {
    !values.is_empty()
        && values.par_iter().all(|&v| {
            let v: f64 = v.into();
            let k = (v * 255.0).round();
            (v - k / 255.0).abs() <= GRID_TOL
        })
}

/// `true` for the pixels whose values are all equal over `set` (`max == min`; none for an
/// empty set).
pub fn constant_pixels<V: Pixel>(set: &ImageSet<V>) -> Vec<bool> {
    let d = set.dim();
    if set.n == 0 {
        return vec![false; d];
    }
    let first = set.row(0);
    let mut same = vec![true; d];
    for row in set.data.chunks_exact(d).skip(1) {
        for ((s, &v), &f) in same.iter_mut().zip(row).zip(first) {
            *s &= v == f;
        }
    }
    same
}

/// The share of a set's self-term that exact ties make up (module doc): per pixel `t / (t + n)`
/// with `t` the ordered pairs `k != l` of equal values, averaged over the pixels with
/// `keep[i]` (all pixels when `None`). 0 for fewer than 2 samples or no kept pixel.
pub fn tie_share<V: Pixel>(set: &ImageSet<V>, keep: Option<&[bool]>) -> f64 {
    let (n, d) = (set.n, set.dim());
    let pixels: Vec<usize> = (0..d).filter(|&i| keep.is_none_or(|k| k[i])).collect();
    if n < 2 || pixels.is_empty() {
        return 0.0;
    }
    let nf = n as f64;
    let shares: Vec<f64> = pixels
        .par_iter()
        .map(|&i| {
            let mut col: Vec<f64> = (0..n).map(|k| set.data[k * d + i].into()).collect();
            col.sort_unstable_by(f64::total_cmp);
            let mut ties = 0.0f64;
            let mut run = 1.0f64;
            for j in 1..n {
                if col[j] == col[j - 1] {
                    run += 1.0;
                } else {
                    ties += run * (run - 1.0);
                    run = 1.0;
                }
            }
            ties += run * (run - 1.0);
            ties / (ties + nf)
        })
        .collect();
    shares.iter().sum::<f64>() / shares.len() as f64
}

/// Adds `U(0, 1/255)` noise to every value (module doc), seeded: rows in chunks of
/// [`CHUNK_ROWS`], chunk `k` by `ChaCha8Rng::seed_from_u64(seed)` on stream `k`. The sum is
/// formed in f64 and stored as `V` (use `f64` to keep it exact, as [`Decision::apply`] does).
pub fn dequantize_uniform<V: Pixel>(set: &mut ImageSet<V>, seed: u64) {
    let d = set.dim();
    if d == 0 {
        return;
    }
    set.data
        .par_chunks_mut(CHUNK_ROWS * d)
        .enumerate()
        .for_each(|(k, chunk)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(k as u64);
            for v in chunk.iter_mut() {
                let u: f64 = rng.random();
                *v = V::from_f64((*v).into() + u * QUANT_STEP);
            }
        });
}

/// The policy's decision for one evaluation (one O and T), from [`decide`].
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// What was asked.
    pub mode: Mode,
    /// What runs.
    pub treatment: Treatment,
    /// Tie shares of the raw O and T ([`tie_share`] over the pixels not constant over O).
    pub ties_original: f64,
    pub ties_train: f64,
    /// Whether the raw O / T lie on the k/255 grid.
    pub grid_original: bool,
    pub grid_train: bool,
    /// Pixels constant over the raw O.
    pub constant: Vec<bool>,
    /// The evaluation's seed (noise streams: module doc).
    pub seed: u64,
}

/// Decides the treatment of one evaluation from its raw O and T (module doc).
pub fn decide<V: Pixel>(mode: Mode, seed: u64, o: &ImageSet<V>, t: &ImageSet<V>) -> Decision {
    let constant = constant_pixels(o);
    let keep: Vec<bool> = constant.iter().map(|c| !c).collect();
    let ties_original = tie_share(o, Some(&keep));
    let ties_train = if t.dim() == keep.len() {
        tie_share(t, Some(&keep))
    } else {
        tie_share(t, None)
    };
    let mut d = Decision {
        mode,
        treatment: Treatment::None,
        ties_original,
        ties_train,
        grid_original: is_quantized(&o.data),
        grid_train: is_quantized(&t.data),
        constant,
        seed,
    };
    d.treatment = match mode {
        Mode::Auto if d.quantised() => Treatment::Uniform,
        Mode::Auto | Mode::None => Treatment::None,
        Mode::Uniform => Treatment::Uniform,
        Mode::Floor => Treatment::Floor,
    };
    d
}

impl Decision {
    /// Whether the data (O or T) is quantised: on the grid or tie-dominated.
    pub fn quantised(&self) -> bool {
        self.grid_original
            || self.grid_train
            || self.ties_original > TIE_DOMINANCE
            || self.ties_train > TIE_DOMINANCE
    }

    /// The seed of the noise of `role`: `derive_seed(seed, "dequantise", [role])`.
    pub fn noise_seed(&self, role: Role) -> u64 {
        crate::seed::derive_seed(self.seed, "dequantise", &[role.index()])
    }

    /// `set` as the metric sees it, in f64: with its role's noise under `uniform`, else the
    /// values as they are (widened exactly).
    pub fn apply<V: Pixel>(&self, set: &ImageSet<V>, role: Role) -> ImageSet<f64> {
        let mut out = set.to_f64();
        if self.treatment == Treatment::Uniform {
            dequantize_uniform(&mut out, self.noise_seed(role));
        }
        out
    }

    /// The tie share of a G made outside the policy (file, model, oracle), over the same pixels
    /// as O's and T's.
    pub fn ties_of<V: Pixel>(&self, g: &ImageSet<V>) -> f64 {
        if g.dim() == self.constant.len() {
            let keep: Vec<bool> = self.constant.iter().map(|c| !c).collect();
            tie_share(g, Some(&keep))
        } else {
            tie_share(g, None)
        }
    }

    /// Pixels the metric must leave out (`true`): under `uniform`, those constant over the raw
    /// O — unless the caller's metric keeps constant pixels anyway (a `min_std` floor, a fixed
    /// bandwidth: `keeps_constant_pixels`), in which case nothing is left out.
    pub fn exclude(&self, keeps_constant_pixels: bool) -> Option<Vec<bool>> {
        (self.treatment == Treatment::Uniform && !keeps_constant_pixels)
            .then(|| self.constant.clone())
    }

    /// The bandwidth floor: one quantisation step under `floor`.
    pub fn min_bandwidth(&self) -> Option<f64> {
        (self.treatment == Treatment::Floor).then_some(QUANT_STEP)
    }

    /// The sets that got noise (G: when the caller treats one; copies do not count).
    pub fn noised_sets(&self, with_g: bool) -> Vec<&'static str> {
        if self.treatment != Treatment::Uniform {
            return Vec::new();
        }
        let mut v = vec![Role::Original.name(), Role::Train.name()];
        if with_g {
            v.push(Role::Generated.name());
        }
        v
    }

    /// One line: the tie shares of the raw sets and the treatment, e.g. `exact ties: 97.3 % of
    /// O's self-term, 96.1 % of T's, 88.0 % of G's; dequantised: uniform (auto; noise on
    /// original, train, generated)`.
    pub fn summary(&self, ties_g: Option<f64>, g_noised: bool) -> String {
        let g = match ties_g {
            Some(x) => format!(", {:.1} % of G's", 100.0 * x),
            None => String::new(),
        };
        let how = match self.treatment {
            Treatment::Uniform => format!(
                "{}; noise on {}",
                self.mode,
                self.noised_sets(g_noised).join(", ")
            ),
            Treatment::Floor => format!("{}; bandwidth >= 1/255", self.mode),
            Treatment::None => self.mode.to_string(),
        };
        format!(
            "exact ties: {:.1} % of O's self-term, {:.1} % of T's{g}; dequantised: {} ({how})",
            100.0 * self.ties_original,
            100.0 * self.ties_train,
            self.treatment
        )
    }

    /// A warning when exact ties dominate a raw set's self-term and nothing treats them
    /// (`none`), naming the set(s) and what to do.
    pub fn warning(&self, ties_g: Option<f64>) -> Option<String> {
        if self.treatment != Treatment::None {
            return None;
        }
        let mut sets = Vec::new();
        for (name, share) in [
            ("O", Some(self.ties_original)),
            ("T", Some(self.ties_train)),
            ("G", ties_g),
        ] {
            if let Some(s) = share.filter(|&s| s > TIE_DOMINANCE) {
                sets.push(format!("{:.0} % of {name}'s", 100.0 * s));
            }
        }
        if sets.is_empty() {
            return None;
        }
        Some(format!(
            "exact ties make up {} self-term: the metric mostly counts equal values, not distances (docs/METHOD.md §4b); dequantize with uniform (the default for such data) or floor",
            sets.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(data: Vec<f32>, n: usize) -> ImageSet {
        let d = data.len() / n;
        ImageSet::new(n, 1, 1, d, data)
    }

    #[test]
    fn detects_the_255_grid() {
        let q: Vec<f32> = (0..=255).map(|k| k as f32 / 255.0).collect();
        assert!(is_quantized(&q));
        let mut c = q.clone();
        c[7] += 1e-4;
        assert!(!is_quantized(&c));
        assert!(!is_quantized(&[0.5f32, 0.123_456]));
        assert!(!is_quantized::<f32>(&[]));
    }

    #[test]
    fn dequantize_stays_in_the_step_and_is_seeded() {
        let data: Vec<f32> = (0..1000).map(|k| (k % 256) as f32 / 255.0).collect();
        let mut a = set(data.clone(), 100);
        let mut b = set(data.clone(), 100);
        dequantize_uniform(&mut a, 9);
        dequantize_uniform(&mut b, 9);
        assert_eq!(a, b);
        let mut c = set(data.clone(), 100);
        dequantize_uniform(&mut c, 10);
        assert_ne!(a, c);
        let mut mean_shift = 0.0;
        for (x, y) in data.iter().zip(&a.data) {
            let u = (*y as f64 - *x as f64) / QUANT_STEP;
            assert!((-1e-5..1.0 + 1e-5).contains(&u), "{u}");
            mean_shift += u;
        }
        mean_shift /= data.len() as f64;
        assert!((mean_shift - 0.5).abs() < 0.05, "{mean_shift}");
        assert!(!is_quantized(&a.data));
    }

    #[test]
    fn tie_share_is_the_ties_part_of_the_zero_distance_terms() {
        // Pixel 0: values (0, 0, 0, 1): 3*2 = 6 tied ordered pairs, n = 4 -> 6/10;
        // pixel 1: all distinct -> 0. Mean 0.3.
        let s = set(vec![0.0, 0.1, 0.0, 0.2, 0.0, 0.3, 1.0, 0.4], 4);
        assert!((tie_share(&s, None) - 0.3).abs() < 1e-15);
        assert!((tie_share(&s, Some(&[true, false])) - 0.6).abs() < 1e-15);
        assert_eq!(tie_share(&s, Some(&[false, true])), 0.0);
        // All equal: n(n-1) / (n(n-1) + n) = (n-1)/n.
        let s = set(vec![0.5; 6], 3);
        assert!((tie_share(&s, None) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(tie_share(&set(vec![0.5, 0.5], 1), None), 0.0);
        assert_eq!(
            tie_share(&ImageSet::<f32>::new(0, 1, 1, 2, vec![]), None),
            0.0
        );
    }

    /// 2 pixels: pixel 0 constant, pixel 1 with `levels` distinct values (many ties when
    /// `levels` is small), off the k/255 grid.
    fn off_grid(n: usize, levels: usize) -> ImageSet {
        let data = (0..n)
            .flat_map(|k| {
                [
                    0.25f32,
                    0.1 + 0.5 * (k % levels) as f32 / levels as f32 + 1e-3,
                ]
            })
            .collect();
        set(data, n)
    }

    #[test]
    fn auto_decides_by_ties_not_only_by_the_grid() {
        // Off the grid and tie-dominated (5 levels over 100 rows): uniform under auto.
        let (o, t) = (off_grid(100, 5), off_grid(20, 5));
        assert!(!is_quantized(&o.data));
        let d = decide(Mode::Auto, 3, &o, &t);
        assert_eq!(d.constant, vec![true, false]);
        // 5 runs of 20: 5 * 20 * 19 = 1900 ties, + 100 diagonal.
        assert!(
            (d.ties_original - 0.95).abs() < 1e-12,
            "{}",
            d.ties_original
        );
        assert_eq!(d.treatment, Treatment::Uniform);
        assert_eq!(d.exclude(false), Some(vec![true, false]));
        assert_eq!(d.exclude(true), None);
        assert!(d.warning(None).is_none());
        // Continuous: none, and no warning.
        let (o, t) = (off_grid(100, 100), off_grid(20, 20));
        let d = decide(Mode::Auto, 3, &o, &t);
        assert_eq!((d.treatment, d.ties_original), (Treatment::None, 0.0));
        assert!(d.warning(Some(0.0)).is_none());
        // ... but a tie-dominated G under none is warned about.
        assert!(d.warning(Some(0.9)).unwrap().contains("90 % of G's"));
        // On the grid with few ties (n = 2 distinct rows): still quantised data.
        let q = set(vec![0.0, 1.0 / 255.0, 1.0, 2.0 / 255.0], 2);
        let d = decide(Mode::Auto, 3, &q, &q);
        assert!(d.ties_original < TIE_DOMINANCE && d.grid_original);
        assert_eq!(d.treatment, Treatment::Uniform);
        // Requested modes win; none warns when ties dominate.
        let (o, t) = (off_grid(100, 5), off_grid(20, 5));
        let d = decide(Mode::None, 3, &o, &t);
        assert_eq!(d.treatment, Treatment::None);
        let w = d.warning(None).unwrap();
        assert!(w.contains("95 % of O's") && w.contains("floor"), "{w}");
        let d = decide(Mode::Floor, 3, &o, &t);
        assert_eq!(d.min_bandwidth(), Some(QUANT_STEP));
        assert_eq!(d.exclude(false), None);
        assert!(d.warning(None).is_none());
    }

    #[test]
    fn apply_gives_each_role_its_own_stream_in_f64() {
        let o = off_grid(100, 5);
        let d = decide(Mode::Uniform, 11, &o, &o);
        let a = d.apply(&o, Role::Original);
        let b = d.apply(&o, Role::Train);
        assert_eq!(a, d.apply(&o, Role::Original), "seeded");
        assert_ne!(a, b, "independent streams");
        // f64: the noise is not rounded to f32 (some values are not f32-representable).
        assert!(a.data.iter().any(|&v| v as f32 as f64 != v));
        for (x, y) in o.data.iter().zip(&a.data) {
            let u = (y - *x as f64) / QUANT_STEP;
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        let none = decide(Mode::None, 11, &o, &o);
        assert_eq!(none.apply(&o, Role::Original), o.to_f64());
    }

    #[test]
    fn modes_parse_and_print() {
        for m in ["auto", "uniform", "floor", "none"] {
            assert_eq!(m.parse::<Mode>().unwrap().to_string(), m);
        }
        assert!("dequantise"
            .parse::<Mode>()
            .unwrap_err()
            .contains("auto, uniform"));
    }
}
