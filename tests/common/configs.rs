//! Config templates: YAML with `{proxy_port}`, `{admin_port}` and `{upstream_port}` placeholders
//! ([`fill`]ed when a config directory is written), and the secret files every directory holds.

/// Session cookie name with `session.secure: false`.
pub const PLAIN_COOKIE: &str = "ssogate_session";
/// Session cookie name with `session.secure: true` (the default).
pub const SECURE_COOKIE: &str = "__Host-ssogate";

pub const ACME_LOGIN: &str = "https://portal.acme.example/sso/dash?x=1";
pub const ACME_LOGOUT: &str = "https://portal.acme.example/bye";
pub const GLOBEX_LOGIN: &str = "https://portal.globex.example/login";

/// Secrets written into every config directory (ASCII, so they can be searched for in logs).
/// acme.secret is written with a trailing "\n" (which the SPEC says is stripped).
pub const SESSION_SECRET: &[u8] = b"session-secret-0123456789abcdefghijklmnopqrstuvwxyz";
pub const ACME_SECRET: &[u8] = b"acme-hs256-secret-0123456789abcdefghijklmnopq";
pub const GLOBEX_SECRET: &[u8] = b"globex-hs256-secret-0123456789abcdefghijklmnop";
pub const WRONG_SECRET: &[u8] = b"wrong-hs256-secret-0123456789abcdefghijklmnop";

macro_rules! head {
    () => {
        "listen: 127.0.0.1:{proxy_port}
admin_listen: 127.0.0.1:{admin_port}
upstream: http://127.0.0.1:{upstream_port}
public_url: http://127.0.0.1:{proxy_port}
session:
  secret_file: session.key
  secure: false
rate_limit: { logins_per_second: 1000, logins_burst: 100000, failures_per_minute: 100000 }
"
    };
}

/// The top of every config: the listeners, the harness upstream, `public_url`, the session
/// secret (`secure: false`) and rate limits no test reaches unless it means to ([`RATE_LIMIT`]):
/// every test client is 127.0.0.1, and tests of refusals send many refused credentials.
pub const HEAD: &str = head!();

/// The `rate_limit` line of [`HEAD`], for tests that set their own limits.
pub const RATE_LIMIT: &str =
    "rate_limit: { logins_per_second: 1000, logins_burst: 100000, failures_per_minute: 100000 }\n";

/// The base config of most tests: [`HEAD`], public path /public/ and two orgs: acme (default,
/// Host acme.test, path /acme/, org_claim orgId, home /home, a logout_url) and globex (Host
/// globex.test, home /).
pub const BASE: &str = concat!(
    head!(),
    "public_paths: [/public/]
organizations:
  acme:
    hosts: [acme.test]
    paths: [/acme/]
    login_url: https://portal.acme.example/sso/dash?x=1
    home_path: /home
    logout_url: https://portal.acme.example/bye
    keys: [{ alg: HS256, secret_file: acme.secret }]
    org_claim: orgId
  globex:
    hosts: [globex.test]
    login_url: https://portal.globex.example/login
    keys: [{ alg: HS256, secret_file: globex.secret }]
default_org: acme
"
);

/// [`HEAD`] followed by `rest` (the organizations and whatever else).
pub fn template(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

/// [`HEAD`] and these organizations (see [`org`]).
pub fn config(orgs: &[String]) -> String {
    template(&format!("organizations:\n{}", orgs.concat()))
}

/// One org for [`config`]: `hosts: [<name>.test]`, `accept_bearer: true`, the given keys (each
/// one YAML flow mapping) and extra `field: value` lines.
pub fn org(name: &str, keys: &[&str], extra: &[&str]) -> String {
    let mut s = format!(
        "  {name}:\n    hosts: [{name}.test]\n    login_url: https://portal.{name}.example/login\n    \
         accept_bearer: true\n    keys:\n"
    );
    for k in keys {
        s.push_str(&format!("      - {k}\n"));
    }
    for e in extra {
        s.push_str(&format!("    {e}\n"));
    }
    s
}

/// `template` with its placeholders replaced by these ports.
pub fn fill(template: &str, [proxy, admin, upstream]: [u16; 3]) -> String {
    template
        .replace("{proxy_port}", &proxy.to_string())
        .replace("{admin_port}", &admin.to_string())
        .replace("{upstream_port}", &upstream.to_string())
}

/// `template` in front of the app on `port` instead of the gate's own [`super::Upstream`].
pub fn with_upstream(template: &str, port: u16) -> String {
    template.replace("{upstream_port}", &port.to_string())
}

/// A temporary config directory: session.key, acme.secret (with a trailing newline),
/// globex.secret, then `files` (replacing those of the same name), then `config.yaml` from
/// `template` filled with `ports`.
pub fn config_dir(template: &str, ports: [u16; 3], files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = [ACME_SECRET, b"\n"].concat();
    let defaults = [
        ("session.key", SESSION_SECRET),
        ("acme.secret", acme.as_slice()),
        ("globex.secret", GLOBEX_SECRET),
    ];
    for (name, content) in defaults.iter().chain(files) {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    std::fs::write(dir.path().join("config.yaml"), fill(template, ports)).unwrap();
    dir
}
