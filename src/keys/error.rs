//! Why key material was refused. The messages name the problem in the
//! operator's terms; the caller adds where the material came from (the YAML
//! path and file of a config key, `--key` for `ssogate mint`).

use jsonwebtoken::Algorithm;

use super::spki::MIN_RSA_BITS;
use super::MIN_HMAC_SECRET;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("alg `none` is never accepted")]
    AlgNone,
    #[error("unknown algorithm `{0}`")]
    UnknownAlg(String),
    /// An asymmetric algorithm given a shared secret.
    #[error("{0:?} needs a public key, not a shared secret")]
    NeedsPublicKey(Algorithm),
    /// An HMAC algorithm given a public key.
    #[error("{0:?} takes a shared secret (secret_file), not a public key")]
    NeedsSharedSecret(Algorithm),
    #[error("an HMAC secret needs at least {MIN_HMAC_SECRET} bytes, this one has {0}")]
    HmacSecretTooShort(usize),

    #[error("not a PEM file ({0})")]
    NotPem(String),
    #[error("no PUBLIC KEY or CERTIFICATE block")]
    NoPublicKeyBlock,
    #[error("bad public key: {0}")]
    BadPublicKey(String),
    #[error("malformed RSA key")]
    MalformedRsa,
    #[error("RSA key of {0} bits; at least {MIN_RSA_BITS} are required")]
    RsaTooSmall(usize),
    #[error("an RSA key cannot verify {0:?}")]
    NotRsaAlg(Algorithm),
    /// `kind` is "an RSA" or "an EC"; `found` the key's algorithm OID.
    #[error("{alg:?} needs {kind} key, this is {found}")]
    WrongKeyType {
        alg: Algorithm,
        kind: &'static str,
        found: String,
    },
    #[error("{alg:?} needs a key on curve {curve}")]
    WrongCurve { alg: Algorithm, curve: String },
    #[error("EdDSA needs an Ed25519 key")]
    NotEd25519,
    #[error("HMAC keys take a secret, not a public key")]
    HmacPublicKey,
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// Read as a key, but refused by the verifier that would use it.
    #[error("the key cannot be used for verification ({0})")]
    Unparsable(String),
    #[error(
        "certificate `{subject}` is not valid now (valid {not_before} to {not_after}); renew it, or set allow_expired_certificate: true"
    )]
    CertificateNotValidNow {
        subject: String,
        not_before: String,
        not_after: String,
    },

    #[error("cannot open the keystore (wrong password, or not a PKCS#12 file): {0}")]
    KeystoreUnreadable(String),
    #[error("no entry with alias `{alias}`; the keystore has {aliases}")]
    NoSuchAlias { alias: String, aliases: String },
    #[error("the keystore is empty")]
    KeystoreEmpty,
    #[error("give `alias`: the keystore has {0}")]
    AliasNeeded(String),
    #[error("the key entry has no certificate")]
    NoCertificateInEntry,
    #[error("the entry is a secret key, not a certificate")]
    SecretKeyEntry,

    #[error("not a JWKS document: {0}")]
    NotJwks(serde_json::Error),
    /// `skipped` says, key by key, why each one was unusable.
    #[error("the JWKS has no usable key ({})", no_usable_key(.skipped))]
    NoUsableJwk { skipped: Vec<(usize, JwkError)> },
    #[error("{0}")]
    Fetch(Box<ureq::Error>),
    #[error("{0}")]
    FetchBody(std::io::Error),

    #[error("HMAC keys are signed with the org's secret, not --key")]
    HmacPrivateKey,
    #[error("{0}")]
    PrivateKey(jsonwebtoken::errors::Error),
}

/// Why one entry of a JWKS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    #[error("{0}")]
    NotAJwk(serde_json::Error),
    #[error("bad RSA modulus")]
    BadRsaModulus,
    #[error("RSA key of {0} bits is too small")]
    RsaTooSmall(usize),
    #[error("{0}")]
    Unusable(jsonwebtoken::errors::Error),
    #[error("{0}")]
    Unparsable(KeyError),
}

fn no_usable_key(skipped: &[(usize, JwkError)]) -> String {
    if skipped.is_empty() {
        return "no signing keys".to_owned();
    }
    skipped
        .iter()
        .map(|(i, e)| format!("keys[{i}]: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}
