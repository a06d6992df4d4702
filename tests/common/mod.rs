//! Black-box harness shared by the integration tests.
//!
//! * [`Upstream`]: a real HTTP/1.1 app (hyper) that echoes every request as JSON and counts them.
//! * [`Gate`]: writes a config.yaml + secret files into a tempdir, runs the `ssogate` binary,
//!   waits for `/readyz`, and offers a small request builder ([`Req`]) and response type ([`Resp`]).
//! * [`Jar`]: a tiny cookie jar.
//! * Token helpers: [`hs256`], [`raw_jwt`], [`claims`], ...
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
pub mod browser;
pub mod keys;
pub mod ops;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// Session cookie name with `session.secure: false`.
pub const PLAIN_COOKIE: &str = "ssogate_session";
/// Session cookie name with `session.secure: true` (the default).
pub const SECURE_COOKIE: &str = "__Host-ssogate";

pub const ACME_LOGIN: &str = "https://portal.acme.example/sso/dash?x=1";
pub const ACME_LOGIN_BASE: &str = "https://portal.acme.example/sso/dash";
pub const ACME_LOGOUT: &str = "https://portal.acme.example/bye";
pub const GLOBEX_LOGIN: &str = "https://portal.globex.example/login";

/// The base config of most tests: two orgs, acme (default, Host acme.test, path /acme/,
/// org_claim orgId, home /home) and globex (Host globex.test, home /).
pub const BASE: &str = r#"
listen: 127.0.0.1:{proxy_port}
admin_listen: 127.0.0.1:{admin_port}
upstream: http://127.0.0.1:{upstream_port}
public_url: http://127.0.0.1:{proxy_port}
public_paths: [/public/]
session:
  secret_file: session.key
  secure: false
organizations:
  acme:
    hosts: [acme.test]
    paths: [/acme/]
    login_url: https://portal.acme.example/sso/dash?x=1
    home_path: /home
    logout_url: https://portal.acme.example/bye
    keys: [{ alg: HS256, secret_file: acme.secret }]
    org_claim: orgId
  globex:
    hosts: [globex.test]
    login_url: https://portal.globex.example/login
    keys: [{ alg: HS256, secret_file: globex.secret }]
default_org: acme
"#;

/// Secrets written by every [`Gate`] (ASCII, so they can be searched for in logs).
/// acme.secret is written with a trailing "\n" (which the SPEC says is stripped).
pub const SESSION_SECRET: &[u8] = b"session-secret-0123456789abcdefghijklmnopqrstuvwxyz";
pub const ACME_SECRET: &[u8] = b"acme-hs256-secret-0123456789abcdefghijklmnopq";
pub const GLOBEX_SECRET: &[u8] = b"globex-hs256-secret-0123456789abcdefghijklmnop";
pub const WRONG_SECRET: &[u8] = b"wrong-hs256-secret-0123456789abcdefghijklmnop";

// ---------------------------------------------------------------------------------------------
// Misc helpers
// ---------------------------------------------------------------------------------------------

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().unwrap().port()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn random_id() -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..20)
        .map(|_| {
            let n: u8 = rng.random_range(0..36);
            if n < 10 {
                (b'0' + n) as char
            } else {
                (b'a' + n - 10) as char
            }
        })
        .collect()
}

/// Percent-encode everything but unreserved characters (for query values).
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Query parameters of an absolute URL, decoded, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("not an absolute URL {url:?}: {e}"));
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// Standard, valid claims for a URL-delivered token: sub, email, groups, iat=now, exp=now+300,
/// a random jti.
pub fn claims(sub: &str) -> Value {
    let n = now();
    json!({
        "sub": sub,
        "email": format!("{sub}@example.test"),
        "groups": ["dev", "ops"],
        "iat": n,
        "exp": n + 300,
        "jti": random_id(),
    })
}

