//! The ssogate demo: two small HTTP servers in one process.
//!
//! * The **app** (default `127.0.0.1:3000`): an unmodified "dashboard" that
//!   knows nothing about logins. It only reads the identity headers that
//!   ssogate injects and shows every request header it received, so you can
//!   see what ssogate added and that its session cookie never reaches the app.
//!   `/favicon.ico` and `/static/...` are public paths in `config.yaml`.
//!
//! * The **customer portal** (default `127.0.0.1:4000`): the customer's own
//!   login, the other side of flow A. `GET /sso/dash?ssoCallback=URL` answers
//!   with a 302 to `URL&token=<JWT>` when the portal already knows the user,
//!   else it shows a login form first. `GET /` shows flow B (an iframe whose
//!   `src` is `/_sso/jwt?jwt=<JWT>`), `GET /bye` is the org's `logout_url`.
//!
//! Tokens are HS256 JWTs signed with the org secret read from
//! `--acme-secret` (default `demo/secrets/acme.secret`). This example does not
//! use the ssogate library: it talks to ssogate over HTTP only, like a real
//! app and a real portal would.
//!
//! Run it with `./scripts/demo.sh`, or by hand:
//! `cargo run --example demo` next to `ssogate --config config.yaml`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use url::Url;

type Resp = Response<Full<Bytes>>;

/// Lifetime of the tokens the portal issues (flow A callbacks and flow B iframes).
const TOKEN_TTL_SECS: u64 = 120;
/// The demo portal's own login cookie (not ssogate's).
const PORTAL_COOKIE: &str = "demo_portal_session";
/// Prefixes of ssogate's cookie names (`secure: false` and `secure: true`),
/// covering the session cookie and flow A's state cookie.
const SSOGATE_COOKIE_PREFIXES: [&str; 2] = ["ssogate_session", "__Host-ssogate"];

