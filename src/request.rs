//! What ssogate needs to know about a request, read once from its head.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use pingora::http::RequestHeader;

use crate::config::Config;

pub struct Facts<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: Option<&'a str>,
    /// A browser navigation gets redirects and HTML; anything else JSON.
    pub navigation: bool,
    pub client_ip: Option<IpAddr>,
    /// Whether the peer is a trusted proxy whose X-Forwarded-* we believe.
    pub trusted: bool,
}

impl<'a> Facts<'a> {
    pub fn of(req: &'a RequestHeader, config: &Config, client_ip: Option<IpAddr>) -> Self {
        let trusted =
            client_ip.is_some_and(|ip| config.trusted_proxies.iter().any(|n| n.contains(&ip)));
        Facts {
            path: req.uri.path(),
            query: req.uri.query(),
            host: host(req),
            navigation: is_navigation(req),
            client_ip,
            trusted,
        }
    }

    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        query_param(self.query?, name)
    }

    /// The request target as the browser asked for it: path and query.
    pub fn path_and_query(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_owned(),
        }
    }
}

/// The first value of query parameter `name`, form-decoded.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub fn host(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

/// A Host we are willing to put into a URL we hand out.
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

fn is_navigation(req: &RequestHeader) -> bool {
    if let Some(mode) = req.headers.get("sec-fetch-mode") {
        return mode.as_bytes() == b"navigate";
    }
    let safe = req.method == http::Method::GET || req.method == http::Method::HEAD;
    safe && req
        .headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("text/html")))
}

/// Both framings at once is the classic way to smuggle a second request
/// past a gate; refuse it before anything else looks at the request.
/// pingora quietly drops `Content-Length` when `Transfer-Encoding` is
/// present, so the head as the client sent it is what is judged.
pub fn is_ambiguous_framing(session: &pingora::proxy::Session) -> bool {
    let req = session.req_header();
    if !req.headers.contains_key(TRANSFER_ENCODING) {
        return false;
    }
    req.headers.contains_key(CONTENT_LENGTH)
        || session
            .as_http1()
            .is_some_and(|h1| has_raw_header(&h1.get_headers_raw_bytes(), b"content-length"))
}

/// Reads the whole request body, up to `limit` bytes; the error is the
/// status to answer (413 too large, 400 unreadable).
pub async fn read_body(
    session: &mut pingora::proxy::Session,
    limit: usize,
) -> Result<bytes::Bytes, u16> {
    let mut body = bytes::BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(413);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(400),
        }
    }
}

/// Whether a raw HTTP/1 head has a header line named `name`.
fn has_raw_header(head: &[u8], name: &[u8]) -> bool {
    head.split(|b| *b == b'\n').skip(1).any(|line| {
        line.iter()
            .position(|b| *b == b':')
            .is_some_and(|colon| line[..colon].trim_ascii().eq_ignore_ascii_case(name))
    })
}

pub fn bearer_token(req: &RequestHeader) -> Option<&str> {
    let value = req.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `scheme://host` under which the browser reaches ssogate: `public_url`
/// when configured, else the request's Host (and, from a trusted proxy,
/// X-Forwarded-Proto/-Host).
pub fn public_base(config: &Config, req: &RequestHeader, facts: &Facts) -> Option<String> {
    if let Some(url) = &config.public_url {
        return Some(url.clone());
    }
    let forwarded = |name: &str| {
        facts
            .trusted
            .then(|| req.headers.get(name)?.to_str().ok())
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    // ssogate itself listens in plain http; only a trusted proxy can say
    // the browser used https (else set `public_url`).
    let scheme = forwarded("x-forwarded-proto")
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let host = forwarded("x-forwarded-host").or(facts.host)?;
    is_valid_host(host).then(|| format!("{scheme}://{host}"))
}

/// The scheme the client used, as a well-behaved proxy reports it upstream.
pub fn client_scheme<'a>(config: &Config, req: &'a RequestHeader, trusted: bool) -> &'a str {
    if trusted {
        if let Some(p) = req
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            if p == "http" || p == "https" {
                return p;
            }
        }
    }
    match &config.public_url {
        Some(url) if url.starts_with("https:") => "https",
        _ => "http",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_header_lines_are_found_in_any_case() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(super::has_raw_header(head, b"content-length"));
        assert!(!super::has_raw_header(
            b"GET /content-length: HTTP/1.1\r\nHost: a\r\n\r\n",
            b"content-length"
        ));
    }
}
