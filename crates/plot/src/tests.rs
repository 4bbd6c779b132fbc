use super::*;

fn sample_plot(log: bool) -> LinePlot {
    let mut p = LinePlot::new("Test plot", "n / d", "P(Δ>0)");
    p.log_x = log;
    p.log_y = log;
    p.series.push(
        Series::line_and_points("alpha curve", vec![(1.0, 0.1), (10.0, 0.5), (100.0, 0.9)])
            .with_band(vec![(1.0, 0.05, 0.2), (10.0, 0.4, 0.6), (100.0, 0.8, 0.95)]),
    );
    p.series
        .push(Series::line("beta dashed", vec![(1.0, 0.2), (100.0, 0.3)]).dashed());
    // Non-finite and (on log axes) non-positive points are dropped, not an error.
    p.series.push(Series::points(
        "gamma",
        vec![(2.0, 0.3), (f64::NAN, 1.0), (0.0, 0.5), (5.0, -1.0)],
    ));
    p
}

#[test]
fn svg_has_title_labels_and_legend() {
    for log in [false, true] {
        let svg = sample_plot(log).render_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        for text in [
            "Test plot",
            "n / d",
            "P(Δ&gt;0)",
            "alpha curve",
            "beta dashed",
            "gamma",
        ] {
            assert!(svg.contains(text), "log={log}: missing {text}");
        }
    }
}

#[test]
fn png_decodes_with_the_right_size_and_uses_the_palette() {
    let p = sample_plot(true);
    let png = p.render_png().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), p.size);
    // The first two palette colours are drawn somewhere (series lines).
    for c in [palette(0), palette(1)] {
        let hit = img.pixels().any(|px| px.0 == [c.0, c.1, c.2]);
        assert!(hit, "colour {c:?} not found");
    }
    // Text is rendered: dark pixels exist in the caption strip.
    let dark = (0..p.size.0)
        .flat_map(|x| (0..40).map(move |y| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&v| v < 100))
        .count();
    assert!(dark > 50, "caption looks empty ({dark} dark pixels)");
}

#[test]
fn save_writes_both_files_and_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("sub").join("fig");
    let paths = sample_plot(false).save(&base).unwrap();
    assert_eq!(paths.len(), 2);
    assert!(paths[0].ends_with("fig.svg") && paths[1].ends_with("fig.png"));
    let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn unwritable_path_is_named() {
    let e = sample_plot(false)
        .save(Path::new("/proc/memdiff-no/fig"))
        .unwrap_err();
    assert!(e.to_string().contains("/proc/memdiff-no/fig.svg"), "{e}");
}

#[test]
fn bad_fixed_range_is_an_error_and_empty_plot_is_fine() {
    let mut p = sample_plot(true);
    p.y_range = Some((0.0, 1.0)); // 0 on a log axis
    let e = p.render_svg().unwrap_err();
    assert!(e.to_string().contains("y range"), "{e}");
    let empty = LinePlot::new("empty", "x", "y");
    assert!(empty.render_svg().unwrap().contains("empty"));
}

#[test]
fn tick_format() {
    assert_eq!(fmt_tick(0.0), "0");
    assert_eq!(fmt_tick(0.25), "0.25");
    assert_eq!(fmt_tick(100.0), "100");
    assert_eq!(fmt_tick(1e-5), "1e-5");
}

#[test]
fn save_row_puts_the_panels_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = sample_plot(false);
    b.title = "Second panel".into();
    b.size = (500, 600);
    let paths = save_row(&[sample_plot(true), b], &dir.path().join("row")).unwrap();
    let img = image::open(&paths[1]).unwrap().to_rgb8();
    // Widths add up, the tallest panel sets the height.
    assert_eq!(img.dimensions(), (800 + 500, 600));
    let svg = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(svg.contains("Test plot") && svg.contains("Second panel"));
    // The second panel is drawn: a palette colour right of the first panel's width.
    let c = palette(0);
    assert!((800..1300).any(|x| (0..600).any(|y| img.get_pixel(x, y).0 == [c.0, c.1, c.2])));
    assert!(save_row(&[], &dir.path().join("none")).is_err());
}

#[test]
fn long_titles_shrink_to_the_canvas() {
    let short = "P vs n";
    assert_eq!(super::caption_size(short, 800, 22), 22);
    let long = "Phase diagram — gmm px 8 C 1 s 50 (ddpm/clipped-x0): f_mem · E_OG/oracle · reading";
    let s = super::caption_size(long, 700, 20);
    assert!((11..20).contains(&s), "{s}");
    assert!(super::panels::text_width(long, s) <= 676);
    assert!(super::panels::text_width(long, s + 1) > 676);
}

#[test]
fn log_ticks_fall_inside_the_data_range() {
    use super::log_ticks;
    // Wide: 1, 2, 5 x 10^k.
    assert_eq!(log_ticks(800.0, 12000.0), [1000.0, 2000.0, 5000.0, 10000.0]);
    // Many decades: powers of ten only.
    assert_eq!(
        log_ticks(0.5, 2e6),
        [1.0, 10.0, 100.0, 1000.0, 1e4, 1e5, 1e6]
    );
    // Only 50 of 1-2-5 inside: 1..9 x 10^k.
    assert_eq!(log_ticks(28.0, 72.0), [30.0, 40.0, 50.0, 60.0, 70.0]);
    // Inside one step (tau_mem against n near 1.5): round values inside the range.
    assert_eq!(log_ticks(1.31, 1.88), [1.4, 1.6, 1.8]);
    assert_eq!(log_ticks(0.01231, 0.01289), [0.0124, 0.0126, 0.0128]);
    assert_eq!(log_ticks(0.2, 0.29), [0.2, 0.22, 0.24, 0.26, 0.28]);
    for (lo, hi) in [(1.31, 1.88), (3.7e4, 3.9e4), (0.2, 0.29), (7.0, 7.5)] {
        let t = log_ticks(lo, hi);
        assert!(
            t.len() >= 2 && t.iter().all(|&v| v >= lo && v <= hi),
            "{lo} {hi}: {t:?}"
        );
    }
    assert!(log_ticks(0.0, 1.0).is_empty());
}

#[test]
fn a_narrow_log_range_gets_labelled_ticks() {
    // tau_mem against n: x from 50 to 70, y from 1.35 to 1.85; plotters' own log ticks label
    // neither range.
    let mut p = LinePlot::new("tau", "n", "tau_mem");
    p.log_x = true;
    p.log_y = true;
    p.series.push(Series::points(
        "pts",
        vec![(50.0, 1.35), (60.0, 1.6), (70.0, 1.85)],
    ));
    let svg = p.render_svg().unwrap();
    for label in ["50", "60", "70", "1.4", "1.6", "1.8"] {
        assert!(
            svg.contains(&format!(">\n{label}\n<")),
            "missing tick {label}"
        );
    }
}
