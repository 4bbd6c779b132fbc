//! `memdiff data`: make data sets (Gaussian mixtures, MNIST subsets) as float32 `.npy` files of
//! shape (n, 1, px, px), with an optional PNG grid and a `<out stem>.run.toml` record beside.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use memdiff_data::config::RunRecord;
use memdiff_data::gmm::GmmSpec;
use memdiff_data::mnist::Resize;
use memdiff_data::recipe::DataRecipe;
use memdiff_data::{check_side, ImageSet};

/// Make data sets: Gaussian mixtures and MNIST subsets as float32 .npy (n, 1, px, px).
///
/// Each command writes OUT (.npy, float32), OUT's stem + `.run.toml` (the resolved settings and
/// the exact recipe that rebuilds the set) and, with --png, a grid of the first images. Either
/// all of these files are written or none.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Sample an isotropic Gaussian mixture (docs/METHOD.md §1), "centred" layout or an explicit spec.
    ///
    /// Component c has pixel mean mu0 + (c - (C - 1) / 2) * spacing and std sigma; equal
    /// weights. Values are not clipped to [0, 1] unless --clip is given.
    ///
    /// Example: memdiff data gmm --px 8 --components 3 --n 10000 --seed 1 --out O.npy --png O.png
    Gmm(GmmArgs),
    /// A seeded subset of MNIST digits at side px (bilinear resize, or zero padding to 32).
    ///
    /// The digits come from --images FILE, else the full MNIST training images in --mnist-dir
    /// DIR, else in $MEMDIFF_MNIST_DIR, else the shipped 10,000-digit subset, which is embedded
    /// in the binary (so this works from any folder; --about prints its provenance and
    /// attribution). The recipe in the run record names the source as "shipped:mnist-10k" or by
    /// its absolute path.
    ///
    /// Bilinear resizing follows PyTorch's F.interpolate(mode="bilinear", align_corners=False,
    /// antialias=False); --pad zero-pads 28 → 32 instead. Values in [0, 1].
    ///
    /// Example: memdiff data mnist --px 16 --n 1000 --seed 1 --out M.npy --png M.png
    Mnist(MnistArgs),
    /// Write a PNG grid of the first images of a .npy or IDX file (gzipped or plain).
    ///
    /// Example: memdiff data png samples.npy --out samples.png --count 100 --cols 10
    Png(PngArgs),
}

/// PNG grid options shared by the commands.
#[derive(Args, Debug, Clone, Serialize)]
struct GridArgs {
    /// Also write a PNG grid of the first --png-count images here.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Images in the PNG grid.
    #[arg(long, default_value_t = 64)]
    png_count: usize,
    /// Images per grid row (0: about square).
    #[arg(long = "png-cols", visible_alias = "cols", default_value_t = 0)]
    cols: usize,
    /// Nearest-neighbour upscaling factor (0: the smallest that makes an image side >= 64 px).
    #[arg(long, default_value_t = 0)]
    scale: usize,
}

#[derive(Args, Debug, Clone, Serialize)]
struct GmmArgs {
    /// Image side (a positive multiple of 8); d = px * px pixels.
    #[arg(long, default_value_t = 8)]
    px: usize,
    /// Number of mixture components C (centred layout).
    #[arg(long, default_value_t = 1)]
    components: usize,
    /// Centre of the component means.
    #[arg(long, default_value_t = 0.5)]
    mu0: f64,
    /// Distance between neighbouring component means.
    #[arg(long, default_value_t = 0.1)]
    spacing: f64,
    /// Pixel standard deviation of every component.
    #[arg(long, default_value_t = 0.1)]
    sigma: f64,
    /// A TOML file with an explicit mixture instead of the centred layout:
    /// `px = 8` and `components = [{ mean = 0.4, std = 0.1, weight = 1.0 }, ...]`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["px", "components", "mu0", "spacing", "sigma"])]
    spec: Option<PathBuf>,
    /// Clip samples to [0, 1].
    #[arg(long)]
    clip: bool,
    /// Number of samples.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Random seed (same seed ⇒ same samples, whatever the thread count).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output .npy file (float32, shape (n, 1, px, px)).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    grid: GridArgs,
}

