//! Test servers on 127.0.0.1: [`Site`] (hyper, HTTP/1.1: a portal, an IdP or an app answering
//! with a closure), [`Upstream`] (the app behind the gate, a site echoing every request as JSON),
//! and [`RawUpstream`] for raw TCP apps (slow, streamed, upgraded responses).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt as _;
use serde_json::{json, Value};

use super::{parse_head, poll, Headers};

/// A request as a test server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `{"method", "path", "query", "headers": {lowercased name: [values]}, "body"}`.
    pub fn echo(&self) -> Value {
        let mut headers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in &self.headers.0 {
            headers.entry(name).or_default().push(value);
        }
        json!({
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: String,
    /// How long the server waits before it answers.
    pub delay: Duration,
}

impl Response {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Response {
        let (headers, body) = (headers.iter().copied().collect(), body.into());
        Response {
            status,
            headers,
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn html(body: impl Into<String>) -> Response {
        let html = "text/html; charset=utf-8";
        Response::new(200, &[("content-type", html), NO_STORE], body)
    }

    pub fn redirect(location: &str) -> Response {
        Response::new(302, &[("location", location), NO_STORE], "")
    }

    pub fn not_found() -> Response {
        Response::new(404, &[("content-type", "text/plain")], "not found")
    }
}

const NO_STORE: (&str, &str) = ("cache-control", "no-store");

/// What a [`Site`] saw: the requests, and how many it was answering at once.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<Request>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A request being answered: counted in flight until answered, or until the client gives up.
struct Answering(Arc<Seen>);

impl Answering {
    fn new(seen: Arc<Seen>) -> Answering {
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Answering(seen)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 (a browser reaches it as `http://localhost:<port>`)
/// answering with `handler`, remembering every request.
pub struct Site {
    pub port: u16,
    seen: Arc<Seen>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.close();
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

impl Site {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Site {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let rt = RUNTIME.get_or_init(|| {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            rt.worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test server");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = {
            let _g = rt.enter();
            tokio::net::TcpListener::from_std(listener).expect("tokio listener")
        };
        let (tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Seen::default());
        let st = seen.clone();
        rt.spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = &mut stop => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (handler, seen) = (handler.clone(), st.clone());
                let svc = hyper::service::service_fn(move |req| {
                    answer(req, handler.clone(), seen.clone())
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, svc));
            }
        });
        Site {
            port,
            seen,
            stop: Mutex::new(Some(tx)),
        }
    }

    /// `http://localhost:<port>`.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.seen.requests.lock().unwrap().len()
    }

    /// How many requests asked for `path`.
    pub fn hits(&self, path: &str) -> usize {
        let requests = self.seen.requests.lock().unwrap();
        requests.iter().filter(|r| r.path == path).count()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.seen.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.seen.max_in_flight.load(Ordering::SeqCst)
    }

    fn close(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    /// Closes the listener; returns once connections are refused.
    pub fn stop(&self) {
        self.close();
        let port = self.port;
        let closed = poll(Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        });
        assert!(closed.is_some(), "listener still accepting after stop");
    }
}

/// One request to a [`Site`]: recorded, answered by `handler` (after the response's delay).
async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    handler: Arc<Handler>,
    seen: Arc<Seen>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, Infallible> {
    let _answering = Answering::new(seen.clone());
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let r = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: Headers::of(&parts.headers),
        body: body.to_vec(),
    };
    seen.requests.lock().unwrap().push(r.clone());
    let out = handler(&r);
    if !out.delay.is_zero() {
        tokio::time::sleep(out.delay).await;
    }
    let mut resp = hyper::Response::builder().status(out.status);
    for (n, v) in &out.headers.0 {
        resp = resp.header(n.as_str(), v.as_str());
    }
    Ok(resp.body(out.body.into()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// The app behind the gate
// ---------------------------------------------------------------------------------------------

/// A request header asking the echo app to add a response header: `Name: value`.
pub const RESPONSE_HEADER_REQUEST: &str = "x-test-response-header";

/// The app: answers every request 200 with its [`Request::echo`] (and the response headers
/// asked for with [`RESPONSE_HEADER_REQUEST`]), and counts them.
pub struct Upstream {
    pub port: u16,
    site: Site,
}

impl Upstream {
    pub fn start() -> Upstream {
        let site = Site::start(|r| {
            let mut out = Response::new(200, &[("content-type", "application/json")], "");
            for h in r.headers.all(RESPONSE_HEADER_REQUEST) {
                if let Some((n, v)) = h.split_once(':') {
                    out.headers
                        .0
                        .push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            out.body = r.echo().to_string();
            out
        });
        Upstream {
            port: site.port,
            site,
        }
    }

    /// How many requests reached the app so far.
    pub fn count(&self) -> usize {
        self.site.count()
    }

    /// Every request the app saw (echo JSON), oldest first.
    pub fn seen(&self) -> Vec<Value> {
        self.site.requests().iter().map(Request::echo).collect()
    }
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

/// Header names the app saw.
pub fn app_header_names(echo: &Value) -> Vec<String> {
    echo["headers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Raw TCP apps
// ---------------------------------------------------------------------------------------------

/// A one-shot latch: `open` once, any number of `wait`ers.
#[derive(Clone, Default)]
pub struct Latch(Arc<(Mutex<bool>, Condvar)>);

impl Latch {
    pub fn new() -> Latch {
        Latch::default()
    }

    pub fn open(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap() = true;
        c.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.0 .0.lock().unwrap()
    }

    /// Waits until opened; false on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (m, c) = &*self.0;
        let guard = m.lock().unwrap();
        let (guard, _) = c.wait_timeout_while(guard, timeout, |open| !*open).unwrap();
        *guard
    }
}

/// Reads a request head (up to the blank line) byte by byte, so nothing after it is consumed.
pub fn read_head(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let (first, headers) = parse_head(&String::from_utf8_lossy(&buf));
    let (path, query) = match first.get(1)?.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (first[1].clone(), None),
    };
    Some(Request {
        method: first[0].clone(),
        path,
        query,
        headers,
        body: Vec::new(),
    })
}

/// A TCP server handing every accepted connection to `handler` on its own thread.
pub struct RawUpstream {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl RawUpstream {
    pub fn start<F>(handler: F) -> RawUpstream
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw upstream");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let h = handler.clone();
                std::thread::spawn(move || h(stream));
            }
        });
        RawUpstream { port, stop }
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Writes a complete response with a Content-Length body (the connection then closes).
pub fn write_response(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// One chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

/// An app whose `/slow...` requests are held until `release` opens (at most 20 s), then
/// answered 200 with `body`; `arrived` opens when the first one arrives. Other paths answer at
/// once, 200 `fast`.
pub struct SlowUpstream {
    pub server: RawUpstream,
    pub arrived: Latch,
    pub release: Latch,
}

impl SlowUpstream {
    pub fn start(body: Vec<u8>) -> SlowUpstream {
        let arrived = Latch::new();
        let release = Latch::new();
        let (a, r) = (arrived.clone(), release.clone());
        let server = RawUpstream::start(move |mut stream| {
            let Some(head) = read_head(&mut stream) else {
                return;
            };
            let text = [("Content-Type", "text/plain")];
            if head.path.starts_with("/slow") {
                a.open();
                r.wait(Duration::from_secs(20));
                write_response(&mut stream, 200, &text, &body);
            } else {
                write_response(&mut stream, 200, &text, b"fast");
            }
        });
        SlowUpstream {
            server,
            arrived,
            release,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }
}
