//! `memdiff eval --checkpoint DIR`: prints the memorization audit of a checkpoint
//! (`memdiff_diffusion::audit`, which computes it and writes the picture).
//!
//! The arguments are `eval`'s (`super::eval::EvalArgs`, owned by the metric); `eval` resolves
//! them into [`AuditOptions`] and hands over to [`run`].

use anyhow::Context;
use memdiff_diffusion::audit::{self, AuditOptions, AuditReport};
use std::fmt::Write as _;

/// The report as one JSON object: `eval`'s metric fields plus the audit's.
pub fn report_json(r: &AuditReport) -> anyhow::Result<serde_json::Value> {
    let mut out = super::metric_json::result_json(
        &r.kde,
        &r.kde_options,
        &r.policy,
        Some(r.ties_generated),
        true,
    );
    let extra = serde_json::to_value(r)?;
    let m = out.as_object_mut().expect("object");
    if let serde_json::Value::Object(e) = extra {
        for (k, v) in e {
            m.insert(k, v);
        }
    }
    m.insert(
        "nn_ratio_mean".into(),
        serde_json::json!(r.nn_train.ratio_mean),
    );
    m.insert(
        "nn_frac_memorized".into(),
        serde_json::json!(r.nn_train.frac_memorized),
    );
    m.insert("nn_d1_mean".into(), serde_json::json!(r.nn_train.d1_mean));
    Ok(out)
}

/// Prints the report: one JSON line, or [`text`].
pub fn print(r: &AuditReport, json: bool, per_sample: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&report_json(r)?)?);
    } else {
        print!("{}", text(r, per_sample));
    }
    Ok(())
}

/// The human-readable summary (`per_sample`: one line per generated image, in the picture's
/// order: d1/d2 ascending, `*` marking the likely copies framed there).
pub fn text(r: &AuditReport, per_sample: bool) -> String {
    let mut s = String::new();
    let k = &r.kde;
    let _ = writeln!(
        s,
        "checkpoint {} (step {}{}), {} x {} steps ({} trained)",
        r.checkpoint,
        r.checkpoint_step,
        if r.ema { ", EMA" } else { "" },
        r.sampler,
        r.network_steps,
        r.diffusion_steps
    );
    let _ = writeln!(
        s,
        "sets: O = {} ({}), T = {} (the checkpoint's training set), G = {} generated",
        k.n_original, r.original_source, k.n_train, k.n_generated
    );
    let _ = writeln!(
        s,
        "E_TG = {:.6e}  E_OG = {:.6e}  Δ = {:+.6e}  Δ_U = {:+.6e}",
        k.e_tg, k.e_og, k.delta, k.delta_unbiased
    );
    let _ = writeln!(
        s,
        "  {} pixels used, {} constant over O left out; bandwidth {}{}",
        k.pixels_used,
        k.pixels_skipped,
        r.kde_options.bandwidth,
        r.kde_options
            .min_bandwidth
            .map(|f| format!(" (floor {f:.5})"))
            .unwrap_or_default(),
    );
    let _ = writeln!(s, "  {}", r.policy.summary(Some(r.ties_generated), true));
    let _ = writeln!(
        s,
        "nearest training image: mean d1/d2 = {:.3}, {:.0} % below 1/3 (likely copies); mean d1 to T = {:.4}, to O = {:.4}",
        r.nn_train.ratio_mean,
        100.0 * r.nn_train.frac_memorized,
        r.nn_train.d1_mean,
        r.d1_original_mean
    );
    match &r.quality {
        Some(q) => s.push_str(&memdiff_diffusion::quality::text(q)),
        None => {
            let _ = writeln!(
                s,
                "quality: not computed (k = 3 nearest neighbours need more than 3 generated images: --generate 4 or more)"
            );
        }
    }
    if per_sample {
        let _ = writeln!(
            s,
            "  i  nearest_T  second_T        d1        d2   d1/d2   d1_to_O  (by d1/d2, as in the picture; * below 1/3)"
        );
        for i in audit::order(&r.generated) {
            let g = &r.generated[i];
            let _ = writeln!(
                s,
                "{i:3}  {:9}  {:>8}  {:8.4}  {:8.4}  {:6.3}{}  {:8.4}",
                g.nearest_train,
                g.second_train.map_or("-".into(), |x| x.to_string()),
                g.d1_train,
                g.d2_train,
                g.ratio_train,
                if g.is_copy() { "*" } else { " " },
                g.d1_original
            );
        }
    }
    let _ = writeln!(
        s,
        "Δ < 0 alone does not show memorization: read it against an oracle on the same sets (docs/METHOD.md §4b)."
    );
    let _ = writeln!(
        s,
        "picture (generated | nearest in T | second nearest, by d1/d2, copies framed): {}",
        r.png
    );
    s
}

