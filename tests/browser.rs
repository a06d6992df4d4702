//! Real-browser tests: a headless Chromium (driven over the DevTools protocol, see
//! `common/browser.rs`) goes through ssogate's login flows the way a user's browser does, with
//! the customer's portal pages and apps served by small servers of the test ([`Site`]). Each
//! test asserts what the user would see: where the browser ends up, the page's text or title,
//! what the embedded app reported to the portal page.
//!
//! * Flow A, top level (`secure: false`): 127.0.0.1 app, portal on localhost.
//! * Flow A and B inside iframes with `secure: true` cookies (`__Host-ssogate; Secure;
//!   SameSite=None; Partitioned`): Chromium treats http://localhost and http://127.0.0.1 as
//!   secure contexts, so Secure cookies work over plain http. Portal and proxy on localhost are
//!   same-site (different ports); a portal on 127.0.0.1 is cross-site, the production shape.
//! * Flow E, the bridge page, with allowed and not-allowed parents.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::browser::{html_escape, js_string, Browser, PageState};
use common::*;
use serde_json::Value;

/// Deadline of every "the browser should get there" wait.
const T: Duration = Duration::from_secs(20);
/// How long "nothing happens" is watched.
const QUIET: Duration = Duration::from_secs(3);

/// The origin nobody uses: an `allowed_origins` entry that is not the portal.
const ELSEWHERE: &str = "https://elsewhere.example";

fn alice_token() -> String {
    hs256(ACME_SECRET, &claims("alice"))
}

/// A config for the embedding tests: `secure: true` cookies, `public_url:
/// http://localhost:<proxy>` (without it ssogate would build `https://` callback URLs from
/// `secure: true`, and this proxy speaks plain http), org acme (reached through `default_org`) with
/// `login_url: <portal>/login`, `allowed_origins: [<allowed_origin>]`, `home_path`, and an
/// optional upstream of its own.
fn embed_config(portal: &str, allowed_origin: &str, home_path: &str, app: Option<&Site>) -> String {
    let upstream = app
        .map(|a| format!("    upstream: http://127.0.0.1:{}\n", a.port))
        .unwrap_or_default();
    template(&format!(
        "organizations:
  acme:
    login_url: {portal}/login
    home_path: {home_path}
    allowed_origins: [{allowed_origin}]
{upstream}    keys: [{{ alg: HS256, secret_file: acme.secret }}]
default_org: acme
"
    ))
    .replace(
        "public_url: http://127.0.0.1:",
        "public_url: http://localhost:",
    )
    .replace("secure: false", "secure: true")
}

/// The proxy as the browser reaches it in the embedding tests.
fn localhost(gate: &Gate, target: &str) -> String {
    format!("http://localhost:{}{target}", gate.proxy_port)
}

/// The port of the gate, for portal pages built before the gate starts.
type Later = Arc<OnceLock<u16>>;

fn later(port: &Later) -> u16 {
    *port
        .get()
        .expect("the gate's port is set before the browser starts")
}

/// The harness upstream's echo on the page, with the identity the app received.
fn echo_of(page: &PageState) -> Value {
    page.json()
        .unwrap_or_else(|| panic!("the page is not the app's JSON echo:\n{page}"))
}

