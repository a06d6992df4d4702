//! The replay store: what must be remembered across requests and replicas —
//! spent token `jti`s, spent one-time codes and revoked sessions. It lives
//! outside the config snapshot, so it survives reloads.
//!
//! Revocations are read on every cookie request, so they are never read
//! from the network there: each replica keeps the revoked sessions it knows
//! of (its own logouts at once, other replicas' from Redis in the
//! background) in a bounded map of its own, and a revocation check is one
//! lookup in it. Spending an id asks the store itself, since only the store
//! can say who was first (SPEC 11: fail closed when it cannot).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::metrics::{self, StoreOp};

#[derive(Debug, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct StoreError(pub String);

#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `id` until `until` (unix seconds); true only for the first
    /// caller, so a token or code is accepted once across all replicas.
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError>;

    /// Ends a session until `until` (unix seconds, its expiry): on this
    /// replica at once, on the others as soon as the store can be told.
    /// Never waits for the network.
    fn revoke(&self, session_id: &str, until: i64);

    /// Whether this replica knows the session to be revoked, here or on
    /// another replica: one map lookup, no allocation, no network.
    fn is_revoked(&self, session_id: &str) -> bool;
}

/// Keys of spent ids; the two kinds share one keyspace.
pub fn jti_key(org: &str, jti: &str) -> String {
    format!("jti:{org}:{jti}")
}

pub fn code_key(code_id: &str) -> String {
    format!("code:{code_id}")
}

/// Entries that live until a unix time (`i64` seconds), at least a second.
struct UntilExpiry;

fn time_left(until: i64) -> Duration {
    let left = until.saturating_sub(crate::clock::now());
    // The clock reads whole seconds: one more keeps an entry at least until
    // `until`, never a moment less.
    Duration::from_secs(left.max(0) as u64 + 1)
}

impl<K> moka::Expiry<K, i64> for UntilExpiry {
    fn expire_after_create(&self, _key: &K, until: &i64, _now: Instant) -> Option<Duration> {
        Some(time_left(*until))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        until: &i64,
        _now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(time_left(*until))
    }
}

/// The revoked sessions one replica knows of, each until the session would
/// have expired anyway. Bounded: past `max_entries` the oldest revocation is
/// forgotten first (least recently inserted, since lookups do not count as
/// use), never a new one.
pub struct Revocations {
    entries: moka::sync::Cache<String, i64>,
}

