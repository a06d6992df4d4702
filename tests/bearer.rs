//! Flow D (SPEC 1, 4, 7): `Authorization: Bearer` and `accept_query_token`, against hostile
//! tokens: algorithm confusion, forged ECDSA, hostile `kid`, `jku`/`x5u`/`jwk`/`x5c` headers,
//! JWE-shaped and duplicate-claim tokens, ill-typed claims, audience and issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use jsonwebtoken::Algorithm::*;
use serde_json::{json, Value};

const HS_SECRET: &[u8] = b"bearer-hs256-secret-0123456789abcdefghijklm";
const ISSUER: &str = "https://idp.aud.example";

/// Orgs (Host `<name>.test`):
/// * `rsa`: RS256 key with kid `k1` (rsa.pub.pem), Bearer
/// * `hs`: HS256 key without kid, Bearer
/// * `es`: ES256 key without kid, Bearer
/// * `aud`: RS256 (kid-less), issuer + audience `ssogate`; `aud-list`: audience [ssogate, reports]
/// * `plain`: RS256 (kid-less), `accept_bearer` not set
/// * `query`: RS256 (kid-less), `accept_query_token: access_token`, no Bearer, home /home
fn gate() -> Gate {
    let no_bearer = |o: String| o.replace("    accept_bearer: true\n", "");
    let cfg = config(&[
        org(
            "rsa",
            &["{ alg: RS256, kid: k1, public_key_file: rsa.pub.pem }"],
            &[],
        ),
        org("hs", &["{ alg: HS256, secret_file: hs.secret }"], &[]),
        org(
            "es",
            &["{ alg: ES256, public_key_file: ec256.pub.pem }"],
            &[],
        ),
        org(
            "aud",
            &["{ alg: RS256, public_key_file: rsa.pub.pem }"],
            &[&format!("issuer: {ISSUER}"), "audience: ssogate"],
        ),
        org(
            "aud-list",
            &["{ alg: RS256, public_key_file: rsa.pub.pem }"],
            &["audience: [ssogate, reports]"],
        ),
        no_bearer(org(
            "plain",
            &["{ alg: RS256, public_key_file: rsa.pub.pem }"],
            &[],
        )),
        no_bearer(org(
            "query",
            &["{ alg: RS256, public_key_file: rsa.pub.pem }"],
            &["accept_query_token: access_token", "home_path: /home"],
        )),
    ]);
    Gate::builder(&cfg)
        .key_fixtures()
        .file("hs.secret", HS_SECRET)
        .start()
}

fn rsa() -> &'static [u8] {
    fixtures().get("rsa.key.pem")
}

/// An RS256 token by the `rsa` org's key, kid k1.
fn rs(c: &Value) -> String {
    sign(RS256, rsa(), Some("k1"), c)
}

fn payload(c: &Value) -> String {
    c.to_string()
}

