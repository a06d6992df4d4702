//! What ssogate decided about a request: let it through to the app, or answer
//! it itself. The gate and every endpoint return one [`Decision`]; the proxy
//! records it once ([`Decision::settle`]) and the access log and the metrics
//! read that record, so a request's org, credential check and outcome are
//! each written in one place.

use std::sync::Arc;

use serde_json::json;

use crate::config::Org;
use crate::limit::Limited;
use crate::metrics::{AuthMethod, AuthResult, LimitKind, Outcome};
use crate::reply::Reply;
use crate::request::BodyError;
use crate::session::Identity;

/// A credential check as counted in `ssogate_auth_total`: how the request
/// tried to authenticate, and the verdict.
pub type Auth = (AuthMethod, AuthResult);

/// Who decided. A refusal keeps the request from the app when the gate makes
/// it, and is merely the answer when one of ssogate's own endpoints does
/// (SPEC 8's `unauthorized` vs `internal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The gate in front of the app, and the checks made before routing.
    Gate,
    /// An endpoint under `reserved_prefix` that browsers and scripts visit.
    Endpoint,
    /// `POST /code`, called by the customer's backend: it always speaks JSON.
    BackChannel,
}

pub enum Verdict {
    /// To the app without an identity: a public path.
    Public,
    /// To the app, as this identity.
    Proxy(Arc<Identity>),
    /// The 302 to the org's `login_url` that starts flow A.
    LoginRedirect(Reply),
    /// An answer of ssogate's own: an endpoint's, or the query-token redirect.
    Answer(Reply),
    Refuse(Refusal),
}

