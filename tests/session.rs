//! The session (SPEC 4, 5): whoami, logout + revocation, tampered and cross-org cookies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[test]
fn whoami_reports_the_session() {
    let g = Gate::base();
    let r = g.api("/_sso/whoami").send();
    assert_eq!(r.status, 401, "whoami without a session: {r:#?}");

    let before = now();
    let token = hs256(
        ACME_SECRET,
        &claims_with(
            "alice",
            json!({"orgId": "acme", "email": "alice@acme.test", "groups": ["dev", "ops"]}),
        ),
    );
    let jar = g.login_jwt(None, &token, PLAIN_COOKIE);
    let r = g.api("/_sso/whoami").jar(&jar).send();
    assert_eq!(r.status, 200, "{r:#?}");
    let j = r.json();
    assert_eq!(j["org"], "acme", "{j}");
    assert_eq!(j["principal"], "alice", "{j}");
    assert_eq!(j["method"], "cookie", "{j}");
    assert_eq!(j["claims"]["email"], "alice@acme.test", "{j}");
    assert_eq!(j["claims"]["groups"], json!(["dev", "ops"]), "{j}");
    let exp = j["expires_at"]
        .as_i64()
        .expect("expires_at must be unix seconds");
    // default session.ttl 15m, from the session's creation (not the token's exp = now+300)
    assert!(
        exp >= before + 900 - 5 && exp <= now() + 900 + 5,
        "expires_at {exp} is not ~15m after login ({before})"
    );
    // whoami is ssogate's own endpoint, never proxied
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn logout_clears_and_revokes_the_session() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    let old_cookie = jar.get(PLAIN_COOKIE).unwrap().to_string();
    assert_eq!(g.api("/_sso/whoami").jar(&jar).send().status, 200);

    let r = g.nav("/_sso/logout").jar(&jar).send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(r.location(), ACME_LOGOUT);
    let sc = r
        .set_cookie(PLAIN_COOKIE)
        .unwrap_or_else(|| panic!("logout did not touch the session cookie: {r:#?}"));
    assert!(sc.is_removal(), "logout must clear the cookie: {}", sc.raw);

    // the old cookie value, replayed by the client, no longer works
    let mut old = Jar::new();
    old.set(PLAIN_COOKIE, &old_cookie);
    let r = g.api("/_sso/whoami").jar(&old).send();
    assert_eq!(
        r.status, 401,
        "revoked session still answers whoami: {r:#?}"
    );
    let r = g.nav("/app").jar(&old).send();
    assert!(
        r.is_login_redirect(ACME_LOGIN),
        "revoked session still navigates: {r:#?}"
    );
    let r = g.api("/app").jar(&old).send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(g.upstream.count(), 0, "a revoked session reached the app");
}

#[test]
fn logout_by_post_and_without_logout_url() {
    let g = Gate::base();
    // POST works too
    let jar = g.login_acme("bob");
    let r = g.post("/_sso/logout").jar(&jar).body(b"").send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(r.location(), ACME_LOGOUT);
    assert!(
        r.set_cookie(PLAIN_COOKIE).is_some_and(|c| c.is_removal()),
        "{r:#?}"
    );
    assert_eq!(g.api("/_sso/whoami").jar(&jar).send().status, 401);

    // globex has no logout_url: a small built-in page, the cookie cleared
    let token = hs256(GLOBEX_SECRET, &claims("gina"));
    let jar = g.login_jwt(Some("globex.test"), &token, PLAIN_COOKIE);
    let r = g.nav("/_sso/logout").host("globex.test").jar(&jar).send();
    assert_eq!(r.status, 200, "{r:#?}");
    assert!(
        r.set_cookie(PLAIN_COOKIE).is_some_and(|c| c.is_removal()),
        "{r:#?}"
    );
    assert_eq!(
        g.api("/_sso/whoami")
            .host("globex.test")
            .jar(&jar)
            .send()
            .status,
        401
    );
}

