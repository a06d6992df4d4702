//! Org routing (SPEC 4), disabled orgs, and request smuggling (SPEC 6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

fn no_default_org() -> String {
    let cfg = BASE.replace("default_org: acme\n", "");
    assert!(!cfg.contains("default_org"));
    cfg
}

#[test]
fn unrouted_requests_get_404_on_navigation_and_401_otherwise() {
    let g = Gate::start(&no_default_org());
    let r = g.nav("/somewhere").host("unknown.test").send();
    assert_eq!(r.status, 404, "{r:#?}");
    assert!(r.header("location").is_none(), "{r:#?}");
    let r = g.api("/somewhere").host("unknown.test").send();
    assert_eq!(r.status, 401, "{r:#?}");
    // the default Host (127.0.0.1:port) matches no org either
    let r = g.nav("/somewhere").send();
    assert_eq!(r.status, 404, "{r:#?}");
    let r = g.api("/somewhere").send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
    // public paths pass even unrouted
    let r = g.nav("/public/logo.png").host("unknown.test").send();
    assert_eq!(r.app()["path"], "/public/logo.png");
    let r = g.api("/public/data").send();
    assert_eq!(r.app()["path"], "/public/data");
    assert_eq!(g.upstream.count(), 2);
}

#[test]
fn host_routing_is_case_insensitive_and_ignores_port() {
    let g = Gate::start(&no_default_org());
    for host in ["acme.test", "ACME.test", "Acme.Test:8443", "acme.test:80"] {
        let r = g.nav("/x").host(host).send();
        assert!(r.is_login_redirect(ACME_LOGIN), "Host {host}: {r:#?}");
    }
    for host in ["globex.test", "GLOBEX.TEST:1"] {
        let r = g.nav("/x").host(host).send();
        assert!(r.is_login_redirect(GLOBEX_LOGIN), "Host {host}: {r:#?}");
    }
    // not a suffix / prefix match
    for host in ["evil-acme.test", "acme.test.evil", "sub.acme.test"] {
        let r = g.nav("/x").host(host).send();
        assert_eq!(r.status, 404, "Host {host}: {r:#?}");
    }
}

#[test]
fn path_prefix_routing() {
    let g = Gate::start(&no_default_org());
    let r = g.nav("/acme/reports?id=1").host("unknown.test").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert_eq!(lr.redirect_path, "/acme/reports?id=1");
    // Host wins over path
    let r = g.nav("/acme/reports").host("globex.test").send();
    assert!(r.is_login_redirect(GLOBEX_LOGIN), "{r:#?}");
    // "/acmex" is not under "/acme/"
    let r = g.nav("/acmex").host("unknown.test").send();
    assert_eq!(r.status, 404, "{r:#?}");

    // a path-routed session works and the path is not stripped
    let token = acme_token(ACME_SECRET, "pat");
    let r = g.jwt(&token).host("acme.test").send();
    assert_eq!(r.status, 302, "{r:#?}");
    let mut jar = Jar::new();
    jar.absorb(&r);
    let r = g
        .nav("/acme/reports?id=1")
        .host("unknown.test")
        .jar(&jar)
        .send();
    let app = r.app();
    assert_eq!(app["path"], "/acme/reports");
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["acme"]);
}

#[test]
fn org_claim_must_agree_with_the_routed_org() {
    let g = Gate::base();
    // acme has org_claim orgId: a token naming acme is fine, naming globex is not
    let ok = acme_token(ACME_SECRET, "o");
    let r = g.jwt(&ok).host("acme.test").send();
    assert_eq!(r.status, 302, "{r:#?}");
    let bad = hs256(ACME_SECRET, &claims_with("o", json!({"orgId": "globex"})));
    let r = g.jwt(&bad).host("acme.test").send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE));
}

#[test]
fn disabled_org_answers_403() {
    let cfg = BASE.replace("  globex:\n", "  globex:\n    enabled: false\n");
    assert!(cfg.contains("enabled: false"));
    let g = Gate::start(&cfg);
    let r = g.api("/x").host("globex.test").send();
    assert_eq!(r.status, 403, "{r:#?}");
    assert_eq!(r.json()["error"], "organization_disabled");
    // a navigation does not loop through the login
    let r = g.nav("/x").host("globex.test").send();
    assert_eq!(r.status, 403, "{r:#?}");
    assert!(r.header("location").is_none(), "{r:#?}");
    // logins are refused
    let token = hs256(GLOBEX_SECRET, &claims("g"));
    for target in [
        format!("/_sso/jwt?jwt={}", enc(&token)),
        format!("/_sso/callback?token={}", enc(&token)),
        "/_sso/login?rd=%2F".to_string(),
    ] {
        let r = g.api(&target).host("globex.test").send();
        assert_eq!(r.status, 403, "{target}: {r:#?}");
        assert!(!r.sets_cookie(PLAIN_COOKIE), "{target}: {r:#?}");
        assert_eq!(r.json()["error"], "organization_disabled", "{target}");
    }
    assert_eq!(g.upstream.count(), 0);
    // public paths still pass
    let r = g.nav("/public/x").host("globex.test").send();
    assert_eq!(r.app()["path"], "/public/x");
    // the other org is unaffected
    let r = g.nav("/x").host("acme.test").send();
    assert!(r.is_login_redirect(ACME_LOGIN), "{r:#?}");
}

#[test]
fn disabled_org_refuses_existing_sessions() {
    // a session minted while enabled is refused by a gate where the org is disabled
    // (same session secret, i.e. a replica / the config after a change)
    let enabled = Gate::base();
    let token = hs256(GLOBEX_SECRET, &claims("g"));
    let jar = enabled.login_jwt(Some("globex.test"), &token, PLAIN_COOKIE);
    assert_eq!(
        enabled
            .nav("/x")
            .host("globex.test")
            .jar(&jar)
            .send()
            .status,
        200
    );
    let disabled = Gate::start(&BASE.replace("  globex:\n", "  globex:\n    enabled: false\n"));
    let r = disabled.api("/x").host("globex.test").jar(&jar).send();
    assert_eq!(r.status, 403, "{r:#?}");
    assert_eq!(disabled.upstream.count(), 0);
}

fn status_line(raw: &str) -> &str {
    raw.lines().next().unwrap_or_default()
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    let g = Gate::base();
    // control: the same request without the conflict reaches the app
    let ok = g.raw(
        b"POST /public/x HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(status_line(&ok).contains(" 200"), "control: {ok}");
    assert_eq!(g.upstream.count(), 1);

    let resp = g.raw(
        b"POST /public/x HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    );
    assert!(status_line(&resp).contains(" 400"), "CL+TE: {resp}");
    let resp = g.raw(
        b"POST /public/x HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert!(status_line(&resp).contains(" 400"), "TE+CL: {resp}");

    // with a valid session on a protected path as well
    let jar = g.login_acme("smuggler");
    let req = format!(
        "POST /app/x HTTP/1.1\r\nHost: acme.test\r\nCookie: {}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        jar.header()
    );
    let resp = g.raw(req.as_bytes());
    assert!(
        status_line(&resp).contains(" 400"),
        "CL+TE with session: {resp}"
    );
    assert_eq!(g.upstream.count(), 1, "a CL+TE request reached the app");
}
