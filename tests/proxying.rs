//! Proxying details (SPEC 3, 6): trusted proxies' X-Forwarded-*, a custom
//! reserved_prefix, and an org with an upstream of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn a_trusted_proxys_forwarded_headers_are_believed() {
    // the test client is 127.0.0.1: trusted here
    let template = BASE
        .replace("public_url: http://127.0.0.1:{proxy_port}\n", "")
        .replace(
            "public_paths: [/public/]",
            "public_paths: [/public/]\ntrusted_proxies: [127.0.0.0/8]",
        );
    let g = Gate::start(&template);
    let jar = g.login_acme("alice");
    let app = g
        .nav("/fwd")
        .host("acme.test")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "dash.example.com")
        .jar(&jar)
        .send()
        .app();
    assert_eq!(
        app_header(&app, "x-forwarded-for"),
        vec!["203.0.113.7, 127.0.0.1"],
        "{app}"
    );
    assert_eq!(
        app_header(&app, "x-forwarded-proto"),
        vec!["https"],
        "{app}"
    );
    assert_eq!(
        app_header(&app, "x-forwarded-host"),
        vec!["dash.example.com"],
        "{app}"
    );

    // and the callback URL handed to the portal is the one the browser used
    let r = g
        .nav("/reports")
        .host("acme.test")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "dash.example.com")
        .send();
    assert_eq!(r.status, 302);
    let callback = query_param(r.location(), "ssoCallback").unwrap();
    assert!(
        callback.starts_with("https://dash.example.com/_sso/callback?state="),
        "{callback}"
    );
}

#[test]
fn untrusted_forwarded_headers_never_shape_the_callback_url() {
    let template = BASE.replace("public_url: http://127.0.0.1:{proxy_port}\n", "");
    let g = Gate::start(&template);
    let r = g
        .nav("/reports")
        .host("acme.test")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "evil.example")
        .send();
    assert_eq!(r.status, 302);
    let callback = query_param(r.location(), "ssoCallback").unwrap();
    assert!(
        callback.starts_with("http://acme.test/_sso/callback?state="),
        "{callback}"
    );
}

#[test]
fn a_custom_reserved_prefix_moves_every_endpoint() {
    let template = BASE.replace(
        "public_paths: [/public/]",
        "public_paths: [/public/]\nreserved_prefix: /auth",
    );
    let g = Gate::start(&template);
    let r = g.nav("/reports").send();
    assert_eq!(r.status, 302);
    let callback = query_param(r.location(), "ssoCallback").unwrap();
    assert!(callback.contains("/auth/callback?state="), "{callback}");
    let token = acme_token(ACME_SECRET, "amy");
    let r = g.nav(&format!("/auth/jwt?jwt={}", enc(&token))).send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE));
    // /_sso/ is now an ordinary path of the app, behind the gate
    let r = g.api("/_sso/whoami").send();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"],
        "unauthenticated",
        "the gate answered, not whoami: {}",
        r.body
    );
}

#[test]
fn an_org_may_have_its_own_upstream() {
    let other = Upstream::start();
    let template = BASE.replace(
        "    keys: [{ alg: HS256, secret_file: globex.secret }]\n",
        &format!(
            "    keys: [{{ alg: HS256, secret_file: globex.secret }}]\n    upstream: http://127.0.0.1:{}\n",
            other.port
        ),
    );
    let g = Gate::start(&template);
    let token = hs256(GLOBEX_SECRET, &claims("gus"));
    let jar = g.login_jwt(Some("globex.test"), &token, PLAIN_COOKIE);
    let r = g.get("/report").host("globex.test").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert_eq!(other.count(), 1, "globex's own upstream served it");
    assert_eq!(g.upstream.count(), 0, "the global upstream did not");
    let acme = g.login_acme("alice");
    assert_eq!(g.get("/report").jar(&acme).send().status, 200);
    assert_eq!(g.upstream.count(), 1);
}
