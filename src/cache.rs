//! The validated-session cache: a credential seen before (a Bearer token or
//! a session cookie) skips signature checks and AEAD opening. Entries are
//! keyed by a digest of the credential, never outlive what they cache, and
//! a Bearer entry is only trusted under the key-set version that made it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::metrics;
use crate::session::Identity;

pub type CacheKey = [u8; 32];

#[derive(Debug)]
pub struct Cached {
    pub identity: Arc<Identity>,
    /// Unix seconds after which the entry is worthless.
    pub until: i64,
    /// `KeySet::version` of the org when a Bearer token was verified; 0 for
    /// cookies, which keys do not sign.
    pub keys_version: u64,
}

pub struct SessionCache {
    entries: moka::sync::Cache<CacheKey, Arc<Cached>>,
}

struct UntilExpiry;

impl moka::Expiry<CacheKey, Arc<Cached>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Cached>,
        _now: Instant,
    ) -> Option<Duration> {
        let left = value.until.saturating_sub(crate::clock::now());
        Some(Duration::from_secs(left.max(0) as u64))
    }
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
        SessionCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
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

    pub fn get(&self, key: &CacheKey, now: i64) -> Option<Arc<Cached>> {
        let found = self.entries.get(key).filter(|c| c.until > now);
        metrics::session_cache(found.is_some());
        found
    }

    pub fn insert(&self, key: CacheKey, cached: Cached) {
        self.entries.insert(key, Arc::new(cached));
    }

    /// The number of live entries, settled (expired ones dropped) first:
    /// for the gauge, read when metrics are scraped, not on the hot path.
    pub fn entries(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}
