//! Rate limits (SPEC 3 `rate_limit`, SPEC 8 `ssogate_rate_limited_total`, SPEC 11), against the
//! real binary: per client address (the peer, or what a trusted proxy forwarded), login endpoints
//! on one bucket, refused credentials on another, known-good credentials never limited.
//!
//! Verdicts never hang on timing: the failure budget here refills one token a minute, and where
//! a login bucket refilling every second is measured, the count allowed is bounded by the time
//! the requests actually took.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// [`BASE`] with `rate_limit` set to `limits` (a YAML flow mapping, or "" for the defaults),
/// globex accepting Bearer tokens, and `extra` top-level lines (e.g. `trusted_proxies`).
fn limited(limits: &str, extra: &str) -> String {
    let rate_limit = if limits.is_empty() {
        String::new()
    } else {
        format!("rate_limit: {limits}\n")
    };
    let yaml = BASE
        .replace(RATE_LIMIT, &format!("{rate_limit}{extra}"))
        .replace(
            "  globex:\n    hosts: [globex.test]\n",
            "  globex:\n    hosts: [globex.test]\n    accept_bearer: true\n",
        );
    assert!(!yaml.contains("100000"), "the harness limits are replaced");
    assert!(yaml.contains("accept_bearer: true"));
    yaml
}

fn globex_token(sub: &str) -> String {
    hs256(GLOBEX_SECRET, &claims(sub))
}

fn forged_token() -> String {
    hs256(WRONG_SECRET, &claims("mallory"))
}

/// A Bearer request to globex from `client` (an `X-Forwarded-For` entry), or from the peer.
fn bearer<'g>(g: &'g Gate, token: &str, client: Option<&str>) -> Req<'g> {
    let r = g
        .api("/data")
        .host("globex.test")
        .header("Authorization", &format!("Bearer {token}"));
    match client {
        Some(c) => r.header("X-Forwarded-For", c),
        None => r,
    }
}

