//! The replay store: what must be remembered across requests and replicas —
//! spent token `jti`s, spent one-time codes and revoked sessions. It lives
//! outside the config snapshot, so it survives reloads.

use std::sync::Arc;
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

/// The store shared by every replica: Redis. Commands run on a small runtime
/// of their own, so the connection and its reconnect task outlive any one
/// request. A revocation check seen negative is remembered for a few
/// seconds, so a cookie request costs no round trip in the common case.
pub struct RedisStore {
    client: redis::Client,
    runtime: tokio::runtime::Runtime,
    connection: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
    not_revoked: moka::sync::Cache<String, ()>,
}

/// How long a negative revocation check is trusted: the time a logout on
/// one replica may take to reach the others.
pub const REVOCATION_CACHE: Duration = Duration::from_secs(5);
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisStore {
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ssogate-redis")
            .enable_all()
            .build()
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(RedisStore {
            client,
            runtime,
            connection: Arc::new(tokio::sync::OnceCell::new()),
            not_revoked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REVOCATION_CACHE)
                .build(),
        })
    }

    /// Runs one command on the store's runtime, connecting first if needed.
    async fn run<T: redis::FromRedisValue + Send + 'static>(
        &self,
        command: redis::Cmd,
    ) -> Result<T, StoreError> {
        let client = self.client.clone();
        let cell = self.connection.clone();
        let task = self.runtime.spawn(async move {
            let connection = cell
                .get_or_try_init(|| client.get_connection_manager())
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            let mut connection = connection.clone();
            command
                .query_async::<T>(&mut connection)
                .await
                .map_err(|e| StoreError(e.to_string()))
        });
        match tokio::time::timeout(REDIS_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(StoreError(e.to_string())),
            Err(_) => Err(StoreError("timed out".into())),
        }
    }
}

#[async_trait]
impl ReplayStore for RedisStore {
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError> {
        let until = until.max(crate::clock::now() + 1);
        let mut command = redis::cmd("SET");
        command
            .arg(format!("ssogate:{id}"))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(until);
        let set: Option<String> = self.run(command).await?;
        Ok(set.is_some())
    }

    async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        if self.not_revoked.contains_key(id) {
            return Ok(false);
        }
        let mut command = redis::cmd("EXISTS");
        command.arg(format!("ssogate:{id}"));
        let found: bool = self.run(command).await?;
        if !found {
            self.not_revoked.insert(id.to_owned(), ());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_id_is_spent_once() -> Result<(), StoreError> {
        let store = MemoryStore::new(100);
        let until = crate::clock::now() + 60;
        assert!(store.spend("jti:a:1", until).await?);
        assert!(!store.spend("jti:a:1", until).await?);
        assert!(store.spend("jti:a:2", until).await?);
        assert!(store.contains("jti:a:1").await?);
        assert!(!store.contains("jti:a:3").await?);
        Ok(())
    }
}
