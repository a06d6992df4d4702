//! Key material: every configured key is parsed once, at config load, into a
//! `VerifyKey` that pins its algorithm. The request path only selects among
//! them.

pub mod jwks;
mod pkcs12;
pub mod spki;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::config::raw::RawKey;
use crate::config::secret::{Provenance, Secret, SecretOrigin, SecretSpec};
use crate::config::FieldError;
use jwks::RemoteJwks;

/// HMAC secrets shorter than this are refused: below 256 bits they can be
/// brute-forced offline from a single token.
pub const MIN_HMAC_SECRET: usize = 32;
const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);

pub struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// Kept for HS keys only, so that `ssogate mint` can sign with them.
    pub hmac_secret: Option<Secret>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// Whether this key may verify a token with this header: same
    /// algorithm, and the same `kid` when both name one. A `kid` only ever
    /// selects, so hostile values cannot reach a file or a query.
    fn is_candidate(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.alg == alg
            && match (kid, self.kid.as_deref()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }
}

/// All keys of one organization, in config order; key sets fetched from a
/// URL come after the static keys.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
    remotes: Vec<Arc<RemoteJwks>>,
    /// Digest of the static key material, for the session cache.
    fingerprint: u64,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyKey>, remotes: Vec<Arc<RemoteJwks>>, fingerprint: u64) -> Self {
        KeySet {
            keys,
            remotes,
            fingerprint,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.remotes.is_empty()
    }

    /// Calls `f` on each candidate key for a token with this header (see
    /// [`VerifyKey::is_candidate`]) until it returns `Some`.
    pub fn find_candidate<R>(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        mut f: impl FnMut(&VerifyKey) -> Option<R>,
    ) -> Option<R> {
        if let Some(r) = self
            .keys
            .iter()
            .filter(|k| k.is_candidate(kid, alg))
            .find_map(&mut f)
        {
            return Some(r);
        }
        self.remotes.iter().find_map(|remote| {
            remote
                .keys()
                .iter()
                .filter(|k| k.is_candidate(kid, alg))
                .find_map(&mut f)
        })
    }

    /// Whether any key at all carries this `kid`.
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
            || self
                .remotes
                .iter()
                .any(|r| r.keys().iter().any(|k| k.kid.as_deref() == Some(kid)))
    }

    pub fn remotes(&self) -> &[Arc<RemoteJwks>] {
        &self.remotes
    }

    /// Changes whenever the keys that can verify a token change: a cached
    /// validation is only trusted under the version it was made with.
    pub fn version(&self) -> u64 {
        self.remotes
            .iter()
            .fold(self.fingerprint, |v, r| v.rotate_left(7) ^ r.generation())
    }

    /// The first HMAC key, for minting tokens.
    pub fn first_hmac(&self) -> Option<&VerifyKey> {
        self.keys.iter().find(|k| k.hmac_secret.is_some())
    }

    pub fn iter(&self) -> impl Iterator<Item = &VerifyKey> {
        self.keys.iter()
    }
}

/// A digest of the static key material of one org, so that cached
/// validations die when a key changes.
#[derive(Debug, Default)]
pub struct KeyDigest(Sha256);

impl KeyDigest {
    pub fn finish(self) -> u64 {
        let digest = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn material(&mut self, alg: Algorithm, kid: Option<&str>, bytes: &[u8]) {
        self.0
            .update(format!("{alg:?}/{}/{}:", kid.unwrap_or(""), bytes.len()));
        self.0.update(bytes);
    }
}

/// Parses the algorithm names of RFC 7518 exactly as written; `none` in any
/// spelling is refused outright.
pub fn parse_alg(name: &str) -> Result<Algorithm, String> {
    let alg = match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other if other.eq_ignore_ascii_case("none") => {
            return Err("alg `none` is never accepted".into())
        }
        other => return Err(format!("unknown algorithm `{other}`")),
    };
    Ok(alg)
}

