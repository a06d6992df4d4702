//! `ssogate check` and config validation (SPEC 2, 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::time::Duration;

const ACME_KEYS: &str = "keys: [{ alg: HS256, secret_file: acme.secret }]";

fn replace_once(base: &str, from: &str, to: &str) -> String {
    assert_eq!(
        base.matches(from).count(),
        1,
        "{from:?} must occur once in the config"
    );
    base.replace(from, to)
}

#[track_caller]
fn assert_fails(what: &str, yaml: &str, extra: &[(&str, &[u8])], paths: &[&str]) {
    if let Err(failure) = check_refuses(what, yaml, extra, paths) {
        panic!("{failure}");
    }
}

#[test]
fn base_config_is_valid() {
    check_accepts("base", BASE, &[]);
}

#[test]
fn unknown_field() {
    let y = replace_once(
        BASE,
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    keyz: 1\n",
    );
    assert_fails("unknown org field", &y, &[], &["organizations.acme.keyz"]);
    let y = replace_once(
        BASE,
        "  secure: false\n",
        "  secure: false\n  secrue: true\n",
    );
    assert_fails("unknown session field", &y, &[], &["session.secrue"]);
    let y = format!("{BASE}listne: 0.0.0.0:1\n");
    assert_fails("unknown top-level field", &y, &[], &["listne"]);
}

#[test]
fn org_without_keys() {
    let y = replace_once(BASE, ACME_KEYS, "keys: []");
    assert_fails("empty keys", &y, &[], &["organizations.acme.keys"]);
    let y = replace_once(BASE, &format!("    {ACME_KEYS}\n"), "");
    assert_fails("no keys field", &y, &[], &["organizations.acme"]);
}

#[test]
fn short_secrets() {
    let s31 = [b'a'; 31];
    assert_fails(
        "31-byte HS secret",
        BASE,
        &[("acme.secret", &s31)],
        &["organizations.acme.keys[0].secret_file"],
    );
    // the trailing newline does not count
    let mut s31nl = s31.to_vec();
    s31nl.push(b'\n');
    assert_fails(
        "31-byte HS secret + newline",
        BASE,
        &[("acme.secret", &s31nl)],
        &["organizations.acme.keys[0].secret_file"],
    );
    let mut s32crlf = [b'b'; 32].to_vec();
    s32crlf.extend_from_slice(b"\r\n");
    check_accepts(
        "32-byte HS secret + CRLF",
        BASE,
        &[("acme.secret", &s32crlf)],
    );

    assert_fails(
        "31-byte session secret",
        BASE,
        &[("session.key", &s31)],
        &["session.secret_file"],
    );
    assert_fails(
        "empty session secret",
        BASE,
        &[("session.key", b"")],
        &["session.secret_file"],
    );
    check_accepts(
        "32-byte session secret",
        BASE,
        &[("session.key", &[b'c'; 32])],
    );
}

#[test]
fn missing_key_file() {
    let y = replace_once(
        BASE,
        "secret_file: acme.secret",
        "secret_file: does-not-exist.secret",
    );
    assert_fails(
        "missing key file",
        &y,
        &[],
        &["organizations.acme.keys[0].secret_file"],
    );
    let y = replace_once(BASE, "secret_file: session.key", "secret_file: nope.key");
    assert_fails("missing session file", &y, &[], &["session.secret_file"]);
}

#[test]
fn alg_none_is_refused() {
    for alg in ["none", "None"] {
        let y = replace_once(
            BASE,
            "alg: HS256, secret_file: acme.secret",
            &format!("alg: {alg}, secret_file: acme.secret"),
        );
        assert_fails(
            &format!("alg {alg}"),
            &y,
            &[],
            &["organizations.acme.keys[0]"],
        );
    }
}

#[test]
fn login_url_must_be_https_except_localhost() {
    let y = replace_once(
        BASE,
        "login_url: https://portal.acme.example/sso/dash?x=1",
        "login_url: http://portal.example",
    );
    assert_fails("http login_url", &y, &[], &["organizations.acme.login_url"]);
    let y = replace_once(
        BASE,
        "login_url: https://portal.acme.example/sso/dash?x=1",
        "login_url: /relative/login",
    );
    assert_fails(
        "relative login_url",
        &y,
        &[],
        &["organizations.acme.login_url"],
    );
    for ok in ["http://localhost:8000/login", "http://127.0.0.1:8000/login"] {
        let y = replace_once(
            BASE,
            "login_url: https://portal.acme.example/sso/dash?x=1",
            &format!("login_url: {ok}"),
        );
        check_accepts(ok, &y, &[]);
    }
}

