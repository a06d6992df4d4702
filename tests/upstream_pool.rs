//! The way to the app (SPEC 6): connections to it are kept alive and reused,
//! an idle one the app has closed costs no request, and answers of every
//! framing reach the client whole. Requests with a body take pingora's own
//! path and must arrive just the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An app that answers every request on a connection with keep-alive, and
/// then, when `idle_close` is set, closes the connection once it has been
/// idle that long; counts connections and requests.
struct KeepAliveApp {
    server: RawUpstream,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl KeepAliveApp {
    fn start(idle_close: Option<Duration>) -> KeepAliveApp {
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        let server = RawUpstream::start(move |mut stream: TcpStream| {
            c.fetch_add(1, Ordering::SeqCst);
            stream.set_read_timeout(idle_close).unwrap();
            while let Some(head) = read_head(&mut stream) {
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!("{} {} #{n}", head.method, head.path);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                    body.len(),
                    if head.method == "HEAD" { "" } else { &body }
                );
                if stream.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            }
            // read_head gave up: the idle timeout passed (or the peer left); closing.
        });
        KeepAliveApp {
            server,
            connections,
            requests,
        }
    }
}

#[test]
fn connections_to_the_app_are_reused() {
    let app = KeepAliveApp::start(None);
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    let jar = g.login_acme("alice");
    for i in 0..20 {
        let r = g.api(&format!("/page/{i}")).jar(&jar).send();
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.starts_with(&format!("GET /page/{i} #")),
            "{}",
            r.body
        );
    }
    assert_eq!(app.requests.load(Ordering::SeqCst), 20);
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "twenty requests one after the other need one connection to the app"
    );
}

#[test]
fn an_idle_connection_the_app_closed_costs_no_request() {
    let app = KeepAliveApp::start(Some(Duration::from_millis(100)));
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    let jar = g.login_acme("alice");
    for round in 0..3 {
        let r = g.api("/again").jar(&jar).send();
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
        // the app closes the idle connection meanwhile
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(app.requests.load(Ordering::SeqCst), 3);
    assert_eq!(app.connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        g.metrics().total("ssogate_upstream_errors_total"),
        0.0,
        "a closed idle connection is not an upstream error"
    );
}

#[test]
fn a_head_request_gets_the_head_only() {
    let app = KeepAliveApp::start(None);
    let g = Gate::start(&with_upstream(BASE, app.server.port));
    let jar = g.login_acme("alice");
    let r = g.req("HEAD", "/doc").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "{}", r.body);
    // and the connection to the app is still good for the next one
    let r = g.api("/doc").jar(&jar).send();
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /doc #2"), "{}", r.body);
}

#[test]
fn an_answer_that_ends_with_the_connection_arrives_whole() {
    let body = "x".repeat(100_000);
    let sent = body.clone();
    let app = RawUpstream::start(move |mut stream: TcpStream| {
        if read_head(&mut stream).is_none() {
            return;
        }
        // HTTP/1.0 style: no Content-Length, the end of the body is the close
        let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        let _ = stream.write_all(sent.as_bytes());
    });
    let g = Gate::start(&with_upstream(BASE, app.port));
    let jar = g.login_acme("alice");
    for _ in 0..2 {
        let r = g.api("/stream").jar(&jar).send();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), body.len());
    }
}

#[test]
fn a_request_with_a_body_reaches_the_app_whole() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    let payload = "p".repeat(70_000);
    let r = g.post("/submit").jar(&jar).body(payload.as_bytes()).send();
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.app();
    assert_eq!(
        seen["body"].as_str().map(str::len),
        Some(payload.len()),
        "{seen}"
    );
    assert_eq!(app_header(&seen, "x-auth-request-user"), vec!["alice"]);
}

#[test]
fn a_502_keeps_the_clients_connection() {
    // nothing listens on the app's port
    let g = Gate::start(&with_upstream(BASE, free_port()));
    let request = b"GET /public/page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut first = RawResponse::send(g.proxy_port, request);
    assert!(first.read_until(Duration::from_secs(5), |r| r.body().1));
    assert_eq!(first.status(), Some(502), "{}", first.text());
    assert_ne!(
        first.header("connection").map(|v| v.to_ascii_lowercase()),
        Some("close".to_owned()),
        "{}",
        first.text()
    );
    // the same connection serves the next request
    first.stream.write_all(request).unwrap();
    let mut second = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !second.windows(4).any(|w| w == b"\r\n\r\n") && std::time::Instant::now() < deadline {
        match std::io::Read::read(&mut first.stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => second.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    let second = String::from_utf8_lossy(&second);
    assert!(second.starts_with("HTTP/1.1 502"), "{second:?}");
}
