//! Statistics over simulations (docs/METHOD.md §4, §4b, §5): Wilson intervals for P(Δ > 0), mean and
//! standard error, the Ê normalisation, the quality index η, and the Mann–Whitney two-sample
//! test used for the calibrated verdict "model vs oracle" (issue 9).

use serde::Serialize;

use crate::error::{MetricsError, Result};

/// The 97.5 % quantile of the standard normal (two-sided 95 %).
pub const Z95: f64 = 1.959_963_984_540_054;

/// The significance level of every test verdict (model vs oracle, the report's markers).
pub const ALPHA: f64 = 0.05;

/// Compensated (Neumaier) sum.
pub fn neumaier_sum<I: IntoIterator<Item = f64>>(it: I) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in it {
        let t = s + x;
        if s.abs() >= x.abs() {
            c += (s - t) + x;
        } else {
            c += (x - t) + s;
        }
        s = t;
    }
    s + c
}

/// A proportion `k / m` with its Wilson score interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Proportion {
    pub k: u64,
    pub m: u64,
    pub p: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Wilson score interval for `k` successes in `m` trials at normal quantile `z` (use [`Z95`]).
/// `m = 0` gives NaN for p and the interval `[0, 1]`. The bounds at `k = 0` and `k = m` are
/// exactly 0 and 1 (the closed form's `center − half` would leave a rounding residue like 3e-18).
pub fn wilson(k: u64, m: u64, z: f64) -> Proportion {
    if m == 0 {
        return Proportion {
            k,
            m,
            p: f64::NAN,
            lo: 0.0,
            hi: 1.0,
        };
    }
    let mf = m as f64;
    let p = k as f64 / mf;
    let z2 = z * z;
    let denom = 1.0 + z2 / mf;
    let center = (p + z2 / (2.0 * mf)) / denom;
    let half = z / denom * (p * (1.0 - p) / mf + z2 / (4.0 * mf * mf)).sqrt();
    Proportion {
        k,
        m,
        p,
        lo: if k == 0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        hi: if k >= m {
            1.0
        } else {
            (center + half).min(1.0)
        },
    }
}

/// Mean and standard error of the mean (sample sd with `m - 1`, divided by `sqrt(m)`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanSe {
    pub mean: f64,
    pub se: f64,
    pub m: usize,
}

/// Mean and standard error of the finite values of `xs` (NaN entries are ignored; `se` is NaN
/// for fewer than 2 values, `mean` NaN for none).
pub fn mean_se(xs: &[f64]) -> MeanSe {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let m = v.len();
    if m == 0 {
        return MeanSe {
            mean: f64::NAN,
            se: f64::NAN,
            m,
        };
    }
    let mean = neumaier_sum(v.iter().copied()) / m as f64;
    let se = if m < 2 {
        f64::NAN
    } else {
        let ss = neumaier_sum(v.iter().map(|x| (x - mean) * (x - mean)));
        (ss / (m as f64 - 1.0) / m as f64).sqrt()
    };
    MeanSe { mean, se, m }
}

