//! The pingora `ProxyHttp` implementation. Read top to bottom, the phases are
//! the life of a request: decide it (the gate, or one of ssogate's own
//! endpoints) and record the decision, pick the upstream, rewrite the
//! request headers for the app, apply the framing policy to its response,
//! log it and count it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};

use crate::access_log::{self, AccessLine};
use crate::config::{Config, Upstream};
use crate::ctx::{Request, RequestCtx};
use crate::decision::{Decision, Refusal, Stage};
use crate::headers::{self, Peer};
use crate::metrics::{self, Outcome};
use crate::reply::Reply;
use crate::request;
use crate::route::Router;
use crate::state::Shared;
use crate::{flows, forward, framing, gate};

pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(shared: Arc<Shared>) -> Self {
        Gateway { shared }
    }
}

/// The only body ssogate reads itself is the code endpoint's JSON.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(&self.shared)
    }

    /// None: pingora's default is a response compression module that is
    /// off but still runs for every request; the app compresses if it
    /// wants to.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if self.judge(session, ctx).await? {
            return Ok(true);
        }
        if !forward::can_take(session) {
            return Ok(false);
        }
        // Almost every request: forwarded here, with the same rewrites as
        // the phases below, without pingora-proxy's general path.
        let addr = upstream_of(ctx).addr;
        forward::forward(session, addr, &mut ShortWay(ctx)).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(upstream_of(ctx).addr, false, String::new());
        peer.options.connection_timeout = Some(forward::CONNECT_TIMEOUT);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // The rewrite works on the bare parts (see `headers`); the target
        // is put back as the client sent it.
        let target = upstream.raw_path().to_vec();
        let mut parts = upstream.as_owned_parts();
        to_app(&mut parts, ctx)?;
        *upstream = RequestHeader::from(parts);
        upstream.set_raw_path(&target)
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
        framing::apply(response, ctx.org().map(|o| o.as_ref()))
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
        // After an answer of ssogate's own the connection is as good as new,
        // unless part of a request body is still unread on it.
        let reusable = code > 0 && session.response_written().is_none() && session.is_body_done();
        if !reusable {
            session.set_keepalive(None);
        }
        if code > 0 && session.response_written().is_none() {
            let navigation = request::is_navigation(session.req_header());
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
            can_reuse_downstream: reusable,
        }
    }

    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        // Never the query string: it may carry a token or a code.
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let outcome = settled(ctx.outcome(), status, e);
        let org_metrics: &metrics::OrgMetrics = match ctx.org() {
            Some(org) => &org.metrics,
            None => metrics::unrouted(),
        };
        if let Some(e) = e.filter(|e| e.esource() == &ErrorSource::Upstream) {
            org_metrics.upstream_error(upstream_error_kind(e));
        }
        let elapsed = ctx.started.elapsed();
        org_metrics.request(outcome, elapsed.as_secs_f64());
        let auth = ctx.auth();
        if let Some((method, result)) = auth {
            org_metrics.auth(method, result);
        }
        if access_log::enabled() {
            let req = session.req_header();
            access_log::write(&AccessLine {
                request_id: &ctx.request_id,
                org: ctx.org().map_or("_none", |o| o.name.as_str()),
                method: req.method.as_str(),
                path: req.uri.path(),
                status,
                outcome: outcome.label(),
                auth_method: auth.map(|(m, _)| m.label()),
                auth_result: auth.map(|(_, r)| r.label()),
                principal: ctx.identity().map(|i| i.principal.as_str()),
                client: ctx.client_ip,
                upstream: ctx.upstream_time,
                duration: elapsed,
                error: e.map(|e| e.etype().as_str()),
            });
        }
    }
}

impl Gateway {
    /// The gate's part of `request_filter`: decides the request, records
    /// the decision, and writes ssogate's own answer when there is one
    /// (`true`); `false` lets the request through to the app.
    pub async fn judge(
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
        let config = ctx.config.clone();
        let (stage, decision) = self.decide(session, &config, ctx).await;
        let Some(reply) = ctx.record(stage, decision) else {
            return Ok(false);
        };
        let framing = framing::own_reply_headers(ctx.org().map(|o| o.as_ref()));
        reply.write(session, &framing).await?;
        Ok(true)
    }