/// Why ssogate refuses a request, and everything that follows from it: the
/// status, the error code, what it counts as, and the credential check it
/// counts.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// `Content-Length` and `Transfer-Encoding` together (SPEC 6).
    #[error("the request has both Content-Length and Transfer-Encoding")]
    AmbiguousFraming,
    /// A Host that cannot go into a URL ssogate hands out.
    #[error("the Host cannot be used in a URL")]
    BadHost,
    #[error("the request body was refused: {0}")]
    BadBody(BodyError),
    /// No org for the request (SPEC 4): a browser's navigation gets 404 (so
    /// does `/login`, which only browsers visit), a script 401.
    #[error("the request routes to no organization")]
    Unrouted { navigation: bool },
    /// A disabled org answers 403 to everything but public paths; with the
    /// credential it carried, if any (SPEC 8 counts it `disabled`).
    #[error("the organization is disabled")]
    OrgDisabled(Option<AuthMethod>),
    /// The org has no `login_url`, so nobody can sign in through it.
    #[error("the organization has no login_url")]
    NoLoginUrl,
    #[error("internal error")]
    Internal,
    /// A refused token, code or state (SPEC 4: 401, never a session).
    #[error("the {} credential was refused ({})", .0.label(), .1.label())]
    Token(AuthMethod, AuthResult),
    /// A URL-delivered token for which no org could be found.
    #[error("no organization for the {} token", .0.label())]
    NoOrgForToken(AuthMethod),
    /// The replay store cannot spend a `jti` or a code: fail closed.
    #[error("the replay store is unavailable")]
    ReplayStoreDown,
    #[error("the session does not fit in a cookie")]
    SessionTooLarge(AuthMethod),
    /// No credential: a script is told where the login starts.
    #[error("no credential")]
    Unauthenticated { login_url: Option<String> },
    /// Bad client credentials at the code endpoint.
    #[error("invalid client credentials ({})", .0.label())]
    InvalidClient(AuthResult),
    /// The code endpoint's JSON lacks a field or has one of the wrong type.
    #[error("{error}: {field}")]
    BadField {
        error: &'static str,
        field: &'static str,
    },
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many logins, or too many refused credentials, from the client's
    /// address (SPEC 11): answered before any credential is checked, and
    /// counted in no `ssogate_auth_total`.
    #[error("rate limited ({})", .0.kind.label())]
    RateLimited(Limited),
    /// A login started or finished inside a frame of an origin the org did
    /// not allow (SPEC 11): no cookie, no `ssogate_auth_total`.
    #[error("a login inside a frame the organization does not allow")]
    FramingNotAllowed,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::AmbiguousFraming
            | Refusal::BadHost
            | Refusal::SessionTooLarge(_)
            | Refusal::BadField { .. } => 400,
            Refusal::BadBody(e) => e.status(),
            Refusal::Unrouted { navigation: true } | Refusal::NotFound => 404,
            Refusal::Unrouted { navigation: false }
            | Refusal::NoLoginUrl
            | Refusal::Token(..)
            | Refusal::NoOrgForToken(_)
            | Refusal::Unauthenticated { .. }
            | Refusal::InvalidClient(_) => 401,
            Refusal::OrgDisabled(_) | Refusal::FramingNotAllowed => 403,
            Refusal::MethodNotAllowed => 405,
            Refusal::RateLimited(_) => 429,
            Refusal::Internal => 500,
            Refusal::ReplayStoreDown => 503,
        }
    }

    /// The `error` of the JSON body, and what the HTML page explains.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AmbiguousFraming => "ambiguous_framing",
            Refusal::BadHost => "bad_host",
            Refusal::BadBody(_) => "bad_body",
            Refusal::Unrouted { .. } => "unknown_organization",
            Refusal::OrgDisabled(_) => "organization_disabled",
            Refusal::NoLoginUrl | Refusal::Unauthenticated { .. } => "unauthenticated",
            Refusal::Internal => "internal",
            Refusal::Token(..) | Refusal::NoOrgForToken(_) => "invalid_token",
            Refusal::ReplayStoreDown => "replay_store_unavailable",
            Refusal::SessionTooLarge(_) => "session_too_large",
            Refusal::InvalidClient(_) => "invalid_client",
            Refusal::BadField { error, .. } => error,
            Refusal::NotFound => "not_found",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::FramingNotAllowed => "framing_not_allowed",
        }
    }

    /// Whether this refusal is the verdict on a credential the client got
    /// wrong (SPEC 11's refused credentials: any reason of SPEC 7, a bad
    /// client secret, a used or unknown code). A disabled org, a session
    /// too large or a missing JSON field are not the client's guess.
    fn refuses_credential(&self) -> bool {
        match *self {
            Refusal::Token(_, result) => result != AuthResult::Disabled,
            Refusal::NoOrgForToken(_) | Refusal::InvalidClient(_) => true,
            _ => false,
        }
    }

    /// A refusal made before or instead of any credential check: whatever
    /// credential was seen on the way, none is counted (SPEC 8).
    fn counts_no_credential(&self) -> bool {
        matches!(self, Refusal::RateLimited(_) | Refusal::FramingNotAllowed)
    }

    /// The credential check this refusal is the verdict of, if any.
    pub fn auth(&self) -> Option<Auth> {
        match *self {
            Refusal::Token(method, result) => Some((method, result)),
            Refusal::NoOrgForToken(method) => Some((method, AuthResult::UnknownOrg)),
            Refusal::OrgDisabled(Some(method)) => Some((method, AuthResult::Disabled)),
            Refusal::SessionTooLarge(method) => Some((method, AuthResult::BadClaims)),
            Refusal::InvalidClient(result) => Some((AuthMethod::Code, result)),
            Refusal::BadField { .. } => Some((AuthMethod::Code, AuthResult::BadClaims)),
            _ => None,
        }
    }

    /// What the request counts as in `ssogate_requests_total` (SPEC 8).
    pub fn outcome(&self, stage: Stage) -> Outcome {
        match self {
            Refusal::Unrouted { .. } | Refusal::NoOrgForToken(_) => Outcome::Unrouted,
            Refusal::OrgDisabled(_) | Refusal::FramingNotAllowed => Outcome::Forbidden,
            Refusal::Internal | Refusal::ReplayStoreDown => Outcome::Error,
            // Nobody can sign in to such an org, at the gate or at /login.
            Refusal::NoLoginUrl => Outcome::Unauthorized,
            _ => match stage {
                Stage::Gate => Outcome::Unauthorized,
                Stage::Endpoint | Stage::BackChannel => Outcome::Internal,
            },
        }
    }

    /// The answer: the small HTML page for a navigation, else JSON, both
    /// with the request id. The code endpoint and the 401s that tell a
    /// script what to do always speak JSON.
    pub fn reply(self, request_id: &str, navigation: bool) -> Reply {
        let status = self.status();
        match self {
            Refusal::Unauthenticated { login_url } => {
                let body = match login_url {
                    Some(url) => {
                        json!({"error": "unauthenticated", "login_url": url, "request_id": request_id})
                    }
                    None => json!({"error": "unauthenticated", "request_id": request_id}),
                };
                Reply::json(status, &body).header(http::header::WWW_AUTHENTICATE, "Bearer")
            }
            Refusal::InvalidClient(_) => Reply::json(
                status,
                &json!({"error": "invalid_client", "request_id": request_id}),
            )
            .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"ssogate\""),
            Refusal::BadField { error, field } => Reply::json(
                status,
                &json!({"error": error, "field": field, "request_id": request_id}),
            ),
            Refusal::RateLimited(limited) => {
                Reply::error(status, "rate_limited", request_id, navigation)
                    .header(http::header::RETRY_AFTER, limited.retry_after.to_string())
            }
            Refusal::Token(AuthMethod::Bearer, _) => {
                Reply::error(status, self.code(), request_id, navigation).header(
                    http::header::WWW_AUTHENTICATE,
                    "Bearer error=\"invalid_token\"",
                )
            }
            refusal => Reply::error(status, refusal.code(), request_id, navigation),
        }
    }
}

