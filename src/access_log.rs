//! One line per request (SPEC 2, 10), written straight into the logging
//! thread's buffer: the same JSON object tracing's formatter would make of
//! the event (`timestamp`, `level`, the fields, `target`), or tracing's text
//! layout with `--log-format text`. Formatting it through tracing cost more
//! than everything else ssogate does for a request: a string per
//! `Display` field, a visitor call per field, a date computed afresh.
//!
//! It is still subject to `SSOGATE_LOG` (target `ssogate::access`, level
//! `info`), and never carries the query string.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::logging::{self, LogFormat};
use crate::request;

pub const TARGET: &str = "ssogate::access";

/// What the access line says about a request. `None` fields are left out.
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub org: &'a str,
    pub method: &'a str,
    /// Without the query string: it may carry a token or a code.
    pub path: &'a str,
    pub status: u16,
    pub outcome: &'static str,
    pub auth_method: Option<&'static str>,
    pub auth_result: Option<&'static str>,
    pub principal: Option<&'a str>,
    pub client: Option<IpAddr>,
    pub upstream: Option<Duration>,
    pub duration: Duration,
    pub error: Option<&'static str>,
}

/// Whether access lines are wanted at all (`SSOGATE_LOG`); cheap, so it is
/// asked before anything is gathered for one.
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// Appends the line to this thread's log buffer.
pub fn write(line: &AccessLine) {
    logging::append(|out, format| match format {
        LogFormat::Json => json(out, line),
        LogFormat::Text => text(out, line),
    });
}

fn json(out: &mut Vec<u8>, line: &AccessLine) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(out);
    out.extend_from_slice(b"\",\"level\":\"INFO\"");
    text_field(out, "request_id", line.request_id);
    text_field(out, "org", line.org);
    text_field(out, "method", line.method);
    text_field(out, "path", line.path);
    name(out, "status");
    number(out, u64::from(line.status));
    text_field(out, "outcome", line.outcome);
    if let Some(v) = line.auth_method {
        text_field(out, "auth_method", v);
    }
    if let Some(v) = line.auth_result {
        text_field(out, "auth_result", v);
    }
    if let Some(v) = line.principal {
        text_field(out, "principal", v);
    }
    if let Some(ip) = line.client {
        name(out, "client");
        out.push(b'"');
        request::push_ip(out, ip);
        out.push(b'"');
    }
    if let Some(d) = line.upstream {
        name(out, "upstream_ms");
        millis(out, d);
    }
    name(out, "duration_ms");
    millis(out, line.duration);
    if let Some(v) = line.error {
        text_field(out, "error", v);
    }
    text_field(out, "target", TARGET);
    out.extend_from_slice(b"}\n");
}

/// `,"name":`
fn name(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn text_field(out: &mut Vec<u8>, field: &str, value: &str) {
    name(out, field);
    out.push(b'"');
    escape_json(out, value);
    out.push(b'"');
}

fn escape_json(out: &mut Vec<u8>, text: &str) {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f;
    if !text.bytes().any(needs) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// Decimal digits of `n`, without the formatting machinery.
fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` as exactly `width` digits (for fractions).
fn padded(out: &mut Vec<u8>, n: u64, width: u32) {
    let mut div = 10u64.pow(width.saturating_sub(1));
    while div > 0 {
        out.push(b'0' + (n / div % 10) as u8);
        div /= 10;
    }
}

/// Milliseconds with microsecond precision: `12.345`.
fn millis(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    number(out, micros / 1000);
    out.push(b'.');
    padded(out, micros % 1000, 3);
}

/// tracing's text layout: `<time>  INFO ssogate::access: name=value ...`.
fn text(out: &mut Vec<u8>, line: &AccessLine) {
    timestamp(out);
    out.extend_from_slice(b"  INFO ");
    out.extend_from_slice(TARGET.as_bytes());
    out.push(b':');
    let mut pair = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(out, " {name}={value}");
    };
    pair("request_id", &line.request_id);
    pair("org", &line.org);
    pair("method", &line.method);
    pair("path", &line.path);
    pair("status", &line.status);
    pair("outcome", &line.outcome);
    if let Some(v) = line.auth_method {
        pair("auth_method", &v);
    }
    if let Some(v) = line.auth_result {
        pair("auth_result", &v);
    }
    if let Some(v) = line.principal {
        pair("principal", &v);
    }
    if let Some(v) = line.client {
        pair("client", &v);
    }
    if let Some(d) = line.upstream {
        pair("upstream_ms", &Millis(d));
    }
    pair("duration_ms", &Millis(line.duration));
    if let Some(v) = line.error {
        pair("error", &v);
    }
    out.push(b'\n');
}

/// Milliseconds with microsecond precision.
struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let micros = self.0.as_micros();
        write!(f, "{}.{:03}", micros / 1000, micros % 1000)
    }
}

thread_local! {
    /// The second last formatted, as `YYYY-MM-DDTHH:MM:SS`: the date is
    /// worked out once a second, not once a line.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC with microseconds, as tracing writes it.
fn timestamp(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, civil(secs));
        }
        out.extend_from_slice(&cached.1);
    });
    out.push(b'.');
    padded(out, u64::from(now.subsec_micros()), 6);
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (days to civil date: Howard
/// Hinnant's algorithm).
fn civil(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let of_day = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = [0u8; 19];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let _ = write!(
        cursor,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccessLine<'static> {
        AccessLine {
            request_id: "0123456789abcdef",
            org: "acme",
            method: "GET",
            path: "/a\"b\\c\u{1}",
            status: 200,
            outcome: "proxied",
            auth_method: Some("cookie"),
            auth_result: Some("ok"),
            principal: Some("zoë"),
            client: Some(IpAddr::from([127, 0, 0, 1])),
            upstream: Some(Duration::from_micros(1_234)),
            duration: Duration::from_micros(56_789),
            error: None,
        }
    }

    #[test]
    fn the_json_line_is_the_object_tracing_would_write() -> Result<(), serde_json::Error> {
        let mut out = Vec::new();
        json(&mut out, &sample());
        assert_eq!(out.last(), Some(&b'\n'));
        let line: serde_json::Value = serde_json::from_slice(&out)?;
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], TARGET);
        assert_eq!(line["path"], "/a\"b\\c\u{1}");
        assert_eq!(line["principal"], "zoë");
        assert_eq!(line["status"], 200);
        assert_eq!(line["client"], "127.0.0.1");
        assert_eq!(line["upstream_ms"], 1.234);
        assert_eq!(line["duration_ms"], 56.789);
        assert!(line.get("error").is_none(), "absent fields are left out");
        let stamp = line["timestamp"].as_str().unwrap_or_default();
        assert_eq!(stamp.len(), "2026-11-29T17:03:37.398460Z".len(), "{stamp}");
        Ok(())
    }

    #[test]
    fn dates_are_civil_dates_in_utc() {
        assert_eq!(&civil(0), b"1970-01-01T00:00:00");
        assert_eq!(&civil(951_782_400), b"2000-02-29T00:00:00");
        assert_eq!(&civil(1_795_972_417), b"2026-11-29T17:13:37");
        assert_eq!(&civil(4_102_444_799), b"2099-12-31T23:59:59");
    }
}