impl Revocations {
    pub fn new(max_entries: u64) -> Self {
        Revocations {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    pub fn insert(&self, session_id: &str, until: i64) {
        if until >= crate::clock::now() && !session_id.is_empty() {
            self.entries.insert(session_id.to_owned(), until);
        }
    }

    /// One lookup in a concurrent map; it records no read, so it takes no
    /// lock and allocates nothing.
    pub fn contains(&self, session_id: &str) -> bool {
        self.entries.contains_key(session_id)
    }
}

/// The in-process store for a single replica: bounded, each entry expiring
/// when what it guards would have expired anyway.
pub struct MemoryStore {
    entries: moka::sync::Cache<String, i64>,
    revoked: Revocations,
}

impl MemoryStore {
    pub fn new(max_entries: u64) -> Self {
        MemoryStore {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
            revoked: Revocations::new(max_entries),
        }
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError> {
        let entry = self.entries.entry_by_ref(id).or_insert(until);
        Ok(entry.is_fresh())
    }

    fn revoke(&self, session_id: &str, until: i64) {
        self.revoked.insert(session_id, until);
    }

    fn is_revoked(&self, session_id: &str) -> bool {
        self.revoked.contains(session_id)
    }
}

/// How long one store operation may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a replica reads the revocations of the others while the store
/// answers: a logout reaches every replica within this plus one round trip
/// (SPEC 11: 5 s).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often an unreachable store is tried again: reads, pending writes.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// Revocations a replica remembers (its own and the others'), and the
/// length the shared stream of revocations is trimmed to.
const MAX_REVOCATIONS: u64 = 1_000_000;
/// Revocations made while the store was unreachable, waiting to be written.
const MAX_PENDING: usize = 100_000;
/// Entries read or written per round trip.
const BATCH: usize = 1000;
/// The stream every replica appends its revocations to and reads the
/// others' from.
const REVOCATIONS_STREAM: &str = "ssogate:revocations";

/// A revocation on its way to the other replicas.
#[derive(Debug, Clone)]
struct Revoked {
    session_id: String,
    until: i64,
}

/// The store shared by every replica: Redis.
///
/// * Spending an id is one `SET NX EXAT` (refused at once, without a round
///   trip, while the store is known to be unreachable).
/// * A logout is written to this replica's map at once and queued; a task
///   appends the queue to a Redis stream (`XADD`), now, or once the store
///   is back.
/// * The same task reads the stream from where it left off every
///   [`SYNC_INTERVAL`] (`XREAD`) into the map, so that a cookie request
///   never waits for Redis, reachable or not.
///
/// The task's reads are also what tells an unreachable store from a
/// reachable one again. Commands run on a small runtime of the store's own,
/// so the connection and its reconnect task outlive any one request.
pub struct RedisStore {
    shared: Arc<RedisShared>,
    runtime: tokio::runtime::Runtime,
}

struct RedisShared {
    connection: redis::aio::ConnectionManager,
    revoked: Revocations,
    pending: Mutex<VecDeque<Revoked>>,
    /// Wakes the task when a revocation is queued.
    queued: tokio::sync::Notify,
    /// False from a failed operation to the next successful one.
    reachable: AtomicBool,
}

impl RedisStore {
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ssogate-redis")
            .enable_all()
            .build()
            .map_err(|e| StoreError(e.to_string()))?;
        // One connection attempt per command at most: a command must fail
        // within REDIS_TIMEOUT, not after a reconnect schedule of its own.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = {
            // The manager spawns its tasks on the runtime it is made in.
            let _inside = runtime.enter();
            client
                .get_connection_manager_lazy(config)
                .map_err(|e| StoreError(e.to_string()))?
        };
        let shared = Arc::new(RedisShared {
            connection,
            revoked: Revocations::new(MAX_REVOCATIONS),
            pending: Mutex::new(VecDeque::new()),
            queued: tokio::sync::Notify::new(),
            reachable: AtomicBool::new(true),
        });
        runtime.spawn(sync(shared.clone()));
        Ok(RedisStore { shared, runtime })
    }
}

#[async_trait]
impl ReplayStore for RedisStore {
    async fn spend(&self, id: &str, until: i64) -> Result<bool, StoreError> {
        if !self.shared.is_reachable() {
            metrics::replay_store_error(StoreOp::Spend);
            return Err(StoreError("unreachable, retrying in the background".into()));
        }
        let until = until.max(crate::clock::now() + 1);
        let mut command = redis::cmd("SET");
        command
            .arg(format!("ssogate:{id}"))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(until);
        let shared = self.shared.clone();
        let task = self
            .runtime
            .spawn(async move { shared.query::<Option<String>>(&command).await });
        // The task is bounded by REDIS_TIMEOUT itself; this bound only
        // guards against a runtime that does not run it.
        let outcome = match tokio::time::timeout(REDIS_TIMEOUT * 2, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(StoreError(e.to_string())),
            Err(_) => Err(StoreError("timed out".into())),
        };
        match outcome {
            Ok(set) => {
                self.shared.reached();
                Ok(set.is_some())
            }
            Err(e) => {
                self.shared.failed(StoreOp::Spend, &e);
                Err(e)
            }
        }
    }

    fn revoke(&self, session_id: &str, until: i64) {
        self.shared.revoked.insert(session_id, until);
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if pending.len() >= MAX_PENDING {
                pending.pop_front();
                tracing::warn!(
                    max = MAX_PENDING,
                    "too many revocations waiting for the replay store: the oldest is dropped"
                );
            }
            pending.push_back(Revoked {
                session_id: session_id.to_owned(),
                until,
            });
        }
        self.shared.queued.notify_one();
    }

