//! [`JwksServer`]: the IdP's JWKS endpoint, which a test changes, fails or slows down.

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{poll, serve_http};

#[derive(Default)]
struct JwksState {
    body: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A real HTTP/1.1 server (hyper) answering every GET with a JWKS document the test can
/// change, fail (any status) or slow down, counting requests and their maximal concurrency.
pub struct JwksServer {
    pub port: u16,
    st: Arc<JwksState>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl JwksServer {
    pub fn start(body: &str) -> JwksServer {
        let st = Arc::new(JwksState::default());
        *st.body.lock().unwrap() = body.to_string();
        st.status.store(200, Ordering::SeqCst);
        let st2 = st.clone();
        let (port, tx) = serve_http(move |_req| serve_jwks(st2.clone()));
        JwksServer {
            port,
            st,
            stop: Mutex::new(Some(tx)),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }

    pub fn set_body(&self, body: &str) {
        *self.st.body.lock().unwrap() = body.to_string();
    }

    pub fn set_status(&self, status: u16) {
        self.st.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.st
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests received so far (counted when they arrive).
    pub fn hits(&self) -> usize {
        self.st.hits.load(Ordering::SeqCst)
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.st.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever being answered at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.st.max_in_flight.load(Ordering::SeqCst)
    }

    /// Close the listener; returns once connections are refused.
    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let port = self.port;
        let closed = poll(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        });
        assert!(closed.is_some(), "JWKS listener still accepting after stop");
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

async fn serve_jwks(st: Arc<JwksState>) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    /// Leaves the in-flight count also when the client gives up during the delay.
    struct InFlight(Arc<JwksState>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
    st.hits.fetch_add(1, Ordering::SeqCst);
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(st.clone());
    let delay = st.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = st.status.load(Ordering::SeqCst);
    let body = if status == 200 {
        st.body.lock().unwrap().clone()
    } else {
        format!("{{\"error\":\"status {status}\"}}")
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap()
}
