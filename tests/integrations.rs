//! The customer organization's side (examples/integrations/), run for real
//! against the ssogate binary: each example's tokens, codes and pages must
//! end with the user signed in and the app seeing who it is.
//!
//! Node (jsonwebtoken) and Python (PyJWT, cryptography) packages are
//! installed by scripts/install-test-tools.sh into a cache outside the
//! clone; a test that needs them is skipped, and says so, only when the
//! package registry cannot be reached. Flow D's keystore is made with the
//! JDK's keytool, flow E's parent page runs in headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use serde_json::{json, Value};

const CLIENT_SECRET: &[u8] = b"integration-acme-client-secret-42\n";

fn examples() -> PathBuf {
    repo().join("examples/integrations")
}

/// The tools for `part` ("python" or "node"), installed once per run.
fn tools(part: &'static str) -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = if part == "python" { &PYTHON } else { &NODE };
    cell.get_or_init(|| {
        if part == "node" && !has_command("node") {
            return Err("Node.js is not installed (node 18+ runs the Node examples)".into());
        }
        let started = Instant::now();
        let dir = test_tools(part)?;
        eprintln!("{part} tools ready in {:?}", started.elapsed());
        Ok(dir)
    })
    .clone()
}

/// An interpreter command for one example file, with its packages on the path.
fn example_command(lang: &str, file: &str) -> Result<Command, String> {
    match lang {
        "node" => {
            let dir = tools("node")?;
            let mut cmd = Command::new("node");
            cmd.arg(examples().join("node").join(file))
                .env("NODE_PATH", dir.join("node/node_modules"));
            Ok(cmd)
        }
        "python" => {
            let dir = tools("python")?;
            let mut cmd = Command::new(dir.join("venv/bin/python"));
            // No __pycache__ left in the clone.
            cmd.arg(examples().join("python").join(file))
                .env("PYTHONDONTWRITEBYTECODE", "1");
            Ok(cmd)
        }
        other => panic!("no {other} examples"),
    }
}

/// A config for one org `acme` (`org`: its fields), default for every request.
fn config(org: &str) -> String {
    let org: String = org.lines().map(|l| format!("    {l}\n")).collect();
    template(&format!(
        "default_org: acme\norganizations:\n  acme:\n{org}"
    ))
}

/// ssogate on [`config`] with acme's client secret `acme.client` and `files`.
fn start_gate(org: &str, files: &[(&str, &[u8])]) -> Gate {
    let mut gate = Gate::builder(&config(org)).file("acme.client", CLIENT_SECRET);
    for (name, content) in files {
        gate = gate.file(name, content);
    }
    gate.start()
}

/// Runs an example's own server (flows A and B) on `port`, signing for acme.
fn serve_example(mut cmd: Command, name: &str, gate: &Gate, port: u16) -> Proc {
    cmd.env("SSOGATE_URL", gate.url(""))
        .env("ORG_ID", "acme")
        .env("ORG_SECRET_FILE", gate.path("acme.secret"))
        .env("PORT", port.to_string());
    let mut server = Proc::spawn(name, cmd, gate.path("example.log"));
    server.wait_for_port(port, Duration::from_secs(30));
    server
}

// ---------------------------------------------------------------------------------------------
// Flow A: the login endpoint
// ---------------------------------------------------------------------------------------------