#[test]
fn valid_bearer_tokens_pass_without_a_cookie_and_whoami_says_bearer() {
    let g = gate();
    let c = claims("alice");
    let t = rs(&c);
    let echo = assert_bearer_ok(&g, "rsa", &t, "alice", "RS256 kid k1");
    assert_eq!(
        app_header(&echo, "x-auth-request-email"),
        ["alice@example.test"]
    );
    assert_eq!(app_header(&echo, "x-auth-request-groups"), ["dev,ops"]);
    // the app sees the request it was sent (the Authorization header is the app's business
    // too: a Bearer API keeps it)
    assert_eq!(echo["path"], "/app/data");
    assert_eq!(echo["query"], "x=1");

    // Bearer tokens are not single-use (no jti replay on the stateless path)
    assert_bearer_ok(&g, "rsa", &t, "alice", "same token again");
    // ... and need no fresh iat (max_token_age is for URL-delivered tokens)
    let n = now();
    let old_iat = rs(&claims_with(
        "old-iat",
        json!({"iat": n - 3600, "exp": n + 300}),
    ));
    assert_bearer_ok(&g, "rsa", &old_iat, "old-iat", "iat an hour ago");
    let hs = hs256(HS_SECRET, &claims("hs-user"));
    assert_bearer_ok(&g, "hs", &hs, "hs-user", "HS256");
    let es = sign(
        ES256,
        fixtures().get("ec256.key.pem"),
        None,
        &claims("es-user"),
    );
    assert_bearer_ok(&g, "es", &es, "es-user", "ES256");

    // lowercase scheme
    let r = g
        .api("/x")
        .host("rsa.test")
        .header("Authorization", &format!("bearer {t}"))
        .send();
    assert_eq!(r.status, 200, "scheme is case-insensitive: {r:#?}");

    // whoami
    let r = g
        .api("/_sso/whoami")
        .host("rsa.test")
        .header("Authorization", &format!("Bearer {t}"))
        .send();
    assert_eq!(r.status, 200, "{r:#?}");
    assert!(r.header_all("set-cookie").is_empty(), "{r:#?}");
    let w = r.json();
    assert_eq!(w["method"], "bearer", "{w}");
    assert_eq!(w["org"], "rsa", "{w}");
    assert_eq!(w["principal"], "alice", "{w}");
    assert_eq!(w["claims"]["email"], "alice@example.test", "{w}");
    assert_eq!(
        w["expires_at"], c["exp"],
        "expires_at is the token's exp: {w}"
    );
    // a refused token on whoami
    let forged = sign(RS256, fixtures().get("evil-rsa.key.pem"), Some("k1"), &c);
    let r = g
        .api("/_sso/whoami")
        .host("rsa.test")
        .header("Authorization", &format!("Bearer {forged}"))
        .send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert!(r.header_all("set-cookie").is_empty(), "{r:#?}");
    assert_eq!(g.upstream.count(), 6);
}

#[test]
fn algorithm_confusion_is_refused() {
    let g = gate();
    let fx = fixtures();
    // HS256 signed with the RSA public key (the bytes an attacker can download) as the HMAC
    // secret, against the RS256-only org
    let pem = fx.get("rsa.pub.pem");
    let trimmed = std::str::from_utf8(pem).unwrap().trim_end().as_bytes();
    for (what, secret) in [
        ("public key PEM", pem),
        ("public key PEM without newline", trimmed),
        ("RSA PUBLIC KEY PEM", fx.get("rsa.pkcs1.pub.pem")),
        ("certificate PEM", fx.get("rsa.cert.pem")),
    ] {
        for kid in [Some("k1"), None] {
            let t = sign(HS256, secret, kid, &claims("mallory"));
            assert_bearer_refused(
                &g,
                "rsa",
                &t,
                &format!("HS256 with the {what}, kid {kid:?}"),
            );
        }
    }
    // an RS256 token (valid signature by a real RSA key) against the HS-only org
    let t = sign(RS256, rsa(), None, &claims("mallory"));
    assert_bearer_refused(&g, "hs", &t, "RS256 on an HS org");
    let t = sign(RS256, rsa(), Some("k1"), &claims("mallory"));
    assert_bearer_refused(&g, "hs", &t, "RS256 kid k1 on an HS org");
    // HS256 on the ES256 org with its public key as secret
    let t = sign(HS256, fx.get("ec256.pub.pem"), None, &claims("mallory"));
    assert_bearer_refused(&g, "es", &t, "HS256 with the EC public key on the ES org");
    // alg none, on the Bearer path
    for alg in ["none", "None", "NONE"] {
        let t = unsigned_jwt(
            &format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#),
            &payload(&claims("mallory")),
        );
        assert_bearer_refused(&g, "rsa", &t, &format!("alg {alg}"));
    }
    // the genuine token still passes
    assert_bearer_ok(&g, "rsa", &rs(&claims("alice")), "alice", "control");
}

