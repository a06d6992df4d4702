//! Token validation (SPEC 7) on `/_sso/callback` and `/_sso/jwt`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
use serde_json::{json, Value};

const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Submit `token` to both URL-token endpoints; assert each is refused with 401, sets no
/// session cookie and never reaches the app.
fn assert_refused(g: &Gate, what: &str, token: &str) {
    let before = g.upstream.count();
    for target in [
        format!("/_sso/jwt?jwt={}", enc(token)),
        format!("/_sso/callback?token={}", enc(token)),
    ] {
        for nav in [true, false] {
            let req = if nav { g.nav(&target) } else { g.api(&target) };
            let r = req.send();
            assert_eq!(r.status, 401, "{what}: {target} should be refused: {r:#?}");
            assert!(
                !r.sets_cookie(PLAIN_COOKIE),
                "{what}: {target} created a session: {r:#?}"
            );
            assert!(
                !r.body.contains(token),
                "{what}: the refused token is echoed in the error page"
            );
        }
    }
    assert_eq!(g.upstream.count(), before, "{what}: reached the app");
}

/// Submit to `/_sso/jwt`; assert a session is created.
fn assert_accepted(g: &Gate, what: &str, token: &str) {
    let r = g.jwt(token).send();
    assert_eq!(r.status, 302, "{what}: should be accepted: {r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE), "{what}: no session: {r:#?}");
}

fn payload(c: &Value) -> String {
    c.to_string()
}

#[test]
fn valid_tokens_are_accepted_on_both_endpoints() {
    // the positive control for everything below
    let g = Gate::base();
    let t = acme_token(ACME_SECRET, "ok");
    assert_accepted(&g, "valid", &t);
    let t = hs256(ACME_SECRET, &claims("ok2"));
    let r = g.nav(&format!("/_sso/callback?token={}", enc(&t))).send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE));
    // raw builder agrees with jsonwebtoken
    let t = sign_raw(HS256_HEADER, &payload(&claims("ok3")), HS256, ACME_SECRET);
    assert_accepted(&g, "raw valid", &t);
    // expired, but within the default 30s leeway
    let n = now();
    let t = hs256(
        ACME_SECRET,
        &claims_with("leeway", json!({"iat": n - 20, "exp": n - 10})),
    );
    assert_accepted(&g, "exp within leeway", &t);
    // nbf slightly in the future, within leeway
    let t = hs256(ACME_SECRET, &claims_with("nbf-ok", json!({"nbf": n + 10})));
    assert_accepted(&g, "nbf within leeway", &t);
    // jku / x5u / jwk headers are ignored (not followed, not refused)
    let hdr = r#"{"alg":"HS256","typ":"JWT","jku":"https://evil.example/jwks.json","x5u":"https://evil.example/x.pem"}"#;
    let t = sign_raw(hdr, &payload(&claims("jku")), HS256, ACME_SECRET);
    assert_accepted(&g, "jku/x5u ignored", &t);
    // a kid that matches no configured kid still finds the kid-less key
    let t = sign_raw(
        r#"{"alg":"HS256","typ":"JWT","kid":"whatever"}"#,
        &payload(&claims("kid")),
        HS256,
        ACME_SECRET,
    );
    assert_accepted(&g, "kid with kid-less key", &t);
}

