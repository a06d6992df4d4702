//! The pingora `ProxyHttp` implementation. Read top to bottom, the phases are
//! the life of a request: gate it, pick the upstream, rewrite the request
//! headers (identity in, spoofs and our cookies out), rewrite the response
//! headers (framing policy), log it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::header::{CONTENT_SECURITY_POLICY, COOKIE, X_FRAME_OPTIONS};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};

use crate::clock;
use crate::config::{ClaimSource, Config, Org};
use crate::flows::{self, Exchange};
use crate::gate::{self, Verdict};
use crate::metrics::{self, AuthMethod, AuthResult, Outcome};
use crate::reply::Reply;
use crate::request::{self, Facts};
use crate::session::Identity;
use crate::state::{InflightGuard, Shared};

pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(shared: Arc<Shared>) -> Self {
        Gateway { shared }
    }
}

/// Per-request state, carried through the phases.
pub struct RequestCtx {
    /// The config snapshot this request started with, kept to the end.
    config: Arc<Config>,
    request_id: String,
    started: Instant,
    org: Option<Arc<Org>>,
    identity: Option<Arc<Identity>>,
    outcome: Outcome,
    auth: Option<(AuthMethod, AuthResult)>,
    client_ip: Option<IpAddr>,
    trusted_peer: bool,
    /// When the request left for the app, and how long its head took back.
    upstream_sent: Option<Instant>,
    upstream_time: Option<Duration>,
    ambiguous_framing: bool,
    _inflight: InflightGuard,
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            config: self.shared.config.load_full(),
            request_id: new_request_id(),
            started: Instant::now(),
            org: None,
            identity: None,
            outcome: Outcome::Error,
            auth: None,
            client_ip: None,
            trusted_peer: false,
            upstream_sent: None,
            upstream_time: None,
            ambiguous_framing: false,
            _inflight: InflightGuard::new(&self.shared.inflight),
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if request::is_ambiguous_framing(session) {
            // The body's end is unknowable: never read another request
            // from this connection.
            ctx.ambiguous_framing = true;
            session.set_keepalive(None);
        }
        let reply = self.decide(session, ctx).await;
        match reply {
            None => Ok(false),
            Some(reply) => {
                let extra = framing_headers_for_own_reply(ctx.org.as_deref());
                reply.write(session, &extra).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let upstream = ctx
            .org
            .as_ref()
            .and_then(|o| o.upstream.as_ref())
            .unwrap_or(&ctx.config.upstream);
        let mut peer = HttpPeer::new(upstream.addr, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        strip_identity_headers(upstream, &ctx.config.stripped_headers);
        if let Some(identity) = &ctx.identity {
            inject_identity(upstream, &ctx.config, identity)?;
        }
        strip_own_cookies(upstream, &ctx.config);
        set_forwarded(upstream, ctx)?;
        ctx.upstream_sent = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.upstream_time = ctx.upstream_sent.map(|t| t.elapsed());
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        apply_framing_policy(response, ctx.org.as_deref())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let navigation = session
                .req_header()
                .headers
                .get("sec-fetch-mode")
                .is_some_and(|m| m.as_bytes() == b"navigate");
            let error = if code >= 500 {
                "upstream_unavailable"
            } else {
                "bad_request"
            };
            let reply = Reply::error(code, error, &ctx.request_id, navigation);
            if let Err(e) = reply.write(session, &[]).await {
                tracing::debug!(request_id = %ctx.request_id, error = %e, "could not send the error page");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // Never the query string: it may carry a token or a code.
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let mut outcome = ctx.outcome;
        let org_metrics: &metrics::OrgMetrics = match &ctx.org {
            Some(org) => &org.metrics,
            None => metrics::unrouted(),
        };
        if let Some(e) = e {
            if matches!(outcome, Outcome::Proxied | Outcome::Public) || status >= 500 || status == 0
            {
                outcome = Outcome::Error;
            }
            if e.esource() == &ErrorSource::Upstream {
                org_metrics.upstream_error(upstream_error_kind(e));
            }
        } else if status >= 500 && !matches!(outcome, Outcome::Proxied | Outcome::Public) {
            outcome = Outcome::Error;
        }
        let elapsed = ctx.started.elapsed();
        org_metrics.request(outcome, elapsed.as_secs_f64());
        if let Some((method, result)) = ctx.auth {
            org_metrics.auth(method, result);
        }
        let req = session.req_header();
        tracing::info!(
            target: "ssogate::access",
            request_id = %ctx.request_id,
            org = ctx.org.as_ref().map_or("_none", |o| o.name.as_str()),
            method = %req.method,
            path = req.uri.path(),
            status,
            outcome = outcome.label(),
            auth_method = ctx.auth.map(|(m, _)| m.label()),
            auth_result = ctx.auth.map(|(_, r)| r.label()),
            principal = ctx.identity.as_ref().map(|i| i.principal.as_str()),
            client = ctx.client_ip.map(tracing::field::display),
            upstream_ms = ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            error = e.map(|e| e.etype().as_str()),
        );
    }
}

impl Gateway {
    /// The gate: `None` lets the request through to the app, `Some` is the
    /// answer ssogate gives itself.
    async fn decide(&self, session: &mut Session, ctx: &mut RequestCtx) -> Option<Reply> {
        let config = ctx.config.clone();
        // A body is only read for the one endpoint that takes one, and never
        // when its framing is ambiguous.
        let takes_body = !ctx.ambiguous_framing
            && session.req_header().method == http::Method::POST
            && config.reserved_tail(session.req_header().uri.path()) == Some("/code");
        let body = if takes_body {
            match request::read_body(session, MAX_BODY_BYTES).await {
                Ok(body) => body,
                Err(status) => {
                    ctx.outcome = Outcome::Internal;
                    return Some(Reply::error(status, "bad_body", &ctx.request_id, false));
                }
            }
        } else {
            bytes::Bytes::new()
        };
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let req = session.req_header();
        let facts = Facts::of(req, &config, ctx.client_ip);
        ctx.trusted_peer = facts.trusted;
        let mut x = Exchange {
            shared: &self.shared,
            config: &config,
            req,
            facts,
            request_id: &ctx.request_id,
            now: clock::now(),
            body,
            org: None,
            auth: None,
            outcome: Outcome::Error,
        };
        let malformed = if ctx.ambiguous_framing {
            Some("ambiguous_framing")
        } else if x.facts.host.is_some_and(|h| !request::is_valid_host(h)) {
            Some("bad_host")
        } else {
            None
        };
        let reply = if let Some(code) = malformed {
            // Refused at the gate, before any routing.
            x.outcome = Outcome::Unauthorized;
            Some(x.error(400, code))
        } else if let Some(tail) = config.reserved_tail(x.facts.path) {
            Some(flows::handle(&mut x, tail).await)
        } else {
            match gate::check(&mut x).await {
                Verdict::Pass(identity) => {
                    ctx.identity = identity;
                    None
                }
                Verdict::Answer(reply) => Some(reply),
            }
        };
        ctx.org = x.org;
        ctx.auth = x.auth;
        ctx.outcome = x.outcome;
        reply
    }
}

/// The only body ssogate reads itself is the code endpoint's JSON.
const MAX_BODY_BYTES: usize = 64 * 1024;

fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; 8] = rand::random();
    let mut id = String::with_capacity(16);
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    id
}

fn upstream_error_kind(e: &Error) -> &'static str {
    match e.etype() {
        ErrorType::ConnectTimedout => "connect_timeout",
        ErrorType::ConnectRefused => "connect_refused",
        ErrorType::ConnectError | ErrorType::ConnectNoRoute => "connect_error",
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => "timeout",
        ErrorType::ConnectionClosed => "connection_closed",
        ErrorType::InvalidHTTPHeader | ErrorType::H1Error | ErrorType::H2Error => "protocol",
        _ => "other",
    }
}

