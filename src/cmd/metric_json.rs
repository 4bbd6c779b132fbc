//! The metric's JSON fields shared by `eval`, the checkpoint audit and `bench kde`.

use memdiff_data::quantize::Decision;
use memdiff_metrics::kde::{KdeOptions, KdeResult};
use serde_json::{json, Value};

/// The metric's JSON fields shared by `eval`, the audit and `bench kde`, with the quantised-data
/// policy's: the treatment, the sets that got noise, and the tie shares of the raw sets
/// (`raw_tie_share_*`, what the policy decides by; `tie_share_*` are the metric's, after it).
pub fn result_json(
    r: &KdeResult,
    opts: &KdeOptions,
    policy: &Decision,
    ties_g: Option<f64>,
    g_noised: bool,
) -> Value {
    let mut v = metric_json(r, opts);
    let m = v.as_object_mut().expect("object");
    m.insert("dequantized".into(), json!(policy.treatment.as_str()));
    m.insert("dequantize_mode".into(), json!(policy.mode.to_string()));
    m.insert(
        "dequantized_sets".into(),
        json!(policy.noised_sets(g_noised)),
    );
    m.insert("raw_tie_share_original".into(), json!(policy.ties_original));
    m.insert("raw_tie_share_train".into(), json!(policy.ties_train));
    m.insert("raw_tie_share_generated".into(), json!(ties_g));
    v
}

/// The metric's own JSON fields (`bench kde` adds `dequantized = none`).
pub fn metric_json(r: &KdeResult, opts: &KdeOptions) -> Value {
    json!({
        "e_tg": r.e_tg,
        "e_og": r.e_og,
        "delta": r.delta,
        "delta_unbiased": r.delta_unbiased,
        "pixels_used": r.pixels_used,
        "pixels_skipped": r.pixels_skipped,
        "n_original": r.n_original,
        "n_train": r.n_train,
        "n_generated": r.n_generated,
        "bandwidth": opts.bandwidth.to_string(),
        "scale": if opts.paper_scale { "paper (x sqrt(2 pi))" } else { "l2" },
        "scale_factor": r.scale,
        "min_std": opts.min_std,
        "min_bandwidth": opts.min_bandwidth,
        "s_tt": r.s_tt,
        "s_gg": r.s_gg,
        "s_oo": r.s_oo,
        "s_tg": r.s_tg,
        "s_og": r.s_og,
        "u_tt": r.u_tt,
        "u_oo": r.u_oo,
        "e_tg_error_bound": r.e_tg_error_bound,
        "e_og_error_bound": r.e_og_error_bound,
        "tie_share_original": r.tie_share_oo,
        "tie_share_train": r.tie_share_tt,
    })
}
