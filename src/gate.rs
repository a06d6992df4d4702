//! The auth gate in front of the app: a request passes with an identity, or
//! is answered here (redirect to login, 401, 403, 404).

use std::sync::Arc;

use crate::cache::{Cached, Credential, SessionCache};
use crate::config::Org;
use crate::flows::{self, login, Exchange};
use crate::metrics::{AuthMethod, AuthResult, Outcome};
use crate::redirect::safe_or;
use crate::replay;
use crate::reply::Reply;
use crate::request::bearer_token;
use crate::session::{cookie_values, open_json, Identity};
use crate::token::{self, Delivery, Policy};

pub enum Verdict {
    /// Proxy it; with an identity to inject, or none on a public path.
    Pass(Option<Arc<Identity>>),
    Answer(Reply),
}

/// Decides a request for the app (outside `reserved_prefix`).
pub async fn check(x: &mut Exchange<'_>) -> Verdict {
    if x.config.is_public(x.facts.path) && !has_dot_segment(x.facts.path) {
        x.outcome = Outcome::Public;
        x.org = x.config.route(x.facts.host, x.facts.path).cloned();
        return Verdict::Pass(None);
    }
    let Some(org) = x.config.route(x.facts.host, x.facts.path).cloned() else {
        x.outcome = Outcome::Unrouted;
        let status = if x.facts.navigation { 404 } else { 401 };
        return Verdict::Answer(x.error(status, "unknown_organization"));
    };
    x.org = Some(org.clone());
    if !org.enabled {
        x.outcome = Outcome::Forbidden;
        return Verdict::Answer(x.error(403, "organization_disabled"));
    }

    if let Some(result) = bearer_identity(x, Some(&org)).await {
        return match result {
            Some(identity) => proxied(x, identity),
            None => {
                x.outcome = Outcome::Unauthorized;
                Verdict::Answer(
                    x.error(401, "invalid_token")
                        .bearer_challenge(Some("invalid_token")),
                )
            }
        };
    }
    if let Some(reply) = query_token_login(x, &org).await {
        return Verdict::Answer(reply);
    }
    if let Some(identity) = cookie_identity(x, Some(&org)).await {
        return proxied(x, identity);
    }
    Verdict::Answer(unauthenticated(x, &org))
}

fn proxied(x: &mut Exchange, identity: Arc<Identity>) -> Verdict {
    x.outcome = Outcome::Proxied;
    Verdict::Pass(Some(identity))
}

/// No credential: a browser goes straight to the org's login; a script gets
/// a 401 telling it where the login starts.
fn unauthenticated(x: &mut Exchange, org: &Org) -> Reply {
    let return_path = x.facts.path_and_query();
    let return_path = safe_or(Some(&return_path), &org.home_path).to_owned();
    if x.facts.navigation {
        return login::start(x, org, &return_path);
    }
    x.outcome = Outcome::Unauthorized;
    let login_url = match crate::request::public_base(x.config, x.req, &x.facts) {
        Some(base) => format!(
            "{base}{}/login?rd={}",
            x.config.reserved_prefix,
            crate::redirect::encode_component(&return_path)
        ),
        None => format!("{}/login", x.config.reserved_prefix),
    };
    Reply::json(
        401,
        &serde_json::json!({"error": "unauthenticated", "login_url": login_url, "request_id": x.request_id}),
    )
    .bearer_challenge(None)
}