#[test]
fn allowed_origins_must_be_https() {
    let y = replace_once(
        BASE,
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    allowed_origins: [ftp://x]\n",
    );
    assert_fails(
        "ftp origin",
        &y,
        &[],
        &["organizations.acme.allowed_origins[0]"],
    );
    let y = replace_once(
        BASE,
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    allowed_origins: [https://portal.acme.example, http://evil.example]\n",
    );
    assert_fails(
        "http origin",
        &y,
        &[],
        &["organizations.acme.allowed_origins[1]"],
    );
    let y = replace_once(
        BASE,
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    allowed_origins: [https://portal.acme.example]\n",
    );
    check_accepts("https origin", &y, &[]);
}

#[test]
fn duplicate_hosts_across_orgs() {
    for dup in ["acme.test", "ACME.test"] {
        let y = replace_once(
            BASE,
            "hosts: [globex.test]",
            &format!("hosts: [globex.test, {dup}]"),
        );
        assert_fails(
            &format!("duplicate host {dup}"),
            &y,
            &[],
            &[
                "organizations.globex.hosts[1]",
                "organizations.acme.hosts[0]",
            ],
        );
    }
}

#[test]
fn inline_secret_is_allowed() {
    let y = replace_once(
        BASE,
        "secret_file: acme.secret",
        "secret: \"inline-hs256-secret-0123456789abcdefghij\"",
    );
    check_accepts("inline secret", &y, &[]);
    // ... but exactly one form per secret
    let y = replace_once(
        BASE,
        "secret_file: acme.secret",
        "secret_file: acme.secret, secret: \"inline-hs256-secret-0123456789abcdefghij\"",
    );
    assert_fails("two forms", &y, &[], &["organizations.acme.keys[0]"]);
    // an inline secret that is too short is still refused
    let y = replace_once(BASE, "secret_file: acme.secret", "secret: \"short\"");
    assert_fails(
        "short inline",
        &y,
        &[],
        &["organizations.acme.keys[0].secret"],
    );
}

#[test]
fn secret_env_form() {
    // X_env reads the variable at load time
    let y = replace_once(
        BASE,
        "secret_file: acme.secret",
        "secret_env: SSOGATE_TEST_ACME_SECRET_VAR",
    );
    let dir = config_dir(&y, [1, 2, 3], &[]);
    let path = dir.path().join("config.yaml");
    let run = |val: Option<&str>| {
        Cli::new(&["check", "--config", path.to_str().unwrap()])
            .env("SSOGATE_TEST_ACME_SECRET_VAR", val)
            .output()
    };
    let out = run(Some("env-hs256-secret-0123456789abcdefghijklm"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run(None);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("organizations.acme.keys[0].secret_env"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_durations() {
    let y = replace_once(BASE, "  secure: false\n", "  secure: false\n  ttl: 0s\n");
    assert_fails("ttl 0s", &y, &[], &["session.ttl"]);
    let y = replace_once(BASE, "  secure: false\n", "  secure: false\n  ttl: soon\n");
    assert_fails("ttl soon", &y, &[], &["session.ttl"]);
}

#[test]
fn run_with_bad_config_exits_1_quickly() {
    let dir = config_dir(
        &replace_once(BASE, ACME_KEYS, "keys: []"),
        free_ports(),
        &[],
    );
    let path = dir.path().join("config.yaml");
    let out =
        Cli::new(&["run", "--config", path.to_str().unwrap()]).until_exit(Duration::from_secs(10));
    assert_eq!(
        out.code,
        Some(1),
        "`run` with a bad config should exit 1 within 10 s; stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("organizations.acme.keys"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn missing_config_file_exits_1() {
    let out = Cli::new(&["check", "--config", "/nonexistent/ssogate/config.yaml"]).output();
    assert_eq!(out.code, Some(1));
    assert!(!out.stderr.is_empty());
}