#[derive(Args, Debug, Clone, Serialize)]
struct MnistArgs {
    /// MNIST image file in IDX format, gzipped or plain (e.g. your own train-images-idx3-ubyte).
    /// Default: --mnist-dir, $MEMDIFF_MNIST_DIR, else the shipped 10k subset (embedded).
    #[arg(long, value_name = "FILE", conflicts_with = "mnist_dir")]
    images: Option<PathBuf>,
    /// Folder with the full MNIST files: its train-images-idx3-ubyte[.gz] (60,000 digits) is
    /// used. Default: $MEMDIFF_MNIST_DIR if set.
    #[arg(long, value_name = "DIR")]
    mnist_dir: Option<PathBuf>,
    /// Print the provenance and attribution of the shipped subset (and its label counts), then
    /// exit.
    #[arg(long, exclusive = true)]
    about: bool,
    /// Image side (a positive multiple of 8): bilinear resize 28 → px. Default 16, or 32 with --pad.
    #[arg(long)]
    px: Option<usize>,
    /// Zero-pad 28 → 32 instead of resizing (needs px 32).
    #[arg(long)]
    pad: bool,
    /// Number of digits in the subset (default: all of the file, in a shuffled order).
    #[arg(long)]
    n: Option<usize>,
    /// Seed of the subset choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output .npy file (float32, shape (n, 1, px, px)).
    #[arg(long, value_name = "FILE", required_unless_present = "about")]
    out: Option<PathBuf>,
    #[command(flatten)]
    grid: GridArgs,
}

#[derive(Args, Debug, Clone, Serialize)]
struct PngArgs {
    /// A .npy or IDX file (gzipped or plain), detected by content, or shipped:mnist-10k (the
    /// embedded MNIST subset).
    input: PathBuf,
    /// Output PNG file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Images in the grid (the first ones).
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Images per grid row (0: about square).
    #[arg(long, visible_alias = "png-cols", default_value_t = 0)]
    cols: usize,
    /// Nearest-neighbour upscaling factor (0: the smallest that makes an image side >= 64 px).
    #[arg(long, default_value_t = 0)]
    scale: usize,
}

/// What `<stem>.run.toml` records besides the command line.
#[derive(Serialize)]
struct DataRun<A: Serialize> {
    args: A,
    /// Rebuilds the written set exactly (`DataRecipe::build`).
    recipe: DataRecipe,
    n: usize,
    px: usize,
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Gmm(a) => run_gmm(a),
        DataCommand::Mnist(a) => run_mnist(a),
        DataCommand::Png(a) => run_png(a),
    }
}

fn run_gmm(a: GmmArgs) -> anyhow::Result<()> {
    if a.spec.is_none() {
        check_side(a.px)?;
    }
    let mut spec = match &a.spec {
        Some(path) => memdiff_data::config::load_toml::<GmmSpec>(path)?,
        None => GmmSpec::centred(a.px, a.components, a.mu0, a.spacing, a.sigma)?,
    };
    if let Some(path) = &a.spec {
        spec.validate()
            .with_context(|| format!("gmm spec {}", path.display()))?;
    }
    spec.clip |= a.clip;
    check_side(spec.px)?;
    if a.n == 0 {
        bail!("--n 0 asks for an empty set; give at least one sample");
    }
    let recipe = DataRecipe::Gmm {
        spec: spec.clone(),
        n: a.n,
        seed: a.seed,
    };
    let set = recipe.build()?;
    tracing::info!(
        "gmm: {} samples of {}x{}, {} components, means {:?}",
        set.n,
        set.h,
        set.w,
        spec.components.len(),
        spec.components.iter().map(|c| c.mean).collect::<Vec<_>>()
    );
    let (out, grid, seed) = (a.out.clone(), a.grid.clone(), a.seed);
    let px = spec.px;
    write_outputs(
        "data gmm",
        seed,
        &out,
        &grid,
        &set,
        DataRun {
            args: a,
            recipe,
            n: set.n,
            px,
        },
    )
}

/// `data mnist --about`: the attribution file shipped with the data and what the binary holds.
fn print_about() {
    use memdiff_data::mnist;
    let set = mnist::shipped_images();
    let mut counts = [0usize; 10];
    mnist::shipped_labels()
        .iter()
        .for_each(|&l| counts[l as usize] += 1);
    print!("{}", mnist::SHIPPED_ABOUT);
    println!(
        "\nEmbedded in this binary as \"{}\": {} images of {}x{}; digits 0-9: {}.",
        mnist::SHIPPED,
        set.n,
        set.h,
        set.w,
        counts.map(|c| c.to_string()).join(", ")
    );
}

