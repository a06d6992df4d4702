//! Hot reload: the config file and every file it names are watched through
//! their directories (so Kubernetes' atomic `..data` symlink swap is seen),
//! bursts are debounced, and SIGHUP forces a reload. A new config replaces
//! the old one only once it is fully loaded and valid.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::{Config, Loader};
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

pub struct Reloader {
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

/// Starts the watcher and the SIGHUP listener; both are live when this
/// returns, so readiness can be reported after it. `loader` loads every
/// later config.
pub fn start(shared: Arc<Shared>, path: PathBuf, loader: Loader) -> notify::Result<()> {
    let (tx, rx) = mpsc::channel();
    let events = tx.clone();
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
    listen_for_sighup(tx)?;
    std::thread::Builder::new()
        .name("ssogate-reload".into())
        .spawn(move || reloader.run(rx))
        .map_err(notify::Error::io)?;
    Ok(())
}

fn listen_for_sighup(tx: Sender<Trigger>) -> notify::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(notify::Error::io)?;
    // Registered here, before start() returns: a SIGHUP that arrives later
    // must reload, never take the default action (terminate).
    let mut hangup = {
        let _guard = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(notify::Error::io)?
    };
    std::thread::Builder::new()
        .name("ssogate-sighup".into())
        .spawn(move || {
            runtime.block_on(async {
                while hangup.recv().await.is_some() {
                    if tx.send(Trigger::Signal).is_err() {
                        break;
                    }
                }
            })
        })
        .map_err(notify::Error::io)?;
    Ok(())
}

impl Reloader {
    fn run(mut self, rx: Receiver<Trigger>) {
        while let Ok(first) = rx.recv() {
            if !self.matters(&first) {
                continue;
            }
            let mut forced = first == Trigger::Signal;
            // Quiet for DEBOUNCE, or MAX_DEBOUNCE at most: a file that
            // never stops changing must not hold a reload back forever.
            let deadline = Instant::now() + MAX_DEBOUNCE;
            let mut quiet_until = Instant::now() + DEBOUNCE;
            loop {
                let now = Instant::now();
                let wait = quiet_until.min(deadline).saturating_duration_since(now);
                if wait.is_zero() {
                    break;
                }
                match rx.recv_timeout(wait) {
                    Ok(t) if self.matters(&t) => {
                        forced |= t == Trigger::Signal;
                        quiet_until = Instant::now() + DEBOUNCE;
                    }
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            self.reload(forced);
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

    fn reload(&mut self, forced: bool) {
        let config = match self.loader.load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                metrics::config_reloaded(false);
                tracing::error!(error = %e, "config reload refused; the previous config keeps serving");
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
