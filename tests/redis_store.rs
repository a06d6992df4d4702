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
        Redis {
            port,
            child: Redis::spawn(port),
        }
    }

    fn spawn(port: u16) -> Child {
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
        child
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new redis-server on the same port, empty (as after a crash without persistence).
    fn restart(&mut self) {
        self.stop();
        self.child = Redis::spawn(self.port);
    }

    /// SIGSTOP / SIGCONT: Redis still accepts connections but answers nothing, like a host
    /// behind a partition.
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} redis-server failed");
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

/// A token without `jti`: it needs no replay store to sign in.
fn acme_token_without_jti(sub: &str) -> String {
    hs256(
        ACME_SECRET,
        &claims_with(sub, json!({"orgId": "acme", "jti": null})),
    )
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("acme-reader:acme-client-secret")
    )
}

/// `POST /_sso/code` for `email`: the response.
fn issue_code(g: &Gate, email: &str) -> Resp {
    g.post("/_sso/code")
        .header("Authorization", &basic_auth())
        .body(json!({ "emailId": email }).to_string().as_bytes())
        .send()
}

/// `ssogate_replay_store_errors_total{op}`.
fn store_errors(g: &Gate, op: &str) -> f64 {
    g.metrics()
        .value("ssogate_replay_store_errors_total", &[("op", op)])
}

/// Polls (up to `timeout`) until `f` holds; panics with `what` otherwise.
fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let ok = poll(timeout, || f().then_some(()));
    assert!(ok.is_some(), "not within {timeout:?}: {what}");
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
    let r = issue_code(&a, "carol@acme.example");
    assert_eq!(r.status, 200, "{r:#?}");
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let redeemed = b.nav(&format!("/_sso/authorize?code={code}")).send();
    assert_eq!(redeemed.status, 302, "{redeemed:#?}");
    let again = a.nav(&format!("/_sso/authorize?code={code}")).send();
    assert_eq!(again.status, 401, "spent on B, refused on A: {again:#?}");
}

#[test]
fn logout_holds_at_once_on_the_replica_that_served_it() {
    let redis = Redis::start();
    let a = replica(&redis);
    for i in 0..5 {
        let jar = a.login_jwt(
            None,
            &acme_token(&format!("erin{i}"), &random_id()),
            PLAIN_COOKIE,
        );
        // the session has just been checked and found not revoked...
        assert_eq!(a.get("/app").jar(&jar).send().status, 200);
        assert_eq!(a.api("/_sso/whoami").jar(&jar).send().status, 200);
        let out = a.get("/_sso/logout").jar(&jar).send();
        assert_eq!(out.status, 302, "{out:#?}");
        // ...and is refused by the very next request, not seconds later
        let app = a.get("/app").jar(&jar).send();
        assert_eq!(
            app.status, 401,
            "logged-out cookie accepted at once: {app:#?}"
        );
        assert_eq!(a.api("/_sso/whoami").jar(&jar).send().status, 401);
    }
}

