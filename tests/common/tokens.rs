//! JWTs: standard claims, tokens signed through jsonwebtoken, and hostile ones built from raw
//! header and payload text.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{json, Value};

use super::{b64url, now, random_id};

/// Standard, valid claims for a URL-delivered token: sub, email, groups, iat=now, exp=now+300,
/// a random jti.
pub fn claims(sub: &str) -> Value {
    let n = now();
    json!({
        "sub": sub,
        "email": format!("{sub}@example.test"),
        "groups": ["dev", "ops"],
        "iat": n,
        "exp": n + 300,
        "jti": random_id(),
    })
}

/// `claims(sub)` with `extra`'s keys merged in (a `null` value removes the key).
pub fn claims_with(sub: &str, extra: Value) -> Value {
    let mut c = claims(sub);
    let m = c.as_object_mut().unwrap();
    for (k, v) in extra.as_object().expect("extra must be an object") {
        if v.is_null() {
            m.remove(k);
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    c
}

/// An acme token for `sub` (`claims(sub)` + orgId), signed with `secret`.
pub fn acme_token(secret: &[u8], sub: &str) -> String {
    hs256(secret, &claims_with(sub, json!({"orgId": "acme"})))
}

/// The key for `alg`: a PEM private key, or the raw secret for HS*.
fn encoding_key(alg: Algorithm, key: &[u8]) -> EncodingKey {
    match alg.family() {
        AlgorithmFamily::Hmac => EncodingKey::from_secret(key),
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(key).expect("RSA private key PEM"),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(key).expect("EC private key PEM"),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(key).expect("Ed25519 private key PEM"),
    }
}

/// A token signed with `alg` and `key` (a PEM private key, or the secret for HS*), `typ: JWT`,
/// optional `kid`.
pub fn sign(alg: Algorithm, key: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &encoding_key(alg, key)).expect("sign token")
}

/// An HS256 token signed with `secret`.
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    sign(Algorithm::HS256, secret, None, claims)
}

/// A token from raw header / payload JSON text, signed with `alg` and `key`.
pub fn sign_raw(header_json: &str, payload_json: &str, alg: Algorithm, key: &[u8]) -> String {
    let (h, p) = (header_json.as_bytes(), payload_json.as_bytes());
    sign_parts(&b64url(h), &b64url(p), alg, key)
}

/// Sign `h_b64.p_b64` (already-encoded parts, may be garbage) with `alg` and `key`.
pub fn sign_parts(h_b64: &str, p_b64: &str, alg: Algorithm, key: &[u8]) -> String {
    let msg = format!("{h_b64}.{p_b64}");
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &encoding_key(alg, key), alg)
        .expect("sign raw token");
    format!("{msg}.{sig}")
}

/// A token from arbitrary header / payload JSON with an empty signature (`alg: none` style).
pub fn unsigned_jwt(header_json: &str, payload_json: &str) -> String {
    let (h, p) = (header_json.as_bytes(), payload_json.as_bytes());
    format!("{}.{}.", b64url(h), b64url(p))
}

/// The decoded JSON of part `i` (0 header, 1 payload) of a token.
pub fn token_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("token part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url part");
    serde_json::from_slice(&bytes).expect("JSON part")
}
