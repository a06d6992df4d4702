//! Metrics (SPEC 8): exact deltas of every request/auth/upstream-error series between scrapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const INITECH_SECRET: &[u8] = b"initech-hs256-secret-0123456789abcdefghijklmno";
const BROKEN_SECRET: &[u8] = b"broken-hs256-secret-0123456789abcdefghijklmnop";

/// BASE without default_org, plus a disabled org (initech) and an org whose own upstream is a
/// closed port (broken).
fn config(closed_port: u16) -> String {
    BASE.replace("default_org: acme\n", "")
        + &format!(
            r#"  initech:
    enabled: false
    hosts: [initech.test]
    login_url: https://portal.initech.example/login
    keys: [{{ alg: HS256, secret_file: initech.secret }}]
  broken:
    hosts: [broken.test]
    upstream: http://127.0.0.1:{closed_port}
    login_url: https://portal.broken.example/login
    keys: [{{ alg: HS256, secret_file: broken.secret }}]
"#
        )
}

const FAMILIES: &[&str] = &[
    "ssogate_requests_total",
    "ssogate_auth_total",
    "ssogate_upstream_errors_total",
];

fn req(org: &str, outcome: &str, delta: f64) -> (SeriesKey, f64) {
    (
        series(
            "ssogate_requests_total",
            &[("org", org), ("outcome", outcome)],
        ),
        delta,
    )
}

fn auth(org: &str, method: &str, result: &str, delta: f64) -> (SeriesKey, f64) {
    (
        series(
            "ssogate_auth_total",
            &[("org", org), ("method", method), ("result", result)],
        ),
        delta,
    )
}

/// The request/auth/upstream-error series that moved between `before` and `after` are exactly
/// `want`; the duration histogram's count moved, per org, by that org's requests.
///
/// Metrics are counted when a request's log line is written, just after its response: the
/// scrape is repeated (briefly) until the expected series moved; a late extra would show in the
/// next step's deltas.
fn assert_deltas(g: &Gate, step: &str, before: &Metrics, want: &[(SeriesKey, f64)]) -> Metrics {
    let want: BTreeMap<SeriesKey, f64> = want.iter().cloned().collect();
    let mut after = g.metrics();
    let _ = poll(Duration::from_secs(2), || {
        after = g.metrics();
        (changes(before, &after, FAMILIES) == want).then_some(())
    });
    // and a beat more, so that a late extra increment is seen here
    std::thread::sleep(Duration::from_millis(50));
    let after = g.metrics();
    let got = changes(before, &after, FAMILIES);
    assert_eq!(
        got, want,
        "{step}: metric deltas differ (left: observed, right: expected)"
    );
    let mut per_org: BTreeMap<String, f64> = BTreeMap::new();
    for ((name, labels), d) in &got {
        if name == "ssogate_requests_total" {
            *per_org.entry(labels["org"].clone()).or_default() += d;
        }
    }
    for org in ["acme", "globex", "initech", "broken", "_none"] {
        let want = per_org.get(org).copied().unwrap_or(0.0);
        let l = [("org", org)];
        let count = after.value("ssogate_request_duration_seconds_count", &l)
            - before.value("ssogate_request_duration_seconds_count", &l);
        assert_eq!(
            count, want,
            "{step}: ssogate_request_duration_seconds_count{{org={org}}} moved by {count}, requests by {want}"
        );
        let inf = [("org", org), ("le", "+Inf")];
        assert_eq!(
            after.value("ssogate_request_duration_seconds_bucket", &inf),
            after.value("ssogate_request_duration_seconds_count", &l),
            "{step}: +Inf bucket != count for {org}"
        );
    }
    after
}