fn flow_a(lang: &str, file: &str, user: &str) {
    let name = format!("flow_a_{lang}");
    let cmd = match example_command(lang, file) {
        Ok(cmd) => cmd,
        Err(reason) => return skip(&name, &reason),
    };
    let port = free_port();
    let gate = start_gate(
        &format!(
            "login_url: http://127.0.0.1:{port}/sso/dash\norg_claim: orgId\n\
             keys: [{{ alg: HS256, secret_file: acme.secret }}]"
        ),
        &[],
    );
    let login_url = format!("http://127.0.0.1:{port}/sso/dash");
    let mut endpoint = serve_example(cmd, &name, &gate, port);

    // A browser without a session is sent to the customer's endpoint...
    let first = gate.nav("/reports?q=1").send();
    assert_eq!(first.status, 302);
    let to_login = first.location().to_owned();
    assert!(to_login.starts_with(&login_url), "{to_login}");
    let mut jar = Jar::default();
    jar.absorb(&first);

    // ...which signs a token and sends it back to ssogate's callback...
    let signed = Req::get(&to_login).header("Accept", "text/html").send();
    assert_eq!(signed.status, 302, "{}", signed.body);
    let back = signed.location().to_owned();
    assert!(
        back.starts_with(&gate.url("/_sso/callback?state=")),
        "the endpoint answers on ssoCallback"
    );
    let token = query_param(&back, "token").expect("a token on the callback");

    // ...where ssogate opens the session and returns to the page asked for.
    let landed = Req::get(&back)
        .header("Accept", "text/html")
        .jar(&jar)
        .send();
    assert_eq!(landed.status, 302, "{}", landed.body);
    assert_eq!(landed.location(), "/reports?q=1");
    jar.absorb(&landed);
    let echo = gate.get("/reports?q=1").jar(&jar).send().app();
    assert_eq!(app_header(&echo, "x-auth-request-user"), [user]);
    assert_eq!(
        app_header(&echo, "x-auth-request-email"),
        [format!("{user}@acme.example")]
    );
    assert_eq!(app_header(&echo, "x-auth-request-org"), ["acme"]);
    assert!(app_header(&echo, "x-auth-request-groups")
        .concat()
        .contains("readers"));

    // The token was single-use, and the endpoint never hands tokens to other sites.
    let replay = Req::get(&back)
        .header("Accept", "application/json")
        .jar(&jar)
        .send();
    assert_eq!(replay.status, 401, "a replayed token is refused");
    let foreign = format!(
        "{login_url}?ssoCallback={}",
        enc("https://evil.example/_sso/callback?state=x")
    );
    assert_eq!(
        Req::get(&foreign).send().status,
        400,
        "a foreign ssoCallback is refused"
    );

    endpoint.assert_running();
    gate.assert_logs_free_of(&[&token]);
    assert!(
        !endpoint.output().contains(&token),
        "the example logs no token"
    );
}

#[test]
fn flow_a_node_login_endpoint_signs_the_user_in() {
    flow_a("node", "flow-a-login.js", "alice");
}

#[test]
fn flow_a_python_login_endpoint_signs_the_user_in() {
    flow_a("python", "flow_a_login.py", "carol");
}

// ---------------------------------------------------------------------------------------------
// Flow B: the iframe page
// ---------------------------------------------------------------------------------------------

fn flow_b(lang: &str, file: &str, email: &str) {
    let name = format!("flow_b_{lang}");
    let cmd = match example_command(lang, file) {
        Ok(cmd) => cmd,
        Err(reason) => return skip(&name, &reason),
    };
    let port = free_port();
    let gate = start_gate(
        &format!(
            "login_url: http://127.0.0.1:{port}/login\nhome_path: /home\n\
             allowed_origins: [http://127.0.0.1:{port}]\n\
             principal_claim: email\norg_claim: orgId\n\
             keys: [{{ alg: HS256, secret_file: acme.secret }}]"
        ),
        &[],
    );
    let portal = format!("http://127.0.0.1:{port}");
    let mut page_server = serve_example(cmd, &name, &gate, port);

    let page = Req::get(&format!("{portal}/"))
        .header("Accept", "text/html")
        .send();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let src = page
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an iframe src")
        .replace("&amp;", "&");
    assert!(src.starts_with(&gate.url("/_sso/jwt?jwt=")), "{src}");
    let token = query_param(&src, "jwt").unwrap();

    // The browser loads the iframe, from the portal's page.
    let framed = || {
        Req::get(&src)
            .header("Accept", "text/html")
            .header("Sec-Fetch-Dest", "iframe")
            .header("Sec-Fetch-Mode", "navigate")
            .header("Sec-Fetch-Site", "same-site")
            .header("Referer", &format!("{portal}/"))
            .send()
    };
    let landed = framed();
    assert_eq!(landed.status, 302, "{}", landed.body);
    assert_eq!(landed.location(), "/home");
    let mut jar = Jar::default();
    jar.absorb(&landed);
    let echo = gate.get("/home").jar(&jar).send().app();
    assert_eq!(app_header(&echo, "x-auth-request-user"), [email]);
    assert_eq!(app_header(&echo, "x-auth-request-org"), ["acme"]);
    let whoami = gate.get("/_sso/whoami").jar(&jar).send().json();
    assert_eq!(whoami["principal"], email);
    assert_eq!(whoami["method"], "cookie");

    // Each page view signs a fresh token; a used one is refused.
    assert_eq!(framed().status, 401);
    page_server.assert_running();
    gate.assert_logs_free_of(&[&token]);
}