#[test]
fn psychic_ecdsa_signature_is_refused() {
    // CVE-2022-21449: r = s = 0 verifies everything in a broken ECDSA
    let g = gate();
    let p = payload(&claims("mallory"));
    let h = b64url(br#"{"alg":"ES256","typ":"JWT"}"#);
    let body = format!("{h}.{}", b64url(p.as_bytes()));
    let zero = format!("{body}.{}", b64url(&[0u8; 64]));
    assert_bearer_refused(&g, "es", &zero, "ES256 r = s = 0");
    // DER-encoded zero signature, and an empty-looking one
    let der_zero = format!(
        "{body}.{}",
        b64url(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])
    );
    assert_bearer_refused(&g, "es", &der_zero, "ES256 DER r = s = 0");
    let one_zero = format!("{body}.{}", b64url(&[0u8; 1]));
    assert_bearer_refused(&g, "es", &one_zero, "ES256 one zero byte");
    // control: the real signature of the same header and payload passes
    let real = sign_raw(
        r#"{"alg":"ES256","typ":"JWT"}"#,
        &p,
        ES256,
        fixtures().get("ec256.key.pem"),
    );
    assert_bearer_ok(&g, "es", &real, "mallory", "genuine ES256");
}

#[test]
fn hostile_kids_are_refused_without_harm() {
    let g = gate();
    let big = "k".repeat(5 * 1024);
    let hostile: Vec<(&str, Value)> = vec![
        ("path traversal", json!("../../../dev/null")),
        ("absolute path", json!("/etc/passwd")),
        ("SQL injection", json!("' OR 1=1 --")),
        ("5 KB kid", json!(big)),
        ("CRLF", json!("k1\r\nX-Injected: 1")),
        ("NUL", json!("k1\u{0}")),
        ("number", json!(1)),
        ("object", json!({"kid": "k1"})),
        ("array", json!(["k1"])),
        ("URL", json!("http://127.0.0.1:1/key.pem")),
    ];
    for (what, kid) in &hostile {
        // signed by the org's real key: the kid alone decides, and names no configured key
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string();
        let t = sign_raw(&header, &payload(&claims("mallory")), RS256, rsa());
        assert!(t.len() < 8 * 1024, "{what}: keep under the 8 KiB limit");
        assert_bearer_refused(&g, "rsa", &t, &format!("kid {what}"));
    }
    // the classic: kid pointing at /dev/null, HMAC-signed with the empty "content" of that file
    for kid in ["../../../dev/null", "/dev/null"] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string();
        let t = sign_raw(&header, &payload(&claims("mallory")), HS256, b"");
        assert_bearer_refused(&g, "hs", &t, &format!("kid {kid}, empty HMAC key"));
        assert_bearer_refused(
            &g,
            "rsa",
            &t,
            &format!("kid {kid}, empty HMAC key, RSA org"),
        );
    }
    let t = sign_raw(
        &json!({"alg": "HS256", "kid": "' OR 1=1 --"}).to_string(),
        &payload(&claims("mallory")),
        HS256,
        b"' OR 1=1 --",
    );
    assert_bearer_refused(&g, "hs", &t, "SQL kid signed with itself");
    // still serving, still correct
    assert_bearer_ok(
        &g,
        "rsa",
        &rs(&claims("alice")),
        "alice",
        "after hostile kids",
    );
    assert_eq!(g.admin("/healthz").status, 200);
    // no hostile kid found its way into the logs as a header line
    assert!(!g.logs().contains("X-Injected: 1"), "{}", g.log_tail());
}

