//! Which burn backend runs the network. `flex` (pure-Rust CPU, multi-threaded with SIMD) is the
//! default; `wgpu`, `cuda` and `ndarray` exist when the binary was built with the cargo feature of
//! the same name.

pub use burn::tensor::Device;
use std::fmt;
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

/// The plain (inference) device of `kind`. Training wraps it with `.autodiff()`.
pub fn device(kind: DeviceKind) -> Result<Device, BackendError> {
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
}
