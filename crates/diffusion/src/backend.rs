//! Which burn backend runs the network. `flex` (pure-Rust CPU, multi-threaded with SIMD) is the
//! default; `wgpu`, `cuda` and `ndarray` exist when the binary was built with the cargo feature of
//! the same name.
//!
//! The GPU builds (`wgpu`, `cuda`) turn on burn-cubecl's `autotune`, `fusion` and `persistence`:
//! kernels are timed per shape on first use and the choices kept on disk, in the user cache
//! folder (`$XDG_CACHE_HOME/cubecl`, by default `~/.cache/cubecl`) unless a `cubecl.toml` (or a
//! `burn.toml` with a `[cubecl]` table) in the working folder or above says otherwise
//! ([`cubecl_config_file`]); cubecl's own default would be a `target/environment` folder under
//! whichever Cargo workspace the command runs in, or the user cache folder outside one.

pub use burn::tensor::Device;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A backend the user can ask for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// burn's flex CPU backend (`--device cpu` or `flex`).
    #[default]
    Cpu,
    /// wgpu: Vulkan / Metal / DX12 GPUs (`--device wgpu`).
    Wgpu,
    /// CUDA GPUs (`--device cuda`).
    Cuda,
    /// burn's deprecated ndarray CPU backend (`--device ndarray`).
    Ndarray,
}

/// The asked backend is not in this build, or its name is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("unknown device `{0}`: use cpu (or flex), wgpu, cuda or ndarray")]
    Unknown(String),
    #[error("device `{kind}` is not in this build: rebuild with `cargo build --release --features {feature}`")]
    NotBuilt {
        kind: &'static str,
        feature: &'static str,
    },
}

impl FromStr for DeviceKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            "ndarray" => Ok(Self::Ndarray),
            _ => Err(BackendError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Ndarray => "ndarray",
        })
    }
}

/// The backend's name as recorded in run.toml and checkpoints (`flex`, `wgpu`, `cuda`, `ndarray`).
pub fn backend_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Cpu => "flex",
        DeviceKind::Wgpu => "wgpu",
        DeviceKind::Cuda => "cuda",
        DeviceKind::Ndarray => "ndarray",
    }
}

/// Whether this build has the backend.
pub fn is_available(kind: DeviceKind) -> bool {
    match kind {
        DeviceKind::Cpu => cfg!(feature = "flex"),
        DeviceKind::Wgpu => cfg!(feature = "wgpu"),
        DeviceKind::Cuda => cfg!(feature = "cuda"),
        DeviceKind::Ndarray => cfg!(feature = "ndarray"),
    }
}

/// The cubecl configuration file that cubecl itself would read from `start`: the first of
/// `cubecl.toml`, `CubeCL.toml`, or a `burn.toml` / `Burn.toml` holding a `[cubecl]` table, in
/// `start` or the nearest folder above it. `None`: memdiff places the autotune cache (module doc).
pub fn cubecl_config_file(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors() {
        for name in ["cubecl.toml", "CubeCL.toml"] {
            if dir.join(name).is_file() {
                return Some(dir.join(name));
            }
        }
        for name in ["burn.toml", "Burn.toml"] {
            let p = dir.join(name);
            let has_table = std::fs::read_to_string(&p)
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .is_some_and(|t| t.contains_key("cubecl"));
            if has_table {
                return Some(p);
            }
        }
    }
    None
}

/// Puts burn-cubecl's persistent caches (autotune results, compiled kernels) in the user cache
/// folder unless a cubecl configuration file decides (module doc). Once per process, before the
/// first GPU device is opened; cubecl's environment variables (`CUBECL_AUTOTUNE_LEVEL`,
/// `CUBECL_AUTOTUNE_CACHE=0`, …) still apply.
#[cfg(feature = "gpu")]
fn place_gpu_caches() {
    use burn_cubecl::cubecl::config::{cache::CacheConfig, CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Some(file) = cubecl_config_file(&cwd) {
            tracing::debug!("cubecl settings from {}", file.display());
            return;
        }
        let mut cfg = CubeClRuntimeConfig::default().override_from_env();
        cfg.environment.path = CacheConfig::Global;
        let root = cfg.environment.path.root();
        if CubeClRuntimeConfig::try_set(cfg) {
            tracing::debug!("GPU autotune cache in {}", root.display());
        }
    });
}

/// The plain (inference) device of `kind`. Training wraps it with `.autodiff()`.
pub fn device(kind: DeviceKind) -> Result<Device, BackendError> {
    #[cfg(feature = "gpu")]
    if matches!(kind, DeviceKind::Wgpu | DeviceKind::Cuda) {
        place_gpu_caches();
    }
    let missing = |feature: &'static str| BackendError::NotBuilt {
        kind: backend_name(kind),
        feature,
    };
    match kind {
        DeviceKind::Cpu => {
            #[cfg(feature = "flex")]
            {
                Ok(Device::flex())
            }
            #[cfg(not(feature = "flex"))]
            {
                Err(missing("flex"))
            }
        }
        DeviceKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                Err(missing("wgpu"))
            }
        }
        DeviceKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                Ok(Device::cuda(0))
            }
            #[cfg(not(feature = "cuda"))]
            {
                Err(missing("cuda"))
            }
        }
        DeviceKind::Ndarray => {
            #[cfg(feature = "ndarray")]
            {
                #[allow(deprecated)]
                Ok(Device::ndarray())
            }
            #[cfg(not(feature = "ndarray"))]
            {
                Err(missing("ndarray"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_says_which_feature_is_missing() {
        assert_eq!("flex".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("CPU".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("wgpu".parse::<DeviceKind>().unwrap(), DeviceKind::Wgpu);
        let e = "tpu".parse::<DeviceKind>().unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("wgpu"), "{e}");
        for kind in [DeviceKind::Wgpu, DeviceKind::Cuda, DeviceKind::Ndarray] {
            if !is_available(kind) {
                let e = device(kind).unwrap_err().to_string();
                assert!(e.contains("--features"), "{e}");
            }
        }
    }

    #[test]
    fn finds_the_cubecl_settings_cubecl_would_read() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(cubecl_config_file(&deep), None);
        // A burn.toml without a [cubecl] table is not cubecl's.
        std::fs::write(tmp.path().join("a/burn.toml"), "[other]\nx = 1\n").unwrap();
        assert_eq!(cubecl_config_file(&deep), None);
        std::fs::write(tmp.path().join("cubecl.toml"), "").unwrap();
        assert_eq!(
            cubecl_config_file(&deep),
            Some(tmp.path().join("cubecl.toml"))
        );
        // The nearest folder wins.
        std::fs::write(
            tmp.path().join("a/burn.toml"),
            "[cubecl.autotune]\nlevel = \"minimal\"\n",
        )
        .unwrap();
        assert_eq!(
            cubecl_config_file(&deep),
            Some(tmp.path().join("a/burn.toml"))
        );
    }
}
