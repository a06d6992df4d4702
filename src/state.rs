//! What lives for the whole process, across config reloads.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::cache::SessionCache;
use crate::config::Config;
use crate::limit::Limiter;
use crate::replay::ReplayStore;

pub struct Shared {
    /// The current config snapshot; a request keeps the one it started with.
    pub config: ArcSwap<Config>,
    /// Spent ids and revoked sessions; revocation checks never leave the
    /// process (see `replay`).
    pub replay: Box<dyn ReplayStore>,
    /// Validated credentials; sized once, at start.
    pub cache: SessionCache,
    /// The per-address rate limits (SPEC 11); they survive reloads.
    pub limiter: Limiter,
    /// Requests in flight, so that shutdown can wait for them.
    pub inflight: Arc<AtomicUsize>,
    /// Successful config loads, the first included.
    pub generation: AtomicU64,
    /// Set once the proxy listener is known to accept connections.
    pub listener_up: AtomicBool,
}

impl Shared {
    pub fn new(config: Config, replay: Box<dyn ReplayStore>) -> Self {
        crate::metrics::set_generation(1);
        crate::metrics::export_replay_store_errors();
        Shared {
            cache: SessionCache::new(config.session.cache_max_entries),
            limiter: Limiter::default(),
            config: ArcSwap::from_pointee(config),
            replay,
            inflight: Arc::new(AtomicUsize::new(0)),
            generation: AtomicU64::new(1),
            listener_up: AtomicBool::new(false),
        }
    }

    /// Swaps in a new, fully validated config.
    pub fn install(&self, config: Config) -> u64 {
        self.config.store(Arc::new(config));
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        crate::metrics::set_generation(generation);
        generation
    }
}

/// Counts a request in flight for as long as it lives.
pub struct InflightGuard(Arc<AtomicUsize>);

impl InflightGuard {
    pub fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        InflightGuard(counter.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
