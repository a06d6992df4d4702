//! Secrets arrive inline, from a file (a mounted Kubernetes Secret) or from
//! an environment variable; exactly one form per secret.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::FieldError;
pub use crate::keys::Secret;

/// Where a secret came from, so that `check` can warn about inline ones and
/// the reloader can watch the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    Inline,
    File(PathBuf),
    Env(String),
}

/// What loading learned besides values: the files it read (to watch them),
/// a digest of exactly the bytes it read (so a reload can tell whether
/// anything changed), and what `check` should warn about.
pub struct Provenance {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
    digest: Sha256,
}

impl Provenance {
    /// Starts with the config file itself.
    pub fn new(config_file: &Path, config_text: &str) -> Self {
        let mut provenance = Provenance {
            files: Vec::new(),
            warnings: Vec::new(),
            digest: Sha256::new(),
        };
        provenance.record(config_file, config_text.as_bytes());
        provenance
    }

    /// Reads a file the config names; `field` is the YAML path naming it.
    pub fn read(&mut self, path: &Path, field: &str) -> Result<Vec<u8>, FieldError> {
        let bytes = std::fs::read(path)
            .map_err(|e| FieldError::new(field, format!("cannot read {}: {e}", path.display())))?;
        self.record(path, &bytes);
        Ok(bytes)
    }

    fn record(&mut self, path: &Path, bytes: &[u8]) {
        self.files.push(path.to_path_buf());
        self.digest.update(path.as_os_str().as_encoded_bytes());
        self.digest.update((bytes.len() as u64).to_le_bytes());
        self.digest.update(bytes);
    }

    pub fn warn_inline(&mut self, field: &str) {
        self.warnings.push(format!(
            "{field}: the secret is written inline; in production read it from `{field}_file` (a mounted Secret)"
        ));
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        self.digest.clone().finalize().into()
    }
}

pub struct SecretSpec<'a> {
    /// YAML path of the inline form, e.g. `session.secret`.
    pub field: String,
    pub inline: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
}

impl SecretSpec<'_> {
    /// Resolves the one form given. `base` is the config file's directory,
    /// against which relative file paths are taken.
    pub fn resolve(
        &self,
        base: &Path,
        provenance: &mut Provenance,
    ) -> Result<Option<(Secret, SecretOrigin)>, FieldError> {
        let given = [
            self.inline.is_some(),
            self.file.is_some(),
            self.env.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => return Ok(None),
            1 => {}
            _ => {
                return Err(FieldError::new(
                    &self.field,
                    format!(
                        "give exactly one of `{0}`, `{0}_file`, `{0}_env`",
                        leaf(&self.field)
                    ),
                ))
            }
        }
        if let Some(value) = self.inline {
            provenance.warn_inline(&self.field);
            return Ok(Some((
                Secret::from(value.as_bytes().to_vec()),
                SecretOrigin::Inline,
            )));
        }
        if let Some(path) = self.file {
            let field = format!("{}_file", self.field);
            let full = base.join(path);
            let bytes = provenance.read(&full, &field)?;
            return Ok(Some((
                Secret::from(strip_newline(bytes)),
                SecretOrigin::File(full),
            )));
        }
        if let Some(var) = self.env {
            let field = format!("{}_env", self.field);
            let value = std::env::var_os(var).ok_or_else(|| {
                FieldError::new(&field, format!("environment variable {var} is not set"))
            })?;
            let bytes = value.into_encoded_bytes();
            return Ok(Some((
                Secret::from(strip_newline(bytes)),
                SecretOrigin::Env(var.to_owned()),
            )));
        }
        Ok(None)
    }

    pub fn require(
        &self,
        base: &Path,
        provenance: &mut Provenance,
    ) -> Result<(Secret, SecretOrigin), FieldError> {
        self.resolve(base, provenance)?.ok_or_else(|| {
            FieldError::new(
                &self.field,
                format!(
                    "missing: give `{0}_file`, `{0}_env` or `{0}`",
                    leaf(&self.field)
                ),
            )
        })
    }
}

/// The YAML path of the form actually used (`…secret_file`, `…secret_env`
/// or `…secret`), so that an error points at the line the operator wrote.
pub fn origin_field(field: &str, origin: &SecretOrigin) -> String {
    match origin {
        SecretOrigin::Inline => field.to_owned(),
        SecretOrigin::File(_) => format!("{field}_file"),
        SecretOrigin::Env(_) => format!("{field}_env"),
    }
}

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// Editors and `echo` add one trailing newline; it is not part of the secret.
fn strip_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(strip_newline(b"abc\n".to_vec()), b"abc");
        assert_eq!(strip_newline(b"abc\r\n".to_vec()), b"abc");
        assert_eq!(strip_newline(b"abc\n\n".to_vec()), b"abc\n");
        assert_eq!(strip_newline(b"abc".to_vec()), b"abc");
    }

    #[test]
    fn refuses_two_forms() {
        let spec = SecretSpec {
            field: "session.secret".into(),
            inline: Some("x"),
            file: None,
            env: Some("X"),
        };
        let mut provenance = Provenance::new(Path::new("c.yaml"), "");
        let err = spec
            .resolve(Path::new("."), &mut provenance)
            .err()
            .map(|e| e.field);
        assert_eq!(err.as_deref(), Some("session.secret"));
    }
}
