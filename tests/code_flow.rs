//! Flow C (SPEC 1 C, 4): one-time codes bought over a back channel with
//! HTTP Basic client credentials, redeemed once at /_sso/authorize; and the
//! flow E bridge page that hands such a code to an allowed parent origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// acme (Host acme.test) sells codes to its client `acme-reader` (secret in acme.client); globex
/// is disabled.
fn code_config() -> String {
    template(
        r#"organizations:
  acme:
    hosts: [acme.test]
    login_url: https://portal.acme.example/sso/dash
    home_path: /home
    allowed_origins: [https://portal.acme.example]
    session_ttl: 20m
    keys: [{ alg: HS256, secret_file: acme.secret }]
    code_flow:
      client_id: acme-reader
      client_secret_file: acme.client
      code_ttl: 30s
  globex:
    hosts: [globex.test]
    enabled: false
    keys: [{ alg: HS256, secret_file: globex.secret }]
    code_flow: { client_id: globex-reader, client_secret: "globex-client-secret" }
"#,
    )
}

const CLIENT_SECRET: &str = "acme-client-secret-42";

fn gate() -> Gate {
    Gate::builder(&code_config())
        .file("acme.client", format!("{CLIENT_SECRET}\n").as_bytes())
        .start()
}

fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn buy_code(g: &Gate, host: &str, auth: &str, body: &Value) -> Resp {
    g.post("/_sso/code")
        .host(host)
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(body.to_string().as_bytes())
        .send()
}

fn code_of(resp: &Resp) -> String {
    assert_eq!(resp.status, 200, "code endpoint: {resp:#?}");
    let j = resp.json();
    assert_eq!(
        j["expires_in"], 30,
        "expires_in is code_ttl in seconds: {j}"
    );
    j["code"].as_str().expect("code is a string").to_owned()
}

#[test]
fn a_code_becomes_a_session_once() {
    let g = gate();
    let body = json!({
        "emailId": "bob@acme.example",
        "username": "Bob",
        "firstName": "Bob",
        "lastName": "Builder",
        "readerGroupIds": ["g1", "g2"],
        "somethingElse": {"ignored": true}
    });
    // the org is chosen by client_id alone, whatever the Host
    let code = code_of(&buy_code(
        &g,
        "globex.test",
        &basic("acme-reader", CLIENT_SECRET),
        &body,
    ));
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "the code is URL-safe: {code}"
    );

    let r = g
        .nav(&format!(
            "/_sso/authorize?code={code}&redirectUrl={}",
            enc("/reports?q=1")
        ))
        .host("acme.test")
        .send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/reports?q=1");
    let cookie = r.set_cookie(PLAIN_COOKIE).expect("session cookie");
    assert_eq!(
        cookie.max_age(),
        Some(1200),
        "no tokenValidity: the org's session_ttl"
    );
    let mut jar = Jar::new();
    jar.absorb(&r);

    let who = g.api("/_sso/whoami").host("acme.test").jar(&jar).send();
    assert_eq!(who.status, 200, "{who:#?}");
    let j = who.json();
    assert_eq!(j["org"], "acme");
    assert_eq!(j["principal"], "bob@acme.example");
    assert_eq!(j["claims"]["email"], "bob@acme.example");
    assert_eq!(j["claims"]["groups"], json!(["g1", "g2"]));

    let app = g.get("/reports").host("acme.test").jar(&jar).send();
    assert_eq!(app.status, 200);
    assert_eq!(
        app_header(&app.app(), "x-auth-request-user"),
        vec!["bob@acme.example"]
    );
    assert_eq!(
        app_header(&app.app(), "x-auth-request-groups"),
        vec!["g1,g2"]
    );

    // single use
    let again = g
        .nav(&format!("/_sso/authorize?code={code}"))
        .host("acme.test")
        .send();
    assert_eq!(again.status, 401, "a code is accepted once: {again:#?}");
    assert!(!again.sets_cookie(PLAIN_COOKIE));
    g.assert_logs_free_of(&[&code, CLIENT_SECRET, cookie.value.as_str()]);
}

#[test]
fn token_validity_is_clamped_to_5_minutes_and_1_day() {
    let g = gate();
    let auth = basic("acme-reader", CLIENT_SECRET);
    for (minutes, max_age) in [(1, 300), (7, 420), (5000, 86400)] {
        let code = code_of(&buy_code(
            &g,
            "acme.test",
            &auth,
            &json!({"emailId": "c@acme.example", "tokenValidity": minutes}),
        ));
        let r = g
            .nav(&format!("/_sso/authorize?code={code}"))
            .host("acme.test")
            .send();
        assert_eq!(r.status, 302, "{r:#?}");
        assert_eq!(g.loc_path(&r), "/home", "no redirectUrl: home_path");
        assert_eq!(
            r.set_cookie(PLAIN_COOKIE).and_then(|c| c.max_age()),
            Some(max_age),
            "tokenValidity {minutes}"
        );
    }
}