/// Quality index of seed 000: `eta = -ln(1 - E_OG(n_large) / E_OG(n_small))` (smaller is
/// better). Errors when the ratio is not in `[0, 1)` (η undefined).
pub fn eta(n_small: u64, e_small: f64, n_large: u64, e_large: f64) -> Result<f64> {
    let ratio = e_large / e_small;
    if !(ratio.is_finite() && (0.0..1.0).contains(&ratio)) {
        return Err(MetricsError::EtaRatio {
            n_small,
            n_large,
            e_small,
            e_large,
            ratio,
        });
    }
    Ok(-(1.0 - ratio).ln())
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U statistic of the first sample (`R_1 - n_1 (n_1 + 1) / 2`, average ranks for ties).
    pub u1: f64,
    /// `u1 / (n_1 n_2)`: estimate of `P(X > Y) + P(X = Y) / 2` (0.5: no shift).
    pub effect: f64,
    /// Normal-approximation z (tie-corrected variance, continuity correction 0.5), of the
    /// larger of U_1, U_2: always >= 0 up to the correction.
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Standard normal survival function `P(Z > z)`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided Mann–Whitney U test of `x` against `y`, normal approximation with the tie
/// correction and a continuity correction — the same as
/// `scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")`.
/// Non-finite values are dropped. Errors when a sample is empty.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Result<MannWhitney> {
    let x: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let y: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    if x.is_empty() || y.is_empty() {
        return Err(MetricsError::Invalid(
            "Mann-Whitney test needs at least one finite value in each sample".into(),
        ));
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut r1 = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let avg_rank = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        r1 += avg_rank * all[i..j].iter().filter(|e| e.1).count() as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let nf = n as f64;
    let mu = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)));
    let u = u1.max(u2);
    let (z, p) = if var > 0.0 {
        let z = (u - mu - 0.5) / var.sqrt();
        (z, (2.0 * normal_sf(z)).min(1.0))
    } else {
        (0.0, 1.0)
    };
    Ok(MannWhitney {
        u1,
        effect: u1 / (n1 * n2),
        z,
        p,
    })
}