    fn is_revoked(&self, session_id: &str) -> bool {
        self.shared.revoked.contains(session_id)
    }
}

impl RedisShared {
    /// One command or pipeline, bounded by REDIS_TIMEOUT; on the store's
    /// runtime.
    async fn query<T: redis::FromRedisValue + Send>(
        &self,
        command: &(impl QueryOn + Sync),
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, command.query_on(&mut connection)).await {
            Ok(result) => result.map_err(|e| StoreError(e.to_string())),
            Err(_) => Err(StoreError("timed out".into())),
        }
    }

    fn reached(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("replay store reachable again");
        }
    }

    fn failed(&self, op: StoreOp, error: &StoreError) {
        metrics::replay_store_error(op);
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::error!(%error, "replay store unreachable: one-time logins answer 503, revocations wait in a queue");
        }
    }

    fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn has_pending(&self) -> bool {
        !self.lock_pending().is_empty()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, VecDeque<Revoked>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends queued revocations to the stream, a batch at a time, until
    /// the queue is empty or a write fails (then they stay queued).
    async fn flush(&self) -> Result<(), StoreError> {
        loop {
            let now = crate::clock::now();
            let batch: Vec<Revoked> = {
                let mut pending = self.lock_pending();
                // A revocation of a session that has expired is moot.
                pending.retain(|r| r.until >= now);
                pending.iter().take(BATCH).cloned().collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for r in &batch {
                pipe.cmd("XADD")
                    .arg(REVOCATIONS_STREAM)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(MAX_REVOCATIONS)
                    .arg("*")
                    .arg("s")
                    .arg(&r.session_id)
                    .arg("u")
                    .arg(r.until)
                    .ignore();
            }
            self.query::<()>(&pipe).await?;
            let mut pending = self.lock_pending();
            // Only this task removes entries, and only from the front.
            for _ in 0..batch.len().min(pending.len()) {
                pending.pop_front();
            }
        }
    }

    /// Reads the revocations appended since `cursor` into this replica's
    /// map and moves the cursor past them.
    async fn pull(&self, cursor: &mut StreamId) -> Result<(), StoreError> {
        // A stream that is gone or starts over (a Redis restarted without
        // its data) is read from its beginning again.
        let mut last = redis::cmd("XREVRANGE");
        last.arg(REVOCATIONS_STREAM)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let last: Vec<(String, Vec<String>)> = self.query(&last).await?;
        let last = last.first().and_then(|(id, _)| StreamId::parse(id));
        if last.is_none_or(|last| last < *cursor) {
            *cursor = StreamId::default();
        }
        loop {
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT")
                .arg(BATCH)
                .arg("STREAMS")
                .arg(REVOCATIONS_STREAM)
                .arg(cursor.to_string());
            type Reply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;
            let reply: Reply = self.query(&read).await?;
            let entries: Vec<(String, Vec<String>)> = reply
                .into_iter()
                .flatten()
                .flat_map(|(_stream, entries)| entries)
                .collect();
            let now = crate::clock::now();
            for (id, fields) in &entries {
                if let Some(id) = StreamId::parse(id) {
                    *cursor = (*cursor).max(id);
                }
                if let Some(r) = Revoked::from_fields(fields) {
                    if r.until >= now {
                        self.revoked.insert(&r.session_id, r.until);
                    }
                }
            }
            if entries.len() < BATCH {
                return Ok(());
            }
        }
    }
}

impl Revoked {
    /// A stream entry's fields: `s` the session id, `u` its expiry.
    fn from_fields(fields: &[String]) -> Option<Revoked> {
        let (mut session_id, mut until) = (None, None);
        for pair in fields.chunks_exact(2) {
            match pair[0].as_str() {
                "s" => session_id = Some(pair[1].clone()),
                "u" => until = pair[1].parse().ok(),
                _ => {}
            }
        }
        Some(Revoked {
            session_id: session_id?,
            until: until?,
        })
    }
}

/// A command or a pipeline, run on a connection.
trait QueryOn {
    fn query_on<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        connection: &'a mut redis::aio::ConnectionManager,
    ) -> redis::RedisFuture<'a, T>;
}

