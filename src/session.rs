//! The session: who the user is, sealed (AES-256-GCM, authenticated) into a
//! cookie with a key derived from the session secret, so any replica with the
//! same secret can open it and nobody without it can read or forge it.

use cookie::{Cookie, CookieJar, Key};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::SessionSettings;

/// Browsers drop cookies over 4096 bytes; a session that would not fit is
/// refused rather than silently lost or split.
pub const MAX_COOKIE_BYTES: usize = 4000;

/// An authenticated user: from a session cookie, or from a Bearer token
/// (then `session_id` is empty and `expires_at` is the token's `exp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "o")]
    pub org: String,
    #[serde(rename = "p")]
    pub principal: String,
    /// Only the claims identity headers read.
    #[serde(rename = "c", default)]
    pub claims: Claims,
    #[serde(rename = "i")]
    pub issued_at: i64,
    #[serde(rename = "e")]
    pub expires_at: i64,
    #[serde(rename = "s", default)]
    pub session_id: String,
}

impl Identity {
    /// A claim as a header value: arrays joined with `,`.
    pub fn claim_text(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::Array(items) => {
                Some(items.iter().map(scalar_text).collect::<Vec<_>>().join(","))
            }
            other => Some(scalar_text(other)),
        }
    }
}

/// The claims a session keeps: only those identity headers read (SPEC 5),
/// a handful at most, in name order. One exact-size slice rather than a
/// map: an identity may sit in the validated-session cache a million times
/// over, and a B-tree node per identity weighed more than all the rest of
/// it. On the wire (the cookie, whoami) it is a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims(Box<[(Box<str>, Value)]>);

impl Claims {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| **n == *name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (&**n, v))
    }
}

/// Like a map's inserts: the last value given for a name wins.
impl FromIterator<(String, Value)> for Claims {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(claims: I) -> Self {
        let mut all: Vec<(Box<str>, Value)> = claims
            .into_iter()
            .map(|(n, v)| (n.into_boxed_str(), v))
            .collect();
        all.reverse();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.dedup_by(|later, kept| later.0 == kept.0);
        Claims(all.into_boxed_slice())
    }
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Claims;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of claims")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Claims, A::Error> {
                let mut claims = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    claims.push(entry);
                }
                Ok(claims.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Object)
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Encrypts `plaintext` for the cookie `name`; the name is authenticated
/// too, so a state cookie can never be replayed as a session cookie.
pub fn seal(key: &Key, name: &str, plaintext: String) -> Result<String, SealError> {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new(name.to_owned(), plaintext));
    // The jar hands back what it encrypts only through a lookup.
    jar.get(name)
        .map(|c| c.value().to_owned())
        .ok_or(SealError::Seal)
}

pub fn open(key: &Key, name: &str, sealed: &str) -> Option<String> {
    CookieJar::new()
        .private(key)
        .decrypt(Cookie::new(name.to_owned(), sealed.to_owned()))
        .map(|c| c.value().to_owned())
}

pub fn seal_json<T: Serialize>(key: &Key, name: &str, value: &T) -> Result<String, SealError> {
    seal(key, name, serde_json::to_string(value)?)
}

pub fn open_json<T: for<'de> Deserialize<'de>>(key: &Key, name: &str, sealed: &str) -> Option<T> {
    serde_json::from_str(&open(key, name, sealed)?).ok()
}

/// Every value of cookie `name` in the request's `Cookie` headers (HTTP/2
/// may send several headers; a browser may send the same name twice).
pub fn cookie_values<'a>(
    headers: &'a http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v.trim_matches('"'))
        })
}

/// The `Set-Cookie` value for a sealed cookie living `max_age` seconds, with
/// the attributes that let it work inside a cross-site iframe (`SameSite=None;
/// Partitioned`) or, for plain-http development, `SameSite=Lax`.
pub fn set_cookie(settings: &SessionSettings, name: &str, value: &str, max_age: u64) -> String {
    if settings.secure {
        format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned")
    } else {
        format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax")
    }
}

