//! Credentials in bulk for the load benchmarks (`bench/run.sh`), one per
//! line on stdout, made on every core:
//!
//!   bench-tokens jwt ALG KEY COUNT TTL_SECS      # ALG HS256 (KEY: secret file) or RS256 (KEY: private PEM);
//!                                                # a negative TTL makes expired tokens
//!   bench-tokens cookies CONFIG ORG COUNT        # session cookies (name=value) as /_sso/jwt would set them
//!
//! Every credential is distinct (its own `sub` and `jti`), so that none is
//! a cache hit for another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench-tokens jwt ALG KEY COUNT TTL_SECS | cookies CONFIG ORG COUNT";
    let lines: Vec<String> = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["jwt", alg, key, count, ttl] => jwts(alg, Path::new(key), parse(count), parse(ttl)),
        ["cookies", config, org, count] => cookies(Path::new(config), org, parse(count)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
}

fn parse<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

/// `count` items made by `make(i)`, split over the machine's cores.
fn in_parallel(count: usize, make: impl Fn(usize) -> String + Sync) -> Vec<String> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let make = &make;
                scope.spawn(move || {
                    (w * per..((w + 1) * per).min(count))
                        .map(make)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn now() -> i64 {
    ssogate::clock::now()
}

fn jwts(alg: &str, key: &Path, count: usize, ttl: i64) -> Vec<String> {
    let material = std::fs::read(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    let (alg, key) = match alg {
        "HS256" => {
            let secret = material.strip_suffix(b"\n").unwrap_or(&material);
            (Algorithm::HS256, EncodingKey::from_secret(secret))
        }
        "RS256" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&material).expect("an RSA private key in PEM"),
        ),
        other => panic!("unsupported algorithm {other}"),
    };
    let header = Header::new(alg);
    let now = now();
    in_parallel(count, |i| {
        let claims = json!({
            "sub": format!("user{i}"),
            "email": format!("user{i}@bench.example"),
            "jti": format!("bench-{now}-{i}"),
            "iat": now,
            "exp": now + ttl,
        });
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    })
}

fn cookies(config: &Path, org: &str, count: usize) -> Vec<String> {
    let config = ssogate::config::load(config).unwrap_or_else(|e| panic!("{e}"));
    let settings = &config.session;
    let now = now();
    in_parallel(count, |i| {
        let identity = ssogate::session::Identity {
            org: org.to_owned(),
            principal: format!("user{i}"),
            claims: ssogate::session::Claims::from_iter([(
                "email".to_owned(),
                json!(format!("user{i}@bench.example")),
            )]),
            issued_at: now,
            expires_at: now + 3600,
            session_id: ssogate::session::random_id(),
        };
        let set_cookie = ssogate::session::session_cookie(settings, &identity).unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    })
}
