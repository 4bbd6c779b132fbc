//! Checkpoints of a training run, in its output folder:
//!
//! - `weights-SSSSSSSS.bin`: the model's parameters (step `S`), in the module's visiting order;
//! - `adam-SSSSSSSS.bin`: Adam's first and second moments (and its step count, in the TOML);
//! - `ema-SSSSSSSS.bin`: the EMA weights, when the run keeps one;
//! - `checkpoint.toml`: [`CheckpointMeta`] (resolved config, data recipe, step, epoch, RNG state,
//!   backend, memdiff version) and the names of the three files.
//!
//! Every file is written atomically (temporary file, then rename) and `checkpoint.toml` last, so
//! a reader always sees a complete checkpoint: the old one until the new TOML lands. Files of
//! older steps are removed after that.
//!
//! The `.bin` format: `MDTENSOR` magic, `u32` tensor count, then per tensor `u32` rank, `u64`
//! dims and the little-endian `f32` values.

use crate::train::{params_from_host, HostAdam, TrainConfig};
use burn::tensor::Device;
use memdiff_data::recipe::DataRecipe;
use memdiff_model::UNet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `checkpoint.toml` records about the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// The resolved training settings.
    pub train: TrainConfig,
    /// How to rebuild the training set.
    pub data: DataRecipe,
    /// Optimizer steps done.
    pub step: usize,
    /// Epochs completed (`step / steps_per_epoch`).
    pub epoch: usize,
    /// Images trained on (the rest of the set, if any, was the validation split).
    pub n_train: usize,
    /// `flex`, `wgpu`, `cuda` or `ndarray`.
    pub backend: String,
    pub memdiff_version: String,
    pub rng: RngState,
    /// Whether the run reached its last step.
    pub finished: bool,
}

/// The run's random state. Every draw is a function of `(seed, epoch)` or `(seed, step)`, so the
/// state is the seed and the next step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    pub scheme: String,
    pub seed: u64,
    pub next_step: usize,
}

/// The tensors of a checkpoint, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState {
    pub step: usize,
    pub params: Vec<Vec<f32>>,
    pub adam: HostAdam,
    pub ema: Option<Vec<Vec<f32>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Files {
    weights: String,
    adam: String,
    adam_step: u64,
    ema: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointToml {
    meta: CheckpointMeta,
    files: Files,
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no checkpoint in {0} (no checkpoint.toml; train into it first, or drop --resume)")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{0}")]
    Write(#[from] memdiff_data::atomic::WriteError),
    #[error("checkpoint {path} has no EMA weights (the run was trained without --ema); load the plain weights instead")]
    NoEma { path: PathBuf },
    #[error("checkpoint does not fit this U-Net: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Model(#[from] memdiff_model::ModelError),
}

/// A tensor on the host: shape and row-major values.
pub type ShapedTensor = (Vec<usize>, Vec<f32>);

const MAGIC: &[u8; 8] = b"MDTENSOR";
const TOML_NAME: &str = "checkpoint.toml";

/// Writes `tensors` (with `shapes`) in the `.bin` format, atomically.
fn write_tensors(
    path: &Path,
    shapes: &[Vec<usize>],
    tensors: &[Vec<f32>],
) -> Result<(), CheckpointError> {
    memdiff_data::atomic::write_with(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&(tensors.len() as u32).to_le_bytes())?;
        for (shape, t) in shapes.iter().zip(tensors) {
            w.write_all(&(shape.len() as u32).to_le_bytes())?;
            for &d in shape {
                w.write_all(&(d as u64).to_le_bytes())?;
            }
            let mut buf = Vec::with_capacity(t.len() * 4);
            for v in t {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads a `.bin` file: `(shape, values)` per tensor.
pub fn read_tensors(path: &Path) -> Result<Vec<ShapedTensor>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |m: &str| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        message: format!("{m} (the file is truncated or not a memdiff checkpoint file)"),
    };
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], CheckpointError> {
        if pos + n > bytes.len() {
            return Err(corrupt("unexpected end of file"));
        }
        let s = &bytes[pos..pos + n];
        pos += n;
        Ok(s)
    };
    if take(8)? != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let count = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
    let mut out = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let rank = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
        if rank > 8 {
            return Err(corrupt("tensor rank above 8"));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(u64::from_le_bytes(take(8)?.try_into().unwrap()) as usize);
        }
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| corrupt("impossible tensor size"))?;
        let raw = take(n)?;
        let vals = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.push((shape, vals));
    }
    if pos != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

fn read_toml(dir: &Path) -> Result<CheckpointToml, CheckpointError> {
    let path = dir.join(TOML_NAME);
    if !path.exists() {
        return Err(CheckpointError::Missing(dir.to_path_buf()));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| CheckpointError::Read {
        path: path.clone(),
        source,
    })?;
    memdiff_data::config::parse_toml(&text)
        .map_err(|message| CheckpointError::Corrupt { path, message })
}

/// The step of the checkpoint in `dir`, if there is a readable one.
pub fn latest_step(dir: &Path) -> Option<usize> {
    read_toml(dir).ok().map(|c| c.meta.step)
}

/// Reads only the metadata of the checkpoint in `dir`.
pub fn load_meta(dir: &Path) -> Result<CheckpointMeta, CheckpointError> {
    Ok(read_toml(dir)?.meta)
}