#[derive(Parser, Debug)]
#[command(
    name = "demo",
    about = "ssogate demo: an unmodified app (:3000) and a customer login portal (:4000)"
)]
struct Args {
    /// Where the demo app listens (ssogate's `upstream`).
    #[arg(long, default_value = "127.0.0.1:3000")]
    app_listen: SocketAddr,
    /// Where the demo customer portal listens (the org's `login_url` host).
    #[arg(long, default_value = "127.0.0.1:4000")]
    portal_listen: SocketAddr,
    /// The acme org's HS256 secret (one trailing newline is stripped).
    #[arg(long, default_value = "demo/secrets/acme.secret")]
    acme_secret: PathBuf,
    /// ssogate's public URL, as the browser sees it (used for the flow B iframe
    /// and to decide which callback URLs may receive tokens).
    #[arg(long, default_value = "http://localhost:8080")]
    gateway_url: Url,
    /// The org id put in the `orgId` claim.
    #[arg(long, default_value = "acme")]
    org: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(msg) = run(args).await {
        eprintln!("demo: error: {msg}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let secret = read_secret(&args.acme_secret)?;
    let portal = Arc::new(Portal {
        secret,
        org: args.org.clone(),
        gateway: args.gateway_url.clone(),
        sessions: Mutex::new(HashMap::new()),
    });

    let app_listener = TcpListener::bind(args.app_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (app): {e}", args.app_listen))?;
    let portal_listener = TcpListener::bind(args.portal_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (portal): {e}", args.portal_listen))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a clone of `alive`; when all are dropped,
    // `drained.recv()` returns None and shutdown is complete.
    let (alive, mut drained) = mpsc::channel::<()>(1);

    let app_task = tokio::spawn(serve(
        "app",
        app_listener,
        |req| async move { app(req).await },
        stop_rx.clone(),
        alive.clone(),
    ));
    let portal_task = tokio::spawn(serve(
        "portal",
        portal_listener,
        move |req| {
            let portal = Arc::clone(&portal);
            async move { portal.handle(req).await }
        },
        stop_rx,
        alive,
    ));
    eprintln!(
        "demo: app on http://{} (put ssogate in front of it), portal on http://{}",
        args.app_listen, args.portal_listen
    );

    shutdown_signal().await;
    eprintln!("demo: shutting down");
    let _ = stop_tx.send(true);
    let _ = app_task.await;
    let _ = portal_task.await;
    // Give in-flight requests a moment to finish.
    let _ = tokio::time::timeout(Duration::from_secs(5), drained.recv()).await;
    eprintln!("demo: bye");
    Ok(())
}

/// Reads a secret the way ssogate does: raw bytes, one trailing `\n` or
/// `\r\n` removed.
fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the org secret {}: {e} (run from the repo root, or pass --acme-secret)",
            path.display()
        )
    })?;
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    if bytes.len() < 32 {
        return Err(format!(
            "the org secret {} is {} bytes long; HS256 secrets need at least 32",
            path.display(),
            bytes.len()
        ));
    }
    Ok(bytes)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Accepts connections until `stop` flips, serving each with `handler` and
/// logging one line per request (the path only: query strings may hold tokens).
async fn serve<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    handler: F,
    mut stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("[{name}] accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let handler = handler.clone();
        let mut stop = stop.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let svc = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let method = req.method().clone();
                    let path = req.uri().path().to_owned();
                    let resp = handler(req).await;
                    eprintln!("[{name}] {method} {path} -> {}", resp.status().as_u16());
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Small HTTP helpers
// ---------------------------------------------------------------------------

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn html(status: StatusCode, body: String) -> Resp {
    response(status, "text/html; charset=utf-8", body)
}

fn redirect(status: StatusCode, location: &str) -> Resp {
    let mut resp = response(status, "text/plain; charset=utf-8", "redirecting\n");
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => html(
            StatusCode::BAD_REQUEST,
            page(
                "Bad redirect",
                "<p>The redirect target is not a valid header value.</p>",
            ),
        ),
    }
}

fn set_cookie(resp: &mut Resp, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// HTML-escapes text for element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn query_params(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn cookies(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Reads an `application/x-www-form-urlencoded` body (at most 64 KiB).
async fn form_body(req: Request<Incoming>) -> Option<HashMap<String, String>> {
    let body = Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .ok()?;
    Some(
        url::form_urlencoded::parse(&body.to_bytes())
            .into_owned()
            .collect(),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

const STYLE: &str = r#"
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f7fb; }
header { background: #243b6b; color: #fff; padding: .7em 1.5em; display: flex; gap: 1.5em; align-items: center; flex-wrap: wrap; }
header a { color: #cfe0ff; }
header strong { font-size: 1.1em; }
main { max-width: 60em; margin: 1.5em auto; padding: 0 1.5em; }
.card { background: #fff; border: 1px solid #dde3ee; border-radius: 8px; padding: 1em 1.5em; margin-bottom: 1.2em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e6e9f0; vertical-align: top; }
td { font-family: ui-monospace, monospace; word-break: break-all; }
tr.sso td { background: #e7f6ea; }
tr.fwd td { background: #eef3fd; }
.chip { display: inline-block; background: #e6ecfa; border-radius: 10px; padding: 0 .6em; margin-right: .3em; }
.ok { color: #1d7a35; } .warn { color: #a34b00; }
code { background: #eef0f5; padding: 0 .3em; border-radius: 3px; }
label { display: block; margin: .5em 0; } input[type=text], input[type=email] { width: 22em; padding: .3em; }
button { padding: .4em 1.2em; }
iframe { width: 100%; height: 34em; border: 2px dashed #8aa1cf; border-radius: 8px; background: #fff; }
"#;

/// A minimal stand-alone page (portal and error pages).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <main>{body}</main></body></html>",
        title = esc(title),
    )
}

// ---------------------------------------------------------------------------
// The app (behind ssogate)
// ---------------------------------------------------------------------------

const FAVICON_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#243b6b\"/>\
<path d=\"M9 22V10h5a4 4 0 0 1 0 8h-5M17 22l6-12\" stroke=\"#fff\" stroke-width=\"2.5\" fill=\"none\"/></svg>";

async fn app(req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return html(
            StatusCode::METHOD_NOT_ALLOWED,
            page(
                "Method not allowed",
                "<p>The demo app only answers GET.</p>",
            ),
        );
    }
    match path.as_str() {
        // Public paths (see `public_paths` in config.yaml): no session needed.
        "/favicon.ico" => response(StatusCode::OK, "image/svg+xml", FAVICON_SVG),
        "/static/app.css" => response(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        p if p.starts_with("/static/") => response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such static file\n",
        ),
        // A JSON endpoint, as a single-page app's script would call it.
        "/api/me" => {
            let body = json!({
                "user": header_str(&req, "x-auth-request-user"),
                "email": header_str(&req, "x-auth-request-email"),
                "groups": header_str(&req, "x-auth-request-groups"),
                "org": header_str(&req, "x-auth-request-org"),
            });
            response(StatusCode::OK, "application/json", body.to_string())
        }
        "/" => app_page(&req, "Home", home_body()),
        "/reports" => {
            let q = query_params(&req).get("q").cloned().unwrap_or_default();
            let next = q.parse::<u32>().map(|n| n + 1).unwrap_or(1);
            let body = format!(
                "<h2>Report <code>q={}</code></h2>\
                 <p>Another page of the app: ssogate let you through with the same session cookie. \
                 The query string travelled through the login untouched.</p>\
                 <p><a href=\"/reports?q={next}\">Next report (q={next})</a></p>",
                esc(&q)
            );
            app_page(&req, "Reports", body)
        }
        _ => html(
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                "<h1>Not found</h1><p><a href=\"/\">Dashboard home</a></p>",
            ),
        ),
    }
}

fn home_body() -> String {
    "<h2>Welcome</h2>\
     <p>This app has no login code at all. It reads who you are from the headers that \
     ssogate injects (highlighted in green below) and trusts them, because ssogate strips \
     any client-sent copy of those headers first.</p>\
     <p>Try <a href=\"/reports?q=1\">a report</a>, \
     <a href=\"/_sso/whoami\"><code>/_sso/whoami</code></a> (ssogate's view of your session), \
     <a href=\"/api/me\"><code>/api/me</code></a> (a JSON endpoint of the app), or \
     <a href=\"/_sso/logout\"><code>/_sso/logout</code></a>.</p>"
        .to_owned()
}

fn app_page(req: &Request<Incoming>, title: &str, body: String) -> Resp {
    let user = header_str(req, "x-auth-request-user");
    let email = header_str(req, "x-auth-request-email").unwrap_or("—");
    let org = header_str(req, "x-auth-request-org").unwrap_or("—");
    let groups: String = header_str(req, "x-auth-request-groups")
        .map(|g| {
            g.split(',')
                .map(|x| format!("<span class=\"chip\">{}</span>", esc(x)))
                .collect()
        })
        .unwrap_or_else(|| "—".to_owned());

    let identity = match user {
        Some(u) => format!(
            "<div class=\"card\"><h2>Signed in as <code>{}</code></h2><table>\
             <tr><th>Email</th><td>{}</td></tr>\
             <tr><th>Groups</th><td>{groups}</td></tr>\
             <tr><th>Organization</th><td>{}</td></tr></table></div>",
            esc(u),
            esc(email),
            esc(org),
        ),
        None => "<div class=\"card warn\"><h2>No identity headers</h2>\
                 <p>This request did not come through ssogate (or ssogate injected nothing). \
                 Open the app through ssogate instead: \
                 <a href=\"http://localhost:8080/\">http://localhost:8080/</a>.</p></div>"
            .to_owned(),
    };

    let mut rows: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    rows.sort();
    let table: String = rows
        .iter()
        .map(|(k, v)| {
            let class = if k.starts_with("x-auth-request-") {
                " class=\"sso\""
            } else if k.starts_with("x-forwarded-") {
                " class=\"fwd\""
            } else {
                ""
            };
            format!("<tr{class}><th>{}</th><td>{}</td></tr>", esc(k), esc(v))
        })
        .collect();

    let names: Vec<String> = cookies(req).into_iter().map(|(n, _)| n).collect();
    let leaked: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| SSOGATE_COOKIE_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    let cookie_note = if leaked.is_empty() {
        format!(
            "<p class=\"ok\">&#10003; ssogate's session cookie (<code>ssogate_session</code>) \
             was removed before the request reached the app.{}</p>",
            if names.iter().any(|n| n == PORTAL_COOKIE) {
                " The <code>demo_portal_session</code> cookie you may see is the demo portal's \
                 own login: browsers share cookies between ports of the same host, so on \
                 <code>localhost</code> the portal's cookie travels here too."
            } else {
                ""
            }
        )
    } else {
        format!(
            "<p class=\"warn\">&#9888; The app received ssogate's session cookie ({}).</p>",
            esc(&leaked.join(", "))
        )
    };

    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Acme dashboard</title>\
         <link rel=\"icon\" href=\"/favicon.ico\"><link rel=\"stylesheet\" href=\"/static/app.css\">\
         </head><body>\
         <header><strong>Acme dashboard</strong> <span>(the demo app)</span>\
         <a href=\"/\">Home</a><a href=\"/reports?q=1\">Reports</a>\
         <a href=\"/_sso/whoami\">/_sso/whoami</a><a href=\"/_sso/logout\">Log out</a></header>\
         <main>{identity}<div class=\"card\">{body}</div>\
         <div class=\"card\"><h2>Request headers the app received</h2>\
         <p>Green: identity headers set by ssogate. Blue: forwarding headers set by ssogate.</p>\
         {cookie_note}<table>{table}</table></div></main></body></html>",
        title = esc(title),
    );
    html(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------
// The customer portal (the org's login_url and logout_url)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct User {
    username: String,
    name: String,
    email: String,
    groups: Vec<String>,
}

struct Portal {
    secret: Vec<u8>,
    org: String,
    gateway: Url,
    /// The portal's own login sessions: cookie value -> user.
    sessions: Mutex<HashMap<String, User>>,
}

impl Portal {
    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_owned();
        match (req.method().clone(), path.as_str()) {
            (Method::GET | Method::HEAD, "/") => self.home(&req),
            (Method::GET | Method::HEAD, "/sso/dash") => self.sso_dash(&req),
            (Method::POST, "/sso/login") => self.login(req).await,
            (Method::POST, "/logout") => self.logout(&req),
            (Method::GET | Method::HEAD, "/bye") => self.bye(&req),
            (Method::GET | Method::HEAD, "/favicon.ico") => {
                response(StatusCode::OK, "image/svg+xml", FAVICON_SVG)
            }
            _ => html(
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    "<h1>Not found</h1><p><a href=\"/\">Portal home</a></p>",
                ),
            ),
        }
    }

    fn current_user(&self, req: &Request<Incoming>) -> Option<User> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        cookies(req)
            .into_iter()
            .filter(|(n, _)| n == PORTAL_COOKIE)
            .find_map(|(_, v)| sessions.get(&v).cloned())
    }

    /// Signs a token the acme org would accept (HS256, org secret).
    fn token(&self, user: &User) -> Option<String> {
        let iat = now();
        let (first, last) = user
            .name
            .split_once(' ')
            .unwrap_or((user.name.as_str(), ""));
        let role = if user.groups.iter().any(|g| g == "admins") {
            "admin"
        } else {
            "viewer"
        };
        let claims = json!({
            "sub": user.username,
            "email": user.email,
            "name": user.name,
            "groups": user.groups,
            "orgId": self.org,
            // Basedash-style claims (flow B) ride along; ssogate ignores what it does not map.
            "firstName": first,
            "lastName": last,
            "role": role,
            "iat": iat,
            "exp": iat + TOKEN_TTL_SECS,
            "jti": random_hex(16),
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| eprintln!("[portal] cannot sign a token: {e}"))
        .ok()
    }

    /// A real portal only hands tokens to the dashboard it trusts: the callback
    /// must be on ssogate's origin (or a loopback host in this local demo).
    fn callback_allowed(&self, callback: &str) -> bool {
        let Ok(url) = Url::parse(callback) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        if url.origin() == self.gateway.origin() {
            return true;
        }
        matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        )
    }

    /// Flow A's last hop: 302 (or 303 after a form POST) to the callback with
    /// `token=<JWT>` appended.
    fn token_redirect(&self, status: StatusCode, callback: &str, user: &User) -> Resp {
        let Some(token) = self.token(user) else {
            return sign_failed();
        };
        let sep = if callback.contains('?') { '&' } else { '?' };
        redirect(status, &format!("{callback}{sep}token={token}"))
    }

    fn bad_callback() -> Resp {
        html(
            StatusCode::BAD_REQUEST,
            page(
                "Bad callback",
                "<h1>Refused</h1><p>The <code>ssoCallback</code> parameter is missing or \
                 points to a site this portal does not send tokens to.</p>",
            ),
        )
    }

    /// `GET /sso/dash?ssoCallback=URL&redirectPath=P` — the org's `login_url`.
    fn sso_dash(&self, req: &Request<Incoming>) -> Resp {
        let params = query_params(req);
        let callback = params.get("ssoCallback").cloned().unwrap_or_default();
        if !self.callback_allowed(&callback) {
            return Self::bad_callback();
        }
        let redirect_path = params.get("redirectPath").cloned().unwrap_or_default();
        match self.current_user(req) {
            // Already signed in to the portal: answer without any interaction.
            Some(user) => self.token_redirect(StatusCode::FOUND, &callback, &user),
            None => html(
                StatusCode::OK,
                login_form(
                    &format!(
                        "<p>ssogate sent you here because you have no dashboard session. \
                         Sign in to the portal and it will send you back to the dashboard{}.</p>",
                        if redirect_path.is_empty() {
                            String::new()
                        } else {
                            format!(" at <code>{}</code>", esc(&redirect_path))
                        }
                    ),
                    &[("ssoCallback", &callback), ("redirectPath", &redirect_path)],
                ),
            ),
        }
    }

    /// `POST /sso/login` — the portal's own login form.
    async fn login(&self, req: Request<Incoming>) -> Resp {
        let Some(form) = form_body(req).await else {
            return html(
                StatusCode::BAD_REQUEST,
                page("Bad request", "<p>The form could not be read.</p>"),
            );
        };
        let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let user = User {
            username: field("username"),
            name: field("name"),
            email: field("email"),
            groups: field("groups")
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        if user.username.is_empty() || user.email.is_empty() {
            return html(
                StatusCode::BAD_REQUEST,
                page(
                    "Sign-in failed",
                    "<h1>Sign-in failed</h1><p>Username and email are required. \
                     Go back and try again.</p>",
                ),
            );
        }
        let session = random_hex(32);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.clone(), user.clone());
        let cookie = format!("{PORTAL_COOKIE}={session}; HttpOnly; SameSite=Lax; Path=/");

        let callback = field("ssoCallback");
        let mut resp = if callback.is_empty() {
            redirect(StatusCode::SEE_OTHER, "/")
        } else if self.callback_allowed(&callback) {
            self.token_redirect(StatusCode::SEE_OTHER, &callback, &user)
        } else {
            Self::bad_callback()
        };
        set_cookie(&mut resp, &cookie);
        resp
    }

    /// `POST /logout` — ends the portal's own login.
    fn logout(&self, req: &Request<Incoming>) -> Resp {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for (name, value) in cookies(req) {
            if name == PORTAL_COOKIE {
                sessions.remove(&value);
            }
        }
        drop(sessions);
        let mut resp = redirect(StatusCode::SEE_OTHER, "/");
        set_cookie(
            &mut resp,
            &format!("{PORTAL_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
        );
        resp
    }

    /// `GET /bye` — the org's `logout_url`.
    fn bye(&self, req: &Request<Incoming>) -> Resp {
        let gateway = esc(self.gateway.as_str());
        let still = match self.current_user(req) {
            Some(user) => format!(
                "<p>The portal still remembers you as <code>{}</code>, so opening the dashboard \
                 again signs you in without a form: that is flow A's seamless renewal.</p>\
                 <form method=\"post\" action=\"/logout\"><button>Sign out of the portal too</button></form>",
                esc(&user.username)
            ),
            None => String::new(),
        };
        html(
            StatusCode::OK,
            page(
                "Signed out",
                &format!(
                    "<h1>You are signed out of the dashboard</h1>\
                     <p>ssogate cleared its session cookie and sent you to the org's \
                     <code>logout_url</code>, this page of the customer portal.</p>{still}\
                     <p><a href=\"{gateway}\">Back to the dashboard</a> · <a href=\"/\">Portal home</a></p>"
                ),
            ),
        )
    }

    /// `GET /` — explains the demo and shows flow B (an embedded dashboard).
    fn home(&self, req: &Request<Incoming>) -> Resp {
        let gateway = esc(self.gateway.as_str());
        let intro = format!(
            "<h1>Acme customer portal (demo)</h1>\
             <p>This is the <em>customer's</em> site. In the demo it plays the organization \
             <code>{org}</code> that logs its users in to the dashboard served by ssogate at \
             <a href=\"{gateway}\">{gateway}</a>.</p>\
             <ul><li><b>Flow A</b> (redirect + token callback): open <a href=\"{gateway}\">the \
             dashboard</a> without a session; ssogate redirects you to this portal's \
             <code>/sso/dash</code>, which redirects back to ssogate's callback with a signed \
             token.</li>\
             <li><b>Flow B</b> (IdP-initiated URL token): below, this portal signs a fresh \
             token and embeds the dashboard in an iframe whose <code>src</code> is \
             <code>/_sso/jwt?jwt=&lt;JWT&gt;</code>.</li></ul>",
            org = esc(&self.org),
        );
        let body = match self.current_user(req) {
            Some(user) => {
                let Some(token) = self.token(&user) else {
                    return sign_failed();
                };
                let mut src = self.gateway.clone();
                src.set_path("/_sso/jwt");
                src.query_pairs_mut().clear().append_pair("jwt", &token);
                format!(
                    "{intro}<div class=\"card\"><p>Signed in to the portal as <code>{}</code>. \
                     <form method=\"post\" action=\"/logout\" style=\"display:inline\">\
                     <button>Sign out of the portal</button></form></p>\
                     <h2>Your dashboard (flow B)</h2>\
                     <iframe src=\"{}\" title=\"Dashboard\"></iframe></div>",
                    esc(&user.username),
                    esc(src.as_str()),
                )
            }
            None => format!(
                "{intro}<div class=\"card\"><h2>Sign in to the portal</h2>{}</div>",
                login_form_fields(&[])
            ),
        };
        html(StatusCode::OK, page("Acme customer portal", &body))
    }
}

fn sign_failed() -> Resp {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page("Error", "<p>The portal could not sign a token.</p>"),
    )
}

fn login_form(explanation: &str, hidden: &[(&str, &str)]) -> String {
    page(
        "Sign in · Acme customer portal",
        &format!(
            "<h1>Acme customer portal</h1><div class=\"card\"><h2>Sign in</h2>{explanation}{}</div>",
            login_form_fields(hidden)
        ),
    )
}

fn login_form_fields(hidden: &[(&str, &str)]) -> String {
    let hidden: String = hidden
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    // Prefilled with the demo user; edit them to see other headers reach the app.
    format!(
        "<form method=\"post\" action=\"/sso/login\">{hidden}\
         <label>Username <input type=\"text\" name=\"username\" value=\"alice\" required></label>\
         <label>Full name <input type=\"text\" name=\"name\" value=\"Alice Liddell\"></label>\
         <label>Email <input type=\"email\" name=\"email\" value=\"alice@acme.example\" required></label>\
         <label>Groups (comma-separated) <input type=\"text\" name=\"groups\" value=\"readers,admins\"></label>\
         <p><button>Sign in</button> <small>(no password: this is a demo portal)</small></p></form>"
    )
}
