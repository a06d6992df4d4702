//! The validated-session cache: a credential seen before (a Bearer token or
//! a session cookie) skips signature checks and AEAD opening. Entries are
//! keyed by a digest of the credential, never outlive what they cache, and
//! a Bearer entry is only trusted under the key-set version that made it.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::metrics;
use crate::session::Identity;

pub type CacheKey = [u8; 32];

/// One entry, held by value: the cache hands out a copy on a hit (an `Arc`
/// count and two integers), with no allocation of its own per entry.
#[derive(Debug, Clone)]
pub struct Cached {
    pub identity: Arc<Identity>,
    /// Unix seconds after which the entry is worthless.
    pub until: i64,
    /// `KeySet::version` of the org when a Bearer token was verified; 0 for
    /// cookies, which keys do not sign.
    pub keys_version: u64,
}

/// `quick_cache` rather than moka: measured with a million 32-byte keys,
/// its bookkeeping takes about 95 bytes an entry against moka's 345, the
/// difference between a million cached sessions fitting in 512 MiB or not.
/// It has no per-entry expiry; `until` is checked on every hit instead, and
/// an entry found stale is dropped then.
pub struct SessionCache {
    entries: quick_cache::sync::Cache<CacheKey, Cached>,
}

/// What kind of credential a digest was taken of, so that a token and a
/// cookie with the same text never share an entry.
#[derive(Debug, Clone, Copy)]
pub enum Credential {
    Bearer,
    /// A session cookie, under the session secret with this fingerprint: a
    /// rotated session secret must not keep old cookies alive via the cache.
    Cookie(u64),
}

impl SessionCache {
    pub fn new(max_entries: u64) -> Self {
        let capacity = usize::try_from(max_entries.max(1)).unwrap_or(usize::MAX);
        SessionCache {
            entries: quick_cache::sync::Cache::new(capacity),
        }
    }

    pub fn key(kind: Credential, credential: &str) -> CacheKey {
        let mut hasher = Sha256::new();
        match kind {
            Credential::Bearer => hasher.update(b"b"),
            Credential::Cookie(secret) => {
                hasher.update(b"c");
                hasher.update(secret.to_le_bytes());
            }
        }
        hasher.update(credential.as_bytes());
        hasher.finalize().into()
    }

    pub fn get(&self, key: &CacheKey, now: i64) -> Option<Cached> {
        let found = match self.entries.get(key) {
            Some(entry) if entry.until > now => Some(entry),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        };
        metrics::session_cache(found.is_some());
        found
    }

    pub fn insert(&self, key: CacheKey, cached: Cached) {
        self.entries.insert(key, cached);
    }

    /// The number of entries, for the gauge, read when metrics are scraped.
    pub fn entries(&self) -> u64 {
        self.entries.len() as u64
    }
}
