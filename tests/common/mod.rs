//! Black-box harness shared by the integration tests: they drive the built `ssogate` binary as a
//! subprocess, one module a concern.
//!
//! * [`configs`]: config templates ([`BASE`], [`template`], [`config`]) and the secret files.
//! * [`spawn`]: [`Gate`], a running ssogate: process, config directory, logs, requests.
//! * [`http`]: the client side ([`Req`], [`Resp`], [`Jar`], [`Headers`], [`RawResponse`]).
//! * [`servers`]: test servers: the echo app ([`Upstream`]), portal pages ([`Site`]), raw TCP.
//! * [`flows`]: ssogate's logins as a client sees them (flow A redirects, Bearer requests).
//! * [`tokens`]: JWTs, genuine or hostile; [`keys`]: key material; [`jwks`]: a JWKS endpoint.
//! * [`cli`]: the command line and other programs ([`Proc`]); [`metrics`]: Prometheus scrapes;
//!   [`browser`]: headless Chromium.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]
pub mod browser;
pub mod cli;
pub mod configs;
pub mod flows;
pub mod http;
pub mod jwks;
pub mod keys;
pub mod metrics;
pub mod servers;
pub mod spawn;
pub mod tokens;

pub use cli::*;
pub use configs::*;
pub use flows::*;
pub use http::*;
pub use jwks::*;
pub use keys::*;
pub use metrics::*;
pub use servers::*;
pub use spawn::*;
pub use tokens::*;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// A port free a moment ago, taken below the kernel's ephemeral range
/// (32768-60999): the tests' own client connections take their source ports
/// from that range, and one of them could otherwise take a port between its
/// choice here and ssogate binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    // Each test process walks the range from its own starting point.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `N` distinct free ports (each [`free_port`] walks on from the last).
pub fn free_ports<const N: usize>() -> [u16; N] {
    std::array::from_fn(|_| free_port())
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// 20 random characters from `[0-9a-z]`.
pub fn random_id() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect()
}

/// Percent-encode everything but unreserved characters (for query values).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Query parameters of an absolute URL, decoded, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("not an absolute URL {url:?}: {e}"));
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Calls `f` every 20 ms until it returns `Some`, or `None` once `timeout` has passed.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Says why a test does nothing, so that a skip is never silent: straight to stderr, past the
/// test harness's capture of `println!`/`eprintln!`.
pub fn skip(test: &str, reason: &str) {
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {reason}\n").as_bytes());
}

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
