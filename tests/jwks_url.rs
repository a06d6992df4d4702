//! `jwks_url` keys (SPEC 1 flow D, 3): fetched at load, refetched once (at most once a minute)
//! for an unknown `kid` so that an IdP's rotation is picked up at once, the last good set kept
//! while the IdP fails, and never two fetches at the same time.
//!
//! The IdP is [`JwksServer`] (tests/common/jwks.rs): a test site whose JWKS the test changes,
//! fails or slows down, and which counts requests and their concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use jsonwebtoken::Algorithm::*;
use std::time::{Duration, Instant};

/// The org `idp` (Host idp.test, Bearer) with one `jwks_url` key.
fn gate(server: &JwksServer, refresh: &str) -> Gate {
    let key = format!("{{ jwks_url: \"{}\", refresh: {refresh} }}", server.url());
    Gate::builder(&config(&[org("idp", &[&key], &[])])).start()
}

fn set_a() -> String {
    jwks_doc(&[fixtures().jwk("rsa", "A", Some("RS256"))])
}

fn set_b() -> String {
    jwks_doc(&[
        fixtures().jwk("rsa2", "B", Some("RS256")),
        fixtures().jwk("ec256", "B-ec", Some("ES256")),
    ])
}

fn token_a(sub: &str) -> String {
    sign(
        RS256,
        fixtures().get("rsa.key.pem"),
        Some("A"),
        &claims(sub),
    )
}

fn token_b(sub: &str) -> String {
    sign(
        RS256,
        fixtures().get("rsa2.key.pem"),
        Some("B"),
        &claims(sub),
    )
}

/// A token of a kid nobody publishes (signed by an RSA key nobody trusts).
fn token_unknown(kid: &str) -> String {
    sign(
        RS256,
        fixtures().get("evil-rsa.key.pem"),
        Some(kid),
        &claims("nobody"),
    )
}

#[test]
fn rotation_is_picked_up_at_once_and_the_last_good_set_outlives_the_idp() {
    let server = JwksServer::start(&set_a());
    let g = gate(&server, "10m");
    assert_eq!(server.hits(), 1, "one fetch at load");
    let a = token_a("alice");
    assert_bearer_ok(&g, "idp", &a, "alice", "kid A");
    assert_eq!(server.hits(), 1, "a known kid fetches nothing");

    // the IdP rotates: B published, A removed; a B token is accepted on its first request,
    // without waiting for `refresh`
    server.set_body(&set_b());
    let started = Instant::now();
    let b = token_b("bob");
    assert_bearer_ok(&g, "idp", &b, "bob", "kid B right after the rotation");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(), 2, "exactly one refetch for the unknown kid");
    let ec = sign(
        ES256,
        fixtures().get("ec256.key.pem"),
        Some("B-ec"),
        &claims("erin"),
    );
    assert_bearer_ok(&g, "idp", &ec, "erin", "the EC key of the new set");

    // A is gone: its tokens are refused, the one validated before included
    assert_bearer_refused(&g, "idp", &a, "kid A (validated before the rotation)");
    assert_bearer_refused(&g, "idp", &token_a("alice2"), "fresh kid A token");
    assert_eq!(
        server.hits(),
        2,
        "no second unknown-kid refetch within a minute"
    );

    // the IdP goes down: the keys in hand keep working
    server.stop();
    assert_bearer_ok(&g, "idp", &b, "bob", "kid B, IdP down (validated before)");
    assert_bearer_ok(&g, "idp", &token_b("bob2"), "bob2", "fresh kid B, IdP down");
    assert_bearer_refused(&g, "idp", &token_unknown("Z"), "unknown kid, IdP down");
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Status500,
    NotJson,
    EmptySet,
    Down,
}

