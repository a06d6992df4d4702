//! The client side: [`Req`] → [`Resp`] (through a [`Gate`], or to any URL), Set-Cookie parsing
//! and a [`Jar`], a raw HTTP/1.1 client ([`RawResponse`]), and [`Headers`], the one header list
//! of the harness.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{agent, now, Gate};

/// A header list: (lowercased name, value), every value in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Every header of an `http` header map (ureq's responses, hyper's and tungstenite's
    /// requests).
    pub fn of(map: &::http::HeaderMap) -> Headers {
        map.iter()
            .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Every value of `name` (any case), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<N: AsRef<str>, V: ToString> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Headers {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.to_string()))
                .collect(),
        )
    }
}

/// An HTTP/1.1 message head: the words of its first line, and its headers.
pub fn parse_head(head: &str) -> (Vec<String>, Headers) {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    (first.split(' ').map(str::to_string).collect(), headers)
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A request that follows no redirect and takes every status as an answer.
pub struct Req<'g> {
    gate: Option<&'g Gate>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    cookies: Vec<String>,
    body: Option<Vec<u8>>,
}

impl<'g> Req<'g> {
    /// `method url`: with `gate`'s client (and its logs on a transport error), or a client of
    /// its own (30 s at most).
    pub fn new(gate: Option<&'g Gate>, method: &str, url: &str) -> Req<'g> {
        Req {
            gate,
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
        }
    }

    /// A GET to any URL (a portal, an example's server, an admin listener).
    pub fn get(url: &str) -> Req<'g> {
        Req::new(None, "GET", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the Host header.
    pub fn host(mut self, host: &str) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        self.header("Host", host)
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
        let url = &self.url;
        let mut b = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(url);
        for (n, v) in &self.headers {
            b = b.header(n.as_str(), v.as_str());
        }
        if !self.cookies.is_empty() {
            b = b.header("Cookie", self.cookies.join("; "));
        }
        let agent = self
            .gate
            .map_or_else(|| agent(Duration::from_secs(30)), |g| g.agent.clone());
        let res = match self.body {
            Some(body) => agent.run(b.body(body).expect("request")),
            None => agent.run(b.body(()).expect("request")),
        };
        match res {
            Ok(r) => Resp::from(r),
            Err(e) => panic!(
                "transport error for {} {url}: {e}\nlogs:\n{}",
                self.method,
                self.gate.map(Gate::logs).unwrap_or_default()
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Headers,
    pub body: String,
}

impl From<ureq::http::Response<ureq::Body>> for Resp {
    fn from(mut r: ureq::http::Response<ureq::Body>) -> Resp {
        let body = r.body_mut().read_to_vec().unwrap_or_default();
        Resp {
            status: r.status().as_u16(),
            headers: Headers::of(r.headers()),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.all(name)
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

// ---------------------------------------------------------------------------------------------
// Cookies
// ---------------------------------------------------------------------------------------------

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

    /// Does this Set-Cookie delete the cookie (Max-Age<=0, or an Expires in a past year such
    /// as the epoch's)?
    pub fn is_removal(&self) -> bool {
        if let Some(ma) = self.max_age() {
            return ma <= 0;
        }
        // e.g. "Thu, 01 Jan 1970 00:00:00 GMT": the 4-digit year
        let year = self.get("expires").and_then(|exp| {
            exp.split(|c: char| !c.is_ascii_digit())
                .find(|p| p.len() == 4)
                .and_then(|y| y.parse::<i64>().ok())
        });
        year.is_some_and(|y| y < 1970 + now() / 31_556_952)
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
// A raw HTTP/1.1 client reading a response incrementally
// ---------------------------------------------------------------------------------------------

/// A response being read off a raw connection: the head once complete, then the body (chunked
/// framing removed) as it arrives.
pub struct RawResponse {
    pub stream: TcpStream,
    raw: Vec<u8>,
}

impl RawResponse {
    /// Connects to `port`, sends `request` verbatim.
    pub fn send(port: u16, request: &[u8]) -> RawResponse {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        stream.write_all(request).unwrap();
        RawResponse {
            stream,
            raw: Vec::new(),
        }
    }

    /// Reads whatever is available (up to ~100 ms); false at EOF.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// Everything received so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    fn head_end(&self) -> Option<usize> {
        find(&self.raw, b"\r\n\r\n").map(|p| p + 4)
    }

    pub fn head(&self) -> Option<String> {
        self.head_end()
            .map(|e| String::from_utf8_lossy(&self.raw[..e]).into_owned())
    }

    pub fn status(&self) -> Option<u16> {
        parse_head(&self.head()?).0.get(1)?.parse().ok()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        parse_head(&self.head()?).1.get(name).map(str::to_string)
    }

    /// The body received so far, and whether it is complete (terminal chunk, or Content-Length
    /// reached).
    pub fn body(&self) -> (Vec<u8>, bool) {
        let Some(start) = self.head_end() else {
            return (Vec::new(), false);
        };
        let mut data = &self.raw[start..];
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if !chunked {
            let cl = self.header("content-length").and_then(|v| v.parse().ok());
            return (data.to_vec(), cl.is_some_and(|cl: usize| data.len() >= cl));
        }
        let mut out = Vec::new();
        loop {
            let Some(eol) = find(data, b"\r\n") else {
                return (out, false);
            };
            let text = String::from_utf8_lossy(&data[..eol]).into_owned();
            let Ok(size) = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
            else {
                return (out, false);
            };
            if size == 0 {
                return (out, true);
            }
            data = &data[eol + 2..];
            // a partial chunk: hand out what arrived
            out.extend_from_slice(&data[..size.min(data.len())]);
            let Some(rest) = data.get(size + 2..) else {
                return (out, false);
            };
            data = rest;
        }
    }

    /// Reads until `done(self)` or `timeout`; false on timeout or EOF before `done`.
    pub fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline || !self.pump() {
                return done(self);
            }
        }
    }
}
