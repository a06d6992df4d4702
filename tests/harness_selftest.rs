//! Self-test of the test harness (no ssogate involved): the echo upstream, the token helpers,
//! Set-Cookie parsing and the cookie jar. If these fail, the other test files cannot be trusted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

#[test]
fn upstream_echoes_and_counts() {
    let up = Upstream::start();
    assert_eq!(up.count(), 0);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("http://127.0.0.1:{}/a/b?x=1&y=2", up.port);
    let mut r = agent
        .get(&url)
        .header("X-Auth_Request-User", "u")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/a/b");
    assert_eq!(v["query"], "x=1&y=2");
    assert_eq!(app_header(&v, "x-auth_request-user"), vec!["u"]);
    let cookies = app_cookies(&v);
    assert!(cookies.contains(&("a".into(), "1".into())), "{cookies:?}");
    assert!(cookies.contains(&("b".into(), "2".into())), "{cookies:?}");
    assert_eq!(up.count(), 1);
    let r = agent.post(&url).send("body!").unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(up.count(), 2);
    assert_eq!(up.seen()[1]["body"], "body!");
}

#[test]
fn token_helpers_produce_verifiable_tokens() {
    let c = claims_with("alice", json!({"orgId": "acme", "jti": null}));
    assert!(c.get("jti").is_none());
    let t1 = hs256(ACME_SECRET, &c);
    let t2 = sign_raw(
        r#"{"typ":"JWT","alg":"HS256"}"#,
        &c.to_string(),
        jsonwebtoken::Algorithm::HS256,
        ACME_SECRET,
    );
    for t in [&t1, &t2] {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = true;
        let d = jsonwebtoken::decode::<serde_json::Value>(
            t,
            &jsonwebtoken::DecodingKey::from_secret(ACME_SECRET),
            &v,
        )
        .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(d.claims["sub"], "alice");
        assert_eq!(d.claims["orgId"], "acme");
        // and not with another secret
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            t,
            &jsonwebtoken::DecodingKey::from_secret(GLOBEX_SECRET),
            &v,
        )
        .is_err());
    }
    let none = unsigned_jwt(r#"{"alg":"none"}"#, "{}");
    assert!(none.ends_with('.') && none.matches('.').count() == 2);
    assert_eq!(enc("a/b?c=d&e"), "a%2Fb%3Fc%3Dd%26e");
    assert_eq!(enc(&t1), t1, "JWTs need no encoding");
}

#[test]
fn set_cookie_parsing_and_jar() {
    let c = SetCookie::parse(
        "__Host-ssogate=abc=def; HttpOnly; Secure; SameSite=None; Partitioned; Path=/; Max-Age=900",
    );
    assert_eq!(c.name, "__Host-ssogate");
    assert_eq!(c.value, "abc=def");
    assert!(c.has("httponly") && c.has("Secure") && c.has("Partitioned"));
    assert_eq!(c.get("samesite"), Some("None"));
    assert_eq!(c.get("Path"), Some("/"));
    assert_eq!(c.max_age(), Some(900));
    assert!(!c.is_removal());
    assert!(SetCookie::parse("a=; Max-Age=0").is_removal());
    assert!(SetCookie::parse("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT").is_removal());
    assert!(!SetCookie::parse("a=b; Expires=Thu, 01 Jan 2099 00:00:00 GMT").is_removal());

    let resp = Resp {
        status: 302,
        headers: [
            ("set-cookie", "s=1; Max-Age=600"),
            ("set-cookie", "t=2; Path=/"),
            ("location", "/x"),
        ]
        .into_iter()
        .collect(),
        body: String::new(),
    };
    let mut jar = Jar::new();
    jar.absorb(&resp);
    assert_eq!(jar.header(), "s=1; t=2");
    let del = Resp {
        status: 200,
        headers: [("set-cookie", "s=; Max-Age=0")].into_iter().collect(),
        body: String::new(),
    };
    jar.absorb(&del);
    assert_eq!(jar.header(), "t=2");
}

#[test]
fn login_redirect_parser() {
    let resp = Resp {
        status: 302,
        headers: [
            (
                "location",
                format!(
                    "{ACME_LOGIN}&ssoCallback={}&redirectPath={}",
                    enc("http://127.0.0.1:1/_sso/callback?state=N1"),
                    enc("/a?b=c")
                ),
            ),
            (
                "set-cookie",
                "st=zzz; HttpOnly; Max-Age=600; Path=/".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        body: String::new(),
    };
    let lr = expect_login_redirect(&resp, ACME_LOGIN, "http://127.0.0.1:1");
    assert_eq!(lr.state, "N1");
    assert_eq!(lr.redirect_path, "/a?b=c");
    assert_eq!(state_cookie(&resp).value, "zzz");
}
