//! Flow A, second half (`/callback?token=`), flow B (`/jwt?jwt=`) and the
//! query-token login of flow D: a URL-delivered token becomes a session.

use std::sync::Arc;

use super::{login, Exchange};
use crate::config::Org;
use crate::metrics::{AuthMethod, AuthResult, Outcome};
use crate::replay;
use crate::reply::Reply;
use crate::request::query_param;
use crate::session::{random_id, session_cookie};
use crate::token::{self, Delivery, Policy, Rejection};

/// `GET /_sso/callback?token=JWT[&state=N]`.
pub async fn callback(x: &mut Exchange<'_>) -> Reply {
    // Some portals append `?token=` to a callback URL that already has
    // `?state=N`; read the stray `?` as the `&` they meant.
    let query = x.facts.query.unwrap_or_default().replace('?', "&");
    let token = query_param(&query, "token");
    let state = query_param(&query, "state");

    let (org, return_path, state_cookie) = match state.as_deref() {
        Some(nonce) => {
            let Some((pending, cookie)) = login::take_pending(x, nonce) else {
                return x.refused(AuthMethod::Callback, AuthResult::Malformed);
            };
            let Some(org) = x.config.org(&pending.org).cloned() else {
                return x.refused(AuthMethod::Callback, AuthResult::UnknownOrg);
            };
            (org, pending.return_path, Some(cookie))
        }
        None => {
            let Some(org) = org_for_token(x, token.as_deref()) else {
                x.outcome = Outcome::Unrouted;
                return x.refused(AuthMethod::Callback, AuthResult::UnknownOrg);
            };
            let home = org.home_path.clone();
            (org, home, None)
        }
    };
    let Some(token) = token else {
        x.org = Some(org);
        return x.refused(AuthMethod::Callback, AuthResult::Malformed);
    };
    let mut reply = establish_session(x, &org, &token, AuthMethod::Callback, &return_path).await;
    if let Some(cookie) = state_cookie {
        reply = reply.cookie(cookie);
    }
    reply
}

/// `GET /_sso/jwt?jwt=JWT`: an IdP-initiated login, landing on `home_path`.
pub async fn jwt(x: &mut Exchange<'_>) -> Reply {
    let token = x.facts.param("jwt");
    let Some(org) = org_for_token(x, token.as_deref()) else {
        x.outcome = Outcome::Unrouted;
        return x.refused(AuthMethod::Jwt, AuthResult::UnknownOrg);
    };
    let Some(token) = token else {
        x.org = Some(org);
        return x.refused(AuthMethod::Jwt, AuthResult::Malformed);
    };
    let home = org.home_path.clone();
    establish_session(x, &org, &token, AuthMethod::Jwt, &home).await
}

/// The org a reserved endpoint serves: by Host; else the org the token
/// itself names in an `org_claim` (verified below with that org's keys);
/// else `default_org`.
fn org_for_token(x: &Exchange, token: Option<&str>) -> Option<Arc<Org>> {
    let config = x.config;
    if let Some(org) = config.org_by_host(x.facts.host) {
        return Some(org.clone());
    }
    let named = token.and_then(|t| {
        config.orgs.iter().find(|org| {
            org.org_claim
                .as_deref()
                .and_then(|claim| token::unverified_claim(t, claim))
                .is_some_and(|name| name == org.name)
        })
    });
    named
        .or_else(|| config.default_org.and_then(|i| config.orgs.get(i)))
        .cloned()
}

/// Validates a URL-delivered token for `org`, spends its `jti`, and answers
/// with the session cookie and a 302 to `return_path` (already safe).
pub async fn establish_session(
    x: &mut Exchange<'_>,
    org: &Arc<Org>,
    token: &str,
    method: AuthMethod,
    return_path: &str,
) -> Reply {
    x.org = Some(org.clone());
    if !org.enabled {
        x.outcome = Outcome::Forbidden;
        x.auth = Some((method, AuthResult::Disabled));
        return x.error(403, "organization_disabled");
    }
    let policy = Policy::new(org, x.config, x.now, Delivery::Url);
    let verified = match token::verify_fresh(token, &policy).await {
        Ok(v) => v,
        Err(rejection) => return x.refused(method, rejection.result()),
    };
    if let Some(jti) = &verified.jti {
        let until = verified.exp.saturating_add(org.leeway as i64);
        match x
            .shared
            .replay
            .spend(&replay::jti_key(&org.name, jti), until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return x.refused(method, Rejection::Replay.result()),
            Err(e) => {
                tracing::error!(request_id = x.request_id, error = %e, "replay store unavailable");
                x.outcome = Outcome::Error;
                return x.error(503, "replay_store_unavailable");
            }
        }
    }
    let mut identity = verified.identity;
    identity.session_id = random_id();
    match session_cookie(&x.config.session, &identity) {
        Ok(cookie) => {
            x.auth = Some((method, AuthResult::Ok));
            Reply::redirect(return_path).cookie(cookie)
        }
        Err(e) => {
            tracing::warn!(request_id = x.request_id, org = %org.name, error = %e, "session refused");
            x.auth = Some((method, AuthResult::BadClaims));
            x.error(400, "session_too_large")
        }
    }
}
