//! Flow A (SPEC 1, 4): redirect to login_url + token callback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

/// Start flow A with a navigation to `target`; returns the redirect pieces and a jar holding the
/// state cookie.
fn start(g: &Gate, target: &str) -> (LoginRedirect, Jar) {
    let r = g.nav(target).send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    let mut jar = Jar::new();
    jar.absorb(&r);
    (lr, jar)
}

#[test]
fn unauthenticated_navigation_redirects_straight_to_login_url() {
    let g = Gate::base();
    let r = g.nav("/app/page?x=1&y=2").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert_eq!(lr.redirect_path, "/app/page?x=1&y=2");
    assert_eq!(
        lr.sso_callback,
        format!("{}/_sso/callback?state={}", g.public_url(), lr.state)
    );
    // the state cookie has the session cookie's attributes (secure: false variant) + Max-Age=600
    let sc = state_cookie(&r);
    assert!(sc.has("HttpOnly"), "{}", sc.raw);
    assert_eq!(
        sc.get("SameSite").map(|s| s.to_ascii_lowercase()),
        Some("lax".into()),
        "{}",
        sc.raw
    );
    assert_eq!(sc.get("Path"), Some("/"), "{}", sc.raw);
    assert!(!sc.has("Secure"), "{}", sc.raw);
    assert!(!sc.has("Partitioned"), "{}", sc.raw);
    assert_eq!(
        g.upstream.count(),
        0,
        "an unauthenticated navigation reached the app"
    );
}

#[test]
fn login_endpoint_builds_the_same_redirect() {
    let g = Gate::base();
    let r = g.nav("/_sso/login?rd=%2Fp").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert_eq!(lr.redirect_path, "/p");
    // each start gets its own state
    let r2 = g.get("/_sso/login?rd=%2Fp").send();
    let lr2 = expect_login_redirect(&r2, ACME_LOGIN, &g.public_url());
    assert_ne!(lr.state, lr2.state, "two logins got the same state nonce");
    // an org without a query in its login_url
    let r3 = g
        .nav("/_sso/login?rd=%2Fq%3Fa%3Db")
        .host("globex.test")
        .send();
    let lr3 = expect_login_redirect(&r3, GLOBEX_LOGIN, &g.public_url());
    assert_eq!(lr3.redirect_path, "/q?a=b");
    assert!(r3
        .location()
        .starts_with("https://portal.globex.example/login?ssoCallback="));
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn full_flow_a_step_by_step() {
    let g = Gate::base();
    // 1. navigation without a session
    let (lr, mut jar) = start(&g, "/app/page?x=1&y=2");
    let state_value = jar.cookies.values().next().cloned().unwrap();
    // 2. the customer's endpoint sends the browser back with the token
    let token = acme_token(ACME_SECRET, "alice");
    let cb = g.callback(&token, &lr.state).jar(&jar).send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/app/page?x=1&y=2");
    assert!(cb.sets_cookie(PLAIN_COOKIE), "no session cookie: {cb:#?}");
    assert_eq!(g.upstream.count(), 0, "the callback must not reach the app");
    jar.absorb(&cb);
    let session_value = jar.get(PLAIN_COOKIE).unwrap().to_string();
    // 3. the original path, now with the session
    let r = g.nav("/app/page?x=1&y=2").jar(&jar).send();
    let app = r.app();
    assert_eq!(app["path"], "/app/page");
    assert_eq!(app["query"], "x=1&y=2");
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    assert_eq!(
        app_header(&app, "x-auth-request-email"),
        vec!["alice@example.test"]
    );
    assert_eq!(app_header(&app, "x-auth-request-groups"), vec!["dev,ops"]);
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["acme"]);
    assert_eq!(g.upstream.count(), 1);
    // an API call with the same session works too
    let r = g.api("/app/data").jar(&jar).send();
    assert_eq!(app_header(&r.app(), "x-auth-request-user"), vec!["alice"]);

    g.assert_logs_free_of(&[
        &token,
        token.split('.').nth(2).unwrap(),
        &session_value,
        &state_value,
        std::str::from_utf8(ACME_SECRET).unwrap(),
        std::str::from_utf8(SESSION_SECRET).unwrap(),
    ]);
}

