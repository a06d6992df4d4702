//! What reaches the app (SPEC 3, 6): identity headers, spoofed headers, X-Forwarded-*.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};

/// Header names the app saw that look like an identity header (`_` folded to `-`).
fn identity_like(app: &Value) -> Vec<String> {
    app_header_names(app)
        .into_iter()
        .filter(|n| n.replace('_', "-").starts_with("x-auth-request-"))
        .collect()
}

fn spoof(req: Req<'_>) -> Req<'_> {
    req.header("X-Auth-Request-User", "admin")
        .header("x-auth-request-user", "root")
        .header("X_Auth_Request_User", "superuser")
        .header("X-AUTH-REQUEST-EMAIL", "ceo@evil.test")
        .header("X-Auth-Request-Groups", "admins")
        .header("x_auth_request_org", "globex")
        .header("X-Auth_Request-Email", "mixed@evil.test")
}

#[test]
fn identity_headers_come_from_the_session() {
    let g = Gate::base();
    let token = hs256(
        ACME_SECRET,
        &claims_with(
            "alice",
            json!({"orgId": "acme", "email": "alice@acme.test", "groups": ["dev", "ops", "sre"]}),
        ),
    );
    let jar = g.login_jwt(None, &token, PLAIN_COOKIE);
    let r = g.nav("/app").jar(&jar).send();
    let app = r.app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    assert_eq!(
        app_header(&app, "x-auth-request-email"),
        vec!["alice@acme.test"]
    );
    assert_eq!(
        app_header(&app, "x-auth-request-groups"),
        vec!["dev,ops,sre"]
    );
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["acme"]);
}

#[test]
fn non_ascii_claims_pass_as_utf8() {
    let g = Gate::base();
    let token = hs256(
        ACME_SECRET,
        &claims_with(
            "zoë",
            json!({"email": "zoë@exämple.test", "groups": ["équipe"]}),
        ),
    );
    let jar = g.login_jwt(None, &token, PLAIN_COOKIE);
    let app = g.nav("/app").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["zoë"]);
    assert_eq!(
        app_header(&app, "x-auth-request-email"),
        vec!["zoë@exämple.test"]
    );
    assert_eq!(app_header(&app, "x-auth-request-groups"), vec!["équipe"]);
}

#[test]
fn spoofed_identity_headers_never_reach_the_app_with_a_session() {
    let g = Gate::base();
    let token = hs256(
        ACME_SECRET,
        &claims_with(
            "alice",
            json!({"email": "alice@acme.test", "groups": ["dev"]}),
        ),
    );
    let jar = g.login_jwt(None, &token, PLAIN_COOKIE);
    let r = spoof(g.nav("/app")).jar(&jar).send();
    let app = r.app();
    assert_eq!(
        app_header(&app, "x-auth-request-user"),
        vec!["alice"],
        "{app}"
    );
    assert_eq!(
        app_header(&app, "x-auth-request-email"),
        vec!["alice@acme.test"],
        "{app}"
    );
    assert_eq!(
        app_header(&app, "x-auth-request-groups"),
        vec!["dev"],
        "{app}"
    );
    assert_eq!(
        app_header(&app, "x-auth-request-org"),
        vec!["acme"],
        "{app}"
    );
    let mut names = identity_like(&app);
    names.sort();
    assert_eq!(
        names,
        vec![
            "x-auth-request-email",
            "x-auth-request-groups",
            "x-auth-request-org",
            "x-auth-request-user"
        ],
        "underscore variants reached the app: {app}"
    );
}

#[test]
fn missing_claim_means_no_header_not_a_spoofed_one() {
    let g = Gate::base();
    // no email, no groups in the token
    let mut c = claims("nomail");
    c.as_object_mut().unwrap().remove("email");
    c.as_object_mut().unwrap().remove("groups");
    let jar = g.login_jwt(None, &hs256(ACME_SECRET, &c), PLAIN_COOKIE);
    let app = spoof(g.nav("/app")).jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["nomail"]);
    let email = app_header(&app, "x-auth-request-email");
    assert!(
        email.is_empty() || email == vec![""],
        "spoofed email survived: {app}"
    );
    let groups = app_header(&app, "x-auth-request-groups");
    assert!(
        groups.is_empty() || groups == vec![""],
        "spoofed groups survived: {app}"
    );
}

#[test]
fn spoofed_identity_headers_never_reach_the_app_on_public_paths() {
    let g = Gate::base();
    let r = spoof(g.nav("/public/index.html")).send();
    let app = r.app();
    assert_eq!(app["path"], "/public/index.html");
    assert!(
        identity_like(&app).is_empty(),
        "identity headers on a public path: {app}"
    );
    // also for a request routed to no org... (acme is default here) and for an API call
    let r = spoof(g.api("/public/data.json")).host("globex.test").send();
    assert!(identity_like(&r.app()).is_empty());
}

#[test]
fn public_paths_pass_without_session_with_method_and_body() {
    let g = Gate::base();
    let r = g
        .post("/public/form?a=1")
        .header("Content-Type", "text/plain")
        .body(b"hello app")
        .send();
    let app = r.app();
    assert_eq!(app["method"], "POST");
    assert_eq!(app["path"], "/public/form");
    assert_eq!(app["query"], "a=1");
    assert_eq!(app["body"], "hello app");
    // a prefix match, not a substring match
    let r = g.api("/x/public/").send();
    assert_eq!(r.status, 401, "{r:#?}");
    let r = g.api("/publicity").send();
    assert_eq!(r.status, 401, "{r:#?}");
}

