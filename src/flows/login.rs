//! Flow A, first half: send the browser to the org's `login_url` with the
//! callback URL and the path to return to, remembering both in a sealed,
//! short-lived state cookie.

use serde::{Deserialize, Serialize};

use super::Exchange;
use crate::config::Org;
use crate::metrics::Outcome;
use crate::redirect::{append_query, safe_or};
use crate::reply::Reply;
use crate::request::public_base;
use crate::session::{clear_cookie, cookie_values, open_json, random_id, seal_json, set_cookie};

/// How long a login may take between redirect and callback.
pub const STATE_TTL: i64 = 600;
/// Logins started in parallel (several iframes, several tabs) each keep
/// their own state; the oldest is dropped past this many.
const MAX_PENDING: usize = 4;

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

/// `GET /_sso/login?rd=PATH`.
pub fn start_from_endpoint(x: &mut Exchange) -> Reply {
    let rd = x.facts.param("rd");
    let org = x
        .config
        .route_by_host(x.facts.host)
        .or_else(|| rd.as_deref().and_then(|p| x.config.route_by_path(p)))
        .or(x.config.default_org)
        .and_then(|i| x.config.orgs.get(i))
        .cloned();
    let Some(org) = org else {
        x.outcome = Outcome::Unrouted;
        return x.error(404, "unknown_organization");
    };
    x.org = Some(org.clone());
    if !org.enabled {
        x.outcome = Outcome::Forbidden;
        return x.error(403, "organization_disabled");
    }
    let return_path = safe_or(rd.as_deref(), &org.home_path).to_owned();
    start(x, &org, &return_path)
}

/// The 302 to `login_url`, with the state cookie set on the same response.
pub fn start(x: &mut Exchange, org: &Org, return_path: &str) -> Reply {
    let Some(login_url) = &org.login_url else {
        x.outcome = Outcome::Unauthorized;
        return x.error(401, "unauthenticated");
    };
    let Some(base) = public_base(x.config, x.req, &x.facts) else {
        return x.error(400, "bad_host");
    };
    let nonce = random_id();
    let mut pending = pending_logins(x);
    if pending.len() >= MAX_PENDING {
        pending.drain(..=pending.len() - MAX_PENDING);
    }
    pending.push(Pending {
        nonce: nonce.clone(),
        return_path: safe_or(Some(return_path), &org.home_path).to_owned(),
        org: org.name.clone(),
        created: x.now,
    });
    let settings = &x.config.session;
    let Some(sealed) = seal_json(&settings.key, &settings.state_cookie_name, &pending) else {
        return x.error(500, "internal");
    };
    let callback = format!("{base}{}/callback?state={nonce}", x.config.reserved_prefix);
    let location = append_query(
        login_url,
        &[("ssoCallback", &callback), ("redirectPath", return_path)],
    );
    x.outcome = Outcome::LoginRedirect;
    Reply::redirect(location).cookie(set_cookie(
        settings,
        &settings.state_cookie_name,
        &sealed,
        STATE_TTL as u64,
    ))
}

/// The unexpired logins this browser has started.
fn pending_logins(x: &Exchange) -> Vec<Pending> {
    let settings = &x.config.session;
    cookie_values(&x.req.headers, &settings.state_cookie_name)
        .find_map(|v| open_json::<Vec<Pending>>(&settings.key, &settings.state_cookie_name, v))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| x.now - p.created < STATE_TTL && p.created <= x.now + 60)
        .collect()
}

/// Takes the login with this nonce out of the state cookie; also returns
/// the `Set-Cookie` that stores what is left (or clears the cookie).
pub fn take_pending(x: &Exchange, nonce: &str) -> Option<(Pending, String)> {
    let mut pending = pending_logins(x);
    let index = pending
        .iter()
        .position(|p| subtle::ConstantTimeEq::ct_eq(p.nonce.as_bytes(), nonce.as_bytes()).into())?;
    let found = pending.remove(index);
    let settings = &x.config.session;
    let name = &settings.state_cookie_name;
    let cookie = if pending.is_empty() {
        clear_cookie(settings, name)
    } else {
        let sealed = seal_json(&settings.key, name, &pending)?;
        let left = pending
            .iter()
            .map(|p| STATE_TTL - (x.now - p.created))
            .max()
            .unwrap_or(0)
            .max(0);
        set_cookie(settings, name, &sealed, left as u64)
    };
    Some((found, cookie))
}
