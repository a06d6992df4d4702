//! Hot reload (SPEC 9): file watching (plain files and Kubernetes' `..data` symlink swap),
//! refused configs, live changes, SIGHUP, unrelated files, requests in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

/// How long a change may take to go live in these tests (SPEC: 2 s).
const LIVE: Duration = Duration::from_secs(5);

const ACME_SECRET_2: &[u8] = b"acme-hs256-rotated-0123456789abcdefghijklmnopq";
const NEWCO_SECRET: &[u8] = b"newco-hs256-secret-0123456789abcdefghijklmnopq";

/// Flow B with a fresh token signed with `secret`: the status (302 = accepted, 401 = refused).
fn jwt_status(g: &Gate, secret: &[u8]) -> u16 {
    let t = acme_token(secret, "probe");
    g.jwt(&t).send().status
}

/// Waits for `ssogate_config_generation` to reach `want`, polling only the admin listener (which
/// writes no log line: see `a_busy_unrelated_file_does_not_hold_back_a_reload`).
fn wait_generation(g: &Gate, want: f64) {
    let got = g.wait_generation(want, LIVE);
    assert_eq!(
        got,
        want,
        "generation not {want} within {LIVE:?}; reloads ok {} error {}\nlogs:\n{}",
        g.reloads("ok"),
        g.reloads("error"),
        g.log_tail()
    );
}

