//! The replay store: what must be remembered across requests and replicas —
//! spent token `jti`s, spent one-time codes and revoked sessions. It lives
//! outside the config snapshot, so it survives reloads.

use std::time::{Duration, Instant};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct StoreError(pub String);

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `id` until `until` (unix seconds); true only for the first
    /// caller, so a token or code is accepted once across all replicas.
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError>;

    /// Whether `id` was recorded and is still remembered.
    async fn contains(&self, id: &str) -> Result<bool, StoreError>;
}

/// Keys of the three kinds of entry share one keyspace.
pub fn jti_key(org: &str, jti: &str) -> String {
    format!("jti:{org}:{jti}")
}

pub fn revoked_key(session_id: &str) -> String {
    format!("rev:{session_id}")
}

pub fn code_key(code_id: &str) -> String {
    format!("code:{code_id}")
}

/// The in-process store for a single replica: bounded, each entry expiring
/// when what it guards would have expired anyway.
pub struct MemoryStore {
    entries: moka::sync::Cache<String, i64>,
}

struct UntilExpiry;

impl moka::Expiry<String, i64> for UntilExpiry {
    fn expire_after_create(&self, _key: &String, until: &i64, _now: Instant) -> Option<Duration> {
        let left = until.saturating_sub(crate::clock::now());
        Some(Duration::from_secs(left.max(1) as u64))
    }
}

impl MemoryStore {
    pub fn new(max_entries: u64) -> Self {
        MemoryStore {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError> {
        let entry = self.entries.entry_by_ref(id).or_insert(until);
        Ok(entry.is_fresh())
    }

    async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .entries
            .get(id)
            .is_some_and(|until| until >= crate::clock::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_id_is_spent_once() {
        let store = MemoryStore::new(100);
        let until = crate::clock::now() + 60;
        assert!(store.spend("jti:a:1", until).await.unwrap());
        assert!(!store.spend("jti:a:1", until).await.unwrap());
        assert!(store.spend("jti:a:2", until).await.unwrap());
        assert!(store.contains("jti:a:1").await.unwrap());
        assert!(!store.contains("jti:a:3").await.unwrap());
    }
}
