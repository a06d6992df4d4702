//! ssogate's logins as a client sees them: flow A's redirect to the login_url, and Bearer
//! requests (flow D), accepted or refused.

use serde_json::Value;

use super::{app_header, query_pairs, Gate, Resp, SetCookie, PLAIN_COOKIE, SECURE_COOKIE};

#[derive(Debug, Clone)]
pub struct LoginRedirect {
    /// decoded `ssoCallback`
    pub sso_callback: String,
    /// the raw `state` value inside ssoCallback
    pub state: String,
    /// decoded `redirectPath`
    pub redirect_path: String,
}

/// Assert that `resp` is flow A's 302 to `login_url` (keeping login_url's own query first, then
/// `ssoCallback` = `<callback_base>/_sso/callback?state=N`, then `redirectPath`), and that the
/// same response sets a state cookie with Max-Age=600. Returns the parsed pieces.
pub fn expect_login_redirect(resp: &Resp, login_url: &str, callback_base: &str) -> LoginRedirect {
    assert_eq!(
        resp.status, 302,
        "expected a 302 to the login_url: {resp:#?}"
    );
    let loc = resp.location();
    assert!(
        loc.starts_with(login_url),
        "Location {loc:?} does not start with login_url {login_url:?}"
    );
    let own = query_pairs(login_url);
    let pairs = query_pairs(loc);
    assert_eq!(
        pairs.len(),
        own.len() + 2,
        "Location {loc:?} should have login_url's query + ssoCallback + redirectPath"
    );
    assert_eq!(
        &pairs[..own.len()],
        &own[..],
        "login_url's own query not kept first: {loc:?}"
    );
    assert_eq!(pairs[own.len()].0, "ssoCallback", "{loc:?}");
    assert_eq!(pairs[own.len() + 1].0, "redirectPath", "{loc:?}");
    let sso_callback = pairs[own.len()].1.clone();
    let redirect_path = pairs[own.len() + 1].1.clone();
    let prefix = format!("{callback_base}/_sso/callback?state=");
    assert!(
        sso_callback.starts_with(&prefix),
        "ssoCallback {sso_callback:?} should be {prefix}N"
    );
    let state = sso_callback[prefix.len()..].to_string();
    assert!(!state.is_empty(), "empty state in {sso_callback:?}");
    assert!(
        !state.contains('&') && !state.contains('?') && !state.contains('#'),
        "state should be a single opaque value: {state:?}"
    );
    // the state cookie: some cookie other than the session cookie, Max-Age=600
    let state_cookies = state_cookies(resp);
    assert_eq!(
        state_cookies.len(),
        1,
        "expected exactly one state cookie on the login redirect: {resp:#?}"
    );
    assert_eq!(
        state_cookies[0].max_age(),
        Some(600),
        "state cookie must have Max-Age=600: {:?}",
        state_cookies[0].raw
    );
    LoginRedirect {
        sso_callback,
        state,
        redirect_path,
    }
}

/// The cookies a response sets other than the session cookie (and removals).
fn state_cookies(resp: &Resp) -> Vec<SetCookie> {
    resp.set_cookies()
        .into_iter()
        .filter(|c| c.name != PLAIN_COOKIE && c.name != SECURE_COOKIE && !c.is_removal())
        .collect()
}

/// The state cookie set by a login redirect.
pub fn state_cookie(resp: &Resp) -> SetCookie {
    state_cookies(resp)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no state cookie in {resp:#?}"))
}

/// `GET path` routed to `org` (Host `<org>.test`) with `Authorization: Bearer token`.
pub fn bearer_to(g: &Gate, org: &str, path: &str, token: &str) -> Resp {
    g.api(path)
        .host(&format!("{org}.test"))
        .header("Authorization", &format!("Bearer {token}"))
        .send()
}

/// Assert that a Bearer request with `token` reaches the app as `sub` of `org`, with no cookie
/// set. Returns the app's echo.
#[track_caller]
pub fn assert_bearer_ok(g: &Gate, org: &str, token: &str, sub: &str, what: &str) -> Value {
    let before = g.upstream.count();
    let r = bearer_to(g, org, "/app/data?x=1", token);
    assert_eq!(
        r.status,
        200,
        "{what}: Bearer token refused by org {org}: {r:#?}\nlogs (tail):\n{}",
        g.log_tail()
    );
    let echo = r.app();
    assert_eq!(g.upstream.count(), before + 1, "{what}: app request count");
    assert_eq!(
        app_header(&echo, "x-auth-request-user"),
        vec![sub.to_string()],
        "{what}: principal header"
    );
    assert_eq!(
        app_header(&echo, "x-auth-request-org"),
        vec![org.to_string()],
        "{what}: org header"
    );
    assert!(
        r.header_all("set-cookie").is_empty(),
        "{what}: the Bearer path must not set cookies: {r:#?}"
    );
    echo
}

/// Assert that a Bearer request with `token` is refused: 401,
/// `WWW-Authenticate: Bearer error="invalid_token"`, no cookie, not reaching the app.
#[track_caller]
pub fn assert_bearer_refused(g: &Gate, org: &str, token: &str, what: &str) {
    let before = g.upstream.count();
    let r = bearer_to(g, org, "/app/data", token);
    assert_eq!(
        r.status, 401,
        "{what}: should be refused by org {org}: {r:#?}"
    );
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "{what}: WWW-Authenticate should be Bearer error=\"invalid_token\": {r:#?}"
    );
    assert!(
        r.header_all("set-cookie").is_empty(),
        "{what}: a refused Bearer token set a cookie: {r:#?}"
    );
    assert_eq!(g.upstream.count(), before, "{what}: reached the app");
}
