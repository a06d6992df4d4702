//! JWT validation policy (SPEC 7). The signature is checked with the one
//! algorithm its key pins; every time claim is checked here, by hand, so
//! that each refusal has a precise reason and a number that is not a number
//! can never pass as one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{Config, Org};
use crate::keys::parse_alg;
use crate::metrics::AuthResult;
use crate::session::{Claims, Identity};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused; each maps to one `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is malformed")]
    Malformed,
    #[error("no configured key verifies the token")]
    BadSignature,
    #[error("no configured key has the token's kid")]
    UnknownKid,
    #[error("the token has expired")]
    Expired,
    #[error("the token's claims are not acceptable")]
    BadClaims,
    #[error("the organization is disabled")]
    Disabled,
}

impl Rejection {
    pub fn result(self) -> AuthResult {
        match self {
            Rejection::Malformed => AuthResult::Malformed,
            Rejection::BadSignature | Rejection::UnknownKid => AuthResult::BadSignature,
            Rejection::Expired => AuthResult::Expired,
            Rejection::BadClaims => AuthResult::BadClaims,
            Rejection::Disabled => AuthResult::Disabled,
        }
    }
}

/// How the token reached ssogate. Tokens in URLs end up in browser history
/// and proxy logs, so they must be fresh (`max_token_age`) and, when they
/// carry a `jti`, are accepted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Url,
    Header,
}

/// A token that passed every check but the replay check, which needs the
/// (possibly remote) replay store.
#[derive(Debug)]
pub struct Verified {
    pub identity: Identity,
    /// Its `jti`, to be spent in the replay store when delivered by URL.
    pub jti: Option<String>,
    /// Its `exp`: how long the replay store must remember the `jti`.
    pub exp: i64,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    // Critical extensions must be understood or the token refused
    // (RFC 7515 4.1.11); ssogate understands none.
    crit: Option<Value>,
}

/// What a token is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub org: &'a Org,
    /// The claims identity headers read (`Config::mapped_claims`).
    pub mapped_claims: &'a [String],
    /// Unix seconds.
    pub now: i64,
    pub delivery: Delivery,
    /// Lifetime of the session a URL-delivered token creates; a Bearer
    /// identity lives until the token's `exp`.
    pub session_ttl: u64,
}

impl<'a> Policy<'a> {
    pub fn new(org: &'a Org, config: &'a Config, now: i64, delivery: Delivery) -> Self {
        Policy {
            org,
            mapped_claims: &config.mapped_claims,
            now,
            delivery,
            session_ttl: org.session_ttl,
        }
    }
}

/// Verifies `token` under `policy`.
pub fn verify(token: &str, policy: &Policy) -> Result<Verified, Rejection> {
    let Policy {
        org, now, delivery, ..
    } = *policy;
    if !org.enabled {
        return Err(Rejection::Disabled);
    }
    let claims = verify_signature(token, org)?;
    let times = check_times(&claims, org, now, delivery)?;
    check_audience(&claims, org)?;
    check_org(&claims, org)?;
    let principal = principal(&claims, &org.principal_claim)?;
    let mapped = mapped_claims(&claims, policy.mapped_claims)?;
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => Some(j.clone()),
        Some(_) => return Err(Rejection::BadClaims),
    };
    let expires_at = match delivery {
        Delivery::Header => times.exp,
        Delivery::Url => now.saturating_add(policy.session_ttl as i64),
    };
    Ok(Verified {
        identity: Identity {
            org: org.name.clone(),
            principal,
            claims: mapped,
            issued_at: now,
            expires_at,
            session_id: String::new(),
        },
        jti,
        exp: times.exp,
    })
}

/// [`verify`], and when the token names a `kid` no key has, one refetch of
/// the org's remote key sets (rate-limited there) before the verdict: this is
/// how an IdP's key rotation is picked up without a failed login.
pub async fn verify_fresh(token: &str, policy: &Policy<'_>) -> Result<Verified, Rejection> {
    let remotes = policy.org.keys.remotes();
    match verify(token, policy) {
        Err(Rejection::UnknownKid) if !remotes.is_empty() => {
            let mut refreshed = false;
            for remote in remotes {
                refreshed |= remote.refetch_for_unknown_kid().await;
            }
            if refreshed {
                verify(token, policy)
            } else {
                Err(Rejection::UnknownKid)
            }
        }
        result => result,
    }
}

/// Checks the signature and returns the payload's claims.
fn verify_signature(token: &str, org: &Org) -> Result<Map<String, Value>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: JoseHeader = decode_json(header_b64)?;
    if header.crit.is_some() {
        return Err(Rejection::Malformed);
    }
    let alg = parse_alg(&header.alg).map_err(|_| Rejection::Malformed)?;
    if signature_b64.is_empty() {
        return Err(Rejection::Malformed);
    }
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    let verdict = org.keys.find_candidate(header.kid.as_deref(), alg, |key| {
        match key.verify(signature_b64, signing_input.as_bytes()) {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(_) => Some(Err(Rejection::Malformed)),
        }
    });
    match verdict {
        Some(Ok(())) => {}
        Some(Err(rejection)) => return Err(rejection),
        None => {
            let unknown = header
                .kid
                .as_deref()
                .is_some_and(|kid| !org.keys.knows_kid(kid));
            return Err(if unknown {
                Rejection::UnknownKid
            } else {
                Rejection::BadSignature
            });
        }
    }
    let StrictObject(claims) = decode_json(payload_b64)?;
    Ok(claims)
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

struct Times {
    exp: i64,
}

fn check_times(
    claims: &Map<String, Value>,
    org: &Org,
    now: i64,
    delivery: Delivery,
) -> Result<Times, Rejection> {
    let leeway = org.leeway as i64;
    let exp = numeric_date(claims, "exp")?.ok_or(Rejection::BadClaims)?;
    if now > exp.saturating_add(leeway) {
        return Err(Rejection::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now.saturating_add(leeway) < nbf {
            return Err(Rejection::BadClaims);
        }
    }
    let iat = numeric_date(claims, "iat")?;
    if let Some(iat) = iat {
        if iat > now.saturating_add(leeway) {
            return Err(Rejection::BadClaims);
        }
    }
    if delivery == Delivery::Url {
        let iat = iat.ok_or(Rejection::BadClaims)?;
        if now.saturating_sub(iat) > (org.max_token_age + org.leeway) as i64 {
            return Err(Rejection::Expired);
        }
    }
    Ok(Times { exp })
}

/// A NumericDate must be a JSON number; `"9999999999"` is refused.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(Rejection::BadClaims),
        Some(_) => Err(Rejection::BadClaims),
    }
}

fn check_audience(claims: &Map<String, Value>, org: &Org) -> Result<(), Rejection> {
    if let Some(issuer) = &org.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(Rejection::BadClaims);
        }
    }
    if org.audience.is_empty() {
        return Ok(());
    }
    let accepted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| org.audience.iter().any(|want| want == a))
    };
    let ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::BadClaims)
    }
}

/// An explicit org in the token must be the org the request routed to.
fn check_org(claims: &Map<String, Value>, org: &Org) -> Result<(), Rejection> {
    let Some(name) = &org.org_claim else {
        return Ok(());
    };
    match claims.get(name) {
        None => Ok(()),
        Some(Value::String(s)) if *s == org.name => Ok(()),
        Some(_) => Err(Rejection::BadClaims),
    }
}

fn principal(claims: &Map<String, Value>, claim: &str) -> Result<String, Rejection> {
    let value = match claims.get(claim) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(Rejection::BadClaims),
    };
    if value.is_empty() || value.len() > 1024 || has_control(&value) {
        return Err(Rejection::BadClaims);
    }
    Ok(value)
}

/// The mapped claims, checked to be header-safe: strings, numbers, booleans
/// or arrays of those, none holding a control character.
fn mapped_claims(claims: &Map<String, Value>, names: &[String]) -> Result<Claims, Rejection> {
    let mut out = Vec::new();
    for name in names {
        let Some(value) = claims.get(name) else {
            continue;
        };
        let ok = match value {
            Value::Array(items) => items.iter().all(is_header_scalar),
            other => is_header_scalar(other),
        };
        if !ok {
            return Err(Rejection::BadClaims);
        }
        out.push((name.clone(), value.clone()));
    }
    Ok(out.into_iter().collect())
}

fn is_header_scalar(value: &Value) -> bool {
    match value {
        Value::String(s) => !has_control(s),
        Value::Number(_) | Value::Bool(_) => true,
        _ => false,
    }
}

/// Below 0x20 (TAB included) or DEL: never allowed in a header value.
pub fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// A JSON object that refuses duplicate keys: two parsers reading the same
/// token must never disagree about who the user is.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Peeks at a token's payload, without verifying it, to learn which org it
/// claims to belong to. Only ever used to choose the org whose keys then
/// verify the token for real.
pub fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let StrictObject(map) = decode_json(payload).ok()?;
    map.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_claims_are_malformed() {
        let part = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","sub":"b"}"#);
        assert!(decode_json::<StrictObject>(&part).is_err());
        let part = URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
        assert!(decode_json::<StrictObject>(&part).is_ok());
    }

    #[test]
    fn numeric_dates_must_be_numbers() -> Result<(), serde_json::Error> {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"a": 5, "b": "5", "c": 5.7, "d": null}"#)?;
        assert_eq!(numeric_date(&claims, "a"), Ok(Some(5)));
        assert_eq!(numeric_date(&claims, "b"), Err(Rejection::BadClaims));
        assert_eq!(numeric_date(&claims, "c"), Ok(Some(5)));
        assert_eq!(numeric_date(&claims, "d"), Err(Rejection::BadClaims));
        assert_eq!(numeric_date(&claims, "e"), Ok(None));
        Ok(())
    }
}
