//! Key material: every configured key is parsed once, at config load, into a
//! `VerifyKey` that pins its algorithm. The request path only selects among
//! them.

use std::path::Path;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::config::raw::RawKey;
use crate::config::secret::{Secret, SecretOrigin, SecretSpec};
use crate::config::FieldError;

/// HMAC secrets shorter than this are refused: below 256 bits they can be
/// brute-forced offline from a single token.
pub const MIN_HMAC_SECRET: usize = 32;

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

/// All keys of one organization, in config order.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyKey>) -> Self {
        KeySet { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that may verify a token with this header: those whose `kid`
    /// equals the token's plus those without a `kid` (every key when the
    /// token names none), restricted to the token's algorithm. A `kid` never
    /// does more than select, so hostile values cannot reach a file or query.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.alg == alg
                && match (kid, k.kid.as_deref()) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        })
    }

    /// The first HMAC key, for minting tokens.
    pub fn first_hmac(&self) -> Option<&VerifyKey> {
        self.keys.iter().find(|k| k.hmac_secret.is_some())
    }

    /// The first key of an asymmetric family matching `family_of`.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyKey> {
        self.keys.iter()
    }
}

/// A file the key depends on (watched for hot reload) and whether a secret
/// was written inline (`check` warns).
#[derive(Debug, Default)]
pub struct KeyProvenance {
    pub files: Vec<std::path::PathBuf>,
    pub inline_secret_fields: Vec<String>,
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

/// Loads one `keys[i]` entry. `field` is its YAML path.
pub fn load_key(
    raw: &RawKey,
    field: &str,
    base: &Path,
    provenance: &mut KeyProvenance,
) -> Result<Vec<VerifyKey>, FieldError> {
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

    if sources[0] {
        return load_hmac(raw, alg, field, base, provenance).map(|k| vec![k]);
    }
    if let Some(path) = &raw.public_key_file {
        return load_public_pem(raw, alg, path, field, base, provenance).map(|k| vec![k]);
    }
    let kind = if raw.pkcs12_file.is_some() {
        "pkcs12_file"
    } else if raw.jwks_file.is_some() {
        "jwks_file"
    } else {
        "jwks_url"
    };
    Err(FieldError::new(
        format!("{field}.{kind}"),
        "this key source is not supported yet",
    ))
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
    provenance: &mut KeyProvenance,
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
    let (secret, origin) = spec.require(base)?;
    note_origin(&origin, &spec.field, provenance);
    if secret.len() < MIN_HMAC_SECRET {
        return Err(FieldError::new(
            origin_field(&spec.field, &origin),
            format!(
                "an HMAC secret needs at least {MIN_HMAC_SECRET} bytes, this one has {}",
                secret.len()
            ),
        ));
    }
    Ok(VerifyKey {
        kid: raw.kid.clone(),
        alg,
        key: DecodingKey::from_secret(secret.expose()),
        hmac_secret: Some(secret),
    })
}

fn load_public_pem(
    raw: &RawKey,
    alg: Option<Algorithm>,
    path: &Path,
    field: &str,
    base: &Path,
    provenance: &mut KeyProvenance,
) -> Result<VerifyKey, FieldError> {
    let alg = require_alg(alg, field)?;
    let file_field = format!("{field}.public_key_file");
    let full = base.join(path);
    let pem = std::fs::read(&full)
        .map_err(|e| FieldError::new(&file_field, format!("cannot read {}: {e}", full.display())))?;
    provenance.files.push(full.clone());
    let key = decoding_key_from_pem(alg, &pem).map_err(|e| {
        FieldError::new(
            &file_field,
            format!("{} is not a {alg:?} public key: {e}", full.display()),
        )
    })?;
    Ok(VerifyKey {
        kid: raw.kid.clone(),
        alg,
        key,
        hmac_secret: None,
    })
}

fn decoding_key_from_pem(alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    let result = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        _ => return Err("HMAC keys take a secret, not a PEM file".into()),
    };
    result.map_err(|e| e.to_string())
}

/// An encoding key for `ssogate mint --key`, matched to the org's algorithm.
pub fn encoding_key_from_pem(alg: Algorithm, pem: &[u8]) -> Result<EncodingKey, String> {
    let result = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        _ => return Err("HMAC keys are signed with the org's secret, not --key".into()),
    };
    result.map_err(|e| e.to_string())
}

fn note_origin(origin: &SecretOrigin, field: &str, provenance: &mut KeyProvenance) {
    match origin {
        SecretOrigin::File(path) => provenance.files.push(path.clone()),
        SecretOrigin::Inline => provenance.inline_secret_fields.push(field.to_owned()),
        SecretOrigin::Env(_) => {}
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
        let set = KeySet::new(vec![
            hs(Some("a"), Algorithm::HS256),
            hs(None, Algorithm::HS256),
            hs(Some("b"), Algorithm::HS512),
        ]);
        let kids = |kid, alg| {
            set.candidates(kid, alg)
                .map(|k| k.kid.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(Some("a"), Algorithm::HS256), vec![Some("a".into()), None]);
        assert_eq!(kids(Some("b"), Algorithm::HS256), vec![None]);
        assert_eq!(kids(None, Algorithm::HS512), vec![Some("b".into())]);
        assert!(kids(Some("zz"), Algorithm::RS256).is_empty());
    }
}