/// Flip one character in the middle of a cookie value, staying in the same alphabet.
fn flip(v: &str) -> String {
    let mut b = v.as_bytes().to_vec();
    let i = b.len() / 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn tampered_session_cookie_counts_as_no_session() {
    let g = Gate::base();
    let jar = g.login_acme("mallory");
    let good = jar.get(PLAIN_COOKIE).unwrap().to_string();
    // control: the genuine cookie works
    assert_eq!(g.api("/_sso/whoami").jar(&jar).send().status, 200);
    let before = g.upstream.count();

    for bad in [
        flip(&good),
        good[..good.len() - 1].to_string(),
        format!("{good}A"),
        good.chars().rev().collect::<String>(),
        "garbage".to_string(),
    ] {
        let mut j = Jar::new();
        j.set(PLAIN_COOKIE, &bad);
        let r = g.nav("/app/page").jar(&j).send();
        assert!(r.is_login_redirect(ACME_LOGIN), "tampered {bad:?}: {r:#?}");
        let r = g.api("/app/page").jar(&j).send();
        assert_eq!(r.status, 401, "tampered {bad:?}: {r:#?}");
        let r = g.api("/_sso/whoami").jar(&j).send();
        assert_eq!(r.status, 401, "tampered {bad:?}: {r:#?}");
    }
    assert_eq!(
        g.upstream.count(),
        before,
        "a tampered cookie reached the app"
    );
}

#[test]
fn session_of_one_org_does_not_authenticate_another() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    // acme (default org, by Host, by path) accepts it
    assert_eq!(g.api("/_sso/whoami").jar(&jar).send().status, 200);
    assert_eq!(g.api("/x").host("acme.test").jar(&jar).send().status, 200);
    let before = g.upstream.count();
    // globex does not
    let r = g.api("/_sso/whoami").host("globex.test").jar(&jar).send();
    assert_eq!(r.status, 401, "{r:#?}");
    let r = g.nav("/x").host("globex.test").jar(&jar).send();
    assert!(r.is_login_redirect(GLOBEX_LOGIN), "{r:#?}");
    let r = g.api("/x").host("globex.test").jar(&jar).send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(
        g.upstream.count(),
        before,
        "acme's session reached the app as globex"
    );
}

#[test]
fn session_secret_is_what_seals_the_cookie() {
    // a second gate with another session secret refuses the first gate's cookie;
    // a second gate with the same secret accepts it ("any replica")
    let g1 = Gate::base();
    let jar = g1.login_acme("replica");
    let g2 = Gate::base(); // same SESSION_SECRET
    assert_eq!(
        g2.api("/_sso/whoami").jar(&jar).send().status,
        200,
        "a replica with the same session secret must accept the cookie"
    );
    let g3 = Gate::builder(BASE)
        .file(
            "session.key",
            b"another-session-secret-0123456789abcdefghijklmn",
        )
        .start();
    assert_eq!(
        g3.api("/_sso/whoami").jar(&jar).send().status,
        401,
        "a cookie sealed with another secret must not open"
    );
}

#[test]
fn authorization_header_is_ignored_without_accept_bearer() {
    let g = Gate::base();
    let token = hs256(ACME_SECRET, &claims("bearer-user"));
    // not a login: accept_bearer defaults to false
    let r = g
        .api("/api/x")
        .header("Authorization", &format!("Bearer {token}"))
        .send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
    // with a session, it reaches the app unchanged
    let jar = g.login_acme("alice");
    let r = g
        .api("/api/x")
        .header("Authorization", "Bearer app-specific-token")
        .jar(&jar)
        .send();
    let app = r.app();
    assert_eq!(
        app_header(&app, "authorization"),
        vec!["Bearer app-specific-token"]
    );
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
}

#[test]
fn expired_session_counts_as_no_session() {
    let cfg = BASE.replace("  secure: false\n", "  secure: false\n  ttl: 2s\n");
    let g = Gate::start(&cfg);
    let jar = g.login_acme("shortlived");
    let c = jar.get(PLAIN_COOKIE).unwrap().to_string();
    assert_eq!(g.api("/_sso/whoami").jar(&jar).send().status, 200);
    // the test client ignores Max-Age: the server must check the expiry itself
    let t0 = now();
    while now() < t0 + 3 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut old = Jar::new();
    old.set(PLAIN_COOKIE, &c);
    assert_eq!(g.api("/_sso/whoami").jar(&old).send().status, 401);
    let r = g.nav("/app").jar(&old).send();
    assert!(r.is_login_redirect(ACME_LOGIN), "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
}
