//! JSON Web Key Sets, from a file or from an IdP's URL. A URL is fetched at
//! load and every `refresh`; when the IdP is unreachable the last good set
//! keeps serving, also across config reloads (see [`JwksStore`]). An unknown
//! `kid` may trigger one early refetch a minute. Fetches run off the request
//! path, never concurrently for one URL, and never while a request holds a
//! lock.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{parse_alg, JwkError, KeyError, VerifyKey};

/// An unknown `kid` refetches at most this often.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, try again this soon (not a whole `refresh` later).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// How long a request waits for a refetch its unknown `kid` started.
const UNKNOWN_KID_WAIT: Duration = Duration::from_secs(3);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// Parses a JWKS document. Keys ssogate cannot or must not use (encryption
/// keys, symmetric keys, unsupported curves, another `alg` than the pinned
/// one) are skipped; a set with no usable key is an error.
pub fn parse(json: &[u8], pinned: Option<Algorithm>) -> Result<Vec<VerifyKey>, KeyError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(json).map_err(KeyError::NotJwks)?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in set.keys.into_iter().enumerate() {
        match serde_json::from_value::<Jwk>(raw)
            .map_err(JwkError::NotAJwk)
            .and_then(|jwk| key_from_jwk(&jwk, pinned))
        {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(e) => skipped.push((i, e)),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoUsableJwk { skipped });
    }
    Ok(keys)
}

fn key_from_jwk(jwk: &Jwk, pinned: Option<Algorithm>) -> Result<Option<VerifyKey>, JwkError> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Ok(None);
    }
    let natural = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| JwkError::BadRsaModulus)?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < super::spki::MIN_RSA_BITS {
                return Err(JwkError::RsaTooSmall(bits));
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Ok(None),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        // A shared secret published in a key set is no secret.
        _ => return Ok(None),
    };
    let declared = match &jwk.common.key_algorithm {
        Some(ka) => match parse_alg(&ka.to_string()) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    let alg = declared.or(pinned).unwrap_or(natural);
    if pinned.is_some_and(|p| p != alg) || alg.family() != natural.family() {
        return Ok(None);
    }
    if natural.family() == jsonwebtoken::AlgorithmFamily::Ec && alg != natural {
        return Ok(None);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(JwkError::Unusable)?;
    let key =
        VerifyKey::public(alg, jwk.common.key_id.clone(), key).map_err(JwkError::Unparsable)?;
    Ok(Some(key))
}

/// The last good set of every URL, kept for the life of the process so
/// that a set built by a later config load (a reload while the IdP is down)
/// still starts with working keys. Sets are kept per pinned algorithm: a set
/// filtered for one `alg` must not seed a key pinned to another.
#[derive(Default)]
pub struct JwksStore {
    last_good: Mutex<HashMap<SetId, Arc<Vec<VerifyKey>>>>,
}

/// A set's URL and the algorithm it is pinned to.
type SetId = (String, Option<Algorithm>);

impl std::fmt::Debug for JwksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksStore").finish_non_exhaustive()
    }
}

impl JwksStore {
    fn get(&self, url: &str, pinned: Option<Algorithm>) -> Option<Arc<Vec<VerifyKey>>> {
        let last_good = self.last_good.lock().ok()?;
        last_good.get(&(url.to_owned(), pinned)).cloned()
    }

    fn put(&self, url: &str, pinned: Option<Algorithm>, keys: Arc<Vec<VerifyKey>>) {
        if let Ok(mut last_good) = self.last_good.lock() {
            last_good.insert((url.to_owned(), pinned), keys);
        }
    }
}

#[derive(Default)]
struct FetchState {
    in_flight: bool,
    last_attempt: Option<Instant>,
    last_ok: bool,
    last_unknown_kid: Option<Instant>,
}