/// Saves a checkpoint of `state` into `dir` (see the module doc for the layout).
pub fn save(
    dir: &Path,
    meta: &CheckpointMeta,
    state: &TrainingState,
    shapes: &[Vec<usize>],
) -> Result<(), CheckpointError> {
    let tag = format!("{:08}", state.step);
    let weights = format!("weights-{tag}.bin");
    let adam = format!("adam-{tag}.bin");
    let ema = state.ema.as_ref().map(|_| format!("ema-{tag}.bin"));
    write_tensors(&dir.join(&weights), shapes, &state.params)?;
    let mut moments_shapes = shapes.to_vec();
    moments_shapes.extend_from_slice(shapes);
    let moments: Vec<Vec<f32>> = state
        .adam
        .m
        .iter()
        .chain(state.adam.v.iter())
        .cloned()
        .collect();
    write_tensors(&dir.join(&adam), &moments_shapes, &moments)?;
    if let (Some(name), Some(e)) = (&ema, &state.ema) {
        write_tensors(&dir.join(name), shapes, e)?;
    }
    let toml_doc = CheckpointToml {
        meta: meta.clone(),
        files: Files {
            weights: weights.clone(),
            adam: adam.clone(),
            adam_step: state.adam.step,
            ema: ema.clone(),
        },
    };
    let text = toml::to_string_pretty(&toml_doc).map_err(|e| CheckpointError::Corrupt {
        path: dir.join(TOML_NAME),
        message: format!("cannot serialise the checkpoint metadata: {e}"),
    })?;
    memdiff_data::atomic::write_bytes(&dir.join(TOML_NAME), text.as_bytes())?;
    // Old steps' files are no longer referenced.
    let keep = [Some(weights), Some(adam), ema];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = (name.starts_with("weights-")
                || name.starts_with("adam-")
                || name.starts_with("ema-"))
                && name.ends_with(".bin");
            if ours && !keep.iter().any(|k| k.as_deref() == Some(name.as_str())) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Everything needed to continue the run saved in `dir`.
pub fn load_state(dir: &Path) -> Result<(CheckpointMeta, TrainingState), CheckpointError> {
    let c = read_toml(dir)?;
    let params: Vec<Vec<f32>> = read_tensors(&dir.join(&c.files.weights))?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut moments: Vec<Vec<f32>> = read_tensors(&dir.join(&c.files.adam))?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    if moments.len() != 2 * params.len() {
        return Err(CheckpointError::Corrupt {
            path: dir.join(&c.files.adam),
            message: format!(
                "{} moment tensors for {} parameters",
                moments.len(),
                params.len()
            ),
        });
    }
    let v = moments.split_off(params.len());
    let ema = match &c.files.ema {
        Some(name) => Some(
            read_tensors(&dir.join(name))?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ),
        None => None,
    };
    Ok((
        c.meta.clone(),
        TrainingState {
            step: c.meta.step,
            params,
            adam: HostAdam {
                step: c.files.adam_step,
                m: moments,
                v,
            },
            ema,
        },
    ))
}

/// Checks that saved tensors have the shapes of the model's parameters.
pub(crate) fn check_shapes(
    model: &[(Vec<usize>, Vec<f32>)],
    saved: &[Vec<f32>],
) -> Result<(), CheckpointError> {
    if model.len() != saved.len() {
        return Err(CheckpointError::Mismatch(format!(
            "{} tensors saved, the U-Net has {}",
            saved.len(),
            model.len()
        )));
    }
    for (i, ((shape, p), s)) in model.iter().zip(saved).enumerate() {
        if p.len() != s.len() {
            return Err(CheckpointError::Mismatch(format!(
                "tensor {i} has {} values, the U-Net's has shape {shape:?}",
                s.len()
            )));
        }
    }
    Ok(())
}

/// Loads the model of the checkpoint in `dir` onto `device` (a plain device, ready for
/// inference); with `ema`, the EMA weights instead of the raw ones.
pub fn load(
    dir: &Path,
    device: &Device,
    ema: bool,
) -> Result<(UNet, CheckpointMeta), CheckpointError> {
    let c = read_toml(dir)?;
    let file = if ema {
        c.files.ema.clone().ok_or_else(|| CheckpointError::NoEma {
            path: dir.to_path_buf(),
        })?
    } else {
        c.files.weights.clone()
    };
    let path = dir.join(&file);
    let tensors = read_tensors(&path)?;
    let model = c.meta.train.unet().init(device)?;
    let shapes = crate::train::params_to_host(&model);
    if shapes.len() != tensors.len() {
        return Err(CheckpointError::Mismatch(format!(
            "{} holds {} tensors, a U-Net with {:?} has {}",
            path.display(),
            tensors.len(),
            c.meta.train.unet(),
            shapes.len()
        )));
    }
    for (i, ((want, _), (got, _))) in shapes.iter().zip(&tensors).enumerate() {
        if want != got {
            return Err(CheckpointError::Mismatch(format!(
                "{}: tensor {i} has shape {got:?}, the U-Net expects {want:?}",
                path.display()
            )));
        }
    }
    let values: Vec<&[f32]> = tensors.iter().map(|(_, v)| v.as_slice()).collect();
    Ok((params_from_host(model, &values), c.meta))
}

/// The fields in which two configs differ, as `name: a -> b`.
pub fn diff_fields(a: &TrainConfig, b: &TrainConfig) -> String {
    let ta = toml::Table::try_from(a).unwrap_or_default();
    let tb = toml::Table::try_from(b).unwrap_or_default();
    let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&toml::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
    keys.into_iter()
        .filter(|k| ta.get(*k) != tb.get(*k))
        .map(|k| format!("{k}: {} -> {}", show(ta.get(k)), show(tb.get(k))))
        .collect::<Vec<_>>()
        .join(", ")
}