#[test]
fn flow_b_node_iframe_page_signs_the_user_in() {
    flow_b("node", "flow-b-iframe.js", "bob@acme.example");
}

#[test]
fn flow_b_python_iframe_page_signs_the_user_in() {
    flow_b("python", "flow_b_iframe.py", "dave@acme.example");
}

// ---------------------------------------------------------------------------------------------
// Flow C: the backend call
// ---------------------------------------------------------------------------------------------

const CODE_FLOW_ORG: &str = "login_url: http://127.0.0.1:9/login\n\
     keys: [{ alg: HS256, secret_file: acme.secret }]\n\
     code_flow:\n  client_id: acme-reader\n  client_secret_file: acme.client";

fn flow_c(mut cmd: Command, gate: &Gate, email: &str, what: &str) {
    cmd.env("SSOGATE_URL", gate.url(""))
        .env("CLIENT_ID", "acme-reader")
        .env("CLIENT_SECRET_FILE", gate.path("acme.client"))
        .args([email, "/reports?q=7"]);
    let url = run_ok(&mut cmd, what).stdout.trim().to_owned();
    assert!(
        url.starts_with(&gate.url("/_sso/authorize?code=")),
        "{what} printed no sign-in URL"
    );
    assert_eq!(
        query_param(&url, "redirectUrl").as_deref(),
        Some("/reports?q=7")
    );
    let landed = Req::get(&url).header("Accept", "text/html").send();
    assert_eq!(landed.status, 302, "{}", landed.body);
    assert_eq!(landed.location(), "/reports?q=7");
    let mut jar = Jar::default();
    jar.absorb(&landed);
    let echo = gate.get("/reports?q=7").jar(&jar).send().app();
    assert_eq!(app_header(&echo, "x-auth-request-user"), [email]);
    assert_eq!(app_header(&echo, "x-auth-request-email"), [email]);
    assert_eq!(app_header(&echo, "x-auth-request-groups"), ["readers"]);
    // The code is single-use.
    let again = Req::get(&url).header("Accept", "application/json").send();
    assert_eq!(again.status, 401);
    let code = query_param(&url, "code").unwrap();
    gate.assert_logs_free_of(&[&code]);
}

#[test]
fn flow_c_curl_backend_call_signs_the_user_in() {
    if !has_command("curl") {
        return skip("flow_c_curl", "curl is not installed");
    }
    let gate = start_gate(CODE_FLOW_ORG, &[]);
    flow_c(
        Command::new(examples().join("curl/flow-c.sh")),
        &gate,
        "frank@acme.example",
        "curl/flow-c.sh",
    );
    // Wrong credentials get no code (the script fails loudly).
    let mut bad = Command::new(examples().join("curl/flow-c.sh"));
    bad.env("SSOGATE_URL", gate.url(""))
        .env("CLIENT_ID", "acme-reader")
        .env("CLIENT_SECRET_FILE", gate.path("acme.secret"));
    assert!(!bad.output().unwrap().status.success());
}

#[test]
fn flow_c_python_backend_call_signs_the_user_in() {
    let cmd = match example_command("python", "flow_c_backend.py") {
        Ok(cmd) => cmd,
        Err(reason) => return skip("flow_c_python", &reason),
    };
    let gate = start_gate(CODE_FLOW_ORG, &[]);
    flow_c(cmd, &gate, "erin@acme.example", "python/flow_c_backend.py");
}

// ---------------------------------------------------------------------------------------------
// Flow D: RS256 from a keytool-made PKCS#12 keystore, as a Bearer token
// ---------------------------------------------------------------------------------------------

struct Keystore {
    _dir: tempfile::TempDir,
    p12: PathBuf,
    pass: PathBuf,
    crt: Vec<u8>,
}

fn keystore() -> Keystore {
    let dir = tempfile::tempdir().unwrap();
    let mut make = Command::new(examples().join("java/make-keystore.sh"));
    run_ok(make.arg(dir.path()), "java/make-keystore.sh");
    let crt = std::fs::read(dir.path().join("jde.crt")).unwrap();
    assert!(crt.starts_with(b"-----BEGIN CERTIFICATE-----"));
    Keystore {
        p12: dir.path().join("jde.p12"),
        pass: dir.path().join("jde.pass"),
        crt,
        _dir: dir,
    }
}

const BEARER_ORG: &str = "login_url: http://127.0.0.1:9/login\n\
     accept_bearer: true\n\
     accept_query_token: access_token\n\
     keys: [{ alg: RS256, public_key_file: jde.crt }]";

