//! Key sources and algorithms (SPEC 1 flow D, 3 `keys`, 7): every algorithm from every kind
//! of key source verifies Bearer tokens; `ssogate mint --key`; what `check` and startup refuse;
//! several keys per org, `kid` selection and rotation.
//!
//! Fixtures (keys, certificates, keystores) are generated at test time: see
//! `tests/common/keys.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use jsonwebtoken::Algorithm::{self, *};
use serde_json::json;
use std::time::Duration;

const HS256_SECRET: &[u8] = b"keys-hs256-secret-0123456789abcdefghijklmnop";
const HS384_SECRET: &str = "keys-hs384-secret-from-env-0123456789abcdefghij";
const HS512_SECRET: &str = "keys-hs512-inline-secret-0123456789abcdefghijkl";
const WRONG_P12_PASSWORD: &str = "Wrong-p12-Passw0rd-0815";

fn lower(alg: Algorithm) -> String {
    format!("{alg:?}").to_ascii_lowercase()
}

struct Case {
    org: String,
    alg: Algorithm,
    key: &'static [u8],
    kid: Option<&'static str>,
    /// a key of the same kind that the org does not know
    wrong: &'static [u8],
}

#[test]
fn every_algorithm_from_every_source_verifies_bearer_tokens() {
    let fx = fixtures();
    let rsa = fx.get("rsa.key.pem");
    let rsa2 = fx.get("rsa2.key.pem");
    let evil_rsa = fx.get("evil-rsa.key.pem");
    let ec256 = fx.get("ec256.key.pem");
    let evil_ec256 = fx.get("evil-ec256.key.pem");
    let ec384 = fx.get("ec384.key.pem");
    let evil_ec384 = fx.get("evil-ec384.key.pem");
    let ed = fx.get("ed25519.key.pem");
    let evil_ed = fx.get("evil-ed25519.key.pem");

    let mut orgs = Vec::new();
    let mut cases = Vec::new();
    let mut add = |name: String,
                   key_yaml: String,
                   alg: Algorithm,
                   key: &'static [u8],
                   kid: Option<&'static str>,
                   wrong: &'static [u8]| {
        orgs.push(org(&name, &[&key_yaml], &[]));
        cases.push(Case {
            org: name,
            alg,
            key,
            kid,
            wrong,
        });
    };

    // HMAC, each secret form
    add(
        "hs256".into(),
        "{ alg: HS256, secret_file: hs256.secret }".into(),
        HS256,
        HS256_SECRET,
        None,
        WRONG_SECRET,
    );
    add(
        "hs384".into(),
        "{ alg: HS384, secret_env: KEYS_TEST_HS384 }".into(),
        HS384,
        HS384_SECRET.as_bytes(),
        None,
        WRONG_SECRET,
    );
    add(
        "hs512".into(),
        format!("{{ alg: HS512, secret: \"{HS512_SECRET}\" }}"),
        HS512,
        HS512_SECRET.as_bytes(),
        None,
        WRONG_SECRET,
    );
    // RSA (PKCS#1 v1.5 and PSS) from a public key PEM and from a certificate
    for alg in [RS256, RS384, RS512, PS256, PS384, PS512] {
        for (source, file) in [("pem", "rsa.pub.pem"), ("cert", "rsa.cert.pem")] {
            add(
                format!("{}-{source}", lower(alg)),
                format!("{{ alg: {alg:?}, public_key_file: {file} }}"),
                alg,
                rsa,
                None,
                evil_rsa,
            );
        }
    }
    add(
        "rs256-pkcs1".into(),
        "{ alg: RS256, public_key_file: rsa.pkcs1.pub.pem }".into(),
        RS256,
        rsa,
        None,
        evil_rsa,
    );
    // EC and Ed25519, PEM and certificate
    for (alg, pubfile, cert, key, wrong) in [
        (ES256, "ec256.pub.pem", "ec256.cert.pem", ec256, evil_ec256),
        (ES384, "ec384.pub.pem", "ec384.cert.pem", ec384, evil_ec384),
        (EdDSA, "ed25519.pub.pem", "ed25519.cert.pem", ed, evil_ed),
    ] {
        for (source, file) in [("pem", pubfile), ("cert", cert)] {
            add(
                format!("{}-{source}", lower(alg)),
                format!("{{ alg: {alg:?}, public_key_file: {file} }}"),
                alg,
                key,
                None,
                wrong,
            );
        }
    }
    // PKCS#12: modern keystore (password file, alias), legacy keystore (password from the
    // environment, no alias: its only entry), a PS alg on a keystore (inline password)
    add(
        "rs256-p12".into(),
        "{ alg: RS256, pkcs12_file: rsa.p12, password_file: p12.pass, alias: idp }".into(),
        RS256,
        rsa,
        None,
        evil_rsa,
    );
    add(
        "rs256-p12-legacy".into(),
        "{ alg: RS256, pkcs12_file: rsa.legacy.p12, password_env: KEYS_TEST_P12_PASS }".into(),
        RS256,
        rsa,
        None,
        evil_rsa,
    );
    add(
        "ps384-p12".into(),
        format!("{{ alg: PS384, pkcs12_file: rsa.p12, password: \"{P12_PASSWORD}\", alias: idp, kid: p12k }}"),
        PS384,
        rsa,
        Some("p12k"),
        evil_rsa,
    );
    // expired certificates, explicitly allowed
    add(
        "rs256-expired-cert".into(),
        "{ alg: RS256, public_key_file: rsa.expired.cert.pem, allow_expired_certificate: true }"
            .into(),
        RS256,
        rsa,
        None,
        evil_rsa,
    );
    add(
        "rs256-expired-p12".into(),
        "{ alg: RS256, pkcs12_file: rsa.expired.p12, password_file: p12.pass, allow_expired_certificate: true }"
            .into(),
        RS256,
        rsa,
        None,
        evil_rsa,
    );
    // a JWKS file with several kids and key types
    for (kid, alg, key, wrong) in [
        ("r1", RS256, rsa, evil_rsa),
        ("p1", PS256, rsa2, evil_rsa),
        ("e1", ES256, ec256, evil_ec256),
        ("e2", ES384, ec384, evil_ec384),
        ("d1", EdDSA, ed, evil_ed),
    ] {
        cases.push(Case {
            org: "jwks-file".into(),
            alg,
            key,
            kid: Some(kid),
            wrong,
        });
    }
    orgs.push(org("jwks-file", &["{ jwks_file: several.jwks.json }"], &[]));
    // the same set pinned to ES256
    orgs.push(org(
        "jwks-es256",
        &["{ jwks_file: several.jwks.json, alg: ES256 }"],
        &[],
    ));
    let set = jwks_doc(&[
        fx.jwk("rsa", "r1", None),
        fx.jwk("rsa2", "p1", Some("PS256")),
        fx.jwk("ec256", "e1", Some("ES256")),
        fx.jwk("ec384", "e2", Some("ES384")),
        fx.jwk("ed25519", "d1", Some("EdDSA")),
    ]);

    let g = Gate::builder(&config(&orgs))
        .key_fixtures()
        .file("hs256.secret", HS256_SECRET)
        .file("several.jwks.json", set.as_bytes())
        .env("KEYS_TEST_HS384", HS384_SECRET)
        .env("KEYS_TEST_P12_PASS", P12_PASSWORD)
        .start();

    for c in &cases {
        let what = format!("{} {:?} kid {:?}", c.org, c.alg, c.kid);
        let sub = format!("user-of-{}-{}", c.org, lower(c.alg));
        let t = sign(c.alg, c.key, c.kid, &claims(&sub));
        let echo = assert_bearer_ok(&g, &c.org, &t, &sub, &what);
        assert_eq!(
            app_header(&echo, "x-auth-request-email"),
            vec![format!("{sub}@example.test")],
            "{what}"
        );
        assert_eq!(
            app_header(&echo, "x-auth-request-groups"),
            vec!["dev,ops".to_string()],
            "{what}"
        );
        // the same token again (validated-session cache) still passes
        assert_bearer_ok(&g, &c.org, &t, &sub, &format!("{what} (again)"));
        let forged = sign(c.alg, c.wrong, c.kid, &claims(&sub));
        assert_bearer_refused(
            &g,
            &c.org,
            &forged,
            &format!("{what} signed by another key"),
        );
    }

    // each key pins its algorithm: same key material, another algorithm
    let pin = |org_name: &str, alg: Algorithm, key: &[u8], kid: Option<&str>| {
        let t = sign(alg, key, kid, &claims("pin"));
        assert_bearer_refused(&g, org_name, &t, &format!("{alg:?} on {org_name}"));
    };
    pin("rs256-pem", PS256, rsa, None);
    pin("rs256-pem", RS384, rsa, None);
    pin("ps256-cert", RS256, rsa, None);
    pin("rs512-cert", PS512, rsa, None);
    pin("es256-pem", ES384, ec384, None);
    pin("hs256", HS384, HS256_SECRET, None);
    pin("hs512", HS256, HS512_SECRET.as_bytes(), None);
    pin("rs256-p12", PS256, rsa, None);
    // JWKS: a kid is bound to its key and its algorithm
    pin("jwks-file", RS256, rsa2, Some("r1"));
    pin("jwks-file", PS256, rsa, Some("r1"));
    pin("jwks-file", RS256, rsa2, Some("p1"));
    pin("jwks-file", ES256, ec256, Some("e2"));
    pin("jwks-file", RS256, rsa, Some("nope"));
    // a pinned JWKS key only keeps the keys of its algorithm
    let t = sign(ES256, ec256, Some("e1"), &claims("pinned-ok"));
    assert_bearer_ok(&g, "jwks-es256", &t, "pinned-ok", "pinned JWKS, ES256 key");
    pin("jwks-es256", RS256, rsa, Some("r1"));
    pin("jwks-es256", EdDSA, ed, Some("d1"));
    // an org never accepts another org's key
    let t = sign(ES256, ec256, None, &claims("x"));
    assert_bearer_refused(&g, "rs256-pem", &t, "ES256 token on an RSA org");
    let t = sign(HS256, HS256_SECRET, None, &claims("x"));
    assert_bearer_refused(&g, "hs512", &t, "hs256's token on hs512");

    g.assert_logs_free_of(&[
        P12_PASSWORD,
        HS384_SECRET,
        HS512_SECRET,
        std::str::from_utf8(HS256_SECRET).unwrap(),
    ]);
}

