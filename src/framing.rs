//! Who may frame the app and ssogate's own pages (SPEC 6): an org with
//! `allowed_origins` is embeddable by them, through the CSP's
//! `frame-ancestors` (which replaces the app's own and its
//! X-Frame-Options); otherwise the app's decision stands, and
//! `frame-ancestors 'self'` is added only when it made none.
//!
//! And who may log in inside a frame (SPEC 11): the browser says a request
//! comes from a frame of another origin (`Sec-Fetch-Dest`,
//! `Sec-Fetch-Site`); such a request only starts or finishes a login when
//! its `Referer` is an origin the org allows.

use http::header::{CONTENT_SECURITY_POLICY, REFERER, X_FRAME_OPTIONS};
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{ErrorType::InvalidHTTPHeader, OrErr};

use crate::config::Org;

/// The policy of an app that said nothing about who may frame it.
const SELF_ONLY: &str = "frame-ancestors 'self'";

/// Applies the policy to a response of the app.
pub fn apply(response: &mut ResponseHeader, org: Option<&Org>) -> pingora::Result<()> {
    let embeddable = org.filter(|o| !o.allowed_origins.is_empty());
    if !response.headers.contains_key(CONTENT_SECURITY_POLICY) {
        // Most answers carry no policy of their own: one header to add.
        let policy = match embeddable {
            Some(org) => {
                response.remove_header(&X_FRAME_OPTIONS);
                HeaderValue::from_str(&org.frame_ancestors)
                    .or_err(InvalidHTTPHeader, "frame-ancestors")?
            }
            None => HeaderValue::from_static(SELF_ONLY),
        };
        return response.insert_header(CONTENT_SECURITY_POLICY, policy);
    }
    let policies: Vec<String> = response
        .headers
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let has_frame_ancestors = policies
        .iter()
        .any(|p| directives(p).any(is_frame_ancestors));
    let Some(org) = embeddable else {
        if !has_frame_ancestors {
            set_policies(response, policies, SELF_ONLY)?;
        }
        return Ok(());
    };
    response.remove_header(&X_FRAME_OPTIONS);
    let cleaned: Vec<String> = policies
        .iter()
        .map(|p| {
            directives(p)
                .filter(|d| !is_frame_ancestors(d))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    set_policies(response, cleaned, &org.frame_ancestors)
}

/// ssogate's own pages get the same policy as the app's.
pub fn own_reply_headers(org: Option<&Org>) -> [(http::HeaderName, String); 1] {
    let policy = org.map_or_else(|| SELF_ONLY.to_owned(), |o| o.frame_ancestors.clone());
    [(CONTENT_SECURITY_POLICY, policy)]
}

/// A request the browser marks as framed (`Sec-Fetch-Dest: iframe` or
/// `frame`) and cross-origin (`Sec-Fetch-Site` present and neither
/// `same-origin` nor `none`). Requests without these headers are never
/// judged.
pub fn is_framed_cross_origin(req: &RequestHeader) -> bool {
    let header = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
    let framed = header("sec-fetch-dest")
        .is_some_and(|d| d.eq_ignore_ascii_case(b"iframe") || d.eq_ignore_ascii_case(b"frame"));
    framed
        && header("sec-fetch-site").is_some_and(|s| {
            !s.eq_ignore_ascii_case(b"same-origin") && !s.eq_ignore_ascii_case(b"none")
        })
}

/// Whether the request's `Referer` names an origin that may frame a
/// login: `own` (the request's own origin, `scheme://host[:port]`) or one
/// of `allowed` (origins as config validation writes them). No `Referer`,
/// or one that is not a URL, names none.
pub fn referer_allowed(req: &RequestHeader, own: Option<&str>, allowed: &[String]) -> bool {
    let Some(referer) = req
        .headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
    else {
        return false;
    };
    let origin = referer.origin();
    if !origin.is_tuple() {
        return false;
    }
    let origin = origin.ascii_serialization();
    let own = own
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| u.origin().ascii_serialization());
    own.as_deref() == Some(origin.as_str()) || allowed.contains(&origin)
}

fn directives(policy: &str) -> impl Iterator<Item = &str> {
    policy.split(';').map(str::trim).filter(|d| !d.is_empty())
}

fn is_frame_ancestors(directive: &str) -> bool {
    directive
        .split_ascii_whitespace()
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("frame-ancestors"))
}

