//! What ssogate answers itself (SPEC 4, 5, 10): error pages for people and
//! JSON for scripts, both with a request id; never cached, never leaking the
//! URL; a session too large for a cookie is refused, never split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[test]
fn errors_are_a_page_for_people_and_json_for_scripts() {
    let g = Gate::base();
    let bad = hs256(WRONG_SECRET, &claims("eve"));
    let page = g.jwt(&bad).send();
    assert_eq!(page.status, 401);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{page:#?}"
    );
    assert!(page.body.contains("Request id"), "{}", page.body);
    assert!(!page.body.contains(&bad), "the token is never echoed");

    let api = g.api(&format!("/_sso/jwt?jwt={}", enc(&bad))).send();
    assert_eq!(api.status, 401);
    let j = api.json();
    assert!(j["error"].is_string() && j["request_id"].is_string(), "{j}");
    assert!(!api.body.contains(&bad));

    // the request id in the answer is the one in the log
    let id = j["request_id"].as_str().unwrap().to_owned();
    let logged = poll(std::time::Duration::from_secs(3), || {
        g.logs().contains(&id).then_some(())
    });
    assert!(logged.is_some(), "request id {id} not logged");
}

#[test]
fn own_responses_are_never_cached_and_never_leak_the_url() {
    let g = Gate::base();
    let token = acme_token(ACME_SECRET, "ann");
    for r in [
        g.nav("/reports").send(),
        g.jwt(&token).send(),
        g.api("/_sso/whoami").send(),
        g.nav("/_sso/logout").send(),
    ] {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:#?}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{r:#?}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{r:#?}"
        );
    }
}

#[test]
fn unknown_endpoints_and_wrong_methods() {
    let g = Gate::base();
    assert_eq!(g.api("/_sso/nope").send().status, 404);
    assert_eq!(g.post("/_sso/jwt").body(b"x").send().status, 405);
    assert_eq!(g.req("DELETE", "/_sso/logout").send().status, 405);
    assert_eq!(
        g.upstream.count(),
        0,
        "ssogate's own paths never reach the app"
    );
}

#[test]
fn a_session_too_large_for_a_cookie_is_refused_not_split() {
    let g = Gate::base();
    let huge = format!("{}@acme.example", "a".repeat(5000));
    let token = hs256(
        ACME_SECRET,
        &claims_with("big", json!({"orgId": "acme", "email": huge})),
    );
    let r = g.jwt(&token).send();
    assert_eq!(r.status, 400, "{r:#?}");
    assert!(
        r.body.contains("too large") || r.body.contains("too_large"),
        "a clear error: {}",
        r.body
    );
    assert!(
        r.set_cookies()
            .iter()
            .all(|c| !c.name.starts_with(PLAIN_COOKIE)),
        "no session cookie, not even a part of one: {r:#?}"
    );
}
