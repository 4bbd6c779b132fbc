//! The per-pixel 1-D KDE distance of docs/METHOD.md §4 (and the unbiased Δ of docs/METHOD.md §4b), exact and fast.
//!
//! For a set A of `n_A` samples and pixel `i`, `rho_{A,i}(x) = (1/n_A) sum_k N(x | a_k, eps_{A,i}^2)`.
//! The distance between A and B is `E_AB = (1/d') sum_i ∫ (rho_{A,i} - rho_{B,i})^2 dx` over the
//! `d'` usable pixels, with the closed form `S_AA + S_BB - 2 S_AB`,
//! `S_AB = 1/(n_A n_B) sum_k sum_l K(a_k - b_l; eps_A^2 + eps_B^2)`,
//! `K(u; v) = exp(-u^2 / (2 v)) / sqrt(2 pi v)`. The default is the true L2 distance;
//! [`KdeOptions::paper_scale`] multiplies every reported term by `sqrt(2 pi)` (the seeds' code).
//!
//! ## Bandwidth (docs/METHOD.md §4)
//! `sigma_i` is the standard deviation of pixel `i` over the **original** set O, with the `N - 1`
//! denominator, times [`KdeOptions::sigma_scale`] (1 by default; the papers' code uses 1/255
//! with O on the ×255 scale), floored at [`KdeOptions::min_std`] if given. A pixel whose values
//! over O are all equal (`max == min`, not `sigma == 0`) has no bandwidth and is skipped and
//! counted, unless a `min_std` floor or a fixed bandwidth is given. Every set A (also G) uses
//! `eps_{A,i} = rule(sigma_i, n_A)` ([`Bandwidth`]), floored at
//! [`KdeOptions::min_bandwidth`] (the quantisation-step floor of docs/METHOD.md §4b).
//!
//! ## Exactness and speed
//! Per pixel, each set's values are sorted and equal values collapsed into counts (u8 data has
//! at most 256 groups). A pair sum only visits pairs within `R sqrt(v)` of each other (`R`
//! kernel widths, [`KdeOptions::cutoff`]). Every dropped term is at most `K(0; v) exp(-R^2 / 2)`,
//! so the dropped mass of a pair sum is at most `(pairs not visited) K(0; v) exp(-R^2/2)`; that
//! bound is computed, carried through the normalisation and reported
//! ([`KdeResult::e_tg_error_bound`]). The default `R^2 = 2 (ln max(n_A, n_B) + 36)` makes the
//! dropped mass of a self-term at most `e^-36 ≈ 2.3e-16` times its own diagonal. Sums are f64
//! with 8 independent accumulators, pixels run in parallel (rayon) and are reduced in pixel
//! order, so results do not depend on the thread count.
//!
//! ## Unbiased Δ (docs/METHOD.md §4b)
//! `U_AA` is the off-diagonal part of the self-term: pairs `k != l` divided by `n_A (n_A - 1)`
//! (NaN when `n_A = 1`). `delta_unbiased = U_TT - U_OO - 2 (S_TG - S_OG)`, reported beside the
//! papers' `delta = E_TG - E_OG`, never instead of it.
//!
//! ## Modules
//! The options (`options.rs`: [`Bandwidth`], [`KdeOptions`], [`auto_cutoff`]), the
//! preparation of O and the evaluation of (T, G) (`original.rs`: [`OriginalSet`],
//! [`KdeResult`], [`evaluate`]), the fast path (`fast.rs`: [`Column`], [`cross_sum`],
//! [`self_offdiag_sum`], [`self_term`], [`cross_term`]) and its kernels (`kernels.rs`: the inner
//! loops, generic over FMA, with AVX2 versions chosen at run time).

/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

mod fast;
mod kernels;
mod options;
mod original;
#[cfg(test)]
mod tests;

pub use fast::*;
pub use options::*;
pub use original::*;