#[test]
fn metric_deltas_per_request_kind() {
    let closed = free_port();
    let g = Gate::builder(&config(closed))
        .file("initech.secret", INITECH_SECRET)
        .file("broken.secret", BROKEN_SECRET)
        .start();

    let m0 = g.metrics();
    // static series
    assert_eq!(
        m0.get(
            "ssogate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{}",
        m0.text
    );
    assert_eq!(m0.get("ssogate_config_generation", &[]), Some(1.0));
    assert_eq!(
        m0.get("ssogate_config_reloads_total", &[("result", "ok")]),
        Some(0.0),
        "{}",
        m0.text
    );
    assert_eq!(
        m0.get("ssogate_config_reloads_total", &[("result", "error")]),
        Some(0.0),
        "{}",
        m0.text
    );
    for name in [
        "ssogate_session_cache_hits_total",
        "ssogate_session_cache_misses_total",
        "ssogate_session_cache_entries",
    ] {
        assert!(m0.get(name, &[]).is_some(), "{name} missing:\n{}", m0.text);
    }

    // 1. a successful flow-B login
    let jar = g.login_jwt(None, &acme_token(ACME_SECRET, "alice"), PLAIN_COOKIE);
    let m1 = assert_deltas(
        &g,
        "flow B login",
        &m0,
        &[req("acme", "internal", 1.0), auth("acme", "jwt", "ok", 1.0)],
    );

    // 2. a proxied request with the cookie: a cache miss (first sight of the cookie)
    let app = g.nav("/dash").host("acme.test").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    let m2 = assert_deltas(
        &g,
        "proxied with cookie",
        &m1,
        &[
            req("acme", "proxied", 1.0),
            auth("acme", "cookie", "ok", 1.0),
        ],
    );
    let hits = |a: &Metrics, b: &Metrics| {
        b.value("ssogate_session_cache_hits_total", &[])
            - a.value("ssogate_session_cache_hits_total", &[])
    };
    let misses = |a: &Metrics, b: &Metrics| {
        b.value("ssogate_session_cache_misses_total", &[])
            - a.value("ssogate_session_cache_misses_total", &[])
    };
    assert_eq!(
        (hits(&m1, &m2), misses(&m1, &m2)),
        (0.0, 1.0),
        "first cookie request: (hits, misses)"
    );

    // 3. the same cookie twice more: two cache hits
    for _ in 0..2 {
        assert_eq!(
            g.api("/api/x").host("acme.test").jar(&jar).send().status,
            200
        );
    }
    let m3 = assert_deltas(
        &g,
        "repeated cookie",
        &m2,
        &[
            req("acme", "proxied", 2.0),
            auth("acme", "cookie", "ok", 2.0),
        ],
    );
    assert_eq!(
        (hits(&m2, &m3), misses(&m2, &m3)),
        (2.0, 0.0),
        "repeated cookie requests: (hits, misses)"
    );

    // 4. bad signature
    let bad = acme_token(WRONG_SECRET, "mallory");
    let r = g.jwt(&bad).send();
    assert_eq!(r.status, 401, "{r:#?}");
    let m4 = assert_deltas(
        &g,
        "bad signature",
        &m3,
        &[
            req("acme", "internal", 1.0),
            auth("acme", "jwt", "bad_signature", 1.0),
        ],
    );

    // 5. expired (beyond the 30 s leeway; iat still within max_token_age)
    let n = now();
    let expired = hs256(
        ACME_SECRET,
        &claims_with(
            "old",
            json!({"orgId": "acme", "iat": n - 200, "exp": n - 120}),
        ),
    );
    let r = g.jwt(&expired).send();
    assert_eq!(r.status, 401, "{r:#?}");
    let m5 = assert_deltas(
        &g,
        "expired",
        &m4,
        &[
            req("acme", "internal", 1.0),
            auth("acme", "jwt", "expired", 1.0),
        ],
    );

    // 6. replay: the same token (same jti) twice
    let once = acme_token(ACME_SECRET, "bob");
    g.login_jwt(None, &once, PLAIN_COOKIE);
    let r = g.jwt(&once).send();
    assert_eq!(r.status, 401, "replayed token accepted: {r:#?}");
    let m6 = assert_deltas(
        &g,
        "replay",
        &m5,
        &[
            req("acme", "internal", 2.0),
            auth("acme", "jwt", "ok", 1.0),
            auth("acme", "jwt", "replay", 1.0),
        ],
    );

    // 7. unrouted (no default_org here)
    assert_eq!(g.nav("/x").host("nowhere.test").send().status, 404);
    let m7 = assert_deltas(&g, "unrouted", &m6, &[req("_none", "unrouted", 1.0)]);

    // 8. a disabled org
    let r = g.nav("/x").host("initech.test").send();
    assert_eq!(r.status, 403, "{r:#?}");
    let m8 = assert_deltas(&g, "disabled org", &m7, &[req("initech", "forbidden", 1.0)]);

    // 9. login redirect, 401 for a script, a public path (counted under the
    // org its Host routes to; `_none` only when it routes nowhere)
    assert!(g
        .nav("/y")
        .host("acme.test")
        .send()
        .is_login_redirect(ACME_LOGIN));
    assert_eq!(g.api("/y").host("acme.test").send().status, 401);
    assert_eq!(g.nav("/public/a").host("acme.test").send().status, 200);
    let m9 = assert_deltas(
        &g,
        "redirect/401/public",
        &m8,
        &[
            req("acme", "login_redirect", 1.0),
            req("acme", "unauthorized", 1.0),
            req("acme", "public", 1.0),
        ],
    );

    // 10. upstream failure: the org's upstream port is closed
    let token = hs256(BROKEN_SECRET, &claims("carol"));
    let bjar = g.login_jwt(Some("broken.test"), &token, PLAIN_COOKIE);
    let m10a = assert_deltas(
        &g,
        "broken login",
        &m9,
        &[
            req("broken", "internal", 1.0),
            auth("broken", "jwt", "ok", 1.0),
        ],
    );
    let r = g.nav("/x").host("broken.test").jar(&bjar).send();
    assert_eq!(r.status, 502, "{r:#?}");
    assert!(
        !r.body.contains("carol") && !r.body.contains(&closed.to_string()),
        "the error page leaks details: {r:#?}"
    );
    let m10 = assert_deltas(
        &g,
        "upstream failure",
        &m10a,
        &[
            req("broken", "error", 1.0),
            auth("broken", "cookie", "ok", 1.0),
            (
                series(
                    "ssogate_upstream_errors_total",
                    &[("org", "broken"), ("kind", "connect_refused")],
                ),
                1.0,
            ),
        ],
    );

    // no reload happened, and nothing reached the app but the four proxied/public requests
    assert_eq!(m10.get("ssogate_config_generation", &[]), Some(1.0));
    assert_eq!(g.upstream.count(), 4);
}

#[test]
fn session_cache_entries_gauge_counts_cached_sessions() {
    let g = Gate::base();
    let entries = || g.metrics().value("ssogate_session_cache_entries", &[]);
    assert_eq!(entries(), 0.0);
    for (i, sub) in ["alice", "bob"].into_iter().enumerate() {
        let jar = g.login_acme(sub);
        assert_eq!(g.api("/x").jar(&jar).send().status, 200);
        let want = (i + 1) as f64;
        let mut last = entries();
        let _ = poll(Duration::from_secs(2), || {
            last = entries();
            (last == want).then_some(())
        });
        assert_eq!(
            last,
            want,
            "ssogate_session_cache_entries after {} distinct cached sessions",
            i + 1
        );
    }
}
