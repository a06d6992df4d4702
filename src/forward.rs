//! The short way to the app. A request without a body and without an
//! upgrade (almost everything a dashboard asks for) is forwarded here, over
//! a keep-alive pool that belongs to the thread serving it, instead of
//! through pingora-proxy's general path: that one spawns a task to watch
//! each pooled connection, locks the shared pool, and runs two channels and
//! a select loop per request, which together cost more CPU than everything
//! ssogate itself does for a request. Bodies, WebSocket and anything
//! unusual still take pingora's path, so both must stay equivalent: the
//! same request head reaches the app, the same response head reaches the
//! client, and failures surface as the same pingora errors.
//!
//! Both ends use pingora-core's HTTP/1 sessions, so parsing and framing
//! (Content-Length, chunked, close-delimited, HEAD, 204/304) are pingora's.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderName};
use http::request::Parts;
use http::{Method, Version};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, OkOrErr, OrErr};

/// How long to wait for the app to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per thread and upstream.
const POOL_SIZE: usize = 128;
/// An idle connection older than this is closed rather than reused: apps
/// close idle keep-alive connections on their own schedule, and one that
/// is closed is only found out by using it.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Whether `session`'s request can take the short way: HTTP/1.x, no body,
/// no upgrade, nothing in `Connection` but keep-alive/close, a Host header
/// and an origin-form target that the URI writes back byte for byte.
/// Everything else takes pingora's path.
pub fn can_take(session: &mut Session) -> bool {
    let req = session.req_header();
    let plain = matches!(req.version, Version::HTTP_11 | Version::HTTP_10)
        && req.method != Method::CONNECT
        && req.uri.authority().is_none()
        && req.uri.path_and_query().map(|p| p.as_str().as_bytes()) == Some(req.raw_path())
        && req.headers.contains_key(header::HOST)
        && !req.headers.contains_key(header::UPGRADE)
        && !req.headers.contains_key(header::TRANSFER_ENCODING)
        && req
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .all(|v| only_persistence_tokens(v.as_bytes()));
    plain && !session.is_http2() && session.is_body_empty()
}

fn only_persistence_tokens(value: &[u8]) -> bool {
    value.split(|b| *b == b',').all(|token| {
        let token = token.trim_ascii();
        token.is_empty()
            || token.eq_ignore_ascii_case(b"keep-alive")
            || token.eq_ignore_ascii_case(b"close")
    })
}

/// Headers that describe one hop, not the request (RFC 9110 7.6.1): the
/// same ones pingora-proxy's default request policy strips.
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// The request's side of the exchange: what the app is sent, and what the
/// client gets of its answer.
pub trait Exchange {
    /// The request head for the app; asked again when a pooled connection
    /// turned out to be closed, so it is never kept for a retry.
    fn request(&mut self, session: &Session) -> pingora::Result<RequestHeader>;
    /// Sees the response head before the client does (the response filter
    /// of pingora's path).
    fn response(&mut self, response: &mut ResponseHeader) -> pingora::Result<()>;
}

/// The request as the app is sent it, before ssogate's own rewrites:
/// HTTP/1.1, hop-by-hop headers removed; the bare `http` parts, which
/// `headers` rewrites.
pub fn upstream_head(session: &Session) -> Parts {
    let mut head = session.req_header().as_owned_parts();
    head.version = Version::HTTP_11;
    // Most requests carry none of them but `Connection`.
    while let Some(name) = head
        .headers
        .keys()
        .find(|k| HOP_BY_HOP.contains(k))
        .cloned()
    {
        head.headers.remove(&name);
    }
    head
}

