//! The gate's verdicts and the endpoints' answers, in-process: a request head
//! is written into a pingora `Session` over an in-memory pipe and decided by
//! the proxy's own gate (`Gateway::judge`, the deciding half of
//! `request_filter`); no process is spawned, no socket opened.
//! Each row of a table is one rule of SPEC 4 / 8, so a change to a rule fails
//! here in milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::proxy::{ProxyHttp, Session};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ssogate::proxy::Gateway;
use ssogate::replay::MemoryStore;
use ssogate::session::{session_cookie, Identity};
use ssogate::state::Shared;

const SESSION_SECRET: &str = "session-secret-0123456789abcdefghijklmnop";
const ACME_SECRET: &str = "acme-hs256-secret-0123456789abcdefghijklmnop";
const GLOBEX_SECRET: &str = "globex-hs256-secret-0123456789abcdefghijklmn";
const WRONG_SECRET: &str = "wrong-hs256-secret-0123456789abcdefghijklmno";
const CLIENT_SECRET: &str = "client-secret-0123456789";
const ACME_LOGIN: &str = "https://portal.acme.test/sso";
const UMBRELLA_SECRET: &str = "umbrella-hs256-secret-0123456789abcdefghijkl";
const UMBRELLA_PORTAL: &str = "https://portal.umbrella.test";

/// acme: Host acme.test or path /acme/, query tokens, flow C, org_claim;
/// globex: Bearer tokens; initech: disabled; umbrella: embeddable by its
/// portal, Bearer tokens forwarded to the app, query tokens. No
/// default_org.
fn config_yaml() -> String {
    format!(
        r#"
upstream: http://127.0.0.1:9
public_url: https://dash.test
public_paths: [/public/]
session: {{ secret: "{SESSION_SECRET}", secure: false }}
organizations:
  acme:
    hosts: [acme.test]
    paths: [/acme/]
    login_url: {ACME_LOGIN}
    home_path: /home
    org_claim: orgId
    accept_query_token: access_token
    keys: [{{ alg: HS256, secret: "{ACME_SECRET}" }}]
    code_flow: {{ client_id: acme-reader, client_secret: "{CLIENT_SECRET}" }}
  globex:
    hosts: [globex.test]
    login_url: https://portal.globex.test/login
    accept_bearer: true
    keys: [{{ alg: HS256, secret: "{GLOBEX_SECRET}" }}]
  initech:
    enabled: false
    hosts: [initech.test]
    login_url: https://portal.initech.test/login
    accept_bearer: true
    accept_query_token: access_token
    keys: [{{ alg: HS256, secret: "{ACME_SECRET}" }}]
    code_flow: {{ client_id: initech-reader, client_secret: "{CLIENT_SECRET}" }}
  umbrella:
    hosts: [umbrella.test]
    login_url: https://portal.umbrella.test/login
    allowed_origins: [{UMBRELLA_PORTAL}]
    accept_bearer: true
    forward_bearer: true
    accept_query_token: access_token
    keys: [{{ alg: HS256, secret: "{UMBRELLA_SECRET}" }}]
"#
    )
}

struct Harness {
    shared: Arc<Shared>,
    gateway: Gateway,
}

fn harness() -> Harness {
    harness_with(&config_yaml())
}

fn harness_with(yaml: &str) -> Harness {
    let config =
        ssogate::config::parse(yaml, Path::new("/nonexistent/config.yaml")).expect("test config");
    let shared = Arc::new(Shared::new(config, Box::new(MemoryStore::new(10_000))));
    Harness {
        gateway: Gateway::new(shared.clone()),
        shared,
    }
}

/// A request head (and body) as a client would send it.
#[derive(Clone)]
struct Req {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn get(target: &str) -> Req {
    Req {
        method: "GET",
        target: target.to_owned(),
        headers: vec![("Host".into(), "acme.test".into())],
        body: Vec::new(),
    }
}

fn post(target: &str, body: &str) -> Req {
    Req {
        method: "POST",
        body: body.as_bytes().to_vec(),
        ..get(target)
    }
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
    fn host(self, host: &str) -> Self {
        self.header("Host", host)
    }
    /// A browser navigation.
    fn nav(self) -> Self {
        self.header("Sec-Fetch-Mode", "navigate")
    }
    /// A script's request.
    fn api(self) -> Self {
        self.header("Accept", "application/json")
    }
    fn cookie(self, cookie: &str) -> Self {
        self.header("Cookie", cookie)
    }
    fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    fn raw(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() && !self.headers.iter().any(|(n, _)| n == "Transfer-Encoding") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(&self.body);
        raw
    }
}

/// What ssogate made of a request.
#[derive(Debug)]
struct Seen {
    /// ssogate's own answer; `None` when the request goes on to the app.
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
    outcome: &'static str,
    auth: Option<(&'static str, &'static str)>,
    org: Option<String>,
    /// The request as the app would receive it, when it passes.
    upstream: Option<RequestHeader>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
    /// `name=value` of a cookie this answer sets.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_owned())
            .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
    }
    fn app_header(&self, name: &str) -> Vec<String> {
        let upstream = self.upstream.as_ref().expect("the request reached the app");
        upstream
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

impl Harness {
    async fn send(&self, req: &Req) -> Seen {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&req.raw()).await.unwrap();
        let mut session = Session::new_h1(Box::new(server));
        assert!(session.read_request().await.unwrap(), "no request read");
        let mut ctx = self.gateway.new_ctx();
        let answered = self.gateway.judge(&mut session, &mut ctx).await.unwrap();
        let mut seen = Seen {
            status: None,
            headers: Vec::new(),
            body: String::new(),
            outcome: ctx.outcome().label(),
            auth: ctx.auth().map(|(m, r)| (m.label(), r.label())),
            org: ctx.org().map(|o| o.name.clone()),
            upstream: None,
        };
        if answered {
            let head = session.response_written().expect("an answer").clone();
            seen.status = Some(head.status.as_u16());
            seen.headers = head
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            drop(session);
            let mut raw = Vec::new();
            client.read_to_end(&mut raw).await.unwrap();
            let raw = String::from_utf8(raw).unwrap();
            seen.body = raw
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_owned())
                .unwrap_or_default();
        } else {
            let mut upstream = session.req_header().clone();
            self.gateway
                .upstream_request_filter(&mut session, &mut upstream, &mut ctx)
                .await
                .unwrap();
            seen.upstream = Some(upstream);
        }
        seen
    }