fn run_mnist(a: MnistArgs) -> anyhow::Result<()> {
    if a.about {
        print_about();
        return Ok(());
    }
    let px = match (a.px, a.pad) {
        (None, false) => 16,
        (None, true) | (Some(32), true) => 32,
        (Some(px), true) => {
            bail!("--pad zero-pads 28 → 32, so it needs --px 32 (or no --px), not {px}")
        }
        (Some(px), false) => px,
    };
    check_side(px)?;
    let resize = if a.pad {
        Resize::Pad32
    } else {
        Resize::Bilinear(px)
    };
    let images = memdiff_data::mnist::locate(a.images.as_deref(), a.mnist_dir.as_deref())?;
    let all = memdiff_data::mnist::load_images(&images)?;
    let n = a.n.unwrap_or(all.n);
    if n == 0 {
        bail!("--n 0 asks for an empty set; give at least one digit");
    }
    let indices = memdiff_data::mnist::subset_indices(all.n, n, a.seed).map_err(|e| match e {
        memdiff_data::DataError::TooFew {
            requested,
            available,
            ..
        } => anyhow::anyhow!(
            "{}: asked for --n {requested} digits but the file holds only {available}; lower --n",
            images.display()
        ),
        e => e.into(),
    })?;
    let set = resize.apply(&all.select(&indices))?;
    tracing::info!(
        "mnist: {} of {} digits from {}, {}x{} ({})",
        set.n,
        all.n,
        images.display(),
        set.h,
        set.w,
        if a.pad { "zero-padded" } else { "bilinear" }
    );
    let recipe = DataRecipe::Mnist {
        images,
        resize,
        indices,
    };
    let out = a.out.clone().context("data mnist needs --out FILE")?;
    let (grid, seed) = (a.grid.clone(), a.seed);
    write_outputs(
        "data mnist",
        seed,
        &out,
        &grid,
        &set,
        DataRun {
            args: a,
            recipe,
            n: set.n,
            px,
        },
    )
}

fn grid_of(set: &ImageSet, count: usize) -> anyhow::Result<ImageSet> {
    if count == 0 {
        bail!("the PNG grid needs at least one image (--png-count / --count 0)");
    }
    let k = count.min(set.n);
    Ok(set.select(&(0..k).collect::<Vec<_>>()))
}

/// Writes OUT (.npy), its run record and the optional PNG, all or none.
fn write_outputs<A: Serialize>(
    command: &str,
    seed: u64,
    out: &Path,
    grid: &GridArgs,
    set: &ImageSet,
    run: DataRun<A>,
) -> anyhow::Result<()> {
    let npy = memdiff_data::npy::npy_bytes(set);
    let record = RunRecord::new(command, "none", seed, run)
        .to_toml()
        .context("recording the settings")?;
    let rec_path = memdiff_data::config::record_path(out);
    let png = match &grid.png {
        Some(p) => Some((
            p.clone(),
            memdiff_data::png::grid_png_bytes(
                p,
                &grid_of(set, grid.png_count)?,
                grid.cols,
                grid.scale,
            )?,
        )),
        None => None,
    };
    let mut files: Vec<(&Path, &[u8])> = vec![(out, &npy), (&rec_path, record.as_bytes())];
    if let Some((p, b)) = &png {
        files.push((p, b));
    }
    memdiff_data::atomic::write_all_or_none(&files)?;
    println!(
        "wrote {} ({} x 1 x {} x {}, float32) and {}",
        out.display(),
        set.n,
        set.h,
        set.w,
        rec_path.display()
    );
    if let Some((p, _)) = &png {
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn run_png(a: PngArgs) -> anyhow::Result<()> {
    let set = memdiff_data::read_images_any(&a.input)?;
    let grid = grid_of(&set, a.count)?;
    memdiff_data::png::write_grid(&a.out, &grid, a.cols, a.scale)?;
    println!(
        "wrote {} ({} of {} images, {}x{})",
        a.out.display(),
        grid.n,
        set.n,
        set.h,
        set.w
    );
    Ok(())
}