pub fn is_hmac(alg: Algorithm) -> bool {
    alg.family() == AlgorithmFamily::Hmac
}

/// What one `keys[i]` entry yields.
pub enum Loaded {
    Static(Vec<VerifyKey>),
    Remote(Arc<RemoteJwks>),
}

/// Loads one `keys[i]` entry. `field` is its YAML path.
pub fn load_key(
    raw: &RawKey,
    field: &str,
    base: &Path,
    provenance: &mut Provenance,
    digest: &mut KeyDigest,
) -> Result<Loaded, FieldError> {
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
        Some(name) => {
            Some(parse_alg(name).map_err(|m| FieldError::new(format!("{field}.alg"), m))?)
        }
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

    if sources[0] {
        return load_hmac(raw, alg, field, base, provenance, digest)
            .map(|k| Loaded::Static(vec![k]));
    }
    if let Some(url) = &raw.jwks_url {
        return Ok(load_remote(raw, alg, url, field, provenance));
    }
    let allow_expired = raw.allow_expired_certificate.unwrap_or(false);
    if let Some(path) = &raw.jwks_file {
        let file_field = format!("{field}.jwks_file");
        let (full, bytes) = read_key_file(base, path, &file_field, provenance)?;
        let keys = jwks::parse(&bytes, alg)
            .map_err(|e| FieldError::new(&file_field, format!("{}: {e}", full.display())))?;
        digest.material(alg.unwrap_or(Algorithm::RS256), raw.kid.as_deref(), &bytes);
        return Ok(Loaded::Static(keys));
    }
    let alg = require_alg(alg, field)?;
    if is_hmac(alg) {
        return Err(FieldError::new(
            format!("{field}.alg"),
            format!("{alg:?} takes a shared secret (secret_file), not a public key"),
        ));
    }
    let (file_field, found) = if let Some(path) = &raw.public_key_file {
        let file_field = format!("{field}.public_key_file");
        let (full, pem) = read_key_file(base, path, &file_field, provenance)?;
        let found = spki::from_pem(alg, &pem, allow_expired)
            .map_err(|e| FieldError::new(&file_field, format!("{}: {e}", full.display())))?;
        digest.material(alg, raw.kid.as_deref(), &pem);
        (file_field, found)
    } else {
        let path = raw.pkcs12_file.as_deref().unwrap_or(Path::new(""));
        let file_field = format!("{field}.pkcs12_file");
        let (full, data) = read_key_file(base, path, &file_field, provenance)?;
        let spec = SecretSpec {
            field: format!("{field}.password"),
            inline: raw.password.as_deref(),
            file: raw.password_file.as_deref(),
            env: raw.password_env.as_deref(),
        };
        let password = match spec.resolve(base, provenance)? {
            Some((secret, origin)) => {
                String::from_utf8(secret.expose().to_vec()).map_err(|_| {
                    FieldError::new(
                        origin_field(&spec.field, &origin),
                        "the password is not UTF-8",
                    )
                })?
            }
            None => String::new(),
        };
        let found = pkcs12::public_key(alg, &data, &password, raw.alias.as_deref(), allow_expired)
            .map_err(|e| FieldError::new(&file_field, format!("{}: {e}", full.display())))?;
        digest.material(alg, raw.kid.as_deref(), &data);
        (file_field, found)
    };
    if let Some(subject) = &found.subject {
        tracing::debug!(field = %file_field, %subject, "loaded certificate");
    }
    Ok(Loaded::Static(vec![VerifyKey {
        kid: raw.kid.clone(),
        alg,
        key: found.key,
        hmac_secret: None,
    }]))
}

fn load_remote(
    raw: &RawKey,
    alg: Option<Algorithm>,
    url: &str,
    field: &str,
    provenance: &mut Provenance,
) -> Loaded {
    let refresh = raw.refresh.map_or(DEFAULT_JWKS_REFRESH, |d| d.0);
    let (remote, error) = RemoteJwks::load(url.to_owned(), refresh, alg);
    if let Some(e) = error {
        provenance.warnings.push(format!(
            "{field}.jwks_url: cannot fetch {url} now ({e}); retrying in the background"
        ));
    }
    Loaded::Remote(remote)
}