#[test]
fn login_endpoint_round_trip_lands_on_rd() {
    let g = Gate::base();
    let r = g.nav("/_sso/login?rd=%2Freports%3Fid%3D7").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    let mut jar = Jar::new();
    jar.absorb(&r);
    let token = acme_token(ACME_SECRET, "bob");
    let cb = g.callback(&token, &lr.state).jar(&jar).send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/reports?id=7");
    assert!(cb.sets_cookie(PLAIN_COOKIE));
}

#[test]
fn callback_quirk_state_then_question_mark_token() {
    let g = Gate::base();
    let (lr, mut jar) = start(&g, "/quirk/path?a=1");
    let token = acme_token(ACME_SECRET, "carol");
    // the customer appended "?token=" to a URL that already had "?state=N"
    let cb = g
        .nav(&format!(
            "/_sso/callback?state={}?token={}",
            lr.state,
            enc(&token)
        ))
        .jar(&jar)
        .send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/quirk/path?a=1");
    assert!(cb.sets_cookie(PLAIN_COOKIE), "{cb:#?}");
    jar.absorb(&cb);
    let r = g.nav("/quirk/path?a=1").jar(&jar).send();
    assert_eq!(app_header(&r.app(), "x-auth-request-user"), vec!["carol"]);
}

#[test]
fn callback_without_state_lands_on_home_path() {
    let g = Gate::base();
    // even with a state cookie saved for /deep, an IdP-initiated callback goes home
    let (_lr, mut jar) = start(&g, "/deep/page");
    let token = acme_token(ACME_SECRET, "dave");
    let cb = g
        .nav(&format!("/_sso/callback?token={}", enc(&token)))
        .jar(&jar)
        .send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/home");
    assert!(cb.sets_cookie(PLAIN_COOKIE));
    // and without any state cookie at all
    let token = acme_token(ACME_SECRET, "dave");
    let cb = g
        .nav(&format!("/_sso/callback?token={}", enc(&token)))
        .send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/home");
    assert!(cb.sets_cookie(PLAIN_COOKIE));
    jar.absorb(&cb);
    let r = g.nav("/home").jar(&jar).send();
    assert_eq!(app_header(&r.app(), "x-auth-request-user"), vec!["dave"]);
}

