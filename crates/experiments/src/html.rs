//! `report/index.html`: the whole report as one self-contained page — the summary tables (the
//! Markdown of `summary.md`, turned into HTML tables: the same text, not a second computation),
//! every figure the report wrote (PNG embedded as base64, with a relative link to the file and
//! its SVG), links to the CSV tables, and the sweep's resolved settings (`sweep.toml`). No
//! JavaScript, no network: it can be opened from disk or attached to a lab notebook.

use crate::report::ReportError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the page, in the report folder.
pub const INDEX: &str = "index.html";

/// Writes `out/index.html` from the report's Markdown (`md`, as `summary.md` holds it), the
/// files the report wrote (`files`: figures are the `.png` ones, in that order) and the sweep's
/// resolved config (`settings`, read if it exists). Returns the page's path.
pub fn write_index(
    out: &Path,
    md: &str,
    files: &[PathBuf],
    settings: Option<&Path>,
) -> Result<PathBuf, ReportError> {
    let settings = settings.map(|p| (p, std::fs::read_to_string(p).ok()));
    let page = page(
        md,
        files,
        settings.as_ref().map(|(p, t)| (*p, t.as_deref())),
    )?;
    let path = out.join(INDEX);
    memdiff_data::atomic::write_bytes(&path, page.as_bytes())?;
    Ok(path)
}