    /// Who decides the request, and what they decided: the checks no
    /// request passes, then an endpoint of ssogate's own or the gate.
    async fn decide(
        &self,
        session: &mut Session,
        config: &Config,
        ctx: &mut RequestCtx,
    ) -> (Stage, Decision) {
        let head = session.req_header();
        let endpoint = Router::new(config).endpoint(head.uri.path());
        let stage = endpoint.map_or(Stage::Gate, |e| e.stage(&head.method));
        let reads_body = endpoint.is_some_and(|e| e.reads_body(&head.method));
        let body = if reads_body && !ctx.ambiguous_framing {
            match request::read_body(session, MAX_BODY_BYTES).await {
                Ok(body) => body,
                Err(e) => return (stage, Decision::refuse(None, Refusal::BadBody(e))),
            }
        } else {
            bytes::Bytes::new()
        };
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let head = session.req_header();
        let req = Request::new(
            &self.shared,
            config,
            head,
            ctx.client_ip,
            &ctx.request_id,
            body,
        );
        ctx.trusted_peer = req.facts.trusted;
        ctx.navigation = req.facts.navigation;
        // Refused before any routing, whatever the path.
        if ctx.ambiguous_framing {
            return (
                Stage::Gate,
                Decision::refuse(None, Refusal::AmbiguousFraming),
            );
        }
        if req.facts.host.is_some_and(|h| !request::is_valid_host(h)) {
            return (Stage::Gate, Decision::refuse(None, Refusal::BadHost));
        }
        let decision = match endpoint {
            Some(endpoint) => flows::answer(&req, endpoint).await,
            None => gate::check(&req).await,
        };
        (stage, decision)
    }
}

/// The app of the request's org, or the global one.
fn upstream_of(ctx: &RequestCtx) -> &Upstream {
    ctx.org()
        .and_then(|o| o.upstream.as_ref())
        .unwrap_or(&ctx.config.upstream)
}

/// The request head on its way to the app (SPEC 6).
fn to_app(upstream: &mut http::request::Parts, ctx: &mut RequestCtx) -> pingora::Result<()> {
    let peer = Peer {
        client_ip: ctx.client_ip,
        trusted: ctx.trusted_peer,
        request_id: &ctx.request_id,
    };
    let identity = ctx.identity().map(|i| i.as_ref());
    let withhold_bearer = ctx.withholds_bearer();
    headers::rewrite_request(upstream, &ctx.config, identity, withhold_bearer, &peer)?;
    ctx.upstream_sent = Some(Instant::now());
    Ok(())
}

/// The short way's hooks: the same rewrites as pingora's path makes in
/// `upstream_request_filter`, `upstream_response_filter` and
/// `response_filter`.
struct ShortWay<'c>(&'c mut RequestCtx);

impl forward::Exchange for ShortWay<'_> {
    fn request(&mut self, session: &Session) -> pingora::Result<RequestHeader> {
        let mut head = forward::upstream_head(session);
        to_app(&mut head, self.0)?;
        Ok(RequestHeader::from(head))
    }

    fn response(&mut self, response: &mut ResponseHeader) -> pingora::Result<()> {
        let ctx = &mut *self.0;
        ctx.upstream_time = ctx.upstream_sent.map(|t| t.elapsed());
        framing::apply(response, ctx.org().map(|o| o.as_ref()))
    }
}

/// What a request finally counts as: its decision, unless it then failed
/// (SPEC 8's `error`: an upstream failure or a 5xx of ssogate's own).
fn settled(decided: Outcome, status: u16, error: Option<&Error>) -> Outcome {
    let reached_app = matches!(decided, Outcome::Proxied | Outcome::Public);
    let failed = match error {
        Some(_) => reached_app || status == 0 || status >= 500,
        None => !reached_app && status >= 500,
    };
    if failed {
        Outcome::Error
    } else {
        decided
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_request_counts_as_an_error() {
        let upstream = Error::explain(ErrorType::ConnectRefused, "refused");
        let client_gone = Error::explain(ErrorType::WriteError, "gone");
        let cases = [
            (Outcome::Proxied, 200, None, Outcome::Proxied),
            (Outcome::Proxied, 500, None, Outcome::Proxied),
            (Outcome::Proxied, 502, Some(&*upstream), Outcome::Error),
            (Outcome::Public, 200, Some(&*client_gone), Outcome::Error),
            (
                Outcome::Internal,
                302,
                Some(&*client_gone),
                Outcome::Internal,
            ),
            (Outcome::Internal, 0, Some(&*client_gone), Outcome::Error),
            (Outcome::Internal, 503, None, Outcome::Error),
            (Outcome::Unauthorized, 401, None, Outcome::Unauthorized),
        ];
        for (decided, status, error, want) in cases {
            assert_eq!(
                settled(decided, status, error),
                want,
                "{decided:?} {status}"
            );
        }
    }
}
