//! Flow A, second half (`/callback?token=`), and flow B (`/jwt?jwt=`): a
//! URL-delivered token becomes a session.

use std::sync::Arc;

use crate::config::Org;
use crate::ctx::Request;
use crate::decision::{Decision, Refusal};
use crate::metrics::{AuthMethod, AuthResult};
use crate::request::query_param;
use crate::signin::{self, take_pending};

/// `GET /_sso/callback?token=JWT[&state=N]`.
pub async fn callback(req: &Request<'_>) -> Decision {
    let method = AuthMethod::Callback;
    // Some portals append `?token=` to a callback URL that already has
    // `?state=N`; read the stray `?` as the `&` they meant.
    let query = req.facts.query.unwrap_or_default().replace('?', "&");
    let token = query_param(&query, "token");
    let state = query_param(&query, "state");
    let router = req.router();
    // Until the state or the token names the org: the Host's.
    let fallback_org = || router.for_endpoint(req.facts.host).cloned();

    let (org, return_path, state_cookie) = match state.as_deref() {
        // A state that matches the state cookie: its login was judged by
        // the framing rule when it started, and is not judged again.
        Some(nonce) => {
            let Some((pending, cookie)) = take_pending(req, nonce) else {
                let refusal = Refusal::Token(method, AuthResult::Malformed);
                return req.refuse_login(fallback_org(), refusal);
            };
            let Some(org) = router.by_name(&pending.org).cloned() else {
                let refusal = Refusal::Token(method, AuthResult::UnknownOrg);
                return Decision::refuse(fallback_org(), refusal);
            };
            (org, pending.return_path, Some(cookie))
        }
        None => {
            let Some(org) = org_for_token(req, token.as_deref()) else {
                return req.refuse_login(fallback_org(), Refusal::NoOrgForToken(method));
            };
            if let Err(refusal) = req.ensure_framing_allowed(Some(&org)) {
                return Decision::refuse(Some(org), refusal);
            }
            let home = org.home_path.clone();
            (org, home, None)
        }
    };
    let Some(token) = token else {
        return Decision::refuse(Some(org), Refusal::Token(method, AuthResult::Malformed));
    };
    let created = signin::session_from_token(req, &org, &token, method, &return_path).await;
    Decision::session(org, method, created).with_state_cookie(state_cookie)
}

/// `GET /_sso/jwt?jwt=JWT`: an IdP-initiated login, landing on `home_path`.
pub async fn jwt(req: &Request<'_>) -> Decision {
    let method = AuthMethod::Jwt;
    let token = req.facts.param("jwt");
    let Some(org) = org_for_token(req, token.as_deref()) else {
        let org = req.router().for_endpoint(req.facts.host).cloned();
        return req.refuse_login(org, Refusal::NoOrgForToken(method));
    };
    if let Err(refusal) = req.ensure_framing_allowed(Some(&org)) {
        return Decision::refuse(Some(org), refusal);
    }
    let Some(token) = token else {
        return Decision::refuse(Some(org), Refusal::Token(method, AuthResult::Malformed));
    };
    let created = signin::session_from_token(req, &org, &token, method, &org.home_path).await;
    Decision::session(org, method, created)
}

/// The org a login endpoint serves: by Host; else the org the token itself
/// names in an `org_claim` (verified below with that org's keys); else
/// `default_org`.
fn org_for_token(req: &Request, token: Option<&str>) -> Option<Arc<Org>> {
    let router = req.router();
    router
        .by_host(req.facts.host)
        .or_else(|| token.and_then(|t| router.by_token_claim(t)))
        .or_else(|| router.default_org())
        .cloned()
}