/// Runs the audit with a progress bar and prints it.
pub fn run(
    a: &AuditOptions,
    json: bool,
    per_sample: bool,
    nn_csv: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    super::sample::check_out_dir("--png", &a.png_path())?;
    if let Some(p) = nn_csv {
        super::sample::check_out_dir("--nn-csv", p)?;
    }
    let pb = memdiff_data::progress::bar(0, "network evals");
    let r = audit::audit(a, Some(&pb));
    pb.finish_and_clear();
    let r = r?;
    if let Some(p) = nn_csv {
        // The --nn table in the picture's order (d1/d2 ascending).
        let mut csv = String::from("g,nearest,second,d1,d2,ratio,d1_original\n");
        for i in audit::order(&r.generated) {
            let x = &r.generated[i];
            let second = x.second_train.map_or(String::new(), |k| k.to_string());
            csv.push_str(&format!(
                "{i},{},{second},{:e},{:e},{:e},{:e}\n",
                x.nearest_train, x.d1_train, x.d2_train, x.ratio_train, x.d1_original
            ));
        }
        memdiff_data::atomic::write_bytes(p, csv.as_bytes())
            .with_context(|| format!("--nn-csv {}", p.display()))?;
    }
    print(&r, json, per_sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use memdiff_data::quantize::{self, Mode};
    use memdiff_data::ImageSet;
    use memdiff_metrics::{kde, nn};

    /// The picture's panels, read in order, are the printed table's lines: same generated image,
    /// same training rows, framed exactly where the table marks d1/d2 < 1/3, ratios ascending.
    #[test]
    fn picture_order_and_frames_match_the_printed_table() {
        // T: 8 images of 2 x 2 at distinct corners; G: exact copies (ratio 0), near copies and
        // points between two training images (ratio near 1), in a mixed generation order.
        let t_rows: Vec<[f32; 4]> = vec![
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0, 0.0],
            [0.0, 1.0, 1.0, 0.0],
            [1.0, 1.0, 1.0, 1.0],
        ];
        let g_rows: Vec<[f32; 4]> = vec![
            [0.5, 0.0, 0.0, 0.0],  // between T0 and T1: ratio 1
            [0.0, 0.0, 1.0, 0.0],  // copy of T3: ratio 0
            [0.9, 0.9, 0.95, 0.9], // near T7
            [0.5, 0.5, 0.5, 0.5],  // far from all
            [1.0, 0.05, 0.0, 0.0], // near copy of T1
            [0.0, 0.5, 0.5, 0.0],  // between T2, T3 and T6
        ];
        let t = ImageSet::new(8, 1, 2, 2, t_rows.concat());
        let g = ImageSet::new(6, 1, 2, 2, g_rows.concat());
        let o = ImageSet::new(
            5,
            1,
            2,
            2,
            (0..20).map(|i| ((i * 7) % 11) as f32 / 10.0).collect(),
        );
        let nb_t = nn::nearest_neighbours(&t.data, t.n, &g.data, g.n, 4).unwrap();
        let nb_o = nn::nearest_neighbours(&o.data, o.n, &g.data, g.n, 4).unwrap();
        let kopts = memdiff_metrics::kde::KdeOptions::default();
        let r = AuditReport {
            checkpoint: "ck".into(),
            checkpoint_step: 100,
            ema: false,
            sampler: "ddpm".into(),
            network_steps: 50,
            diffusion_steps: 50,
            original_source: "test".into(),
            kde: kde::evaluate(&o.data, 5, &t.data, 8, &g.data, 6, 4, &kopts).unwrap(),
            kde_options: kopts,
            policy: quantize::decide(Mode::None, 0, &o, &t),
            ties_generated: 0.0,
            nn_train: nn::summarize(&nb_t),
            d1_original_mean: 0.0,
            quality: None,
            generated: audit::rows(&nb_t, &nb_o),
            png: "audit.png".into(),
            seconds_sampling: 0.0,
            backend: "test".into(),
        };
        // The printed table: (generation index, nearest, second, ratio, starred).
        let printed = text(&r, true);
        let table: Vec<(usize, usize, usize, f64, bool)> = printed
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("i  nearest_T"))
            .skip(1)
            .take_while(|l| !l.starts_with("Δ"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let star = f[5].ends_with('*');
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[5].trim_end_matches('*').parse().unwrap(),
                    star,
                )
            })
            .collect();
        assert_eq!(table.len(), 6);
        // Hand-checked: the copy of T3 first (ratio 0), then the near copy of T1
        // (0.05 / sqrt(1 + 0.0025) = 0.0499), then the one near T7.
        assert_eq!(
            table.iter().take(3).map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            vec![(1, 3), (4, 1), (2, 7)]
        );
        assert!(table.windows(2).all(|w| w[0].3 <= w[1].3));
        assert!(table.iter().any(|x| !x.4) && table.iter().any(|x| x.4));
        // The picture, panel by panel in reading order.
        let grid = audit::picture(&r, &g, &t);
        let panels: Vec<_> = grid.rows.iter().flat_map(|r| r.panels.iter()).collect();
        assert_eq!(panels.len(), table.len());
        for (p, &(i, near, second, ratio, star)) in panels.iter().zip(&table) {
            assert_eq!(p.caption[0], format!("#{i}  d1/d2 = {ratio:.3}"));
            assert_eq!(p.caption[1], format!("T {near} · 2nd T {second}"));
            assert_eq!(p.highlight, star, "panel of #{i}");
            assert_eq!(p.highlight, ratio < 1.0 / 3.0);
            let pix = |k: usize| p.tiles[k].as_ref().unwrap().pixels.clone();
            assert_eq!(pix(0), g.row(i));
            assert_eq!(pix(1), t.row(near));
            assert_eq!(pix(2), t.row(second));
        }
        // The title's count of likely copies is the table's.
        let stars = table.iter().filter(|x| x.4).count();
        assert!(grid.title[1].starts_with(&format!("{stars} of 6 generated images")));
    }
}
