//! Reading the credentials a request carries: a session cookie or a Bearer
//! token becomes an identity, through the validated-session cache, with
//! the revocation check of logged-out sessions. Shared by the gate and the
//! endpoints; it decides nothing about the request itself.
//!
//! A credential that is not known good (a Bearer not in the cache, a
//! cookie that does not open) is refused unchecked, `Limited`, while the
//! client's address has used up its failure budget (SPEC 11); known-good
//! ones never touch the limiter.

use std::sync::Arc;

use crate::cache::{Cached, Credential, SessionCache};
use crate::config::Org;
use crate::ctx::Request;
use crate::decision::Auth;
use crate::limit::Limited;
use crate::metrics::{AuthMethod, AuthResult};
use crate::request::bearer_token;
use crate::session::{cookie_values, open_json, Identity};
use crate::token::{self, Delivery, Policy};

/// What checking one kind of credential found.
#[derive(Debug, Clone)]
pub enum Check {
    /// The request carries none (or the org does not accept this kind).
    Absent,
    Valid(Arc<Identity>),
    Refused(AuthResult),
    /// Not known good, and not checked: the address's failure bucket is
    /// empty (429, counted in no `ssogate_auth_total`).
    Limited(Limited),
}

impl Check {
    /// The check as counted in `ssogate_auth_total`, under `method`.
    pub fn auth(&self, method: AuthMethod) -> Option<Auth> {
        match self {
            Check::Absent | Check::Limited(_) => None,
            Check::Valid(_) => Some((method, AuthResult::Ok)),
            Check::Refused(result) => Some((method, *result)),
        }
    }
}

/// `Authorization: Bearer`, for an org that accepts it (else the header is
/// the app's and reaches it untouched: `Absent`).
pub async fn bearer(req: &Request<'_>, org: Option<&Arc<Org>>) -> Check {
    let Some(org) = org.filter(|o| o.accept_bearer) else {
        return Check::Absent;
    };
    let Some(token) = bearer_token(req.head) else {
        return Check::Absent;
    };
    let cache = &req.shared.cache;
    let key = SessionCache::key(Credential::Bearer, token);
    let version = org.keys.version();
    if let Some(hit) = cache.get(&key, req.now) {
        if hit.keys_version == version && hit.identity.org == org.name {
            return Check::Valid(hit.identity.clone());
        }
    }
    if let Err(limited) = req.may_check_credential() {
        return Check::Limited(limited);
    }
    let policy = Policy::new(org, req.config, req.now, Delivery::Header);
    let verified = match token::verify_fresh(token, &policy).await {
        Ok(verified) => verified,
        Err(rejection) => return Check::Refused(rejection.result()),
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
    Check::Valid(identity)
}

/// The session cookie's identity, if it opens, has not expired, was not
/// revoked and belongs to `org` (any org when `None`). A cookie that fails
/// any of these counts as no session (SPEC 4), and is `Limited` while the
/// address's failure bucket is empty.
pub async fn session_cookie(req: &Request<'_>, org: Option<&Org>) -> Check {
    match cookie(req, org).await {
        Check::Refused(result) => match req.may_check_credential() {
            Ok(()) => Check::Refused(result),
            Err(limited) => Check::Limited(limited),
        },
        check => check,
    }
}

/// [`session_cookie`] before the rate limit.
async fn cookie(req: &Request<'_>, org: Option<&Org>) -> Check {
    let settings = &req.config.session;
    let mut seen = false;
    let mut verdict = AuthResult::Malformed;
    let mut found = None;
    for value in cookie_values(&req.head.headers, &settings.cookie_name) {
        seen = true;
        let Some(identity) = open_cookie(req, value) else {
            continue;
        };
        verdict = judge(req, &identity, org);
        if verdict == AuthResult::Ok {
            found = Some(identity);
            break;
        }
    }
    match found {
        Some(identity) if !is_revoked(req, &identity) => Check::Valid(identity),
        Some(_) => Check::Refused(AuthResult::Replay),
        None if seen => Check::Refused(verdict),
        None => Check::Absent,
    }
}

/// Logged out, on this replica (at once) or on another one (as soon as this
/// replica has read it from the store, within seconds). One lookup in this
/// replica's map: never a round trip, so an unreachable store fails open
/// (SPEC 11) without slowing a cookie request down.
fn is_revoked(req: &Request<'_>, identity: &Identity) -> bool {
    req.shared.replay.is_revoked(&identity.session_id)
}

/// The identity sealed in a session cookie value: from the cache, or opened
/// (one AEAD decryption) and cached until the session ends.
fn open_cookie(req: &Request, value: &str) -> Option<Arc<Identity>> {
    let settings = &req.config.session;
    let key = SessionCache::key(Credential::Cookie(settings.fingerprint), value);
    if let Some(hit) = req.shared.cache.get(&key, req.now) {
        return Some(hit.identity.clone());
    }
    let identity = Arc::new(open_json::<Identity>(
        &settings.key,
        &settings.cookie_name,
        value,
    )?);
    if identity.expires_at > req.now {
        req.shared.cache.insert(
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

/// Whether an opened session may serve `org` (SPEC 5: a session of one org
/// never authenticates a request routed to another).
fn judge(req: &Request, identity: &Identity, org: Option<&Org>) -> AuthResult {
    if identity.expires_at <= req.now || identity.session_id.is_empty() {
        return AuthResult::Expired;
    }
    let owner = match org {
        Some(org) if org.name == identity.org => Some(org),
        Some(_) => return AuthResult::UnknownOrg,
        None => req.router().by_name(&identity.org).map(|o| o.as_ref()),
    };
    match owner {
        None => AuthResult::UnknownOrg,
        Some(o) if !o.enabled => AuthResult::Disabled,
        Some(_) => AuthResult::Ok,
    }
}
