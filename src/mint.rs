//! `ssogate mint`: a token the org would accept, for tests and demos.

use std::path::Path;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::keys;

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no organization is named `{0}`")]
    UnknownOrg(String),
    #[error("--claim `{0}` is not of the form name=value")]
    BadClaim(String),
    #[error("organization `{0}` has no HMAC key; give its private key with --key")]
    NoHmacKey(String),
    #[error("cannot read --key {0}: {1}")]
    ReadKey(String, std::io::Error),
    #[error("--key does not fit any key of organization `{0}` ({1})")]
    KeyMismatch(String, String),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

pub struct MintRequest<'a> {
    pub org: &'a str,
    pub sub: Option<&'a str>,
    pub claims: &'a [String],
    pub ttl_secs: u64,
    pub key: Option<&'a Path>,
}

pub fn mint(config: &Config, req: &MintRequest, now: i64) -> Result<String, MintError> {
    let org = config
        .org(req.org)
        .ok_or_else(|| MintError::UnknownOrg(req.org.to_owned()))?;
    let mut claims = Map::new();
    claims.insert(
        org.principal_claim.clone(),
        Value::from(req.sub.unwrap_or("user")),
    );
    for pair in req.claims {
        let (name, value) = pair
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| MintError::BadClaim(pair.clone()))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        claims.insert(name.to_owned(), value);
    }
    if let Some(org_claim) = &org.org_claim {
        claims.insert(org_claim.clone(), Value::from(org.name.clone()));
    }
    if let Some(issuer) = &org.issuer {
        claims
            .entry("iss")
            .or_insert_with(|| Value::from(issuer.clone()));
    }
    if let Some(aud) = org.audience.first() {
        claims
            .entry("aud")
            .or_insert_with(|| Value::from(aud.clone()));
    }
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + req.ttl_secs as i64));
    claims.insert("jti".into(), Value::from(crate::session::random_id()));

    let (header, key) = match req.key {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| MintError::ReadKey(path.display().to_string(), e))?;
            // The org key this private key belongs to: the one that verifies
            // what it signs (several keys of one family during a rotation).
            let mut last_error = "no asymmetric key configured".to_owned();
            let found = org
                .keys
                .iter()
                .filter(|k| !keys::is_hmac(k.alg))
                .find_map(|k| {
                    let signing = keys::encoding_key_from_pem(k.alg, &pem)
                        .map_err(|e| e.to_string())
                        .and_then(|enc| {
                            if signs_for(k, &enc) {
                                Ok(enc)
                            } else {
                                Err(format!(
                                    "the private key does not belong to the {:?} key",
                                    k.alg
                                ))
                            }
                        });
                    match signing {
                        Ok(enc) => Some((header_for(k), enc)),
                        Err(e) => {
                            last_error = e;
                            None
                        }
                    }
                });
            found.ok_or_else(|| MintError::KeyMismatch(org.name.clone(), last_error))?
        }
        None => {
            let k = org
                .keys
                .first_hmac()
                .ok_or_else(|| MintError::NoHmacKey(org.name.clone()))?;
            let secret = k
                .hmac_secret
                .as_ref()
                .map(|s| s.expose())
                .unwrap_or_default();
            (header_for(k), EncodingKey::from_secret(secret))
        }
    };
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

fn signs_for(key: &keys::VerifyKey, signing: &EncodingKey) -> bool {
    const PROBE: &[u8] = b"ssogate-mint-probe";
    jsonwebtoken::crypto::sign(PROBE, signing, key.alg)
        .and_then(|sig| jsonwebtoken::crypto::verify(&sig, PROBE, &key.key, key.alg))
        .unwrap_or(false)
}

fn header_for(key: &keys::VerifyKey) -> Header {
    let mut header = Header::new(key.alg);
    header.kid = key.kid.clone();
    header
}