/// SPEC 11's 429: JSON `rate_limited` (or the HTML page), `Retry-After` whole seconds within
/// `1..=max_wait`, no cookie.
#[track_caller]
fn assert_429(r: &Resp, max_wait: u64) {
    assert_eq!(r.status, 429, "{r:#?}");
    if r.header("content-type") == Some("application/json") {
        assert_eq!(r.json()["error"], "rate_limited", "{r:#?}");
        assert!(r.json()["request_id"].is_string(), "{r:#?}");
    } else {
        assert!(r.body.contains("Too many sign-in attempts"), "{r:#?}");
    }
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in whole seconds: {r:#?}"));
    assert!((1..=max_wait).contains(&retry), "Retry-After {retry}");
    assert!(r.header_all("set-cookie").is_empty(), "{r:#?}");
}

const FAMILIES: &[&str] = &[
    "ssogate_requests_total",
    "ssogate_auth_total",
    "ssogate_rate_limited_total",
];

/// A series (family and labels) and how much it moved.
type Moved<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// The series of `FAMILIES` that moved between `before` and now are exactly `want` (scraped
/// again briefly until they are: metrics are counted as a request's log line is written).
#[track_caller]
fn assert_moved(g: &Gate, before: &Metrics, want: &[Moved]) -> Metrics {
    let want: std::collections::BTreeMap<SeriesKey, f64> = want
        .iter()
        .map(|(name, labels, d)| (series(name, labels), *d))
        .collect();
    let mut after = g.metrics();
    let _ = poll(Duration::from_secs(2), || {
        after = g.metrics();
        (changes(before, &after, FAMILIES) == want).then_some(())
    });
    std::thread::sleep(Duration::from_millis(50));
    let after = g.metrics();
    assert_eq!(changes(before, &after, FAMILIES), want);
    after
}

#[test]
fn validation_names_the_rate_limit_field_at_fault() {
    for (limits, field) in [
        ("{ logins_burst: 0 }", "rate_limit.logins_burst"),
        ("{ logins_per_second: 0 }", "rate_limit.logins_per_second"),
        (
            "{ failures_per_minute: -3 }",
            "rate_limit.failures_per_minute",
        ),
        (
            "{ failures_per_minute: lots }",
            "rate_limit.failures_per_minute",
        ),
        ("{ burst: 5 }", "rate_limit.burst"),
    ] {
        let yaml = limited(limits, "");
        if let Err(failure) = check_refuses(limits, &yaml, &[], &[field]) {
            panic!("{failure}");
        }
    }
    check_accepts(
        "all three",
        &limited(
            "{ logins_per_second: 2, logins_burst: 5, failures_per_minute: 1 }",
            "",
        ),
        &[],
    );
    check_accepts("the defaults", &limited("", ""), &[]);
}

#[test]
fn the_default_failure_budget_is_thirty_refused_credentials() {
    let g = Gate::start(&limited("", ""));
    let forged = forged_token();
    let started = Instant::now();
    let mut refused = 0u64;
    let first_429 = loop {
        let r = bearer(&g, &forged, None).send();
        if r.status == 429 {
            break r;
        }
        assert_eq!(r.status, 401, "{r:#?}");
        refused += 1;
        assert!(refused <= 200, "never limited");
    };
    // 30 at once, then one every 2 s.
    let elapsed = started.elapsed().as_secs();
    assert!(
        (30..=30 + elapsed / 2 + 1).contains(&refused),
        "{refused} refusals before the first 429, in {elapsed} s"
    );
    assert_429(&first_429, 2);
}

#[test]
fn a_locked_out_address_keeps_its_known_good_credentials_and_nothing_else() {
    let g = Gate::start(&limited("{ failures_per_minute: 2 }", ""));
    let jar = g.login_acme("alice");
    let cached = globex_token("gina");
    assert_eq!(bearer(&g, &cached, None).send().status, 200);

    let before = g.metrics();
    for _ in 0..2 {
        assert_eq!(bearer(&g, &forged_token(), None).send().status, 401);
    }
    // A fresh valid token, refused without being checked: a check would have accepted it.
    let fresh = globex_token("new");
    let r = bearer(&g, &fresh, None).send();
    assert_429(&r, 30);
    let r = g.jwt(&hs256(ACME_SECRET, &claims("b"))).send();
    assert_429(&r, 30);
    assert!(
        r.body.contains("Request id"),
        "HTML for a navigation: {r:#?}"
    );
    assert_429(&g.nav("/_sso/login?rd=%2F").send(), 30);
    assert_429(&g.api("/x").cookie("ssogate_session=forged").send(), 30);
    let after = assert_moved(
        &g,
        &before,
        &[
            (
                "ssogate_auth_total",
                &[
                    ("org", "globex"),
                    ("method", "bearer"),
                    ("result", "bad_signature"),
                ],
                2.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "globex"), ("outcome", "unauthorized")],
                3.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "unauthorized")],
                1.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "internal")],
                2.0,
            ),
            (
                "ssogate_rate_limited_total",
                &[("org", "globex"), ("kind", "failures")],
                1.0,
            ),
            (
                "ssogate_rate_limited_total",
                &[("org", "acme"), ("kind", "failures")],
                3.0,
            ),
        ],
    );

    // Still served: the session cookie, the Bearer already validated, requests without any
    // credential (a login redirect, a 401), public paths.
    assert_eq!(g.api("/x").jar(&jar).send().status, 200);
    assert_eq!(bearer(&g, &cached, None).send().status, 200);
    assert!(g.nav("/x").send().is_login_redirect(ACME_LOGIN));
    assert_eq!(g.api("/x").send().status, 401);
    assert_eq!(g.get("/public/a").send().status, 200);
    assert_moved(
        &g,
        &after,
        &[
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "proxied")],
                1.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "login_redirect")],
                1.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "unauthorized")],
                1.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "public")],
                1.0,
            ),
            (
                "ssogate_requests_total",
                &[("org", "globex"), ("outcome", "proxied")],
                1.0,
            ),
            (
                "ssogate_auth_total",
                &[("org", "acme"), ("method", "cookie"), ("result", "ok")],
                1.0,
            ),
            (
                "ssogate_auth_total",
                &[("org", "globex"), ("method", "bearer"), ("result", "ok")],
                1.0,
            ),
        ],
    );
    // What reached the app: the three served requests before and after the lockout.
    assert_eq!(g.upstream.count(), 4, "{:?}", g.upstream.seen());
}