fn read_key_file(
    base: &Path,
    path: &Path,
    field: &str,
    provenance: &mut Provenance,
) -> Result<(PathBuf, Vec<u8>), FieldError> {
    let full = base.join(path);
    let bytes = provenance.read(&full, field)?;
    Ok((full, bytes))
}

fn require_alg(alg: Option<Algorithm>, field: &str) -> Result<Algorithm, FieldError> {
    alg.ok_or_else(|| {
        FieldError::new(
            format!("{field}.alg"),
            "missing: this key must pin its algorithm",
        )
    })
}

fn load_hmac(
    raw: &RawKey,
    alg: Option<Algorithm>,
    field: &str,
    base: &Path,
    provenance: &mut Provenance,
    digest: &mut KeyDigest,
) -> Result<VerifyKey, FieldError> {
    let alg = require_alg(alg, field)?;
    if !is_hmac(alg) {
        return Err(FieldError::new(
            format!("{field}.alg"),
            format!("{alg:?} needs a public key, not a shared secret"),
        ));
    }
    let spec = SecretSpec {
        field: format!("{field}.secret"),
        inline: raw.secret.as_deref(),
        file: raw.secret_file.as_deref(),
        env: raw.secret_env.as_deref(),
    };
    let (secret, origin) = spec.require(base, provenance)?;
    if secret.len() < MIN_HMAC_SECRET {
        return Err(FieldError::new(
            origin_field(&spec.field, &origin),
            format!(
                "an HMAC secret needs at least {MIN_HMAC_SECRET} bytes, this one has {}",
                secret.len()
            ),
        ));
    }
    digest.material(alg, raw.kid.as_deref(), secret.expose());
    Ok(VerifyKey {
        kid: raw.kid.clone(),
        alg,
        key: DecodingKey::from_secret(secret.expose()),
        hmac_secret: Some(secret),
    })
}

/// An encoding key for `ssogate mint --key`, matched to the org's algorithm.
pub fn encoding_key_from_pem(alg: Algorithm, pem: &[u8]) -> Result<EncodingKey, String> {
    let result = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => {
            return Err("HMAC keys are signed with the org's secret, not --key".into())
        }
    };
    result.map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_refused_in_any_case() {
        for name in ["none", "None", "NONE", "nOnE"] {
            assert!(parse_alg(name).is_err(), "{name}");
        }
        assert!(parse_alg("hs256").is_err());
        assert_eq!(parse_alg("HS256"), Ok(Algorithm::HS256));
    }

    fn hs(kid: Option<&str>, alg: Algorithm) -> VerifyKey {
        VerifyKey {
            kid: kid.map(str::to_owned),
            alg,
            key: DecodingKey::from_secret(b"x"),
            hmac_secret: None,
        }
    }

    #[test]
    fn kid_selects_among_keys_of_the_token_alg() {
        let set = KeySet::new(
            vec![
                hs(Some("a"), Algorithm::HS256),
                hs(None, Algorithm::HS256),
                hs(Some("b"), Algorithm::HS512),
            ],
            Vec::new(),
            0,
        );
        let kids = |kid, alg| {
            let mut seen = Vec::new();
            set.find_candidate(kid, alg, |k| {
                seen.push(k.kid.clone());
                None::<()>
            });
            seen
        };
        assert_eq!(
            kids(Some("a"), Algorithm::HS256),
            vec![Some("a".into()), None]
        );
        assert_eq!(kids(Some("b"), Algorithm::HS256), vec![None]);
        assert_eq!(kids(None, Algorithm::HS512), vec![Some("b".into())]);
        assert!(kids(Some("zz"), Algorithm::RS256).is_empty());
    }
}
