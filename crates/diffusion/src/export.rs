//! Export a checkpoint's weights as safetensors with PyTorch's names (burn-store), so that
//! `torch_ref.py`'s `UNet(c_in, base).load_state_dict(safetensors.torch.load_file(...))` takes
//! them as they are.
//!
//! burn → PyTorch: `Linear` weights are transposed (`[in, out]` → `[out, in]`), norm `gamma` /
//! `beta` become `weight` / `bias` ([`BurnToPyTorchAdapter`]), and three module names differ:
//! `mha.in_proj.{weight,bias}` → `mha.in_proj_{weight,bias}`, `ff_ln` / `ff_1` / `ff_2` → the
//! `Sequential` indices `ff.0` / `ff.1` / `ff.3`.

use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use memdiff_model::UNet;
use std::path::{Path, PathBuf};

/// An export that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {message} (check that the folder exists and is writable)")]
    Write { path: PathBuf, message: String },
}

/// The remapping of burn field paths to PyTorch module paths (regex, replacement).
pub const KEY_MAP: &[(&str, &str)] = &[
    (r"\.mha\.in_proj\.weight$", ".mha.in_proj_weight"),
    (r"\.mha\.in_proj\.bias$", ".mha.in_proj_bias"),
    (r"\.ff_ln\.", ".ff.0."),
    (r"\.ff_1\.", ".ff.1."),
    (r"\.ff_2\.", ".ff.3."),
];

/// The safetensors bytes of `model` with PyTorch names and layouts.
pub fn safetensors_bytes(model: &UNet, metadata: &[(&str, String)]) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    for (from, to) in KEY_MAP {
        store = store.with_key_remapping(*from, *to);
    }
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    model.save_into(&mut store).map_err(|e| e.to_string())?;
    store.get_bytes().map_err(|e| e.to_string())
}

/// Writes `model` to `path` as safetensors, atomically.
pub fn export_safetensors(
    model: &UNet,
    path: &Path,
    metadata: &[(&str, String)],
) -> Result<(), ExportError> {
    let err = |message: String| ExportError::Write {
        path: path.to_path_buf(),
        message,
    };
    let bytes = safetensors_bytes(model, metadata).map_err(err)?;
    memdiff_data::atomic::write_bytes(path, &bytes).map_err(|e| err(e.source.to_string()))
}