/// Removes every client header that could pass for an identity header:
/// any case, `_` for `-`.
fn strip_identity_headers(upstream: &mut RequestHeader, stripped: &[String]) {
    let doomed: Vec<http::HeaderName> = upstream
        .headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            stripped.iter().any(|s| {
                s.len() == name.len()
                    && s.bytes()
                        .zip(name.bytes())
                        .all(|(a, b)| a == if b == b'_' { b'-' } else { b })
            })
        })
        .cloned()
        .collect();
    for name in doomed {
        upstream.remove_header(&name);
    }
}

fn inject_identity(
    upstream: &mut RequestHeader,
    config: &Config,
    identity: &Identity,
) -> pingora::Result<()> {
    for header in &config.identity_headers {
        let value = match &header.source {
            ClaimSource::Principal => Some(identity.principal.clone()),
            ClaimSource::Org => Some(identity.org.clone()),
            ClaimSource::Claim(claim) => identity.claim_text(claim),
        };
        if let Some(value) = value {
            upstream.insert_header(header.name.clone(), value)?;
        }
    }
    Ok(())
}

/// The session and state cookies are ssogate's alone; the app's own cookies
/// pass untouched.
fn strip_own_cookies(upstream: &mut RequestHeader, config: &Config) {
    let ours = [
        config.session.cookie_name.as_str(),
        config.session.state_cookie_name.as_str(),
    ];
    let is_ours = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default().trim();
        ours.contains(&name)
    };
    let values: Vec<&str> = upstream
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !values.iter().any(|v| v.split(';').any(is_ours)) {
        return;
    }
    let kept: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !is_ours(p))
        .collect();
    let joined = kept.join("; ");
    upstream.remove_header(&COOKIE);
    if !joined.is_empty() {
        // `joined` is made only of parts of headers that were valid.
        let _ = upstream.insert_header(COOKIE, joined);
    }
}