/// The smallest two-sided p [`mann_whitney`] can give for samples of sizes `n1` and `n2`
/// (complete separation, no ties): with `n1 = n2 = 2` it is 0.245, so no pair of 2-simulation
/// groups can ever differ at [`ALPHA`]. 1 when a sample is empty.
pub fn mann_whitney_min_p(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let var = a * b / 12.0 * (a + b + 1.0);
    let z = (a * b / 2.0 - 0.5) / var.sqrt();
    (2.0 * normal_sf(z)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_known_values() {
        // Independent values: the Wilson closed form evaluated in Python 3.11 (float64,
        // z = 1.959963984540054), e.g. k=81, m=263 -> (0.2552885198782742, 0.36620957698280004).
        let cases = [
            (0, 10, 0.0, 0.277_532_799_862_889_2),
            (5, 10, 0.236_593_090_512_564, 0.763_406_909_487_436_1),
            (81, 263, 0.255_288_519_878_274_2, 0.366_209_576_982_800_04),
            (10, 10, 0.722_467_200_137_110_7, 0.999_999_999_999_999_9),
        ];
        for (k, m, lo, hi) in cases {
            let w = wilson(k, m, Z95);
            assert!(
                (w.lo - lo).abs() < 1e-13 && (w.hi - hi).abs() < 1e-13,
                "{w:?}"
            );
            assert_eq!(w.p, k as f64 / m as f64);
        }
        assert!(wilson(0, 0, Z95).p.is_nan());
        // The ends are exact, for every m (the closed form alone leaves e.g. 3e-18 at k = 0).
        for m in 1..=500 {
            assert_eq!(wilson(0, m, Z95).lo, 0.0, "m = {m}");
            assert_eq!(wilson(m, m, Z95).hi, 1.0, "m = {m}");
        }
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy 1.17.1: mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        let x = [0.1, 0.5, 0.5, 2.0, 3.5, -1.0, 0.7];
        let y = [0.5, 1.5, 2.5, 2.5, 4.0, 5.0];
        let r = mann_whitney(&x, &y).unwrap();
        assert_eq!(r.u1, 8.0);
        assert!((r.p - 0.072_160_113_002_395_11).abs() < 1e-12, "{r:?}");
        let r = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0, 7.0]).unwrap();
        assert_eq!(r.u1, 0.0);
        assert_eq!(r.effect, 0.0);
        assert!((r.p - 0.051_829_927_217_909_68).abs() < 1e-12, "{r:?}");
        // Many ties (values rounded to 0.1; -0.0 and 0.0 tie): numpy default_rng(3),
        // a = round(normal(0, 1, 40), 1), b = round(normal(0.4, 1, 55), 1).
        let a = [
            2.0, -2.6, 0.4, -0.6, -0.5, -0.2, -2.0, -0.2, -0.9, 3.3, 0.2, -0.4, -0.3, -0.7, -1.1,
            -0.4, 0.5, -0.2, 1.0, -0.2, 0.0, 1.5, 0.5, -0.5, -0.2, 0.5, 1.9, -0.3, -0.2, 1.0, -0.9,
            -0.3, 0.9, 0.6, 0.1, 0.7, -2.8, 1.0, -1.0, -1.7,
        ];
        let b = [
            0.7, 1.1, -0.0, -0.7, 0.4, 0.3, 1.8, 1.1, 0.6, 1.5, 0.2, -0.5, 1.0, 1.0, 0.2, -0.4,
            0.6, -2.1, 1.1, 0.9, -1.2, 0.5, -0.6, 1.2, -1.6, -0.5, 1.1, 1.6, -1.8, -0.1, 0.7, -0.2,
            2.0, -0.8, 0.8, -0.6, 1.8, 0.4, 0.0, -1.3, 2.1, 1.2, 1.2, 1.5, 0.7, -0.2, -0.4, -0.4,
            1.8, -1.1, -0.2, 0.1, 0.6, 1.0, -0.8,
        ];
        let r = mann_whitney(&a, &b).unwrap();
        assert_eq!(r.u1, 856.5);
        assert!((r.p - 0.066_746_678_683_043_03).abs() < 1e-12, "{r:?}");
        assert!(mann_whitney(&[], &b).is_err());
    }

    #[test]
    fn smallest_attainable_p_is_the_p_of_complete_separation() {
        // 2 vs 2: z = 1.5 / sqrt(5/3), p = erfc(z / sqrt 2) = 0.24509... (the main job's p).
        let p = mann_whitney_min_p(2, 2);
        assert!((p - 0.245_278_116_806_772_86).abs() < 1e-12, "{p}");
        for (n1, n2) in [(2, 2), (3, 4), (8, 8), (1, 30)] {
            let x: Vec<f64> = (0..n1).map(|i| i as f64).collect();
            let y: Vec<f64> = (0..n2).map(|i| 100.0 + i as f64).collect();
            assert_eq!(mann_whitney(&x, &y).unwrap().p, mann_whitney_min_p(n1, n2));
        }
        // 3 vs 4 cannot go below 0.0518 > 0.05; 4 vs 4 can: 0.0304.
        assert!(mann_whitney_min_p(3, 4) > ALPHA && mann_whitney_min_p(4, 4) < ALPHA);
        assert_eq!(mann_whitney_min_p(0, 3), 1.0);
    }

    #[test]
    fn mean_se_values() {
        let r = mean_se(&[1.0, 2.0, 3.0, 4.0, f64::NAN]);
        assert_eq!(r.m, 4);
        assert!((r.mean - 2.5).abs() < 1e-15);
        // sd = sqrt(5/3), se = sd / 2
        assert!((r.se - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-15);
        assert!(mean_se(&[7.0]).se.is_nan());
        assert!(mean_se(&[]).mean.is_nan());
    }

    #[test]
    fn eta_value_and_errors() {
        let e = eta(50, 2.0, 4550, 0.5).unwrap();
        assert!((e - (-(0.75f64).ln())).abs() < 1e-15);
        let err = eta(50, 1.0, 4550, 1.2).unwrap_err().to_string();
        assert!(
            err.contains("ratio below 1") && err.contains("n=4550"),
            "{err}"
        );
        assert!(eta(50, 0.0, 4550, 0.0).is_err());
        assert!(eta(50, 1.0, 4550, f64::NAN).is_err());
    }

    #[test]
    fn neumaier_beats_naive() {
        let v = [1.0, 1e100, 1.0, -1e100];
        assert_eq!(neumaier_sum(v), 2.0);
    }
}
