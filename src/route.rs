//! Which org a request belongs to, and which of ssogate's own endpoints it
//! asks for (SPEC 4). Each strategy has a name, so every caller says which
//! one it uses; all return the org itself.

use std::sync::Arc;

use crate::config::{normalize_host, CodeFlow, Config, Org};
use crate::decision::{Refusal, Stage};
use crate::metrics::AuthMethod;
use crate::token;

#[derive(Clone, Copy)]
pub struct Router<'a> {
    config: &'a Config,
}

impl<'a> Router<'a> {
    pub fn new(config: &'a Config) -> Self {
        Router { config }
    }

    /// A request for the app: by Host (case-insensitive, port ignored),
    /// then by path prefix, then `default_org`.
    pub fn route(self, host: Option<&str>, path: &str) -> Option<&'a Arc<Org>> {
        self.by_host(host)
            .or_else(|| self.by_path(path))
            .or_else(|| self.default_org())
    }

    /// The org a Host names: the only route that binds ssogate's own
    /// endpoints to an org by itself (their paths route nowhere).
    pub fn by_host(self, host: Option<&str>) -> Option<&'a Arc<Org>> {
        let host = normalize_host(host?)?;
        let index = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.config.hosts.get(&host.to_ascii_lowercase())
        } else {
            self.config.hosts.get(host)
        };
        index.and_then(|&i| self.config.orgs.get(i))
    }

    /// The org whose path prefix `path` starts with; the longest wins.
    pub fn by_path(self, path: &str) -> Option<&'a Arc<Org>> {
        self.config
            .paths
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .and_then(|&(_, i)| self.config.orgs.get(i))
    }

    pub fn default_org(self) -> Option<&'a Arc<Org>> {
        self.config
            .default_org
            .and_then(|i| self.config.orgs.get(i))
    }

    /// An endpoint's org when the request says no more than its Host: the
    /// Host's org, else whatever `/` routes to.
    pub fn for_endpoint(self, host: Option<&str>) -> Option<&'a Arc<Org>> {
        self.route(host, "/")
    }

    /// The org a session, a code or a state cookie names.
    pub fn by_name(self, name: &str) -> Option<&'a Arc<Org>> {
        self.config.org(name)
    }

    /// Flow C: the org whose `code_flow` has this client id, whatever the
    /// Host.
    pub fn by_client_id(self, client_id: &str) -> Option<(&'a Arc<Org>, &'a CodeFlow)> {
        self.config.orgs.iter().find_map(|org| {
            org.code_flow
                .as_ref()
                .filter(|flow| flow.client_id == client_id)
                .map(|flow| (org, flow))
        })
    }

    /// The org a URL-delivered token names in its org's `org_claim`. Read
    /// unverified, only to choose the keys that then verify it; the
    /// verification checks that the claim agrees with the org (SPEC 4).
    pub fn by_token_claim(self, token: &str) -> Option<&'a Arc<Org>> {
        self.config.orgs.iter().find(|org| {
            org.org_claim
                .as_deref()
                .and_then(|claim| token::unverified_claim(token, claim))
                .is_some_and(|name| name == org.name)
        })
    }

    /// Whether `path` passes without a session (whatever the org).
    pub fn is_public(self, path: &str) -> bool {
        self.config
            .public_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }

    /// The endpoint a path under `reserved_prefix` asks for; `None` for a
    /// path of the app.
    pub fn endpoint(self, path: &str) -> Option<Endpoint> {
        let tail = path.strip_prefix(self.config.reserved_prefix.as_str())?;
        (tail.is_empty() || tail.starts_with('/')).then(|| Endpoint::of(tail))
    }
}

/// The one guard for a disabled org: 403 to everything but public paths
/// (SPEC 4), so that it never loops through its login. `credential` is the
/// kind of credential the request carried, counted as `disabled`.
pub fn ensure_enabled(org: &Org, credential: Option<AuthMethod>) -> Result<(), Refusal> {
    if org.enabled {
        Ok(())
    } else {
        Err(Refusal::OrgDisabled(credential))
    }
}

/// ssogate's own endpoints (SPEC 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Callback,
    Jwt,
    Code,
    Authorize,
    Logout,
    Whoami,
    Bridge,
    /// A path under the prefix that names no endpoint.
    Unknown,
}

impl Endpoint {
    /// The endpoint for the part of the path after `reserved_prefix`.
    pub fn of(tail: &str) -> Self {
        match tail {
            "/login" => Endpoint::Login,
            "/callback" => Endpoint::Callback,
            "/jwt" => Endpoint::Jwt,
            "/code" => Endpoint::Code,
            "/authorize" => Endpoint::Authorize,
            "/logout" => Endpoint::Logout,
            "/whoami" => Endpoint::Whoami,
            "/bridge" => Endpoint::Bridge,
            _ => Endpoint::Unknown,
        }
    }

