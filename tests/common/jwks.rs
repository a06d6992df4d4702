//! [`JwksServer`]: the IdP's JWKS endpoint, a [`Site`] whose document the test changes, fails or
//! slows down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Response, Site};

struct Jwks {
    body: String,
    status: u16,
    delay: Duration,
}

/// Answers every GET with a JWKS document the test can change, fail (any status) or slow down,
/// counting requests and their maximal concurrency.
pub struct JwksServer {
    pub port: u16,
    site: Site,
    jwks: Arc<Mutex<Jwks>>,
}

impl JwksServer {
    pub fn start(body: &str) -> JwksServer {
        let jwks = Arc::new(Mutex::new(Jwks {
            body: body.to_string(),
            status: 200,
            delay: Duration::ZERO,
        }));
        let j = jwks.clone();
        let site = Site::start(move |_| {
            let j = j.lock().unwrap();
            let body = match j.status {
                200 => j.body.clone(),
                status => format!("{{\"error\":\"status {status}\"}}"),
            };
            let json = [("content-type", "application/json")];
            Response {
                delay: j.delay,
                ..Response::new(j.status, &json, body)
            }
        });
        JwksServer {
            port: site.port,
            site,
            jwks,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }

    pub fn set_body(&self, body: &str) {
        self.jwks.lock().unwrap().body = body.to_string();
    }

    pub fn set_status(&self, status: u16) {
        self.jwks.lock().unwrap().status = status;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.jwks.lock().unwrap().delay = delay;
    }

    /// Requests received so far (counted when they arrive).
    pub fn hits(&self) -> usize {
        self.site.count()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.site.in_flight()
    }

    /// The most requests ever being answered at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.site.max_in_flight()
    }

    /// Close the listener; returns once connections are refused.
    pub fn stop(&self) {
        self.site.stop()
    }
}
