//! `GET /_sso/login?rd=PATH`: flow A started by hand, for the org the Host
//! names, else the one `rd` routes to, else `default_org`.

use crate::ctx::Request;
use crate::decision::{Decision, Refusal};
use crate::redirect::safe_or;
use crate::route::ensure_enabled;
use crate::signin;

pub fn login(req: &Request) -> Decision {
    let router = req.router();
    let host = req.facts.host;
    let rd = req.facts.param("rd");
    let org = router
        .by_host(host)
        .or_else(|| rd.as_deref().and_then(|p| router.by_path(p)))
        .or_else(|| router.default_org());
    let Some(org) = org.cloned() else {
        // Only browsers visit /login: never the 401 a script would get.
        let refusal = Refusal::Unrouted { navigation: true };
        return Decision::refuse(router.for_endpoint(host).cloned(), refusal);
    };
    if let Err(refusal) = ensure_enabled(&org, None) {
        return Decision::refuse(Some(org), refusal);
    }
    if let Err(refusal) = req.ensure_framing_allowed(Some(&org)) {
        return Decision::refuse(Some(org), refusal);
    }
    let return_path = safe_or(rd.as_deref(), &org.home_path);
    let started = signin::start(req, &org, return_path);
    Decision::login_redirect(org, started)
}