/// One request's decision.
pub struct Decision {
    /// The org the request counts under, and whose framing policy and
    /// upstream apply.
    org: Option<Arc<Org>>,
    /// The credential check made on the way, counted unless the refusal
    /// names its own (e.g. a session cookie that did not open, before the
    /// 302 to the login).
    credential: Option<Auth>,
    verdict: Verdict,
    /// The flow A state cookie, rewritten by a callback that took its
    /// pending login out, whether the login then succeeds or not.
    state_cookie: Option<String>,
    /// The credential check is not an authentication attempt SPEC 8
    /// counts (whoami, the bridge page); a refused one still draws on the
    /// failure bucket.
    uncounted: bool,
}

/// What the proxy keeps of a decision for the rest of the request: the one
/// record of its org, credential check and outcome.
#[derive(Debug, Clone)]
pub struct Decided {
    pub org: Option<Arc<Org>>,
    pub auth: Option<Auth>,
    pub outcome: Outcome,
    /// The identity the app is told about.
    pub identity: Option<Arc<Identity>>,
    /// The bucket that answered 429, counted in
    /// `ssogate_rate_limited_total`.
    pub rate_limited: Option<LimitKind>,
}

impl Default for Decided {
    /// A request that never reached a decision (its head could not be read)
    /// failed.
    fn default() -> Self {
        Decided {
            org: None,
            auth: None,
            outcome: Outcome::Error,
            identity: None,
            rate_limited: None,
        }
    }
}

impl Decision {
    pub fn new(org: Option<Arc<Org>>, verdict: Verdict) -> Self {
        Decision {
            org,
            credential: None,
            verdict,
            state_cookie: None,
            uncounted: false,
        }
    }

    pub fn refuse(org: Option<Arc<Org>>, refusal: Refusal) -> Self {
        Decision::new(org, Verdict::Refuse(refusal))
    }

    /// Flow A started (`Ok`: the 302 to `login_url`), or refused.
    pub fn login_redirect(org: Arc<Org>, started: Result<Reply, Refusal>) -> Self {
        let verdict = match started {
            Ok(reply) => Verdict::LoginRedirect(reply),
            Err(refusal) => Verdict::Refuse(refusal),
        };
        Decision::new(Some(org), verdict)
    }

