//! Configuration in layers: `raw` mirrors the YAML, `validate` checks it and
//! loads every key, `model` is the immutable snapshot the proxy reads.

pub mod duration;
mod keys;
pub mod model;
pub mod raw;
pub mod secret;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::keys::JwksStore;

pub use model::*;
pub use validate::default_identity_headers;

/// A refusal that names the YAML path of the field at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {error}", file.display())]
    Invalid { file: PathBuf, error: FieldError },
}

/// Loads configs for the life of a process. What one load learns that a
/// later one needs (the last good key set of every `jwks_url`, so that a
/// reload while an IdP is down keeps its keys) is kept here, not in a
/// global: clones share it.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    jwks: Arc<JwksStore>,
}

impl Loader {
    /// Reads, parses and validates the config file and everything it names.
    pub fn load(&self, file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        self.parse(&text, file)
            .map_err(|error| ConfigError::Invalid {
                file: file.to_path_buf(),
                error,
            })
    }

    /// Validates YAML text as if it were the file `file` (relative paths in
    /// it are taken from that file's directory).
    pub fn parse(&self, text: &str, file: &Path) -> Result<Config, FieldError> {
        let raw = deserialize(text)?;
        validate::validate(raw, file, text, &self.jwks)
    }
}

/// [`Loader::load`] for a process that loads once (`check`, `mint`).
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    Loader::default().load(file)
}

/// [`Loader::parse`] for a process that loads once.
pub fn parse(text: &str, file: &Path) -> Result<Config, FieldError> {
    Loader::default().parse(text, file)
}

fn deserialize(text: &str) -> Result<raw::RawConfig, FieldError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut field = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports an unknown key at its parent; name the key itself.
        if let Some(key) = unknown_key(&message) {
            if field == "." {
                field = key.to_owned();
            } else if !field.ends_with(key) {
                field = format!("{field}.{key}");
            }
        }
        FieldError::new(
            if field == "." {
                "(top level)".into()
            } else {
                field
            },
            message,
        )
    })
}

fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}
