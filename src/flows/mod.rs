//! ssogate's own endpoints under `reserved_prefix`, one module per flow.

mod bridge;
mod callback;
mod code;
pub mod login;
mod logout;
mod whoami;

use std::sync::Arc;

use pingora::http::RequestHeader;

use crate::config::{Config, Org};
use crate::metrics::{AuthMethod, AuthResult, Outcome};
use crate::reply::Reply;
use crate::request::Facts;
use crate::state::Shared;

pub use callback::establish_session;

/// One request as the gate and the flows see it, plus what they decided
/// (for metrics and the access log).
pub struct Exchange<'a> {
    pub shared: &'a Shared,
    pub config: &'a Config,
    pub req: &'a RequestHeader,
    pub facts: Facts<'a>,
    pub request_id: &'a str,
    pub now: i64,
    /// The request body, read only for endpoints that take one.
    pub body: bytes::Bytes,
    pub org: Option<Arc<Org>>,
    pub auth: Option<(AuthMethod, AuthResult)>,
    pub outcome: Outcome,
}

impl Exchange<'_> {
    pub fn error(&self, status: u16, code: &str) -> Reply {
        Reply::error(status, code, self.request_id, self.facts.navigation)
    }

    /// A refused token, code or state: 401, never a session.
    pub fn refused(&mut self, method: AuthMethod, result: AuthResult) -> Reply {
        self.auth = Some((method, result));
        self.error(401, "invalid_token")
    }
}

/// Answers a request to `reserved_prefix` + `tail`.
pub async fn handle(x: &mut Exchange<'_>, tail: &str) -> Reply {
    x.outcome = Outcome::Internal;
    // A disabled org answers 403 to everything, its own endpoints included,
    // so that it can never loop through a login. The code endpoint serves
    // the org of its client credentials, whatever the Host.
    let routed = x.config.org_by_host(x.facts.host);
    if let Some(org) = routed.filter(|o| !o.enabled && tail != "/code") {
        x.org = Some(org.clone());
        x.outcome = Outcome::Forbidden;
        return x.error(403, "organization_disabled");
    }
    // Until a flow learns better (from a state cookie, a code, a session),
    // the request is its Host's org, or default_org: for metrics and for
    // the framing policy of an error page shown inside a portal's iframe.
    x.org = routed
        .or_else(|| x.config.route(x.facts.host, "/"))
        .cloned();
    let method = &x.req.method;
    let get = method == http::Method::GET || method == http::Method::HEAD;
    match tail {
        "/login" if get => login::start_from_endpoint(x),
        "/callback" if get => callback::callback(x).await,
        "/jwt" if get => callback::jwt(x).await,
        "/logout" if get || method == http::Method::POST => logout::logout(x).await,
        "/whoami" if get => whoami::whoami(x).await,
        "/code" if method == http::Method::POST => {
            let body = x.body.clone();
            code::create(x, &body)
        }
        "/authorize" if get => code::authorize(x).await,
        "/bridge" if get => bridge::bridge(x).await,
        "/login" | "/callback" | "/jwt" | "/logout" | "/whoami" | "/code" | "/authorize"
        | "/bridge" => x.error(405, "method_not_allowed"),
        _ => x.error(404, "not_found"),
    }
}