#[test]
fn bad_credentials_and_bad_bodies_are_refused() {
    let g = gate();
    let good = basic("acme-reader", CLIENT_SECRET);
    let user = json!({"emailId": "a@acme.example"});
    for auth in [
        basic("acme-reader", "wrong"),
        basic("acme-reader", &format!("{CLIENT_SECRET}x")),
        basic("nobody", CLIENT_SECRET),
        "Bearer x".to_owned(),
        "Basic !!!".to_owned(),
    ] {
        let r = buy_code(&g, "acme.test", &auth, &user);
        assert_eq!(r.status, 401, "{auth}: {r:#?}");
        assert!(
            !r.body.contains("code\""),
            "no code on a refusal: {}",
            r.body
        );
    }
    let r = g
        .post("/_sso/code")
        .host("acme.test")
        .body(user.to_string().as_bytes())
        .send();
    assert_eq!(r.status, 401, "no credentials at all");

    for (body, field) in [
        ("not json", "body"),
        ("{}", "emailId"),
        (r#"{"emailId": 5}"#, "emailId"),
        (r#"{"emailId": "a@x", "username": ["x"]}"#, "username"),
        (
            r#"{"emailId": "a@x", "readerGroupIds": "g1"}"#,
            "readerGroupIds",
        ),
        (
            r#"{"emailId": "a@x", "tokenValidity": "10"}"#,
            "tokenValidity",
        ),
        (r#"{"emailId": "a\r\nx"}"#, "emailId"),
    ] {
        let r = g
            .post("/_sso/code")
            .host("acme.test")
            .header("Authorization", &good)
            .body(body.as_bytes())
            .send();
        assert_eq!(r.status, 400, "{body}: {r:#?}");
        assert_eq!(r.json()["field"], field, "{body}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }

    // a disabled org answers 403 to its client
    let r = buy_code(
        &g,
        "acme.test",
        &basic("globex-reader", "globex-client-secret"),
        &user,
    );
    assert_eq!(r.status, 403, "{r:#?}");
    assert_eq!(r.json()["error"], "organization_disabled");
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn forged_expired_and_misrouted_codes_are_refused() {
    let g = Gate::builder(&code_config().replace("code_ttl: 30s", "code_ttl: 1s"))
        .file("acme.client", CLIENT_SECRET.as_bytes())
        .start();
    let auth = basic("acme-reader", CLIENT_SECRET);
    let buy = || {
        let r = buy_code(
            &g,
            "acme.test",
            &auth,
            &json!({"emailId": "e@acme.example"}),
        );
        assert_eq!(r.status, 200, "{r:#?}");
        r.json()["code"].as_str().unwrap().to_owned()
    };
    let code = buy();
    let mut forged = code.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "", "abc", "%00"] {
        let r = g
            .nav(&format!("/_sso/authorize?code={bad}"))
            .host("acme.test")
            .send();
        assert_eq!(r.status, 401, "code {bad:?}: {r:#?}");
        assert!(!r.sets_cookie(PLAIN_COOKIE));
    }
    let r = g.nav("/_sso/authorize").host("acme.test").send();
    assert_eq!(r.status, 401, "no code at all");

    // another org's host never redeems acme's code (and doesn't burn it)
    let r = g
        .nav(&format!("/_sso/authorize?code={code}"))
        .host("globex.test")
        .send();
    assert!(r.status == 401 || r.status == 403, "{r:#?}");
    assert!(!r.sets_cookie(PLAIN_COOKIE));

    // an unsafe redirectUrl falls back to home_path
    let fresh = buy();
    let r = g
        .nav(&format!(
            "/_sso/authorize?code={fresh}&redirectUrl={}",
            enc("//evil.example/x")
        ))
        .host("acme.test")
        .send();
    assert_eq!(r.status, 302);
    assert_eq!(g.loc_path(&r), "/home");

    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = g
        .nav(&format!("/_sso/authorize?code={code}"))
        .host("acme.test")
        .send();
    assert_eq!(r.status, 401, "expired code: {r:#?}");
}

#[test]
fn the_bridge_hands_a_code_only_to_allowed_origins() {
    let g = gate();
    // without a session: a page that says so, and no code
    let r = g.nav("/_sso/bridge").host("acme.test").send();
    assert_eq!(r.status, 200, "{r:#?}");
    assert!(r.body.contains("ssogate:unauthenticated"), "{}", r.body);
    assert!(!r.body.contains("ssogate:code"));
    let policies = r.header_all("content-security-policy").join(" | ");
    assert!(
        policies.contains("frame-ancestors 'self' https://portal.acme.example"),
        "only allowed origins may embed the bridge: {policies}"
    );

    // with a session: the code is addressed to the allowed origins only
    let token = hs256(
        ACME_SECRET,
        &claims_with("dana", json!({"email": "dana@acme.example"})),
    );
    let jar = g.login_jwt(Some("acme.test"), &token, PLAIN_COOKIE);
    let r = g.nav("/_sso/bridge").host("acme.test").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("ssogate:code"), "{}", r.body);
    assert!(r.body.contains("postMessage(m,o[i])"), "{}", r.body);
    assert!(
        r.body.contains(r#"["https://portal.acme.example"]"#),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("'*'") && !r.body.contains("\"*\""),
        "never to any origin"
    );
    let code = r
        .body
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the code is in the page")
        .to_owned();

    // the parent redeems it (at its own ssogate; here the same one)
    let r = g
        .nav(&format!("/_sso/authorize?code={code}&redirectUrl=/after"))
        .host("acme.test")
        .send();
    assert_eq!(r.status, 302, "{r:#?}");
    assert_eq!(g.loc_path(&r), "/after");
    let mut bridged = Jar::new();
    bridged.absorb(&r);
    let who = g.api("/_sso/whoami").host("acme.test").jar(&bridged).send();
    assert_eq!(who.json()["principal"], "dana");
    assert_eq!(who.json()["claims"]["email"], "dana@acme.example");
}
