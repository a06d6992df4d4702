//! Return paths (`rd`, `redirectPath`, `redirectUrl`) and the URLs ssogate
//! sends browsers to. ssogate is never an open redirect: a return path must
//! stay on this host, or the org's `home_path` is used instead.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// A relative path on the same host: one leading `/`, not `//` or `/\`
/// (browsers read both as another host), no scheme, no control characters,
/// judged after percent-decoding (repeatedly, so double encoding does not
/// hide anything).
pub fn is_safe_return_path(path: &str) -> bool {
    let mut current = std::borrow::Cow::Borrowed(path);
    for _ in 0..3 {
        if !is_safe_literal(&current) {
            return false;
        }
        let decoded = percent_decode_str(&current).decode_utf8_lossy();
        if decoded == current {
            return true;
        }
        current = std::borrow::Cow::Owned(decoded.into_owned());
    }
    false
}

fn is_safe_literal(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/') | Some(b'\\'))
        && !bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
        && !path.chars().any(|c| c.is_control())
}

/// `path` when it is a safe return path, else `home`.
pub fn safe_or<'a>(path: Option<&'a str>, home: &'a str) -> &'a str {
    match path {
        Some(p) if is_safe_return_path(p) => p,
        _ => home,
    }
}

/// What `encodeURIComponent` leaves alone; everything else is escaped, so
/// the value survives any URL it is put into.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

pub fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// `base` with `params` appended to its query, after any it already has.
pub fn append_query(base: &url::Url, params: &[(&str, &str)]) -> String {
    let mut url = base.clone();
    url.set_fragment(None);
    let mut out = String::from(url.as_str());
    for (name, value) in params {
        if !out.ends_with('?') {
            out.push(if out.contains('?') { '&' } else { '?' });
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&encode_component(value));
    }
    if let Some(fragment) = base.fragment() {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_redirects_are_refused() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "%2F%2Fevil.com",
            "/%2Fevil.com",
            "/%5Cevil.com",
            "/%252F%252Fevil.com",
            "javascript:alert(1)",
            "\t//evil.com",
            "/\t/evil.com",
            "/%09/evil.com",
            "/ok\r\nSet-Cookie: x=1",
            "/ok%0d%0aSet-Cookie:x=1",
            "",
            "evil.com",
        ] {
            assert!(!is_safe_return_path(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn ordinary_paths_are_kept() {
        for good in [
            "/",
            "/ok?x=1",
            "/a/b#frag",
            "/reports?q=a%20b",
            "/%E2%82%AC",
        ] {
            assert!(is_safe_return_path(good), "{good:?} refused");
        }
        assert_eq!(safe_or(Some("//evil.com"), "/home"), "/home");
        assert_eq!(safe_or(Some("/ok?x=1"), "/home"), "/ok?x=1");
    }

    #[test]
    fn query_is_appended_after_existing_parameters() -> Result<(), url::ParseError> {
        let base = url::Url::parse("https://portal.example/sso?x=1#top")?;
        assert_eq!(
            append_query(&base, &[("a", "/p?q=1&r"), ("b", "é")]),
            "https://portal.example/sso?x=1&a=%2Fp%3Fq%3D1%26r&b=%C3%A9#top"
        );
        let plain = url::Url::parse("https://portal.example/sso")?;
        assert_eq!(
            append_query(&plain, &[("a", "1")]),
            "https://portal.example/sso?a=1"
        );
        Ok(())
    }
}
