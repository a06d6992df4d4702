//! Logs (SPEC 2, 10): one JSON access-log line per request, never a token, secret, cookie value,
//! state nonce or query string.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// BASE with globex accepting Bearer tokens and `?access_token=`.
fn config() -> String {
    BASE.replace(
        "    keys: [{ alg: HS256, secret_file: globex.secret }]\n",
        "    keys: [{ alg: HS256, secret_file: globex.secret }]\n    accept_bearer: true\n    accept_query_token: access_token\n",
    )
}

/// Everything sent and received in the session, for the log checks.
#[derive(Default)]
struct Session {
    /// proxy requests sent (each must log exactly one access line)
    sent: usize,
    /// values that must never be logged
    secrets: Vec<String>,
}

impl Session {
    fn send(&mut self, req: Req<'_>) -> Resp {
        let r = req.send();
        self.sent += 1;
        for c in r.set_cookies() {
            self.secret(&c.value);
        }
        r
    }

    fn secret(&mut self, s: &str) {
        if s.len() >= 8 {
            self.secrets.push(s.to_string());
        }
    }

    /// A token and its payload and signature parts (the header part is generic).
    fn token(&mut self, t: &str) {
        self.secret(t);
        for part in t.split('.').skip(1) {
            self.secret(part);
        }
    }
}

fn marker() -> String {
    format!("qv{}", random_id())
}

const OUTCOMES: &[&str] = &[
    "proxied",
    "public",
    "login_redirect",
    "unauthorized",
    "forbidden",
    "unrouted",
    "internal",
    "error",
];

fn str_field<'a>(line: &'a Value, k: &str) -> &'a str {
    line[k]
        .as_str()
        .unwrap_or_else(|| panic!("access-log field {k} is not a string: {line}"))
}

/// The access line of the request whose path is `path` and (when given) status `status`.
fn line_for<'a>(lines: &'a [Value], path: &str, status: Option<u64>) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] == path && status.is_none_or(|s| l["status"] == s))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one access line for {path} {status:?}: {found:#?}"
    );
    found[0]
}