    pub fn allows(self, method: &http::Method) -> bool {
        let get = method == http::Method::GET || method == http::Method::HEAD;
        match self {
            Endpoint::Code => method == http::Method::POST,
            Endpoint::Logout => get || method == http::Method::POST,
            _ => get,
        }
    }

    /// The login endpoints of SPEC 11, which draw on the login bucket of
    /// their client's address.
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Endpoint::Login
                | Endpoint::Callback
                | Endpoint::Jwt
                | Endpoint::Code
                | Endpoint::Authorize
                | Endpoint::Bridge
        )
    }

    /// The only request whose body ssogate reads: the code endpoint's JSON.
    pub fn reads_body(self, method: &http::Method) -> bool {
        self == Endpoint::Code && method == http::Method::POST
    }

    pub fn stage(self, method: &http::Method) -> Stage {
        if self.reads_body(method) {
            Stage::BackChannel
        } else {
            Stage::Endpoint
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn config() -> Result<Config, crate::config::FieldError> {
        let s = "k".repeat(32);
        let yaml = format!(
            "upstream: http://127.0.0.1:1
session: {{secret: '{s}'}}
public_paths: [/static/]
default_org: acme
organizations:
  acme:
    hosts: [acme.test]
    keys: [{{alg: HS256, secret: '{s}'}}]
    org_claim: orgId
  globex:
    hosts: [globex.test]
    paths: [/globex/, /globex/deep/]
    keys: [{{alg: HS256, secret: '{s}'}}]
    code_flow: {{client_id: gx, client_secret: '{s}'}}
  initech:
    paths: [/globex/deep/er/]
    keys: [{{alg: HS256, secret: '{s}'}}]
    org_claim: orgId
"
        );
        crate::config::parse(&yaml, std::path::Path::new("/nonexistent/config.yaml"))
    }

    fn name(org: Option<&Arc<Org>>) -> Option<&str> {
        org.map(|o| o.name.as_str())
    }

    #[test]
    fn host_then_longest_path_then_default() -> TestResult {
        let config = config()?;
        let router = Router::new(&config);
        let cases = [
            (Some("ACME.test:8443"), "/globex/x", Some("acme")),
            (Some("globex.test"), "/", Some("globex")),
            (Some("other.test"), "/globex/x", Some("globex")),
            (Some("other.test"), "/globex/deep/er/x", Some("initech")),
            (None, "/x", Some("acme")),
            (Some("acme.test.evil"), "/x", Some("acme")),
        ];
        for (host, path, want) in cases {
            assert_eq!(name(router.route(host, path)), want, "{host:?} {path}");
        }
        assert_eq!(name(router.by_host(Some("acme.test.evil"))), None);
        assert_eq!(
            name(router.for_endpoint(Some("globex.test"))),
            Some("globex")
        );
        assert_eq!(name(router.for_endpoint(Some("other.test"))), Some("acme"));
        Ok(())
    }

    #[test]
    fn the_code_endpoint_routes_by_client_id_and_tokens_by_their_claim() -> TestResult {
        let config = config()?;
        let router = Router::new(&config);
        assert_eq!(
            name(router.by_client_id("gx").map(|(o, _)| o)),
            Some("globex")
        );
        assert!(router.by_client_id("nope").is_none());
        let token = |claims: &str| {
            use base64::Engine;
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims))
        };
        assert_eq!(
            name(router.by_token_claim(&token(r#"{"orgId":"initech"}"#))),
            Some("initech")
        );
        // globex has no org_claim: a token cannot name it.
        assert_eq!(
            name(router.by_token_claim(&token(r#"{"orgId":"globex"}"#))),
            None
        );
        Ok(())
    }

    #[test]
    fn reserved_paths_name_their_endpoint() -> TestResult {
        let config = config()?;
        let router = Router::new(&config);
        assert_eq!(router.endpoint("/_sso/jwt"), Some(Endpoint::Jwt));
        assert_eq!(router.endpoint("/_sso"), Some(Endpoint::Unknown));
        assert_eq!(router.endpoint("/_sso/jwt/x"), Some(Endpoint::Unknown));
        assert_eq!(router.endpoint("/_ssox"), None);
        assert_eq!(router.endpoint("/app"), None);
        assert!(router.is_public("/static/a.js"));
        assert!(!router.is_public("/statics"));
        let post = http::Method::POST;
        assert_eq!(Endpoint::Code.stage(&post), Stage::BackChannel);
        assert_eq!(Endpoint::Code.stage(&http::Method::GET), Stage::Endpoint);
        assert!(Endpoint::Logout.allows(&post) && !Endpoint::Jwt.allows(&post));
        let logins: Vec<&str> = [
            "/login",
            "/callback",
            "/jwt",
            "/code",
            "/authorize",
            "/bridge",
            "/logout",
            "/whoami",
            "/x",
        ]
        .into_iter()
        .filter(|tail| Endpoint::of(tail).is_login())
        .collect();
        assert_eq!(
            logins,
            [
                "/login",
                "/callback",
                "/jwt",
                "/code",
                "/authorize",
                "/bridge"
            ]
        );
        Ok(())
    }
}
