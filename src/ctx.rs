//! The per-request context: [`Request`], what the gate and the endpoints
//! decide on, and [`RequestCtx`], what the proxy keeps across pingora's
//! phases, the decision included.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::http::RequestHeader;

use crate::clock;
use crate::config::{Config, Org};
use crate::decision::{Auth, Decided, Decision, Refusal, Stage};
use crate::framing;
use crate::limit::Limited;
use crate::metrics::{self, AuthMethod, AuthResult, Outcome};
use crate::reply::Reply;
use crate::request::{self, Facts};
use crate::route::Router;
use crate::session::Identity;
use crate::state::{InflightGuard, Shared};

/// One request as the gate and the endpoints see it. They only read it:
/// what they decide, they return.
pub struct Request<'a> {
    pub shared: &'a Shared,
    /// The config snapshot the request started with.
    pub config: &'a Config,
    pub head: &'a RequestHeader,
    pub facts: Facts<'a>,
    /// For log lines about this request.
    pub request_id: &'a str,
    /// Unix seconds, read once.
    pub now: i64,
    /// The body, read only for the endpoint that takes one.
    pub body: bytes::Bytes,
}

impl<'a> Request<'a> {
    pub fn new(
        shared: &'a Shared,
        config: &'a Config,
        head: &'a RequestHeader,
        client_ip: Option<IpAddr>,
        request_id: &'a str,
        body: bytes::Bytes,
    ) -> Self {
        Request {
            shared,
            config,
            head,
            facts: Facts::of(head, config, client_ip),
            request_id,
            now: clock::now(),
            body,
        }
    }

    pub fn router(&self) -> Router<'a> {
        Router::new(self.config)
    }

    /// The client's address as the rate limits key it (SPEC 11): the peer,
    /// or what trusted proxies say in `X-Forwarded-For`. Read only where a
    /// limit applies.
    pub fn client_address(&self) -> IpAddr {
        request::client_address(self.head, self.config, self.facts.client_ip)
    }

    /// A request to a login endpoint (SPEC 11): draws on its address's
    /// login bucket, or is refused (429) while that bucket or the failure
    /// bucket is empty.
    pub fn draw_login(&self) -> Result<(), Refusal> {
        let limits = &self.config.rate_limit;
        self.shared
            .limiter
            .login(self.client_address(), limits)
            .map_err(Refusal::RateLimited)
    }

    /// Before a credential that is not known good is checked: refused
    /// (429) while the address's failure bucket is empty.
    pub fn may_check_credential(&self) -> Result<(), Limited> {
        let limits = &self.config.rate_limit;
        self.shared.limiter.may_check(self.client_address(), limits)
    }

    /// After the decision: a refused credential draws on the address's
    /// failure bucket.
    pub fn account(&self, decision: &Decision) {
        if decision.refused_credential() {
            let limits = &self.config.rate_limit;
            self.shared.limiter.failed(self.client_address(), limits);
        }
    }

    /// The framing rule of SPEC 11, for a request that would start or
    /// finish a login of `org`: refused when the browser says it comes from
    /// a frame of another origin, unless its `Referer` is this origin or one
    /// the org allows.
    pub fn ensure_framing_allowed(&self, org: Option<&Org>) -> Result<(), Refusal> {
        if !framing::is_framed_cross_origin(self.head) {
            return Ok(());
        }
        let own = request::public_base(self.config, self.head, &self.facts);
        let allowed = org.map_or(&[][..], |o| &o.allowed_origins[..]);
        if framing::referer_allowed(self.head, own.as_deref(), allowed) {
            Ok(())
        } else {
            Err(Refusal::FramingNotAllowed)
        }
    }

    /// A login endpoint's refusal, unless a frame `org` does not allow
    /// asks: then the framing rule's 403, so such a frame is told nothing
    /// else about the login it tried.
    pub fn refuse_login(&self, org: Option<Arc<Org>>, refusal: Refusal) -> Decision {
        let refusal = match self.ensure_framing_allowed(org.as_deref()) {
            Ok(()) => refusal,
            Err(framing) => framing,
        };
        Decision::refuse(org, refusal)
    }
}

/// What the proxy keeps of one request from its head to its log line.
pub struct RequestCtx {
    /// The config snapshot this request started with, kept to the end.
    pub config: Arc<Config>,
    pub request_id: String,
    pub started: Instant,
    pub client_ip: Option<IpAddr>,
    /// Whether the peer is a trusted proxy whose X-Forwarded-* we believe.
    pub trusted_peer: bool,
    /// Whether the client is a browser navigating (HTML answers).
    pub navigation: bool,
    /// `Content-Length` and `Transfer-Encoding` together: the body's end is
    /// unknowable, so it is never read.
    pub ambiguous_framing: bool,
    decided: Decided,
    /// When the request left for the app, and how long its head took back.
    pub upstream_sent: Option<Instant>,
    pub upstream_time: Option<Duration>,
    _inflight: InflightGuard,
}

impl RequestCtx {
    pub fn new(shared: &Shared) -> Self {
        RequestCtx {
            config: shared.config.load_full(),
            request_id: new_request_id(),
            started: Instant::now(),
            client_ip: None,
            trusted_peer: false,
            navigation: false,
            ambiguous_framing: false,
            decided: Decided::default(),
            upstream_sent: None,
            upstream_time: None,
            _inflight: InflightGuard::new(&shared.inflight),
        }
    }

    /// Keeps what was decided: the one place a request's org, credential
    /// check and outcome are set. Returns ssogate's own answer, if it
    /// answers (`None`: on to the app).
    pub fn record(&mut self, stage: Stage, decision: Decision) -> Option<Reply> {
        let (decided, reply) = decision.settle(stage, &self.request_id, self.navigation);
        if let Some(kind) = decided.rate_limited {
            let org_metrics = decided
                .org
                .as_ref()
                .map_or(metrics::unrouted(), |o| &o.metrics);
            org_metrics.rate_limited(kind);
        }
        self.decided = decided;
        reply
    }

    pub fn org(&self) -> Option<&Arc<Org>> {
        self.decided.org.as_ref()
    }

    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.decided.identity.as_ref()
    }

    pub fn auth(&self) -> Option<Auth> {
        self.decided.auth
    }

    /// Whether the app must not see the request's `Authorization`: it held
    /// the Bearer token ssogate accepted, and the org does not set
    /// `forward_bearer` (SPEC 6).
    pub fn withholds_bearer(&self) -> bool {
        self.decided.auth == Some((AuthMethod::Bearer, AuthResult::Ok))
            && self.org().is_some_and(|o| !o.forward_bearer)
    }

    /// The outcome decided; the log may still see the request fail.
    pub fn outcome(&self) -> Outcome {
        self.decided.outcome
    }
}

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