#[test]
fn callback_with_wrong_state_is_refused() {
    let g = Gate::base();
    let (lr1, jar1) = start(&g, "/one");
    let (lr2, _jar2) = start(&g, "/two");
    assert_ne!(lr1.state, lr2.state);
    let cases = [
        lr2.state.clone(),         // another flow's (genuine) state
        format!("{}x", lr1.state), // tampered
        "0".to_string(),           // made up
    ];
    for st in cases {
        let token = acme_token(ACME_SECRET, "eve");
        let cb = g.callback(&token, &st).jar(&jar1).send();
        assert_eq!(cb.status, 401, "state {st:?}: {cb:#?}");
        assert!(
            !cb.sets_cookie(PLAIN_COOKIE),
            "state {st:?} created a session: {cb:#?}"
        );
    }
    // state in the query but no state cookie at all
    let token = acme_token(ACME_SECRET, "eve");
    let cb = g.callback(&token, &lr1.state).send();
    assert_eq!(cb.status, 401, "{cb:#?}");
    assert!(!cb.sets_cookie(PLAIN_COOKIE));
    // a state cookie of another login with that login's state still works (control)
    let token = acme_token(ACME_SECRET, "eve");
    let cb = g.callback(&token, &lr1.state).jar(&jar1).send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/one");
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn callback_without_token_is_refused() {
    let g = Gate::base();
    let (lr, jar) = start(&g, "/x");
    for target in [
        format!("/_sso/callback?state={}", lr.state),
        format!("/_sso/callback?state={}&token=", lr.state),
        "/_sso/callback".to_string(),
    ] {
        let cb = g.nav(&target).jar(&jar).send();
        assert_eq!(cb.status, 401, "{target}: {cb:#?}");
        assert!(!cb.sets_cookie(PLAIN_COOKIE), "{target}: {cb:#?}");
        let cb = g.api(&target).jar(&jar).send();
        assert_eq!(cb.status, 401, "{target}: {cb:#?}");
    }
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn unauthenticated_non_navigation_gets_401_json() {
    let g = Gate::base();
    let r = g.api("/app/data?x=1&y=2").send();
    assert_eq!(r.status, 401, "{r:#?}");
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(www.starts_with("Bearer"), "WWW-Authenticate: {www:?}");
    assert!(r.header("location").is_none());
    let j = r.json();
    assert_eq!(j["error"], "unauthenticated");
    let login_url = j["login_url"].as_str().expect("login_url string");
    let prefix = format!("{}/_sso/login?", g.public_url());
    assert!(login_url.starts_with(&prefix), "login_url {login_url:?}");
    assert_eq!(
        query_param(login_url, "rd").as_deref(),
        Some("/app/data?x=1&y=2")
    );
    assert_eq!(
        g.upstream.count(),
        0,
        "the app saw an unauthenticated request"
    );

    // following login_url (what the app's script does) starts flow A for that path
    let path = &login_url[g.public_url().len()..];
    let r = g.nav(path).send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert_eq!(lr.redirect_path, "/app/data?x=1&y=2");
}

#[test]
fn what_counts_as_a_navigation() {
    let g = Gate::base();
    // Accept: text/html alone
    let r = g.get("/n1").header("Accept", "text/html").send();
    assert!(r.is_login_redirect(ACME_LOGIN), "{r:#?}");
    // Sec-Fetch-Mode: navigate alone
    let r = g
        .get("/n2")
        .header("Accept", "*/*")
        .header("Sec-Fetch-Mode", "navigate")
        .send();
    assert!(r.is_login_redirect(ACME_LOGIN), "{r:#?}");
    // HEAD accepting text/html
    let r = g.req("HEAD", "/n3").header("Accept", "text/html").send();
    assert!(r.is_login_redirect(ACME_LOGIN), "{r:#?}");
    // POST accepting text/html, no Sec-Fetch-Mode: not a navigation
    let r = g
        .post("/n4")
        .header("Accept", "text/html")
        .header("Content-Type", "application/json")
        .body(b"{}")
        .send();
    assert_eq!(r.status, 401, "{r:#?}");
    // fetch() asking for JSON
    let r = g.get("/n5").header("Accept", "application/json").send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn callback_url_derived_from_host_without_public_url() {
    let cfg = BASE.replace("public_url: http://127.0.0.1:{proxy_port}\n", "");
    assert!(!cfg.contains("public_url"));
    let g = Gate::start(&cfg);
    // an untrusted client's X-Forwarded-Proto/Host are not believed
    let r = g
        .nav("/from/host")
        .host("acme.test")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "evil.example")
        .send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, "http://acme.test");
    assert_eq!(lr.redirect_path, "/from/host");
    let r = g.api("/from/api").host("acme.test").send();
    assert_eq!(r.status, 401);
    let login_url = r.json()["login_url"].as_str().unwrap().to_string();
    assert!(
        login_url.starts_with("http://acme.test/_sso/login?"),
        "login_url {login_url:?}"
    );
    // and the callback on that host completes the flow
    let mut jar = Jar::new();
    let r = g.nav("/from/host").host("acme.test").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, "http://acme.test");
    jar.absorb(&r);
    let token = acme_token(ACME_SECRET, "frank");
    let cb = g
        .callback(&token, &lr.state)
        .host("acme.test")
        .jar(&jar)
        .send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    let loc = cb.location();
    assert!(
        loc == "/from/host" || loc == "http://acme.test/from/host",
        "Location {loc:?}"
    );
}
