//! Flow B (SPEC 1, 4): `/_sso/jwt?jwt=JWT` → session → 302 to home_path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

/// Basedash-style claims (plus `sub`, the default principal claim).
fn basedash_claims(sub: &str, org: &str) -> serde_json::Value {
    let n = now();
    json!({
        "sub": sub,
        "email": format!("{sub}@example.test"),
        "orgId": org,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "role": "admin",
        "groups": ["finance"],
        "iat": n,
        "exp": n + 300,
    })
}

#[test]
fn jwt_endpoint_creates_session_and_lands_on_home_path() {
    let g = Gate::base();
    let token = hs256(ACME_SECRET, &basedash_claims("ada", "acme"));
    let r = g.jwt(&token).send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/home");
    assert!(r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    assert_eq!(
        g.upstream.count(),
        0,
        "the jwt endpoint must not reach the app"
    );
    let mut jar = Jar::new();
    jar.absorb(&r);
    let session_value = jar.get(PLAIN_COOKIE).unwrap().to_string();

    let r = g.nav("/home").jar(&jar).send();
    let app = r.app();
    assert_eq!(app["path"], "/home");
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["ada"]);
    assert_eq!(
        app_header(&app, "x-auth-request-email"),
        vec!["ada@example.test"]
    );
    assert_eq!(app_header(&app, "x-auth-request-groups"), vec!["finance"]);
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["acme"]);

    // any other path of the org works with the same session
    let r = g.api("/api/v1/things?page=2").jar(&jar).send();
    let app = r.app();
    assert_eq!(app["path"], "/api/v1/things");
    assert_eq!(app["query"], "page=2");
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["ada"]);

    // request logs carry the path without its query string
    let r = g.nav("/reports/q?marker=qv-9f8e7d6c5b4a").jar(&jar).send();
    assert_eq!(r.app()["query"], "marker=qv-9f8e7d6c5b4a");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        g.logs().contains("/reports/q"),
        "no request log line for /reports/q:\n{}",
        g.logs()
    );
    g.assert_logs_free_of(&[
        "qv-9f8e7d6c5b4a",
        &token,
        token.split('.').nth(2).unwrap(),
        &session_value,
        std::str::from_utf8(ACME_SECRET).unwrap(),
    ]);
}

#[test]
fn jwt_endpoint_for_host_routed_org_uses_its_default_home_path() {
    let g = Gate::base();
    // globex has no org_claim and no home_path (default "/")
    let token = hs256(GLOBEX_SECRET, &claims("gus"));
    let r = g.jwt(&token).host("globex.test").send();
    assert_eq!(r.status, 302, "{r:#?}");
    let loc = r.location();
    assert!(
        loc == "/" || loc == format!("{}/", g.public_url()),
        "Location {loc:?} should be globex's home_path /"
    );
    let mut jar = Jar::new();
    jar.absorb(&r);
    let r = g.nav("/dashboard").host("globex.test").jar(&jar).send();
    let app = r.app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["gus"]);
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["globex"]);
}

#[test]
fn jwt_endpoint_ignores_return_path_parameters() {
    let g = Gate::base();
    let token = hs256(ACME_SECRET, &claims("ivy"));
    let r = g
        .nav(&format!(
            "/_sso/jwt?jwt={}&rd=%2F%2Fevil.com&redirectPath=https%3A%2F%2Fevil.com&redirectUrl=%2F%2Fevil.com",
            enc(&token)
        ))
        .send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/home");
}

#[test]
fn jwt_endpoint_without_jwt_is_refused() {
    let g = Gate::base();
    for target in ["/_sso/jwt", "/_sso/jwt?jwt=", "/_sso/jwt?token=abc"] {
        let r = g.nav(target).send();
        assert_eq!(r.status, 401, "{target}: {r:#?}");
        assert!(!r.sets_cookie(PLAIN_COOKIE), "{target}: {r:#?}");
        let r = g.api(target).send();
        assert_eq!(r.status, 401, "{target}: {r:#?}");
    }
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn flow_b_token_without_jti_can_be_used_twice() {
    // jti is only remembered when present; a token without it is not a replay
    let g = Gate::base();
    let mut c = claims("jon");
    c.as_object_mut().unwrap().remove("jti");
    let token = hs256(ACME_SECRET, &c);
    for _ in 0..2 {
        let r = g.jwt(&token).send();
        assert_eq!(r.status, 302, "{r:#?}");
        assert!(r.sets_cookie(PLAIN_COOKIE));
    }
}
