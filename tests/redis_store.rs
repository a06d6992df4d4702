//! `replay_store: redis://` (SPEC 3, 9): spent tokens, one-time codes and
//! logout revocations are shared by every replica, against a real
//! redis-server started for the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::json;

/// A throwaway redis-server on a loopback port, no persistence.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/install-deps.sh redis-server)");
        let up = poll(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "redis-server did not start");
        Redis { port, child }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn replica(redis: &Redis) -> Gate {
    let template = BASE.replace(
        "default_org: acme",
        &format!(
            "default_org: acme\nreplay_store: redis://127.0.0.1:{}/0\n",
            redis.port
        ),
    )
    .replace(
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    code_flow: { client_id: acme-reader, client_secret: acme-client-secret }\n",
    );
    Gate::start(&template)
}

fn acme_token(sub: &str, jti: &str) -> String {
    hs256(
        ACME_SECRET,
        &claims_with(sub, json!({"orgId": "acme", "jti": jti})),
    )
}

#[test]
fn a_token_spent_on_one_replica_is_refused_by_another() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis), replica(&redis));
    let token = acme_token("alice", &random_id());
    let first = a.jwt(&token).send();
    assert_eq!(first.status, 302, "{first:#?}");
    let replay = b.jwt(&token).send();
    assert_eq!(
        replay.status, 401,
        "replica B must see A's jti: {replay:#?}"
    );
    assert!(!replay.sets_cookie(PLAIN_COOKIE));
}

#[test]
fn logout_on_one_replica_revokes_the_session_everywhere() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis), replica(&redis));
    let jar = a.login_jwt(None, &acme_token("bob", &random_id()), PLAIN_COOKIE);
    // any replica with the same session secret accepts the cookie
    assert_eq!(b.api("/_sso/whoami").jar(&jar).send().status, 200);

    let out = a.get("/_sso/logout").jar(&jar).send();
    assert_eq!(out.status, 302);
    assert_eq!(
        a.api("/_sso/whoami").jar(&jar).send().status,
        401,
        "revoked at once where it was revoked"
    );
    // elsewhere within the revocation-check cache (5 s)
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let r = b.api("/_sso/whoami").jar(&jar).send();
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica B still accepts a revoked session"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(b.get("/app").jar(&jar).send().status, 401);
}

#[test]
fn a_code_is_redeemed_once_across_replicas() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis), replica(&redis));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("acme-reader:acme-client-secret")
    );
    let r = a
        .post("/_sso/code")
        .header("Authorization", &auth)
        .body(
            json!({"emailId": "carol@acme.example"})
                .to_string()
                .as_bytes(),
        )
        .send();
    assert_eq!(r.status, 200, "{r:#?}");
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let redeemed = b.nav(&format!("/_sso/authorize?code={code}")).send();
    assert_eq!(redeemed.status, 302, "{redeemed:#?}");
    let again = a.nav(&format!("/_sso/authorize?code={code}")).send();
    assert_eq!(again.status, 401, "spent on B, refused on A: {again:#?}");
}

#[test]
fn redis_down_refuses_one_time_logins_but_keeps_sessions() {
    let mut redis = Redis::start();
    let a = replica(&redis);
    let jar = a.login_jwt(None, &acme_token("dave", &random_id()), PLAIN_COOKIE);
    redis.stop();

    // a jti cannot be spent: no session, a clear 503, no crash
    let r = a.jwt(&acme_token("dave", &random_id())).send();
    assert_eq!(r.status, 503, "{r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE));
    // existing sessions keep working (revocation checks fail open)
    let app = a.get("/app").jar(&jar).send();
    assert_eq!(app.status, 200, "{app:#?}");
    assert_eq!(app_header(&app.app(), "x-auth-request-user"), vec!["dave"]);
    assert_eq!(a.admin("/healthz").status, 200);
}