pub struct RemoteJwks {
    pub url: String,
    pub refresh: Duration,
    pinned: Option<Algorithm>,
    keys: ArcSwap<Vec<VerifyKey>>,
    /// Where every good set fetched is recorded for later loads.
    store: Arc<JwksStore>,
    state: Mutex<FetchState>,
    /// Bumped after every fetch, successful or not, to wake waiters.
    fetched: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Fetches once, now. On failure the last good set of this URL in
    /// `store` (from an earlier config) serves; without one the set starts
    /// empty and the refresher retries. The error, if any, is returned for
    /// `check`.
    pub fn load(
        url: String,
        refresh: Duration,
        pinned: Option<Algorithm>,
        store: Arc<JwksStore>,
    ) -> (Arc<Self>, Option<KeyError>) {
        let previous = store.get(&url, pinned).unwrap_or_default();
        let remote = Arc::new(RemoteJwks {
            url,
            refresh,
            pinned,
            keys: ArcSwap::new(previous),
            store,
            state: Mutex::new(FetchState::default()),
            fetched: tokio::sync::watch::Sender::new(0),
        });
        let error = remote
            .begin()
            .and_then(|()| remote.fetch_and_finish().err());
        (remote, error)
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<Vec<VerifyKey>>> {
        self.keys.load()
    }

    /// How many fetches have completed: part of the key set's version.
    pub fn generation(&self) -> u64 {
        *self.fetched.borrow()
    }

    /// Whether the periodic refresh is due.
    pub fn due(&self) -> bool {
        let Ok(state) = self.state.lock() else {
            return false;
        };
        let wait = if state.last_ok {
            self.refresh
        } else {
            RETRY_AFTER_FAILURE
        };
        !state.in_flight && state.last_attempt.is_none_or(|t| t.elapsed() >= wait)
    }

    /// Claims the right to fetch; `Some(())` means nobody else is fetching.
    fn begin(&self) -> Option<()> {
        let mut state = self.state.lock().ok()?;
        if state.in_flight {
            return None;
        }
        state.in_flight = true;
        Some(())
    }

    /// Fetches (blocking) after a successful `begin`, and releases it.
    fn fetch_and_finish(&self) -> Result<(), KeyError> {
        let result = fetch(&self.url).and_then(|body| parse(&body, self.pinned));
        let outcome = match result {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.store.put(&self.url, self.pinned, keys.clone());
                self.keys.store(keys);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; serving the last good key set");
                Err(e)
            }
        };
        if let Ok(mut state) = self.state.lock() {
            state.in_flight = false;
            state.last_attempt = Some(Instant::now());
            state.last_ok = outcome.is_ok();
        }
        self.fetched.send_modify(|g| *g += 1);
        outcome
    }

    /// The periodic refresh; blocks for as long as the fetch takes.
    pub fn refresh_blocking(&self) {
        if self.begin().is_some() {
            let _ = self.fetch_and_finish();
        }
    }

    /// A token named a `kid` nobody knows: perhaps the IdP rotated. Refetch
    /// (at most once a minute; joining a fetch under way) and wait briefly.
    /// True when a fetch completed meanwhile.
    pub async fn refetch_for_unknown_kid(self: &Arc<Self>) -> bool {
        let mut done = self.fetched.subscribe();
        let start = {
            let Ok(mut state) = self.state.lock() else {
                return false;
            };
            if state.in_flight {
                false
            } else if state
                .last_unknown_kid
                .is_some_and(|t| t.elapsed() < UNKNOWN_KID_INTERVAL)
            {
                return false;
            } else {
                state.in_flight = true;
                state.last_unknown_kid = Some(Instant::now());
                true
            }
        };
        if start {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.fetch_and_finish());
        }
        matches!(
            tokio::time::timeout(UNKNOWN_KID_WAIT, done.changed()).await,
            Ok(Ok(()))
        )
    }
}

fn fetch(url: &str) -> Result<Vec<u8>, KeyError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(true)
        .max_redirects(3)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| KeyError::Fetch(Box::new(e)))?;
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_JWKS_BYTES)
        .read_to_end(&mut body)
        .map_err(KeyError::FetchBody)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() -> Result<(), KeyError> {
        let json = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"o"},
            {"kty":"EC","crv":"P-256","use":"enc","kid":"e",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","kid":"s",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let keys = parse(json, None)?;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("s"));
        assert_eq!(keys[0].alg, Algorithm::ES256);
        assert!(
            parse(json, Some(Algorithm::RS256)).is_err(),
            "pinned alg filters everything out"
        );
        Ok(())
    }
}