/// The page as text (see [`write_index`]).
pub fn page(
    md: &str,
    files: &[PathBuf],
    settings: Option<(&Path, Option<&str>)>,
) -> Result<String, ReportError> {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>memdiff sweep report</title>\n<style>\n",
    );
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>memdiff sweep report</h1>\n");
    let pngs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    let others: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "md"))
        .collect();
    h.push_str("<nav><a href=\"#tables\">Tables</a> · <a href=\"#figures\">Figures</a> · <a href=\"#settings\">Settings</a>");
    if !others.is_empty() {
        h.push_str(" · files:");
        for f in &others {
            let name = file_name(f);
            let _ = write!(h, " <a href=\"{0}\">{0}</a>", esc(&name));
        }
    }
    h.push_str("</nav>\n<h2 id=\"tables\">Tables</h2>\n");
    h.push_str(&markdown_to_html(md));
    h.push_str("<h2 id=\"figures\">Figures</h2>\n");
    if pngs.is_empty() {
        h.push_str("<p>No figures.</p>\n");
    }
    for p in &pngs {
        let bytes = std::fs::read(p).map_err(|source| crate::store::StoreError::Read {
            path: p.to_path_buf(),
            source,
        })?;
        let name = file_name(p);
        let svg = p.with_extension("svg");
        let _ = write!(
            h,
            "<figure>\n<figcaption>{} — <a href=\"{}\">{}</a>",
            esc(describe(&name)),
            esc(&name),
            esc(&name)
        );
        if files.contains(&svg) {
            let s = file_name(&svg);
            let _ = write!(h, " · <a href=\"{0}\">{0}</a>", esc(&s));
        }
        let _ = writeln!(
            h,
            "</figcaption>\n<img alt=\"{}\" src=\"data:image/png;base64,{}\">\n</figure>",
            esc(&name),
            base64(&bytes)
        );
    }
    h.push_str("<h2 id=\"settings\">Settings</h2>\n");
    match settings {
        Some((p, Some(text))) => {
            let _ = writeln!(
                h,
                "<p>The sweep's resolved configuration, <code>{}</code>:</p>\n<pre>{}</pre>",
                esc(&p.display().to_string()),
                esc(text)
            );
        }
        Some((p, None)) => {
            let _ = writeln!(
                h,
                "<p>No settings file at <code>{}</code> (a bare results.csv): the table's columns carry the settings of every row.</p>",
                esc(&p.display().to_string())
            );
        }
        None => h.push_str("<p>No settings file given.</p>\n"),
    }
    let _ = writeln!(
        h,
        "<footer>memdiff {} · written by <code>memdiff report</code></footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

const STYLE: &str = "body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { font-size: 1.05em; margin-top: 1.6em; }
nav { color: #555; } nav a { margin: 0 0.2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td { min-width: 3em; } td.nw { white-space: nowrap; }
p { max-width: 60em; line-height: 1.45; }
figure { margin: 1.5em 0; } figcaption { margin-bottom: 0.4em; color: #333; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
";

/// What a figure shows, from its file name (the stems of `plots` and `samples`).
pub fn describe(name: &str) -> &'static str {
    const KNOWN: [(&str, &str); 17] = [
        (
            "p_delta_u_vs_n",
            "P(Δ_U > 0) against n, Wilson 95 % bands, with the reference generators",
        ),
        (
            "p_delta_vs_n",
            "P(Δ > 0) against n, Wilson 95 % bands, with the reference generators",
        ),
        (
            "e_og_hat_vs_n",
            "Ê_OG (E_OG over its value at the smallest n) against n",
        ),
        ("eta_vs_c", "η against the number of components C"),
        (
            "eta_vs_step",
            "η along training, one curve per number of components C, 95 % bands",
        ),
        (
            "collapse_vs_step_over_n",
            "The collapse: f_mem over its largest value per n, against optimizer step / n",
        ),
        (
            "collapse_vs_step",
            "f_mem over its largest value per n, against optimizer step",
        ),
        (
            "loss_probe",
            "Denoising loss at ᾱ ≈ 0.98 on the training images and on held-out images along training, ± 2 s.e.",
        ),
        (
            "s_axis",
            "f_mem and quality (oracle's Fréchet over the model's) at the budget, against s",
        ),
        ("tau_vs_s", "τ_onset and τ_mem against s, one line per n"),
        (
            "phase_s",
            "Phase diagram over (training step, s) at one n: f_mem · reading",
        ),
        ("f_mem_vs_step", "f_mem along training, one curve per n"),
        (
            "quality_vs_step",
            "Sample quality along training: Fréchet distance over the oracle's per n, the reading's tolerance dashed",
        ),
        (
            "phase",
            "Phase diagram over (training step, n): f_mem · E_OG/oracle · Fréchet/oracle · reading",
        ),
        (
            "tau_mem_vs_n",
            "Memorization onsets τ_onset and τ_mem, and τ_gen, against n",
        ),
        (
            "samples",
            "Generated samples beside their nearest training images, one row per n",
        ),
        ("", "Figure"),
    ];
    KNOWN
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map_or("Figure", |(_, d)| d)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// HTML-escapes `&`, `<`, `>` and `"`.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// The Markdown the report writes, as HTML: `#`–`####` headings, pipe tables (the second line
/// gives the alignment; right-aligned columns are numbers), and paragraphs. All text escaped.
pub fn markdown_to_html(md: &str) -> String {
    let mut h = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut para: Vec<&str> = Vec::new();
    let flush = |h: &mut String, para: &mut Vec<&str>| {
        if !para.is_empty() {
            let _ = writeln!(h, "<p>{}</p>", esc(&para.join(" ")));
            para.clear();
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if l.trim().is_empty() {
            flush(&mut h, &mut para);
            i += 1;
        } else if let Some((level, text)) = heading(l) {
            flush(&mut h, &mut para);
            let _ = writeln!(h, "<h{0}>{1}</h{0}>", level.max(3), esc(text));
            i += 1;
        } else if l.starts_with('|') {
            flush(&mut h, &mut para);
            let start = i;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                i += 1;
            }
            h.push_str(&table(&lines[start..i]));
        } else {
            para.push(l.trim());
            i += 1;
        }
    }
    flush(&mut h, &mut para);
    h
}

fn heading(l: &str) -> Option<(usize, &str)> {
    let level = l.chars().take_while(|&c| c == '#').count();
    if (1..=4).contains(&level) && l[level..].starts_with(' ') {
        Some((level, l[level..].trim()))
    } else {
        None
    }
}

fn cells(l: &str) -> Vec<&str> {
    let t = l.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').map(str::trim).collect()
}

/// Text cells up to this many characters (e.g. `0.00 [0.00, 0.66]`) are kept on one line.
const SHORT: usize = 22;

fn table(lines: &[&str]) -> String {
    let mut h = String::from("<div class=\"scroll\"><table>\n");
    let is_rule = |l: &str| {
        cells(l)
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
    };
    let (head, rule, body) = match lines {
        [hd, r, rest @ ..] if is_rule(r) => (Some(*hd), Some(*r), rest),
        _ => (None, None, lines),
    };
    let right: Vec<bool> = rule.map_or(Vec::new(), |r| {
        cells(r).iter().map(|c| c.ends_with(':')).collect()
    });
    if let Some(hd) = head {
        h.push_str("<thead><tr>");
        for c in cells(hd) {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr></thead>\n");
    }
    h.push_str("<tbody>\n");
    for l in body {
        h.push_str("<tr>");
        for (k, c) in cells(l).iter().enumerate() {
            if right.get(k).copied().unwrap_or(false) {
                let _ = write!(h, "<td class=\"num\">{}</td>", esc(c));
            } else if c.chars().count() <= SHORT {
                let _ = write!(h, "<td class=\"nw\">{}</td>", esc(c));
            } else {
                let _ = write!(h, "<td>{}</td>", esc(c));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for ch in bytes.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= ch.len() {
                o.push(A[(v >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn markdown_tables_headings_and_paragraphs() {
        let md = "\n### data gmm, px 8\n\n| C | n | reading |\n| ---: | ---: | --- |\n| 1 | 2 | copying <x> |\n\nRead P(Δ>0)\nagainst the oracle & more.\n";
        let h = markdown_to_html(md);
        assert_eq!(
            h,
            "<h3>data gmm, px 8</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th>C</th><th>n</th><th>reading</th></tr></thead>\n<tbody>\n<tr><td class=\"num\">1</td><td class=\"num\">2</td><td class=\"nw\">copying &lt;x&gt;</td></tr>\n</tbody></table></div>\n<p>Read P(Δ&gt;0) against the oracle &amp; more.</p>\n"
        );
    }
}
