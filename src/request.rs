//! What ssogate needs to know about a request, read once from its head.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName};
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

// Names looked up on every request, parsed once rather than per lookup.
pub const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A browser navigation (SPEC 4): `Sec-Fetch-Mode: navigate`, or, from a
/// browser too old to say, a GET or HEAD accepting `text/html`.
pub fn is_navigation(req: &RequestHeader) -> bool {
    if let Some(mode) = req.headers.get(SEC_FETCH_MODE) {
        return mode.as_bytes() == b"navigate";
    }
    let safe = req.method == http::Method::GET || req.method == http::Method::HEAD;
    safe && req
        .headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("text/html")))
}

/// An address as text, appended to `out`: IPv4 without the formatting
/// machinery, which costs more than the rest of an access-log line.
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            // Writing into a Vec cannot fail.
            let _ = std::io::Write::write_fmt(out, format_args!("{v6}"));
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than ssogate reads")]
    TooLarge,
    #[error("the body could not be read")]
    Unreadable,
}

impl BodyError {
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Unreadable => 400,
        }
    }
}

/// Reads the whole request body, up to `limit` bytes.
pub async fn read_body(
    session: &mut pingora::proxy::Session,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    let mut body = bytes::BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(BodyError::Unreadable),
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

/// The client's address (SPEC 11): the peer's, or, from a trusted proxy,
/// the last `X-Forwarded-For` entry, skipping entries that are trusted
/// proxies themselves (a chain of them each appended the address it was
/// reached from). An entry that is not an address ends the walk: what lies
/// left of it cannot be trusted. No peer address (not over TCP) is the
/// unspecified address.
pub fn client_address(req: &RequestHeader, config: &Config, peer: Option<IpAddr>) -> IpAddr {
    let mut client = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let trusted = |ip: &IpAddr| config.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&client) {
        return client;
    }
    let values = req.headers.get_all(X_FORWARDED_FOR);
    let entries = values
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or_default().rsplit(','));
    for entry in entries {
        let Some(ip) = parse_forwarded(entry.trim()) else {
            break;
        };
        client = ip;
        if !trusted(&client) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
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
    // ssogate itself listens in plain http; only a trusted proxy can say
    // the browser used https (else set `public_url`).
    let scheme = trusted_proto(&req.headers, facts.trusted).unwrap_or("http");
    let forwarded_host = facts
        .trusted
        .then(|| first_entry(&req.headers, &X_FORWARDED_HOST))
        .flatten();
    let host = forwarded_host.or(facts.host)?;
    is_valid_host(host).then(|| format!("{scheme}://{host}"))
}

/// The scheme the client used, as a well-behaved proxy reports it upstream.
pub fn client_scheme(config: &Config, headers: &HeaderMap, trusted: bool) -> &'static str {
    trusted_proto(headers, trusted).unwrap_or(match &config.public_url {
        Some(url) if url.starts_with("https:") => "https",
        _ => "http",
    })
}

/// The scheme a trusted proxy says the browser used: the first entry of
/// `X-Forwarded-Proto` (proxies in a chain each append theirs), `http` or
/// `https` only. Anyone else's is not believed.
fn trusted_proto(headers: &HeaderMap, trusted: bool) -> Option<&'static str> {
    if !trusted {
        return None;
    }
    match first_entry(headers, &X_FORWARDED_PROTO)? {
        "http" => Some("http"),
        "https" => Some("https"),
        _ => None,
    }
}

/// The first entry of a comma-separated `X-Forwarded-*` header, trimmed.
fn first_entry<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    value.split(',').next().map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.2.30.4",
            "192.168.100.9",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::from([1, 1, 1, 1]));
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }

    #[test]
    fn forwarded_proto_is_the_first_entry_from_a_trusted_proxy_only() -> TestResult {
        let config = crate::config::parse(
            &format!(
                "upstream: http://127.0.0.1:1\nsession: {{secret: '{s}'}}\norganizations:\n  acme:\n    keys: [{{alg: HS256, secret: '{s}'}}]\n",
                s = "k".repeat(32)
            ),
            std::path::Path::new("/nonexistent/config.yaml"),
        )?;
        for (sent, trusted, want) in [
            (Some("https"), true, "https"),
            (Some(" https , http"), true, "https"),
            (Some("http, https"), true, "http"),
            (Some("HTTPS"), true, "http"),
            (Some("ftp"), true, "http"),
            (Some("https"), false, "http"),
            (None, true, "http"),
        ] {
            let mut req = RequestHeader::build("GET", b"/", None)?;
            req.insert_header(HOST, "acme.test")?;
            if let Some(proto) = sent {
                req.insert_header("x-forwarded-proto", proto)?;
            }
            assert_eq!(
                client_scheme(&config, &req.headers, trusted),
                want,
                "{sent:?} {trusted}"
            );
            let facts = Facts {
                trusted,
                ..Facts::of(&req, &config, None)
            };
            assert_eq!(
                public_base(&config, &req, &facts),
                Some(format!("{want}://acme.test")),
                "{sent:?} {trusted}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_client_is_the_peer_or_what_trusted_proxies_forwarded() -> TestResult {
        let config = crate::config::parse(
            &format!(
                "upstream: http://127.0.0.1:1\ntrusted_proxies: [10.0.0.0/8]\nsession: {{secret: '{s}'}}\norganizations:\n  acme:\n    keys: [{{alg: HS256, secret: '{s}'}}]\n",
                s = "k".repeat(32)
            ),
            std::path::Path::new("/nonexistent/config.yaml"),
        )?;
        let ip = |s: &str| s.parse::<IpAddr>();
        let proxy = Some(ip("10.0.0.1")?);
        let stranger = Some(ip("192.0.2.9")?);
        let cases: [(Option<IpAddr>, &[&str], &str); 8] = [
            (stranger, &["198.51.100.1"], "192.0.2.9"),
            (proxy, &[], "10.0.0.1"),
            (proxy, &["198.51.100.1"], "198.51.100.1"),
            (proxy, &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            (
                proxy,
                &["6.6.6.6", "198.51.100.1, 10.0.0.7"],
                "198.51.100.1",
            ),
            (proxy, &["198.51.100.1:4711"], "198.51.100.1"),
            (proxy, &["6.6.6.6, garbage, 10.0.0.7"], "10.0.0.7"),
            (None, &[], "0.0.0.0"),
        ];
        for (peer, forwarded, want) in cases {
            let mut req = RequestHeader::build("GET", b"/", None)?;
            for value in forwarded {
                req.append_header("x-forwarded-for", *value)?;
            }
            assert_eq!(
                client_address(&req, &config, peer),
                ip(want)?,
                "{peer:?} {forwarded:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn raw_header_lines_are_found_in_any_case() {
        let head = b"POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(has_raw_header(head, b"content-length"));
        assert!(!has_raw_header(
            b"GET /content-length: HTTP/1.1\r\nHost: a\r\n\r\n",
            b"content-length"
        ));
    }
}
