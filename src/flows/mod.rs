//! ssogate's own endpoints under `reserved_prefix`, one module per flow.
//! Each returns its [`Decision`]; none decides for the app's requests, so
//! none imports the gate.

mod bridge;
mod callback;
mod code;
mod login;
mod logout;
mod whoami;

use crate::ctx::Request;
use crate::decision::{Decision, Refusal};
use crate::metrics::AuthMethod;
use crate::request::query_param;
use crate::route::{ensure_enabled, Endpoint};

/// Answers a request to one of ssogate's endpoints, and draws a refused
/// credential on its address's failure bucket (SPEC 11).
pub async fn answer(req: &Request<'_>, endpoint: Endpoint) -> Decision {
    let decision = decide(req, endpoint).await;
    req.account(&decision);
    decision
}

async fn decide(req: &Request<'_>, endpoint: Endpoint) -> Decision {
    let router = req.router();
    let host = req.facts.host;
    // A disabled org answers 403 to everything, its own endpoints included,
    // so that it can never loop through a login. The code endpoint serves
    // the org of its client credentials, whatever the Host.
    if endpoint != Endpoint::Code {
        if let Some(org) = router.by_host(host) {
            let carried = if org.enabled {
                None
            } else {
                carried(req, endpoint)
            };
            if let Err(refusal) = ensure_enabled(org, carried) {
                return Decision::refuse(Some(org.clone()), refusal);
            }
        }
    }
    // Counted under the Host's org, whose framing policy also applies to
    // the error page shown inside a portal's iframe.
    let fallback_org = || router.for_endpoint(host).cloned();
    if endpoint != Endpoint::Unknown && !endpoint.allows(&req.head.method) {
        return Decision::refuse(fallback_org(), Refusal::MethodNotAllowed);
    }
    if endpoint.is_login() {
        if let Err(refusal) = req.draw_login() {
            return Decision::refuse(fallback_org(), refusal);
        }
    }
    match endpoint {
        Endpoint::Login => login::login(req),
        Endpoint::Callback => callback::callback(req).await,
        Endpoint::Jwt => callback::jwt(req).await,
        Endpoint::Logout => logout::logout(req).await,
        Endpoint::Whoami => whoami::whoami(req).await,
        Endpoint::Code => code::create(req),
        Endpoint::Authorize => code::authorize(req).await,
        Endpoint::Bridge => bridge::bridge(req).await,
        Endpoint::Unknown => Decision::refuse(fallback_org(), Refusal::NotFound),
    }
}

/// The credential a login endpoint's request carries, counted `disabled`
/// when its org is (SPEC 8). Logout, whoami and the bridge page count
/// nothing.
fn carried(req: &Request, endpoint: Endpoint) -> Option<AuthMethod> {
    let (method, param) = match endpoint {
        Endpoint::Jwt => (AuthMethod::Jwt, "jwt"),
        Endpoint::Callback => (AuthMethod::Callback, "token"),
        Endpoint::Authorize => (AuthMethod::Authorize, "code"),
        _ => return None,
    };
    // A callback's query may hold a stray `?` for `&` (see `callback`).
    let query = req.facts.query?.replace('?', "&");
    query_param(&query, param).map(|_| method)
}
