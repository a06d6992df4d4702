//! Key material: every configured key is parsed once, at config load, into a
//! `VerifyKey` that pins its algorithm. The request path only selects among
//! them.
//!
//! This module takes bytes (a secret, PEM, a keystore, a JWKS document) and
//! returns keys or a [`KeyError`]; where the bytes came from (a file, a YAML
//! path) is the caller's to know and to report.

mod error;
pub mod jwks;
mod pkcs12;
pub mod spki;

use std::sync::Arc;

use aws_lc_rs::signature::{
    self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeSliceError, Engine};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use sha2::{Digest, Sha256};

pub use error::{JwkError, KeyError};
pub use jwks::{JwksStore, RemoteJwks};

/// HMAC secrets shorter than this are refused: below 256 bits they can be
/// brute-forced offline from a single token.
pub const MIN_HMAC_SECRET: usize = 32;

/// Secret bytes. `Debug` never shows them, so a secret cannot leak through
/// an error or a log line that formats the config.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

pub struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// Kept for HS keys only, so that `ssogate mint` can sign with them.
    pub hmac_secret: Option<Secret>,
    verifier: Verifier,
}

/// How a key checks a signature. A public key is parsed once, when it is
/// loaded: through jsonwebtoken, aws-lc decodes the DER and rebuilds the
/// key for every signature, which cost more than the RSA operation itself
/// (`openssl speed`, which keeps its key, checked 2.6 times as many
/// signatures a second on one core).
enum Verifier {
    /// HMAC, through jsonwebtoken: there is nothing to parse.
    Hmac,
    Public(ParsedPublicKey),
}

impl Verifier {
    fn for_key(alg: Algorithm, key: &DecodingKey) -> Result<Self, KeyError> {
        let rsa = |params: &'static RsaParameters| -> Result<Self, KeyError> {
            let parsed = match key.kind() {
                DecodingKeyKind::SecretOrDer(der) => ParsedPublicKey::new(params, der),
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
                }
            };
            parsed
                .map(Verifier::Public)
                .map_err(|e| KeyError::Unparsable(e.to_string()))
        };
        let der = |algorithm: &'static dyn VerificationAlgorithm| -> Result<Self, KeyError> {
            match key.kind() {
                DecodingKeyKind::SecretOrDer(der) => ParsedPublicKey::new(algorithm, der)
                    .map(Verifier::Public)
                    .map_err(|e| KeyError::Unparsable(e.to_string())),
                DecodingKeyKind::RsaModulusExponent { .. } => Err(KeyError::Unparsable(
                    "an RSA key for a non-RSA algorithm".into(),
                )),
            }
        };
        match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(Verifier::Hmac),
            Algorithm::RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512),
            Algorithm::ES256 => der(&sig::ECDSA_P256_SHA256_FIXED),
            Algorithm::ES384 => der(&sig::ECDSA_P384_SHA384_FIXED),
            Algorithm::EdDSA => der(&sig::ED25519),
            // Algorithm is non-exhaustive: one ssogate does not know yet
            // never verifies anything.
            other => Err(KeyError::UnknownAlg(format!("{other:?}"))),
        }
    }
}

/// A signature that is not base64url at all: the token is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedSignature;

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
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

/// Collects the keys of one organization, and a digest of the material
/// they were read from so that cached validations die when a key changes.
#[derive(Debug, Default)]
pub struct KeySetBuilder {
    keys: Vec<VerifyKey>,
    remotes: Vec<Arc<RemoteJwks>>,
    digest: Sha256,
}

impl KeySetBuilder {
    /// Keys read from `material` (the bytes of a secret, a file); `alg` and
    /// `kid` are those the config gave them.
    pub fn add(
        &mut self,
        keys: impl IntoIterator<Item = VerifyKey>,
        alg: Algorithm,
        kid: Option<&str>,
        material: &[u8],
    ) {
        self.digest
            .update(format!("{alg:?}/{}/{}:", kid.unwrap_or(""), material.len()));
        self.digest.update(material);
        self.keys.extend(keys);
    }

    /// A key set fetched from a URL: its version comes from its fetches.
    pub fn add_remote(&mut self, remote: Arc<RemoteJwks>) {
        self.remotes.push(remote);
    }

    pub fn build(self) -> KeySet {
        let digest = self.digest.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        KeySet {
            keys: self.keys,
            remotes: self.remotes,
            fingerprint: u64::from_le_bytes(first),
        }
    }
}

impl KeySet {
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

/// Parses the algorithm names of RFC 7518 exactly as written; `none` in any
/// spelling is refused outright.
pub fn parse_alg(name: &str) -> Result<Algorithm, KeyError> {
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
        other if other.eq_ignore_ascii_case("none") => return Err(KeyError::AlgNone),
        other => return Err(KeyError::UnknownAlg(other.to_owned())),
    };
    Ok(alg)
}

pub fn is_hmac(alg: Algorithm) -> bool {
    alg.family() == AlgorithmFamily::Hmac
}

/// What can verify tokens of an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    SharedSecret,
    PublicKey,
}

