//! SIGTERM and SIGINT (SPEC 2): stop accepting, let requests in flight finish, exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Does the proxy port still answer a new connection with an HTTP response?
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    ) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    if s.write_all(b"GET /public/probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

#[test]
fn sigterm_drains_the_request_in_flight_then_exits_0() {
    drains_the_request_in_flight_then_exits_0("TERM");
}

#[test]
fn sigint_drains_the_request_in_flight_then_exits_0() {
    drains_the_request_in_flight_then_exits_0("INT");
}

fn drains_the_request_in_flight_then_exits_0(signal: &str) {
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let slow = SlowUpstream::start(body.clone());
    let mut g = Gate::start(&with_upstream(BASE, slow.port()));
    let jar = g.login_acme("alice");
    assert!(answers(g.proxy_port));

    let (resp, terminated) = std::thread::scope(|s| {
        let gate = &g;
        let inflight = s.spawn(move || gate.nav("/slow/export").jar(&jar).send());
        assert!(
            slow.arrived.wait(Duration::from_secs(10)),
            "the slow request never reached the app"
        );
        gate.signal(signal);
        let terminated = Instant::now();
        // new connections are refused shortly after
        let refused = poll(Duration::from_secs(5), || {
            (!answers(gate.proxy_port)).then_some(())
        });
        assert!(
            refused.is_some(),
            "new connections still served 5 s after SIG{signal}\n{}",
            gate.log_tail()
        );
        // the request in flight holds the process
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            gate.alive(),
            "ssogate exited with a request in flight\n{}",
            gate.log_tail()
        );
        slow.release.open();
        (inflight.join().unwrap(), terminated)
    });
    assert_eq!(resp.status, 200, "{:?}", resp.headers);
    assert_eq!(resp.body.len(), body.len(), "truncated body");
    assert!(resp.body.as_bytes() == body.as_slice(), "body differs");

    let status = g.wait_exit(Duration::from_secs(10));
    let took = terminated.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "ssogate still running 10 s after SIG{signal} with nothing in flight\n{}",
            g.log_tail()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}\n{}",
        g.log_tail()
    );
    assert!(
        took < Duration::from_secs(12),
        "exit took {took:?} after SIG{signal}"
    );
}

#[test]
fn sigterm_when_idle_exits_0_at_once() {
    let mut g = Gate::base();
    let jar = g.login_acme("alice");
    assert_eq!(g.nav("/x").jar(&jar).send().status, 200);
    g.signal("TERM");
    let t = Instant::now();
    let status = g
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM\n{}", g.log_tail()));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}\n{}",
        g.log_tail()
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "an idle ssogate took {:?} to exit",
        t.elapsed()
    );
    assert!(!answers(g.proxy_port));
}