#[test]
fn java_truststore_written_by_keytool() {
    let fx = fixtures();
    fx.require_keytool();
    let rsa = fx.get("rsa.key.pem");
    let rsa2 = fx.get("rsa2.key.pem");
    let cfg = config(&[
        org(
            "trust-idp",
            &["{ alg: RS256, pkcs12_file: rsa.trust.p12, password_file: p12.pass, alias: idp }"],
            &[],
        ),
        org(
            "trust-other",
            &["{ alg: RS256, pkcs12_file: rsa.trust.p12, password_file: p12.pass, alias: other }"],
            &[],
        ),
    ]);
    let g = Gate::builder(&cfg).key_fixtures().start();
    let by_rsa = sign(RS256, rsa, None, &claims("alice"));
    let by_rsa2 = sign(RS256, rsa2, None, &claims("bob"));
    assert_bearer_ok(&g, "trust-idp", &by_rsa, "alice", "alias idp, its key");
    assert_bearer_refused(
        &g,
        "trust-idp",
        &by_rsa2,
        "alias idp, the other entry's key",
    );
    assert_bearer_ok(&g, "trust-other", &by_rsa2, "bob", "alias other, its key");
    assert_bearer_refused(&g, "trust-other", &by_rsa, "alias other, idp's key");

    // two entries and no alias: ambiguous, refused with the field named
    let y = config(&[org(
        "acme",
        &["{ alg: RS256, pkcs12_file: rsa.trust.p12, password_file: p12.pass }"],
        &[],
    )]);
    assert_check_fails(
        "truststore with two entries, no alias",
        &y,
        &[],
        &[
            "organizations.acme.keys[0].pkcs12_file",
            "organizations.acme.keys[0].alias",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// ssogate mint --key
// ---------------------------------------------------------------------------------------------

fn mint(g: &Gate, org_name: &str, key: &str, extra: &[&str]) -> CmdOut {
    let key_path = g.dir.path().join(key);
    let mut args: Vec<String> = vec![
        "mint".into(),
        "--config".into(),
        g.config_path.display().to_string(),
        "--org".into(),
        org_name.into(),
        "--key".into(),
        key_path.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Cli::new(&args).output()
}

#[track_caller]
fn minted(out: &CmdOut, what: &str) -> String {
    assert_eq!(
        out.code,
        Some(0),
        "{what}: mint failed\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: mint prints one line: {:?}",
        out.stdout
    );
    lines[0].trim().to_string()
}

#[test]
fn mint_with_a_private_key_makes_tokens_the_org_accepts() {
    let cfg = config(&[
        org(
            "m-rsa",
            &[
                "{ alg: HS256, kid: h1, secret_file: hs256.secret }",
                "{ alg: RS256, kid: r1, public_key_file: rsa.pub.pem }",
            ],
            &["org_claim: orgId"],
        ),
        org(
            "m-ec",
            &["{ alg: ES256, public_key_file: ec256.pub.pem }"],
            &[],
        ),
        org(
            "m-ed",
            &["{ alg: EdDSA, kid: ed-1, public_key_file: ed25519.cert.pem }"],
            &[],
        ),
    ]);
    let g = Gate::builder(&cfg)
        .key_fixtures()
        .file("hs256.secret", HS256_SECRET)
        .start();

    // RSA: kid of the matching key, iat/exp/jti, org_claim, typed --claim values
    let out = mint(
        &g,
        "m-rsa",
        "rsa.key.pem",
        &[
            "--sub",
            "alice",
            "--claim",
            "email=alice@example.test",
            "--claim",
            r#"groups=["admins","devs"]"#,
        ],
    );
    let t = minted(&out, "m-rsa");
    let header = token_part(&t, 0);
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["kid"], "r1", "{header}");
    let p = token_part(&t, 1);
    let n = now();
    let iat = p["iat"].as_i64().expect("iat is a number");
    assert!((iat - n).abs() <= 5, "iat {iat} vs now {n}");
    assert_eq!(p["exp"].as_i64(), Some(iat + 300), "default ttl 5m: {p}");
    assert!(p["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti: {p}");
    assert_eq!(p["orgId"], "m-rsa", "org_claim: {p}");
    assert_eq!(p["sub"], "alice");
    assert_eq!(
        p["groups"],
        json!(["admins", "devs"]),
        "JSON claim keeps its type"
    );
    let echo = assert_bearer_ok(&g, "m-rsa", &t, "alice", "minted RS256");
    assert_eq!(
        app_header(&echo, "x-auth-request-email"),
        vec!["alice@example.test".to_string()]
    );
    assert_eq!(
        app_header(&echo, "x-auth-request-groups"),
        vec!["admins,devs".to_string()]
    );
    // a second mint has another jti
    let t2 = minted(
        &mint(&g, "m-rsa", "rsa.key.pem", &["--sub", "alice"]),
        "again",
    );
    assert_ne!(token_part(&t2, 1)["jti"], p["jti"], "jti must be random");

    // EC, with --ttl
    let t = minted(
        &mint(
            &g,
            "m-ec",
            "ec256.key.pem",
            &["--sub", "carol", "--ttl", "1m"],
        ),
        "m-ec",
    );
    assert_eq!(token_part(&t, 0)["alg"], "ES256");
    let p = token_part(&t, 1);
    assert_eq!(
        p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap(),
        60,
        "--ttl 1m: {p}"
    );
    assert_bearer_ok(&g, "m-ec", &t, "carol", "minted ES256");

    // Ed25519 (org key from a certificate)
    let t = minted(
        &mint(&g, "m-ed", "ed25519.key.pem", &["--sub", "dave"]),
        "m-ed",
    );
    assert_eq!(token_part(&t, 0)["alg"], "EdDSA");
    assert_eq!(token_part(&t, 0)["kid"], "ed-1");
    assert_bearer_ok(&g, "m-ed", &t, "dave", "minted EdDSA");

    // a private key of the right type that the org does not know: mint
    // refuses (it only prints tokens the org would accept), exit 1
    let out = mint(&g, "m-rsa", "evil-rsa.key.pem", &["--sub", "mallory"]);
    assert_eq!(out.code, Some(1), "m-rsa with an unknown RSA key: {out:?}");
    assert!(out.stdout.trim().is_empty(), "no token printed: {out:?}");
    assert!(
        out.stderr.contains("does not belong"),
        "names the mismatch: {out:?}"
    );

    // a private key of another type: exit 1, clear message, no panic
    for (org_name, key) in [
        ("m-rsa", "ec256.key.pem"),
        ("m-ec", "rsa.key.pem"),
        ("m-ed", "ec256.key.pem"),
    ] {
        let out = mint(&g, org_name, key, &["--sub", "x"]);
        assert_eq!(
            out.code,
            Some(1),
            "{org_name} with {key}: should fail\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(out.stdout.trim().is_empty(), "no token printed: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
        assert!(out.stderr.contains(org_name), "names the org: {out:?}");
    }
    // --key that does not exist
    let out = mint(&g, "m-ec", "missing.key.pem", &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("missing.key.pem"), "{out:?}");
}

/// SPEC 2: mint prints "a token the org would accept". When an org has several keys of the
/// same family (a rotation, or ES256 + ES384), the key that fits the private key must sign.
#[test]
fn mint_uses_the_org_key_that_matches_the_private_key() {
    let cfg = config(&[
        org(
            "m-ec2",
            &[
                "{ alg: ES256, kid: a, public_key_file: ec256.pub.pem }",
                "{ alg: ES384, kid: b, public_key_file: ec384.pub.pem }",
            ],
            &[],
        ),
        org(
            "m-rot",
            &[
                "{ alg: RS256, kid: old, public_key_file: rsa.pub.pem }",
                "{ alg: RS256, kid: new, public_key_file: rsa2.pub.pem }",
            ],
            &[],
        ),
    ]);
    let g = Gate::builder(&cfg).key_fixtures().start();
    let mut failures = Vec::new();
    for (org_name, key, sub) in [
        ("m-ec2", "ec256.key.pem", "p256-user"),
        ("m-ec2", "ec384.key.pem", "p384-user"),
        ("m-rot", "rsa.key.pem", "old-key-user"),
        ("m-rot", "rsa2.key.pem", "new-key-user"),
    ] {
        let out = mint(&g, org_name, key, &["--sub", sub]);
        if out.code != Some(0) {
            failures.push(format!(
                "{org_name} --key {key}: exit {:?}, stderr {:?}",
                out.code,
                out.stderr.trim()
            ));
            continue;
        }
        let t = out.stdout.trim();
        let r = bearer_to(&g, org_name, "/m", t);
        if r.status != 200 {
            failures.push(format!(
                "{org_name} --key {key}: minted header {} refused with {}",
                token_part(t, 0),
                r.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "mint must print a token the org accepts:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// check / startup refusals
// ---------------------------------------------------------------------------------------------

fn acme(keys: &[&str]) -> String {
    config(&[org("acme", keys, &[])])
}

/// Every key fixture, `extra` and `wrong.pass`.
fn files<'a>(extra: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut files = fixtures().all();
    files.extend_from_slice(extra);
    files.push(("wrong.pass", WRONG_P12_PASSWORD.as_bytes()));
    files
}

#[track_caller]
fn assert_clean_stderr(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: panicked:\n{stderr}"
    );
    for secret in [P12_PASSWORD, WRONG_P12_PASSWORD] {
        assert!(
            !stderr.contains(secret),
            "{what}: stderr shows a password:\n{stderr}"
        );
    }
}

#[track_caller]
fn assert_check_fails(what: &str, yaml: &str, extra: &[(&str, &[u8])], fields: &[&str]) {
    if let Some(failure) = check_failure(what, yaml, extra, fields) {
        panic!("{failure}");
    }
}

/// Why `check` did not refuse as expected (exit 1, a field of `fields` named, no panic, no
/// password shown), or None.
fn check_failure(
    what: &str,
    yaml: &str,
    extra: &[(&str, &[u8])],
    fields: &[&str],
) -> Option<String> {
    let out = check_refuses(what, yaml, &files(extra), fields);
    out.map(|out| assert_clean_stderr(what, &out.stderr)).err()
}

#[track_caller]
fn assert_check_ok(what: &str, yaml: &str) -> CmdOut {
    let out = check_accepts(what, yaml, &files(&[]));
    assert_clean_stderr(what, &out.stderr);
    out
}

const K0: &str = "organizations.acme.keys[0]";

#[test]
fn check_accepts_every_good_key_source() {
    for (what, key) in [
        (
            "modern p12",
            "{ alg: RS256, pkcs12_file: rsa.p12, password_file: p12.pass, alias: idp }",
        ),
        (
            "legacy p12, no alias",
            "{ alg: PS512, pkcs12_file: rsa.legacy.p12, password_file: p12.pass }",
        ),
        (
            "expired certificate, allowed",
            "{ alg: RS256, public_key_file: rsa.expired.cert.pem, allow_expired_certificate: true }",
        ),
        (
            "expired p12, allowed",
            "{ alg: RS256, pkcs12_file: rsa.expired.p12, password_file: p12.pass, allow_expired_certificate: true }",
        ),
        ("RSA PUBLIC KEY", "{ alg: RS384, public_key_file: rsa.pkcs1.pub.pem }"),
        ("EC certificate", "{ alg: ES384, public_key_file: ec384.cert.pem }"),
        ("Ed25519", "{ alg: EdDSA, public_key_file: ed25519.pub.pem }"),
    ] {
        assert_check_ok(what, &acme(&[key]));
    }
    // an inline password is allowed (with a warning) and never echoed
    let out = assert_check_ok(
        "inline password",
        &acme(&[&format!(
            "{{ alg: RS256, pkcs12_file: rsa.p12, password: \"{P12_PASSWORD}\" }}"
        )]),
    );
    assert!(
        out.stderr.contains("warning"),
        "check warns about an inline password: {}",
        out.stderr
    );
}

#[test]
fn check_refuses_unusable_keystores() {
    let p12 = format!("{K0}.pkcs12_file");
    let password_file = format!("{K0}.password_file");
    let password = format!("{K0}.password");
    let alias = format!("{K0}.alias");
    assert_check_fails(
        "missing keystore",
        &acme(&["{ alg: RS256, pkcs12_file: nope.p12, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "keystore path is a directory",
        &acme(&["{ alg: RS256, pkcs12_file: ., password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "not a keystore",
        &acme(&["{ alg: RS256, pkcs12_file: garbage.p12, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "a PEM certificate given as keystore",
        &acme(&["{ alg: RS256, pkcs12_file: rsa.cert.pem, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    for file in ["rsa.p12", "rsa.legacy.p12"] {
        assert_check_fails(
            &format!("{file}: wrong password from a file"),
            &acme(&[&format!(
                "{{ alg: RS256, pkcs12_file: {file}, password_file: wrong.pass }}"
            )]),
            &[],
            &[&p12, &password_file],
        );
        assert_check_fails(
            &format!("{file}: wrong inline password"),
            &acme(&[&format!(
                "{{ alg: RS256, pkcs12_file: {file}, password: \"{WRONG_P12_PASSWORD}\" }}"
            )]),
            &[],
            &[&p12, &password],
        );
        assert_check_fails(
            &format!("{file}: no password"),
            &acme(&[&format!("{{ alg: RS256, pkcs12_file: {file} }}")]),
            &[],
            &[&p12, &password],
        );
    }
    assert_check_fails(
        "password file missing",
        &acme(&["{ alg: RS256, pkcs12_file: rsa.p12, password_file: nope.pass }"]),
        &[],
        &[&password_file],
    );
    assert_check_fails(
        "missing alias",
        &acme(&["{ alg: RS256, pkcs12_file: rsa.p12, password_file: p12.pass, alias: nope }"]),
        &[],
        &[&p12, &alias],
    );
    assert_check_fails(
        "expired certificate in a keystore",
        &acme(&["{ alg: RS256, pkcs12_file: rsa.expired.p12, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "RSA 1024 in a keystore",
        &acme(&["{ alg: RS256, pkcs12_file: rsa1024.p12, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "RSA keystore with alg ES256",
        &acme(&["{ alg: ES256, pkcs12_file: rsa.p12, password_file: p12.pass }"]),
        &[],
        &[&p12],
    );
    assert_check_fails(
        "password without a keystore",
        &acme(&["{ alg: RS256, public_key_file: rsa.pub.pem, password_file: p12.pass }"]),
        &[],
        &[&password],
    );
}

#[test]
fn check_refuses_certificates_outside_their_validity() {
    let field = format!("{K0}.public_key_file");
    assert_check_fails(
        "expired certificate",
        &acme(&["{ alg: RS256, public_key_file: rsa.expired.cert.pem }"]),
        &[],
        &[&field],
    );
    assert_check_fails(
        "not yet valid certificate",
        &acme(&["{ alg: RS256, public_key_file: rsa.future.cert.pem }"]),
        &[],
        &[&field],
    );
    assert_check_fails(
        "expired certificate, allow_expired_certificate: false",
        &acme(&["{ alg: RS256, public_key_file: rsa.expired.cert.pem, allow_expired_certificate: false }"]),
        &[],
        &[&field],
    );
    // the positive control: the same key as a valid certificate
    assert_check_ok(
        "valid certificate",
        &acme(&["{ alg: RS256, public_key_file: rsa.cert.pem }"]),
    );
}

#[test]
fn check_refuses_a_key_that_does_not_fit_its_algorithm() {
    let file = format!("{K0}.public_key_file");
    let alg = format!("{K0}.alg");
    for (what, key) in [
        (
            "RSA key, ES256",
            "{ alg: ES256, public_key_file: rsa.pub.pem }",
        ),
        (
            "RSA certificate, EdDSA",
            "{ alg: EdDSA, public_key_file: rsa.cert.pem }",
        ),
        (
            "P-256 key, RS256",
            "{ alg: RS256, public_key_file: ec256.pub.pem }",
        ),
        (
            "P-256 key, PS256",
            "{ alg: PS256, public_key_file: ec256.cert.pem }",
        ),
        (
            "P-384 key, ES256",
            "{ alg: ES256, public_key_file: ec384.pub.pem }",
        ),
        (
            "P-256 key, ES384",
            "{ alg: ES384, public_key_file: ec256.pub.pem }",
        ),
        (
            "P-256 certificate, ES384",
            "{ alg: ES384, public_key_file: ec256.cert.pem }",
        ),
        (
            "P-256 key, EdDSA",
            "{ alg: EdDSA, public_key_file: ec256.pub.pem }",
        ),
        (
            "Ed25519 key, ES256",
            "{ alg: ES256, public_key_file: ed25519.pub.pem }",
        ),
        (
            "Ed25519 key, RS256",
            "{ alg: RS256, public_key_file: ed25519.cert.pem }",
        ),
        (
            "RSA PUBLIC KEY, ES256",
            "{ alg: ES256, public_key_file: rsa.pkcs1.pub.pem }",
        ),
        (
            "a private key only",
            "{ alg: RS256, public_key_file: rsa.key.pem }",
        ),
    ] {
        assert_check_fails(what, &acme(&[key]), &[], &[&file]);
    }
    assert_check_fails(
        "HS256 with a public key",
        &acme(&["{ alg: HS256, public_key_file: rsa.pub.pem }"]),
        &[],
        &[&alg, &file],
    );
    assert_check_fails(
        "RS256 with a secret",
        &acme(&["{ alg: RS256, secret_file: acme.secret }"]),
        &[],
        &[&alg],
    );
    assert_check_fails(
        "public key without alg",
        &acme(&["{ public_key_file: rsa.pub.pem }"]),
        &[],
        &[&alg],
    );
    // a JWKS with no key for the pinned algorithm
    let set = jwks_doc(&[fixtures().jwk("rsa", "r1", None)]);
    assert_check_fails(
        "JWKS pinned to ES256 with only RSA keys",
        &acme(&["{ jwks_file: set.json, alg: ES256 }"]),
        &[("set.json", set.as_bytes())],
        &[&format!("{K0}.jwks_file")],
    );
    // the index points at the offending entry
    assert_check_fails(
        "second key bad",
        &acme(&[
            "{ alg: HS256, secret_file: acme.secret }",
            "{ alg: ES256, public_key_file: rsa.pub.pem }",
        ]),
        &[],
        &["organizations.acme.keys[1].public_key_file"],
    );
}

#[test]
fn check_refuses_rsa_keys_below_2048_bits() {
    let file = format!("{K0}.public_key_file");
    let mut failures = Vec::new();
    for (what, key) in [
        (
            "PUBLIC KEY",
            "{ alg: RS256, public_key_file: rsa1024.pub.pem }",
        ),
        (
            "certificate",
            "{ alg: RS256, public_key_file: rsa1024.cert.pem }",
        ),
        (
            "PS256 certificate",
            "{ alg: PS256, public_key_file: rsa1024.cert.pem }",
        ),
        (
            "RSA PUBLIC KEY (PKCS#1)",
            "{ alg: RS256, public_key_file: rsa1024.pkcs1.pub.pem }",
        ),
    ] {
        failures.extend(check_failure(
            &format!("RSA 1024 {what}"),
            &acme(&[key]),
            &[],
            &[&file],
        ));
    }
    let set = jwks_doc(&[fixtures().jwk("rsa1024", "small", Some("RS256"))]);
    failures.extend(check_failure(
        "RSA 1024 in a JWKS",
        &acme(&["{ jwks_file: set.json }"]),
        &[("set.json", set.as_bytes())],
        &[&format!("{K0}.jwks_file")],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn startup_refuses_bad_keys_like_check() {
    for (what, key, field) in [
        (
            "wrong password",
            "{ alg: RS256, pkcs12_file: rsa.p12, password_file: wrong.pass, alias: idp }",
            "pkcs12_file",
        ),
        (
            "RSA 1024",
            "{ alg: RS256, public_key_file: rsa1024.pub.pem }",
            "public_key_file",
        ),
        (
            "expired certificate",
            "{ alg: RS256, public_key_file: rsa.expired.cert.pem }",
            "public_key_file",
        ),
        (
            "missing alias",
            "{ alg: RS256, pkcs12_file: rsa.legacy.p12, password_file: p12.pass, alias: nope }",
            "pkcs12_file",
        ),
    ] {
        let out = run_until_exit(&acme(&[key]), &files(&[]));
        assert_eq!(
            out.code,
            Some(1),
            "{what}: ssogate run should exit 1\nstderr: {}",
            out.stderr
        );
        let alt = field.replace("pkcs12_file", "password_file");
        let alt2 = field.replace("pkcs12_file", "alias");
        assert!(
            [field, alt.as_str(), alt2.as_str()]
                .iter()
                .any(|f| out.stderr.contains(&format!("{K0}.{f}"))),
            "{what}: the log should name {K0}.{field}:\n{}",
            out.stderr
        );
        assert_clean_stderr(what, &out.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Several keys, kid selection, rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn kid_selects_among_several_keys_and_rotation_removes_the_old_one() {
    let fx = fixtures();
    let rsa = fx.get("rsa.key.pem");
    let rsa2 = fx.get("rsa2.key.pem");
    let ec256 = fx.get("ec256.key.pem");
    let both = "      - { alg: RS256, kid: old, public_key_file: rsa.pub.pem }\n      - { alg: RS256, kid: new, public_key_file: rsa2.pub.pem }\n";
    let cfg = config(&[org(
        "rot",
        &[
            "{ alg: RS256, kid: old, public_key_file: rsa.pub.pem }",
            "{ alg: RS256, kid: new, public_key_file: rsa2.pub.pem }",
            "{ alg: ES256, public_key_file: ec256.pub.pem }",
        ],
        &[],
    )]);
    assert!(cfg.contains(both));
    let g = Gate::builder(&cfg).key_fixtures().start();

    // both present: both accepted
    let old = sign(RS256, rsa, Some("old"), &claims("old-user"));
    let new = sign(RS256, rsa2, Some("new"), &claims("new-user"));
    assert_bearer_ok(&g, "rot", &old, "old-user", "kid old");
    assert_bearer_ok(&g, "rot", &new, "new-user", "kid new");
    // kid selects: a kid names the one key that may verify
    let t = sign(RS256, rsa2, Some("old"), &claims("x"));
    assert_bearer_refused(&g, "rot", &t, "kid old, signed by new");
    let t = sign(RS256, rsa, Some("new"), &claims("x"));
    assert_bearer_refused(&g, "rot", &t, "kid new, signed by old");
    let t = sign(RS256, rsa, Some("other"), &claims("x"));
    assert_bearer_refused(&g, "rot", &t, "unknown kid (all RSA keys have kids)");
    // without a kid every key of the token's algorithm is a candidate
    let t = sign(RS256, rsa2, None, &claims("nokid-new"));
    assert_bearer_ok(&g, "rot", &t, "nokid-new", "no kid, new key");
    let t = sign(RS256, rsa, None, &claims("nokid-old"));
    assert_bearer_ok(&g, "rot", &t, "nokid-old", "no kid, old key");
    // a kid-less key is a candidate for any kid of its algorithm
    let t = sign(ES256, ec256, Some("whatever"), &claims("ec-user"));
    assert_bearer_ok(&g, "rot", &t, "ec-user", "kid-less ES256 key, any kid");

    // rotation: the old key leaves the config (hot reload)
    let before = g.generation();
    let yaml = std::fs::read_to_string(&g.config_path).unwrap();
    assert!(yaml.contains(both));
    let rotated = yaml.replace(
        both,
        "      - { alg: RS256, kid: new, public_key_file: rsa2.pub.pem }\n",
    );
    std::fs::write(&g.config_path, rotated).unwrap();
    assert!(
        g.wait_generation(before + 1.0, Duration::from_secs(5)) > before,
        "config not reloaded within 5 s; logs:\n{}",
        g.log_tail()
    );
    // the old key's tokens, even one validated (and cached) before, are refused at once
    assert_bearer_refused(&g, "rot", &old, "kid old after rotation (cached before)");
    let t = sign(RS256, rsa, Some("old"), &claims("late"));
    assert_bearer_refused(&g, "rot", &t, "fresh kid old token after rotation");
    let t = sign(RS256, rsa, None, &claims("late"));
    assert_bearer_refused(&g, "rot", &t, "old key without kid after rotation");
    // the new key keeps working
    assert_bearer_ok(&g, "rot", &new, "new-user", "kid new after rotation");
    let t = sign(RS256, rsa2, Some("new"), &claims("after"));
    assert_bearer_ok(&g, "rot", &t, "after", "fresh kid new after rotation");
}
