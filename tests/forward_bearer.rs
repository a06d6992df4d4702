//! `forward_bearer` (SPEC 3, 6) and the `disabled` credential count (SPEC 8), against the binary:
//! what the app receives after ssogate accepted a Bearer token, and what a disabled org's 403s
//! count. (`accept_bearer: false`, where the header is the app's: `bearer.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

fn gate() -> Gate {
    Gate::start(&config(&[
        org(
            "stripped",
            &["{ alg: HS256, secret_file: acme.secret }"],
            &[],
        ),
        org(
            "forwarded",
            &["{ alg: HS256, secret_file: acme.secret }"],
            &["forward_bearer: true"],
        ),
        org(
            "off",
            &["{ alg: HS256, secret_file: acme.secret }"],
            &["enabled: false", "accept_query_token: access_token"],
        ),
    ]))
}

#[test]
fn an_accepted_bearer_reaches_the_app_only_when_the_org_forwards_it() {
    let g = gate();
    let token = hs256(ACME_SECRET, &claims("alice"));
    let echo = bearer_to(&g, "stripped", "/data", &token).app();
    assert!(
        app_header(&echo, "authorization").is_empty(),
        "the Bearer ssogate accepted reached the app: {echo}"
    );
    assert_eq!(app_header(&echo, "x-auth-request-user"), ["alice"]);

    let echo = bearer_to(&g, "forwarded", "/data", &token).app();
    assert_eq!(
        app_header(&echo, "authorization"),
        [format!("Bearer {token}")],
        "forward_bearer: true"
    );
    assert_eq!(app_header(&echo, "x-auth-request-user"), ["alice"]);
    assert_eq!(g.upstream.count(), 2);
}

#[test]
fn a_disabled_org_counts_the_credential_it_was_shown() {
    let g = gate();
    let token = hs256(ACME_SECRET, &claims("alice"));
    let before = g.metrics();
    let sent = [
        bearer_to(&g, "off", "/data", &token),
        g.nav(&format!("/r?access_token={token}"))
            .host("off.test")
            .send(),
        g.api("/r")
            .host("off.test")
            .cookie("ssogate_session=anything")
            .send(),
        g.jwt(&token).host("off.test").send(),
        g.api("/r").host("off.test").send(),
    ];
    for r in &sent {
        assert_eq!(r.status, 403, "{r:#?}");
        if r.header("content-type") == Some("application/json") {
            assert_eq!(r.json()["error"], "organization_disabled", "{r:#?}");
        } else {
            assert!(r.body.contains("disabled"), "{r:#?}");
        }
    }
    let want = [
        ("bearer", 1.0),
        ("query", 1.0),
        ("cookie", 1.0),
        ("jwt", 1.0),
    ];
    let auth = |m: &Metrics, method: &str| {
        m.value(
            "ssogate_auth_total",
            &[("org", "off"), ("method", method), ("result", "disabled")],
        )
    };
    let forbidden = |m: &Metrics| {
        m.value(
            "ssogate_requests_total",
            &[("org", "off"), ("outcome", "forbidden")],
        )
    };
    // Counted as each request's log line is written, just after its answer.
    let moved = |m: &Metrics| {
        let auths: Vec<f64> = want
            .iter()
            .map(|(method, _)| auth(m, method) - auth(&before, method))
            .collect();
        (auths, forbidden(m) - forbidden(&before))
    };
    let expected = (want.iter().map(|(_, d)| *d).collect::<Vec<_>>(), 5.0);
    let mut last = moved(&g.metrics());
    let _ = poll(std::time::Duration::from_secs(2), || {
        last = moved(&g.metrics());
        (last == expected).then_some(())
    });
    assert_eq!(
        last, expected,
        "disabled per method {want:?}, then forbidden"
    );
    assert_eq!(g.upstream.count(), 0);
}
