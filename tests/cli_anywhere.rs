//! memdiff from a folder without the repository: the shipped MNIST subset is embedded in the
//! binary, recipes rebuild their sets from any folder, default outputs land in the working
//! folder and the first log line says where. Every command here runs in a fresh temporary
//! folder with `$MEMDIFF_MNIST_DIR` unset (or set by the test).

mod common;

use std::path::{Path, PathBuf};

use common::{err_in, ok_in};
use memdiff_data::mnist::{self, Resize};
use memdiff_data::ImageSet;

/// The shipped images read from the repository file (not from the binary): the independent
/// side of every comparison below.
fn repo_mnist() -> ImageSet {
    mnist::load_images(&Path::new(env!("CARGO_MANIFEST_DIR")).join(mnist::SHIPPED_IMAGES)).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A gzipped IDX images file of `n` 28 x 28 digits with pixel `k` of image `i` = (i + k) % 256.
fn write_fake_mnist(path: &Path, n: usize) -> ImageSet {
    let data: Vec<u8> = (0..n * 784)
        .map(|j| ((j / 784 + j % 784) % 256) as u8)
        .collect();
    memdiff_data::idx::write_idx_u8(path, &[n, 28, 28], &data, true).unwrap();
    mnist::load_images(path).unwrap()
}

#[test]
fn about_prints_the_attribution_and_the_embedded_label_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = ok_in(tmp.path(), &["data", "mnist", "--about"], None);
    assert!(
        out.contains("Yann LeCun") && out.contains("CC BY-SA 3.0"),
        "{out}"
    );
    // The counts of data/mnist/README.md, counted again from the binary's labels.
    assert!(
        out.contains(
            "\"shipped:mnist-10k\": 10000 images of 28x28; digits 0-9: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978."
        ),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // The embedded subset by name, as any image file.
    ok_in(
        tmp.path(),
        &[
            "data",
            "png",
            "shipped:mnist-10k",
            "--count",
            "4",
            "--out",
            "g.png",
        ],
        None,
    );
    let repo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(mnist::SHIPPED_IMAGES);
    ok_in(
        tmp.path(),
        &[
            "data",
            "png",
            s(&repo_file),
            "--count",
            "4",
            "--out",
            "h.png",
        ],
        None,
    );
    let png = |f: &str| std::fs::read(tmp.path().join(f)).unwrap();
    assert_eq!(png("g.png"), png("h.png"));
}

#[test]
fn data_train_eval_and_sweep_on_mnist_from_an_empty_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let repo = repo_mnist();

    // data mnist: the same digits as the repository file, recipe naming the shipped subset.
    ok_in(
        cwd,
        &[
            "data", "mnist", "--px", "8", "--n", "50", "--seed", "3", "--out", "M.npy",
        ],
        None,
    );
    let got = memdiff_data::npy::read_images(&cwd.join("M.npy")).unwrap();
    let want = Resize::Bilinear(8)
        .apply(&repo.select(&mnist::subset_indices(10_000, 50, 3).unwrap()))
        .unwrap();
    assert_eq!(got, want);
    let record = std::fs::read_to_string(cwd.join("M.run.toml")).unwrap();
    assert!(
        record.contains("images = \"shipped:mnist-10k\""),
        "{record}"
    );

    // train --data mnist with the default --out: in the working folder, named first.
    let (_, log) = ok_in(
        cwd,
        &[
            "train",
            "--data",
            "mnist",
            "--px",
            "8",
            "--n",
            "16",
            "--base-channels",
            "4",
            "--steps",
            "10",
            "--epochs",
            "1",
            "--batch",
            "8",
        ],
        None,
    );
    let run = "checkpoints/train-mnist-px8-s10-seed0";
    let first = log.lines().next().unwrap_or_default();
    let cwd_text = cwd.canonicalize().unwrap();
    assert!(
        first.contains(&format!(
            "output folder {run} (the default, relative to the working folder"
        )) && (first.contains(s(cwd)) || first.contains(s(&cwd_text))),
        "{log}"
    );
    assert!(log.contains("MNIST digits from shipped:mnist-10k"), "{log}");
    let meta = memdiff_diffusion::checkpoint::load_meta(&cwd.join(run)).unwrap();
    assert_eq!(
        meta.data,
        memdiff_data::DataRecipe::Mnist {
            images: PathBuf::from(mnist::SHIPPED),
            resize: Resize::Bilinear(8),
            indices: mnist::subset_indices(10_000, 16, 0).unwrap(),
        }
    );

    // eval --checkpoint from another empty folder: O is the rest of the embedded subset.
    let other = tempfile::tempdir().unwrap();
    let ckpt = cwd.join(run);
    let (json, _) = ok_in(
        other.path(),
        &[
            "eval",
            "--checkpoint",
            s(&ckpt),
            "--generate",
            "4",
            "--json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["n_train"], 16);
    assert_eq!(v["n_original"], 10_000 - 16);
    assert_eq!(v["n_generated"], 4);
    assert_eq!(
        v["original_source"],
        "the 9984 images of shipped:mnist-10k not in T"
    );

    // A tiny sweep with data = "mnist" and the default output folder.
    std::fs::write(
        cwd.join("m.toml"),
        r#"
data = "mnist"
px = 8
n = [5]
steps = [4]
sims = 1
n_original = 100
generated = 3
generators = ["model", "oracle"]
save_images = 0

[train]
base_channels = 4
epochs = 1
batch = 8

[sample]
batch = 3
"#,
    )
    .unwrap();
    let (_, log) = ok_in(cwd, &["sweep", "--config", "m.toml", "--no-report"], None);
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.contains("output folder out/sweeps/m (the default, relative to the working folder"),
        "{log}"
    );
    let sweep = std::fs::read_to_string(cwd.join("out/sweeps/m/sweep.toml")).unwrap();
    assert!(sweep.contains("images = \"shipped:mnist-10k\""), "{sweep}");
    let rows = std::fs::read_to_string(cwd.join("out/sweeps/m/results.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2, "{rows}");
}

#[test]
fn mnist_dir_and_its_environment_variable_pick_the_full_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let full = cwd.join("full");
    std::fs::create_dir_all(&full).unwrap();
    let fake = write_fake_mnist(&full.join("train-images-idx3-ubyte.gz"), 40);
    let want = |seed| {
        Resize::Bilinear(8)
            .apply(&fake.select(&mnist::subset_indices(40, 40, seed).unwrap()))
            .unwrap()
    };
    let abs = full.join("train-images-idx3-ubyte.gz");

    // From the variable, a relative folder name: the recipe stores the absolute file path.
    ok_in(
        cwd,
        &["data", "mnist", "--px", "8", "--out", "a.npy"],
        Some("full"),
    );
    assert_eq!(
        memdiff_data::npy::read_images(&cwd.join("a.npy")).unwrap(),
        want(1)
    );
    let record = std::fs::read_to_string(cwd.join("a.run.toml")).unwrap();
    assert!(
        record.contains(&format!("images = {:?}", s(&abs))),
        "{record}"
    );

    // --mnist-dir wins over the variable (here naming a folder without MNIST files).
    ok_in(
        cwd,
        &[
            "data",
            "mnist",
            "--px",
            "8",
            "--seed",
            "2",
            "--mnist-dir",
            "full",
            "--out",
            "b.npy",
        ],
        Some(s(cwd)),
    );
    assert_eq!(
        memdiff_data::npy::read_images(&cwd.join("b.npy")).unwrap(),
        want(2)
    );

    // Errors name the variable or the flag, and the folder.
    let e = err_in(cwd, &["data", "mnist", "--out", "c.npy"], Some(s(cwd)));
    assert!(
        e.contains("$MEMDIFF_MNIST_DIR") && e.contains("train-images-idx3-ubyte.gz"),
        "{e}"
    );
    let e = err_in(
        cwd,
        &[
            "train",
            "--data",
            "mnist",
            "--mnist-dir",
            "nowhere",
            "--px",
            "8",
        ],
        None,
    );
    assert!(
        e.contains("--mnist-dir nowhere") && e.contains("no such folder"),
        "{e}"
    );
    let e = err_in(
        cwd,
        &["train", "--data", "gmm", "--mnist-dir", "full"],
        None,
    );
    assert!(e.contains("--mnist-dir applies to --data mnist"), "{e}");
    assert!(!cwd.join("c.npy").exists() && !cwd.join("checkpoints").exists());
}

#[test]
fn a_npy_recipe_stores_an_absolute_path_and_a_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    ok_in(
        cwd,
        &[
            "data", "gmm", "--px", "8", "--n", "12", "--seed", "4", "--out", "T.npy",
        ],
        None,
    );
    ok_in(
        cwd,
        &[
            "train",
            "--data",
            "T.npy",
            "--n",
            "8",
            "--px",
            "8",
            "--base-channels",
            "4",
            "--steps",
            "4",
            "--epochs",
            "1",
            "--batch",
            "8",
            "--out",
            "run",
        ],
        None,
    );
    let meta = memdiff_diffusion::checkpoint::load_meta(&cwd.join("run")).unwrap();
    let memdiff_data::DataRecipe::Images {
        path,
        indices,
        hash,
        ..
    } = &meta.data
    else {
        panic!("{:?}", meta.data)
    };
    assert!(path.is_absolute() && path.ends_with("T.npy"), "{path:?}");
    // T: 8 rows drawn with the run's seed (0), the file's hash recorded.
    assert_eq!(
        indices,
        &memdiff_data::mnist::subset_indices(12, 8, 0).unwrap()
    );
    assert!(hash.starts_with("sha256:"), "{hash}");
    // Rebuilt from elsewhere: T is those 8 rows, O the other 4.
    let other = tempfile::tempdir().unwrap();
    let (json, _) = ok_in(
        other.path(),
        &[
            "eval",
            "--checkpoint",
            s(&cwd.join("run")),
            "--generate",
            "2",
            "--json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["n_train"], 8);
    assert_eq!(v["n_original"], 4);
}