#[test]
fn key_location_headers_are_ignored() {
    // an attacker publishes their own key and points the token at it
    let fx = fixtures();
    let evil = fx.get("evil-rsa.key.pem");
    let evil_jwk = fx.jwk("evil-rsa", "k1", Some("RS256"));
    let attacker = JwksServer::start(&jwks_doc(std::slice::from_ref(&evil_jwk)));
    let g = gate();
    let base = format!("http://127.0.0.1:{}", attacker.port);
    let evil_x5c = pem_body(fx.get("evil-rsa.cert.pem"));
    let headers = [
        (
            "jku",
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "jku": attacker.url()}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "x5u": format!("{base}/cert.pem")}),
        ),
        (
            "jwk",
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "jwk": evil_jwk}),
        ),
        (
            "jwk without kid",
            json!({"alg": "RS256", "typ": "JWT", "jwk": evil_jwk}),
        ),
        (
            "x5c",
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "x5c": [evil_x5c]}),
        ),
        (
            "all of them",
            json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "jku": attacker.url(),
                   "x5u": format!("{base}/cert.pem"), "jwk": evil_jwk, "x5c": [evil_x5c]}),
        ),
    ];
    for (what, header) in &headers {
        let h = header.to_string();
        let forged = sign_raw(&h, &payload(&claims("mallory")), RS256, evil);
        assert_bearer_refused(
            &g,
            "rsa",
            &forged,
            &format!("{what}, signed by the attacker"),
        );
        // the same header with a real signature by the configured key: the header is ignored
        let sub = format!("alice-{}", what.replace(' ', "-"));
        let genuine = sign_raw(&h, &payload(&claims(&sub)), RS256, rsa());
        assert_bearer_ok(
            &g,
            "rsa",
            &genuine,
            &sub,
            &format!("{what}, genuine signature"),
        );
    }
    assert_eq!(attacker.hits(), 0, "ssogate fetched the attacker's URL");
}