/// Sends the request to the app at `addr` and streams its answer to the
/// client. Errors carry pingora's types and sources, so the proxy reports
/// them as it would for its own path.
pub async fn forward(
    session: &mut Session,
    addr: SocketAddr,
    exchange: &mut impl Exchange,
) -> pingora::Result<()> {
    let head_only = session.req_header().method == Method::HEAD;
    let (mut upstream, mut response) = send(session, addr, exchange).await?;
    let empty = head_only || upstream.is_body_done();
    if !empty && !has_framing(&response) && !matches!(response.status.as_u16(), 204 | 304) {
        // A body that ends when the app closes (HTTP/1.0 style) goes out
        // chunked, so the client's connection outlives it, as on pingora's
        // path.
        response.set_version(Version::HTTP_11);
        response.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    exchange.response(&mut response)?;
    session
        .write_response_header(response, empty)
        .await
        .map_err(|e| e.into_down())?;
    if !empty {
        while let Some(chunk) = upstream.read_body_bytes().await.map_err(|e| e.into_up())? {
            session
                .write_response_body(Some(chunk), false)
                .await
                .map_err(|e| e.into_down())?;
        }
        session
            .write_response_body(None, true)
            .await
            .map_err(|e| e.into_down())?;
    }
    upstream.respect_keepalive();
    if let Some(stream) = upstream.reuse().await {
        pool::give_back(addr, stream);
    }
    Ok(())
}

/// Writes the request head and reads the final response head, on a pooled
/// connection when one is idle. A pooled connection that turns out to be
/// closed before it answered anything is dropped and the next one tried:
/// the app never saw the request, so sending it again is safe.
async fn send(
    session: &Session,
    addr: SocketAddr,
    exchange: &mut impl Exchange,
) -> pingora::Result<(UpstreamSession, Box<ResponseHeader>)> {
    while let Some(stream) = pool::take(addr) {
        match send_on(stream, exchange.request(session)?).await {
            Ok(done) => return Ok(done),
            Err(e) if e.etype() == &ErrorType::ConnectionClosed || is_reset(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    let stream = connect(addr).await?;
    send_on(stream, exchange.request(session)?).await
}

async fn send_on(
    stream: Stream,
    head: RequestHeader,
) -> pingora::Result<(UpstreamSession, Box<ResponseHeader>)> {
    let mut upstream = UpstreamSession::new(stream);
    upstream
        .write_request_header(Box::new(head))
        .await
        .map_err(|e| e.into_up())?;
    loop {
        upstream.read_response().await.map_err(|e| e.into_up())?;
        let response = upstream
            .resp_header()
            .or_err(ErrorType::InvalidHTTPHeader, "no response head")?;
        // Informational answers (100, 103) are the app's business with a
        // client that asked; the final one is what the client gets.
        if !response.status.is_informational() {
            let response = Box::new(response.clone());
            return Ok((upstream, response));
        }
    }
}

fn has_framing(response: &ResponseHeader) -> bool {
    response.headers.contains_key(header::TRANSFER_ENCODING)
        || response.headers.contains_key(header::CONTENT_LENGTH)
}

/// A reused connection the app has since reset answers the write or the
/// first read with an error rather than an orderly end.
fn is_reset(e: &Error) -> bool {
    matches!(e.etype(), ErrorType::WriteError | ErrorType::ReadError)
}

async fn connect(addr: SocketAddr) -> pingora::Result<Stream> {
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            let etype = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
                _ => ErrorType::ConnectError,
            };
            return Err(Error::because(etype, format!("connecting to {addr}"), e).into_up());
        }
        Err(_) => {
            return Err(
                Error::explain(ErrorType::ConnectTimedout, format!("connecting to {addr}"))
                    .into_up(),
            )
        }
    };
    // Request heads are small and each is written whole: never hold one
    // back waiting for more.
    tcp.set_nodelay(true)
        .or_err(ErrorType::ConnectError, "setting TCP_NODELAY")?;
    let stream: pingora::protocols::l4::stream::Stream = tcp.into();
    Ok(Box::new(stream))
}

/// Idle upstream connections of the current thread. pingora runs each
/// request of a connection on one thread between awaits; nothing here is
/// held across an await, so no lock is needed and none is shared.
mod pool {
    use super::*;

    struct Idle {
        stream: Stream,
        since: Instant,
    }

    thread_local! {
        static IDLE: RefCell<Vec<(SocketAddr, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn take(addr: SocketAddr) -> Option<Stream> {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let (_, list) = idle.iter_mut().find(|(a, _)| *a == addr)?;
            // Newest first: the likeliest to be open, and the old ones age
            // out at the bottom.
            while let Some(conn) = list.pop() {
                if conn.since.elapsed() < POOL_IDLE {
                    return Some(conn.stream);
                }
            }
            None
        })
    }

    pub fn give_back(addr: SocketAddr, stream: Stream) {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let at = match idle.iter().position(|(a, _)| *a == addr) {
                Some(at) => at,
                None => {
                    idle.push((addr, Vec::new()));
                    idle.len() - 1
                }
            };
            let list = &mut idle[at].1;
            if list.len() >= POOL_SIZE {
                // The oldest goes; dropping it closes it.
                list.remove(0);
            }
            list.push(Idle {
                stream,
                since: Instant::now(),
            });
        });
    }
}