pub fn clear_cookie(settings: &SessionSettings, name: &str) -> String {
    set_cookie(settings, name, "", 0)
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the session does not fit in a cookie ({0} bytes); map fewer or shorter claims")]
    TooLarge(usize),
    #[error("the value could not be sealed")]
    Seal,
    #[error("the value could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(
    settings: &SessionSettings,
    identity: &Identity,
) -> Result<String, SealError> {
    let name = &settings.cookie_name;
    let sealed = seal_json(&settings.key, name, identity)?;
    let max_age = identity
        .expires_at
        .saturating_sub(identity.issued_at)
        .max(0) as u64;
    let header = set_cookie(settings, name, &sealed, max_age);
    if header.len() > MAX_COOKIE_BYTES {
        return Err(SealError::TooLarge(header.len()));
    }
    Ok(header)
}

/// Opens the request's session cookie, if any value of it opens and has not
/// expired. Which org it may serve is the caller's check.
pub fn read_session(
    settings: &SessionSettings,
    headers: &http::HeaderMap,
    now: i64,
) -> Option<Identity> {
    cookie_values(headers, &settings.cookie_name)
        .filter_map(|v| open_json::<Identity>(&settings.key, &settings.cookie_name, v))
        .find(|id| id.expires_at > now && !id.session_id.is_empty())
}

/// A random, URL-safe identifier (128 bits).
pub fn random_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secure: bool) -> SessionSettings {
        SessionSettings {
            key: Key::derive_from(&[7u8; 32]),
            cookie_name: "ssogate_session".into(),
            state_cookie_name: "ssogate_session_state".into(),
            ttl: 900,
            secure,
            cache_max_entries: 10,
            fingerprint: 1,
        }
    }

    fn identity() -> Identity {
        let claims = [
            ("groups".to_owned(), serde_json::json!(["a", "b"])),
            ("email".to_owned(), "a@x".into()),
        ];
        Identity {
            org: "acme".into(),
            principal: "alice".into(),
            claims: claims.into_iter().collect(),
            issued_at: 100,
            expires_at: 1000,
            session_id: "sid-1".into(),
        }
    }

    #[test]
    fn claims_are_an_object_in_name_order_and_the_last_value_wins() -> Result<(), serde_json::Error>
    {
        let claims: Claims = [
            ("b".to_owned(), Value::from(1)),
            ("a".to_owned(), Value::from("x")),
            ("b".to_owned(), Value::from(2)),
        ]
        .into_iter()
        .collect();
        assert_eq!(serde_json::to_string(&claims)?, r#"{"a":"x","b":2}"#);
        assert_eq!(claims.get("b"), Some(&Value::from(2)));
        assert_eq!(claims.get("c"), None);
        let back: Claims = serde_json::from_str(r#"{"b":2,"a":"x"}"#)?;
        assert_eq!(back, claims);
        Ok(())
    }

    #[test]
    fn sealed_session_round_trips_and_resists_tampering() -> Result<(), Box<dyn std::error::Error>>
    {
        let s = settings(false);
        let header = session_cookie(&s, &identity())?;
        assert!(header.ends_with("; Max-Age=900; Path=/; HttpOnly; SameSite=Lax"));
        let value = header.split(';').next().unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value.parse()?);
        assert_eq!(read_session(&s, &headers, 500), Some(identity()));
        assert_eq!(read_session(&s, &headers, 1000), None, "expired");

        let mut tampered = value.to_owned();
        let last = tampered.pop().ok_or("empty cookie")?;
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        headers.insert(http::header::COOKIE, tampered.parse()?);
        assert_eq!(read_session(&s, &headers, 500), None);
        Ok(())
    }

    #[test]
    fn a_sealed_value_only_opens_under_its_own_name() -> Result<(), Box<dyn std::error::Error>> {
        let key = Key::derive_from(&[1u8; 32]);
        let sealed = seal(&key, "a", "x".into())?;
        assert_eq!(open(&key, "a", &sealed).as_deref(), Some("x"));
        assert_eq!(open(&key, "b", &sealed), None);
        Ok(())
    }

    #[test]
    fn arrays_are_joined_for_headers() {
        assert_eq!(identity().claim_text("groups").as_deref(), Some("a,b"));
        assert_eq!(identity().claim_text("email").as_deref(), Some("a@x"));
        assert_eq!(identity().claim_text("nope"), None);
    }

    #[test]
    fn secure_cookies_work_in_iframes() {
        let header = set_cookie(&settings(true), "__Host-ssogate", "v", 60);
        assert_eq!(
            header,
            "__Host-ssogate=v; Max-Age=60; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
        );
    }
}
