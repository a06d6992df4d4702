//! Hot reload: the config file and every file it names are watched through
//! their directories (so Kubernetes' atomic `..data` symlink swap is seen),
//! bursts are debounced, and SIGHUP forces a reload. A new config replaces
//! the old one only once it is fully loaded and valid.
//!
//! The watcher runs as a pingora background service, so that it stops with
//! the server; notify delivers its events on a thread of its own, through a
//! channel.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::Instant;

use crate::config::{Config, Loader};
use crate::metrics;
use crate::state::Shared;

/// Writers (editors, kubelet) touch several files in a burst; wait this
/// long for quiet before reading them.
const DEBOUNCE: Duration = Duration::from_millis(250);
const MAX_DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    /// These paths changed in a watched directory.
    Paths(Vec<PathBuf>),
    /// The watcher lost track (e.g. event queue overflow): look again.
    Rescan,
    /// SIGHUP: reload unconditionally.
    Signal,
}

/// The config watcher, as a pingora background service. It reports itself
/// ready once it watches every directory and SIGHUP reloads: services that
/// depend on it (the listeners) start only then, so `/readyz` never answers
/// 200 before changes are seen.
pub struct ConfigWatcher {
    /// Taken when the service starts.
    reloader: Mutex<Option<(Reloader, UnboundedReceiver<Trigger>)>>,
}

struct Reloader {
    shared: Arc<Shared>,
    path: PathBuf,
    loader: Loader,
    /// Digest of the files behind the config in service.
    fingerprint: [u8; 32],
    watcher: RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    /// File names whose change means the config may have changed.
    names: BTreeSet<OsString>,
}

impl ConfigWatcher {
    /// Watches the directories of the config in service from now on (a
    /// failure here stops startup); changes seen before the service runs
    /// wait for it. `loader` loads every later config.
    pub fn new(shared: Arc<Shared>, path: PathBuf, loader: Loader) -> notify::Result<Self> {
        let (events, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let trigger = match event {
                // Reading a file (ours included) is not a change.
                Ok(e) if matches!(e.kind, EventKind::Access(_)) => return,
                Ok(e) => Trigger::Paths(e.paths),
                Err(_) => Trigger::Rescan,
            };
            let _ = events.send(trigger);
        })?;
        let fingerprint = shared.config.load().fingerprint;
        let mut reloader = Reloader {
            shared,
            path,
            loader,
            fingerprint,
            watcher,
            watched: BTreeSet::new(),
            names: BTreeSet::new(),
        };
        reloader.watch_current();
        Ok(ConfigWatcher {
            reloader: Mutex::new(Some((reloader, rx))),
        })
    }
}

#[async_trait]
impl BackgroundService for ConfigWatcher {
    async fn start_with_ready_notifier(
        &self,
        shutdown: ShutdownWatch,
        ready_notifier: ServiceReadyNotifier,
    ) {
        let taken = self.reloader.lock().ok().and_then(|mut r| r.take());
        let Some((reloader, events)) = taken else {
            return;
        };
        // Without a handler, SIGHUP's default action terminates: an
        // operator's reload would kill ssogate. Rather not start at all.
        let hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; stopping");
                crate::logging::flush();
                std::process::exit(2);
            }
        };
        ready_notifier.notify_ready();
        reloader.run(events, hangup, shutdown).await;
    }
}

/// The next change or SIGHUP; `None` once either source has ended (the
/// runtime is going down).
async fn next_trigger(
    events: &mut UnboundedReceiver<Trigger>,
    hangup: &mut Signal,
) -> Option<Trigger> {
    tokio::select! {
        trigger = events.recv() => trigger,
        signal = hangup.recv() => signal.map(|()| Trigger::Signal),
    }
}

impl Reloader {
    async fn run(
        mut self,
        mut events: UnboundedReceiver<Trigger>,
        mut hangup: Signal,
        mut shutdown: ShutdownWatch,
    ) {
        while !*shutdown.borrow() {
            let first = tokio::select! {
                _ = shutdown.changed() => return,
                trigger = next_trigger(&mut events, &mut hangup) => trigger,
            };
            let Some(first) = first else {
                return;
            };
            if !self.matters(&first) {
                continue;
            }
            let mut forced = first == Trigger::Signal;
            // Quiet for DEBOUNCE, or MAX_DEBOUNCE at most: a file that
            // never stops changing must not hold a reload back forever.
            let deadline = Instant::now() + MAX_DEBOUNCE;
            let mut quiet_until = Instant::now() + DEBOUNCE;
            loop {
                let trigger = tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep_until(quiet_until.min(deadline)) => break,
                    trigger = next_trigger(&mut events, &mut hangup) => trigger,
                };
                match trigger {
                    Some(t) if self.matters(&t) => {
                        forced |= t == Trigger::Signal;
                        quiet_until = Instant::now() + DEBOUNCE;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
            self.reload(forced).await;
        }
    }

    /// A change to a file the config names, or to Kubernetes' `..data`
    /// machinery beside it; other files in the same directories (logs, say)
    /// are none of our business.
    fn matters(&self, trigger: &Trigger) -> bool {
        match trigger {
            Trigger::Paths(paths) => paths.iter().filter_map(|p| p.file_name()).any(|name| {
                self.names.contains(name) || name.as_encoded_bytes().starts_with(b"..")
            }),
            Trigger::Rescan | Trigger::Signal => true,
        }
    }

    async fn reload(&mut self, forced: bool) {
        let loader = self.loader.clone();
        let path = self.path.clone();
        // Loading reads files and may fetch key sets: not on the runtime.
        let loaded = tokio::task::spawn_blocking(move || loader.load(&path)).await;
        let config = match loaded {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                metrics::config_reloaded(false);
                tracing::error!(error = %e, "config reload refused; the previous config keeps serving");
                return;
            }
            Err(e) => {
                metrics::config_reloaded(false);
                tracing::error!(error = %e, "config reload failed; the previous config keeps serving");
                return;
            }
        };
        let digest = config.fingerprint;
        if !forced && digest == self.fingerprint {
            return;
        }
        warn_about_restart_only_changes(&self.shared.config.load(), &config);
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let orgs = config.orgs.len();
        let generation = self.shared.install(config);
        self.fingerprint = digest;
        metrics::config_reloaded(true);
        tracing::info!(generation, orgs, "config reloaded");
        self.watch_current();
    }

    /// Watches the directory of every file the current config names.
    fn watch_current(&mut self) {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        self.names.clear();
        for file in self.shared.config.load().files.iter().chain([&self.path]) {
            if let Some(dir) = watch_dir(file) {
                dirs.insert(dir);
            }
            if let Some(name) = file.file_name() {
                self.names.insert(name.to_owned());
            }
        }
        for gone in self.watched.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in dirs.difference(&self.watched) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; changes there need SIGHUP");
            }
        }
        self.watched = dirs;
    }
}

fn watch_dir(file: &Path) -> Option<PathBuf> {
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(file)
    };
    absolute.parent().map(Path::to_path_buf)
}

fn warn_about_restart_only_changes(old: &Config, new: &Config) {
    if old.listen != new.listen || old.admin_listen != new.admin_listen {
        tracing::warn!(
            "listen/admin_listen changed: the new addresses take effect after a restart"
        );
    }
    if old.threads != new.threads {
        tracing::warn!("threads changed: takes effect after a restart");
    }
    if old.session.cache_max_entries != new.session.cache_max_entries {
        tracing::warn!("session.cache_max_entries changed: takes effect after a restart");
    }
    if old.replay_store != new.replay_store {
        tracing::warn!("replay_store changed: takes effect after a restart");
    }
}
