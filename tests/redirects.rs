//! ssogate is never an open redirect (SPEC 4, "Return paths").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

/// Raw query values put after `rd=` (as an attacker would write them), none of them safe.
const HOSTILE_RD: &[&str] = &[
    "//evil.com",
    "%2F%2Fevil.com",
    "/%2Fevil.com",
    "/\\evil.com",
    "/%5Cevil.com",
    "%2F%5Cevil.com",
    "%5C%5Cevil.com",
    "https://evil.com",
    "https%3A%2F%2Fevil.com",
    "http:evil.com",
    "javascript:alert(1)",
    "javascript%3Aalert(1)",
    "%09//evil.com",
    "/%09/evil.com",
    "%20//evil.com",
    "/%0d%0aSet-Cookie:x=1",
    "/%0aLocation:%20https://evil.com",
    "/ok%00",
    "evil.com",
    "",
];

/// The raw query value with characters ureq/http would refuse in a URI percent-encoded.
fn raw_q(v: &str) -> String {
    v.replace('\\', "%5C")
}

/// rd → /_sso/login → (login portal) → /_sso/callback → Location path.
fn through_login(g: &Gate, rd_raw: &str) -> (LoginRedirect, Resp) {
    let r = g.nav(&format!("/_sso/login?rd={}", raw_q(rd_raw))).send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    let mut jar = Jar::new();
    jar.absorb(&r);
    let token = hs256(ACME_SECRET, &claims("redir"));
    let cb = g.callback(&token, &lr.state).jar(&jar).send();
    assert_eq!(cb.status, 302, "rd={rd_raw:?}: {cb:#?}");
    assert!(cb.sets_cookie(PLAIN_COOKIE), "rd={rd_raw:?}: {cb:#?}");
    (lr, cb)
}

fn assert_home(g: &Gate, what: &str, resp: &Resp) {
    let loc = resp.location();
    assert!(
        !loc.contains('\r') && !loc.contains('\n'),
        "{what}: CR/LF in Location {loc:?}"
    );
    assert_eq!(
        g.loc_path(resp),
        "/home",
        "{what}: Location {loc:?} is not home_path"
    );
}

#[test]
fn hostile_rd_through_login_and_callback_lands_on_home_path() {
    let g = Gate::base();
    for rd in HOSTILE_RD {
        let (lr, cb) = through_login(&g, rd);
        assert_eq!(
            lr.redirect_path, "/home",
            "rd={rd:?}: redirectPath sent to the portal must fall back to home_path"
        );
        assert_home(&g, &format!("rd={rd:?}"), &cb);
        // no injected header
        assert!(
            cb.header_all("set-cookie")
                .iter()
                .all(|c| !c.starts_with("x=")),
            "rd={rd:?}: header injection {cb:#?}"
        );
    }
    assert_eq!(g.upstream.count(), 0);
}

#[test]
fn safe_rd_is_kept_exactly() {
    let g = Gate::base();
    for (raw, expected) in [
        ("%2Fok%3Fx%3D1", "/ok?x=1"),
        ("/ok?x=1", "/ok?x=1"),
        ("/a/b/c", "/a/b/c"),
        ("%2Fsearch%3Fq%3Da%2520b%26p%3D2", "/search?q=a%20b&p=2"),
        ("/", "/"),
    ] {
        let (lr, cb) = through_login(&g, raw);
        assert_eq!(lr.redirect_path, expected, "rd={raw:?}");
        assert_eq!(g.loc_path(&cb), expected, "rd={raw:?}");
    }
}

#[test]
fn callback_query_never_chooses_the_return_path() {
    let g = Gate::base();
    for extra in [
        "rd=%2F%2Fevil.com",
        "redirectPath=%2F%2Fevil.com",
        "redirectUrl=https%3A%2F%2Fevil.com",
        "rd=%2Fsafe-but-from-query",
        "redirectPath=%2Fsafe-but-from-query",
    ] {
        // IdP-initiated (no state): home_path
        let token = hs256(ACME_SECRET, &claims("q"));
        let cb = g
            .nav(&format!("/_sso/callback?token={}&{extra}", enc(&token)))
            .send();
        assert_eq!(cb.status, 302, "{extra}: {cb:#?}");
        assert_home(&g, extra, &cb);

        // with state: the saved path, whatever the query says
        let r = g.nav("/saved/path?k=v").send();
        let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
        let mut jar = Jar::new();
        jar.absorb(&r);
        let token = hs256(ACME_SECRET, &claims("q"));
        let cb = g
            .nav(&format!(
                "/_sso/callback?token={}&state={}&{extra}",
                enc(&token),
                lr.state
            ))
            .jar(&jar)
            .send();
        assert_eq!(cb.status, 302, "{extra}: {cb:#?}");
        assert_eq!(g.loc_path(&cb), "/saved/path?k=v", "{extra}");
    }
}

#[test]
fn unsafe_requested_path_is_not_used_as_redirect_path() {
    let g = Gate::base();
    // a navigation whose own path is protocol-relative
    let r = g.nav("//evil.com/x").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert_eq!(lr.redirect_path, "/home", "requested //evil.com/x");
    let r = g.nav("/%5Cevil.com").send();
    let lr = expect_login_redirect(&r, ACME_LOGIN, &g.public_url());
    assert!(
        lr.redirect_path == "/home" || lr.redirect_path == "/%5Cevil.com",
        "requested /%5Cevil.com gave redirectPath {:?}",
        lr.redirect_path
    );
}