#[test]
fn the_login_bucket_holds_logins_burst_and_refills_at_logins_per_second() {
    let g = Gate::start(&limited(
        "{ logins_per_second: 1, logins_burst: 3, failures_per_minute: 100 }",
        "",
    ));
    let before = g.metrics();
    let started = Instant::now();
    let answers: Vec<Resp> = (0..20)
        .map(|_| g.api("/_sso/login?rd=%2F").send())
        .collect();
    let elapsed = started.elapsed().as_secs();
    let allowed = answers.iter().filter(|r| r.status == 302).count() as u64;
    assert!(
        (3..=3 + elapsed + 1).contains(&allowed),
        "{allowed} logins allowed in {elapsed} s with a burst of 3 at 1/s"
    );
    let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(allowed + limited.len() as u64, 20, "only 302 and 429");
    for r in &limited {
        assert_429(r, 1);
    }
    let n = limited.len() as f64;
    assert_moved(
        &g,
        &before,
        &[
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "login_redirect")],
                allowed as f64,
            ),
            (
                "ssogate_requests_total",
                &[("org", "acme"), ("outcome", "internal")],
                n,
            ),
            (
                "ssogate_rate_limited_total",
                &[("org", "acme"), ("kind", "login")],
                n,
            ),
        ],
    );
}

#[test]
fn addresses_behind_a_trusted_proxy_have_budgets_of_their_own() {
    let g = Gate::start(&limited(
        "{ failures_per_minute: 1 }",
        "trusted_proxies: [127.0.0.1/32]\n",
    ));
    let (a, b) = ("198.51.100.1", "198.51.100.2");
    assert_eq!(bearer(&g, &forged_token(), Some(a)).send().status, 401);
    assert_429(&bearer(&g, &globex_token("a"), Some(a)).send(), 60);
    // A proxy chain: the last entry is the client.
    let chained = format!("203.0.113.9, {a}");
    assert_429(&bearer(&g, &globex_token("a2"), Some(&chained)).send(), 60);
    assert_eq!(bearer(&g, &globex_token("b"), Some(b)).send().status, 200);
    // The proxy's own address is another client still.
    assert_eq!(bearer(&g, &globex_token("p"), None).send().status, 200);

    // Fifty more clients each refused once: the limiter remembers each of them (until their
    // failure bucket is full again, a minute from now).
    for i in 0..50 {
        let client = format!("192.0.2.{}", i + 10);
        assert_eq!(
            bearer(&g, &forged_token(), Some(&client)).send().status,
            401
        );
    }
    let addresses = g.metrics().value("ssogate_rate_limit_addresses", &[]);
    assert_eq!(addresses, 51.0, "a and the fifty");
}

#[test]
fn an_untrusted_peer_cannot_choose_its_address() {
    let g = Gate::start(&limited("{ failures_per_minute: 1 }", ""));
    assert_eq!(
        bearer(&g, &forged_token(), Some("198.51.100.1"))
            .send()
            .status,
        401
    );
    // X-Forwarded-For from an untrusted peer is ignored: still 127.0.0.1, still locked out.
    assert_429(
        &bearer(&g, &globex_token("x"), Some("198.51.100.2")).send(),
        60,
    );
}
