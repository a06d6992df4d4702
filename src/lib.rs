//! ssogate: a JWT single-sign-on sidecar. A pingora reverse proxy that logs
//! users in for an unmodified app and tells it who they are in headers.
//!
//! `serve` wires the pieces: the config snapshot, the replay store, the proxy
//! service, the admin service and the background services (the config
//! watcher, the JWKS refresher), and runs them until a signal stops them.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod decision;
pub mod flows;
pub mod forward;
pub mod framing;
pub mod gate;
pub mod headers;
pub mod keys;
pub mod limit;
pub mod logging;
pub mod metrics;
pub mod mint;
pub mod proxy;
pub mod redirect;
pub mod reload;
pub mod replay;
pub mod reply;
pub mod request;
pub mod route;
pub mod session;
pub mod signin;
pub mod state;
pub mod token;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::configuration::ServerConf;
use pingora::server::{
    ExecutionPhase, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch,
};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use config::{Config, Loader, ReplayStoreSpec};
use reload::ConfigWatcher;
use state::Shared;

/// How long SIGTERM waits for requests in flight (Kubernetes' default
/// termination grace period is 30 s; leave it room to kill us cleanly).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({field}): {source}")]
    Bind {
        field: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the replay store: {0}")]
    ReplayStore(replay::StoreError),
    #[error("cannot watch the config for changes: {0}")]
    Watch(notify::Error),
}

/// Runs ssogate with a validated config until SIGTERM or SIGINT (drain,
/// then exit) or SIGQUIT (exit now). `loader`, which loaded `config`, loads
/// every reload.
pub fn serve(config: Config, loader: Loader) -> Result<(), ServeError> {
    let config_path = config.file.clone();
    // pingora retries a busy port for 30 s; an operator wants to know now.
    for (field, addr) in [
        ("listen", config.listen),
        ("admin_listen", config.admin_listen),
    ] {
        TcpListener::bind(addr).map_err(|source| ServeError::Bind {
            field,
            addr,
            source,
        })?;
    }
    let replay: Box<dyn replay::ReplayStore> = match &config.replay_store {
        ReplayStoreSpec::Memory => Box::new(replay::MemoryStore::new(1_000_000)),
        ReplayStoreSpec::Redis(url) => {
            Box::new(replay::RedisStore::new(url).map_err(ServeError::ReplayStore)?)
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let listen = config.listen.to_string();
    let admin_listen = config.admin_listen.to_string();
    let threads = config.threads;
    let orgs = config.orgs.len();
    let shared = Arc::new(Shared::new(config, replay));
    let watcher =
        ConfigWatcher::new(shared.clone(), config_path, loader).map_err(ServeError::Watch)?;

    let scratch = std::env::temp_dir().join(format!("ssogate-{}", std::process::id()));
    let conf = ServerConf {
        threads,
        // One single-threaded runtime per proxy thread, as nginx has one
        // event loop per worker: a request stays on its thread (and its
        // thread's upstream pool) with no cross-thread wake-ups.
        work_stealing: false,
        grace_period_seconds: Some(DRAIN_TIMEOUT.as_secs()),
        graceful_shutdown_timeout_seconds: Some(2),
        pid_file: scratch.with_extension("pid").display().to_string(),
        upgrade_sock: scratch.with_extension("sock").display().to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        proxy::Gateway::new(shared.clone()),
        "ssogate proxy",
    );
    proxy.add_tcp(&listen);
    let mut admin = Service::new("ssogate admin".into(), admin::Admin::new(shared.clone()));
    admin.threads = Some(1);
    admin.add_tcp(&admin_listen);
    // SPEC 9: the watcher runs before /readyz first answers 200. The
    // listeners wait for it to report that it watches and handles SIGHUP.
    let watching = server.add_service(background_service("config watcher", watcher));
    server.add_service(background_service(
        "jwks refresher",
        JwksRefresher {
            shared: shared.clone(),
        },
    ));
    server.add_service(proxy).add_dependency(&watching);
    server.add_service(admin).add_dependency(&watching);

    drain_then_exit(&server, shared.clone());
    tracing::info!(listen, admin_listen, threads, orgs, "ssogate started");
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnSignal),
    });
    Ok(())
}

/// SIGTERM and SIGINT both drain (pingora would drop in-flight requests on
/// SIGINT); SIGQUIT, pingora's cue for a socket hand-over ssogate does not
/// use, stops at once.
struct DrainOnSignal;

#[async_trait::async_trait]
impl ShutdownSignalWatch for DrainOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot listen for signals; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => ShutdownSignal::GracefulTerminate,
            _ = quit.recv() => ShutdownSignal::FastShutdown,
        }
    }
}

/// Keeps every `jwks_url` of the current config fresh. It walks whatever
/// config is current at each tick, so sets of replaced configs are left
/// alone; fetches happen here, one at a time, never on a request.
struct JwksRefresher {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl BackgroundService for JwksRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        const TICK: Duration = Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let config = self.shared.config.load_full();
            for remote in config.orgs.iter().flat_map(|o| o.keys.remotes()) {
                if !remote.due() {
                    continue;
                }
                let remote = remote.clone();
                // The fetch blocks (for seconds when the IdP is slow): on
                // the blocking pool, so that shutdown is seen meanwhile.
                let fetch = tokio::task::spawn_blocking(move || remote.refresh_blocking());
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = fetch => {}
                }
            }
        }
    }
}

/// pingora sleeps its whole grace period after SIGTERM. Exit as soon as the
/// requests in flight are done instead, so a rollout does not wait for
/// nothing.
fn drain_then_exit(server: &Server, shared: Arc<Shared>) {
    let mut phases = server.watch_execution_phase();
    std::thread::spawn(move || loop {
        match phases.blocking_recv() {
            Ok(ExecutionPhase::ShutdownGracePeriod) => {
                let deadline = Instant::now() + DRAIN_TIMEOUT;
                while shared.inflight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                tracing::info!(
                    in_flight = shared.inflight.load(Ordering::SeqCst),
                    "drained, exiting"
                );
                logging::flush();
                std::process::exit(0);
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    });
}