#[test]
fn malformed_and_ambiguous_tokens_are_refused() {
    let g = gate();
    // JWE compact serialization: five parts
    let jwe = [
        b64url(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k1"}"#),
        b64url(&[7u8; 256]),
        b64url(&[1u8; 12]),
        b64url(payload(&claims("mallory")).as_bytes()),
        b64url(&[2u8; 16]),
    ]
    .join(".");
    assert_bearer_refused(&g, "rsa", &jwe, "five-part JWE");
    let jwe_dir = [
        b64url(br#"{"alg":"dir","enc":"A128CBC-HS256"}"#),
        String::new(),
        b64url(&[1u8; 16]),
        b64url(b"ciphertext"),
        b64url(&[2u8; 16]),
    ]
    .join(".");
    assert_bearer_refused(&g, "rsa", &jwe_dir, "five-part JWE, alg dir");
    // five parts whose first three are a valid JWS
    let t = rs(&claims("mallory"));
    assert_bearer_refused(
        &g,
        "rsa",
        &format!("{t}.{}.{}", b64url(b"x"), b64url(b"y")),
        "valid JWS + 2 parts",
    );

    // duplicate claim keys: two parsers could disagree on who the user is
    let n = now();
    let dup_sub = format!(
        r#"{{"sub":"alice","email":"alice@example.test","exp":{},"iat":{n},"sub":"admin"}}"#,
        n + 300
    );
    let h = r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#;
    let t = sign_raw(h, &dup_sub, RS256, rsa());
    assert_bearer_refused(&g, "rsa", &t, "duplicate sub");
    let dup_exp = format!(r#"{{"sub":"alice","exp":{},"exp":{}}}"#, n - 3600, n + 300);
    let t = sign_raw(h, &dup_exp, RS256, rsa());
    assert_bearer_refused(&g, "rsa", &t, "duplicate exp");
    let dup_email = format!(
        r#"{{"sub":"alice","email":"alice@example.test","email":"root@example.test","exp":{}}}"#,
        n + 300
    );
    let t = sign_raw(h, &dup_email, RS256, rsa());
    assert_bearer_refused(&g, "rsa", &t, "duplicate email");
    // duplicate header keys
    let t = sign_raw(
        r#"{"alg":"RS256","kid":"k1","kid":"other","typ":"JWT"}"#,
        &payload(&claims("alice")),
        RS256,
        rsa(),
    );
    assert_bearer_refused(&g, "rsa", &t, "duplicate kid in the header");
    let t = sign_raw(
        r#"{"alg":"RS256","alg":"none","kid":"k1"}"#,
        &payload(&claims("alice")),
        RS256,
        rsa(),
    );
    assert_bearer_refused(&g, "rsa", &t, "duplicate alg in the header");
    // the control: the same payload without duplicates
    let ok = format!(
        r#"{{"sub":"alice","email":"alice@example.test","exp":{}}}"#,
        n + 300
    );
    assert_bearer_ok(
        &g,
        "rsa",
        &sign_raw(h, &ok, RS256, rsa()),
        "alice",
        "no duplicates",
    );

    // unknown kid (the org's only key has kid k1), exp missing, expired
    let t = sign(RS256, rsa(), Some("k2"), &claims("alice"));
    assert_bearer_refused(&g, "rsa", &t, "unknown kid");
    let t = rs(&claims_with("alice", json!({"exp": null})));
    assert_bearer_refused(&g, "rsa", &t, "no exp");
    let t = rs(&claims_with(
        "alice",
        json!({"iat": n - 600, "exp": n - 120}),
    ));
    assert_bearer_refused(&g, "rsa", &t, "expired");
    // not a JWT at all
    for junk in ["abc", "a.b.c", "...", "eyJ.eyJ.eyJ"] {
        assert_bearer_refused(&g, "rsa", junk, &format!("junk {junk:?}"));
    }
}

#[test]
fn mapped_claims_must_be_header_safe() {
    let g = gate();
    for (what, extra) in [
        ("email object", json!({"email": {"address": "a@b.test"}})),
        ("email array of objects", json!({"email": [{"a": 1}]})),
        ("groups of objects", json!({"groups": [{"name": "admins"}]})),
        (
            "groups mixing strings and objects",
            json!({"groups": ["dev", {"name": "admins"}]}),
        ),
        ("groups object", json!({"groups": {"admins": true}})),
        ("principal object", json!({"sub": {"id": 1}})),
        ("principal array", json!({"sub": ["alice", "bob"]})),
        ("principal null", json!({"sub": Value::Null})),
    ] {
        let mut c = claims_with("typed", extra.clone());
        if extra.get("sub").is_some_and(Value::is_null) {
            c.as_object_mut().unwrap().insert("sub".into(), Value::Null);
        }
        assert_bearer_refused(&g, "rsa", &rs(&c), what);
    }
    // scalars and arrays of strings are fine, as text
    let echo = assert_bearer_ok(
        &g,
        "rsa",
        &rs(&claims_with(
            "typed",
            json!({"email": 42, "groups": ["a", "b", "c"]}),
        )),
        "typed",
        "number email, string groups",
    );
    assert_eq!(app_header(&echo, "x-auth-request-email"), ["42"]);
    assert_eq!(app_header(&echo, "x-auth-request-groups"), ["a,b,c"]);
    let echo = assert_bearer_ok(
        &g,
        "rsa",
        &rs(&claims_with("typed2", json!({"groups": "solo"}))),
        "typed2",
        "string groups",
    );
    assert_eq!(app_header(&echo, "x-auth-request-groups"), ["solo"]);
    // client-sent identity headers never survive
    let t = rs(&claims_with("typed3", json!({"email": null})));
    let r = bearer_to(&g, "rsa", "/x", &t);
    let echo = r.app();
    assert!(
        app_header(&echo, "x-auth-request-email").is_empty(),
        "{echo}"
    );
    let r = g
        .api("/x")
        .host("rsa.test")
        .header("Authorization", &format!("Bearer {t}"))
        .header("X-Auth-Request-Email", "root@example.test")
        .header("X-Auth-Request-User", "root")
        .send();
    let echo = r.app();
    assert_eq!(app_header(&echo, "x-auth-request-user"), ["typed3"]);
    assert!(
        app_header(&echo, "x-auth-request-email").is_empty(),
        "{echo}"
    );
}

#[test]
fn audience_and_issuer_are_checked() {
    let g = gate();
    let tok = |extra: Value| rs(&claims_with("aud-user", extra));
    let ok = |what: &str, extra: Value| {
        assert_bearer_ok(&g, "aud", &tok(extra), "aud-user", what);
    };
    let bad = |what: &str, extra: Value| {
        assert_bearer_refused(&g, "aud", &tok(extra), what);
    };
    ok("aud string", json!({"iss": ISSUER, "aud": "ssogate"}));
    ok(
        "aud array",
        json!({"iss": ISSUER, "aud": ["other", "ssogate"]}),
    );
    bad("wrong aud string", json!({"iss": ISSUER, "aud": "other"}));
    bad(
        "wrong aud array",
        json!({"iss": ISSUER, "aud": ["other", "more"]}),
    );
    bad("empty aud array", json!({"iss": ISSUER, "aud": []}));
    bad("aud missing", json!({"iss": ISSUER}));
    bad(
        "aud in another case",
        json!({"iss": ISSUER, "aud": "SSOGATE"}),
    );
    bad("aud prefix", json!({"iss": ISSUER, "aud": "ssogate-admin"}));
    bad(
        "aud nested array",
        json!({"iss": ISSUER, "aud": [["ssogate"]]}),
    );
    bad(
        "wrong iss",
        json!({"iss": "https://evil.example", "aud": "ssogate"}),
    );
    bad(
        "iss with a trailing slash",
        json!({"iss": format!("{ISSUER}/"), "aud": "ssogate"}),
    );
    bad("iss missing", json!({"aud": "ssogate"}));
    bad("iss array", json!({"iss": [ISSUER], "aud": "ssogate"}));
    // an org with a list of audiences accepts any one of them
    for aud in [json!("ssogate"), json!("reports"), json!(["x", "reports"])] {
        let t = rs(&claims_with("list-user", json!({ "aud": aud })));
        assert_bearer_ok(&g, "aud-list", &t, "list-user", &format!("aud {aud}"));
    }
    let t = rs(&claims_with("list-user", json!({"aud": "other"})));
    assert_bearer_refused(&g, "aud-list", &t, "aud not in the list");
    // orgs without audience accept any aud
    let t = rs(&claims_with(
        "alice",
        json!({"aud": "anything", "iss": "anyone"}),
    ));
    assert_bearer_ok(&g, "rsa", &t, "alice", "no audience configured");
}

#[test]
fn without_accept_bearer_the_authorization_header_is_the_apps() {
    let g = gate();
    let bearer = format!("Bearer {}", rs(&claims("mallory")));
    // a script with a valid token: unauthenticated, not invalid_token
    let r = g
        .api("/api/data")
        .host("plain.test")
        .header("Authorization", &bearer)
        .send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(r.json()["error"], "unauthenticated", "{r:#?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{r:#?}");
    assert!(!challenge.contains("invalid_token"), "{r:#?}");
    // a navigation goes to the login
    let r = g
        .nav("/page")
        .host("plain.test")
        .header("Authorization", &bearer)
        .send();
    assert!(
        r.is_login_redirect("https://portal.plain.example/login"),
        "{r:#?}"
    );
    assert_eq!(g.upstream.count(), 0);

    // with a session: the app gets the request, Authorization untouched, identity from the
    // cookie (not from the token)
    let url_token = sign(RS256, rsa(), None, &claims("alice"));
    let jar = g.login_jwt(Some("plain.test"), &url_token, PLAIN_COOKIE);
    for auth in [
        bearer.as_str(),
        "Bearer not-a-jwt",
        "Basic YWxpY2U6c2VjcmV0",
    ] {
        let r = g
            .api("/api/data")
            .host("plain.test")
            .jar(&jar)
            .header("Authorization", auth)
            .send();
        let echo = r.app();
        assert_eq!(
            app_header(&echo, "authorization"),
            [auth],
            "Authorization changed"
        );
        assert_eq!(app_header(&echo, "x-auth-request-user"), ["alice"]);
        assert!(!r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    }
    assert_eq!(g.upstream.count(), 3);
}

#[test]
fn query_token_creates_a_session_and_is_removed_by_a_redirect() {
    let g = gate();
    let fx = fixtures();
    let t = sign(RS256, rsa(), None, &claims("quinn"));
    let r = g
        .nav(&format!(
            "/reports/view?a=1&access_token={}&b=x%20y",
            enc(&t)
        ))
        .host("query.test")
        .send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/reports/view?a=1&b=x%20y", "{r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    assert!(
        !r.location().contains(&t),
        "the token stays out of the Location"
    );
    assert_eq!(
        g.upstream.count(),
        0,
        "the token-bearing URL reached the app"
    );
    let mut jar = Jar::new();
    jar.absorb(&r);

    // the cookie works afterwards, on that URL and any other
    let r = g.nav(&g.loc_path(&r)).host("query.test").jar(&jar).send();
    let echo = r.app();
    assert_eq!(echo["path"], "/reports/view");
    assert_eq!(echo["query"], "a=1&b=x%20y");
    assert_eq!(app_header(&echo, "x-auth-request-user"), ["quinn"]);
    assert!(app_cookies(&echo).iter().all(|(n, _)| n != PLAIN_COOKIE));
    let r = g.api("/elsewhere").host("query.test").jar(&jar).send();
    assert_eq!(app_header(&r.app(), "x-auth-request-user"), ["quinn"]);
    let count = g.upstream.count();

    // the same token again (jti): refused
    let r = g
        .nav(&format!("/other?access_token={}", enc(&t)))
        .host("query.test")
        .send();
    assert_eq!(r.status, 401, "jti replay: {r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    assert!(!r.body.contains(&t), "token echoed in the error page");
    // a forged token, an expired one, a stale one (URL tokens need a recent iat)
    let n = now();
    for (what, bad) in [
        (
            "forged",
            sign(RS256, fx.get("evil-rsa.key.pem"), None, &claims("quinn")),
        ),
        (
            "expired",
            sign(
                RS256,
                rsa(),
                None,
                &claims_with("quinn", json!({"iat": n - 200, "exp": n - 100})),
            ),
        ),
        (
            "stale iat",
            sign(
                RS256,
                rsa(),
                None,
                &claims_with("quinn", json!({"iat": n - 3600, "exp": n + 300})),
            ),
        ),
        ("garbage", "not.a.token".to_string()),
    ] {
        for nav in [true, false] {
            let target = format!("/reports/view?access_token={}&a=1", enc(&bad));
            let req = if nav { g.nav(&target) } else { g.api(&target) };
            let r = req.host("query.test").send();
            assert_eq!(r.status, 401, "{what} (nav {nav}): {r:#?}");
            assert!(!r.sets_cookie(PLAIN_COOKIE), "{what}: {r:#?}");
        }
    }
    // a bad token next to a valid session is still a 401, and never reaches the app
    let r = g
        .nav(&format!(
            "/reports/view?access_token={}",
            enc("not.a.token")
        ))
        .host("query.test")
        .jar(&jar)
        .send();
    assert_eq!(r.status, 401, "{r:#?}");
    assert_eq!(
        g.upstream.count(),
        count,
        "a refused query token reached the app"
    );

    // the only parameter: the redirect drops the `?`
    let t2 = sign(RS256, rsa(), None, &claims("quinn2"));
    let r = g
        .nav(&format!("/only?access_token={}", enc(&t2)))
        .host("query.test")
        .send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/only");
    assert!(r.sets_cookie(PLAIN_COOKIE));
    // an org without accept_query_token leaves the parameter to the app
    let t3 = sign(RS256, rsa(), Some("k1"), &claims("rita"));
    let r = bearer_to(&g, "rsa", &format!("/p?access_token={}", enc(&t3)), &t3);
    let echo = r.app();
    assert!(
        echo["query"]
            .as_str()
            .unwrap_or_default()
            .contains("access_token="),
        "{echo}"
    );
}