    /// A login that created a session (`Ok`: the 302 with its cookie), or
    /// was refused, counted under `method`.
    pub fn session(org: Arc<Org>, method: AuthMethod, created: Result<Reply, Refusal>) -> Self {
        match created {
            Ok(reply) => Decision::new(Some(org), Verdict::Answer(reply))
                .with_credential(Some((method, AuthResult::Ok))),
            Err(refusal) => Decision::refuse(Some(org), refusal),
        }
    }

    pub fn with_credential(mut self, checked: Option<Auth>) -> Self {
        self.credential = checked;
        self
    }

    /// Counts nothing in `ssogate_auth_total` (SPEC 8: whoami and the
    /// bridge page read a credential without being an authentication).
    pub fn uncounted(mut self) -> Self {
        self.uncounted = true;
        self
    }

    pub fn with_state_cookie(mut self, cookie: Option<String>) -> Self {
        self.state_cookie = cookie;
        self
    }

    /// What the request counts as in `ssogate_requests_total` (SPEC 8).
    pub fn outcome(&self, stage: Stage) -> Outcome {
        match &self.verdict {
            Verdict::Public => Outcome::Public,
            Verdict::Proxy(_) => Outcome::Proxied,
            Verdict::LoginRedirect(_) => Outcome::LoginRedirect,
            Verdict::Answer(_) => Outcome::Internal,
            Verdict::Refuse(refusal) => refusal.outcome(stage),
        }
    }

    /// The credential check counted in `ssogate_auth_total`.
    pub fn auth(&self) -> Option<Auth> {
        match &self.verdict {
            _ if self.uncounted => None,
            Verdict::Refuse(refusal) if refusal.counts_no_credential() => None,
            Verdict::Refuse(refusal) => refusal.auth().or(self.credential),
            _ => self.credential,
        }
    }

    /// Whether the request showed a credential that was refused, which
    /// draws on its address's failure bucket (SPEC 11): a refused token,
    /// code or client secret, or a session cookie that did not open, on
    /// its way to a login redirect or a 401 as much as in a refusal of its
    /// own.
    pub fn refused_credential(&self) -> bool {
        match &self.verdict {
            Verdict::Refuse(refusal) if refusal.auth().is_some() => refusal.refuses_credential(),
            Verdict::Refuse(refusal) if refusal.counts_no_credential() => false,
            _ => self.credential.is_some_and(|(_, result)| {
                !matches!(result, AuthResult::Ok | AuthResult::Disabled)
            }),
        }
    }