#[test]
fn redis_down_fails_closed_for_one_time_logins_and_open_for_sessions() {
    let mut redis = Redis::start();
    let (a, b) = (replica(&redis), replica(&redis));
    let kept = a.login_jwt(None, &acme_token("dave", &random_id()), PLAIN_COOKIE);
    let ended = a.login_jwt(None, &acme_token("frank", &random_id()), PLAIN_COOKIE);
    assert_eq!(b.get("/app").jar(&ended).send().status, 200);
    let scrape = a.metrics();
    let before = ["spend", "revoke", "check"]
        .map(|op| scrape.get("ssogate_replay_store_errors_total", &[("op", op)]));
    assert_eq!(before, [Some(0.0); 3], "every op exported, none failed yet");
    redis.stop();

    // a jti cannot be spent: a clear 503, no session, no crash
    let r = a.jwt(&acme_token("dave", &random_id())).send();
    assert_eq!(r.status, 503, "{r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    // a token without jti needs no store
    let r = a.jwt(&acme_token_without_jti("gina")).send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert!(r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    let mut gina = Jar::new();
    gina.absorb(&r);
    assert_eq!(a.get("/app").jar(&gina).send().status, 200);
    // codes are still issued, but redeeming one must spend it: 503, no session
    let r = issue_code(&a, "hank@acme.example");
    assert_eq!(r.status, 200, "{r:#?}");
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let r = a.nav(&format!("/_sso/authorize?code={code}")).send();
    assert_eq!(r.status, 503, "{r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE), "{r:#?}");
    // existing sessions keep working on both replicas
    let app = a.get("/app").jar(&kept).send();
    assert_eq!(app.status, 200, "{app:#?}");
    assert_eq!(app_header(&app.app(), "x-auth-request-user"), vec!["dave"]);
    assert_eq!(b.get("/app").jar(&kept).send().status, 200);
    // a logout answers as usual and holds at once where it was made; the other replica
    // cannot know yet (fail open)
    let out = a.get("/_sso/logout").jar(&ended).send();
    assert_eq!(out.status, 302, "{out:#?}");
    assert_eq!(out.location(), ACME_LOGOUT);
    let cleared = out
        .set_cookie(PLAIN_COOKIE)
        .expect("the logout clears the cookie");
    assert!(cleared.is_removal(), "{out:#?}");
    assert_eq!(a.get("/app").jar(&ended).send().status, 401);
    assert_eq!(b.get("/app").jar(&ended).send().status, 200);
    assert_eq!(a.admin("/healthz").status, 200);
    // every failed operation is counted under its own op
    assert!(store_errors(&a, "spend") >= 2.0, "{}", a.metrics().text);
    eventually(
        Duration::from_secs(10),
        "revoke and check errors counted",
        || store_errors(&a, "revoke") >= 1.0 && store_errors(&a, "check") >= 1.0,
    );
    eventually(Duration::from_secs(10), "B's check errors counted", || {
        store_errors(&b, "check") >= 1.0
    });
    assert_eq!(store_errors(&b, "spend"), 0.0, "B spent nothing");

    // Redis is back (empty): no restart of ssogate needed
    redis.restart();
    eventually(
        Duration::from_secs(15),
        "B learns A's queued revocation",
        || b.get("/app").jar(&ended).send().status == 401,
    );
    eventually(
        Duration::from_secs(10),
        "jti logins work again on A",
        || a.jwt(&acme_token("ivan", &random_id())).send().status == 302,
    );
    let r = issue_code(&b, "judy@acme.example");
    let code = r.json()["code"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(10),
        "codes are redeemed again on B",
        || {
            let r = b.nav(&format!("/_sso/authorize?code={code}")).send();
            assert_ne!(r.status, 401, "a code refused as spent: {r:#?}");
            r.status == 302 && r.sets_cookie(PLAIN_COOKIE)
        },
    );
    for g in [&a, &b] {
        assert_eq!(g.get("/app").jar(&kept).send().status, 200);
    }
    assert_eq!(a.get("/app").jar(&ended).send().status, 401);
}

#[test]
fn a_frozen_redis_holds_no_request_up() {
    let redis = Redis::start();
    let a = replica(&redis);
    let jars: Vec<Jar> = (0..5)
        .map(|i| {
            a.login_jwt(
                None,
                &acme_token_without_jti(&format!("kim{i}")),
                PLAIN_COOKIE,
            )
        })
        .collect();
    redis.signal("STOP");

    // Sessions never checked before: a revocation check that asked Redis would wait for
    // its 1 s timeout on each of them.
    let started = Instant::now();
    for jar in &jars {
        assert_eq!(a.get("/app").jar(jar).send().status, 200);
    }
    let cookies = started.elapsed();
    // A spend waits for the timeout at most, then answers 503.
    let started = Instant::now();
    let r = a.jwt(&acme_token("kim", &random_id())).send();
    let spend = started.elapsed();
    assert_eq!(r.status, 503, "{r:#?}");
    let started = Instant::now();
    let out = a.get("/_sso/logout").jar(&jars[0]).send();
    let logout = started.elapsed();
    assert_eq!(out.status, 302, "{out:#?}");
    assert_eq!(a.get("/app").jar(&jars[0]).send().status, 401);
    redis.signal("CONT");

    assert!(
        cookies < Duration::from_millis(2500),
        "5 cookie requests took {cookies:?} while Redis was frozen"
    );
    assert!(spend < Duration::from_secs(3), "a spend took {spend:?}");
    assert!(logout < Duration::from_secs(1), "a logout took {logout:?}");
    eventually(Duration::from_secs(10), "jti logins work again", || {
        a.jwt(&acme_token("kim", &random_id())).send().status == 302
    });
    assert_eq!(a.get("/app").jar(&jars[0]).send().status, 401);
    assert_eq!(a.get("/app").jar(&jars[1]).send().status, 200);
}
