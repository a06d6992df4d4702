//! Configuration in layers: `raw` mirrors the YAML, `validate` checks it and
//! loads every key, `model` is the immutable snapshot the proxy reads.

pub mod duration;
pub mod model;
pub mod raw;
pub mod reload;
pub mod secret;
mod validate;

use std::path::{Path, PathBuf};

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

/// Reads, parses and validates the config file and everything it names.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(&text, file).map_err(|error| ConfigError::Invalid {
        file: file.to_path_buf(),
        error,
    })
}

/// Validates YAML text as if it were the file `file` (relative paths in it
/// are taken from that file's directory).
pub fn parse(text: &str, file: &Path) -> Result<Config, FieldError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
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
    })?;
    validate::validate(raw, file, text)
}

fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}
