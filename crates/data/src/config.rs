//! Strict TOML settings: unknown keys are errors that name the key and the file, and every run
//! records what it resolved to ([`RunRecord`]).

use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

/// A settings file that could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// (The I/O error is in the message, not in `source()`, so a printed chain says it once.)
    #[error("cannot read config {}: {err}", .path.display())]
    Read { path: PathBuf, err: std::io::Error },
    /// The message of `toml` names the key (e.g. "unknown field `epochz`, expected one of ...").
    #[error("config {}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cannot serialize settings: {0}")]
    Serialize(String),
}

/// Loads a `T` from a TOML file. `T` should carry `#[serde(deny_unknown_fields, default)]` so that
/// a misspelt key is an error and a missing one takes its default.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    parse_toml(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses TOML text; the error is one line (toml's multi-line message is folded).
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml_de(text)
}

fn toml_de<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        match e.span() {
            Some(span) => {
                // 1-based line of the span's start: newlines before it, plus one.
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: {msg}")
            }
            None => msg,
        }
    })
}

/// Where the run record of a single output file goes: `O.npy` → `O.run.toml` beside it.
pub fn record_path(out: &Path) -> PathBuf {
    out.with_extension("run.toml")
}

/// What every output folder records so that a result can be reproduced: the resolved settings,
/// the seed, the memdiff version and the backend. Written as `run.toml`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunRecord<S> {
    pub memdiff_version: String,
    pub command: String,
    pub backend: String,
    pub seed: u64,
    pub settings: S,
}

impl<S: Serialize> RunRecord<S> {
    pub fn new(command: &str, backend: &str, seed: u64, settings: S) -> Self {
        Self {
            memdiff_version: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            backend: backend.to_string(),
            seed,
            settings,
        }
    }

    /// Writes `dir/run.toml` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let text =
            toml::to_string_pretty(self).map_err(|e| ConfigError::Serialize(e.to_string()))?;
        crate::atomic::write_bytes(&dir.join("run.toml"), text.as_bytes())?;
        Ok(())
    }

    /// The record as TOML text (what [`RunRecord::write`] writes).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Serialize(e.to_string()))
    }

    /// Writes the record to `path` (e.g. `out.run.toml` beside a single output file) atomically.
    pub fn write_to(&self, path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        crate::atomic::write_bytes(path, self.to_toml()?.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct S {
        epochs: u32,
        lr: f64,
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse_toml::<S>("epochs = 3\nepochz = 4\n").unwrap_err();
        assert!(e.contains("epochz") && e.starts_with("line 2"), "{e}");
        let s: S = parse_toml("lr = 0.5").unwrap();
        assert_eq!((s.epochs, s.lr), (0, 0.5));
    }
}