#[test]
fn hostile_tokens_are_refused() {
    let g = Gate::base();
    let n = now();
    let mut used: Vec<String> = Vec::new();
    let mut refuse = |what: &str, t: String| {
        assert_refused(&g, what, &t);
        used.push(t);
    };

    // alg none in any case, with an empty signature
    for alg in ["none", "None", "NONE", "nOnE"] {
        let hdr = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        refuse(
            &format!("alg {alg}"),
            unsigned_jwt(&hdr, &payload(&claims("x"))),
        );
        // ... and with a (valid HS256) signature attached
        refuse(
            &format!("alg {alg} signed"),
            sign_raw(&hdr, &payload(&claims("x")), HS256, ACME_SECRET),
        );
    }
    // an HS256 header with no signature
    refuse(
        "empty signature",
        unsigned_jwt(HS256_HEADER, &payload(&claims("x"))),
    );
    // wrong secret
    refuse("wrong secret", hs256(WRONG_SECRET, &claims("x")));
    // algorithm not the one pinned by the key
    for alg in [HS384, HS512] {
        let t = sign(alg, ACME_SECRET, None, &claims("x"));
        refuse(&format!("{alg:?} with the HS256 key's secret"), t);
    }
    // expired beyond leeway
    refuse(
        "expired",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"iat": n - 200, "exp": n - 120})),
        ),
    );
    // not yet valid
    refuse(
        "nbf future",
        hs256(ACME_SECRET, &claims_with("x", json!({"nbf": n + 120}))),
    );
    // exp missing
    refuse(
        "no exp",
        hs256(ACME_SECRET, &claims_with("x", json!({"exp": null}))),
    );
    // exp / nbf / iat as strings
    refuse(
        "exp string",
        hs256(ACME_SECRET, &claims_with("x", json!({"exp": "9999999999"}))),
    );
    refuse(
        "iat string",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"iat": n.to_string()})),
        ),
    );
    refuse(
        "nbf string",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"nbf": (n - 10).to_string()})),
        ),
    );
    // stale iat (max_token_age 5m + leeway)
    refuse(
        "stale iat",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"iat": n - 600, "exp": n + 300})),
        ),
    );
    // another org's token (signed with globex's secret) routed to acme
    refuse("globex's token on acme", hs256(GLOBEX_SECRET, &claims("x")));
    // org_claim mismatch, signed with acme's own secret
    refuse(
        "org_claim mismatch",
        hs256(ACME_SECRET, &claims_with("x", json!({"orgId": "globex"}))),
    );
    // over 8 KiB
    let big = hs256(
        ACME_SECRET,
        &claims_with("x", json!({"pad": "p".repeat(7000)})),
    );
    assert!(
        big.len() > 9 * 1024 && big.len() < 10 * 1024,
        "{}",
        big.len()
    );
    refuse("9 KiB token", big);
    // bad base64 in each part (signature computed over the exact bytes)
    let h = b64url(HS256_HEADER.as_bytes());
    let p = b64url(payload(&claims("x")).as_bytes());
    refuse(
        "bad b64 header",
        sign_parts(&format!("{h}$"), &p, HS256, ACME_SECRET),
    );
    refuse(
        "bad b64 payload",
        sign_parts(&h, &format!("{p}*"), HS256, ACME_SECRET),
    );
    let good = sign_parts(&h, &p, HS256, ACME_SECRET);
    refuse("bad b64 signature", format!("{good}$$"));
    refuse(
        "not json header",
        sign_parts(&b64url(b"hello"), &p, HS256, ACME_SECRET),
    );
    refuse(
        "not json payload",
        sign_parts(&h, &b64url(b"[1,2"), HS256, ACME_SECRET),
    );
    refuse("two parts", format!("{h}.{p}"));
    refuse("four parts", format!("{good}.{p}"));
    // control characters in mapped claims
    refuse(
        "CRLF in email",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"email": "a@b.test\r\nX-Injected: 1"})),
        ),
    );
    refuse(
        "TAB in principal",
        hs256(
            ACME_SECRET,
            &claims_with("al\tice", json!({"email": "clean@example.test"})),
        ),
    );
    refuse(
        "DEL in groups",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"groups": ["ok", "b\u{7f}d"]})),
        ),
    );
    refuse(
        "NUL in email",
        hs256(
            ACME_SECRET,
            &claims_with("x", json!({"email": "a\u{0}@b.test"})),
        ),
    );

    // nothing above leaked into the logs
    let needles: Vec<&str> = used
        .iter()
        .filter(|t| t.len() > 20 && t.len() < 4096)
        .map(|t| t.as_str())
        .collect();
    g.assert_logs_free_of(&needles);
    g.assert_logs_free_of(&[
        std::str::from_utf8(ACME_SECRET).unwrap(),
        std::str::from_utf8(GLOBEX_SECRET).unwrap(),
        std::str::from_utf8(SESSION_SECRET).unwrap(),
    ]);
}

#[test]
fn jti_is_accepted_once() {
    let g = Gate::base();
    let t = hs256(ACME_SECRET, &claims("replay"));
    let r = g.jwt(&t).send();
    assert_eq!(r.status, 302, "first use: {r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE));
    let r = g.jwt(&t).send();
    assert_eq!(r.status, 401, "second use (same endpoint): {r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE));
    let r = g.nav(&format!("/_sso/callback?token={}", enc(&t))).send();
    assert_eq!(r.status, 401, "second use (other endpoint): {r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE));

    // callback first, then jwt
    let t = hs256(ACME_SECRET, &claims("replay2"));
    let r = g.nav(&format!("/_sso/callback?token={}", enc(&t))).send();
    assert_eq!(r.status, 302, "{r:#?}");
    let r = g.jwt(&t).send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn refused_token_with_jti_does_not_burn_it_for_a_valid_one() {
    // a forged token reusing a jti must not lock out the genuine one
    let g = Gate::base();
    let c = claims("victim");
    let forged = hs256(WRONG_SECRET, &c);
    assert_refused(&g, "forged", &forged);
    let genuine = hs256(ACME_SECRET, &c);
    assert_accepted(&g, "genuine after forged with the same jti", &genuine);
}

#[test]
fn each_key_pins_its_algorithm() {
    // an org with an HS512 key: HS256 with the same secret is refused, HS512 accepted
    let cfg = BASE.replace(
        "keys: [{ alg: HS256, secret_file: acme.secret }]",
        "keys: [{ alg: HS512, secret_file: acme.secret }]",
    );
    let g = Gate::start(&cfg);
    assert_refused(
        &g,
        "HS256 on an HS512 key",
        &hs256(ACME_SECRET, &claims("x")),
    );
    let t = sign(HS512, ACME_SECRET, None, &claims("x"));
    assert_accepted(&g, "HS512", &t);
}

#[test]
fn kid_selects_among_keys() {
    // two HS256 keys with kids; a token naming k1 but signed with k2's secret is refused
    let cfg = BASE.replace(
        "keys: [{ alg: HS256, secret_file: acme.secret }]",
        "keys:\n      - { alg: HS256, kid: k1, secret_file: acme.secret }\n      - { alg: HS256, kid: k2, secret_file: k2.secret }",
    );
    let k2: &[u8] = b"acme-second-key-0123456789abcdefghijklmnopq";
    let g = Gate::builder(&cfg).file("k2.secret", k2).start();
    let with_kid = |kid: &str, secret: &[u8], sub: &str| {
        sign_raw(
            &format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#),
            &claims(sub).to_string(),
            HS256,
            secret,
        )
    };
    assert_accepted(&g, "k1", &with_kid("k1", ACME_SECRET, "a"));
    assert_accepted(&g, "k2", &with_kid("k2", k2, "b"));
    assert_refused(&g, "kid k1, k2's secret", &with_kid("k1", k2, "c"));
    assert_refused(
        &g,
        "unknown kid (all keys have kids)",
        &with_kid("k3", ACME_SECRET, "d"),
    );
    // no kid: every key is a candidate
    assert_accepted(&g, "no kid, k2's secret", &hs256(k2, &claims("e")));
}