#[test]
fn x_forwarded_headers_are_set() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    // default Host
    let app = g.nav("/fwd").jar(&jar).send().app();
    assert_eq!(
        app_header(&app, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "{app}"
    );
    assert_eq!(app_header(&app, "x-forwarded-proto"), vec!["http"], "{app}");
    assert_eq!(
        app_header(&app, "x-forwarded-host"),
        vec![format!("127.0.0.1:{}", g.proxy_port)],
        "{app}"
    );
    // client-sent values are replaced (no trusted_proxies)
    let app = g
        .nav("/fwd")
        .host("acme.test")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "evil.example")
        .jar(&jar)
        .send()
        .app();
    assert_eq!(
        app_header(&app, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "{app}"
    );
    assert_eq!(app_header(&app, "x-forwarded-proto"), vec!["http"], "{app}");
    assert_eq!(
        app_header(&app, "x-forwarded-host"),
        vec!["acme.test"],
        "{app}"
    );
    // on public paths as well
    let app = g
        .nav("/public/a")
        .header("X-Forwarded-For", "6.6.6.6")
        .send()
        .app();
    assert_eq!(
        app_header(&app, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "{app}"
    );
}

#[test]
fn configured_identity_headers_replace_the_defaults() {
    let cfg = BASE.replace(
        "default_org: acme\n",
        "default_org: acme\nidentity_headers:\n  X-User: $principal\n  X-Team: team\n  X-Tenant: $org\n",
    );
    let g = Gate::start(&cfg);
    let token = hs256(
        ACME_SECRET,
        &claims_with("alice", json!({"team": ["red", "blue"]})),
    );
    let jar = g.login_jwt(None, &token, PLAIN_COOKIE);
    let app = g
        .nav("/app")
        .header("X-User", "admin")
        .header("x_user", "admin2")
        .header("X-TEAM", "all")
        .header("X_Tenant", "globex")
        .jar(&jar)
        .send()
        .app();
    assert_eq!(app_header(&app, "x-user"), vec!["alice"], "{app}");
    assert_eq!(app_header(&app, "x-team"), vec!["red,blue"], "{app}");
    assert_eq!(app_header(&app, "x-tenant"), vec!["acme"], "{app}");
    assert!(app_header(&app, "x_user").is_empty(), "{app}");
    assert!(app_header(&app, "x_tenant").is_empty(), "{app}");
    // the defaults are not set when identity_headers is configured
    assert!(app_header(&app, "x-auth-request-user").is_empty(), "{app}");
    // whoami shows the mapped claim
    let j = g.api("/_sso/whoami").jar(&jar).send().json();
    assert_eq!(j["claims"]["team"], json!(["red", "blue"]), "{j}");
}

/// The app's CSP headers (all values) as the client received them.
fn csp(r: &Resp) -> Vec<String> {
    r.header_all("content-security-policy")
        .into_iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn frame_ancestors_without_allowed_origins() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    // the app sends no CSP: frame-ancestors 'self' is added
    let r = g.nav("/page").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert_eq!(csp(&r), vec!["frame-ancestors 'self'"], "{r:#?}");
    // the app's CSP without frame-ancestors: kept, frame-ancestors 'self' added
    let r = g
        .nav("/page")
        .header(
            RESPONSE_HEADER_REQUEST,
            "Content-Security-Policy: default-src 'self'; img-src *",
        )
        .jar(&jar)
        .send();
    let all = csp(&r).join(", ");
    assert!(all.contains("default-src 'self'"), "{all}");
    assert!(all.contains("img-src *"), "{all}");
    assert!(all.contains("frame-ancestors 'self'"), "{all}");
    // the app's own frame-ancestors and X-Frame-Options are kept as they are
    let r = g
        .nav("/page")
        .header(
            RESPONSE_HEADER_REQUEST,
            "Content-Security-Policy: frame-ancestors https://x.example",
        )
        .header(RESPONSE_HEADER_REQUEST, "X-Frame-Options: DENY")
        .jar(&jar)
        .send();
    assert_eq!(csp(&r), vec!["frame-ancestors https://x.example"], "{r:#?}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r:#?}");
}

#[test]
fn frame_ancestors_with_allowed_origins() {
    let cfg = BASE.replace(
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    allowed_origins: [https://portal.acme.example, https://other.acme.example]\n",
    );
    let g = Gate::start(&cfg);
    let jar = g.login_acme("alice");
    let want = "frame-ancestors 'self' https://portal.acme.example https://other.acme.example";
    // no CSP from the app: added
    let r = g.nav("/page").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert_eq!(csp(&r), vec![want], "{r:#?}");
    // the app's frame-ancestors is replaced, its other directives kept, X-Frame-Options removed
    let r = g
        .nav("/page")
        .header(
            RESPONSE_HEADER_REQUEST,
            "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'; script-src 'self'",
        )
        .header(RESPONSE_HEADER_REQUEST, "X-Frame-Options: SAMEORIGIN")
        .jar(&jar)
        .send();
    let all = csp(&r).join(", ");
    assert!(all.contains("default-src 'self'"), "{all}");
    assert!(all.contains("script-src 'self'"), "{all}");
    assert!(all.contains(want), "{all}");
    assert!(
        !all.contains("'none'"),
        "the app's frame-ancestors survived: {all}"
    );
    assert_eq!(all.matches("frame-ancestors").count(), 1, "{all}");
    assert!(r.header("x-frame-options").is_none(), "{r:#?}");
    // globex (no allowed_origins) is unaffected
    let r = g.nav("/public/p").host("globex.test").send();
    assert_eq!(csp(&r), vec!["frame-ancestors 'self'"], "{r:#?}");
}