/// Rewrites the CSP headers, `directive` added to the first (or to a new
/// header when the app sent none). Policies left empty are dropped.
fn set_policies(
    response: &mut ResponseHeader,
    policies: Vec<String>,
    directive: &str,
) -> pingora::Result<()> {
    response.remove_header(&CONTENT_SECURITY_POLICY);
    let mut first = true;
    for policy in policies.into_iter().filter(|p| !p.trim().is_empty()) {
        let value = if first {
            format!("{}; {directive}", policy.trim_end_matches([';', ' ']))
        } else {
            policy
        };
        first = false;
        response.append_header(CONTENT_SECURITY_POLICY, value)?;
    }
    if first {
        response.append_header(CONTENT_SECURITY_POLICY, directive.to_owned())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn csp_after(app_csp: &[&str], org_origins: Option<&str>) -> TestResult<Vec<String>> {
        let mut response = ResponseHeader::build(200, None)?;
        for p in app_csp {
            response.append_header(CONTENT_SECURITY_POLICY, *p)?;
        }
        response.append_header(X_FRAME_OPTIONS, "DENY")?;
        let config = org_origins.map(test_config).transpose()?;
        let org = config.as_ref().and_then(|c| c.orgs.first().cloned());
        apply(&mut response, org.as_deref())?;
        let policies = response
            .headers
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| v.to_str().map(str::to_owned))
            .collect::<Result<_, _>>()?;
        Ok(policies)
    }

    fn test_config(origin: &str) -> TestResult<Config> {
        let yaml = format!(
            "upstream: http://127.0.0.1:1\nsession: {{secret: '{s}'}}\norganizations:\n  acme:\n    allowed_origins: ['{origin}']\n    keys: [{{alg: HS256, secret: '{s}'}}]\n",
            s = "k".repeat(32)
        );
        Ok(crate::config::parse(
            &yaml,
            std::path::Path::new("/nonexistent/config.yaml"),
        )?)
    }

    #[test]
    fn frame_ancestors_is_replaced_for_embeddable_orgs() -> TestResult {
        assert_eq!(
            csp_after(
                &["default-src 'self'; frame-ancestors 'none'"],
                Some("https://portal.example")
            )?,
            vec!["default-src 'self'; frame-ancestors 'self' https://portal.example"]
        );
        assert_eq!(
            csp_after(&[], Some("https://portal.example"))?,
            vec!["frame-ancestors 'self' https://portal.example"]
        );
        Ok(())
    }

    #[test]
    fn only_framed_cross_origin_requests_are_judged() -> TestResult {
        let cases = [
            (Some("iframe"), Some("cross-site"), true),
            (Some("IFRAME"), Some("same-site"), true),
            (Some("frame"), Some("cross-site"), true),
            (Some("iframe"), Some("same-origin"), false),
            (Some("iframe"), Some("none"), false),
            (Some("iframe"), None, false),
            (Some("document"), Some("cross-site"), false),
            (None, Some("cross-site"), false),
        ];
        for (dest, site, judged) in cases {
            let mut req = RequestHeader::build("GET", b"/_sso/jwt", None)?;
            if let Some(d) = dest {
                req.insert_header("sec-fetch-dest", d)?;
            }
            if let Some(s) = site {
                req.insert_header("sec-fetch-site", s)?;
            }
            assert_eq!(is_framed_cross_origin(&req), judged, "{dest:?} {site:?}");
        }
        Ok(())
    }

    #[test]
    fn a_referer_is_allowed_by_its_origin_only() -> TestResult {
        let allowed = vec!["https://portal.example".to_owned()];
        let own = Some("http://Dash.Example:8080");
        let cases = [
            (Some("https://portal.example/page?x=1"), true),
            (Some("https://portal.example:443/"), true),
            (Some("https://PORTAL.example/"), true),
            (Some("http://portal.example/"), false),
            (Some("https://portal.example.evil/"), false),
            (Some("http://dash.example:8080/app"), true),
            (Some("http://dash.example/app"), false),
            (Some("not a url"), false),
            (Some("data:text/html,x"), false),
            (None, false),
        ];
        for (referer, want) in cases {
            let mut req = RequestHeader::build("GET", b"/_sso/jwt", None)?;
            if let Some(r) = referer {
                req.insert_header(REFERER, r)?;
            }
            assert_eq!(referer_allowed(&req, own, &allowed), want, "{referer:?}");
        }
        Ok(())
    }

    #[test]
    fn the_apps_own_frame_ancestors_is_kept_otherwise() -> TestResult {
        assert_eq!(
            csp_after(&["frame-ancestors https://x.example"], None)?,
            vec!["frame-ancestors https://x.example"]
        );
        assert_eq!(
            csp_after(&["default-src 'self'"], None)?,
            vec!["default-src 'self'; frame-ancestors 'self'"]
        );
        Ok(())
    }
}