/// Waits for `ssogate_config_reloads_total{result="error"}` to reach `want` (admin only).
fn wait_errors(g: &Gate, want: f64) {
    let got = poll(LIVE, || (g.reloads("error") >= want).then_some(()));
    assert!(
        got.is_some(),
        "reload errors not {want} within {LIVE:?}\nlogs:\n{}",
        g.log_tail()
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes atomic writer
// ---------------------------------------------------------------------------------------------

/// A single-org config for the Kubernetes volume (relative paths: resolved against the config
/// file's directory, i.e. the volume root, through the per-file symlinks), filled with `ports`.
fn k8s_config(ports: [u16; 3]) -> String {
    let orgs = "organizations:
  acme:
    login_url: https://portal.acme.example/sso/dash?x=1
    home_path: /home
    keys: [{ alg: HS256, secret_file: acme.secret }]
    org_claim: orgId
default_org: acme
";
    fill(&template(orgs), ports)
}

/// A Kubernetes ConfigMap/Secret volume at `root` as the kubelet's atomic writer lays it out:
/// `..<stamp>/<files>`, `..data -> ..<stamp>`, and `<file> -> ..data/<file>` for each file.
fn k8s_volume(root: &Path, stamp: &str, files: &[(&str, &[u8])]) {
    std::fs::create_dir_all(root).unwrap();
    k8s_data_dir(root, stamp, files);
    symlink(stamp, root.join("..data")).unwrap();
    for (name, _) in files {
        symlink(format!("..data/{name}"), root.join(name)).unwrap();
    }
}

fn k8s_data_dir(root: &Path, stamp: &str, files: &[(&str, &[u8])]) {
    let d = root.join(stamp);
    std::fs::create_dir(&d).unwrap();
    for (name, content) in files {
        std::fs::write(d.join(name), content).unwrap();
    }
}

/// The kubelet's update: a new timestamped dir, `..data_tmp -> it`, renamed over `..data`, the
/// old dir removed.
fn k8s_update(root: &Path, old: &str, new: &str, files: &[(&str, &[u8])]) {
    k8s_data_dir(root, new, files);
    symlink(new, root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join(old)).unwrap();
}

fn with_newline(secret: &[u8]) -> Vec<u8> {
    let mut s = secret.to_vec();
    s.push(b'\n');
    s
}

#[test]
fn kubernetes_data_symlink_swap_rotates_a_secret() {
    let upstream = Upstream::start();
    let [proxy_port, admin_port] = free_ports();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let config = k8s_config([proxy_port, admin_port, upstream.port]);
    let (s1, s2) = (with_newline(ACME_SECRET), with_newline(ACME_SECRET_2));
    let v1: [(&str, &[u8]); 3] = [
        ("config.yaml", config.as_bytes()),
        ("session.key", SESSION_SECRET),
        ("acme.secret", &s1),
    ];
    let v2: [(&str, &[u8]); 3] = [
        ("config.yaml", config.as_bytes()),
        ("session.key", SESSION_SECRET),
        ("acme.secret", &s2),
    ];
    let old = "..2026_01_01_00_00_00.1";
    k8s_volume(&root, old, &v1);
    let config_path = root.join("config.yaml");
    let g = Gate::spawn(dir, config_path, proxy_port, admin_port, upstream, &[]);

    assert_eq!(
        jwt_status(&g, ACME_SECRET),
        302,
        "old secret before the swap"
    );
    assert_eq!(
        jwt_status(&g, ACME_SECRET_2),
        401,
        "new secret before the swap"
    );
    let jar = g.login_jwt(None, &acme_token(ACME_SECRET, "alice"), PLAIN_COOKIE);
    assert_eq!(g.generation(), 1.0);

    // the kubelet's swap
    let new = "..2026_01_01_00_01_00.2";
    k8s_update(&root, old, new, &v2);

    wait_generation(&g, 2.0);
    assert_eq!(
        jwt_status(&g, ACME_SECRET_2),
        302,
        "the rotated secret is refused after the swap"
    );
    assert_eq!(
        jwt_status(&g, ACME_SECRET),
        401,
        "the old secret still works after the swap"
    );
    assert_eq!(g.reloads("ok"), 1.0);
    assert_eq!(g.reloads("error"), 0.0);
    // the session secret did not change: the session made before the swap lives on
    let app = g.nav("/after").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);

    // a second rotation, back: the watcher still follows the new `..data`
    k8s_update(&root, new, "..2026_01_01_00_02_00.3", &v1);
    wait_generation(&g, 3.0);
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
    assert_eq!(jwt_status(&g, ACME_SECRET_2), 401);
}

/// The usual deployment: the config from a ConfigMap volume, the secrets from a Secret volume
/// mounted elsewhere (absolute paths); each volume is swapped on its own.
#[test]
fn kubernetes_separate_configmap_and_secret_volumes() {
    let upstream = Upstream::start();
    let [proxy_port, admin_port] = free_ports();
    let dir = tempfile::tempdir().unwrap();
    let cm = dir.path().join("config");
    let sec = dir.path().join("secrets");
    let upstream_port = upstream.port;
    let config = |origin: &str| {
        k8s_config([proxy_port, admin_port, upstream_port])
            .replace(
                "secret_file: session.key",
                &format!("secret_file: {}", sec.join("session.key").display()),
            )
            .replace(
                "secret_file: acme.secret",
                &format!("secret_file: {}", sec.join("acme.secret").display()),
            )
            .replace(
                "    org_claim: orgId\n",
                &format!("    org_claim: orgId\n    allowed_origins: [{origin}]\n"),
            )
    };
    let c1 = config("https://one.example");
    k8s_volume(
        &cm,
        "..2026_01_01_00_00_00.1",
        &[("config.yaml", c1.as_bytes())],
    );
    let (s1, s2) = (with_newline(ACME_SECRET), with_newline(ACME_SECRET_2));
    k8s_volume(
        &sec,
        "..2026_01_01_00_00_00.7",
        &[("session.key", SESSION_SECRET), ("acme.secret", &s1)],
    );
    let config_path = cm.join("config.yaml");
    let g = Gate::spawn(dir, config_path, proxy_port, admin_port, upstream, &[]);
    let jar = g.login_jwt(None, &acme_token(ACME_SECRET, "alice"), PLAIN_COOKIE);
    let csp = || {
        g.nav("/p")
            .jar(&jar)
            .send()
            .header_all("content-security-policy")
            .join(", ")
    };
    assert_eq!(csp(), "frame-ancestors 'self' https://one.example");

    // the Secret volume rotates
    k8s_update(
        &sec,
        "..2026_01_01_00_00_00.7",
        "..2026_01_01_00_05_00.8",
        &[("session.key", SESSION_SECRET), ("acme.secret", &s2)],
    );
    wait_generation(&g, 2.0);
    assert_eq!(jwt_status(&g, ACME_SECRET_2), 302);
    assert_eq!(jwt_status(&g, ACME_SECRET), 401);

    // the ConfigMap volume changes
    let c2 = config("https://two.example");
    k8s_update(
        &cm,
        "..2026_01_01_00_00_00.1",
        "..2026_01_01_00_06_00.2",
        &[("config.yaml", c2.as_bytes())],
    );
    wait_generation(&g, 3.0);
    assert_eq!(csp(), "frame-ancestors 'self' https://two.example");
    assert_eq!(jwt_status(&g, ACME_SECRET_2), 302);
    assert_eq!(g.reloads("error"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Refused configs
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_config_is_refused_and_the_old_one_keeps_serving() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    assert_eq!(g.generation(), 1.0);
    assert_eq!(g.reloads("error"), 0.0);

    // 1. not YAML at all
    g.write_config("organizations: [unclosed\n  acme: {{{\n");
    wait_errors(&g, 1.0);
    std::thread::sleep(Duration::from_millis(400)); // past the debounce: counted once
    assert_eq!(g.reloads("error"), 1.0);
    assert_eq!(g.reloads("ok"), 0.0);
    assert_eq!(g.generation(), 1.0);
    assert_eq!(g.admin("/readyz").status, 200);
    // the old config serves: old-secret tokens, old sessions, routing
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
    let app = g.nav("/x").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    assert!(g
        .nav("/x")
        .host("globex.test")
        .send()
        .is_login_redirect(GLOBEX_LOGIN));
    assert!(
        g.logs().contains("config reload refused"),
        "the refusal is not logged:\n{}",
        g.logs()
    );

    // 2. valid YAML, invalid config (a key file that does not exist)
    g.write_config(&BASE.replace("secret_file: globex.secret", "secret_file: missing.secret"));
    wait_errors(&g, 2.0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(g.reloads("error"), 2.0);
    assert_eq!(g.generation(), 1.0);
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);

    // 3. fixed (with a change, so that it differs from the config in service)
    g.write_config(&format!("{BASE}# fixed\n"));
    wait_generation(&g, 2.0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(g.generation(), 2.0);
    assert_eq!(g.reloads("ok"), 1.0);
    assert_eq!(g.reloads("error"), 2.0);
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
    let app = g.nav("/y").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
}

// ---------------------------------------------------------------------------------------------
// Live changes
// ---------------------------------------------------------------------------------------------

#[test]
fn an_org_added_live_routes_its_host() {
    let g = Gate::base();
    // newco.test routes to default_org acme for now
    assert!(g
        .nav("/x")
        .host("newco.test")
        .send()
        .is_login_redirect(ACME_LOGIN));
    // the secret first (not yet named by the config: no reload), then the config
    g.write_file("newco.secret", NEWCO_SECRET);
    let cfg = format!(
        "{BASE}  newco:\n    hosts: [newco.test]\n    login_url: https://portal.newco.example/login\n    keys: [{{ alg: HS256, secret_file: newco.secret }}]\n"
    )
    .replace("default_org: acme\n", "")
        + "default_org: acme\n";
    g.write_config(&cfg);
    wait_generation(&g, 2.0);
    let r = g.nav("/x").host("newco.test").send();
    assert!(
        r.is_login_redirect("https://portal.newco.example/login"),
        "newco.test not routed to newco after the reload: {r:#?}"
    );
    // newco's tokens open sessions for newco
    let jar = g.login_jwt(
        Some("newco.test"),
        &hs256(NEWCO_SECRET, &claims("nina")),
        PLAIN_COOKIE,
    );
    let app = g.nav("/n").host("newco.test").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-org"), vec!["newco"]);
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["nina"]);
    // acme is unaffected
    assert!(g
        .nav("/x")
        .host("acme.test")
        .send()
        .is_login_redirect(ACME_LOGIN));
}

#[test]
fn allowed_origins_changed_live_changes_frame_ancestors() {
    let g = Gate::base();
    let jar = g.login_acme("alice");
    let csp = |g: &Gate| {
        let r = g.nav("/page").jar(&jar).send();
        assert_eq!(r.status, 200, "{r:#?}");
        r.header_all("content-security-policy").join(", ")
    };
    assert_eq!(csp(&g), "frame-ancestors 'self'");
    let with = |origins: &str| {
        BASE.replace(
            "    org_claim: orgId\n",
            &format!("    org_claim: orgId\n    allowed_origins: [{origins}]\n"),
        )
    };
    g.write_config(&with("https://portal.acme.example"));
    wait_generation(&g, 2.0);
    assert_eq!(
        csp(&g),
        "frame-ancestors 'self' https://portal.acme.example"
    );
    g.write_config(&with(
        "https://portal.acme.example, https://embed.acme.example",
    ));
    wait_generation(&g, 3.0);
    assert_eq!(
        csp(&g),
        "frame-ancestors 'self' https://portal.acme.example https://embed.acme.example"
    );
    // and removed again
    g.write_config(BASE);
    wait_generation(&g, 4.0);
    assert_eq!(csp(&g), "frame-ancestors 'self'");
    assert_eq!(g.reloads("error"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// SIGHUP
// ---------------------------------------------------------------------------------------------

#[test]
fn sighup_reloads_even_without_changes() {
    let mut g = Gate::base();
    let jar = g.login_acme("alice");
    let used = acme_token(ACME_SECRET, "once");
    g.login_jwt(None, &used, PLAIN_COOKIE);
    assert_eq!(g.generation(), 1.0);
    g.signal("HUP");
    wait_generation(&g, 2.0);
    assert!(
        g.exited().is_none(),
        "SIGHUP killed ssogate:\n{}",
        g.log_tail()
    );
    assert_eq!(g.reloads("ok"), 1.0);
    assert_eq!(g.reloads("error"), 0.0);
    // it keeps serving, sessions included
    let app = g.nav("/x").jar(&jar).send().app();
    assert_eq!(app_header(&app, "x-auth-request-user"), vec!["alice"]);
    // the replay store survives the reload: a used jti stays used
    let r = g.jwt(&used).send();
    assert_eq!(r.status, 401, "a token replayed after a reload: {r:#?}");
    // again
    g.signal("HUP");
    wait_generation(&g, 3.0);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(g.generation(), 3.0, "one SIGHUP, one reload");
    assert!(g.exited().is_none());
    assert_eq!(g.admin("/readyz").status, 200);
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
}

#[test]
fn sighup_with_an_invalid_config_is_refused() {
    let mut g = Gate::base();
    // an invalid config written, then SIGHUP: refused either way, never installed
    g.write_config(&BASE.replace("organizations:", "organisations:"));
    wait_errors(&g, 1.0);
    g.signal("HUP");
    wait_errors(&g, 2.0);
    assert!(g.exited().is_none());
    assert_eq!(g.generation(), 1.0);
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
}

#[test]
fn a_reload_changing_the_listen_address_warns_and_keeps_the_port() {
    let g = Gate::base();
    let other = free_port();
    g.write_config(&BASE.replace(
        "listen: 127.0.0.1:{proxy_port}",
        &format!("listen: 127.0.0.1:{other}"),
    ));
    wait_generation(&g, 2.0);
    assert!(
        poll(LIVE, || g
            .logs()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("restart"))
            .then_some(()))
        .is_some(),
        "no warning about the listen change:\n{}",
        g.log_tail()
    );
    // still served where it was
    assert_eq!(jwt_status(&g, ACME_SECRET), 302);
    assert!(std::net::TcpStream::connect(("127.0.0.1", other)).is_err());
}

// ---------------------------------------------------------------------------------------------
// What does not reload
// ---------------------------------------------------------------------------------------------

#[test]
fn unrelated_files_and_unchanged_content_do_not_reload() {
    let g = Gate::base();
    // other files in the same directory (the gate's own stderr log lives there too)
    g.write_file("app.log", b"line 1\n");
    g.write_file("notes.txt", b"hello");
    g.write_file("config.yaml.bak", b"listen: nonsense");
    g.write_file("app.log", b"line 1\nline 2\n");
    // the config and a secret rewritten with the same bytes
    let same = std::fs::read(&g.config_path).unwrap();
    std::fs::write(&g.config_path, same).unwrap();
    let mut acme = ACME_SECRET.to_vec();
    acme.push(b'\n');
    g.write_file("acme.secret", &acme);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(g.generation(), 1.0, "logs:\n{}", g.log_tail());
    assert_eq!(g.reloads("ok"), 0.0);
    assert_eq!(g.reloads("error"), 0.0);

    // control: the watcher is alive; a real change to the same secret reloads
    g.write_file("acme.secret", ACME_SECRET_2);
    wait_generation(&g, 2.0);
    assert_eq!(jwt_status(&g, ACME_SECRET_2), 302);
    assert_eq!(jwt_status(&g, ACME_SECRET), 401);
}

// ---------------------------------------------------------------------------------------------
// Requests in flight
// ---------------------------------------------------------------------------------------------

#[test]
fn a_request_in_flight_finishes_on_its_snapshot() {
    let body: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let slow = SlowUpstream::start(body.clone());
    let template = with_upstream(BASE, slow.port());
    let g = Gate::start(&template);
    let jar = g.login_acme("alice");
    let new_cfg = template.replace(
        "    org_claim: orgId\n",
        "    org_claim: orgId\n    allowed_origins: [https://portal.acme.example]\n",
    );
    std::thread::scope(|s| {
        let inflight = s.spawn(|| g.nav("/slow/report").jar(&jar).send());
        assert!(
            slow.arrived.wait(Duration::from_secs(10)),
            "the slow request never reached the app"
        );
        g.write_config(&new_cfg);
        wait_generation(&g, 2.0);
        // a new request already sees the new config
        let r = g.nav("/fast").jar(&jar).send();
        assert_eq!(r.status, 200, "{r:#?}");
        assert_eq!(
            r.header_all("content-security-policy"),
            vec!["frame-ancestors 'self' https://portal.acme.example"]
        );
        slow.release.open();
        let r = inflight.join().unwrap();
        assert_eq!(r.status, 200, "{r:#?}");
        assert_eq!(r.body.len(), body.len(), "truncated body");
        assert!(r.body.as_bytes() == body.as_slice(), "body differs");
        // the in-flight request kept the config it started with
        assert_eq!(
            r.header_all("content-security-policy"),
            vec!["frame-ancestors 'self'"],
            "{:?}",
            r.headers
        );
    });
}

/// Writes to a file the config does not name (a log, say) are ignored; they must not hold back
/// a real change either. The proxy's own stderr log lives in the config directory here, so a
/// steady request rate is such a writer.
#[test]
fn a_busy_unrelated_file_does_not_hold_back_a_reload() {
    let g = Gate::base();
    let stop = Latch::new();
    std::thread::scope(|s| {
        let busy = s.spawn(|| {
            let path = g.dir.path().join("app.log");
            let mut line = 0u32;
            while !stop.wait(Duration::from_millis(50)) {
                line += 1;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap();
                std::io::Write::write_all(&mut f, format!("line {line}\n").as_bytes()).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        g.write_file("acme.secret", ACME_SECRET_2);
        let got = g.wait_generation(2.0, LIVE);
        stop.open();
        busy.join().unwrap();
        assert_eq!(
            got,
            2.0,
            "a secret change was not live within {LIVE:?} while another file in the directory was \
             written every 50 ms (generation {got}); logs:\n{}",
            g.log_tail()
        );
    });
    assert_eq!(jwt_status(&g, ACME_SECRET_2), 302);
}
