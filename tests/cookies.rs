//! Session and state cookie attributes (SPEC 4, 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

fn samesite(c: &SetCookie) -> Option<String> {
    c.get("SameSite").map(|s| s.to_ascii_lowercase())
}

#[test]
fn plain_cookie_attributes_and_session_ttl() {
    let cfg = BASE
        .replace("  secure: false\n", "  secure: false\n  ttl: 20m\n")
        .replace(
            "    keys: [{ alg: HS256, secret_file: globex.secret }]\n",
            "    keys: [{ alg: HS256, secret_file: globex.secret }]\n    session_ttl: 7m\n",
        );
    assert!(cfg.contains("ttl: 20m") && cfg.contains("session_ttl: 7m"));
    let g = Gate::start(&cfg);

    // a token whose exp is much shorter than the session: the session lives session.ttl anyway
    let n = now();
    let token = hs256(
        ACME_SECRET,
        &claims_with("alice", json!({"iat": n, "exp": n + 60})),
    );
    let r = g.jwt(&token).send();
    assert_eq!(r.status, 302, "{r:#?}");
    let c = r
        .set_cookie(PLAIN_COOKIE)
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(r.set_cookie(SECURE_COOKIE).is_none(), "{r:#?}");
    assert!(c.has("HttpOnly"), "{}", c.raw);
    assert_eq!(samesite(&c).as_deref(), Some("lax"), "{}", c.raw);
    assert_eq!(c.get("Path"), Some("/"), "{}", c.raw);
    assert_eq!(c.max_age(), Some(1200), "{}", c.raw);
    assert!(!c.has("Secure"), "{}", c.raw);
    assert!(!c.has("Partitioned"), "{}", c.raw);
    assert!(!c.has("Domain"), "{}", c.raw);
    assert!(!c.value.is_empty());
    let mut jar = Jar::new();
    jar.absorb(&r);
    let exp = g.api("/_sso/whoami").jar(&jar).send().json()["expires_at"]
        .as_i64()
        .unwrap();
    assert!(
        (exp - (n + 1200)).abs() <= 5,
        "expires_at {exp} vs {}",
        n + 1200
    );

    // the org override
    let token = hs256(GLOBEX_SECRET, &claims("gus"));
    let r = g.jwt(&token).host("globex.test").send();
    assert_eq!(r.status, 302, "{r:#?}");
    let c = r
        .set_cookie(PLAIN_COOKIE)
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(c.max_age(), Some(420), "org session_ttl 7m: {}", c.raw);
}

#[test]
fn default_session_ttl_is_15m() {
    let g = Gate::base();
    let token = hs256(ACME_SECRET, &claims("alice"));
    let r = g.jwt(&token).send();
    let c = r
        .set_cookie(PLAIN_COOKIE)
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(c.max_age(), Some(900), "{}", c.raw);
}

#[test]
fn secure_cookie_attributes() {
    let cfg = BASE.replace("secure: false", "secure: true");
    let g = Gate::start(&cfg);

    // the state cookie of flow A has the same attributes, Max-Age=600
    let r = g.nav("/start").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    let sc = state_cookie(&r);
    assert!(sc.has("HttpOnly"), "{}", sc.raw);
    assert!(sc.has("Secure"), "{}", sc.raw);
    assert_eq!(samesite(&sc).as_deref(), Some("none"), "{}", sc.raw);
    assert!(sc.has("Partitioned"), "{}", sc.raw);
    assert_eq!(sc.get("Path"), Some("/"), "{}", sc.raw);
    assert_eq!(sc.max_age(), Some(600), "{}", sc.raw);
    let mut jar = Jar::new();
    jar.absorb(&r);

    let token = hs256(ACME_SECRET, &claims("alice"));
    let cb = g.callback(&token, &lr.state).jar(&jar).send();
    assert_eq!(cb.status, 302, "{cb:#?}");
    assert_eq!(g.loc_path(&cb), "/start");
    let c = cb
        .set_cookie(SECURE_COOKIE)
        .unwrap_or_else(|| panic!("no {SECURE_COOKIE} cookie: {cb:#?}"));
    assert!(cb.set_cookie(PLAIN_COOKIE).is_none(), "{cb:#?}");
    assert!(c.has("HttpOnly"), "{}", c.raw);
    assert!(c.has("Secure"), "{}", c.raw);
    assert_eq!(samesite(&c).as_deref(), Some("none"), "{}", c.raw);
    assert!(c.has("Partitioned"), "{}", c.raw);
    assert_eq!(c.get("Path"), Some("/"), "{}", c.raw);
    assert_eq!(c.max_age(), Some(900), "{}", c.raw);
    assert!(
        !c.has("Domain"),
        "__Host- cookies must not have Domain: {}",
        c.raw
    );

    // the session works over plain http for the test client, and never reaches the app
    jar.absorb(&cb);
    let r = g.nav("/start").jar(&jar).cookie("theme=dark").send();
    let app = r.app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    let names: Vec<String> = app_cookies(&app).into_iter().map(|(n, _)| n).collect();
    assert!(
        !names.iter().any(|n| n == SECURE_COOKIE),
        "session cookie reached the app: {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "theme"),
        "the client's own cookie was dropped: {names:?}"
    );
}

#[test]
fn session_cookie_never_reaches_the_app() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    let session = jar.get(PLAIN_COOKIE).unwrap().to_string();
    // session first, between and last among the client's cookies
    for cookie_header in [
        format!("{PLAIN_COOKIE}={session}; theme=dark; lang=en"),
        format!("theme=dark; {PLAIN_COOKIE}={session}; lang=en"),
        format!("theme=dark; lang=en; {PLAIN_COOKIE}={session}"),
    ] {
        let r = g.nav("/page").cookie(&cookie_header).send();
        let app = r.app();
        assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
        let cookies = app_cookies(&app);
        assert!(
            !cookies
                .iter()
                .any(|(n, v)| n == PLAIN_COOKIE || v == &session),
            "session cookie reached the app: {cookies:?}"
        );
        assert!(
            cookies.contains(&("theme".into(), "dark".into())),
            "{cookies:?}"
        );
        assert!(
            cookies.contains(&("lang".into(), "en".into())),
            "{cookies:?}"
        );
        assert!(
            !app_header(&app, "cookie")
                .iter()
                .any(|h| h.contains(&session)),
            "{app}"
        );
    }
    // only the session cookie: the app gets no session value
    let r = g.nav("/page").jar(&jar).send();
    let app = r.app();
    assert!(
        !app_cookies(&app).iter().any(|(n, _)| n == PLAIN_COOKIE),
        "{app}"
    );
}

#[test]
fn cookie_keeps_only_mapped_claims_and_stays_small() {
    let g = Gate::base();
    // 3 KB of an unmapped claim: the cookie must not carry it
    let token = hs256(
        ACME_SECRET,
        &claims_with("big", json!({"bio": "x".repeat(3000), "orgId": "acme"})),
    );
    assert!(token.len() < 8 * 1024);
    let r = g.jwt(&token).send();
    assert_eq!(r.status, 302, "{r:#?}");
    let c = r
        .set_cookie(PLAIN_COOKIE)
        .unwrap_or_else(|| panic!("{r:#?}"));
    assert!(
        c.raw.len() < 3000,
        "the session cookie carries unmapped claims ({} bytes)",
        c.raw.len()
    );
    // and only one session cookie (never split)
    assert_eq!(
        r.set_cookies()
            .iter()
            .filter(|c| c.name.starts_with(PLAIN_COOKIE))
            .count(),
        1,
        "{r:#?}"
    );
}
