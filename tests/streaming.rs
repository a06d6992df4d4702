//! Streams through the gate (SPEC 6): WebSocket upgrades and server-sent events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{HandshakeError, Message};

/// A WebSocket app: records every connection and upgrade request's headers, greets with
/// `hello <x-auth-request-user>`, then echoes every message (text prefixed `echo: `).
struct WsApp {
    server: RawUpstream,
    connections: Arc<AtomicUsize>,
    upgrades: Arc<Mutex<Vec<Headers>>>,
}

impl WsApp {
    // tungstenite's handshake callback returns its (large) error response type
    #[allow(clippy::result_large_err)]
    fn start() -> WsApp {
        let connections = Arc::new(AtomicUsize::new(0));
        let upgrades = Arc::new(Mutex::new(Vec::new()));
        let (c, u) = (connections.clone(), upgrades.clone());
        let server = RawUpstream::start(move |stream: TcpStream| {
            c.fetch_add(1, Ordering::SeqCst);
            let u = u.clone();
            let mut user = String::new();
            let accepted = tungstenite::accept_hdr(
                stream,
                |req: &tungstenite::handshake::server::Request,
                 resp: tungstenite::handshake::server::Response| {
                    let mut headers = Headers::of(req.headers());
                    user = headers
                        .get("x-auth-request-user")
                        .unwrap_or_default()
                        .to_string();
                    headers.0.push((":path".into(), req.uri().to_string()));
                    u.lock().unwrap().push(headers);
                    Ok(resp)
                },
            );
            let Ok(mut ws) = accepted else { return };
            if ws.send(Message::text(format!("hello {user}"))).is_err() {
                return;
            }
            while let Ok(msg) = ws.read() {
                let reply = match msg {
                    Message::Text(t) => Message::text(format!("echo: {}", t.as_str())),
                    Message::Binary(b) => Message::binary(b),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if ws.send(reply).is_err() {
                    break;
                }
            }
        });
        WsApp {
            server,
            connections,
            upgrades,
        }
    }
}

fn ws_request(g: &Gate, path: &str) -> tungstenite::handshake::client::Request {
    format!("ws://127.0.0.1:{}{path}", g.proxy_port)
        .into_client_request()
        .unwrap()
}

fn connect(g: &Gate) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", g.proxy_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn authenticated_websocket_upgrade_echoes_both_ways() {
    let app = WsApp::start();
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    let jar = g.login_acme("alice");

    let mut req = ws_request(&g, "/ws/chat?room=1");
    let h = req.headers_mut();
    h.insert("Cookie", HeaderValue::from_str(&jar.header()).unwrap());
    h.insert("X-Auth-Request-User", HeaderValue::from_static("admin"));
    let (mut ws, resp) = match tungstenite::client(req, connect(&g)) {
        Ok(ok) => ok,
        Err(HandshakeError::Failure(e)) => panic!("upgrade refused: {e:?}\n{}", g.log_tail()),
        Err(e) => panic!("upgrade failed: {e}"),
    };
    assert_eq!(resp.status().as_u16(), 101);

    // server → client first, then client → server → client
    let greeting = ws.read().unwrap();
    assert_eq!(greeting, Message::text("hello alice"));
    for text in ["one", "two", "ünïcode ✓"] {
        ws.send(Message::text(text)).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(format!("echo: {text}")));
    }
    let blob: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(blob.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(blob));
    ws.close(None).unwrap();
    // drain until the close handshake completes
    while ws.read().is_ok() {}

    // the app saw the identity on the upgrade request, not the spoofed one, and no session cookie
    let upgrades = app.upgrades.lock().unwrap().clone();
    assert_eq!(upgrades.len(), 1, "{upgrades:?}");
    let seen = &upgrades[0];
    assert_eq!(seen.all("x-auth-request-user"), vec!["alice"], "{seen:?}");
    assert_eq!(seen.all("x-auth-request-org"), vec!["acme"], "{seen:?}");
    assert_eq!(
        seen.all("x-auth-request-email"),
        vec!["alice@example.test"],
        "{seen:?}"
    );
    assert_eq!(seen.all(":path"), vec!["/ws/chat?room=1"], "{seen:?}");
    assert!(
        seen.all("cookie").iter().all(|c| !c.contains(PLAIN_COOKIE)),
        "the session cookie reached the app: {seen:?}"
    );
    assert_eq!(
        seen.all("upgrade")
            .first()
            .map(|v| v.to_ascii_lowercase())
            .as_deref(),
        Some("websocket"),
        "{seen:?}"
    );
}

