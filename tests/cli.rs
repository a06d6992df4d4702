//! The command line (SPEC 2): where the config comes from, exit codes,
//! `--version`/`--help`, `mint` for HMAC orgs, text logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::path::Path;
use std::process::Command;

use common::*;

fn ssogate(args: &[&str], dir: &Path) -> CmdOut {
    Cli::new(args).dir(dir).output()
}

/// A directory holding a valid config.yaml (and its secrets).
fn valid_dir() -> tempfile::TempDir {
    config_dir(BASE, [free_port(), free_port(), 9], &[])
}

#[test]
fn version_and_help_exit_0_bad_usage_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = ssogate(&["--version"], dir.path());
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")));
    let out = ssogate(&["--help"], dir.path());
    assert_eq!(out.code, Some(0));
    let help = &out.stdout;
    for word in ["run", "check", "mint", "--config"] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }
    for bad in [
        &["--no-such-flag"][..],
        &["frobnicate"],
        &["mint", "--config", "x.yaml"],
    ] {
        let out = ssogate(bad, dir.path());
        assert_eq!(out.code, Some(1), "{bad:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{bad:?} explains itself");
    }
}

#[test]
fn the_config_defaults_to_ssogate_config_then_config_yaml() {
    let good = valid_dir();
    // ./config.yaml in the working directory
    let out = ssogate(&["check"], good.path());
    assert_eq!(out.code, Some(0), "{out:?}");
    // $SSOGATE_CONFIG wins over ./config.yaml
    let elsewhere = tempfile::tempdir().unwrap();
    let config = good.path().join("config.yaml");
    let out = Cli::new(&["check"])
        .dir(elsewhere.path())
        .env("SSOGATE_CONFIG", config.to_str())
        .output();
    assert_eq!(out.code, Some(0), "{out:?}");
    // neither: a clear error naming the file, exit 1
    let out = ssogate(&["check"], elsewhere.path());
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("config.yaml"), "{out:?}");
}

#[test]
fn mint_signs_with_the_orgs_hmac_key() {
    let dir = valid_dir();
    let out = ssogate(
        &[
            "mint",
            "--config",
            "config.yaml",
            "--org",
            "acme",
            "--sub",
            "zoe",
            "--claim",
            "groups=[\"a\",\"b\"]",
            "--claim",
            "email=zoe@acme.example",
            "--ttl",
            "2m",
        ],
        dir.path(),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let token = out.stdout;
    assert_eq!(token.lines().count(), 1, "one line on stdout");
    let token = token.trim();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_owned()].into();
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(ACME_SECRET),
        &validation,
    )
    .expect("signed with acme's secret");
    let c = data.claims;
    assert_eq!(c["sub"], "zoe");
    assert_eq!(c["orgId"], "acme", "the org_claim is added");
    assert_eq!(
        c["groups"],
        serde_json::json!(["a", "b"]),
        "JSON values keep their type"
    );
    assert_eq!(c["email"], "zoe@acme.example");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));

    let out = ssogate(
        &["mint", "--config", "config.yaml", "--org", "nobody"],
        dir.path(),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("nobody"));
}

#[test]
fn text_logs_for_humans() {
    let dir = valid_dir();
    let child = Cli::new(&["run", "--log-format", "text", "--config", "config.yaml"])
        .dir(dir.path())
        .spawn();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("ssogate started"), "{text}");
    assert!(!first.trim_start().starts_with('{'), "not JSON: {first}");
    assert!(
        !first.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}