/// X-Forwarded-For/-Proto/-Host as a well-behaved proxy sets them: a
/// trusted proxy's values are extended, anyone else's replaced.
fn set_forwarded(upstream: &mut RequestHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    let trusted = ctx.trusted_peer;
    if let Some(ip) = ctx.client_ip {
        let previous = upstream
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .filter(|_| trusted)
            .map(str::to_owned);
        let value = match previous {
            Some(p) if !p.is_empty() => format!("{p}, {ip}"),
            _ => ip.to_string(),
        };
        upstream.insert_header("x-forwarded-for", value)?;
    }
    let proto = request::client_scheme(&ctx.config, upstream, trusted).to_owned();
    upstream.insert_header("x-forwarded-proto", proto)?;
    let keep_host = trusted && upstream.headers.contains_key("x-forwarded-host");
    if !keep_host {
        match request::host(upstream).map(str::to_owned) {
            Some(host) => upstream.insert_header("x-forwarded-host", host)?,
            None => {
                upstream.remove_header("x-forwarded-host");
            }
        }
    }
    if !(trusted && upstream.headers.contains_key("x-request-id")) {
        upstream.insert_header("x-request-id", ctx.request_id.as_str())?;
    }
    Ok(())
}

/// Who may frame the app: `frame-ancestors 'self' <allowed_origins>` for an
/// org that allows embedding (replacing the app's own and its
/// X-Frame-Options), else `'self'` unless the app already decided.
fn apply_framing_policy(response: &mut ResponseHeader, org: Option<&Org>) -> pingora::Result<()> {
    let embeddable = org.filter(|o| !o.allowed_origins.is_empty());
    let policies: Vec<String> = response
        .headers
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let has_frame_ancestors = policies
        .iter()
        .any(|p| directives(p).any(is_frame_ancestors));
    let Some(org) = embeddable else {
        if !has_frame_ancestors {
            set_policies(response, policies, "frame-ancestors 'self'")?;
        }
        return Ok(());
    };
    response.remove_header(&X_FRAME_OPTIONS);
    let cleaned: Vec<String> = policies
        .iter()
        .map(|p| {
            directives(p)
                .filter(|d| !is_frame_ancestors(d))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    set_policies(response, cleaned, &org.frame_ancestors)
}

fn directives(policy: &str) -> impl Iterator<Item = &str> {
    policy.split(';').map(str::trim).filter(|d| !d.is_empty())
}

fn is_frame_ancestors(directive: &str) -> bool {
    directive
        .split_ascii_whitespace()
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("frame-ancestors"))
}

/// Rewrites the CSP headers, `directive` added to the first (or to a new
/// header when the app sent none). Policies left empty are dropped.
fn set_policies(
    response: &mut ResponseHeader,
    policies: Vec<String>,
    directive: &str,
) -> pingora::Result<()> {
    response.remove_header(&CONTENT_SECURITY_POLICY);
    let mut first = true;
    for policy in policies.into_iter().filter(|p| !p.trim().is_empty()) {
        let value = if first {
            format!("{}; {directive}", policy.trim_end_matches([';', ' ']))
        } else {
            policy
        };
        first = false;
        response.append_header(CONTENT_SECURITY_POLICY, value)?;
    }
    if first {
        response.append_header(CONTENT_SECURITY_POLICY, directive.to_owned())?;
    }
    Ok(())
}

/// ssogate's own pages get the same framing policy as the app's.
fn framing_headers_for_own_reply(org: Option<&Org>) -> [(http::HeaderName, String); 1] {
    let policy = org.map_or_else(
        || "frame-ancestors 'self'".to_owned(),
        |o| o.frame_ancestors.clone(),
    );
    [(CONTENT_SECURITY_POLICY, policy)]
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn csp_after(app_csp: &[&str], org_origins: Option<&str>) -> TestResult<Vec<String>> {
        let mut response = ResponseHeader::build(200, None)?;
        for p in app_csp {
            response.append_header(CONTENT_SECURITY_POLICY, *p)?;
        }
        response.append_header(X_FRAME_OPTIONS, "DENY")?;
        let config = org_origins.map(test_config).transpose()?;
        let org = config.as_ref().and_then(|c| c.orgs.first().cloned());
        apply_framing_policy(&mut response, org.as_deref())?;
        let policies = response
            .headers
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| v.to_str().map(str::to_owned))
            .collect::<Result<_, _>>()?;
        Ok(policies)
    }

    fn test_config(origin: &str) -> TestResult<Config> {
        let yaml = format!(
            "upstream: http://127.0.0.1:1\nsession: {{secret: '{s}'}}\norganizations:\n  acme:\n    allowed_origins: ['{origin}']\n    keys: [{{alg: HS256, secret: '{s}'}}]\n",
            s = "k".repeat(32)
        );
        Ok(crate::config::parse(
            &yaml,
            std::path::Path::new("/nonexistent/config.yaml"),
        )?)
    }

    #[test]
    fn frame_ancestors_is_replaced_for_embeddable_orgs() -> TestResult {
        assert_eq!(
            csp_after(
                &["default-src 'self'; frame-ancestors 'none'"],
                Some("https://portal.example")
            )?,
            vec!["default-src 'self'; frame-ancestors 'self' https://portal.example"]
        );
        assert_eq!(
            csp_after(&[], Some("https://portal.example"))?,
            vec!["frame-ancestors 'self' https://portal.example"]
        );
        Ok(())
    }

    #[test]
    fn the_apps_own_frame_ancestors_is_kept_otherwise() -> TestResult {
        assert_eq!(
            csp_after(&["frame-ancestors https://x.example"], None)?,
            vec!["frame-ancestors https://x.example"]
        );
        assert_eq!(
            csp_after(&["default-src 'self'"], None)?,
            vec!["default-src 'self'; frame-ancestors 'self'"]
        );
        Ok(())
    }

    #[test]
    fn spoofed_identity_headers_are_stripped_in_every_spelling() -> TestResult {
        let mut req = RequestHeader::build("GET", b"/", None)?;
        req.append_header("X-Auth-Request-User", "a")?;
        req.append_header("x_auth_request_user", "b")?;
        req.append_header("X-AUTH-REQUEST-EMAIL", "c")?;
        req.append_header("x-other", "d")?;
        let stripped = vec![
            "x-auth-request-user".to_owned(),
            "x-auth-request-email".to_owned(),
        ];
        strip_identity_headers(&mut req, &stripped);
        let names: Vec<_> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(names, vec!["x-other"]);
        Ok(())
    }
}
