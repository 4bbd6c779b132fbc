//! `memdiff eval --checkpoint A --pair-with B`: the two-training-sets test on two checkpoints
//! (docs/METHOD.md §7b). Both generate `--generate` images with `--seed`, so image i of each
//! starts from the same noise; the numbers are `memdiff_experiments::pair`'s, as in a sweep
//! with `pair = true`: the centre and the floor from the original set (`--original`, or A's
//! default one, as the audit's), the copy level against each checkpoint's own training set.

use anyhow::{bail, Context};
use memdiff_diffusion::sample::{self, SampleOptions};
use memdiff_experiments::pair::PairReference;
use serde_json::json;

use super::eval::EvalArgs;

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let (Some(a_dir), Some(b_dir)) = (&args.checkpoint, &args.pair_with) else {
        bail!("--pair-with B needs --checkpoint A");
    };
    if args.train.is_some() || args.generated.is_some() || args.generator.is_some() {
        bail!("--pair-with compares two checkpoints' own samples: drop --train / --generated / --generator");
    }
    if args.generate == 0 {
        bail!("--generate 0: generate at least one image");
    }
    let a = memdiff_diffusion::audit::open_checkpoint(a_dir, &args.device, args.ema)?;
    let b = memdiff_diffusion::audit::open_checkpoint(b_dir, &args.device, args.ema)?;
    let shape = |ck: &memdiff_diffusion::audit::OpenCheckpoint| (ck.model.channels, ck.model.px);
    if shape(&a) != shape(&b) {
        bail!(
            "--checkpoint {} makes {:?} (channels, side) images but --pair-with {} makes {:?}: pair checkpoints of one image size",
            a_dir.display(),
            shape(&a),
            b_dir.display(),
            shape(&b)
        );
    }
    let t_a = memdiff_diffusion::audit::training_set(&a.meta)?;
    let t_b = memdiff_diffusion::audit::training_set(&b.meta)?;
    let (o, o_source) = match &args.original {
        Some(p) => (
            memdiff_data::read_images_any_f64(p)
                .with_context(|| format!("--original {}", p.display()))?,
            p.display().to_string(),
        ),
        None => {
            let (o, s) = memdiff_diffusion::audit::default_original(&a.meta, args.seed)?;
            (o.to_f64(), s)
        }
    };
    if o.dim() != t_a.dim() {
        bail!(
            "the original set has {} pixels per image but the checkpoints make {}",
            o.dim(),
            t_a.dim()
        );
    }
    let gen = |ck: &memdiff_diffusion::audit::OpenCheckpoint, dir: &std::path::Path| {
        let opts = super::eval::sample_options(
            args,
            SampleOptions {
                indexing: ck.meta.train.indexing,
                ..SampleOptions::default()
            },
        );
        let g = sample::sample(
            &ck.model,
            &ck.schedule,
            args.generate,
            &opts,
            args.seed,
            &ck.device,
            None,
        )
        .with_context(|| format!("sampling {}", dir.display()))?;
        anyhow::Ok((g, sample::describe(&opts, &ck.schedule)))
    };
    let (g_a, sampler_a) = gen(&a, a_dir)?;
    let (g_b, sampler_b) = gen(&b, b_dir)?;
    let reference = PairReference::new(&o)?;
    let m = reference.measure(&g_a, &g_b, &t_a.to_f64(), &t_b.to_f64())?;
    let p = &m.paired;
    if args.json {
        println!(
            "{}",
            json!({
                "checkpoint": a_dir, "pair_with": b_dir,
                "step": a.meta.step, "step_pair": b.meta.step,
                "n_train": t_a.n, "n_train_pair": t_b.n,
                "n_generated": p.m, "seed": args.seed,
                "sampler": sampler_a, "sampler_pair": sampler_b,
                "original": o_source, "n_original": o.n,
                "paired": p, "floor": m.floor, "copy": m.copy,
            })
        );
        return Ok(());
    }
    println!(
        "A = {} (step {}, n_train {}), B = {} (step {}, n_train {})",
        a_dir.display(),
        a.meta.step,
        t_a.n,
        b_dir.display(),
        b.meta.step,
        t_b.n
    );
    println!(
        "{} image pairs from the same noise (--seed {}), {sampler_a}; centre and floor from O = {o_source}",
        p.m, args.seed
    );
    println!("                              L2 distance          centred cosine similarity");
    println!(
        "paired (A_i, B_i)             {:.4} [{:.4}, {:.4}]   {:.4} [{:.4}, {:.4}]",
        p.dist, p.dist_lo, p.dist_hi, p.similarity, p.similarity_lo, p.similarity_hi
    );
    println!(
        "floor (independent data)      {:.4}                   {:.4}",
        m.floor.dist, m.floor.similarity
    );
    println!(
        "copy level (nearest T image)  {:.4}                   {:.4}",
        m.copy.dist, m.copy.similarity
    );
    Ok(())
}
