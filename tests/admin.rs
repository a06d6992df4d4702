//! The admin listener (SPEC 8): health, readiness, metrics; never proxied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn health_and_readiness() {
    let g = Gate::base();
    assert_eq!(g.admin("/healthz").status, 200);
    assert_eq!(g.admin("/readyz").status, 200);
    // admin endpoints are not served on the proxy listener, and the proxy is not on admin
    let r = g.api("/metrics").send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(!r.body.contains("ssogate_"), "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn metrics_count_outcomes() {
    let g = Gate::start(&BASE.replace("default_org: acme\n", ""));
    // one login redirect for acme, one unrouted, one public, one proxied, one unauthorized
    assert!(g
        .nav("/x")
        .host("acme.test")
        .send()
        .is_login_redirect(ACME_LOGIN));
    assert_eq!(g.nav("/x").host("nowhere.test").send().status, 404);
    assert_eq!(g.nav("/public/a").host("nowhere.test").send().status, 200);
    assert_eq!(g.api("/y").host("acme.test").send().status, 401);
    let token = hs256(ACME_SECRET, &claims("m"));
    let jar = g.login_jwt(Some("acme.test"), &token, PLAIN_COOKIE);
    assert_eq!(g.nav("/z").host("acme.test").jar(&jar).send().status, 200);
    assert_eq!(
        g.jwt(&hs256(WRONG_SECRET, &claims("m")))
            .host("acme.test")
            .send()
            .status,
        401
    );

    let m = g.metrics();
    let text = &m.text;
    assert!(
        m.find("ssogate_build_info", &[]).is_some(),
        "no ssogate_build_info:\n{text}"
    );
    for (org, outcome) in [
        ("acme", "login_redirect"),
        ("_none", "unrouted"),
        ("acme", "unauthorized"),
        ("acme", "proxied"),
        ("acme", "internal"),
    ] {
        let v = m.find(
            "ssogate_requests_total",
            &[("org", org), ("outcome", outcome)],
        );
        assert!(
            v.is_some_and(|v| v >= 1.0),
            "ssogate_requests_total{{org={org},outcome={outcome}}} = {v:?}:\n{text}"
        );
    }
    assert!(
        m.find("ssogate_requests_total", &[("outcome", "public")])
            .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        m.find(
            "ssogate_auth_total",
            &[("org", "acme"), ("method", "jwt"), ("result", "ok")]
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        m.find(
            "ssogate_auth_total",
            &[
                ("org", "acme"),
                ("method", "jwt"),
                ("result", "bad_signature")
            ]
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    // tokens never appear in metrics
    assert!(!text.contains(&token));
}
