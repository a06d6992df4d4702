//! The admin listener: `/metrics`, `/healthz`, `/readyz`. Never proxied, so
//! it can sit on a port only the cluster reaches.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::Shared;

pub struct Admin {
    shared: Arc<Shared>,
}

impl Admin {
    pub fn new(shared: Arc<Shared>) -> Self {
        Admin { shared }
    }

    /// Ready once the proxy listener accepts connections. A valid config is
    /// loaded by construction (ssogate does not start without one), and the
    /// config watcher runs: this service only starts once it does (`serve`).
    async fn ready(&self) -> bool {
        if self.shared.listener_up.load(Ordering::Acquire) {
            return true;
        }
        let target = local_target(self.shared.config.load().listen);
        let up = tokio::task::spawn_blocking(move || {
            TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        })
        .await
        .unwrap_or(false);
        if up {
            self.shared.listener_up.store(true, Ordering::Release);
        }
        up
    }
}

/// A wildcard listen address is reached through loopback.
fn local_target(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

fn respond(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    let body = body.into();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_owned();
        match path.as_str() {
            "/metrics" => {
                crate::metrics::set_session_cache_entries(self.shared.cache.entries());
                crate::metrics::set_rate_limit_addresses(self.shared.limiter.addresses());
                respond(200, "text/plain; version=0.0.4", crate::metrics::render())
            }
            "/healthz" => respond(200, "text/plain", "ok\n"),
            "/readyz" if self.ready().await => respond(200, "text/plain", "ready\n"),
            "/readyz" => respond(503, "text/plain", "not ready\n"),
            _ => respond(404, "text/plain", "not found\n"),
        }
    }
}