#[test]
fn unauthenticated_websocket_upgrade_is_refused_before_the_app() {
    let app = WsApp::start();
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    // no cookie at all, then a forged one
    for cookie in [
        None,
        Some(format!("{PLAIN_COOKIE}=forged-value-0123456789")),
    ] {
        let mut req = ws_request(&g, "/ws/chat");
        if let Some(c) = &cookie {
            req.headers_mut()
                .insert("Cookie", HeaderValue::from_str(c).unwrap());
        }
        match tungstenite::client(req, connect(&g)) {
            Ok(_) => panic!("an unauthenticated upgrade was accepted (cookie {cookie:?})"),
            Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status().as_u16(), 401, "{resp:?}");
                let www = resp
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_string());
                assert!(
                    www.as_deref().is_some_and(|v| v.starts_with("Bearer")),
                    "{resp:?}"
                );
            }
            Err(e) => panic!("unexpected handshake error: {e:?}"),
        }
    }
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        0,
        "the refused upgrade reached the app"
    );
    assert!(app.upgrades.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Server-sent events
// ---------------------------------------------------------------------------------------------

/// An SSE app: sends `data: 1`, opens `first_sent`, waits for `release`, sends `data: 2`, ends.
struct SseApp {
    server: RawUpstream,
    first_sent: Latch,
    release: Latch,
}

impl SseApp {
    fn start() -> SseApp {
        let first_sent = Latch::new();
        let release = Latch::new();
        let (f, r) = (first_sent.clone(), release.clone());
        let server = RawUpstream::start(move |mut stream: TcpStream| {
            use std::io::Write as _;
            let Some(head) = read_head(&mut stream) else {
                return;
            };
            if !head.path.starts_with("/events") {
                write_response(&mut stream, 404, &[], b"no");
                return;
            }
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            out.extend(chunk(b"data: 1\n\n"));
            if stream.write_all(&out).and_then(|_| stream.flush()).is_err() {
                return;
            }
            f.open();
            r.wait(Duration::from_secs(20));
            let mut out = chunk(b"data: 2\n\n");
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&out);
            let _ = stream.flush();
        });
        SseApp {
            server,
            first_sent,
            release,
        }
    }
}

#[test]
fn server_sent_events_are_streamed_not_buffered() {
    let app = SseApp::start();
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    let jar = g.login_acme("alice");
    let request = format!(
        "GET /events?topic=x HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        g.proxy_port,
        jar.header()
    );
    let mut resp = RawResponse::send(g.proxy_port, request.as_bytes());
    let first = resp.read_until(Duration::from_secs(10), |r| {
        find(&r.body().0, b"data: 1\n\n").is_some()
    });
    assert!(
        app.first_sent.is_open(),
        "the app never got the request: {:?}",
        resp.head()
    );
    assert!(
        first,
        "the first event did not arrive while the app held the stream open (buffered?): head {:?}, body {:?}",
        resp.head(),
        String::from_utf8_lossy(&resp.body().0)
    );
    // the app has not sent the second event yet: it waits for us
    assert!(!app.release.is_open());
    assert_eq!(resp.status(), Some(200), "{:?}", resp.head());
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream")),
        "{:?}",
        resp.head()
    );
    let (body, complete) = resp.body();
    assert!(!complete, "the stream ended early");
    assert_eq!(String::from_utf8_lossy(&body), "data: 1\n\n");

    app.release.open();
    assert!(
        resp.read_until(Duration::from_secs(10), |r| r.body().1),
        "the stream did not end after the app finished: {:?}",
        String::from_utf8_lossy(&resp.body().0)
    );
    assert_eq!(
        String::from_utf8_lossy(&resp.body().0),
        "data: 1\n\ndata: 2\n\n"
    );
}
