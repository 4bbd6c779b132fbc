//! DDIM timestep subsets (Song et al. 2021) with the three spacings of diffusers'
//! `DDIMScheduler.set_timesteps` (`timestep_spacing = "trailing" | "leading" | "linspace"`,
//! `steps_offset = 0`).
//!
//! diffusers numbers steps `0..s-1`; this crate numbers them `1..=s` (standard indexing), so every
//! value here is diffusers' value plus one. Rounding is numpy's (`np.round`: ties to even).

use serde::{Deserialize, Serialize};

/// How `K` sampling steps are picked among the `s` trained steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TimestepSpacing {
    /// `round(s - i s/K)` for `i = 0..K-1`: always starts at `t = s` (pure noise end) and ends
    /// near `s/K` (diffusers `np.round(np.arange(s, 0, -s/K)) - 1`, plus one).
    #[default]
    Trailing,
    /// `1 + i floor(s/K)` for `i = K-1..0`: ends at `t = 1`, may start well below `s`
    /// (diffusers `arange(0, K) * (s // K)`, reversed, plus one).
    Leading,
    /// `1 + round(i (s-1)/(K-1))` for `i = K-1..0`: both ends, `t = s` and `t = 1`
    /// (diffusers `np.linspace(0, s - 1, K).round()[::-1]`, plus one).
    Linspace,
}

impl std::str::FromStr for TimestepSpacing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trailing" => Ok(Self::Trailing),
            "leading" => Ok(Self::Leading),
            "linspace" => Ok(Self::Linspace),
            _ => Err(format!(
                "unknown spacing `{s}`: use trailing, leading or linspace"
            )),
        }
    }
}

impl std::fmt::Display for TimestepSpacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Trailing => "trailing",
            Self::Leading => "leading",
            Self::Linspace => "linspace",
        })
    }
}

/// Error for an impossible choice of sampling steps.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpacingError {
    #[error("sampling steps K = {k} with s = {s} trained steps: need 1 <= K <= s (set --sampling-steps between 1 and {s})")]
    Steps { k: usize, s: usize },
}

/// The `K` sampling timesteps among `1..=s`, strictly decreasing (first the noisiest).
pub fn timesteps(s: usize, k: usize, spacing: TimestepSpacing) -> Result<Vec<usize>, SpacingError> {
    if k == 0 || k > s {
        return Err(SpacingError::Steps { k, s });
    }
    let ts: Vec<usize> = match spacing {
        TimestepSpacing::Trailing => {
            let ratio = s as f64 / k as f64;
            (0..k)
                .map(|i| (s as f64 - i as f64 * ratio).round_ties_even() as usize)
                .collect()
        }
        TimestepSpacing::Leading => {
            let ratio = s / k;
            (0..k).rev().map(|i| 1 + i * ratio).collect()
        }
        TimestepSpacing::Linspace => {
            if k == 1 {
                vec![1]
            } else {
                // numpy: step = (stop - start) / (num - 1); y = arange(num) * step; y[-1] = stop.
                let step = (s - 1) as f64 / (k - 1) as f64;
                (0..k)
                    .rev()
                    .map(|i| {
                        if i == k - 1 {
                            s
                        } else {
                            1 + (i as f64 * step).round_ties_even() as usize
                        }
                    })
                    .collect()
            }
        }
    };
    debug_assert!(ts.windows(2).all(|w| w[0] > w[1]));
    debug_assert!(ts.iter().all(|&t| (1..=s).contains(&t)));
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goldens: diffusers' formulas evaluated with numpy 2.4.6 (~/.venvs/torchref), plus one:
    //   trailing: np.round(np.arange(s, 0, -s / K)).astype(np.int64) - 1
    //   leading:  (np.arange(0, K) * (s // K)).round()[::-1].astype(np.int64)
    //   linspace: np.linspace(0, s - 1, K).round()[::-1].astype(np.int64)
    // (script in crates/schedule/goldens.py).
    fn check(s: usize, k: usize, sp: TimestepSpacing, want: &[usize]) {
        assert_eq!(timesteps(s, k, sp).unwrap(), want, "s={s} K={k} {sp}");
    }

    #[test]
    fn spacings_match_diffusers_goldens() {
        use TimestepSpacing::*;
        for (s, k, sp, want) in crate::goldens::SPACINGS {
            let sp = match *sp {
                "trailing" => Trailing,
                "leading" => Leading,
                _ => Linspace,
            };
            check(*s, *k, sp, want);
        }
    }

    #[test]
    fn k_equal_s_is_every_step_for_every_spacing() {
        for sp in [
            TimestepSpacing::Trailing,
            TimestepSpacing::Leading,
            TimestepSpacing::Linspace,
        ] {
            let want: Vec<usize> = (1..=37).rev().collect();
            check(37, 37, sp, &want);
        }
    }

    #[test]
    fn impossible_k_is_an_error() {
        let e = timesteps(10, 11, TimestepSpacing::Trailing).unwrap_err();
        assert_eq!(e, SpacingError::Steps { k: 11, s: 10 });
        assert!(e.to_string().contains("--sampling-steps between 1 and 10"));
        assert!(timesteps(10, 0, TimestepSpacing::Leading).is_err());
    }

    #[test]
    fn parse_round_trip() {
        for name in ["trailing", "leading", "linspace"] {
            let sp: TimestepSpacing = name.parse().unwrap();
            assert_eq!(sp.to_string(), name);
        }
        assert!("uniform".parse::<TimestepSpacing>().is_err());
    }
}