#[test]
fn a_whole_session_leaves_no_secret_in_the_logs_and_one_json_line_per_request() {
    let g = Gate::start(&config());
    let mut s = Session::default();
    for secret in [SESSION_SECRET, ACME_SECRET, GLOBEX_SECRET] {
        s.secret(std::str::from_utf8(secret).unwrap());
    }

    // --- flow A with state
    let q1 = marker();
    let r = s.send(g.nav(&format!("/reports/q?marker={q1}")));
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    s.secret(&lr.state);
    s.secret(&q1);
    let mut jar = Jar::new();
    jar.absorb(&r);
    let t1 = acme_token(ACME_SECRET, "alice");
    s.token(&t1);
    let r = s.send(
        g.nav(&format!(
            "/_sso/callback?state={}&token={}",
            enc(&lr.state),
            enc(&t1)
        ))
        .jar(&jar),
    );
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), format!("/reports/q?marker={q1}"));
    jar.absorb(&r);
    assert!(jar.get(PLAIN_COOKIE).is_some());

    // --- flow A, portal appending `?token=` to a callback that has `?state=`
    let r = s.send(g.nav("/other"));
    let lr2 = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    s.secret(&lr2.state);
    let mut jar2 = Jar::new();
    jar2.absorb(&r);
    let t2 = acme_token(ACME_SECRET, "alice2");
    s.token(&t2);
    let r = s.send(
        g.nav(&format!("/_sso/callback?state={}?token={}", lr2.state, t2))
            .jar(&jar2),
    );
    assert_eq!(r.status, 302, "{r:#?}");

    // --- proxied requests with the session, queries included
    let q2 = marker();
    s.secret(&q2);
    let r = s.send(g.api(&format!("/secret/report?k={q2}")).jar(&jar));
    let app = r.app();
    let app_request_id = app_header(&app, "x-request-id");

    // --- flow B, then its replay
    let t3 = acme_token(ACME_SECRET, "bob");
    s.token(&t3);
    let r = s.send(g.jwt(&t3));
    assert_eq!(r.status, 302, "{r:#?}");
    let r = s.send(g.jwt(&t3));
    assert_eq!(r.status, 401, "{r:#?}");

    // --- Bearer (globex), accepted and refused
    let t4 = hs256(GLOBEX_SECRET, &claims("svc"));
    s.token(&t4);
    let q3 = marker();
    s.secret(&q3);
    let r = s.send(
        g.api(&format!("/api/data?page={q3}"))
            .host("globex.test")
            .header("Authorization", &format!("Bearer {t4}")),
    );
    assert_eq!(
        app_header(&r.app(), "x-auth-request-user"),
        vec!["svc"],
        "{r:#?}"
    );
    let t5 = hs256(WRONG_SECRET, &claims("svc"));
    s.token(&t5);
    let r = s.send(
        g.api("/api/data")
            .host("globex.test")
            .header("Authorization", &format!("Bearer {t5}")),
    );
    assert_eq!(r.status, 401, "{r:#?}");

    // --- query token (globex)
    let t6 = hs256(GLOBEX_SECRET, &claims("qt"));
    s.token(&t6);
    let q4 = marker();
    s.secret(&q4);
    let r = s.send(
        g.nav(&format!("/g/page?access_token={}&keep={q4}", enc(&t6)))
            .host("globex.test"),
    );
    assert_eq!(r.status, 302, "{r:#?}");

    // --- refused tokens: bad signature (flow B), expired (callback without state)
    let t7 = acme_token(WRONG_SECRET, "eve");
    s.token(&t7);
    let r = s.send(g.jwt(&t7));
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(!r.body.contains(&t7), "the error page echoes the token");
    let n = now();
    let t8 = hs256(
        ACME_SECRET,
        &claims_with(
            "old",
            json!({"orgId": "acme", "iat": n - 200, "exp": n - 100}),
        ),
    );
    s.token(&t8);
    let r = s.send(g.api(&format!("/_sso/callback?token={}", enc(&t8))));
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(!r.body.contains(&t8), "the error body echoes the token");
    // a tampered cookie
    let r = s.send(
        g.api("/x")
            .cookie(&format!("{PLAIN_COOKIE}=tampered-cookie-value-0123456789")),
    );
    assert_eq!(r.status, 401, "{r:#?}");
    s.secret("tampered-cookie-value-0123456789");

    // --- whoami, logout, and the revoked session
    let r = s.send(g.api("/_sso/whoami").jar(&jar));
    assert_eq!(r.status, 200, "{r:#?}");
    let r = s.send(g.nav("/_sso/logout").jar(&jar));
    assert_eq!(r.status, 302, "{r:#?}");
    let r = s.send(g.api("/after-logout").jar(&jar));
    assert_eq!(r.status, 401, "revoked session still accepted: {r:#?}");

    // ----------------------------------------------------------------------------------------
    // every request logged exactly once (the line is written just after the response)
    let lines = poll(Duration::from_secs(3), || {
        let l = g.access_log();
        (l.len() >= s.sent).then_some(l)
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer access-log lines than requests ({} sent):\n{}",
            s.sent,
            g.logs()
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let lines_now = g.access_log();
    assert_eq!(
        lines_now.len(),
        s.sent,
        "one access-log line per request: {} lines for {} requests",
        lines_now.len(),
        s.sent
    );
    assert_eq!(lines.len(), lines_now.len());

    // nothing secret anywhere on stderr
    let logs = g.logs();
    for needle in &s.secrets {
        assert!(
            !logs.contains(needle.as_str()),
            "stderr contains a secret/token/cookie/nonce/query value {needle:?}:\n{logs}"
        );
    }
    // no query string in any line (each marker is a query value; also no `?` in a path)
    for l in logs.lines() {
        assert!(
            !l.contains("marker=") && !l.contains("access_token=") && !l.contains("token="),
            "a query string in the logs: {l}"
        );
    }
    // every non-empty stderr line is a JSON object
    for l in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"));
        assert!(v.is_object(), "{l}");
    }

    // the access-log fields
    let mut ids = BTreeSet::new();
    for l in &lines_now {
        assert_eq!(l["target"], "ssogate::access");
        let id = str_field(l, "request_id");
        assert!(!id.is_empty(), "{l}");
        assert!(ids.insert(id.to_string()), "request_id {id} repeated");
        str_field(l, "org");
        assert!(
            ["GET", "POST", "HEAD"].contains(&str_field(l, "method")),
            "{l}"
        );
        let path = str_field(l, "path");
        assert!(
            path.starts_with('/') && !path.contains('?'),
            "path {path:?}: {l}"
        );
        let status = l["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("status not a number: {l}"));
        assert!((100..600).contains(&status), "{l}");
        assert!(OUTCOMES.contains(&str_field(l, "outcome")), "{l}");
        assert_eq!(str_field(l, "client"), "127.0.0.1", "{l}");
        assert!(
            l["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
            "duration_ms: {l}"
        );
        for k in ["auth_method", "auth_result", "principal"] {
            assert!(
                l[k].is_null() || l[k].is_string(),
                "{k} neither absent/null nor a string: {l}"
            );
        }
        assert!(
            l["upstream_ms"].is_null() || l["upstream_ms"].as_f64().is_some(),
            "upstream_ms: {l}"
        );
    }

    // specific lines
    let l = line_for(&lines_now, "/secret/report", None);
    assert_eq!(l["org"], "acme", "{l}");
    assert_eq!(l["method"], "GET", "{l}");
    assert_eq!(l["status"], 200, "{l}");
    assert_eq!(l["outcome"], "proxied", "{l}");
    assert_eq!(l["auth_method"], "cookie", "{l}");
    assert_eq!(l["auth_result"], "ok", "{l}");
    assert_eq!(l["principal"], "alice", "{l}");
    assert!(l["upstream_ms"].as_f64().is_some(), "no upstream_ms: {l}");
    assert_eq!(
        app_request_id,
        vec![str_field(l, "request_id").to_string()],
        "the app's X-Request-Id is the logged request_id"
    );

    let l = line_for(&lines_now, "/api/data", Some(200));
    assert_eq!(l["org"], "globex", "{l}");
    assert_eq!(l["auth_method"], "bearer", "{l}");
    assert_eq!(l["auth_result"], "ok", "{l}");
    assert_eq!(l["principal"], "svc", "{l}");
    let l = line_for(&lines_now, "/api/data", Some(401));
    assert_eq!(l["auth_method"], "bearer", "{l}");
    assert_eq!(l["auth_result"], "bad_signature", "{l}");
    assert_eq!(l["outcome"], "unauthorized", "{l}");
    assert!(l["principal"].is_null(), "{l}");

    let jwt_lines: Vec<&Value> = lines_now
        .iter()
        .filter(|l| l["path"] == "/_sso/jwt")
        .collect();
    let results: Vec<&str> = jwt_lines
        .iter()
        .map(|l| l["auth_result"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        results,
        vec!["ok", "replay", "bad_signature"],
        "{jwt_lines:#?}"
    );
    for l in &jwt_lines {
        assert_eq!(l["auth_method"], "jwt", "{l}");
        assert_eq!(l["org"], "acme", "{l}");
    }
    let l = line_for(&lines_now, "/_sso/callback", Some(401));
    assert_eq!(l["auth_result"], "expired", "{l}");
    let l = line_for(&lines_now, "/g/page", None);
    assert_eq!(l["auth_method"], "query", "{l}");
    assert_eq!(l["status"], 302, "{l}");
    let l = line_for(&lines_now, "/reports/q", None);
    assert_eq!(l["outcome"], "login_redirect", "{l}");
    assert!(l["auth_method"].is_null(), "{l}");
    let l = line_for(&lines_now, "/x", None);
    assert_eq!(l["auth_method"], "cookie", "{l}");
    assert_ne!(l["auth_result"], "ok", "{l}");
    assert_eq!(l["outcome"], "unauthorized", "{l}");
    let l = line_for(&lines_now, "/_sso/logout", None);
    assert_eq!(l["status"], 302, "{l}");
    let l = line_for(&lines_now, "/after-logout", None);
    assert_eq!(l["status"], 401, "{l}");
}

#[test]
fn error_pages_carry_the_logged_request_id() {
    let g = Gate::base();
    let t = acme_token(WRONG_SECRET, "eve");
    let r = g.api(&format!("/_sso/jwt?jwt={}", enc(&t))).send();
    assert_eq!(r.status, 401, "{r:#?}");
    let id = r.json()["request_id"].as_str().unwrap().to_string();
    let lines = poll(Duration::from_secs(3), || {
        let l = g.access_log();
        (!l.is_empty()).then_some(l)
    })
    .unwrap();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["request_id"], id.as_str());
    assert_eq!(lines[0]["path"], "/_sso/jwt");
    assert!(!g.logs().contains(&t));
}