/// `Authorization: Bearer`, for an org that accepts it: `None` when not
/// applicable (the header then reaches the app untouched), `Some(None)` for
/// a refused token.
pub async fn bearer_identity(
    x: &mut Exchange<'_>,
    org: Option<&Arc<Org>>,
) -> Option<Option<Arc<Identity>>> {
    let org = org.filter(|o| o.accept_bearer)?;
    let token = bearer_token(x.req)?;
    let cache = &x.shared.cache;
    let key = SessionCache::key(Credential::Bearer, token);
    let version = org.keys.version();
    if let Some(hit) = cache.get(&key, x.now) {
        if hit.keys_version == version && hit.identity.org == org.name {
            x.auth = Some((AuthMethod::Bearer, AuthResult::Ok));
            return Some(Some(hit.identity.clone()));
        }
    }
    let policy = Policy::new(org, x.config, x.now, Delivery::Header);
    let result = token::verify_fresh(token, &policy).await;
    x.auth = Some((
        AuthMethod::Bearer,
        result
            .as_ref()
            .map_or_else(|r| r.result(), |_| AuthResult::Ok),
    ));
    let verified = match result {
        Ok(v) => v,
        Err(_) => return Some(None),
    };
    let identity = Arc::new(verified.identity);
    cache.insert(
        key,
        Cached {
            identity: identity.clone(),
            until: verified.exp.saturating_add(org.leeway as i64),
            keys_version: org.keys.version(),
        },
    );
    Some(Some(identity))
}

/// `?access_token=` (the org's `accept_query_token`) on any URL: a session
/// is created and the browser sent to the same URL without the token.
async fn query_token_login(x: &mut Exchange<'_>, org: &Arc<Org>) -> Option<Reply> {
    let param = org.accept_query_token.as_deref()?;
    let query = x.facts.query?;
    let token = crate::request::query_param(query, param)?;
    let clean = without_param(x.facts.path, query, param);
    let clean = safe_or(Some(&clean), &org.home_path).to_owned();
    let reply = flows::establish_session(x, org, &token, AuthMethod::Query, &clean).await;
    x.outcome = match reply.status {
        302 => Outcome::Internal,
        403 => Outcome::Forbidden,
        status if status >= 500 => Outcome::Error,
        _ => Outcome::Unauthorized,
    };
    Some(reply)
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

/// The session cookie's identity, if it opens, has not expired, was not
/// revoked and belongs to `org` (any org when `None`).
pub async fn cookie_identity(x: &mut Exchange<'_>, org: Option<&Org>) -> Option<Arc<Identity>> {
    let settings = &x.config.session;
    let mut seen = false;
    let mut verdict = AuthResult::Malformed;
    let mut found = None;
    for value in cookie_values(&x.req.headers, &settings.cookie_name) {
        seen = true;
        let Some(identity) = open_cookie(x, value) else {
            continue;
        };
        verdict = judge(x, &identity, org);
        if verdict == AuthResult::Ok {
            found = Some(identity);
            break;
        }
    }
    if let Some(identity) = &found {
        let key = replay::revoked_key(&identity.session_id);
        if x.shared.replay.contains(&key).await.unwrap_or(false) {
            verdict = AuthResult::Replay;
            found = None;
        }
    }
    if seen {
        x.auth = Some((AuthMethod::Cookie, verdict));
    }
    found
}

/// The identity sealed in a session cookie value: from the cache, or opened
/// (one AEAD decryption) and cached until the session ends.
fn open_cookie(x: &Exchange, value: &str) -> Option<Arc<Identity>> {
    let settings = &x.config.session;
    let key = SessionCache::key(Credential::Cookie(settings.fingerprint), value);
    if let Some(hit) = x.shared.cache.get(&key, x.now) {
        return Some(hit.identity.clone());
    }
    let identity = Arc::new(open_json::<Identity>(
        &settings.key,
        &settings.cookie_name,
        value,
    )?);
    if identity.expires_at > x.now {
        x.shared.cache.insert(
            key,
            Cached {
                identity: identity.clone(),
                until: identity.expires_at,
                keys_version: 0,
            },
        );
    }
    Some(identity)
}

fn judge(x: &Exchange, identity: &Identity, org: Option<&Org>) -> AuthResult {
    if identity.expires_at <= x.now || identity.session_id.is_empty() {
        return AuthResult::Expired;
    }
    let owner = match org {
        Some(org) if org.name == identity.org => Some(org),
        Some(_) => return AuthResult::UnknownOrg,
        None => x.config.org(&identity.org).map(|o| o.as_ref()),
    };
    match owner {
        None => AuthResult::UnknownOrg,
        Some(o) if !o.enabled => AuthResult::Disabled,
        Some(_) => AuthResult::Ok,
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
