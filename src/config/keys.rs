//! An organization's `keys:` entries: each one's source is read here (files
//! and secrets through [`Provenance`], so they are watched), its bytes go to
//! `crate::keys`, and a refusal from there is reported at the YAML path and
//! file it concerns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::raw::RawKey;
use super::secret::{origin_field, Provenance, SecretSpec};
use super::FieldError;
use crate::keys::{
    self, check_material, JwksStore, KeyError, KeySet, KeySetBuilder, Material, RemoteJwks,
    VerifyKey,
};

/// `refresh` of a `jwks_url` key when none is given.
const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);

/// Loads every entry of an org's `keys`; `field` is the org's YAML path.
pub fn org_keys(
    raw: &[RawKey],
    field: &str,
    base: &Path,
    provenance: &mut Provenance,
    jwks: &Arc<JwksStore>,
) -> Result<KeySet, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            format!("{field}.keys"),
            "an organization needs at least one key",
        ));
    }
    let mut set = KeySetBuilder::default();
    for (i, key) in raw.iter().enumerate() {
        let entry = Entry {
            raw: key,
            field: format!("{field}.keys[{i}]"),
            base,
        };
        entry.load(&mut set, provenance, jwks)?;
    }
    Ok(set.build())
}

/// One `keys[i]` entry; `field` is its YAML path.
struct Entry<'a> {
    raw: &'a RawKey,
    field: String,
    base: &'a Path,
}

