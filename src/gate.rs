//! The auth gate in front of the app: a request for the app (outside
//! `reserved_prefix`) passes with an identity, or on a public path without
//! one, or is answered here (302 to the login, 401, 403, 404, 429).

use std::borrow::Cow;
use std::sync::Arc;

use crate::auth::{self, Check};
use crate::config::Org;
use crate::ctx::Request;
use crate::decision::{Decision, Refusal, Verdict};
use crate::metrics::{AuthMethod, AuthResult};
use crate::redirect::{encode_component, safe_or};
use crate::request::{bearer_token, public_base, query_param};
use crate::route::ensure_enabled;
use crate::session::cookie_values;
use crate::signin;

/// Decides a request for the app, and draws a refused credential on its
/// address's failure bucket (SPEC 11).
pub async fn check(req: &Request<'_>) -> Decision {
    let decision = decide(req).await;
    req.account(&decision);
    decision
}

/// Credentials are tried in this order: a Bearer token, a query token, the
/// session cookie.
async fn decide(req: &Request<'_>) -> Decision {
    let router = req.router();
    let (host, path) = (req.facts.host, req.facts.path);
    if router.is_public(path) && !has_dot_segment(path) {
        return Decision::new(router.route(host, path).cloned(), Verdict::Public);
    }
    let Some(org) = router.route(host, path) else {
        let navigation = req.facts.navigation;
        return Decision::refuse(None, Refusal::Unrouted { navigation });
    };
    let org = org.clone();
    // The credential a disabled org's 403 counts is only looked for then.
    let carried = if org.enabled {
        None
    } else {
        carried(req, &org)
    };
    if let Err(refusal) = ensure_enabled(&org, carried) {
        return Decision::refuse(Some(org), refusal);
    }
    // A query token makes this a login request, whatever else it carries.
    let query_token = query_token(req, &org);
    if query_token.is_some() {
        if let Err(refusal) = req.draw_login() {
            return Decision::refuse(Some(org), refusal);
        }
    }
    match auth::bearer(req, Some(&org)).await {
        Check::Valid(identity) => {
            return Decision::new(Some(org), Verdict::Proxy(identity))
                .with_credential(Some((AuthMethod::Bearer, AuthResult::Ok)));
        }
        Check::Refused(result) => {
            return Decision::refuse(Some(org), Refusal::Token(AuthMethod::Bearer, result));
        }
        Check::Limited(limited) => {
            return Decision::refuse(Some(org), Refusal::RateLimited(limited));
        }
        Check::Absent => {}
    }
    if let Some((param, token)) = query_token {
        return query_token_login(req, &org, param, &token).await;
    }
    let cookie = auth::session_cookie(req, Some(org.as_ref())).await;
    let seen = cookie.auth(AuthMethod::Cookie);
    match cookie {
        Check::Valid(identity) => Decision::new(Some(org), Verdict::Proxy(identity)),
        Check::Limited(limited) => Decision::refuse(Some(org), Refusal::RateLimited(limited)),
        Check::Refused(_) | Check::Absent => unauthenticated(req, org),
    }
    .with_credential(seen)
}

/// The kind of credential a request for `org` carries, in the order the
/// gate would try them: what a disabled org's 403 counts as `disabled`
/// (SPEC 8).
fn carried(req: &Request, org: &Org) -> Option<AuthMethod> {
    if org.accept_bearer && bearer_token(req.head).is_some() {
        Some(AuthMethod::Bearer)
    } else if query_token(req, org).is_some() {
        Some(AuthMethod::Query)
    } else if cookie_values(&req.head.headers, &req.config.session.cookie_name)
        .next()
        .is_some()
    {
        Some(AuthMethod::Cookie)
    } else {
        None
    }
}

/// No credential: a browser goes straight to the org's login (unless a
/// frame the org does not allow asks); a script gets a 401 telling it
/// where the login starts.
fn unauthenticated(req: &Request, org: Arc<Org>) -> Decision {
    let wanted = req.facts.path_and_query();
    let return_path = safe_or(Some(&wanted), &org.home_path);
    if req.facts.navigation {
        if let Err(refusal) = req.ensure_framing_allowed(Some(&org)) {
            return Decision::refuse(Some(org), refusal);
        }
        let started = signin::start(req, &org, return_path);
        return Decision::login_redirect(org, started);
    }
    let prefix = &req.config.reserved_prefix;
    let login_url = match public_base(req.config, req.head, &req.facts) {
        Some(base) => format!("{base}{prefix}/login?rd={}", encode_component(return_path)),
        None => format!("{prefix}/login"),
    };
    let login_url = Some(login_url);
    Decision::refuse(Some(org), Refusal::Unauthenticated { login_url })
}

/// The org's `accept_query_token` parameter and its value, when the
/// request carries it.
fn query_token<'a>(req: &Request<'a>, org: &'a Org) -> Option<(&'a str, Cow<'a, str>)> {
    let param = org.accept_query_token.as_deref()?;
    let token = query_param(req.facts.query?, param)?;
    Some((param, token))
}

/// `?access_token=` (the org's `accept_query_token`) on any URL: a session
/// is created and the browser sent to the same URL without the token.
async fn query_token_login(
    req: &Request<'_>,
    org: &Arc<Org>,
    param: &str,
    token: &str,
) -> Decision {
    if let Err(refusal) = req.ensure_framing_allowed(Some(org)) {
        return Decision::refuse(Some(org.clone()), refusal);
    }
    let query = req.facts.query.unwrap_or_default();
    let clean = without_param(req.facts.path, query, param);
    let clean = safe_or(Some(&clean), &org.home_path);
    let method = AuthMethod::Query;
    let result = signin::session_from_token(req, org, token, method, clean).await;
    Decision::session(org.clone(), method, result)
}

/// `path?query` with every `param=` removed, other parameters kept as sent.
fn without_param(path: &str, query: &str, param: &str) -> String {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !name.is_empty()
                && url::form_urlencoded::parse(name.as_bytes()).all(|(n, _)| n != param)
        })
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// `.` or `..` as a path segment, plain or percent-encoded: an app that
/// normalizes paths would serve another path than the one judged public.
fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains('\\')
        || path.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_token_is_removed_and_the_rest_kept() {
        assert_eq!(
            without_param("/a", "access_token=x&b=1&c", "access_token"),
            "/a?b=1&c"
        );
        assert_eq!(without_param("/a", "access_token=x", "access_token"), "/a");
        assert_eq!(
            without_param("/a", "b=1&access%5Ftoken=x", "access_token"),
            "/a?b=1"
        );
    }

    #[test]
    fn dot_segments_are_not_public() {
        assert!(has_dot_segment("/static/../admin"));
        assert!(has_dot_segment("/static/%2e%2e/admin"));
        assert!(has_dot_segment("/static/..%2fadmin"));
        assert!(!has_dot_segment("/static/app.js"));
    }
}