    /// `name=value` of a session cookie for `org`, living until `expires_at`.
    fn session(&self, org: &str, principal: &str, expires_at: i64) -> String {
        let now = ssogate::clock::now();
        let identity = Identity {
            org: org.into(),
            principal: principal.into(),
            claims: [("email".to_owned(), json!(format!("{principal}@{org}.test")))]
                .into_iter()
                .collect(),
            issued_at: now - 10,
            expires_at,
            session_id: ssogate::session::random_id(),
        };
        let config = self.shared.config.load();
        let header = session_cookie(&config.session, &identity).unwrap();
        header.split(';').next().unwrap().to_owned()
    }

    fn cookie(&self, org: &str, principal: &str) -> String {
        self.session(org, principal, ssogate::clock::now() + 600)
    }
}

fn token(secret: &str, extra: Value) -> String {
    let now = ssogate::clock::now();
    let mut claims = json!({
        "sub": "alice",
        "email": "alice@example.test",
        "iat": now,
        "exp": now + 300,
        "jti": ssogate::session::random_id(),
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// HTTP Basic client credentials for the code endpoint.
fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let pair = format!("{client_id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The request reaches the app (ssogate writes no answer of its own).
const APP: Option<u16> = None;

/// One rule: what a request must become.
struct Rule {
    name: &'static str,
    req: Req,
    /// ssogate's own status, `None` when the request reaches the app.
    status: Option<u16>,
    outcome: &'static str,
    auth: Option<(&'static str, &'static str)>,
    org: Option<&'static str>,
}

fn rule(
    name: &'static str,
    req: Req,
    status: Option<u16>,
    outcome: &'static str,
    auth: Option<(&'static str, &'static str)>,
    org: Option<&'static str>,
) -> Rule {
    Rule {
        name,
        req,
        status,
        outcome,
        auth,
        org,
    }
}

async fn check_all(h: &Harness, rules: Vec<Rule>) {
    let mut failures = Vec::new();
    for r in rules {
        let seen = h.send(&r.req).await;
        let got = (seen.status, seen.outcome, seen.auth, seen.org.as_deref());
        let want = (r.status, r.outcome, r.auth, r.org);
        if got != want {
            failures.push(format!(
                "{}:\n   got {got:?}\n  want {want:?}\n  {seen:#?}",
                r.name
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[rustfmt::skip]
fn gate_rules(h: &Harness) -> Vec<Rule> {
    let acme = h.cookie("acme", "alice");
    let globex = h.cookie("globex", "gina");
    let expired = h.session("acme", "old", ssogate::clock::now() - 1);
    let good_bearer = token(GLOBEX_SECRET, json!({}));
    let bad_bearer = token(WRONG_SECRET, json!({}));
    let query_token = format!("/r?a=1&access_token={}", token(ACME_SECRET, json!({})));
    let bad_query_token = format!("/r?access_token={}", token(WRONG_SECRET, json!({})));
    let ok = Some(("cookie", "ok"));
    vec![
        // No credential: a browser goes to the login, a script gets a 401.
        rule("navigation", get("/r").nav(), Some(302), "login_redirect", None, Some("acme")),
        rule("html get", get("/r").header("Accept", "text/html"), Some(302), "login_redirect", None, Some("acme")),
        rule("html post", post("/r", "x").header("Accept", "text/html"), Some(401), "unauthorized", None, Some("acme")),
        rule("script", get("/r").api(), Some(401), "unauthorized", None, Some("acme")),
        // The session cookie.
        rule("cookie", get("/r").nav().cookie(&acme), APP, "proxied", ok, Some("acme")),
        rule("cookie, path-routed", get("/acme/r").host("x.test").cookie(&acme), APP, "proxied", ok, Some("acme")),
        rule("tampered cookie, script", get("/r").api().cookie("ssogate_session=xyz"), Some(401), "unauthorized", Some(("cookie", "malformed")), Some("acme")),
        rule("tampered cookie, navigation", get("/r").nav().cookie("ssogate_session=xyz"), Some(302), "login_redirect", Some(("cookie", "malformed")), Some("acme")),
        rule("expired cookie", get("/r").api().cookie(&expired), Some(401), "unauthorized", Some(("cookie", "expired")), Some("acme")),
        rule("another org's cookie", get("/r").api().host("globex.test").cookie(&acme), Some(401), "unauthorized", Some(("cookie", "unknown_org")), Some("globex")),
        // Bearer tokens, for the org that accepts them only; before the cookie.
        rule("bearer", get("/r").api().host("globex.test").bearer(&good_bearer), APP, "proxied", Some(("bearer", "ok")), Some("globex")),
        rule("refused bearer", get("/r").api().host("globex.test").bearer(&bad_bearer), Some(401), "unauthorized", Some(("bearer", "bad_signature")), Some("globex")),
        rule("refused bearer and a cookie", get("/r").api().host("globex.test").bearer(&bad_bearer).cookie(&globex), Some(401), "unauthorized", Some(("bearer", "bad_signature")), Some("globex")),
        rule("bearer, org without accept_bearer", get("/r").api().bearer(&good_bearer), Some(401), "unauthorized", None, Some("acme")),
        // A query token makes a session and redirects.
        rule("query token", get(&query_token).nav(), Some(302), "internal", Some(("query", "ok")), Some("acme")),
        rule("refused query token", get(&bad_query_token).nav(), Some(401), "unauthorized", Some(("query", "bad_signature")), Some("acme")),
        // Disabled and unrouted orgs.
        rule("disabled org, navigation", get("/r").nav().host("initech.test"), Some(403), "forbidden", None, Some("initech")),
        rule("disabled org, script", get("/r").api().host("initech.test"), Some(403), "forbidden", None, Some("initech")),
        rule("unrouted, navigation", get("/r").nav().host("nowhere.test"), Some(404), "unrouted", None, None),
        rule("unrouted, script", get("/r").api().host("nowhere.test"), Some(401), "unrouted", None, None),
        // Public paths pass without authentication, whatever the org.
        rule("public", get("/public/a").nav(), APP, "public", None, Some("acme")),
        rule("public, unrouted", get("/public/a").host("nowhere.test"), APP, "public", None, None),
        rule("public, disabled org", get("/public/a").host("initech.test"), APP, "public", None, Some("initech")),
        rule("public, with a cookie", get("/public/a").cookie(&acme), APP, "public", None, Some("acme")),
        rule("public, dot segment", get("/public/../admin").nav(), Some(302), "login_redirect", None, Some("acme")),
        // Refused before routing.
        rule("bad host", get("/r").host("acme.test/x"), Some(400), "unauthorized", None, None),
        rule("ambiguous framing", post("/public/a", "0\r\n\r\n").header("Transfer-Encoding", "chunked").header("Content-Length", "5"), Some(400), "unauthorized", None, None),
    ]
}

#[tokio::test]
async fn the_gate_decides_by_navigation_credential_and_org() {
    let h = harness();
    let rules = gate_rules(&h);
    check_all(&h, rules).await;
}

#[rustfmt::skip]
fn endpoint_rules(h: &Harness) -> Vec<Rule> {
    let acme = h.cookie("acme", "alice");
    let good = token(ACME_SECRET, json!({"orgId": "acme"}));
    let jwt = |token: &str| format!("/_sso/jwt?jwt={token}");
    let bad_signature = jwt(&token(WRONG_SECRET, json!({"orgId": "acme"})));
    let named = jwt(&token(ACME_SECRET, json!({"orgId": "acme"})));
    let unnamed = jwt(&token(ACME_SECRET, json!({})));
    let globex_bearer = token(GLOBEX_SECRET, json!({}));
    let acme_client = basic("acme-reader", CLIENT_SECRET);
    let initech_client = basic("initech-reader", CLIENT_SECRET);
    let user = r#"{"emailId": "bob@acme.test"}"#;
    let code = |body: &str, credentials: &str| post("/_sso/code", body).header("Authorization", credentials);
    vec![
        rule("unknown endpoint", get("/_sso/nope").api(), Some(404), "internal", None, Some("acme")),
        rule("wrong method", get("/_sso/logout").api().with_method("DELETE"), Some(405), "internal", None, Some("acme")),
        // Flow A started by hand.
        rule("login", get("/_sso/login?rd=%2Fr").nav(), Some(302), "login_redirect", None, Some("acme")),
        rule("login, org of rd's path", get("/_sso/login?rd=%2Facme%2Fr").nav().host("nowhere.test"), Some(302), "login_redirect", None, Some("acme")),
        rule("login, disabled org", get("/_sso/login").nav().host("initech.test"), Some(403), "forbidden", None, Some("initech")),
        rule("login, unrouted", get("/_sso/login?rd=%2Fr").api().host("nowhere.test"), Some(404), "unrouted", None, None),
        // Flow B; the org by Host, else by the token's org_claim.
        rule("jwt", get(&jwt(&good)).nav(), Some(302), "internal", Some(("jwt", "ok")), Some("acme")),
        rule("jwt, replayed", get(&jwt(&good)).nav(), Some(401), "internal", Some(("jwt", "replay")), Some("acme")),
        rule("jwt, bad signature", get(&bad_signature).api(), Some(401), "internal", Some(("jwt", "bad_signature")), Some("acme")),
        rule("jwt, org named by the token", get(&named).host("nowhere.test"), Some(302), "internal", Some(("jwt", "ok")), Some("acme")),
        rule("jwt, no org", get(&unnamed).host("nowhere.test"), Some(401), "unrouted", Some(("jwt", "unknown_org")), None),
        rule("jwt, no token", get("/_sso/jwt").api(), Some(401), "internal", Some(("jwt", "malformed")), Some("acme")),
        rule("jwt, disabled org", get(&jwt(&good)).host("initech.test"), Some(403), "forbidden", Some(("jwt", "disabled")), Some("initech")),
        rule("callback, unknown state", get("/_sso/callback?state=nope&token=x").nav(), Some(401), "internal", Some(("callback", "malformed")), Some("acme")),
        // whoami binds by Host only; it and the bridge page count no credential (SPEC 8).
        rule("whoami, no session", get("/_sso/whoami").api(), Some(401), "internal", None, Some("acme")),
        rule("whoami, cookie", get("/_sso/whoami").api().cookie(&acme), Some(200), "internal", None, Some("acme")),
        rule("whoami, cookie, no Host org", get("/_sso/whoami").api().host("nowhere.test").cookie(&acme), Some(200), "internal", None, Some("acme")),
        rule("whoami, bearer", get("/_sso/whoami").api().host("globex.test").bearer(&globex_bearer), Some(200), "internal", None, Some("globex")),
        // Flow C: the client credentials choose the org, whatever the Host.
        rule("code", code(user, &acme_client), Some(200), "internal", Some(("code", "ok")), Some("acme")),
        rule("code, another Host", code(user, &acme_client).host("globex.test"), Some(200), "internal", Some(("code", "ok")), Some("acme")),
        rule("code, disabled org", code(user, &initech_client).nav(), Some(403), "forbidden", Some(("code", "disabled")), Some("initech")),
        rule("code, bad secret", code(user, &basic("acme-reader", "nope")), Some(401), "internal", Some(("code", "bad_signature")), Some("acme")),
        rule("code, unknown client", code(user, &basic("who", "nope")), Some(401), "internal", Some(("code", "unknown_org")), None),
        rule("code, no credentials", post("/_sso/code", user), Some(401), "internal", Some(("code", "malformed")), None),
        rule("code, missing field", code("{}", &acme_client), Some(400), "internal", Some(("code", "bad_claims")), Some("acme")),
        rule("authorize, no code", get("/_sso/authorize").nav(), Some(401), "internal", Some(("authorize", "malformed")), Some("acme")),
        // Flow E, logout.
        rule("bridge", get("/_sso/bridge").nav(), Some(200), "internal", None, Some("acme")),
        rule("bridge, session", get("/_sso/bridge").nav().cookie(&acme), Some(200), "internal", None, Some("acme")),
        rule("bridge, tampered cookie", get("/_sso/bridge").nav().cookie("ssogate_session=x"), Some(200), "internal", None, Some("acme")),
        rule("whoami, tampered cookie", get("/_sso/whoami").api().cookie("ssogate_session=x"), Some(401), "internal", None, Some("acme")),
        rule("logout", get("/_sso/logout").nav(), Some(200), "internal", None, Some("acme")),
    ]
}

#[tokio::test]
async fn reserved_endpoints_answer_for_themselves() {
    let h = harness();
    let rules = endpoint_rules(&h);
    check_all(&h, rules).await;
}

impl Req {
    fn with_method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
}

#[tokio::test]
async fn a_login_redirect_is_built_as_spec_4_says() {
    let h = harness();
    let seen = h.send(&get("/reports?q=1").nav()).await;
    let location = seen.header("location").unwrap();
    let url = url::Url::parse(location).unwrap();
    assert!(location.starts_with(ACME_LOGIN), "{location}");
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(params[1].1, "/reports?q=1");
    assert!(
        params[0]
            .1
            .starts_with("https://dash.test/_sso/callback?state="),
        "{params:?}"
    );
    assert!(
        seen.set_cookie("ssogate_session_state").is_some(),
        "{seen:#?}"
    );
    assert_eq!(
        seen.header("content-security-policy"),
        Some("frame-ancestors 'self'")
    );

    let seen = h.send(&get("/reports?q=1").api()).await;
    assert_eq!(seen.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        seen.json()["login_url"],
        "https://dash.test/_sso/login?rd=%2Freports%3Fq%3D1"
    );
}

#[tokio::test]
async fn refusals_speak_html_to_people_and_json_to_scripts() {
    let h = harness();
    let bad = token(WRONG_SECRET, json!({"orgId": "acme"}));
    let page = h.send(&get(&format!("/_sso/jwt?jwt={bad}")).nav()).await;
    assert!(page.body.contains("Request id"), "{page:#?}");
    assert!(!page.body.contains(&bad));
    let api = h.send(&get(&format!("/_sso/jwt?jwt={bad}")).api()).await;
    assert_eq!(api.json()["error"], "invalid_token");

    let seen = h
        .send(&get("/r").api().host("globex.test").bearer(&bad))
        .await;
    assert_eq!(
        seen.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    // The code endpoint is a back channel: JSON even to a navigation.
    let initech = basic("initech-reader", CLIENT_SECRET);
    let disabled = post("/_sso/code", "{}")
        .nav()
        .header("Authorization", &initech);
    let seen = h.send(&disabled).await;
    assert_eq!(seen.json()["error"], "organization_disabled");
    let acme = basic("acme-reader", CLIENT_SECRET);
    let ill_typed = post("/_sso/code", r#"{"emailId": 5}"#).header("Authorization", &acme);
    let seen = h.send(&ill_typed).await;
    assert_eq!(seen.json()["field"], "emailId");
    let seen = h
        .send(&post("/_sso/code", "{}").header("Authorization", &basic("x", "y")))
        .await;
    assert_eq!(
        seen.header("www-authenticate"),
        Some("Basic realm=\"ssogate\"")
    );
}

#[tokio::test]
async fn the_app_gets_the_identity_and_none_of_ssogates_secrets() {
    let h = harness();
    let acme = h.cookie("acme", "alice");
    let req = get("/r")
        .cookie(&format!("app=1; {acme}; other=2"))
        .header("X_Auth_Request_User", "mallory")
        .header("X-Forwarded-Proto", "http");
    let seen = h.send(&req).await;
    assert_eq!(seen.app_header("x-auth-request-user"), vec!["alice"]);
    assert_eq!(
        seen.app_header("x-auth-request-email"),
        vec!["alice@acme.test"]
    );
    assert_eq!(seen.app_header("x-auth-request-org"), vec!["acme"]);
    assert_eq!(seen.app_header("cookie"), vec!["app=1; other=2"]);
    // An untrusted client's X-Forwarded-Proto is replaced by public_url's.
    assert_eq!(seen.app_header("x-forwarded-proto"), vec!["https"]);
    assert_eq!(seen.app_header("x-forwarded-host"), vec!["acme.test"]);

    let seen = h.send(&get("/public/x").cookie(&acme)).await;
    assert!(seen.app_header("x-auth-request-user").is_empty());
}

#[tokio::test]
async fn a_code_opens_one_session_and_a_logout_ends_it() {
    let h = harness();
    let client = basic("acme-reader", CLIENT_SECRET);
    let buy =
        post("/_sso/code", r#"{"emailId": "bob@acme.test"}"#).header("Authorization", &client);
    let seen = h.send(&buy).await;
    let code = seen.json()["code"].as_str().unwrap().to_owned();
    let authorize = get(&format!(
        "/_sso/authorize?code={}&redirectUrl=%2Fdash",
        enc(&code)
    ))
    .nav();
    let seen = h.send(&authorize).await;
    assert_eq!(
        (seen.status, seen.auth),
        (Some(302), Some(("authorize", "ok")))
    );
    assert_eq!(seen.header("location"), Some("/dash"));
    let cookie = seen.set_cookie("ssogate_session").expect("a session");
    let again = h.send(&authorize).await;
    assert_eq!(
        (again.status, again.auth),
        (Some(401), Some(("authorize", "replay")))
    );

    let seen = h.send(&get("/r").cookie(&cookie)).await;
    assert_eq!(
        seen.app_header("x-auth-request-user"),
        vec!["bob@acme.test"]
    );
    let seen = h.send(&get("/_sso/logout").cookie(&cookie)).await;
    assert_eq!(seen.outcome, "internal");
    let seen = h.send(&get("/r").api().cookie(&cookie)).await;
    assert_eq!(
        (seen.status, seen.auth),
        (Some(401), Some(("cookie", "replay"))),
        "a session logged out is revoked"
    );
}

// ---------------------------------------------------------------------------------------------
// Disabled orgs count the credential carried (SPEC 8)
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
#[tokio::test]
async fn a_disabled_org_counts_the_credential_it_was_shown() {
    let h = harness();
    let initech = h.cookie("initech", "ivan");
    let token = token(ACME_SECRET, json!({}));
    let on_initech = |r: Req| r.host("initech.test");
    let forbidden = |name, req, auth| rule(name, req, Some(403), "forbidden", auth, Some("initech"));
    let rules = vec![
        forbidden("no credential", on_initech(get("/r").nav()), None),
        forbidden("cookie", on_initech(get("/r").api().cookie(&initech)), Some(("cookie", "disabled"))),
        forbidden("bearer", on_initech(get("/r").api().bearer(&token)), Some(("bearer", "disabled"))),
        forbidden("query token", on_initech(get(&format!("/r?access_token={token}")).nav()), Some(("query", "disabled"))),
        forbidden("jwt", on_initech(get(&format!("/_sso/jwt?jwt={token}")).nav()), Some(("jwt", "disabled"))),
        forbidden("callback", on_initech(get(&format!("/_sso/callback?state=n?token={token}")).nav()), Some(("callback", "disabled"))),
        forbidden("authorize", on_initech(get("/_sso/authorize?code=c").nav()), Some(("authorize", "disabled"))),
        forbidden("jwt without a token", on_initech(get("/_sso/jwt").nav()), None),
        forbidden("login", on_initech(get("/_sso/login").nav().cookie(&initech)), None),
        forbidden("whoami", on_initech(get("/_sso/whoami").api().cookie(&initech)), None),
    ];
    check_all(&h, rules).await;
}

// ---------------------------------------------------------------------------------------------
// forward_bearer (SPEC 3, 6)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_accepted_bearer_reaches_the_app_only_where_the_org_forwards_it() {
    let h = harness();
    let globex = token(GLOBEX_SECRET, json!({}));
    let seen = h
        .send(&get("/r").api().host("globex.test").bearer(&globex))
        .await;
    assert_eq!(seen.auth, Some(("bearer", "ok")));
    assert!(
        seen.app_header("authorization").is_empty(),
        "globex does not forward the Bearer it accepted: {seen:#?}"
    );

    let umbrella = token(UMBRELLA_SECRET, json!({}));
    let seen = h
        .send(&get("/r").api().host("umbrella.test").bearer(&umbrella))
        .await;
    assert_eq!(seen.auth, Some(("bearer", "ok")));
    assert_eq!(
        seen.app_header("authorization"),
        vec![format!("Bearer {umbrella}")],
        "umbrella sets forward_bearer: true"
    );

    // acme does not accept Bearer tokens: the header is the app's own.
    let acme = h.cookie("acme", "alice");
    let seen = h
        .send(&get("/r").api().cookie(&acme).bearer("app-token"))
        .await;
    assert_eq!(seen.auth, Some(("cookie", "ok")));
    assert_eq!(seen.app_header("authorization"), vec!["Bearer app-token"]);
    // A session cookie on an org that accepts Bearer tokens: an Authorization
    // that is not a Bearer is not ssogate's and passes.
    let globex_cookie = h.cookie("globex", "gina");
    let seen = h
        .send(
            &get("/r")
                .api()
                .host("globex.test")
                .cookie(&globex_cookie)
                .header("Authorization", "Basic YTpi"),
        )
        .await;
    assert_eq!(seen.auth, Some(("cookie", "ok")));
    assert_eq!(seen.app_header("authorization"), vec!["Basic YTpi"]);
}

// ---------------------------------------------------------------------------------------------
// Framing (SPEC 11): logins are never started or finished in a frame the org did not allow
// ---------------------------------------------------------------------------------------------

impl Req {
    /// As a browser sends a request from an iframe: `Sec-Fetch-Dest: iframe`, `Sec-Fetch-Site`,
    /// and the embedding page's origin as `Referer` when given.
    fn framed(self, site: &str, referer: Option<&str>) -> Self {
        let req = self
            .nav()
            .header("Sec-Fetch-Dest", "iframe")
            .header("Sec-Fetch-Site", site);
        match referer {
            Some(r) => req.header("Referer", r),
            None => req,
        }
    }
}

/// The flow A state of a login started at `host` (unframed): the state cookie and its nonce.
async fn started_login(h: &Harness, host: &str) -> (String, String) {
    let seen = h.send(&get("/r").nav().host(host)).await;
    let cookie = seen
        .set_cookie("ssogate_session_state")
        .expect("a state cookie");
    let location = seen.header("location").expect("a redirect");
    let callback = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "ssoCallback")
        .map(|(_, v)| v.into_owned())
        .expect("ssoCallback");
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    (cookie, state)
}

#[rustfmt::skip]
#[tokio::test]
async fn logins_inside_frames_need_an_allowed_referer() {
    let h = harness();
    let portal = Some("https://portal.umbrella.test/embed");
    let evil = Some("https://evil.test/");
    let own = Some("https://dash.test/somewhere");
    let on = |r: Req| r.host("umbrella.test");
    let jwt = |t: &str| format!("/_sso/jwt?jwt={t}");
    let fresh = || token(UMBRELLA_SECRET, json!({}));
    let session = h.cookie("umbrella", "una");
    let (state_cookie, state) = started_login(&h, "umbrella.test").await;
    let callback = |state: &str| format!("/_sso/callback?state={state}&token={}", fresh());
    let forbidden = |name, req| rule(name, req, Some(403), "forbidden", None, Some("umbrella"));
    let refused_login = forbidden;
    let rules = vec![
        // The 302 to login_url.
        refused_login("framed cross-site, no Referer", on(get("/r")).framed("cross-site", None)),
        refused_login("framed same-site, Referer of another origin", on(get("/r")).framed("same-site", evil)),
        rule("framed cross-site, the portal's Referer", on(get("/r")).framed("cross-site", portal), Some(302), "login_redirect", None, Some("umbrella")),
        rule("framed cross-site, its own origin's Referer", on(get("/r")).framed("cross-site", own), Some(302), "login_redirect", None, Some("umbrella")),
        rule("framed same-origin: not judged", on(get("/r")).framed("same-origin", None), Some(302), "login_redirect", None, Some("umbrella")),
        rule("framed, Sec-Fetch-Site none: not judged", on(get("/r")).framed("none", None), Some(302), "login_redirect", None, Some("umbrella")),
        rule("top level cross-site: not judged", on(get("/r")).nav().header("Sec-Fetch-Dest", "document").header("Sec-Fetch-Site", "cross-site"), Some(302), "login_redirect", None, Some("umbrella")),
        rule("a script in a frame starts no login", on(get("/r")).framed("cross-site", None).header("Sec-Fetch-Mode", "cors"), Some(401), "unauthorized", None, Some("umbrella")),
        // The app's own pages are the CSP's business.
        rule("a session inside any frame", on(get("/r")).framed("cross-site", None).cookie(&session), APP, "proxied", Some(("cookie", "ok")), Some("umbrella")),
        // The login endpoints.
        refused_login("login", on(get("/_sso/login")).framed("cross-site", evil)),
        refused_login("jwt", on(get(&jwt(&fresh()))).framed("cross-site", None)),
        rule("jwt, the portal's Referer", on(get(&jwt(&fresh()))).framed("cross-site", portal), Some(302), "internal", Some(("jwt", "ok")), Some("umbrella")),
        refused_login("callback without state", on(get(&format!("/_sso/callback?token={}", fresh()))).framed("cross-site", None)),
        refused_login("callback whose state matches no state cookie", on(get(&callback("nope"))).framed("cross-site", None).cookie(&state_cookie)),
        rule("callback whose state matches its state cookie: not judged", on(get(&callback(&state))).framed("cross-site", None).cookie(&state_cookie), Some(302), "internal", Some(("callback", "ok")), Some("umbrella")),
        refused_login("authorize", on(get("/_sso/authorize?code=x")).framed("cross-site", None)),
        refused_login("bridge", on(get("/_sso/bridge")).framed("cross-site", evil)),
        refused_login("query token", on(get(&format!("/r?access_token={}", fresh()))).framed("cross-site", None)),
        rule("query token, the portal's Referer", on(get(&format!("/r?access_token={}", fresh()))).framed("cross-site", portal), Some(302), "internal", Some(("query", "ok")), Some("umbrella")),
        // acme allows no origin: only its own.
        refused_login_acme("acme, framed by another site", get("/r").framed("cross-site", portal)),
        rule("acme, framed by its own origin", get("/r").framed("same-site", own), Some(302), "login_redirect", None, Some("acme")),
    ];
    check_all(&h, rules).await;
}

fn refused_login_acme(name: &'static str, req: Req) -> Rule {
    rule(name, req, Some(403), "forbidden", None, Some("acme"))
}

#[tokio::test]
async fn a_refused_framed_login_sets_no_cookie_and_spends_nothing() {
    let h = harness();
    let token = token(UMBRELLA_SECRET, json!({}));
    let framed = get(&format!("/_sso/jwt?jwt={token}"))
        .host("umbrella.test")
        .framed("cross-site", Some("https://evil.test/"));
    let seen = h.send(&framed).await;
    assert_eq!(seen.status, Some(403), "{seen:#?}");
    assert!(
        !seen
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("set-cookie")),
        "no Set-Cookie at all: {seen:#?}"
    );
    assert!(seen.body.contains("Request id"), "an HTML page: {seen:#?}");
    let api = h
        .send(&framed.clone().api().header("Sec-Fetch-Mode", "cors"))
        .await;
    assert_eq!(api.json()["error"], "framing_not_allowed");
    // The token was never checked, so its jti is still unspent.
    let seen = h
        .send(
            &get(&format!("/_sso/jwt?jwt={token}"))
                .host("umbrella.test")
                .nav(),
        )
        .await;
    assert_eq!((seen.status, seen.auth), (Some(302), Some(("jwt", "ok"))));

    // The 302 to login_url refused in a frame: no state cookie either.
    let seen = h
        .send(&get("/r").host("umbrella.test").framed("cross-site", None))
        .await;
    assert_eq!(seen.status, Some(403));
    assert!(
        seen.set_cookie("ssogate_session_state").is_none(),
        "{seen:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limits (SPEC 11). In-process requests have no peer address: they are all one client.
// ---------------------------------------------------------------------------------------------

fn limited_harness(logins_per_second: u32, logins_burst: u32, failures_per_minute: u32) -> Harness {
    let yaml = config_yaml().replace(
        "public_paths: [/public/]\n",
        &format!(
            "public_paths: [/public/]\nrate_limit: {{ logins_per_second: {logins_per_second}, \
             logins_burst: {logins_burst}, failures_per_minute: {failures_per_minute} }}\n"
        ),
    );
    assert!(yaml.contains("rate_limit:"));
    harness_with(&yaml)
}

/// The 429 of SPEC 11: `{"error":"rate_limited"}`, a `Retry-After` of whole seconds within
/// `1..=max_wait`, no cookie, and no credential counted.
#[track_caller]
fn assert_limited(seen: &Seen, max_wait: u64) {
    assert_eq!(seen.status, Some(429), "{seen:#?}");
    if seen.header("content-type") == Some("application/json") {
        assert_eq!(seen.json()["error"], "rate_limited", "{seen:#?}");
    } else {
        assert!(
            seen.body.contains("Too many sign-in attempts") && seen.body.contains("Request id"),
            "{seen:#?}"
        );
    }
    let retry: u64 = seen
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in seconds: {seen:#?}"));
    assert!((1..=max_wait).contains(&retry), "Retry-After {retry}");
    assert!(
        !seen
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("set-cookie")),
        "{seen:#?}"
    );
    assert_eq!(seen.auth, None, "a 429 counts no credential: {seen:#?}");
}

#[tokio::test]
async fn login_endpoints_draw_on_a_bucket_of_logins_burst() {
    // 3 logins at once, then one a second: the requests below are sent in far less than the
    // 20 s it would take for the refills to keep up with them.
    let h = limited_harness(1, 3, 30);
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    for _ in 0..23 {
        answers.push(h.send(&get("/_sso/login?rd=%2F").nav()).await);
    }
    let elapsed = started.elapsed().as_secs();
    let allowed = answers.iter().filter(|s| s.status == Some(302)).count() as u64;
    assert!(
        (3..=3 + elapsed + 1).contains(&allowed),
        "{allowed} logins allowed in {elapsed} s, burst 3 at 1/s"
    );
    let limited: Vec<&Seen> = answers.iter().filter(|s| s.status == Some(429)).collect();
    assert_eq!(limited.len() as u64, 23 - allowed);
    assert!(!limited.is_empty());
    for seen in limited {
        assert_limited(seen, 1);
        assert_eq!(seen.outcome, "internal");
    }
    // HTML for a navigation, JSON above for the same: the answer follows the client.
    // Requests outside the login endpoints draw nothing.
    let acme = h.cookie("acme", "alice");
    assert_eq!(h.send(&get("/r").cookie(&acme)).await.outcome, "proxied");
    assert_eq!(h.send(&get("/r").nav()).await.status, Some(302));
    // A query token is a login request too.
    let query = format!("/r?access_token={}", token(ACME_SECRET, json!({})));
    let seen = h.send(&get(&query).api()).await;
    if started.elapsed().as_secs() < 20 {
        assert_limited(&seen, 1);
        assert_eq!(seen.outcome, "unauthorized");
    }
}

#[tokio::test]
async fn an_empty_failure_budget_refuses_unknown_credentials_before_checking_them() {
    // Two refused credentials a minute.
    let h = limited_harness(10, 50, 2);
    let good_cookie = h.cookie("acme", "alice");
    let cached = token(GLOBEX_SECRET, json!({}));
    let on_globex = |r: Req| r.api().host("globex.test");
    assert_eq!(
        h.send(&on_globex(get("/r")).bearer(&cached)).await.outcome,
        "proxied"
    );

    let forged = token(WRONG_SECRET, json!({}));
    for _ in 0..2 {
        let seen = h.send(&on_globex(get("/r")).bearer(&forged)).await;
        assert_eq!(seen.auth, Some(("bearer", "bad_signature")), "{seen:#?}");
    }
    // Locked out: a fresh, valid token is refused without being checked (a check would have
    // accepted it, and cached it), and so is every other credential that is not known good.
    let cached_before = h.shared.cache.entries();
    let fresh = token(GLOBEX_SECRET, json!({}));
    let seen = h.send(&on_globex(get("/r")).bearer(&fresh)).await;
    assert_limited(&seen, 30);
    assert_eq!(
        h.shared.cache.entries(),
        cached_before,
        "the refused token was verified and cached"
    );
    assert_eq!(
        (seen.outcome, seen.org.as_deref()),
        ("unauthorized", Some("globex"))
    );
    assert_limited(
        &h.send(&get("/r").api().cookie("ssogate_session=forged"))
            .await,
        30,
    );
    let jti = ssogate::session::random_id();
    let jwt = format!("/_sso/jwt?jwt={}", token(ACME_SECRET, json!({"jti": jti})));
    let seen = h.send(&get(&jwt).nav()).await;
    assert_limited(&seen, 30);
    assert!(
        seen.body.contains("Request id"),
        "HTML for a navigation: {seen:#?}"
    );
    assert_limited(&h.send(&get("/_sso/login").nav()).await, 30);
    let whoami = h
        .send(&get("/_sso/whoami").api().host("globex.test").bearer(&fresh))
        .await;
    assert_limited(&whoami, 30);

    // Known-good credentials keep being served; requests without any are answered as usual,
    // public paths are never limited.
    let seen = h.send(&get("/r").cookie(&good_cookie)).await;
    assert_eq!(
        (seen.outcome, seen.auth),
        ("proxied", Some(("cookie", "ok")))
    );
    let seen = h.send(&on_globex(get("/r")).bearer(&cached)).await;
    assert_eq!(
        (seen.outcome, seen.auth),
        ("proxied", Some(("bearer", "ok")))
    );
    assert_eq!(h.send(&get("/r").nav()).await.status, Some(302));
    assert_eq!(h.send(&get("/r").api()).await.status, Some(401));
    assert_eq!(
        h.send(&get("/public/a").cookie("ssogate_session=forged"))
            .await
            .outcome,
        "public"
    );
    let seen = h
        .send(&get("/_sso/whoami").api().cookie(&good_cookie))
        .await;
    assert_eq!(seen.status, Some(200));

    // The valid URL token refused unchecked was not spent either.
    // (Spending it here succeeds only if nothing spent it before.)
    let unspent = h
        .shared
        .replay
        .spend(
            &ssogate::replay::jti_key("acme", &jti),
            ssogate::clock::now() + 600,
        )
        .await
        .unwrap();
    assert!(unspent, "the refused token's jti was spent");
}

#[tokio::test]
async fn every_kind_of_refused_credential_draws_on_the_failure_bucket() {
    let client = basic("acme-reader", "wrong");
    let kinds: Vec<(&str, Req)> = vec![
        (
            "tampered cookie",
            get("/r").api().cookie("ssogate_session=x"),
        ),
        (
            "expired cookie",
            get("/r").nav().cookie(&harness().session("acme", "o", 1)),
        ),
        (
            "bad bearer",
            get("/r")
                .api()
                .host("globex.test")
                .bearer(&token(WRONG_SECRET, json!({}))),
        ),
        (
            "bad query token",
            get(&format!(
                "/r?access_token={}",
                token(WRONG_SECRET, json!({}))
            )),
        ),
        (
            "bad jwt",
            get(&format!("/_sso/jwt?jwt={}", token(WRONG_SECRET, json!({})))),
        ),
        ("unknown code", get("/_sso/authorize?code=nope")),
        (
            "bad client secret",
            post("/_sso/code", "{}").header("Authorization", &client),
        ),
        (
            "callback without state match",
            get("/_sso/callback?state=x&token=y"),
        ),
        // whoami and the bridge page count no credential, but refuse one all the same.
        (
            "whoami, tampered cookie",
            get("/_sso/whoami").api().cookie("ssogate_session=x"),
        ),
        (
            "bridge, tampered cookie",
            get("/_sso/bridge").cookie("ssogate_session=x"),
        ),
    ];
    for (name, req) in kinds {
        // One refusal a minute: after one, a fresh valid Bearer is refused unchecked.
        let h = limited_harness(10, 50, 1);
        let first = h.send(&req).await;
        let counted = !name.starts_with("whoami") && !name.starts_with("bridge");
        match first.auth {
            Some((_, result)) => assert!(counted && result != "ok", "{name}: {first:#?}"),
            None => assert!(!counted, "{name}: {first:#?}"),
        }
        let fresh = token(GLOBEX_SECRET, json!({}));
        let seen = h
            .send(&get("/r").api().host("globex.test").bearer(&fresh))
            .await;
        assert_eq!(
            seen.status,
            Some(429),
            "{name}: one refusal should empty the bucket"
        );
    }
    // Not refusals of a credential: a disabled org, no credential at all.
    for (name, req) in [
        (
            "disabled org",
            get("/r")
                .api()
                .host("initech.test")
                .bearer(&token(ACME_SECRET, json!({}))),
        ),
        ("no credential", get("/r").api()),
    ] {
        let h = limited_harness(10, 50, 1);
        h.send(&req).await;
        let fresh = token(GLOBEX_SECRET, json!({}));
        let seen = h
            .send(&get("/r").api().host("globex.test").bearer(&fresh))
            .await;
        assert_eq!(seen.outcome, "proxied", "{name} drew on the failure bucket");
    }
}
