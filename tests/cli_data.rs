//! `memdiff data` end to end, and every bad input of issue 3: each gives one `error:` line that
//! names the problem, exit code 1, and leaves no output file behind.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memdiff_data::{idx, mnist, npy, DataRecipe};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn memdiff_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memdiff"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running memdiff")
}

fn ok(args: &[&str]) -> String {
    let out = memdiff_env(args, &[]);
    assert!(
        out.status.success(),
        "memdiff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail: exit code 1, stderr's last line is one `error: ...` line, and
/// `dir` holds exactly the files it held before (no output, no temporary).
fn fails(args: &[&str], dir: &Path) -> String {
    let before = listing(dir);
    let out = memdiff_env(args, &[]);
    let e = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "memdiff {args:?} should fail: {e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    let line = e.lines().last().unwrap_or_default().to_string();
    assert!(line.starts_with("error: "), "{e}");
    assert_eq!(listing(dir), before, "memdiff {args:?} left files behind");
    line
}

fn listing(dir: &Path) -> BTreeSet<String> {
    walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A hand-built `.npy` (format 1.0): header dict, padded to 64 bytes, then raw data.
fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_npy(shape: &str, vals: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_npy(
        &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
        &data,
    )
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    idx::gzip(bytes)
}

fn shipped_images() -> PathBuf {
    repo(mnist::SHIPPED_IMAGES)
}

#[test]
fn shipped_mnist_subset_has_the_documented_label_counts() {
    let labels = mnist::load_labels(&repo(mnist::SHIPPED_LABELS)).unwrap();
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    let images = mnist::load_images(&shipped_images()).unwrap();
    assert_eq!(
        (images.n, images.channels, images.h, images.w),
        (10_000, 1, 28, 28)
    );
    assert!(images.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn pixel_round_trip_through_npy_and_idx_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let raw = idx::read_idx(&shipped_images()).unwrap();
    let images = mnist::load_images(&shipped_images()).unwrap();
    let sub = images.select(&(0..500).collect::<Vec<_>>());
    let want_bytes = &raw.data[..500 * 784];
    // IDX (plain and gzipped): the bytes come back.
    for gzip in [false, true] {
        let f = dir.path().join(format!("sub{gzip}.idx"));
        idx::write_images_idx(&f, &sub, gzip).unwrap();
        let back = idx::read_idx(&f).unwrap();
        assert_eq!(back.dims, vec![500, 28, 28]);
        assert_eq!(back.data, want_bytes);
        assert_eq!(idx::read_images_any(&f).unwrap(), sub);
    }
    // .npy: the f32 values come back bit for bit, and so do the bytes.
    let f = dir.path().join("sub.npy");
    npy::write_npy(&f, &sub).unwrap();
    let back = npy::read_images(&f).unwrap();
    assert_eq!(back, sub);
    assert_eq!(idx::to_u8(&back.data), want_bytes);
    // The same images as a (n, 784) uint8 .npy read as value / 255.
    let u8_npy = raw_npy(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (500, 784), }",
        want_bytes,
    );
    let f = dir.path().join("u8.npy");
    fs::write(&f, u8_npy).unwrap();
    assert_eq!(npy::read_images(&f).unwrap(), sub);
}

#[test]
fn gmm_command_writes_npy_record_and_png_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str, threads: &str| {
        let out = dir.path().join(format!("{name}.npy"));
        let png = dir.path().join(format!("{name}.png"));
        let args = [
            "data",
            "gmm",
            "--px",
            "8",
            "--components",
            "3",
            "--n",
            "600",
            "--seed",
            seed,
            "--out",
            s(&out),
            "--png",
            s(&png),
        ];
        let o = memdiff_env(&args, &[("RAYON_NUM_THREADS", threads)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        fs::read(&out).unwrap()
    };
    let a = run("a", "7", "1");
    let b = run("b", "7", "2");
    let c = run("c", "8", "2");
    assert_eq!(a, b, "same seed, different thread count: different bytes");
    assert_ne!(a, c);
    let set = npy::read_images(&dir.path().join("a.npy")).unwrap();
    assert_eq!((set.n, set.channels, set.h, set.w), (600, 1, 8, 8));
    // The header says float32 (n, 1, px, px).
    let text = String::from_utf8_lossy(&a[..128]).to_string();
    assert!(
        text.contains("'<f4'") && text.contains("(600, 1, 8, 8"),
        "{text}"
    );
    // The run record's recipe rebuilds the file exactly, and it equals the library's samples.
    let rec: toml::Value =
        toml::from_str(&fs::read_to_string(dir.path().join("a.run.toml")).unwrap()).unwrap();
    assert_eq!(rec["command"].as_str(), Some("data gmm"));
    assert_eq!(rec["backend"].as_str(), Some("none"));
    let recipe: DataRecipe = rec["settings"]["recipe"].clone().try_into().unwrap();
    assert_eq!(recipe.build().unwrap(), set);
    let spec = memdiff_data::GmmSpec::centred(8, 3, 0.5, 0.1, 0.1).unwrap();
    assert_eq!(spec.sample(600, 7).unwrap().0, set);
    // PNG: 64 images of 8x8 at scale 8 (64 px) in an 8 x 8 grid with 1-px separators.
    let (w, h, _) = memdiff_data::png::read_gray_png(&dir.path().join("a.png")).unwrap();
    assert_eq!((w, h), (8 * 65 + 1, 8 * 65 + 1));
}

#[test]
fn gmm_explicit_spec_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    fs::write(
        &spec,
        "px = 16\nclip = true\ncomponents = [{ mean = 0.1, std = 0.3 }, { mean = 0.9, std = 0.3, weight = 0.0 }]\n",
    )
    .unwrap();
    let out = dir.path().join("o.npy");
    ok(&[
        "data",
        "gmm",
        "--spec",
        s(&spec),
        "--n",
        "200",
        "--out",
        s(&out),
    ]);
    let set = npy::read_images(&out).unwrap();
    assert_eq!((set.n, set.h), (200, 16));
    assert!(
        set.data.iter().all(|&v| (0.0..=1.0).contains(&v)),
        "clip from the spec"
    );
    let mean = set.data.iter().map(|&v| v as f64).sum::<f64>() / set.data.len() as f64;
    assert!(mean < 0.3, "weight 0 component drawn: mean {mean}");
    // A misspelt key is named.
    fs::write(&spec, "px = 8\ncomponents = [{ mean = 0.1, sd = 0.3 }]\n").unwrap();
    fs::remove_file(&out).unwrap();
    fs::remove_file(dir.path().join("o.run.toml")).unwrap();
    let e = fails(
        &["data", "gmm", "--spec", s(&spec), "--out", s(&out)],
        dir.path(),
    );
    assert!(e.contains("sd") && e.contains("spec.toml"), "{e}");
}

#[test]
fn mnist_command_resizes_pads_and_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.npy");
    let png = dir.path().join("m.png");
    let stdout = ok(&[
        "data",
        "mnist",
        "--px",
        "16",
        "--n",
        "300",
        "--seed",
        "4",
        "--out",
        s(&out),
        "--png",
        s(&png),
    ]);
    assert!(stdout.contains("m.npy"), "{stdout}");
    let set = npy::read_images(&out).unwrap();
    assert_eq!((set.n, set.channels, set.h, set.w), (300, 1, 16, 16));
    let all = mnist::load_images(&shipped_images()).unwrap();
    let ix = mnist::subset_indices(10_000, 300, 4).unwrap();
    let want = mnist::resize_bilinear(&all.select(&ix), 16, 16);
    assert_eq!(set, want);
    assert!(png.exists());

    // --pad: 32 x 32, the digit bytes in the centre, zeros around; a plain (not gzipped) IDX copy
    // of the images gives the same file.
    let plain = dir.path().join("images-idx3-ubyte");
    idx::write_images_idx(&plain, &all, false).unwrap();
    let out2 = dir.path().join("p.npy");
    ok(&[
        "data",
        "mnist",
        "--images",
        s(&plain),
        "--pad",
        "--n",
        "5",
        "--seed",
        "2",
        "--out",
        s(&out2),
    ]);
    let p = npy::read_images(&out2).unwrap();
    assert_eq!((p.n, p.h, p.w), (5, 32, 32));
    let ix = mnist::subset_indices(10_000, 5, 2).unwrap();
    for (k, &i) in ix.iter().enumerate() {
        let img = &p.row(k);
        for y in 0..32 {
            for x in 0..32 {
                let v = img[y * 32 + x];
                if (2..30).contains(&y) && (2..30).contains(&x) {
                    assert_eq!(v, all.row(i)[(y - 2) * 28 + x - 2]);
                } else {
                    assert_eq!(v, 0.0);
                }
            }
        }
    }
}

#[test]
fn png_command_reads_any_format() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.bin"); // name says nothing: content decides
    fs::write(&f, gz(&f32_npy("(3, 64)", &[0.5; 192]))).unwrap();
    let out = dir.path().join("g.png");
    ok(&["data", "png", s(&f), "--out", s(&out), "--cols", "3"]);
    let (w, h, px) = memdiff_data::png::read_gray_png(&out).unwrap();
    assert_eq!((w, h), (3 * 65 + 1, 66));
    assert_eq!(px[w as usize + 1], 128);
    // `data gmm --png-cols`: 10 images, 5 a row.
    let (npy, png) = (dir.path().join("o.npy"), dir.path().join("o.png"));
    let args = [
        "data",
        "gmm",
        "--n",
        "10",
        "--out",
        s(&npy),
        "--png",
        s(&png),
    ];
    ok(&[&args[..], &["--png-cols", "5"]].concat());
    let (w, h, _) = memdiff_data::png::read_gray_png(&png).unwrap();
    assert_eq!((w, h), (5 * 65 + 1, 2 * 65 + 1));
}

/// Every bad input of issue 3: message, exit code 1, nothing written.
#[test]
fn bad_inputs_give_one_line_errors_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.npy");
    let o = s(&out);
    let shipped = fs::read(shipped_images()).unwrap();
    let mnist_with = |images: &Path| -> String {
        fails(
            &[
                "data",
                "mnist",
                "--images",
                s(images),
                "--n",
                "10",
                "--out",
                o,
            ],
            d,
        )
    };

    // Truncated gzip.
    let f = d.join("trunc.gz");
    fs::write(&f, &shipped[..shipped.len() / 2]).unwrap();
    let e = mnist_with(&f);
    assert!(
        e.contains("trunc.gz") && e.contains("gzip stream is truncated"),
        "{e}"
    );

    // Corrupt gzip (damaged CRC).
    let f = d.join("crc.gz");
    let mut bad = shipped.clone();
    let k = bad.len() - 6;
    bad[k] ^= 0x55;
    fs::write(&f, bad).unwrap();
    let e = mnist_with(&f);
    assert!(e.contains("crc.gz") && e.contains("corrupt"), "{e}");

    // Wrong IDX magic (gzipped and plain).
    let f = d.join("magic.gz");
    fs::write(&f, gz(&[0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1])).unwrap();
    let e = mnist_with(&f);
    assert!(
        e.contains("magic.gz") && e.contains("wrong IDX magic 12 34 08 03"),
        "{e}"
    );
    let f = d.join("magic.idx");
    fs::write(&f, b"PK\x03\x04 not an idx file").unwrap();
    let e = mnist_with(&f);
    assert!(e.contains("wrong IDX magic 50 4b 03 04"), "{e}");

    // A header claiming more images than the file holds.
    let f = d.join("short.idx");
    let mut b = idx::idx_u8_bytes(&[10, 28, 28], &[0; 7840]).unwrap();
    b[7] = 100; // dims[0] = 100
    fs::write(&f, gz(&b)).unwrap();
    let e = mnist_with(&f);
    assert!(
        e.contains("short.idx") && e.contains("claims 100 items") && e.contains("holds only 7840"),
        "{e}"
    );

    // Unsupported IDX element type.
    let f = d.join("float.idx");
    let mut b = idx::idx_u8_bytes(&[1, 1, 1], &[0]).unwrap();
    b[2] = 0x0D;
    b.extend_from_slice(&[0; 3]);
    fs::write(&f, b).unwrap();
    let e = mnist_with(&f);
    assert!(e.contains("unsupported IDX element type 0x0D"), "{e}");

    // The label file given as images.
    let e = mnist_with(&repo(mnist::SHIPPED_LABELS));
    assert!(
        e.contains("labels-idx1") && e.contains("not a set of images"),
        "{e}"
    );

    // NaN and inf in a .npy, with the first bad index.
    let png = d.join("g.png");
    let g = s(&png);
    let mut vals = vec![0.5f32; 2 * 64];
    vals[64 + 9] = f32::NAN;
    vals[64 + 20] = f32::INFINITY;
    let f = d.join("nan.npy");
    fs::write(&f, f32_npy("(2, 64)", &vals)).unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(
        e.contains("nan.npy") && e.contains("NaN at index [1, 9]"),
        "{e}"
    );
    vals[64 + 9] = 0.0;
    fs::write(&f, f32_npy("(2, 8, 8)", &vals)).unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(e.contains("value inf at index [1, 2, 4]"), "{e}");

    // Wrong rank and wrong dtype.
    let f = d.join("rank.npy");
    fs::write(&f, f32_npy("(64,)", &[0.0; 64])).unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(
        e.contains("rank.npy") && e.contains("shape [64] is not a set of images"),
        "{e}"
    );
    fs::write(&f, f32_npy("(1, 1, 1, 2, 32)", &[0.0; 64])).unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(e.contains("not a set of images"), "{e}");
    let f = d.join("dtype.npy");
    fs::write(
        &f,
        raw_npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 4), }",
            &[0; 32],
        ),
    )
    .unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(
        e.contains("dtype.npy") && e.contains("unsupported .npy dtype '<i8'"),
        "{e}"
    );

    // Empty sets.
    let f = d.join("empty.npy");
    fs::write(&f, f32_npy("(0, 64)", &[])).unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(e.contains("empty.npy") && e.contains("empty set"), "{e}");
    let e = fails(&["data", "gmm", "--n", "0", "--out", o], d);
    assert!(e.contains("empty set"), "{e}");
    let e = fails(&["data", "mnist", "--n", "0", "--out", o], d);
    assert!(e.contains("empty set"), "{e}");

    // n larger than the data.
    let e = fails(&["data", "mnist", "--n", "10001", "--out", o], d);
    assert!(
        e.contains("shipped:mnist-10k") && e.contains("10001") && e.contains("only 10000"),
        "{e}"
    );

    // Image sides the U-Net cannot take.
    for px in ["12", "0", "28"] {
        let e = fails(&["data", "gmm", "--px", px, "--out", o], d);
        assert!(
            e.contains(&format!("image side {px}")) && e.contains("multiple of 8"),
            "{e}"
        );
    }
    let e = fails(&["data", "mnist", "--px", "20", "--n", "3", "--out", o], d);
    assert!(e.contains("multiple of 8"), "{e}");
    let e = fails(&["data", "mnist", "--pad", "--px", "16", "--out", o], d);
    assert!(e.contains("--pad") && e.contains("32"), "{e}");

    // Invalid GMM parameters.
    let e = fails(&["data", "gmm", "--sigma", "0", "--out", o], d);
    assert!(e.contains("std") && e.contains("> 0"), "{e}");

    // An output folder that cannot be written: its "folder" is a regular file. Also when only
    // the PNG's folder is bad, the .npy is not written either.
    let blocker = d.join("blocker");
    fs::write(&blocker, b"x").unwrap();
    let bad_out = blocker.join("o.npy");
    let e = fails(&["data", "gmm", "--n", "10", "--out", s(&bad_out)], d);
    assert!(
        e.contains("cannot write") && e.contains("blocker/o.npy"),
        "{e}"
    );
    assert!(e.ends_with("is writable)"), "{e}");
    let bad_png = blocker.join("g.png");
    let e = fails(
        &["data", "gmm", "--n", "10", "--out", o, "--png", s(&bad_png)],
        d,
    );
    assert!(
        e.contains("cannot write") && e.contains("blocker/g.png"),
        "{e}"
    );

    // Not a data file at all.
    let f = d.join("notes.txt");
    fs::write(&f, "hello").unwrap();
    let e = fails(&["data", "png", s(&f), "--out", g], d);
    assert!(
        e.contains("notes.txt") && e.contains("unrecognised file format"),
        "{e}"
    );

    // A file that does not exist.
    let e = fails(&["data", "png", s(&d.join("missing.npy")), "--out", g], d);
    assert!(
        e.contains("missing.npy") && e.contains("cannot read"),
        "{e}"
    );
    // The I/O error's text appears once (not repeated by the printed error chain).
    assert!(e.ends_with("(check the path)"), "{e}");
}

#[test]
fn help_texts_carry_examples() {
    for sub in ["gmm", "mnist", "png"] {
        let h = ok(&["data", sub, "--help"]);
        assert!(h.contains(&format!("Example: memdiff data {sub}")), "{h}");
    }
}
