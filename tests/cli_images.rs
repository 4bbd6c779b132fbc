//! Your own images in and out (issue 29), end to end through the binary: the same digits in
//! every format give the same metric rows; an RGB folder trains, samples into a PNG folder and
//! a `.npz`, is measured along training, audited from another folder and refused once changed;
//! a channel-last array is read right or refused; bad inputs are one line each. Every data set
//! is made here (no download).

mod common;

use std::path::{Path, PathBuf};

use common::{err_in, ok_in};
use memdiff_data::{export, ImageSet};
use npyz::WriterBuilder;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `.npy` of uint8 values in the given shape (C order).
fn npy_u8(path: &Path, shape: &[u64], data: &[u8]) {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::<u8>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    std::fs::write(path, buf).unwrap();
}

/// The set's bytes in (n, h, w, c) order.
fn nhwc(set: &ImageSet) -> Vec<u8> {
    let b = memdiff_data::idx::to_u8(&set.data);
    let plane = set.h * set.w;
    let mut out = Vec::with_capacity(b.len());
    for i in 0..set.n {
        for p in 0..plane {
            for c in 0..set.channels {
                out.push(b[i * set.dim() + c * plane + p]);
            }
        }
    }
    out
}

/// Writes `set` in every format: IDX (gz), .npy NCHW and NHWC (u8), .npz, a PNG folder.
fn all_formats(dir: &Path, name: &str, set: &ImageSet) -> Vec<PathBuf> {
    let bytes = memdiff_data::idx::to_u8(&set.data);
    let idx = dir.join(format!("{name}-idx3-ubyte.gz"));
    memdiff_data::idx::write_images_idx(&idx, set, true).unwrap();
    let nchw = dir.join(format!("{name}-nchw.npy"));
    let c = set.channels as u64;
    npy_u8(
        &nchw,
        &[set.n as u64, c, set.h as u64, set.w as u64],
        &bytes,
    );
    let nhwc_path = dir.join(format!("{name}-nhwc.npy"));
    npy_u8(
        &nhwc_path,
        &[set.n as u64, set.h as u64, set.w as u64, c],
        &nhwc(set),
    );
    let npz = dir.join(format!("{name}.npz"));
    export::write_npz(&npz, set).unwrap();
    let png = dir.join(format!("{name}-png"));
    export::write_png_dir(&png, set).unwrap();
    vec![idx, nchw, nhwc_path, npz, png]
}

/// The numbers of an eval row (not the file names).
fn row(v: &Value) -> Vec<String> {
    [
        "e_tg",
        "e_og",
        "delta",
        "delta_unbiased",
        "d",
        "n_original",
        "n_train",
        "n_generated",
        "nn_ratio_mean",
        "nn_frac_memorized",
        "nn",
        "dequantize_mode",
    ]
    .iter()
    .map(|k| format!("{k}={}", v[k]))
    .collect()
}

