//! The validated configuration: everything parsed, every key loaded. This is
//! all the proxy ever sees; one `Config` is one immutable snapshot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;

use super::secret::Secret;
use crate::keys::KeySet;
use crate::metrics::OrgMetrics;

#[derive(Debug)]
pub struct Config {
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Worker threads of the proxy service, already resolved from `0`.
    pub threads: usize,
    pub upstream: Upstream,
    /// `scheme://authority` without a trailing slash, when configured.
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit: RateLimits,
    pub reserved_prefix: String,
    pub public_paths: Vec<String>,
    pub session: SessionSettings,
    pub replay_store: ReplayStoreSpec,
    pub identity_headers: Vec<IdentityHeader>,
    /// Lower-case names, with `_` read as `-`, of every identity header: a
    /// client header whose normalized name is here never reaches the app.
    pub stripped_headers: Vec<String>,
    /// The token claims that identity headers read, the only ones a session
    /// keeps.
    pub mapped_claims: Vec<String>,
    pub orgs: Vec<Arc<Org>>,
    pub default_org: Option<usize>,
    pub hosts: HashMap<String, usize>,
    /// Path prefixes, longest first, so the most specific one wins.
    pub paths: Vec<(String, usize)>,
    /// Every file the config was read from, for the reloader to watch.
    pub files: Vec<PathBuf>,
    /// Digest of the bytes the config was read from: equal digests, same
    /// config.
    pub fingerprint: [u8; 32],
    /// Things `check` reports without refusing the config.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// As written, for logs.
    pub display: String,
}

/// Per client address (SPEC 11): login endpoints draw on a bucket of
/// `logins_burst` refilling at `logins_per_second`; refused credentials on
/// one of `failures_per_minute` refilling at that rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub logins_per_second: u32,
    pub logins_burst: u32,
    pub failures_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            logins_per_second: 10,
            logins_burst: 50,
            failures_per_minute: 30,
        }
    }
}

#[derive(Debug)]
pub struct SessionSettings {
    pub key: cookie::Key,
    pub cookie_name: String,
    pub state_cookie_name: String,
    pub ttl: u64,
    pub secure: bool,
    pub cache_max_entries: u64,
    /// Identifies the session secret without revealing it.
    pub fingerprint: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayStoreSpec {
    Memory,
    Redis(String),
}

#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: HeaderName,
    pub source: ClaimSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSource {
    Principal,
    Org,
    Claim(String),
}

#[derive(Debug)]
pub struct Org {
    pub name: String,
    pub enabled: bool,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub login_url: Option<url::Url>,
    pub home_path: String,
    pub logout_url: Option<String>,
    pub allowed_origins: Vec<String>,
    /// The `frame-ancestors` directive answered for this org, built once.
    pub frame_ancestors: String,
    pub keys: KeySet,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub leeway: u64,
    pub max_token_age: u64,
    pub principal_claim: String,
    pub org_claim: Option<String>,
    pub accept_bearer: bool,
    /// A Bearer token ssogate accepted still reaches the app (SPEC 6).
    pub forward_bearer: bool,
    pub accept_query_token: Option<String>,
    pub session_ttl: u64,
    pub code_flow: Option<CodeFlow>,
    pub upstream: Option<Upstream>,
    pub metrics: OrgMetrics,
}

#[derive(Debug)]
pub struct CodeFlow {
    pub client_id: String,
    pub client_secret: Secret,
    pub code_ttl: u64,
}

impl Config {
    /// The org of this name. Which org a request belongs to is
    /// `route::Router`'s to answer.
    pub fn org(&self, name: &str) -> Option<&Arc<Org>> {
        self.orgs.iter().find(|o| o.name == name)
    }
}

/// `Host` without its port; `None` when empty.
pub fn normalize_host(host: &str) -> Option<&str> {
    let host = host.trim();
    let bare = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    (!bare.is_empty()).then_some(bare)
}

#[cfg(test)]
mod tests {
    use super::normalize_host;

    #[test]
    fn host_without_port() {
        assert_eq!(normalize_host("Acme.test:8080"), Some("Acme.test"));
        assert_eq!(normalize_host("acme.test"), Some("acme.test"));
        assert_eq!(normalize_host("[::1]:80"), Some("::1"));
        assert_eq!(normalize_host(""), None);
    }
}