    /// The record the proxy keeps, and the answer to write when ssogate
    /// answers itself (`None`: on to the app).
    pub fn settle(
        self,
        stage: Stage,
        request_id: &str,
        navigation: bool,
    ) -> (Decided, Option<Reply>) {
        let outcome = self.outcome(stage);
        let auth = self.auth();
        let rate_limited = match &self.verdict {
            Verdict::Refuse(Refusal::RateLimited(limited)) => Some(limited.kind),
            _ => None,
        };
        let navigation = navigation && stage != Stage::BackChannel;
        let (identity, reply) = match self.verdict {
            Verdict::Public => (None, None),
            Verdict::Proxy(identity) => (Some(identity), None),
            Verdict::LoginRedirect(reply) | Verdict::Answer(reply) => (None, Some(reply)),
            Verdict::Refuse(refusal) => (None, Some(refusal.reply(request_id, navigation))),
        };
        let reply = match (reply, self.state_cookie) {
            (Some(reply), Some(cookie)) => Some(reply.cookie(cookie)),
            (reply, _) => reply,
        };
        let decided = Decided {
            org: self.org,
            auth,
            outcome,
            identity,
            rate_limited,
        };
        (decided, reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal, once, with what it must count as at the gate and at
    /// an endpoint, its status and its credential check.
    #[test]
    fn each_refusal_knows_its_status_outcome_and_credential_check() {
        use AuthMethod as M;
        use AuthResult as R;
        use Outcome as O;
        let table: Vec<(Refusal, u16, O, O, Option<Auth>)> = vec![
            (
                Refusal::AmbiguousFraming,
                400,
                O::Unauthorized,
                O::Internal,
                None,
            ),
            (Refusal::BadHost, 400, O::Unauthorized, O::Internal, None),
            (
                Refusal::BadBody(BodyError::TooLarge),
                413,
                O::Unauthorized,
                O::Internal,
                None,
            ),
            (
                Refusal::Unrouted { navigation: true },
                404,
                O::Unrouted,
                O::Unrouted,
                None,
            ),
            (
                Refusal::Unrouted { navigation: false },
                401,
                O::Unrouted,
                O::Unrouted,
                None,
            ),
            (
                Refusal::OrgDisabled(None),
                403,
                O::Forbidden,
                O::Forbidden,
                None,
            ),
            (
                Refusal::OrgDisabled(Some(M::Jwt)),
                403,
                O::Forbidden,
                O::Forbidden,
                Some((M::Jwt, R::Disabled)),
            ),
            (
                Refusal::NoLoginUrl,
                401,
                O::Unauthorized,
                O::Unauthorized,
                None,
            ),
            (Refusal::Internal, 500, O::Error, O::Error, None),
            (
                Refusal::Token(M::Query, R::Expired),
                401,
                O::Unauthorized,
                O::Internal,
                Some((M::Query, R::Expired)),
            ),
            (
                Refusal::NoOrgForToken(M::Callback),
                401,
                O::Unrouted,
                O::Unrouted,
                Some((M::Callback, R::UnknownOrg)),
            ),
            (Refusal::ReplayStoreDown, 503, O::Error, O::Error, None),
            (
                Refusal::SessionTooLarge(M::Authorize),
                400,
                O::Unauthorized,
                O::Internal,
                Some((M::Authorize, R::BadClaims)),
            ),
            (
                Refusal::Unauthenticated { login_url: None },
                401,
                O::Unauthorized,
                O::Internal,
                None,
            ),
            (
                Refusal::InvalidClient(R::BadSignature),
                401,
                O::Unauthorized,
                O::Internal,
                Some((M::Code, R::BadSignature)),
            ),
            (
                Refusal::BadField {
                    error: "missing_field",
                    field: "emailId",
                },
                400,
                O::Unauthorized,
                O::Internal,
                Some((M::Code, R::BadClaims)),
            ),
            (Refusal::NotFound, 404, O::Unauthorized, O::Internal, None),
            (
                Refusal::MethodNotAllowed,
                405,
                O::Unauthorized,
                O::Internal,
                None,
            ),
            (
                Refusal::RateLimited(Limited {
                    kind: LimitKind::Failures,
                    retry_after: 2,
                }),
                429,
                O::Unauthorized,
                O::Internal,
                None,
            ),
            (
                Refusal::FramingNotAllowed,
                403,
                O::Forbidden,
                O::Forbidden,
                None,
            ),
        ];
        for (refusal, status, at_gate, at_endpoint, auth) in table {
            let name = format!("{refusal:?}");
            assert_eq!(refusal.status(), status, "{name}");
            assert_eq!(refusal.outcome(Stage::Gate), at_gate, "{name}");
            assert_eq!(refusal.outcome(Stage::Endpoint), at_endpoint, "{name}");
            assert_eq!(refusal.outcome(Stage::BackChannel), at_endpoint, "{name}");
            assert_eq!(refusal.auth(), auth, "{name}");
            assert_eq!(refusal.reply("id", false).status, status, "{name}");
        }
    }

    #[test]
    fn the_back_channel_always_speaks_json() {
        let content_type = |navigation, stage| {
            let decision = Decision::refuse(None, Refusal::OrgDisabled(Some(AuthMethod::Code)));
            let (_, reply) = decision.settle(stage, "id", navigation);
            reply
                .and_then(|r| {
                    r.headers
                        .into_iter()
                        .find(|(n, _)| n == http::header::CONTENT_TYPE)
                })
                .map(|(_, v)| v)
        };
        assert_eq!(
            content_type(true, Stage::BackChannel).as_deref(),
            Some("application/json")
        );
        assert_eq!(
            content_type(true, Stage::Endpoint).as_deref(),
            Some("text/html; charset=utf-8")
        );
    }

    #[test]
    fn a_rate_limit_says_when_to_retry_and_counts_its_bucket_not_the_credential() {
        let limited = Limited {
            kind: LimitKind::Login,
            retry_after: 3,
        };
        let seen = Some((AuthMethod::Cookie, AuthResult::Malformed));
        let decision = Decision::refuse(None, Refusal::RateLimited(limited)).with_credential(seen);
        assert_eq!(decision.auth(), None);
        assert!(!decision.refused_credential(), "a 429 draws on no bucket");
        let (decided, reply) = decision.settle(Stage::Gate, "id", true);
        assert_eq!(decided.rate_limited, Some(LimitKind::Login));
        assert_eq!(decided.auth, None);
        let reply = reply.expect("an answer");
        assert_eq!(reply.status, 429);
        let header = |name| {
            reply
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header(&http::header::RETRY_AFTER), Some("3"));
        assert_eq!(
            header(&http::header::CONTENT_TYPE),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&http::header::SET_COOKIE), None);

        let framed = Decision::refuse(None, Refusal::FramingNotAllowed).with_credential(seen);
        assert_eq!(framed.auth(), None);
        assert!(!framed.refused_credential());
    }

    #[test]
    fn refused_credentials_draw_on_the_failure_bucket() {
        use AuthMethod as M;
        use AuthResult as R;
        let cases: Vec<(Decision, bool)> = vec![
            (
                Decision::refuse(None, Refusal::Token(M::Bearer, R::BadSignature)),
                true,
            ),
            (
                Decision::refuse(None, Refusal::Token(M::Authorize, R::Replay)),
                true,
            ),
            (Decision::refuse(None, Refusal::NoOrgForToken(M::Jwt)), true),
            (
                Decision::refuse(None, Refusal::InvalidClient(R::BadSignature)),
                true,
            ),
            (
                Decision::refuse(None, Refusal::Unauthenticated { login_url: None })
                    .with_credential(Some((M::Cookie, R::Expired))),
                true,
            ),
            (
                Decision::refuse(None, Refusal::Unauthenticated { login_url: None }),
                false,
            ),
            (
                Decision::refuse(None, Refusal::OrgDisabled(Some(M::Jwt))),
                false,
            ),
            (
                Decision::refuse(None, Refusal::SessionTooLarge(M::Jwt)),
                false,
            ),
            (
                Decision::refuse(
                    None,
                    Refusal::BadField {
                        error: "missing_field",
                        field: "emailId",
                    },
                ),
                false,
            ),
            (Decision::refuse(None, Refusal::ReplayStoreDown), false),
            (
                Decision::new(None, Verdict::Public).with_credential(Some((M::Cookie, R::Ok))),
                false,
            ),
        ];
        for (decision, draws) in cases {
            let what = match &decision.verdict {
                Verdict::Refuse(r) => format!("{r:?} {:?}", decision.credential),
                _ => format!("{:?}", decision.credential),
            };
            assert_eq!(decision.refused_credential(), draws, "{what}");
        }
    }

    #[test]
    fn a_refusal_that_names_no_check_keeps_the_credential_seen() {
        let seen = Some((AuthMethod::Cookie, AuthResult::Expired));
        let decision = Decision::refuse(None, Refusal::Unauthenticated { login_url: None })
            .with_credential(seen);
        assert_eq!(decision.auth(), seen);
        let decision = Decision::refuse(
            None,
            Refusal::Token(AuthMethod::Bearer, AuthResult::Expired),
        )
        .with_credential(seen);
        assert_eq!(
            decision.auth(),
            Some((AuthMethod::Bearer, AuthResult::Expired))
        );
    }

    #[test]
    fn an_uncounted_check_still_draws_a_refused_credential() {
        let seen = Some((AuthMethod::Cookie, AuthResult::Malformed));
        let decision = Decision::refuse(None, Refusal::Unauthenticated { login_url: None })
            .with_credential(seen)
            .uncounted();
        assert_eq!(decision.auth(), None);
        assert!(decision.refused_credential());
        let (decided, _) = decision.settle(Stage::Endpoint, "id", false);
        assert_eq!(decided.auth, None);
    }
}