fn last_good_set_survives(failure: Failure) {
    let server = JwksServer::start(&set_a());
    let g = gate(&server, "10m");
    let a = token_a("alice");
    assert_bearer_ok(&g, "idp", &a, "alice", "kid A");
    match failure {
        Failure::Status500 => server.set_status(500),
        Failure::NotJson => server.set_body("<html>maintenance</html>"),
        Failure::EmptySet => server.set_body(r#"{"keys":[]}"#),
        Failure::Down => server.stop(),
    }
    // an unknown kid makes ssogate fetch now (the request waits for that fetch), and fail
    let hits = server.hits();
    assert_bearer_refused(
        &g,
        "idp",
        &token_unknown("Z"),
        &format!("{failure:?}: unknown kid"),
    );
    if !matches!(failure, Failure::Down) {
        assert_eq!(server.hits(), hits + 1, "{failure:?}: the refetch happened");
    }
    // the last good set still verifies, also the token validated before the failed fetch
    assert_bearer_ok(
        &g,
        "idp",
        &a,
        "alice",
        &format!("{failure:?}: cached kid A"),
    );
    assert_bearer_ok(
        &g,
        "idp",
        &token_a("alice2"),
        "alice2",
        &format!("{failure:?}: fresh kid A"),
    );
    assert_bearer_refused(
        &g,
        "idp",
        &token_unknown("A"),
        &format!("{failure:?}: kid A, another key"),
    );
}

#[test]
fn idp_answering_500_keeps_the_last_good_set() {
    last_good_set_survives(Failure::Status500);
}

#[test]
fn idp_answering_garbage_keeps_the_last_good_set() {
    last_good_set_survives(Failure::NotJson);
}

#[test]
fn idp_publishing_an_empty_set_keeps_the_last_good_set() {
    last_good_set_survives(Failure::EmptySet);
}

#[test]
fn idp_down_keeps_the_last_good_set() {
    last_good_set_survives(Failure::Down);
}

#[test]
fn idp_down_at_startup_is_retried() {
    let server = JwksServer::start(&set_a());
    server.set_status(503);
    let g = gate(&server, "10m");
    assert_eq!(g.admin("/readyz").status, 200, "serves with the IdP down");
    assert!(server.hits() >= 1, "fetched at load");
    server.set_status(200);
    // the IdP is back: the first token with its kid gets the set fetched
    assert_bearer_ok(
        &g,
        "idp",
        &token_a("alice"),
        "alice",
        "kid A once the IdP is up",
    );
}

#[test]
fn unknown_kids_refetch_at_most_once_a_minute() {
    let server = JwksServer::start(&set_a());
    let g = gate(&server, "10m");
    assert_eq!(server.hits(), 1);
    // 20 tokens of unknown kids at once
    std::thread::scope(|s| {
        for i in 0..20 {
            let g = &g;
            s.spawn(move || {
                let r = bearer_to(g, "idp", "/x", &token_unknown(&format!("unknown-{i}")));
                assert_eq!(r.status, 401, "{r:#?}");
            });
        }
    });
    let after_burst = server.hits();
    // and 20 more, one after another
    for i in 0..20 {
        assert_bearer_refused(
            &g,
            "idp",
            &token_unknown(&format!("later-{i}")),
            "unknown kid",
        );
    }
    let refetches = server.hits() - 1;
    assert!(
        refetches <= 1,
        "{refetches} refetches for 40 unknown-kid tokens within a minute (after the first 20: {})",
        after_burst - 1
    );
    assert_bearer_ok(&g, "idp", &token_a("alice"), "alice", "kid A still fine");
}

#[test]
fn fetches_never_overlap() {
    let server = JwksServer::start(&set_a());
    server.set_delay(Duration::from_millis(1500));
    // refresh every second, each fetch slow: periodic refreshes and unknown-kid refetches
    // compete
    let g = gate(&server, "1s");
    // while a periodic refresh is under way, tokens of unknown kids arrive: they must join
    // that fetch, not start another one
    let refreshing = poll(Duration::from_secs(5), || {
        (server.hits() >= 2 && server.in_flight() == 1).then_some(())
    });
    assert!(
        refreshing.is_some(),
        "no periodic refresh seen ({} fetches)",
        server.hits()
    );
    let burst = |prefix: &str, n: usize| {
        std::thread::scope(|s| {
            for i in 0..n {
                let g = &g;
                let kid = format!("{prefix}-{i}");
                s.spawn(move || {
                    let r = bearer_to(g, "idp", "/x", &token_unknown(&kid));
                    assert_eq!(r.status, 401, "{r:#?}");
                });
            }
        });
    };
    burst("during", 8);
    // and for a while longer, unknown and known kids mixed
    let deadline = Instant::now() + Duration::from_secs(2);
    std::thread::scope(|s| {
        for t in 0..2 {
            let g = &g;
            s.spawn(move || {
                let mut i = 0;
                while Instant::now() < deadline {
                    let r = bearer_to(g, "idp", "/x", &token_unknown(&format!("u-{t}-{i}")));
                    assert_eq!(r.status, 401, "{r:#?}");
                    let sub = format!("user-{t}-{i}");
                    let r = bearer_to(g, "idp", "/x", &token_a(&sub));
                    assert_eq!(r.status, 200, "kid A meanwhile: {r:#?}");
                    assert_eq!(app_header(&r.app(), "x-auth-request-user"), [sub]);
                    i += 1;
                }
            });
        }
    });
    assert!(
        server.hits() >= 3,
        "expected periodic refreshes meanwhile, saw {} fetches",
        server.hits()
    );
    assert_eq!(
        server.max_concurrency(),
        1,
        "two JWKS fetches ran at the same time ({} fetches)",
        server.hits()
    );
}

#[test]
fn a_request_waits_at_most_3_seconds_for_a_refetch() {
    let server = JwksServer::start(&set_a());
    let g = gate(&server, "10m");
    // the IdP rotates but answers very slowly (ssogate's fetch gives up after some seconds)
    server.set_body(&set_b());
    server.set_delay(Duration::from_secs(8));
    let started = Instant::now();
    let r = bearer_to(&g, "idp", "/x", &token_b("bob"));
    let took = started.elapsed();
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(
        took < Duration::from_millis(4500),
        "the request should wait at most about 3 s for the refetch, took {took:?}"
    );
    // known kids are not held up by the slow fetch in the background
    let started = Instant::now();
    assert_bearer_ok(
        &g,
        "idp",
        &token_a("alice"),
        "alice",
        "kid A during a slow fetch",
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}