impl QueryOn for redis::Cmd {
    fn query_on<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        connection: &'a mut redis::aio::ConnectionManager,
    ) -> redis::RedisFuture<'a, T> {
        Box::pin(self.query_async(connection))
    }
}

impl QueryOn for redis::Pipeline {
    fn query_on<'a, T: redis::FromRedisValue + Send + 'a>(
        &'a self,
        connection: &'a mut redis::aio::ConnectionManager,
    ) -> redis::RedisFuture<'a, T> {
        Box::pin(self.query_async(connection))
    }
}

/// A Redis stream entry id, `<milliseconds>-<sequence>`, ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// The store's background task: writes queued revocations as soon as the
/// store takes them, and reads the other replicas' every SYNC_INTERVAL
/// (every RETRY_INTERVAL while the store is unreachable, so that it is
/// seen back quickly). Each failed attempt counts once.
async fn sync(shared: Arc<RedisShared>) {
    let mut cursor = StreamId::default();
    let now = tokio::time::Instant::now;
    let mut next_pull = now();
    let mut next_flush = now();
    loop {
        let wake = if shared.has_pending() {
            next_pull.min(next_flush)
        } else {
            next_pull
        };
        tokio::select! {
            _ = shared.queued.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        if now() >= next_pull {
            match shared.pull(&mut cursor).await {
                Ok(()) => shared.reached(),
                Err(e) => shared.failed(StoreOp::Check, &e),
            }
            let pause = if shared.is_reachable() {
                SYNC_INTERVAL
            } else {
                RETRY_INTERVAL
            };
            next_pull = now() + pause;
        }
        if shared.has_pending() && now() >= next_flush {
            match shared.flush().await {
                Ok(()) => {
                    shared.reached();
                    next_flush = now();
                }
                Err(e) => {
                    shared.failed(StoreOp::Revoke, &e);
                    next_flush = now() + RETRY_INTERVAL;
                }
            }
        }
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
        Ok(())
    }

    #[test]
    fn a_revocation_holds_at_once_until_the_session_expires() {
        let store = MemoryStore::new(100);
        let now = crate::clock::now();
        assert!(!store.is_revoked("s1"));
        store.revoke("s1", now + 60);
        assert!(store.is_revoked("s1"));
        assert!(!store.is_revoked("s2"));
        // an expired session needs no revocation; an empty id is no session
        store.revoke("s3", now - 1);
        store.revoke("", now + 60);
        assert!(!store.is_revoked("s3"));
        assert!(!store.is_revoked(""));
    }

    #[test]
    fn revocations_are_bounded_and_keep_the_newest() {
        let revoked = Revocations::new(10);
        let until = crate::clock::now() + 60;
        for i in 0..100 {
            revoked.insert(&format!("s{i}"), until);
        }
        revoked.entries.run_pending_tasks();
        assert!(revoked.entries.entry_count() <= 10);
        assert!(revoked.contains("s99"), "the newest revocation is kept");
        assert!(!revoked.contains("s0"), "the oldest is forgotten first");
    }

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        let id = |t: &str| StreamId::parse(t);
        assert_eq!(id("1700000000000-3"), Some(StreamId(1_700_000_000_000, 3)));
        assert!(id("5-0") < id("5-1"));
        assert!(id("5-9") < id("10-0"));
        assert_eq!(id("nope"), None);
        assert_eq!(StreamId(7, 2).to_string(), "7-2");
    }

    #[test]
    fn a_stream_entry_names_its_session_and_expiry() {
        let fields: Vec<String> = ["s", "abc", "u", "42"].map(String::from).to_vec();
        let r = Revoked::from_fields(&fields);
        assert_eq!(r.map(|r| (r.session_id, r.until)), Some(("abc".into(), 42)));
        assert!(Revoked::from_fields(&["s".to_owned(), "abc".to_owned()]).is_none());
    }
}
