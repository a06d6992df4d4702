//! The request as the app receives it (SPEC 6): no client header that could
//! pass for an identity header, the identity ssogate vouches for, none of
//! ssogate's own cookies, and X-Forwarded-* set as a well-behaved proxy sets
//! them.

use std::net::IpAddr;

use http::header::COOKIE;
use pingora::http::RequestHeader;

use crate::config::{ClaimSource, Config, SessionSettings};
use crate::request;
use crate::session::Identity;

/// Who sent the request to ssogate, for the X-Forwarded-* headers.
pub struct Peer<'a> {
    pub client_ip: Option<IpAddr>,
    /// A trusted proxy, whose X-Forwarded-* are extended rather than
    /// replaced.
    pub trusted: bool,
    pub request_id: &'a str,
}

/// Rewrites the request for the app.
pub fn rewrite_request(
    upstream: &mut RequestHeader,
    config: &Config,
    identity: Option<&Identity>,
    peer: &Peer,
) -> pingora::Result<()> {
    strip_identity_headers(upstream, &config.stripped_headers);
    if let Some(identity) = identity {
        inject_identity(upstream, config, identity)?;
    }
    strip_own_cookies(upstream, &config.session);
    set_forwarded(upstream, config, peer)
}

/// Removes every client header that could pass for an identity header:
/// any case, `_` for `-`.
fn strip_identity_headers(upstream: &mut RequestHeader, stripped: &[String]) {
    let doomed: Vec<http::HeaderName> = upstream
        .headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            stripped.iter().any(|s| {
                s.len() == name.len()
                    && s.bytes()
                        .zip(name.bytes())
                        .all(|(a, b)| a == if b == b'_' { b'-' } else { b })
            })
        })
        .cloned()
        .collect();
    for name in doomed {
        upstream.remove_header(&name);
    }
}

fn inject_identity(
    upstream: &mut RequestHeader,
    config: &Config,
    identity: &Identity,
) -> pingora::Result<()> {
    for header in &config.identity_headers {
        let value = match &header.source {
            ClaimSource::Principal => Some(identity.principal.clone()),
            ClaimSource::Org => Some(identity.org.clone()),
            ClaimSource::Claim(claim) => identity.claim_text(claim),
        };
        if let Some(value) = value {
            upstream.insert_header(header.name.clone(), value)?;
        }
    }
    Ok(())
}

/// The session and state cookies are ssogate's alone; the app's own cookies
/// pass untouched.
fn strip_own_cookies(upstream: &mut RequestHeader, settings: &SessionSettings) {
    let ours = [
        settings.cookie_name.as_str(),
        settings.state_cookie_name.as_str(),
    ];
    let is_ours = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default().trim();
        ours.contains(&name)
    };
    let values: Vec<&str> = upstream
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !values.iter().any(|v| v.split(';').any(is_ours)) {
        return;
    }
    let kept: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !is_ours(p))
        .collect();
    let joined = kept.join("; ");
    upstream.remove_header(&COOKIE);
    if !joined.is_empty() {
        // `joined` is made only of parts of headers that were valid.
        let _ = upstream.insert_header(COOKIE, joined);
    }
}

/// X-Forwarded-For/-Proto/-Host and X-Request-Id: a trusted proxy's values
/// are extended or kept, anyone else's replaced.
fn set_forwarded(
    upstream: &mut RequestHeader,
    config: &Config,
    peer: &Peer,
) -> pingora::Result<()> {
    let trusted = peer.trusted;
    if let Some(ip) = peer.client_ip {
        let previous = upstream
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .filter(|_| trusted)
            .map(str::to_owned);
        let value = match previous {
            Some(p) if !p.is_empty() => format!("{p}, {ip}"),
            _ => ip.to_string(),
        };
        upstream.insert_header("x-forwarded-for", value)?;
    }
    let proto = request::client_scheme(config, upstream, trusted);
    upstream.insert_header("x-forwarded-proto", http::HeaderValue::from_static(proto))?;
    let keep_host = trusted && upstream.headers.contains_key("x-forwarded-host");
    if !keep_host {
        match request::host(upstream).map(str::to_owned) {
            Some(host) => upstream.insert_header("x-forwarded-host", host)?,
            None => {
                upstream.remove_header("x-forwarded-host");
            }
        }
    }
    if !(trusted && upstream.headers.contains_key("x-request-id")) {
        upstream.insert_header("x-request-id", peer.request_id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn spoofed_identity_headers_are_stripped_in_every_spelling() -> TestResult {
        let mut req = RequestHeader::build("GET", b"/", None)?;
        req.append_header("X-Auth-Request-User", "a")?;
        req.append_header("x_auth_request_user", "b")?;
        req.append_header("X-AUTH-REQUEST-EMAIL", "c")?;
        req.append_header("x-other", "d")?;
        let stripped = vec![
            "x-auth-request-user".to_owned(),
            "x-auth-request-email".to_owned(),
        ];
        strip_identity_headers(&mut req, &stripped);
        let names: Vec<_> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(names, vec!["x-other"]);
        Ok(())
    }
}