fn with_keystore(mut cmd: Command, gate: &Gate, ks: &Keystore) -> Command {
    cmd.env("SSOGATE_URL", gate.url(""))
        .env("KEYSTORE", &ks.p12)
        .env("KEYSTORE_PASSWORD_FILE", &ks.pass);
    cmd
}

/// Checks the "<status>\n<app's echo>" that the flow D signers print.
fn bearer_answer(out: &str, principal: &str, what: &str) {
    let (status, body) = out.split_once('\n').unwrap_or((out, ""));
    assert_eq!(status.trim(), "200", "{what}: {out}");
    let echo: Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(
        app_header(&echo, "x-auth-request-user"),
        [principal],
        "{what}"
    );
}

#[test]
fn flow_d_python_signer_from_a_keytool_keystore_calls_with_a_bearer_token() {
    let cmd = match example_command("python", "flow_d_bearer.py") {
        Ok(cmd) => cmd,
        Err(reason) => return skip("flow_d_python", &reason),
    };
    if !has_command("keytool") {
        return skip("flow_d_python", "keytool (a JDK or JRE) is not installed");
    }
    let ks = keystore();
    let gate = start_gate(BEARER_ORG, &[("jde.crt", &ks.crt)]);

    let mut call = with_keystore(cmd, &gate, &ks);
    call.args(["JDE_USER", "/api/orders?page=2"]);
    let out = run_ok(&mut call, "python/flow_d_bearer.py").stdout;
    bearer_answer(&out, "JDE_USER", "python/flow_d_bearer.py");
    let echo: Value = serde_json::from_str(out.split_once('\n').unwrap().1.trim()).unwrap();
    assert_eq!(
        (&echo["path"], &echo["query"]),
        (&json!("/api/orders"), &json!("page=2"))
    );

    // The same token through curl (flow-d-bearer.sh), and as whoami sees it.
    let curl = Command::new(examples().join("curl/flow-d-bearer.sh"));
    let mut curl = with_keystore(curl, &gate, &ks);
    curl.env("SIGNER", "python")
        .env("PYTHON", tools("python").unwrap().join("venv/bin/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["JDE_CURL", "/_sso/whoami"]);
    let out = run_ok(&mut curl, "curl/flow-d-bearer.sh").stdout;
    let (body, status) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{out}");
    let whoami: Value = serde_json::from_str(body).unwrap();
    assert_eq!(whoami["principal"], "JDE_CURL");
    assert_eq!(whoami["method"], "bearer");

    // As an access_token query parameter: a session, and a URL without the token.
    let mut sign = example_command("python", "flow_d_bearer.py").unwrap();
    sign.env("KEYSTORE", &ks.p12)
        .env("KEYSTORE_PASSWORD_FILE", &ks.pass)
        .env("SSOGATE_URL", gate.url(""))
        .args(["--token", "JDE_QUERY"]);
    let token = run_ok(&mut sign, "flow_d_bearer.py --token").stdout;
    let token = token.trim().to_owned();
    let landed = gate
        .get(&format!("/grid?access_token={token}&view=1"))
        .header("Accept", "text/html")
        .send();
    assert_eq!(landed.status, 302);
    assert_eq!(landed.location(), "/grid?view=1");
    let mut jar = Jar::default();
    jar.absorb(&landed);
    let echo = gate.get("/grid?view=1").jar(&jar).send().app();
    assert_eq!(app_header(&echo, "x-auth-request-user"), ["JDE_QUERY"]);

    // A token from another key is refused.
    let other = keystore();
    let mut forged = with_keystore(
        example_command("python", "flow_d_bearer.py").unwrap(),
        &gate,
        &other,
    );
    forged.args(["JDE_USER", "/api/orders"]);
    let out = forged.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("401"));
    gate.assert_logs_free_of(&[&token]);
}

#[test]
fn flow_d_java_signer_from_a_keytool_keystore_calls_with_a_bearer_token() {
    // `java File.java` compiles in memory: it needs a JDK (jdk.compiler), not only a JRE.
    if !has_command("keytool") || !has_command("javac") {
        return skip(
            "flow_d_java",
            "a JDK (java, javac, keytool) is not installed (apt-get install default-jdk-headless)",
        );
    }
    let ks = keystore();
    let gate = start_gate(BEARER_ORG, &[("jde.crt", &ks.crt)]);
    let mut cmd = Command::new("java");
    cmd.arg(examples().join("java/FlowDBearer.java"))
        .args(["JDE_JAVA", "/api/orders"]);
    let out = run_ok(&mut with_keystore(cmd, &gate, &ks), "java/FlowDBearer.java").stdout;
    bearer_answer(&out, "JDE_JAVA", "java/FlowDBearer.java");
}

// ---------------------------------------------------------------------------------------------
// Flow E: the parent page, in a real browser
// ---------------------------------------------------------------------------------------------

/// The parent page with its constants set, as a customer would set them.
fn parent_page(bridge_origin: &str, redeem_base: &str, landing: &str) -> String {
    let page = std::fs::read_to_string(examples().join("browser/flow-e-parent.html")).unwrap();
    let mut out = page.clone();
    for (from, to) in [
        (
            "var BRIDGE_ORIGIN = 'https://dash.example.com';",
            format!("var BRIDGE_ORIGIN = '{bridge_origin}';"),
        ),
        (
            "var REDEEM_BASE = 'https://dash.example.net';",
            format!("var REDEEM_BASE = '{redeem_base}';"),
        ),
        (
            "var LANDING_PATH = '/';",
            format!("var LANDING_PATH = '{landing}';"),
        ),
    ] {
        assert!(
            out.contains(from),
            "flow-e-parent.html no longer has {from}"
        );
        out = out.replace(from, &to);
    }
    out
}

#[test]
fn flow_e_parent_page_opens_a_session_elsewhere_with_the_bridge_code() {
    let browsers = ["chromium", "chromium-browser", "google-chrome"];
    if !browsers.into_iter().any(has_command) {
        return skip(
            "flow_e",
            "Chromium is not installed (scripts/install-deps.sh chromium)",
        );
    }
    let gate_port = Arc::new(OnceLock::<u16>::new());
    let portal = {
        let gate_port = gate_port.clone();
        Site::start(move |req| {
            let g = gate_port.get().copied().unwrap_or_default();
            if req.path == "/parent.html" {
                Response::html(parent_page(
                    &format!("http://127.0.0.1:{g}"),
                    &format!("http://localhost:{g}"),
                    "/signed-in",
                ))
            } else {
                Response::not_found()
            }
        })
    };
    // The app: /to-portal sends the browser on to the customer's page; every
    // other page says who the app sees, on which host.
    let portal_port = portal.port;
    let app = Site::start(move |req| {
        if req.path == "/to-portal" {
            return Response::html(format!(
                "<!doctype html><script>location.replace('http://127.0.0.1:{portal_port}/parent.html')</script>"
            ));
        }
        Response::html(format!(
            "<!doctype html><title>app</title><p id=\"who\">host={} user={} path={}</p>",
            req.header("host").unwrap_or_default(),
            req.header("x-auth-request-user").unwrap_or("nobody"),
            req.path
        ))
    });
    let org = format!(
        "login_url: http://127.0.0.1:9/login\nhome_path: /to-portal\n\
         allowed_origins: [http://127.0.0.1:{portal_port}]\n\
         keys: [{{ alg: HS256, secret_file: acme.secret }}]"
    );
    let gate = Gate::start(&with_upstream(&config(&org), app.port));
    gate_port.set(gate.proxy_port).unwrap();

    // The browser signs in on 127.0.0.1 (flow B), lands on the customer's
    // page, whose bridge code opens a second session on `localhost`.
    let claims =
        json!({"sub": "grace", "email": "grace@acme.example", "iat": now(), "exp": now() + 120});
    let token = hs256(ACME_SECRET, &claims);
    let started = Instant::now();
    let mut browser = Browser::launch();
    browser.navigate(&gate.url(&format!("/_sso/jwt?jwt={token}")));

    // The app sees the landing page on `localhost`, with the user: the
    // second session was opened with the bridge's code.
    let host = format!("localhost:{}", gate.proxy_port);
    let signed_in = |r: &Request| {
        r.path == "/signed-in"
            && r.header("host") == Some(host.as_str())
            && r.header("x-auth-request-user") == Some("grace")
    };
    browser.wait_page(
        &format!("the parent page ends signed in on {host}"),
        Duration::from_secs(60),
        |_| app.requests().iter().any(signed_in),
    );
    eprintln!("flow E signed in after {:?}", started.elapsed());
    drop(browser);
    // The way there: the first session's page, then the parent page with its bridge.
    assert!(app.hits("/to-portal") > 0);
    assert!(portal.hits("/parent.html") > 0);
    gate.assert_logs_free_of(&[&token]);
}
