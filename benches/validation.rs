//! Micro-benchmarks of the work ssogate does per request, through the real
//! library path: a config parsed from YAML with PEM key files (made by
//! `openssl` in a temporary directory), tokens minted with `jsonwebtoken`.
//!
//!   cargo bench --bench validation            # measure
//!   cargo bench --bench validation -- rs256   # only what matches a filter
//!   cargo test --benches                      # run each once (CI smoke test)
//!
//! Groups:
//!   verify/<ALG>   `token::verify` of a Bearer-delivered token never seen
//!                  before (a cache miss: signature + every claim check)
//!   cache/*        the validated-session cache: a hit, and the SHA-256
//!                  digest that keys it (paid on every authenticated request)
//!   session/*      opening a sealed session cookie (AES-256-GCM + JSON),
//!                  what a cookie costs when the cache misses
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use ssogate::cache::{Cached, Credential, SessionCache};
use ssogate::config::Config;
use ssogate::session::{read_session, session_cookie, Identity};
use ssogate::token::{verify, Delivery, Policy};

const HMAC_SECRET: &str = "bench-hmac-secret-0123456789abcdefghijklmnop";
const SESSION_SECRET: &str = "bench-session-secret-0123456789abcdefghijklm";

/// One org per algorithm, each with exactly one key, so a verification
/// tries exactly one candidate.
struct Case {
    org: &'static str,
    alg: Algorithm,
    /// `openssl genpkey` arguments; `None` for the HMAC org.
    genpkey: Option<&'static [&'static str]>,
}

const CASES: &[Case] = &[
    Case {
        org: "hs256",
        alg: Algorithm::HS256,
        genpkey: None,
    },
    Case {
        org: "rs256",
        alg: Algorithm::RS256,
        genpkey: Some(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    },
    Case {
        org: "ps256",
        alg: Algorithm::PS256,
        genpkey: Some(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    },
    Case {
        org: "es256",
        alg: Algorithm::ES256,
        genpkey: Some(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    },
    Case {
        org: "es384",
        alg: Algorithm::ES384,
        genpkey: Some(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
    },
    Case {
        org: "eddsa",
        alg: Algorithm::EdDSA,
        genpkey: Some(&["-algorithm", "ED25519"]),
    },
];

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Fixture {
    config: Config,
    /// (org, token) per case, in `CASES` order.
    tokens: Vec<(&'static str, String)>,
    now: i64,
    _dir: tempfile::TempDir,
}

/// Writes the key pairs, parses the config the way `ssogate` loads it, and
/// mints one valid token per org.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut orgs = String::new();
    let mut signers = Vec::new();
    for case in CASES {
        let Some(genpkey) = case.genpkey else {
            orgs.push_str(&format!(
                "  {}:\n    keys: [{{alg: {:?}, secret: '{HMAC_SECRET}'}}]\n",
                case.org, case.alg
            ));
            signers.push(EncodingKey::from_secret(HMAC_SECRET.as_bytes()));
            continue;
        };
        let private = dir.path().join(format!("{}.key", case.org));
        let public = dir.path().join(format!("{}.pub.pem", case.org));
        let private_s = private.to_str().unwrap();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        args.extend_from_slice(&["-out", private_s]);
        openssl(&args);
        openssl(&[
            "pkey",
            "-in",
            private_s,
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        // Relative: resolved against the config file's directory.
        orgs.push_str(&format!(
            "  {}:\n    keys: [{{alg: {:?}, public_key_file: {}.pub.pem}}]\n",
            case.org, case.alg, case.org
        ));
        let pem = std::fs::read(&private).unwrap();
        signers.push(match case.alg {
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
            other => unreachable!("{other:?}"),
        });
    }
    let yaml = format!(
        "listen: 127.0.0.1:18080\nadmin_listen: 127.0.0.1:19090\nupstream: http://127.0.0.1:1\n\
         session:\n  secret: '{SESSION_SECRET}'\n  secure: false\n\
         organizations:\n{orgs}"
    );
    let config = ssogate::config::parse(&yaml, &dir.path().join("config.yaml"))
        .unwrap_or_else(|e| panic!("bench config refused: {e}\n{yaml}"));

    let now = ssogate::clock::now();
    let claims = json!({"sub": "alice@example.com", "iat": now, "exp": now + 3600});
    let tokens = CASES
        .iter()
        .zip(&signers)
        .map(|(case, key)| {
            let token = jsonwebtoken::encode(&Header::new(case.alg), &claims, key).unwrap();
            (case.org, token)
        })
        .collect();
    Fixture {
        config,
        tokens,
        now,
        _dir: dir,
    }
}

fn org<'a>(config: &'a Config, name: &str) -> &'a ssogate::config::Org {
    config.org(name).unwrap_or_else(|| panic!("no org {name}"))
}

fn bench_verify(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("verify");
    for (case, (name, token)) in CASES.iter().zip(&f.tokens) {
        let org = org(&f.config, name);
        // Never time the error path: every token must verify.
        let policy = Policy::new(org, &f.config, f.now, Delivery::Header);
        let verified = verify(token, &policy);
        assert!(verified.is_ok(), "{name}: {verified:?}");
        group.bench_function(format!("{:?}", case.alg), |b| {
            b.iter(|| verify(black_box(token), black_box(&policy)))
        });
    }
    group.finish();
}

fn identity(now: i64) -> Identity {
    Identity {
        org: "hs256".into(),
        principal: "alice@example.com".into(),
        claims: serde_json::from_value(json!({"email": "alice@example.com", "groups": ["a", "b"]}))
            .unwrap(),
        issued_at: now,
        expires_at: now + 900,
        session_id: ssogate::session::random_id(),
    }
}

fn bench_cache(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("cache");
    let cache = SessionCache::new(100_000);
    let token = &f.tokens[1].1; // an RS256 token, as a Bearer credential
    let key = SessionCache::key(Credential::Bearer, token);
    cache.insert(
        key,
        Cached {
            identity: Arc::new(identity(f.now)),
            until: f.now + 900,
            keys_version: 0,
        },
    );
    assert!(cache.get(&key, f.now).is_some(), "the entry must be a hit");
    group.bench_function("hit", |b| b.iter(|| cache.get(black_box(&key), f.now)));
    group.bench_function("key_sha256_bearer", |b| {
        b.iter(|| SessionCache::key(Credential::Bearer, black_box(token)))
    });
    group.bench_function("hit_with_key", |b| {
        b.iter(|| {
            cache.get(
                &SessionCache::key(Credential::Bearer, black_box(token)),
                f.now,
            )
        })
    });
    group.finish();
}

fn bench_session(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("session");
    let settings = &f.config.session;
    let set_cookie = session_cookie(settings, &identity(f.now)).unwrap();
    let pair = set_cookie.split(';').next().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, pair.parse().unwrap());
    assert_eq!(
        read_session(settings, &headers, f.now)
            .map(|i| i.principal)
            .as_deref(),
        Some("alice@example.com"),
        "the sealed cookie must open"
    );
    group.bench_function("open_cookie", |b| {
        b.iter(|| read_session(settings, black_box(&headers), f.now))
    });
    group.bench_function("seal_cookie", |b| {
        let id = identity(f.now);
        b.iter(|| session_cookie(settings, black_box(&id)))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    bench_verify(c, &f);
    bench_cache(c, &f);
    bench_session(c, &f);
}

fn short() -> Criterion {
    // The machine is small and shared: short runs, enough samples for a median.
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
}

criterion_group! {
    name = validation;
    config = short();
    targets = benches
}
criterion_main!(validation);
