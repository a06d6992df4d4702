//! The request as the app receives it (SPEC 6): no client header that could
//! pass for an identity header, the identity ssogate vouches for, none of
//! ssogate's own cookies, no Bearer token ssogate accepted (unless the org
//! sets `forward_bearer`), and X-Forwarded-* set as a well-behaved proxy
//! sets them.
//!
//! The rewrite works on the bare `http` parts of the request, whichever way
//! it then travels: names already parsed, no second map of spellings to keep
//! in step (pingora's request head keeps one, and every insert into it
//! parses the name again). Header names therefore reach the app in their
//! canonical case, as from Envoy; HTTP says they are case-insensitive.

use std::net::IpAddr;

use http::header::{AUTHORIZATION, COOKIE, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::{ErrorType::InvalidHTTPHeader, OrErr};

use crate::config::{ClaimSource, Config, SessionSettings};
use crate::request::{self, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::session::Identity;

/// Who sent the request to ssogate, for the X-Forwarded-* headers.
pub struct Peer<'a> {
    pub client_ip: Option<IpAddr>,
    /// A trusted proxy, whose X-Forwarded-* are extended rather than
    /// replaced.
    pub trusted: bool,
    pub request_id: &'a str,
}

/// Rewrites the request for the app. `withhold_bearer`: the request's
/// `Authorization` held the Bearer token ssogate accepted, and the org
/// does not forward it.
pub fn rewrite_request(
    upstream: &mut Parts,
    config: &Config,
    identity: Option<&Identity>,
    withhold_bearer: bool,
    peer: &Peer,
) -> pingora::Result<()> {
    let headers = &mut upstream.headers;
    strip_identity_headers(headers, &config.stripped_headers);
    if let Some(identity) = identity {
        inject_identity(headers, config, identity)?;
    }
    if withhold_bearer {
        headers.remove(AUTHORIZATION);
    }
    strip_own_cookies(headers, &config.session);
    set_forwarded(upstream, config, peer)
}

/// Removes every client header that could pass for an identity header:
/// any case, `_` for `-`.
fn strip_identity_headers(headers: &mut HeaderMap, stripped: &[String]) {
    let spoofs = |name: &HeaderName| {
        let name = name.as_str();
        stripped.iter().any(|s| {
            s.len() == name.len()
                && s.bytes()
                    .zip(name.bytes())
                    .all(|(a, b)| a == if b == b'_' { b'-' } else { b })
        })
    };
    while let Some(name) = headers.keys().find(|n| spoofs(n)).cloned() {
        headers.remove(&name);
    }
}

fn inject_identity(
    headers: &mut HeaderMap,
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
            let value =
                HeaderValue::try_from(value).or_err(InvalidHTTPHeader, "identity header value")?;
            headers.insert(header.name.clone(), value);
        }
    }
    Ok(())
}

/// The session and state cookies are ssogate's alone; the app's own cookies
/// pass untouched.
fn strip_own_cookies(headers: &mut HeaderMap, settings: &SessionSettings) {
    let ours = [
        settings.cookie_name.as_str(),
        settings.state_cookie_name.as_str(),
    ];
    let is_ours = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default().trim();
        ours.contains(&name)
    };
    let pairs = |headers: &HeaderMap| -> Vec<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty() && !is_ours(p))
            .map(str::to_owned)
            .collect()
    };
    let has_ours = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(is_ours);
    if !has_ours {
        return;
    }
    let kept = pairs(headers).join("; ");
    headers.remove(COOKIE);
    if !kept.is_empty() {
        // `kept` is made only of parts of headers that were valid.
        if let Ok(kept) = HeaderValue::try_from(kept) {
            headers.insert(COOKIE, kept);
        }
    }
}

/// X-Forwarded-For/-Proto/-Host and X-Request-Id: a trusted proxy's values
/// are extended or kept, anyone else's replaced.
fn set_forwarded(upstream: &mut Parts, config: &Config, peer: &Peer) -> pingora::Result<()> {
    let trusted = peer.trusted;
    let headers = &mut upstream.headers;
    if let Some(ip) = peer.client_ip {
        let previous = headers
            .get(X_FORWARDED_FOR)
            .filter(|_| trusted)
            .and_then(|v| v.to_str().ok())
            .filter(|p| !p.is_empty());
        let mut value = Vec::with_capacity(previous.map_or(0, |p| p.len() + 2) + 15);
        if let Some(previous) = previous {
            value.extend_from_slice(previous.as_bytes());
            value.extend_from_slice(b", ");
        }
        request::push_ip(&mut value, ip);
        let value = HeaderValue::try_from(value).or_err(InvalidHTTPHeader, "X-Forwarded-For")?;
        headers.insert(X_FORWARDED_FOR, value);
    }
    let proto = request::client_scheme(config, headers, trusted);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if !(trusted && headers.contains_key(X_FORWARDED_HOST)) {
        // The Host header itself (a shared buffer, not a copy), or the
        // authority of an absolute-form target.
        let host = headers.get(HOST).cloned().or_else(|| {
            upstream
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        match host {
            Some(host) => headers.insert(X_FORWARDED_HOST, host),
            None => headers.remove(X_FORWARDED_HOST),
        };
    }
    if !(trusted && headers.contains_key(X_REQUEST_ID)) {
        let id = HeaderValue::from_str(peer.request_id).or_err(InvalidHTTPHeader, "request id")?;
        headers.insert(X_REQUEST_ID, id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_identity_headers_are_stripped_in_every_spelling() -> Result<(), http::Error> {
        let (mut parts, ()) = http::Request::builder()
            .header("X-Auth-Request-User", "a")
            .header("x_auth_request_user", "b")
            .header("X-AUTH-REQUEST-EMAIL", "c")
            .header("x-other", "d")
            .body(())?
            .into_parts();
        let stripped = vec![
            "x-auth-request-user".to_owned(),
            "x-auth-request-email".to_owned(),
        ];
        strip_identity_headers(&mut parts.headers, &stripped);
        let names: Vec<_> = parts
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        assert_eq!(names, vec!["x-other"]);
        Ok(())
    }
}