/// Refuses material that cannot verify `alg` (a shared secret for an
/// asymmetric algorithm, a public key for HMAC), so that a caller can say
/// so before it reads any.
pub fn check_material(alg: Algorithm, material: Material) -> Result<(), KeyError> {
    match (is_hmac(alg), material) {
        (true, Material::SharedSecret) | (false, Material::PublicKey) => Ok(()),
        (true, Material::PublicKey) => Err(KeyError::NeedsSharedSecret(alg)),
        (false, Material::SharedSecret) => Err(KeyError::NeedsPublicKey(alg)),
    }
}

/// A public key read from a PEM file or a keystore.
pub struct PublicKey {
    pub key: VerifyKey,
    /// The certificate's subject, when the key came from one.
    pub subject: Option<String>,
}

impl VerifyKey {
    /// An HMAC key, from a secret of at least [`MIN_HMAC_SECRET`] bytes.
    pub fn hmac(alg: Algorithm, kid: Option<String>, secret: Secret) -> Result<Self, KeyError> {
        check_material(alg, Material::SharedSecret)?;
        if secret.len() < MIN_HMAC_SECRET {
            return Err(KeyError::HmacSecretTooShort(secret.len()));
        }
        Ok(VerifyKey {
            kid,
            alg,
            key: DecodingKey::from_secret(secret.expose()),
            hmac_secret: Some(secret),
            verifier: Verifier::Hmac,
        })
    }

    /// The first `PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE` block of a
    /// PEM file, checked against `alg`. A certificate must be valid now
    /// unless `allow_expired`.
    pub fn from_pem(
        alg: Algorithm,
        kid: Option<String>,
        pem: &[u8],
        allow_expired: bool,
    ) -> Result<PublicKey, KeyError> {
        check_material(alg, Material::PublicKey)?;
        let found = spki::from_pem(alg, pem, allow_expired)?;
        PublicKey::new(alg, kid, found)
    }

    /// The certificate's public key under `alias` of a PKCS#12 store (the
    /// only entry when no alias is given), checked like [`Self::from_pem`].
    pub fn from_pkcs12(
        alg: Algorithm,
        kid: Option<String>,
        data: &[u8],
        password: &str,
        alias: Option<&str>,
        allow_expired: bool,
    ) -> Result<PublicKey, KeyError> {
        check_material(alg, Material::PublicKey)?;
        let found = pkcs12::public_key(alg, data, password, alias, allow_expired)?;
        PublicKey::new(alg, kid, found)
    }

    /// A public key, parsed for `alg` now rather than for every token.
    pub fn public(alg: Algorithm, kid: Option<String>, key: DecodingKey) -> Result<Self, KeyError> {
        let verifier = Verifier::for_key(alg, &key)?;
        Ok(VerifyKey {
            kid,
            alg,
            key,
            hmac_secret: None,
            verifier,
        })
    }

    /// Whether `signature_b64` (base64url, as the token carries it) signs
    /// `message` under this key.
    pub fn verify(&self, signature_b64: &str, message: &[u8]) -> Result<bool, MalformedSignature> {
        match &self.verifier {
            Verifier::Hmac => {
                match jsonwebtoken::crypto::verify(signature_b64, message, &self.key, self.alg) {
                    Ok(valid) => Ok(valid),
                    Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Base64(_)) => {
                        Err(MalformedSignature)
                    }
                    Err(_) => Ok(false),
                }
            }
            Verifier::Public(key) => {
                // Large enough for RSA-8192, the largest aws-lc verifies.
                let mut signature = [0u8; 1024];
                match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature) {
                    Ok(len) => Ok(key.verify_sig(message, &signature[..len]).is_ok()),
                    Err(DecodeSliceError::OutputSliceTooSmall) => Ok(false),
                    Err(DecodeSliceError::DecodeError(_)) => Err(MalformedSignature),
                }
            }
        }
    }

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

impl PublicKey {
    fn new(alg: Algorithm, kid: Option<String>, found: spki::Found) -> Result<Self, KeyError> {
        Ok(PublicKey {
            key: VerifyKey::public(alg, kid, found.key)?,
            subject: found.subject,
        })
    }
}

/// An encoding key for `ssogate mint --key`, matched to the org's algorithm.
pub fn encoding_key_from_pem(alg: Algorithm, pem: &[u8]) -> Result<EncodingKey, KeyError> {
    let result = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err(KeyError::HmacPrivateKey),
    };
    result.map_err(KeyError::PrivateKey)
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
        assert!(matches!(parse_alg("HS256"), Ok(Algorithm::HS256)));
    }

    fn hs(kid: Option<&str>, alg: Algorithm) -> VerifyKey {
        VerifyKey {
            kid: kid.map(str::to_owned),
            alg,
            key: DecodingKey::from_secret(b"x"),
            hmac_secret: None,
            verifier: Verifier::Hmac,
        }
    }

    #[test]
    fn kid_selects_among_keys_of_the_token_alg() {
        let mut builder = KeySetBuilder::default();
        builder.add(
            [
                hs(Some("a"), Algorithm::HS256),
                hs(None, Algorithm::HS256),
                hs(Some("b"), Algorithm::HS512),
            ],
            Algorithm::HS256,
            None,
            b"",
        );
        let set = builder.build();
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