impl Entry<'_> {
    fn load(
        &self,
        set: &mut KeySetBuilder,
        provenance: &mut Provenance,
        jwks: &Arc<JwksStore>,
    ) -> Result<(), FieldError> {
        let raw = self.raw;
        let alg = self.check_fields()?;
        if raw.secret.is_some() || raw.secret_file.is_some() || raw.secret_env.is_some() {
            return self.hmac(alg, set, provenance);
        }
        if let Some(url) = &raw.jwks_url {
            let refresh = raw.refresh.map_or(DEFAULT_JWKS_REFRESH, |d| d.0);
            let (remote, error) = RemoteJwks::load(url.clone(), refresh, alg, jwks.clone());
            if let Some(e) = error {
                provenance.warnings.push(format!(
                    "{}.jwks_url: cannot fetch {url} now ({e}); retrying in the background",
                    self.field
                ));
            }
            set.add_remote(remote);
            return Ok(());
        }
        if let Some(path) = &raw.jwks_file {
            let (full, bytes) = self.read("jwks_file", path, provenance)?;
            let found =
                keys::jwks::parse(&bytes, alg).map_err(|e| self.in_file("jwks_file", &full, e))?;
            set.add(
                found,
                alg.unwrap_or(Algorithm::RS256),
                raw.kid.as_deref(),
                &bytes,
            );
            return Ok(());
        }
        self.public_key(alg, set, provenance)
    }

    /// The rules on which fields go together, checked before anything is
    /// read; returns the pinned algorithm, if any.
    fn check_fields(&self) -> Result<Option<Algorithm>, FieldError> {
        let raw = self.raw;
        let field = &self.field;
        let sources = [
            raw.secret.is_some() || raw.secret_file.is_some() || raw.secret_env.is_some(),
            raw.public_key_file.is_some(),
            raw.pkcs12_file.is_some(),
            raw.jwks_file.is_some(),
            raw.jwks_url.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            1 => {}
            0 => {
                return Err(FieldError::new(
                    field,
                    "a key needs one of secret_file/secret_env/secret, public_key_file, pkcs12_file, jwks_file or jwks_url",
                ))
            }
            _ => {
                return Err(FieldError::new(
                    field,
                    "a key has exactly one source (secret, public_key_file, pkcs12_file, jwks_file or jwks_url)",
                ))
            }
        }
        let alg = match &raw.alg {
            Some(name) => Some(keys::parse_alg(name).map_err(|e| self.at("alg", e))?),
            None => None,
        };
        let extras = [
            (
                "password",
                raw.password.is_some() || raw.password_file.is_some() || raw.password_env.is_some(),
            ),
            ("alias", raw.alias.is_some()),
        ];
        if raw.pkcs12_file.is_none() {
            if let Some((name, _)) = extras.iter().find(|(_, given)| *given) {
                return Err(FieldError::new(
                    format!("{field}.{name}"),
                    "only a pkcs12_file key takes it",
                ));
            }
        }
        if raw.refresh.is_some() && raw.jwks_url.is_none() {
            return Err(FieldError::new(
                format!("{field}.refresh"),
                "only a jwks_url key takes it",
            ));
        }
        Ok(alg)
    }

    /// A `public_key_file` or `pkcs12_file` key.
    fn public_key(
        &self,
        alg: Option<Algorithm>,
        set: &mut KeySetBuilder,
        provenance: &mut Provenance,
    ) -> Result<(), FieldError> {
        let raw = self.raw;
        let alg = self.require_alg(alg)?;
        check_material(alg, Material::PublicKey).map_err(|e| self.at("alg", e))?;
        let allow_expired = raw.allow_expired_certificate.unwrap_or(false);
        let (file_field, bytes, found) = if let Some(path) = &raw.public_key_file {
            let (full, pem) = self.read("public_key_file", path, provenance)?;
            let found = VerifyKey::from_pem(alg, raw.kid.clone(), &pem, allow_expired)
                .map_err(|e| self.in_file("public_key_file", &full, e))?;
            ("public_key_file", pem, found)
        } else {
            let path = raw.pkcs12_file.as_deref().unwrap_or(Path::new(""));
            let (full, data) = self.read("pkcs12_file", path, provenance)?;
            let password = self.password(provenance)?;
            let found = VerifyKey::from_pkcs12(
                alg,
                raw.kid.clone(),
                &data,
                &password,
                raw.alias.as_deref(),
                allow_expired,
            )
            .map_err(|e| self.in_file("pkcs12_file", &full, e))?;
            ("pkcs12_file", data, found)
        };
        if let Some(subject) = &found.subject {
            tracing::debug!(field = %format!("{}.{file_field}", self.field), %subject, "loaded certificate");
        }
        set.add([found.key], alg, raw.kid.as_deref(), &bytes);
        Ok(())
    }

    fn hmac(
        &self,
        alg: Option<Algorithm>,
        set: &mut KeySetBuilder,
        provenance: &mut Provenance,
    ) -> Result<(), FieldError> {
        let raw = self.raw;
        let alg = self.require_alg(alg)?;
        // Said before the secret is read: a wrong `alg` is the mistake to
        // fix first, whatever the state of the secret.
        check_material(alg, Material::SharedSecret).map_err(|e| self.at("alg", e))?;
        let spec = SecretSpec {
            field: format!("{}.secret", self.field),
            inline: raw.secret.as_deref(),
            file: raw.secret_file.as_deref(),
            env: raw.secret_env.as_deref(),
        };
        let (secret, origin) = spec.require(self.base, provenance)?;
        let key = VerifyKey::hmac(alg, raw.kid.clone(), secret.clone())
            .map_err(|e| FieldError::new(origin_field(&spec.field, &origin), e.to_string()))?;
        set.add([key], alg, raw.kid.as_deref(), secret.expose());
        Ok(())
    }

    /// The keystore password as a string; a keystore without one has the
    /// empty password.
    fn password(&self, provenance: &mut Provenance) -> Result<String, FieldError> {
        let raw = self.raw;
        let spec = SecretSpec {
            field: format!("{}.password", self.field),
            inline: raw.password.as_deref(),
            file: raw.password_file.as_deref(),
            env: raw.password_env.as_deref(),
        };
        match spec.resolve(self.base, provenance)? {
            Some((secret, origin)) => String::from_utf8(secret.expose().to_vec()).map_err(|_| {
                FieldError::new(
                    origin_field(&spec.field, &origin),
                    "the password is not UTF-8",
                )
            }),
            None => Ok(String::new()),
        }
    }

    fn require_alg(&self, alg: Option<Algorithm>) -> Result<Algorithm, FieldError> {
        alg.ok_or_else(|| {
            FieldError::new(
                format!("{}.alg", self.field),
                "missing: this key must pin its algorithm",
            )
        })
    }

    /// Reads the file named by the entry's field `name`.
    fn read(
        &self,
        name: &str,
        path: &Path,
        provenance: &mut Provenance,
    ) -> Result<(PathBuf, Vec<u8>), FieldError> {
        let full = self.base.join(path);
        let bytes = provenance.read(&full, &format!("{}.{name}", self.field))?;
        Ok((full, bytes))
    }

    /// A refusal of the entry's field `name`.
    fn at(&self, name: &str, error: KeyError) -> FieldError {
        FieldError::new(format!("{}.{name}", self.field), error.to_string())
    }

    /// A refusal of what the file named by the entry's field `name` holds.
    fn in_file(&self, name: &str, file: &Path, error: KeyError) -> FieldError {
        FieldError::new(
            format!("{}.{name}", self.field),
            format!("{}: {error}", file.display()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal of an org whose only key is `yaml`, read from `base`.
    fn refusal(yaml: &str, base: &Path) -> Result<FieldError, String> {
        let raw: RawKey = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        let mut provenance = Provenance::new(&base.join("config.yaml"), "");
        match org_keys(
            &[raw],
            "organizations.acme",
            base,
            &mut provenance,
            &Arc::default(),
        ) {
            Ok(_) => Err(format!("{yaml} was accepted")),
            Err(e) => Ok(e),
        }
    }

    #[test]
    fn a_wrong_alg_is_named_before_the_secret_is_read() -> Result<(), String> {
        let e = refusal(
            "{ alg: RS256, secret_env: SSOGATE_TEST_NEVER_SET }",
            Path::new("."),
        )?;
        assert_eq!(e.field, "organizations.acme.keys[0].alg");
        assert_eq!(e.message, "RS256 needs a public key, not a shared secret");
        Ok(())
    }

    #[test]
    fn a_short_secret_is_named_by_the_form_given() -> Result<(), String> {
        let e = refusal("{ alg: HS256, secret: too-short }", Path::new("."))?;
        assert_eq!(e.field, "organizations.acme.keys[0].secret");
        assert_eq!(
            e.message,
            "an HMAC secret needs at least 32 bytes, this one has 9"
        );
        Ok(())
    }

    #[test]
    fn a_bad_key_file_is_named_with_its_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("idp.pem"), "not a key")?;
        let e = refusal("{ alg: RS256, public_key_file: idp.pem }", dir.path())?;
        assert_eq!(e.field, "organizations.acme.keys[0].public_key_file");
        assert_eq!(
            e.message,
            format!(
                "{}: no PUBLIC KEY or CERTIFICATE block",
                dir.path().join("idp.pem").display()
            )
        );
        Ok(())
    }
}