fn assert_alice(page: &PageState, cookie_names: &[&str]) {
    let echo = echo_of(page);
    assert_eq!(
        app_header(&echo, "x-auth-request-user"),
        ["alice"],
        "the app should see the user:\n{page}"
    );
    assert_eq!(
        app_header(&echo, "x-auth-request-email"),
        ["alice@example.test"],
        "{page}"
    );
    assert_eq!(
        app_header(&echo, "x-auth-request-groups"),
        ["dev,ops"],
        "{page}"
    );
    assert_eq!(app_header(&echo, "x-auth-request-org"), ["acme"], "{page}");
    let cookies = app_cookies(&echo);
    for name in cookie_names {
        assert!(
            !cookies.iter().any(|(n, _)| n == name),
            "ssogate's cookie {name} reached the app: {cookies:?}\n{page}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Flow A: redirect to the portal, token callback, back to the original URL
// ---------------------------------------------------------------------------------------------

/// Org acme (reached through `default_org`) signing in at `<portal>/login`.
fn flow_a_config(portal: &Site) -> String {
    template(&format!(
        "organizations:
  acme:
    login_url: {}/login
    keys: [{{ alg: HS256, secret_file: acme.secret }}]
default_org: acme
",
        portal.origin()
    ))
}

/// The customer's login endpoint: the user is "already signed in to the portal", so it answers
/// at once with a 302 to `ssoCallback` + `&token=<fresh JWT>`.
fn instant_login(r: &Request) -> Response {
    match r.param("ssoCallback") {
        Some(callback) => Response::redirect(&format!("{callback}&token={}", alice_token())),
        None => Response::html("<h1>portal</h1><p>login without ssoCallback</p>"),
    }
}

fn instant_login_portal() -> Site {
    Site::start(|r: &Request| match r.path.as_str() {
        "/login" => instant_login(r),
        _ => Response::not_found(),
    })
}

#[test]
fn flow_a_signs_in_through_the_portal_and_returns_to_the_requested_url() {
    let portal = instant_login_portal();
    let gate = Gate::start(&flow_a_config(&portal));
    let mut b = Browser::launch();

    let reports = gate.url("/reports?q=1");
    b.navigate(&reports);
    let page = b.wait_page(
        "the app's page at the URL first asked for, after the portal round trip",
        T,
        |s| s.href == reports && s.json().is_some(),
    );
    assert_alice(&page, &[PLAIN_COOKIE, "ssogate_session_state"]);
    let echo = echo_of(&page);
    assert_eq!(echo["path"], "/reports", "{page}");
    assert_eq!(echo["query"], "q=1", "{page}");
    for referer in app_header(&echo, "referer") {
        assert!(
            !referer.contains("token="),
            "the callback URL with its token leaked to the app as Referer: {referer}"
        );
    }
    assert_eq!(portal.hits("/login"), 1, "one trip through the portal");
    let login = portal
        .requests()
        .into_iter()
        .find(|r| r.path == "/login")
        .unwrap();
    assert_eq!(
        login.param("redirectPath").as_deref(),
        Some("/reports?q=1"),
        "{login:?}"
    );

    assert!(
        b.cookie("ssogate_session_state", "127.0.0.1").is_none(),
        "the state cookie of the finished login should be gone: {:?}",
        b.cookies()
    );

    // The session cookie is the browser's alone: HttpOnly, invisible to the page's scripts.
    let session = b
        .cookie(PLAIN_COOKIE, "127.0.0.1")
        .unwrap_or_else(|| panic!("no {PLAIN_COOKIE} in the browser: {:?}", b.cookies()));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    let visible = b.eval("document.cookie");
    assert!(
        !visible.as_str().unwrap_or_default().contains("ssogate"),
        "document.cookie shows ssogate's cookie: {visible}"
    );

    // Another page of the app needs no new login.
    let other = gate.url("/other");
    b.navigate(&other);
    let page = b.wait_page("another page, same session", T, |s| {
        s.href == other && s.json().is_some()
    });
    assert_alice(&page, &[PLAIN_COOKIE]);
    assert_eq!(portal.hits("/login"), 1, "no second trip for a second page");

    // Sign out: the built-in page, and the cookie is gone.
    let logout = gate.url("/_sso/logout");
    b.navigate(&logout);
    let page = b.wait_page("the signed-out page", T, |s| {
        s.href == logout && s.text.contains("You are signed out")
    });
    assert_eq!(page.title, "Signed out", "{page}");
    assert!(
        b.cookie(PLAIN_COOKIE, "127.0.0.1").is_none(),
        "the session cookie survived the logout: {:?}",
        b.cookies()
    );

    // Back to the app: through the portal again, and back on the page.
    let back = gate.url("/reports");
    b.navigate(&back);
    let page = b.wait_page("the app again after a second portal round trip", T, |s| {
        s.href == back && s.json().is_some()
    });
    assert_alice(&page, &[PLAIN_COOKIE, "ssogate_session_state"]);
    assert_eq!(
        portal.hits("/login"),
        2,
        "after logout the browser must go through the portal again"
    );
}

// ---------------------------------------------------------------------------------------------
// Flow B: an iframe whose src carries the token, Secure + Partitioned cookies
// ---------------------------------------------------------------------------------------------

/// The app of the iframe tests: every page tells the parent window who it was told the user is
/// (`x-auth-request-user`), which cookies and Referer it received, and where it is.
fn identity_app() -> Site {
    Site::start(|r: &Request| {
        if r.path == "/favicon.ico" {
            return Response::not_found();
        }
        let user = r.header("x-auth-request-user");
        let js = |v: Option<&str>| v.map(js_string).unwrap_or_else(|| "null".into());
        Response::html(format!(
            "<!doctype html><html><head><title>app</title></head><body>\
             <p>Signed in as {name}</p>\
             <script>parent.postMessage({{user: {user}, email: {email}, cookie: {cookie}, \
             referer: {referer}, referrer: document.referrer, \
             at: location.pathname + location.search}}, '*');</script>\
             </body></html>",
            name = html_escape(user.unwrap_or("nobody")),
            user = js(user),
            email = js(r.header("x-auth-request-email")),
            cookie = js(r.header("cookie")),
            referer = js(r.header("referer")),
        ))
    })
}

/// The customer's portal for the iframe tests:
/// * `/embed`: `<iframe src="<proxy>/_sso/jwt?jwt=<fresh JWT>">` (flow B);
/// * `/embed-app`: `<iframe src="<proxy>/reports?q=1">`, no token (flow A inside the iframe);
/// * `/login`: the portal's SSO endpoint, answering at once (the user is signed in here).
///
/// Its page records every message and takes as title the user the app reports (from the
/// proxy's origin only).
fn embedding_portal(proxy_port: Later) -> Site {
    Site::start(move |r: &Request| {
        let proxy = format!("http://localhost:{}", later(&proxy_port));
        let src = match r.path.as_str() {
            "/embed" => format!("{proxy}/_sso/jwt?jwt={}", alice_token()),
            "/embed-app" => format!("{proxy}/reports?q=1"),
            "/login" => return instant_login(r),
            _ => return Response::not_found(),
        };
        Response::html(format!(
            r#"<!doctype html><html><head><title>portal</title><script>
window.__messages = [];
addEventListener('message', function (e) {{
  window.__messages.push({{origin: e.origin, data: e.data}});
  if (e.origin === {proxy} && e.data && typeof e.data.user === 'string') document.title = e.data.user;
}});
</script></head><body><h1>Customer portal</h1>
<iframe id="app" width="800" height="400" src="{src}"></iframe>
</body></html>"#,
            proxy = js_string(&proxy),
            src = html_escape(&src),
        ))
    })
}

/// The one message the embedded app sent to the portal page.
fn only_message(b: &mut Browser) -> Value {
    let messages = b.eval("window.__messages");
    let list = messages.as_array().cloned().unwrap_or_default();
    if list.len() != 1 {
        panic!(
            "expected exactly one message from the app, got {messages}\n{}",
            b.diagnostics()
        );
    }
    list[0].clone()
}

/// The app in the iframe saw alice, and neither ssogate's cookie nor a token in its Referer.
fn assert_app_saw_alice(message: &Value, gate: &Gate) {
    assert_eq!(message["origin"], localhost(gate, ""), "{message}");
    assert_eq!(message["data"]["user"], "alice", "{message}");
    assert_eq!(message["data"]["email"], "alice@example.test", "{message}");
    let cookie = message["data"]["cookie"].as_str().unwrap_or_default();
    assert!(
        !cookie.contains(SECURE_COOKIE),
        "ssogate's cookies reached the app: {cookie:?}"
    );
    for field in ["referer", "referrer"] {
        let r = message["data"][field].as_str().unwrap_or_default();
        assert!(
            !r.contains("jwt=") && !r.contains("token="),
            "a token leaked to the app through its {field}: {r:?}"
        );
    }
}

#[test]
fn flow_b_iframe_on_an_allowed_portal_shows_the_user() {
    let gate_port = Later::default();
    let portal = embedding_portal(gate_port.clone());
    let app = identity_app();
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        &portal.origin(),
        "/app",
        Some(&app),
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    let embed = format!("{}/embed", portal.origin());
    b.navigate(&embed);
    b.wait_page(
        "the portal's title to become the user the embedded app received",
        T,
        |s| s.href == embed && s.title == "alice",
    );
    let message = only_message(&mut b);
    assert_app_saw_alice(&message, &gate);
    assert_eq!(
        message["data"]["at"], "/app",
        "landed on home_path: {message}"
    );
    assert_eq!(app.hits("/app"), 1, "{:?}", app.requests());

    // What the browser stored: the __Host- cookie, Secure, SameSite=None, partitioned under the
    // portal's site.
    let c = b.cookie(SECURE_COOKIE, "localhost").unwrap_or_else(|| {
        panic!(
            "the browser holds no {SECURE_COOKIE}: {:?}\n{}",
            b.cookies(),
            b.journal_tail()
        )
    });
    assert_eq!(c["secure"], true, "{c}");
    assert_eq!(c["httpOnly"], true, "{c}");
    assert_eq!(c["sameSite"], "None", "{c}");
    assert_eq!(c["path"], "/", "{c}");
    assert_eq!(
        c["partitionKey"]["topLevelSite"], "http://localhost",
        "the cookie should be partitioned under the portal's site: {c}"
    );
}

/// The production shape: portal and app on two different sites (here http://127.0.0.1 and
/// http://localhost), where only `SameSite=None; Secure; Partitioned` lets the cookie work.
#[test]
fn flow_b_iframe_on_a_cross_site_portal_shows_the_user() {
    let gate_port = Later::default();
    let portal = embedding_portal(gate_port.clone());
    let app = identity_app();
    let portal_origin = format!("http://127.0.0.1:{}", portal.port);
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        &portal_origin,
        "/app",
        Some(&app),
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    let embed = format!("{portal_origin}/embed");
    b.navigate(&embed);
    b.wait_page(
        "the cross-site portal's title to become the user the embedded app received",
        T,
        |s| s.href == embed && s.title == "alice",
    );
    assert_app_saw_alice(&only_message(&mut b), &gate);
    let c = b.cookie(SECURE_COOKIE, "localhost").unwrap_or_else(|| {
        panic!(
            "the browser holds no {SECURE_COOKIE}: {:?}\n{}",
            b.cookies(),
            b.journal_tail()
        )
    });
    assert_eq!(
        c["partitionKey"]["topLevelSite"], "http://127.0.0.1",
        "the cookie should be partitioned under the embedding site: {c}"
    );
}

/// The session renewal of the SPEC: the app in a cross-site iframe has no session, so the iframe
/// goes to the portal's login_url and back through the callback, without the user doing a thing,
/// and lands on the page it asked for. Only works if the state cookie set in the iframe comes
/// back on the callback (SameSite=None; Secure; Partitioned).
#[test]
fn flow_a_inside_a_cross_site_iframe_signs_in_without_user_action() {
    let gate_port = Later::default();
    let portal = embedding_portal(gate_port.clone());
    let app = identity_app();
    let portal_origin = format!("http://127.0.0.1:{}", portal.port);
    let gate = Gate::start(&embed_config(
        &portal_origin,
        &portal_origin,
        "/app",
        Some(&app),
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    let embed = format!("{portal_origin}/embed-app");
    b.navigate(&embed);
    b.wait_page(
        "the portal's title to become the user the embedded app received after flow A",
        T,
        |s| s.href == embed && s.title == "alice",
    );
    let message = only_message(&mut b);
    assert_app_saw_alice(&message, &gate);
    assert_eq!(
        message["data"]["at"], "/reports?q=1",
        "the iframe should be back on the page it asked for: {message}"
    );
    assert_eq!(portal.hits("/login"), 1, "{:?}", portal.requests());
    assert_eq!(app.hits("/reports"), 1, "{:?}", app.requests());
}

/// The responses the browser received for URLs starting with `prefix`, redirects included:
/// URL and status.
fn framed_answers(b: &Browser, prefix: &str) -> Vec<(String, u64)> {
    b.events()
        .iter()
        .filter_map(|e| match e["method"].as_str() {
            Some("Network.responseReceived") => Some(&e["params"]["response"]),
            Some("Network.requestWillBeSent") => e["params"].get("redirectResponse"),
            _ => None,
        })
        .filter_map(|r| {
            let url = r["url"].as_str()?;
            url.starts_with(prefix)
                .then(|| (url.to_owned(), r["status"].as_u64().unwrap_or(0)))
        })
        .collect()
}

/// Waits until the browser received an answer to a URL starting with each of `prefixes`.
fn wait_answers(b: &mut Browser, prefixes: &[String]) {
    let answered = poll(T, || {
        // Each call also takes in the events that arrived meanwhile.
        b.eval("true");
        prefixes
            .iter()
            .all(|p| !framed_answers(b, p).is_empty())
            .then_some(())
    });
    if answered.is_none() {
        panic!(
            "no answer to one of {prefixes:?} within {T:?}\n{}",
            b.diagnostics()
        );
    }
}

/// ssogate's cookies the browser holds, in any partition.
fn ssogate_cookies(b: &mut Browser) -> Vec<Value> {
    b.cookies()
        .into_iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.contains("ssogate")))
        .collect()
}

/// A portal not in `allowed_origins`: the login it frames is refused by ssogate itself (SPEC 11,
/// 403 and no cookie), and the app it frames once the user has a session is refused by the
/// browser through the CSP's `frame-ancestors` (SPEC 6).
#[test]
fn flow_b_iframe_on_a_portal_not_in_allowed_origins_is_refused() {
    let gate_port = Later::default();
    let portal = embedding_portal(gate_port.clone());
    let app = identity_app();
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        ELSEWHERE,
        "/app",
        Some(&app),
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    // The login in the frame: refused before the token is looked at.
    let embed = format!("{}/embed", portal.origin());
    b.navigate(&embed);
    b.wait_page("the portal page", T, |s| s.href == embed);
    let jwt = localhost(&gate, "/_sso/jwt?jwt=");
    wait_answers(&mut b, std::slice::from_ref(&jwt));
    let answers = framed_answers(&b, &jwt);
    assert_eq!(
        answers.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [403],
        "the framed login is refused: {answers:?}\n{}",
        b.journal_tail()
    );
    b.hold_eval(
        "the portal's title unchanged and no message from the iframe",
        QUIET,
        "({title: document.title, messages: window.__messages.length})",
        |v| v["title"] == "portal" && v["messages"] == 0,
    );
    assert_eq!(app.count(), 0, "{:?}", app.requests());
    let cookies = ssogate_cookies(&mut b);
    assert!(
        cookies.is_empty(),
        "no cookie from a refused login: {cookies:?}"
    );

    // Signed in at the proxy itself, the same portal frames the app: the app answers, and only
    // the framing policy stands between it and the portal.
    sign_in_at_localhost(&mut b, &gate, "/app");
    let embed_app = format!("{}/embed-app", portal.origin());
    b.navigate(&embed_app);
    b.wait_page("the portal page framing the app", T, |s| {
        s.href == embed_app
    });
    b.wait_eval(
        "the app page requested through the iframe",
        T,
        "true",
        |_| app.hits("/reports") == 1,
    );
    b.hold_eval(
        "the portal's title unchanged and no message from the iframe",
        QUIET,
        "({title: document.title, messages: window.__messages.length})",
        |v| v["title"] == "portal" && v["messages"] == 0,
    );
    let expected = format!("frame-ancestors 'self' {ELSEWHERE}");
    assert!(
        b.journal_has(&expected),
        "the app's response should carry CSP `{expected}` and Chromium should refuse to frame it\n{}",
        b.journal_tail()
    );
    // Chromium: "Framing 'http://localhost:<proxy>/' violates the following Content Security
    // Policy directive: "frame-ancestors 'self' https://elsewhere.example". The request has been
    // blocked."
    assert!(
        b.console()
            .iter()
            .any(|l| l.contains("Framing") && l.contains(&expected)),
        "Chromium should report the frame-ancestors refusal on the console\n{}",
        b.journal_tail()
    );
}

/// A page of another site (here http://127.0.0.1, while the org allows only its portal on
/// http://localhost) frames every way into a login: the login flow B link, an app page without
/// a session (which would start flow A), `/_sso/login`, a query token and the bridge. Each gets
/// ssogate's 403, the portal's login_url is never reached, and the browser holds no cookie of
/// ssogate's in any partition.
#[test]
fn a_page_of_another_site_cannot_frame_a_login() {
    let gate_port = Later::default();
    let frames = Site::start({
        let gate_port = gate_port.clone();
        move |r: &Request| {
            if r.path != "/frames" {
                return Response::not_found();
            }
            let proxy = format!("http://localhost:{}", later(&gate_port));
            let token = alice_token();
            let iframes: String = [
                format!("{proxy}/_sso/jwt?jwt={token}"),
                format!("{proxy}/reports?q=1"),
                format!("{proxy}/_sso/login?rd=%2Freports"),
                format!("{proxy}/reports?access_token={}", alice_token()),
                format!("{proxy}/_sso/bridge"),
            ]
            .iter()
            .map(|src| format!("<iframe src=\"{}\"></iframe>", html_escape(src)))
            .collect();
            Response::html(format!(
                "<!doctype html><html><head><title>elsewhere</title></head><body>{iframes}</body></html>"
            ))
        }
    });
    let portal = instant_login_portal();
    let app = identity_app();
    let config = embed_config(&portal.origin(), &portal.origin(), "/app", Some(&app)).replace(
        "    home_path: /app\n",
        "    home_path: /app\n    accept_query_token: access_token\n",
    );
    assert!(config.contains("accept_query_token"));
    let gate = Gate::start(&config);
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    let page = format!("http://127.0.0.1:{}/frames", frames.port);
    b.navigate(&page);
    b.wait_page("the page of another site", T, |s| s.href == page);
    let prefixes = [
        "/_sso/jwt?jwt=",
        "/reports?q=1",
        "/_sso/login?rd=",
        "/reports?access_token=",
        "/_sso/bridge",
    ]
    .map(|p| localhost(&gate, p));
    wait_answers(&mut b, &prefixes);
    for prefix in &prefixes {
        let answers = framed_answers(&b, prefix);
        assert_eq!(
            answers.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [403],
            "{prefix}: {answers:?}\n{}",
            b.journal_tail()
        );
    }
    b.hold_eval("nothing navigates the page", QUIET, "location.href", |v| {
        *v == Value::String(page.clone())
    });
    assert_eq!(portal.hits("/login"), 0, "{:?}", portal.requests());
    assert_eq!(app.count(), 0, "{:?}", app.requests());
    let cookies = ssogate_cookies(&mut b);
    assert!(
        cookies.is_empty(),
        "ssogate set cookies in a frame of another site: {cookies:?}\n{}",
        b.journal_tail()
    );
}

// ---------------------------------------------------------------------------------------------
// Flow E: the bridge page hands an allowed parent a one-time code
// ---------------------------------------------------------------------------------------------

/// The portal page hosting the bridge: records every message, checks `event.origin`, shows the
/// message type in its title, and on a code navigates the top window to
/// `<authorize_base>/_sso/authorize?code=<code>&redirectUrl=/after-bridge`.
fn bridge_portal(proxy_port: Later, authorize_base: fn(u16) -> String) -> Site {
    Site::start(move |r: &Request| match r.path.as_str() {
        "/bridge-host" => {
            let port = later(&proxy_port);
            let proxy = format!("http://localhost:{port}");
            Response::html(format!(
                r#"<!doctype html><html><head><title>bridge host</title><script>
window.__messages = [];
addEventListener('message', function (e) {{
  window.__messages.push({{origin: e.origin, data: e.data}});
  if (e.origin !== {proxy} || !e.data) return;
  document.title = 'bridge: ' + e.data.type;
  if (e.data.type === 'ssogate:code') {{
    top.location.href = {authorize} + '/_sso/authorize?code=' + encodeURIComponent(e.data.code)
      + '&redirectUrl=' + encodeURIComponent('/after-bridge');
  }}
}});
</script></head><body><h1>Customer portal</h1>
<iframe id="bridge" src="{src}"></iframe>
</body></html>"#,
                proxy = js_string(&proxy),
                authorize = js_string(&authorize_base(port)),
                src = html_escape(&format!("{proxy}/_sso/bridge")),
            ))
        }
        _ => Response::not_found(),
    })
}

/// Signs the browser in at `http://localhost:<proxy>` with flow B as a top-level navigation.
fn sign_in_at_localhost(b: &mut Browser, gate: &Gate, home: &str) -> PageState {
    b.navigate(&localhost(
        gate,
        &format!("/_sso/jwt?jwt={}", alice_token()),
    ));
    let home = localhost(gate, home);
    b.wait_url(&home, T)
}

#[test]
fn flow_e_bridge_hands_the_portal_a_code_that_signs_the_user_in() {
    let gate_port = Later::default();
    // The portal redeems the code on "its own" ssogate: the same proxy reached as
    // http://127.0.0.1:<port>, a site where this browser has no session, so that landing there
    // signed in proves the code carried the identity (at localhost the existing session would
    // show alice anyway).
    let portal = bridge_portal(gate_port.clone(), |port| format!("http://127.0.0.1:{port}"));
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        &portal.origin(),
        "/home",
        None,
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();
    let host = format!("{}/bridge-host", portal.origin());

    let page = sign_in_at_localhost(&mut b, &gate, "/home");
    assert_alice(&page, &[SECURE_COOKIE]);
    assert!(
        b.cookies().iter().all(|c| c["domain"] != "127.0.0.1"),
        "no cookie for 127.0.0.1 yet: {:?}",
        b.cookies()
    );

    // With a session, the bridge hands over a code and the portal redeems it.
    b.navigate(&host);
    let after = gate.url("/after-bridge");
    let page = b.wait_page(
        "the portal to redeem the bridge's code and land on /after-bridge",
        T,
        |s| s.href == after && s.json().is_some(),
    );
    assert_alice(&page, &[SECURE_COOKIE]);
    assert_eq!(echo_of(&page)["path"], "/after-bridge", "{page}");
    assert!(
        b.cookie(SECURE_COOKIE, "127.0.0.1").is_some(),
        "the code should have opened a session at 127.0.0.1: {:?}",
        b.cookies()
    );

    // The code is single-use: the same authorize URL again is refused.
    let authorize = b
        .events()
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .find(|u| u.contains("/_sso/authorize?code="))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no request to /_sso/authorize seen\n{}", b.journal_tail()));
    b.navigate(&authorize);
    let page = b.wait_page("the refusal of a used code", T, |s| {
        s.href == authorize && s.title == "Sign-in required"
    });
    assert!(
        page.text.contains("already used"),
        "the refusal should say why:\n{page}"
    );
}

#[test]
fn flow_e_bridge_without_a_session_tells_the_allowed_portal_so() {
    let gate_port = Later::default();
    let portal = bridge_portal(gate_port.clone(), |port| format!("http://localhost:{port}"));
    // acme is reached through `default_org`, as in a single-tenant deployment.
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        &portal.origin(),
        "/home",
        None,
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    let host = format!("{}/bridge-host", portal.origin());
    b.navigate(&host);
    b.wait_page(
        "the bridge's `ssogate:unauthenticated` message to the portal (the bridge page of org \
         acme, routed by default_org, must be frameable by acme's allowed_origins)",
        T,
        |s| s.href == host && s.title == "bridge: ssogate:unauthenticated",
    );
    assert_eq!(
        gate.upstream.count(),
        0,
        "nothing reached the app: {:?}",
        gate.upstream.seen()
    );
}

/// An app page that embeds the bridge from the proxy's own origin (which `frame-ancestors
/// 'self'` allows) and records messages.
fn bridge_in_app() -> Site {
    Site::start(|r: &Request| match r.path.as_str() {
        "/home" => Response::html("<!doctype html><title>home</title><p>home</p>"),
        "/bridge-in-app" => Response::html(
            r#"<!doctype html><html><head><title>app hosting the bridge</title><script>
window.__messages = [];
addEventListener('message', function (e) { window.__messages.push({origin: e.origin, data: e.data}); });
</script></head><body><iframe id="bridge" src="/_sso/bridge"></iframe></body></html>"#,
        ),
        _ => Response::not_found(),
    })
}

#[test]
fn flow_e_bridge_gives_nothing_to_a_portal_not_in_allowed_origins() {
    let gate_port = Later::default();
    let portal = bridge_portal(gate_port.clone(), |port| format!("http://localhost:{port}"));
    let app = bridge_in_app();
    let gate = Gate::start(&embed_config(
        &portal.origin(),
        ELSEWHERE,
        "/home",
        Some(&app),
    ));
    gate_port.set(gate.proxy_port).unwrap();
    let mut b = Browser::launch();

    sign_in_at_localhost(&mut b, &gate, "/home");

    // The portal: no message, no navigation.
    let host = format!("{}/bridge-host", portal.origin());
    b.navigate(&host);
    b.wait_page("the portal page", T, |s| s.href == host);
    b.hold_eval(
        "no message from the bridge, the portal page stays",
        QUIET,
        "({href: location.href, title: document.title, messages: window.__messages.length})",
        |v| v["href"] == host && v["title"] == "bridge host" && v["messages"] == 0,
    );
    // What stops it: the bridge page may only be framed by acme's allowed origins.
    let framing = format!("frame-ancestors 'self' {ELSEWHERE}");
    assert!(
        b.console()
            .iter()
            .any(|l| l.contains("Framing") && l.contains(&framing)),
        "Chromium should refuse to frame the bridge under `{framing}`\n{}",
        b.journal_tail()
    );

    // A parent the bridge may be framed by ('self') but that is not an allowed origin: the
    // bridge runs, and its postMessage, addressed to the allowed origins only, is dropped.
    let in_app = localhost(&gate, "/bridge-in-app");
    b.navigate(&in_app);
    b.wait_page("the app page hosting the bridge", T, |s| s.href == in_app);
    b.hold_eval(
        "no message reaches a parent outside allowed_origins",
        QUIET,
        "window.__messages.length",
        |v| *v == 0,
    );
    let bridge = localhost(&gate, "/_sso/bridge");
    assert!(
        b.journal_has(&format!("<- 200 {bridge}")),
        "the bridge page should have loaded in the app's iframe\n{}",
        b.journal_tail()
    );
    // Chromium: "Failed to execute 'postMessage' on 'DOMWindow': The target origin provided
    // ('https://elsewhere.example') does not match the recipient window's origin (…)".
    let target = format!("'{ELSEWHERE}'");
    assert!(
        b.console()
            .iter()
            .any(|l| l.contains("postMessage") && l.contains(&target)),
        "the bridge should have addressed its code to {ELSEWHERE} only, and Chromium dropped it\n{}",
        b.journal_tail()
    );
}