#[test]
fn the_same_digits_in_every_format_give_identical_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let digits = memdiff_data::mnist::shipped_images();
    let o = digits.select(&(0..60).collect::<Vec<_>>());
    let t = digits.select(&(100..120).collect::<Vec<_>>());
    let g = digits.select(&(200..210).collect::<Vec<_>>());
    let (fo, ft, fg) = (
        all_formats(tmp.path(), "o", &o),
        all_formats(tmp.path(), "t", &t),
        all_formats(tmp.path(), "g", &g),
    );
    let mut rows = Vec::new();
    for k in 0..fo.len() {
        let (out, _) = ok_in(
            tmp.path(),
            &[
                "eval",
                "--original",
                s(&fo[k]),
                "--train",
                s(&ft[k]),
                "--generated",
                s(&fg[k]),
                "--nn",
                "--json",
            ],
            None,
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["d"], 784, "{}", fo[k].display());
        assert!(v["e_tg"].as_f64().unwrap() > 0.0);
        rows.push((fo[k].clone(), row(&v)));
    }
    for (f, r) in &rows[1..] {
        assert_eq!(r, &rows[0].1, "{} differs from IDX", f.display());
    }
    // The --nn table as CSV: one row per generated digit, the JSON's numbers.
    let csv = tmp.path().join("nn.csv");
    ok_in(
        tmp.path(),
        &[
            "eval",
            "--original",
            s(&fo[4]),
            "--train",
            s(&ft[4]),
            "--generated",
            s(&fg[4]),
            "--nn",
            "--nn-csv",
            s(&csv),
        ],
        None,
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "g,nearest,d1,d2,ratio");
    assert_eq!(lines.len(), 11);
    let (out, _) = ok_in(
        tmp.path(),
        &[
            "eval",
            "--original",
            s(&fo[0]),
            "--train",
            s(&ft[0]),
            "--generated",
            s(&fg[0]),
            "--nn",
            "--json",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let f: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(f[0], "2");
    assert_eq!(f[1], v["nn"][2]["index"].to_string());
    let d1: f64 = f[2].parse().unwrap();
    assert_eq!(d1, v["nn"][2]["d1"].as_f64().unwrap());
}

#[test]
fn a_channel_last_32x32x3_array_is_read_right_or_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let set = ImageSet::new(
        6,
        3,
        32,
        32,
        (0..6 * 3072)
            .map(|i| ((i * 31 + i / 1024) % 256) as f32 / 255.0)
            .collect(),
    );
    let f = all_formats(tmp.path(), "x", &set);
    // NHWC and NCHW files and the PNG folder: identical rows, d = 3 * 32 * 32.
    let eval = |o: &Path, extra: &[&str]| -> Value {
        let mut a = vec![
            "eval",
            "--original",
            s(o),
            "--train",
            s(o),
            "--generator",
            "copy",
            "--g",
            "3",
            "--nn",
            "--json",
        ];
        a.extend_from_slice(extra);
        serde_json::from_str(&ok_in(tmp.path(), &a, None).0).unwrap()
    };
    let nchw = eval(&f[1], &[]);
    assert_eq!(nchw["d"], 3072);
    assert_eq!(row(&eval(&f[2], &[])), row(&nchw));
    assert_eq!(row(&eval(&f[4], &[])), row(&nchw));
    assert_eq!(row(&eval(&f[2], &["--layout", "nhwc"])), row(&nchw));
    // An ambiguous shape, (n, 3, 32, 3): one line naming the flag, exit 1.
    let amb = tmp.path().join("amb.npy");
    npy_u8(&amb, &[2, 3, 32, 3], &[7; 2 * 3 * 32 * 3]);
    let e = err_in(
        tmp.path(),
        &[
            "eval",
            "--original",
            s(&amb),
            "--train",
            s(&amb),
            "--generator",
            "copy",
        ],
        None,
    );
    assert!(
        e.contains("amb.npy") && e.contains("--layout nchw") && e.contains("--layout nhwc"),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let good = p.join("good");
    export::write_png_dir(&good, &ImageSet::new(3, 1, 8, 8, vec![0.5; 192])).unwrap();
    let empty = p.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let sizes = p.join("sizes");
    export::write_png_dir(&sizes, &ImageSet::new(2, 1, 8, 8, vec![0.5; 128])).unwrap();
    let other = p.join("other");
    export::write_png_dir(&other, &ImageSet::new(1, 1, 16, 8, vec![0.5; 128])).unwrap();
    std::fs::copy(other.join("00000.png"), sizes.join("wide.png")).unwrap();
    let mixed = p.join("mixed");
    export::write_png_dir(&mixed, &ImageSet::new(2, 1, 8, 8, vec![0.5; 128])).unwrap();
    let rgb = p.join("rgb");
    export::write_png_dir(&rgb, &ImageSet::new(1, 3, 8, 8, vec![0.5; 192])).unwrap();
    std::fs::copy(rgb.join("00000.png"), mixed.join("colour.png")).unwrap();
    let broken = p.join("broken");
    export::write_png_dir(&broken, &ImageSet::new(2, 1, 8, 8, vec![0.5; 128])).unwrap();
    std::fs::write(broken.join("00001.png"), b"\x89PNG not really").unwrap();
    for (dir, want) in [
        (&empty, vec!["empty", "no .png, .jpg or .jpeg"]),
        (&sizes, vec!["wide.png", "00000.png", "--fit"]),
        (&mixed, vec!["colour.png", "channel"]),
        (&broken, vec!["00001.png", "cannot decode"]),
    ] {
        let e = err_in(
            p,
            &[
                "eval",
                "--original",
                s(&good),
                "--train",
                s(dir),
                "--generator",
                "copy",
            ],
            None,
        );
        for w in want {
            assert!(e.contains(w), "{} → {e}", dir.display());
        }
    }
}

/// An RGB folder of 24 images of 8 x 8 made here: smooth colour ramps, one per image.
fn rgb_folder(dir: &Path) -> ImageSet {
    let mut data = Vec::new();
    for i in 0..24usize {
        for c in 0..3usize {
            for y in 0..8usize {
                for x in 0..8usize {
                    let v = ((i * 11 + c * 70 + y * 9 + x * 5) % 256) as f32 / 255.0;
                    data.push(v);
                }
            }
        }
    }
    let set = ImageSet::new(24, 3, 8, 8, data);
    export::write_png_dir(dir, &set).unwrap();
    set
}

#[test]
fn an_rgb_folder_trains_samples_probes_and_audits_from_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let faces = cwd.join("faces");
    rgb_folder(&faces);
    let (out, _) = ok_in(
        &cwd,
        &[
            "train",
            "--data",
            "faces",
            "--n",
            "12",
            "--px",
            "8",
            "--base-channels",
            "4",
            "--steps",
            "4",
            "--epochs",
            "2",
            "--batch",
            "6",
            "--eval-at",
            "2,4",
            "--eval-generate",
            "4",
            "--eval-original",
            "6",
            "--out",
            "run",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["steps"], 4);
    let meta = memdiff_diffusion::checkpoint::load_meta(&cwd.join("run")).unwrap();
    assert_eq!(meta.train.channels, 3);
    let memdiff_data::DataRecipe::Images { path, indices, .. } = &meta.data else {
        panic!("{:?}", meta.data)
    };
    assert!(path.is_absolute() && path.ends_with("faces"), "{path:?}");
    assert_eq!(indices.len(), 12);
    // trajectory.csv: a header and one row per snapshot, O of 6 held-out images.
    let traj = std::fs::read_to_string(cwd.join("run/trajectory.csv")).unwrap();
    assert_eq!(traj.lines().count(), 3, "{traj}");

    // Samples: a PNG folder and a .npz, from another working folder.
    let other = tmp.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let run = cwd.join("run");
    ok_in(
        &other,
        &[
            "sample",
            "--checkpoint",
            s(&run),
            "--n",
            "5",
            "--out",
            "G.npy",
            "--png-dir",
            "G-png",
            "--npz",
            "G.npz",
            "--png",
            "grid.png",
        ],
        None,
    );
    // The grid shows colour: an RGB PNG with pixels whose channels differ.
    let grid = image::open(other.join("grid.png")).unwrap();
    assert_eq!(grid.color(), image::ColorType::Rgb8);
    assert!(grid.to_rgb8().pixels().any(|p| p.0[0] != p.0[1]));
    let g = memdiff_data::npy::read_images(&other.join("G.npy")).unwrap();
    assert_eq!((g.n, g.channels, g.h, g.w), (5, 3, 8, 8));
    let want = nhwc(&g);
    let mut names: Vec<_> = std::fs::read_dir(other.join("G-png"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "00000.png",
            "00001.png",
            "00002.png",
            "00003.png",
            "00004.png"
        ]
    );
    for (i, n) in names.iter().enumerate() {
        let img = image::open(other.join("G-png").join(n)).unwrap().to_rgb8();
        assert_eq!(img.into_raw(), want[i * 192..(i + 1) * 192], "{n}");
    }
    // The .npz read back with the crate: arr_0, (5, 8, 8, 3) uint8, the same bytes.
    let raw = std::fs::read(other.join("G.npz")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(raw)).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    assert_eq!(names, ["arr_0.npy"]);
    let arr = npyz::NpyFile::new(zip.by_name("arr_0.npy").unwrap()).unwrap();
    assert_eq!(arr.shape(), &[5, 8, 8, 3]);
    assert_eq!(arr.into_vec::<u8>().unwrap(), want);
    // And the loader reads the folder and the .npz as the same set.
    let a = memdiff_data::read_images_any(&other.join("G-png")).unwrap();
    let b = memdiff_data::read_images_any(&other.join("G.npz")).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        memdiff_data::idx::to_u8(&a.data),
        memdiff_data::idx::to_u8(&g.data)
    );

    // The audit from elsewhere: T the 12 trained images, O the other 12.
    let (json, _) = ok_in(
        &other,
        &[
            "eval",
            "--checkpoint",
            s(&run),
            "--generate",
            "3",
            "--nn",
            "--nn-csv",
            "audit-nn.csv",
            "--json",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    // The audit's --nn table as CSV: 3 rows in the picture's order, d1/d2 ascending.
    let csv = std::fs::read_to_string(other.join("audit-nn.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "g,nearest,second,d1,d2,ratio,d1_original");
    let ratios: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(5).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ratios.len(), 3);
    assert!(ratios.windows(2).all(|w| w[0] <= w[1]), "{ratios:?}");
    assert_eq!(v["n_train"], 12);
    assert_eq!(v["n_original"], 12);
    assert_eq!(v["pixels_used"], 192);
    // The audit picture (generated | nearest | second nearest) is in colour too.
    let pic = image::open(run.join("audit.png")).unwrap().to_rgb8();
    assert!(pic.pixels().any(|p| p.0[0] != p.0[2]));

    // A changed folder is refused with one line.
    std::fs::remove_file(faces.join("00023.png")).unwrap();
    let e = err_in(
        &other,
        &["eval", "--checkpoint", s(&run), "--generate", "3"],
        None,
    );
    assert!(e.contains("faces") && e.contains("changed"), "{e}");
    // A --png-dir that already holds files is refused before sampling.
    let e = err_in(
        &other,
        &[
            "sample",
            "--checkpoint",
            s(&run),
            "--n",
            "2",
            "--out",
            "H.npy",
            "--png-dir",
            "G-png",
        ],
        None,
    );
    assert!(
        e.contains("G-png") && e.contains("not an empty folder"),
        "{e}"
    );
}

#[test]
fn a_sweep_on_a_folder_draws_disjoint_sets_and_records_the_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let faces = tmp.path().join("faces");
    rgb_folder(&faces);
    let cfg = tmp.path().join("c.toml");
    std::fs::write(
        &cfg,
        "name = \"images\"\nseed = 3\ndata = { path = \"faces\", px = 8 }\nn = [4]\nsteps = [3]\nsims = 2\nn_original = 10\ngenerated = 4\ngenerators = [\"oracle\", \"copy\"]\nsave_images = 0\n",
    )
    .unwrap();
    ok_in(
        tmp.path(),
        &["sweep", "--config", s(&cfg), "--no-model", "--out", "sw"],
        None,
    );
    let rows = std::fs::read_to_string(tmp.path().join("sw/results.csv")).unwrap();
    // Header + 2 sims x 2 generators, data "images", d = 192.
    assert_eq!(rows.lines().count(), 5, "{rows}");
    assert!(
        rows.lines().skip(1).all(|l| l.starts_with("images,")),
        "{rows}"
    );
    let rec = std::fs::read_to_string(tmp.path().join("sw/sweep.toml")).unwrap();
    assert!(rec.contains("sha256:") && rec.contains("faces"), "{rec}");
    // Too many asked of the folder: one line naming it.
    std::fs::write(
        &cfg,
        "data = { path = \"faces\", px = 8 }\nn = [20]\nn_original = 10\ngenerated = 4\ngenerators = [\"copy\"]\n",
    )
    .unwrap();
    let e = err_in(
        tmp.path(),
        &["sweep", "--config", s(&cfg), "--no-model", "--out", "sw2"],
        None,
    );
    assert!(e.contains("faces") && e.contains("24 images"), "{e}");
    // A wrong side without a fit names the fit key.
    std::fs::write(
        &cfg,
        "data = { path = \"faces\", px = 16 }\nn = [4]\ngenerators = [\"copy\"]\n",
    )
    .unwrap();
    let e = err_in(
        tmp.path(),
        &["sweep", "--config", s(&cfg), "--no-model", "--out", "sw3"],
        None,
    );
    assert!(e.contains("fit") && e.contains("8x8"), "{e}");

    // A tiny model sweep on the folder exports sim 0's samples as PNGs and a .npz.
    std::fs::write(
        &cfg,
        "seed = 1\ndata = { path = \"faces\", px = 8 }\nn = [4]\nsteps = [3]\nsims = 1\nn_original = 10\ngenerated = 3\ngenerators = [\"model\"]\nsave_images = 1\nexport_samples = true\n[train]\nbase_channels = 4\nepochs = 1\nbatch = 4\n[sample]\nbatch = 3\n",
    )
    .unwrap();
    ok_in(
        tmp.path(),
        &["sweep", "--config", s(&cfg), "--out", "sw4"],
        None,
    );
    let samples = tmp.path().join("sw4/samples");
    let png = samples.join("c0-n4-s3-png");
    let n = std::fs::read_dir(&png).unwrap().count();
    assert_eq!(n, 3, "{}", png.display());
    let a = memdiff_data::read_images_any(&png).unwrap();
    let b = memdiff_data::read_images_any(&samples.join("c0-n4-s3.npz")).unwrap();
    assert_eq!((a.n, a.channels, a.h, a.w), (3, 3, 8, 8));
    assert_eq!(a, b);
}

#[test]
fn a_folder_of_another_size_is_refused_then_fitted_and_rebuilt_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    let set = ImageSet::new(
        10,
        3,
        12,
        16,
        (0..10 * 576)
            .map(|i| ((i * 13) % 256) as f32 / 255.0)
            .collect(),
    );
    export::write_png_dir(&big, &set).unwrap();
    let args = |out: &str, fit: bool| {
        let mut a = vec![
            "train",
            "--data",
            "big",
            "--n",
            "6",
            "--px",
            "8",
            "--base-channels",
            "4",
            "--steps",
            "4",
            "--epochs",
            "1",
            "--batch",
            "6",
            "--out",
        ];
        a.push(out);
        if fit {
            a.extend_from_slice(&["--fit", "crop"]);
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let a = args("a", false);
    let e = err_in(
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert!(
        e.contains("3 x 12 x 16") && e.contains("--fit resize|crop"),
        "{e}"
    );
    let b = args("b", true);
    ok_in(
        tmp.path(),
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    // The audit rebuilds the cropped T from another folder: 6 trained, 4 held out, 8 x 8 x 3.
    let other = tempfile::tempdir().unwrap();
    let (json, _) = ok_in(
        other.path(),
        &[
            "eval",
            "--checkpoint",
            s(&tmp.path().join("b")),
            "--generate",
            "2",
            "--save-sets",
            "sets",
            "--json",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["n_train"].as_u64(), v["n_original"].as_u64()),
        (Some(6), Some(4))
    );
    let t = memdiff_data::npy::read_images(&other.path().join("sets/train.npy")).unwrap();
    let want = memdiff_data::read_source(
        &big,
        &memdiff_data::ReadOptions {
            fit: memdiff_data::Fit::Crop,
            px: Some(8),
            ..Default::default()
        },
    )
    .unwrap()
    .set
    .select(&memdiff_data::mnist::subset_indices(10, 6, 0).unwrap());
    assert_eq!(t, want);
}