/// `claims(sub)` with `extra`'s keys merged in (a `null` value removes the key).
pub fn claims_with(sub: &str, extra: Value) -> Value {
    let mut c = claims(sub);
    let m = c.as_object_mut().unwrap();
    for (k, v) in extra.as_object().expect("extra must be an object") {
        if v.is_null() {
            m.remove(k);
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    c
}

/// An HS256 token signed with `secret` (through jsonwebtoken).
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("encode jwt")
}

/// Sign `h_b64.p_b64` (already-encoded parts, may be garbage) with HMAC `alg`.
pub fn sign_parts(h_b64: &str, p_b64: &str, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    let msg = format!("{h_b64}.{p_b64}");
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        alg,
    )
    .expect("sign");
    format!("{msg}.{sig}")
}

/// A token from arbitrary header / payload JSON text, HMAC-SHA256-signed with `secret`.
pub fn raw_jwt(header_json: &str, payload_json: &str, secret: &[u8]) -> String {
    sign_parts(
        &b64url(header_json.as_bytes()),
        &b64url(payload_json.as_bytes()),
        secret,
        jsonwebtoken::Algorithm::HS256,
    )
}

/// A token from arbitrary header / payload JSON with an empty signature (`alg: none` style).
pub fn unsigned_jwt(header_json: &str, payload_json: &str) -> String {
    format!(
        "{}.{}.",
        b64url(header_json.as_bytes()),
        b64url(payload_json.as_bytes())
    )
}

// ---------------------------------------------------------------------------------------------
// Upstream (the app)
// ---------------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// A real HTTP/1.1 server answering every request 200 with a JSON echo:
/// `{"method", "path", "query", "headers": {lowercased name: [values]}, "body"}`.
/// Serves HTTP/1.1 on an ephemeral 127.0.0.1 port, each request answered by `handle`, until
/// the returned sender fires (or is dropped). Returns the port.
pub fn serve_http<F, Fut>(handle: F) -> (u16, tokio::sync::oneshot::Sender<()>)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind a test server");
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let rt = runtime();
    let listener = {
        let _g = rt.enter();
        tokio::net::TcpListener::from_std(std_listener).expect("tokio listener")
    };
    rt.spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => break,
                acc = listener.accept() => {
                    let Ok((stream, _)) = acc else { continue };
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let svc = hyper::service::service_fn(move |req| {
                            let reply = handle(req);
                            async move { Ok::<_, Infallible>(reply.await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .await;
                    });
                }
            }
        }
    });
    (port, tx)
}

pub struct Upstream {
    pub port: u16,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Value>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c2, s2) = (count.clone(), seen.clone());
        let (port, tx) = serve_http(move |req| echo(req, c2.clone(), s2.clone()));
        Upstream {
            port,
            count,
            seen,
            stop: Some(tx),
        }
    }

    /// How many requests reached the app so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Every request the app saw (echo JSON), oldest first.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn echo(
    req: hyper::Request<hyper::body::Incoming>,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Value>>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt as _;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in parts.headers.iter() {
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let v = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    count.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(v.clone());
    let mut resp = hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json");
    // `X-Test-Response-Header: Name: value` makes the app send `Name: value` back.
    for h in parts.headers.get_all(RESPONSE_HEADER_REQUEST).iter() {
        if let Some((n, val)) = h.to_str().ok().and_then(|s| s.split_once(':')) {
            resp = resp.header(n.trim(), val.trim());
        }
    }
    resp.body(http_body_util::Full::new(bytes::Bytes::from(v.to_string())))
        .unwrap()
}

