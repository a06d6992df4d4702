//! Signing in, shared by the gate and the endpoints: starting flow A (the
//! 302 to `login_url`, remembered in a sealed state cookie), and turning an
//! accepted token or code into a session (spent once, sealed into the
//! cookie, 302 to where the user was going).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Org;
use crate::ctx::Request;
use crate::decision::Refusal;
use crate::metrics::{AuthMethod, AuthResult};
use crate::redirect::{append_query, safe_or};
use crate::replay;
use crate::reply::Reply;
use crate::request::public_base;
use crate::route::ensure_enabled;
use crate::session::{
    clear_cookie, cookie_values, open_json, random_id, seal_json, session_cookie, set_cookie,
    Identity, SealError,
};
use crate::token::{self, Delivery, Policy};

/// How long a login may take between redirect and callback.
pub const STATE_TTL: i64 = 600;
/// Logins started in parallel (several iframes, several tabs) each keep
/// their own state; the oldest is dropped past this many.
const MAX_PENDING: usize = 4;

/// A login started here and not finished yet, as the state cookie keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "r")]
    pub return_path: String,
    #[serde(rename = "o")]
    pub org: String,
    #[serde(rename = "t")]
    pub created: i64,
}

/// Flow A's first step: the 302 to the org's `login_url` with the callback
/// URL and the path to return to, and the state cookie on the same response.
pub fn start(req: &Request, org: &Org, return_path: &str) -> Result<Reply, Refusal> {
    let login_url = org.login_url.as_ref().ok_or(Refusal::NoLoginUrl)?;
    let base = public_base(req.config, req.head, &req.facts).ok_or(Refusal::BadHost)?;
    let nonce = random_id();
    let mut pending = pending_logins(req);
    if pending.len() >= MAX_PENDING {
        pending.drain(..=pending.len() - MAX_PENDING);
    }
    pending.push(Pending {
        nonce: nonce.clone(),
        return_path: safe_or(Some(return_path), &org.home_path).to_owned(),
        org: org.name.clone(),
        created: req.now,
    });
    let settings = &req.config.session;
    let sealed = seal_json(&settings.key, &settings.state_cookie_name, &pending)
        .map_err(|e| internal(req, &e))?;
    let callback = format!(
        "{base}{}/callback?state={nonce}",
        req.config.reserved_prefix
    );
    let location = append_query(
        login_url,
        &[("ssoCallback", &callback), ("redirectPath", return_path)],
    );
    Ok(Reply::redirect(location).cookie(set_cookie(
        settings,
        &settings.state_cookie_name,
        &sealed,
        STATE_TTL as u64,
    )))
}

/// The unexpired logins this browser has started.
fn pending_logins(req: &Request) -> Vec<Pending> {
    let settings = &req.config.session;
    cookie_values(&req.head.headers, &settings.state_cookie_name)
        .find_map(|v| open_json::<Vec<Pending>>(&settings.key, &settings.state_cookie_name, v))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| req.now - p.created < STATE_TTL && p.created <= req.now + 60)
        .collect()
}

/// Takes the login with this nonce out of the state cookie; also returns
/// the `Set-Cookie` that stores what is left (or clears the cookie).
pub fn take_pending(req: &Request, nonce: &str) -> Option<(Pending, String)> {
    let mut pending = pending_logins(req);
    let index = pending
        .iter()
        .position(|p| subtle::ConstantTimeEq::ct_eq(p.nonce.as_bytes(), nonce.as_bytes()).into())?;
    let found = pending.remove(index);
    let settings = &req.config.session;
    let name = &settings.state_cookie_name;
    let cookie = if pending.is_empty() {
        clear_cookie(settings, name)
    } else {
        let sealed = seal_json(&settings.key, name, &pending).ok()?;
        let left = pending
            .iter()
            .map(|p| STATE_TTL - (req.now - p.created))
            .max()
            .unwrap_or(0)
            .max(0);
        set_cookie(settings, name, &sealed, left as u64)
    };
    Some((found, cookie))
}

/// A URL-delivered token (flows A, B and D's query parameter) for `org`:
/// verified, fresh, its `jti` spent, then a session.
pub async fn session_from_token(
    req: &Request<'_>,
    org: &Arc<Org>,
    token: &str,
    method: AuthMethod,
    return_path: &str,
) -> Result<Reply, Refusal> {
    ensure_enabled(org, Some(method))?;
    let policy = Policy::new(org, req.config, req.now, Delivery::Url);
    let verified = token::verify_fresh(token, &policy)
        .await
        .map_err(|rejection| Refusal::Token(method, rejection.result()))?;
    let once = verified.jti.as_deref().map(|jti| SpendOnce {
        key: replay::jti_key(&org.name, jti),
        until: verified.exp.saturating_add(org.leeway as i64),
    });
    create_session(req, org, method, verified.identity, once, return_path).await
}

/// An id the replay store must see only once: a token's `jti`, a code.
pub struct SpendOnce {
    pub key: String,
    /// Unix seconds until which it must be remembered.
    pub until: i64,
}

/// The one way a session is made: the credential's id spent in the replay
/// store (refused when already spent; 503 when the store cannot tell, SPEC
/// 11), a fresh session id, the sealed cookie (refused when too large, SPEC
/// 5), and the 302 to `return_path`, which must already be safe.
pub async fn create_session(
    req: &Request<'_>,
    org: &Org,
    method: AuthMethod,
    mut identity: Identity,
    once: Option<SpendOnce>,
    return_path: &str,
) -> Result<Reply, Refusal> {
    if let Some(once) = once {
        match req.shared.replay.spend(&once.key, once.until).await {
            Ok(true) => {}
            Ok(false) => return Err(Refusal::Token(method, AuthResult::Replay)),
            Err(e) => {
                tracing::error!(request_id = req.request_id, error = %e, "replay store unavailable");
                return Err(Refusal::ReplayStoreDown);
            }
        }
    }
    identity.session_id = random_id();
    match session_cookie(&req.config.session, &identity) {
        Ok(cookie) => Ok(Reply::redirect(return_path).cookie(cookie)),
        Err(e @ SealError::TooLarge(_)) => {
            tracing::warn!(request_id = req.request_id, org = %org.name, error = %e, "session refused");
            Err(Refusal::SessionTooLarge(method))
        }
        Err(e) => Err(internal(req, &e)),
    }
}

fn internal(req: &Request, error: &SealError) -> Refusal {
    tracing::error!(request_id = req.request_id, error = %error, "cannot seal");
    Refusal::Internal
}
