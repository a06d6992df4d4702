//! Responses ssogate writes itself: redirects, JSON for scripts, a small
//! HTML page for people. None ever echoes a token, code or cookie value.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::HeaderName;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::json;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn redirect(location: impl Into<String>) -> Self {
        Reply::new(302).header(LOCATION, location)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut reply = Reply::new(status).header(CONTENT_TYPE, "application/json");
        reply.body = Bytes::from(value.to_string());
        reply
    }

    pub fn html(status: u16, body: String) -> Self {
        let mut reply = Reply::new(status).header(CONTENT_TYPE, "text/html; charset=utf-8");
        reply.body = Bytes::from(body);
        reply
    }

    /// An error for a person (HTML) or a script (JSON), with the request id
    /// that finds it in the logs.
    pub fn error(status: u16, code: &str, request_id: &str, navigation: bool) -> Self {
        if navigation {
            Reply::html(status, error_page(status, code, request_id))
        } else {
            Reply::json(status, &json!({"error": code, "request_id": request_id}))
        }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn cookie(self, set_cookie: String) -> Self {
        self.header(SET_COOKIE, set_cookie)
    }

    /// Writes the reply. Every response of ssogate's own may carry a fresh
    /// cookie or sit on a URL that carried a token: never cached, never
    /// leaking the URL through `Referer`.
    pub async fn write(
        self,
        session: &mut Session,
        extra: &[(HeaderName, String)],
    ) -> pingora::Result<()> {
        let mut head = ResponseHeader::build(self.status, Some(self.headers.len() + 5))?;
        for (name, value) in self.headers.into_iter().chain(extra.iter().cloned()) {
            head.append_header(name, value)?;
        }
        head.insert_header(CACHE_CONTROL, "no-store")?;
        head.insert_header("referrer-policy", "no-referrer")?;
        head.insert_header("x-content-type-options", "nosniff")?;
        head.set_content_length(self.body.len())?;
        let head_only = self.body.is_empty() || session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(head), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(self.body), true).await?;
        }
        Ok(())
    }
}

fn error_page(status: u16, code: &str, request_id: &str) -> String {
    let title = match status {
        400 => "Bad request",
        401 => "Sign-in required",
        403 => "Access denied",
        404 => "Not found",
        429 => "Too many sign-in attempts",
        502..=504 => "The application is unavailable",
        _ => "Something went wrong",
    };
    page(
        title,
        &format!(
            "<p>{}</p><p class=\"id\">Request id: <code>{}</code></p>",
            escape(&explain(code)),
            escape(request_id)
        ),
    )
}

fn explain(code: &str) -> String {
    match code {
        "unauthenticated" => "You are not signed in. Open this application from your organization's portal.".into(),
        "invalid_token" => "The sign-in link is invalid, expired or already used. Go back to your portal and open the application again.".into(),
        "organization_disabled" => "Access for your organization is disabled.".into(),
        "unknown_organization" => "This address does not belong to any organization.".into(),
        "rate_limited" => "Too many sign-in attempts came from your network. Wait a moment, then open the application again from your portal.".into(),
        "framing_not_allowed" => "This page may not sign you in inside the site that embeds it. Open the application from your organization's portal.".into(),
        other => other.replace('_', " "),
    }
}

/// A minimal standalone page (no external resources).
pub fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}.id{{color:#777;font-size:.85em}}</style></head><body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title)
    )
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