/// All values of a header as the app saw it (from an echo JSON).
pub fn app_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name.to_ascii_lowercase()]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Cookies (name, value) the app received in its Cookie header(s).
pub fn app_cookies(echo: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in app_header(echo, "cookie") {
        for part in h.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (n, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// A request header asking the echo app to add a response header: `Name: value`.
pub const RESPONSE_HEADER_REQUEST: &str = "x-test-response-header";

/// Header names the app saw.
pub fn app_header_names(echo: &Value) -> Vec<String> {
    echo["headers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Responses, Set-Cookie, cookie jar
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// (lowercased name, value), every value in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn location(&self) -> &str {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location header in {self:#?}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:#?}"))
    }

    /// The echo JSON of the app; panics unless the response came from the upstream.
    pub fn app(&self) -> Value {
        assert_eq!(self.status, 200, "expected the app's 200, got {self:#?}");
        let v = self.json();
        assert!(
            v.get("headers").is_some() && v.get("path").is_some(),
            "not an upstream echo: {self:#?}"
        );
        v
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.header_all("set-cookie")
            .into_iter()
            .map(SetCookie::parse)
            .collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<SetCookie> {
        self.set_cookies().into_iter().find(|c| c.name == name)
    }

    /// A Set-Cookie of `name` that stores a value (not a removal).
    pub fn sets_cookie(&self, name: &str) -> bool {
        self.set_cookies()
            .iter()
            .any(|c| c.name == name && !c.is_removal())
    }

    /// Is this a redirect to `login_url` (302 whose Location starts with it)?
    pub fn is_login_redirect(&self, login_url: &str) -> bool {
        self.status == 302
            && self
                .header("location")
                .is_some_and(|l| l.starts_with(login_url))
    }
}

#[derive(Debug, Clone)]
pub struct SetCookie {
    pub raw: String,
    pub name: String,
    pub value: String,
    /// (lowercased attribute name, value)
    pub attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(raw: &str) -> SetCookie {
        let mut parts = raw.split(';');
        let first = parts.next().unwrap_or_default().trim();
        let (name, value) = first.split_once('=').unwrap_or((first, ""));
        let attrs = parts
            .map(|p| {
                let p = p.trim();
                match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                    None => (p.to_ascii_lowercase(), None),
                }
            })
            .collect();
        SetCookie {
            raw: raw.to_string(),
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            attrs,
        }
    }

    pub fn has(&self, attr: &str) -> bool {
        let a = attr.to_ascii_lowercase();
        self.attrs.iter().any(|(k, _)| *k == a)
    }

    pub fn get(&self, attr: &str) -> Option<&str> {
        let a = attr.to_ascii_lowercase();
        self.attrs
            .iter()
            .find(|(k, _)| *k == a)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn max_age(&self) -> Option<i64> {
        self.get("max-age").map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad Max-Age in {:?}", self.raw))
        })
    }

    /// Does this Set-Cookie delete the cookie (Max-Age<=0 or an Expires in the past)?
    pub fn is_removal(&self) -> bool {
        if let Some(ma) = self.max_age() {
            return ma <= 0;
        }
        if let Some(exp) = self.get("expires") {
            return expires_in_past(exp);
        }
        false
    }
}

/// Expires in the past? Recognises the usual removal dates (epoch / any year before now).
fn expires_in_past(exp: &str) -> bool {
    // e.g. "Thu, 01 Jan 1970 00:00:00 GMT": look for a 4-digit year.
    let year = exp
        .split(|c: char| !c.is_ascii_digit())
        .find(|p| p.len() == 4)
        .and_then(|y| y.parse::<i64>().ok());
    match year {
        Some(y) => {
            let this_year = 1970 + now() / 31_556_952;
            y < this_year
        }
        None => false,
    }
}

/// A tiny cookie jar: stores every Set-Cookie name=value, drops removals.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
}

impl Jar {
    pub fn new() -> Jar {
        Jar::default()
    }

    pub fn absorb(&mut self, r: &Resp) {
        for c in r.set_cookies() {
            if c.is_removal() {
                self.cookies.remove(&c.name);
            } else {
                self.cookies.insert(c.name.clone(), c.value.clone());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(|s| s.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_string(), value.to_string());
    }

    pub fn remove(&mut self, name: &str) {
        self.cookies.remove(name);
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

// ---------------------------------------------------------------------------------------------
// The gate (ssogate subprocess)
// ---------------------------------------------------------------------------------------------

pub struct GateBuilder {
    template: String,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl GateBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// An extra file in the config directory (overrides a default one of the same name).
    pub fn file(mut self, name: &str, content: &[u8]) -> Self {
        self.files.push((name.to_string(), content.to_vec()));
        self
    }

    pub fn start(self) -> Gate {
        let upstream = Upstream::start();
        let proxy_port = free_port();
        let mut admin_port = free_port();
        while admin_port == proxy_port {
            admin_port = free_port();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = fill(&self.template, proxy_port, admin_port, upstream.port);
        write_default_files(dir.path());
        for (name, content) in &self.files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, &yaml).unwrap();
        Gate::spawn(
            dir,
            config_path,
            proxy_port,
            admin_port,
            upstream,
            &self.env,
        )
    }
}

fn fill(template: &str, proxy_port: u16, admin_port: u16, upstream_port: u16) -> String {
    template
        .replace("{proxy_port}", &proxy_port.to_string())
        .replace("{admin_port}", &admin_port.to_string())
        .replace("{upstream_port}", &upstream_port.to_string())
}

/// session.key, acme.secret (with a trailing newline), globex.secret.
pub fn write_default_files(dir: &Path) {
    std::fs::write(dir.join("session.key"), SESSION_SECRET).unwrap();
    let mut acme = ACME_SECRET.to_vec();
    acme.push(b'\n');
    std::fs::write(dir.join("acme.secret"), acme).unwrap();
    std::fs::write(dir.join("globex.secret"), GLOBEX_SECRET).unwrap();
}

pub struct Gate {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub proxy_port: u16,
    pub admin_port: u16,
    pub upstream: Upstream,
    child: Child,
    agent: ureq::Agent,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gate {
    /// Runs ssogate with `--config config_path` (a file laid out inside `dir`), stderr
    /// captured in `dir/ssogate.stderr.log`, and waits for `/readyz`.
    pub fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        proxy_port: u16,
        admin_port: u16,
        upstream: Upstream,
        env: &[(String, String)],
    ) -> Gate {
        let log_path = dir.path().join("ssogate.stderr.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssogate"));
        cmd.args(["run", "--config"])
            .arg(&config_path)
            // relative paths in the config must resolve against the config's directory, not the cwd
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn ssogate");
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .accept("")
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        let mut gate = Gate {
            dir,
            config_path,
            log_path,
            proxy_port,
            admin_port,
            upstream,
            child,
            agent,
        };
        gate.wait_ready();
        gate
    }

    pub fn builder(template: &str) -> GateBuilder {
        GateBuilder {
            template: template.to_string(),
            env: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn start(template: &str) -> Gate {
        Gate::builder(template).start()
    }

    /// The base config ([`BASE`]).
    pub fn base() -> Gate {
        Gate::start(BASE)
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.proxy_port, target)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(500)))
            .build()
            .new_agent();
        let url = format!("http://127.0.0.1:{}/readyz", self.admin_port);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ssogate exited early ({status}); config:\n{}\nlogs:\n{}",
                    std::fs::read_to_string(&self.config_path).unwrap_or_default(),
                    self.logs()
                );
            }
            if let Ok(r) = probe.get(&url).call() {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("ssogate not ready after 20s; logs:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The captured stderr (JSON log lines).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Assert that none of `needles` appears in the captured logs.
    pub fn assert_logs_free_of(&self, needles: &[&str]) {
        // give the logger a moment to flush the last request
        std::thread::sleep(Duration::from_millis(100));
        let logs = self.logs();
        assert!(!logs.is_empty(), "no logs captured at all");
        for n in needles {
            if n.len() < 8 {
                continue;
            }
            assert!(
                !logs.contains(n),
                "logs contain a secret/token/cookie value {n:?}:\n{logs}"
            );
        }
    }

    pub fn req(&self, method: &str, target: &str) -> Req<'_> {
        Req {
            gate: self,
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
        }
    }

    /// A plain GET (no Accept header).
    pub fn get(&self, target: &str) -> Req<'_> {
        self.req("GET", target)
    }

    pub fn post(&self, target: &str) -> Req<'_> {
        self.req("POST", target)
    }

    /// A browser navigation: `Accept: text/html`, `Sec-Fetch-Mode: navigate`.
    pub fn nav(&self, target: &str) -> Req<'_> {
        self.get(target)
            .header(
                "Accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header("Sec-Fetch-Mode", "navigate")
    }

    /// An API call: `Accept: application/json`, `Sec-Fetch-Mode: cors`.
    pub fn api(&self, target: &str) -> Req<'_> {
        self.get(target)
            .header("Accept", "application/json")
            .header("Sec-Fetch-Mode", "cors")
    }

    /// Flow A's second half: the portal sends the browser back with `token` and `state`.
    pub fn callback(&self, token: &str, state: &str) -> Req<'_> {
        self.nav(&format!(
            "/_sso/callback?token={}&state={}",
            enc(token),
            enc(state)
        ))
    }

    /// Flow B login: `/_sso/jwt?jwt=token` → asserts 302 + session cookie; returns the jar.
    pub fn login_jwt(&self, host: Option<&str>, token: &str, cookie_name: &str) -> Jar {
        let mut r = self.nav(&format!("/_sso/jwt?jwt={}", enc(token)));
        if let Some(h) = host {
            r = r.host(h);
        }
        let resp = r.send();
        assert_eq!(resp.status, 302, "flow B login failed: {resp:#?}");
        assert!(
            resp.sets_cookie(cookie_name),
            "flow B login did not set {cookie_name}: {resp:#?}"
        );
        let mut jar = Jar::new();
        jar.absorb(&resp);
        jar
    }

    /// Flow B login for acme (default org) with `claims(sub)` + orgId.
    pub fn login_acme(&self, sub: &str) -> Jar {
        let t = hs256(ACME_SECRET, &claims_with(sub, json!({"orgId": "acme"})));
        self.login_jwt(None, &t, PLAIN_COOKIE)
    }

    /// Strip the public_url prefix from a Location, so relative and absolute same-origin
    /// redirects compare equal.
    pub fn loc_path(&self, resp: &Resp) -> String {
        let l = resp.location();
        let pu = self.public_url();
        match l.strip_prefix(&pu) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => l.to_string(),
        }
    }

    /// Send raw bytes to the proxy listener and read the response (until close or 5 s).
    pub fn raw(&self, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.proxy_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    // one response is enough: stop once headers + a possible body arrived
                    if let Some(pos) = find(&out, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&out[..pos]).to_ascii_lowercase();
                        let cl = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok());
                        if let Some(cl) = cl {
                            if out.len() >= pos + 4 + cl {
                                break;
                            }
                        }
                    }
                }
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// GET on the admin listener.
    pub fn admin(&self, path: &str) -> Resp {
        let url = format!("http://127.0.0.1:{}{}", self.admin_port, path);
        to_resp(self.agent.get(&url).call().expect("admin request"))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn to_resp(mut r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r.body_mut().read_to_vec().unwrap_or_default();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub struct Req<'g> {
    gate: &'g Gate,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: Option<Vec<u8>>,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replace (or set) a header.
    pub fn set_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn host(self, host: &str) -> Self {
        self.set_header("Host", host)
    }

    /// Send the jar's cookies.
    pub fn jar(mut self, jar: &Jar) -> Self {
        if !jar.is_empty() {
            self.cookies.push(jar.header());
        }
        self
    }

    /// Add a raw `name=value` cookie.
    pub fn cookie(mut self, pair: &str) -> Self {
        self.cookies.push(pair.to_string());
        self
    }

    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    pub fn send(self) -> Resp {
        let url = self.gate.url(&self.target);
        let mut b = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&url);
        for (n, v) in &self.headers {
            b = b.header(n.as_str(), v.as_str());
        }
        if !self.cookies.is_empty() {
            b = b.header("Cookie", self.cookies.join("; "));
        }
        let res = match self.body {
            Some(body) => self.gate.agent.run(b.body(body).expect("request")),
            None => self.gate.agent.run(b.body(()).expect("request")),
        };
        match res {
            Ok(r) => to_resp(r),
            Err(e) => panic!(
                "transport error for {} {}: {e}\nlogs:\n{}",
                self.method,
                url,
                self.gate.logs()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `ssogate check`
// ---------------------------------------------------------------------------------------------

pub struct CheckOutput {
    pub code: Option<i32>,
    pub stderr: String,
    pub stdout: String,
}

/// Run `ssogate check --config <dir>/config.yaml` on a config written from `yaml` (placeholders
/// filled with arbitrary free ports) plus the default secret files and `extra` files.
pub fn check(yaml: &str, extra: &[(&str, &[u8])]) -> CheckOutput {
    let dir = tempfile::tempdir().unwrap();
    write_default_files(dir.path());
    for (n, c) in extra {
        std::fs::write(dir.path().join(n), c).unwrap();
    }
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, fill(yaml, free_port(), free_port(), free_port())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ssogate"))
        .args(["check", "--config"])
        .arg(&path)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run ssogate check");
    CheckOutput {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Flow A helpers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct LoginRedirect {
    /// decoded `ssoCallback`
    pub sso_callback: String,
    /// the raw `state` value inside ssoCallback
    pub state: String,
    /// decoded `redirectPath`
    pub redirect_path: String,
}

/// Assert that `resp` is flow A's 302 to `login_url` (keeping login_url's own query first, then
/// `ssoCallback` = `<callback_base>/_sso/callback?state=N`, then `redirectPath`), and that the
/// same response sets a state cookie with Max-Age=600. Returns the parsed pieces.
pub fn expect_login_redirect(resp: &Resp, login_url: &str, callback_base: &str) -> LoginRedirect {
    assert_eq!(
        resp.status, 302,
        "expected a 302 to the login_url: {resp:#?}"
    );
    let loc = resp.location();
    assert!(
        loc.starts_with(login_url),
        "Location {loc:?} does not start with login_url {login_url:?}"
    );
    let own = query_pairs(login_url);
    let pairs = query_pairs(loc);
    assert_eq!(
        pairs.len(),
        own.len() + 2,
        "Location {loc:?} should have login_url's query + ssoCallback + redirectPath"
    );
    assert_eq!(
        &pairs[..own.len()],
        &own[..],
        "login_url's own query not kept first: {loc:?}"
    );
    assert_eq!(pairs[own.len()].0, "ssoCallback", "{loc:?}");
    assert_eq!(pairs[own.len() + 1].0, "redirectPath", "{loc:?}");
    let sso_callback = pairs[own.len()].1.clone();
    let redirect_path = pairs[own.len() + 1].1.clone();
    let prefix = format!("{callback_base}/_sso/callback?state=");
    assert!(
        sso_callback.starts_with(&prefix),
        "ssoCallback {sso_callback:?} should be {prefix}N"
    );
    let state = sso_callback[prefix.len()..].to_string();
    assert!(!state.is_empty(), "empty state in {sso_callback:?}");
    assert!(
        !state.contains('&') && !state.contains('?') && !state.contains('#'),
        "state should be a single opaque value: {state:?}"
    );
    // the state cookie: some cookie other than the session cookie, Max-Age=600
    let state_cookies: Vec<SetCookie> = resp
        .set_cookies()
        .into_iter()
        .filter(|c| c.name != PLAIN_COOKIE && c.name != SECURE_COOKIE && !c.is_removal())
        .collect();
    assert_eq!(
        state_cookies.len(),
        1,
        "expected exactly one state cookie on the login redirect: {resp:#?}"
    );
    assert_eq!(
        state_cookies[0].max_age(),
        Some(600),
        "state cookie must have Max-Age=600: {:?}",
        state_cookies[0].raw
    );
    LoginRedirect {
        sso_callback,
        state,
        redirect_path,
    }
}

/// The state cookie set by a login redirect.
pub fn state_cookie(resp: &Resp) -> SetCookie {
    resp.set_cookies()
        .into_iter()
        .find(|c| c.name != PLAIN_COOKIE && c.name != SECURE_COOKIE && !c.is_removal())
        .unwrap_or_else(|| panic!("no state cookie in {resp:#?}"))
}
