//! [`Gate`]: a running ssogate. It writes a [`config_dir`] from a template, starts the binary on
//! it in front of a fresh [`Upstream`], waits for `/readyz`, and then offers the process (signals,
//! exit), the config directory (rewrites for hot reload), the logs, metric scrapes and requests.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use super::{
    acme_token, config_dir, enc, fill, fixtures, free_ports, poll, Jar, Metrics, Proc, Req, Resp,
    Upstream, ACME_SECRET, BASE, PLAIN_COOKIE,
};

pub struct GateBuilder {
    template: String,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl GateBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// An extra file in the config directory (overrides a default one of the same name).
    pub fn file(mut self, name: &str, content: &[u8]) -> Self {
        self.files.push((name.to_string(), content.to_vec()));
        self
    }

    /// Every key fixture ([`fixtures`]) in the config directory.
    pub fn key_fixtures(mut self) -> Self {
        for (n, c) in fixtures().all() {
            self = self.file(n, c);
        }
        self
    }

    pub fn start(self) -> Gate {
        let upstream = Upstream::start();
        let [proxy, admin] = free_ports();
        let files: Vec<_> = self.files.iter().map(|(n, c)| (&n[..], &c[..])).collect();
        let dir = config_dir(&self.template, [proxy, admin, upstream.port], &files);
        let config_path = dir.path().join("config.yaml");
        Gate::spawn(dir, config_path, proxy, admin, upstream, &self.env)
    }
}

pub struct Gate {
    /// ssogate (killed first when the gate is dropped), its output (on stderr, the JSON log
    /// lines) in `dir/ssogate.stderr.log`.
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub proxy_port: u16,
    pub admin_port: u16,
    pub upstream: Upstream,
    pub(super) agent: ureq::Agent,
}

/// A client that follows no redirect, takes every status as an answer and adds no Accept.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .accept("")
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// Waits up to `timeout` for ssogate's `/readyz` on `admin_port` to answer 200, calling `alive`
/// (which panics when ssogate is gone) before each try. False on timeout.
pub fn wait_ready(admin_port: u16, timeout: Duration, mut alive: impl FnMut()) -> bool {
    let probe = agent(Duration::from_millis(500));
    let url = format!("http://127.0.0.1:{admin_port}/readyz");
    let ready = poll(timeout, || {
        alive();
        let r = probe.get(&url).call().ok()?;
        (r.status() == 200).then_some(())
    });
    ready.is_some()
}

impl Gate {
    pub fn builder(template: &str) -> GateBuilder {
        GateBuilder {
            template: template.to_string(),
            env: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn start(template: &str) -> Gate {
        Gate::builder(template).start()
    }

    /// The base config ([`BASE`]).
    pub fn base() -> Gate {
        Gate::start(BASE)
    }

    /// Runs ssogate with `--config config_path` (a file laid out inside `dir`), stderr captured
    /// in `dir/ssogate.stderr.log`, and waits for `/readyz`.
    pub fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        proxy_port: u16,
        admin_port: u16,
        upstream: Upstream,
        env: &[(String, String)],
    ) -> Gate {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssogate"));
        cmd.args(["run", "--config"])
            .arg(&config_path)
            // relative paths in the config must resolve against the config's directory, not the cwd
            .current_dir(std::env::temp_dir())
            .envs(env.iter().map(|(k, v)| (k, v)));
        let log = dir.path().join("ssogate.stderr.log");
        let mut gate = Gate {
            proc: Proc::spawn("ssogate", cmd, log),
            dir,
            config_path,
            proxy_port,
            admin_port,
            upstream,
            agent: agent(Duration::from_secs(20)),
        };
        let ready = wait_ready(admin_port, Duration::from_secs(20), || {
            if let Some(status) = gate.exited() {
                panic!(
                    "ssogate exited early ({status}); config:\n{}\nlogs:\n{}",
                    std::fs::read_to_string(&gate.config_path).unwrap_or_default(),
                    gate.logs()
                );
            }
        });
        assert!(ready, "ssogate not ready after 20s; logs:\n{}", gate.logs());
        gate
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    pub fn url(&self, target: &str) -> String {
        format!("{}{target}", self.public_url())
    }

    // -----------------------------------------------------------------------------------------
    // The process
    // -----------------------------------------------------------------------------------------

    /// `kill -<sig> <pid>` (e.g. "HUP", "TERM").
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.proc.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed: {status}");
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.proc.child.try_wait().expect("try_wait")
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, || self.exited())
    }

    /// Is the process running (not exited, not a zombie)? Linux: reads /proc.
    pub fn alive(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proc.child.id()))
            .unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    }

    // -----------------------------------------------------------------------------------------
    // The config directory
    // -----------------------------------------------------------------------------------------

    /// Rewrites config.yaml in place (a template: placeholders filled with this gate's ports).
    pub fn write_config(&self, template: &str) {
        let ports = [self.proxy_port, self.admin_port, self.upstream.port];
        std::fs::write(&self.config_path, fill(template, ports)).unwrap();
    }

    /// A file of the config directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file of the config directory in place.
    pub fn write_file(&self, name: &str, content: &[u8]) {
        std::fs::write(self.path(name), content).unwrap();
    }

    // -----------------------------------------------------------------------------------------
    // Logs and metrics
    // -----------------------------------------------------------------------------------------

    /// The captured stderr (JSON log lines).
    pub fn logs(&self) -> String {
        self.proc.output()
    }

    /// The last 40 log lines but the access-log ones (for failure messages).
    pub fn log_tail(&self) -> String {
        let logs = self.logs();
        let (access, mut out): (Vec<&str>, Vec<&str>) =
            logs.lines().partition(|l| l.contains("ssogate::access"));
        out.drain(..out.len().saturating_sub(40));
        format!(
            "{}\n({} access-log lines omitted)",
            out.join("\n"),
            access.len()
        )
    }

    /// The JSON access-log lines (target `ssogate::access`) captured so far (panics on a line
    /// mentioning the target that is not JSON).
    pub fn access_log(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter(|l| l.contains("ssogate::access"))
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("access-log line is not JSON ({e}): {l}"))
            })
            .filter(|v| v["target"] == "ssogate::access")
            .collect()
    }

    /// Assert that none of `needles` appears in the captured logs.
    pub fn assert_logs_free_of(&self, needles: &[&str]) {
        // give the logger a moment to flush the last request
        std::thread::sleep(Duration::from_millis(100));
        let logs = self.logs();
        assert!(!logs.is_empty(), "no logs captured at all");
        for n in needles.iter().filter(|n| n.len() >= 8) {
            assert!(
                !logs.contains(n),
                "logs contain a secret/token/cookie value {n:?}:\n{logs}"
            );
        }
    }

    /// A parsed scrape of `/metrics`.
    pub fn metrics(&self) -> Metrics {
        let r = self.admin("/metrics");
        assert_eq!(r.status, 200, "{r:#?}");
        Metrics::parse(&r.body)
    }

    /// `ssogate_config_generation`.
    pub fn generation(&self) -> f64 {
        self.metrics()
            .get("ssogate_config_generation", &[])
            .expect("ssogate_config_generation")
    }

    /// `ssogate_config_reloads_total{result}` (0 when absent).
    pub fn reloads(&self, result: &str) -> f64 {
        self.metrics()
            .value("ssogate_config_reloads_total", &[("result", result)])
    }

    /// Waits (up to `timeout`) for the generation to reach `want`; returns the last value seen.
    pub fn wait_generation(&self, want: f64, timeout: Duration) -> f64 {
        let mut last = self.generation();
        let _ = poll(timeout, || {
            last = self.generation();
            (last >= want).then_some(())
        });
        last
    }

    // -----------------------------------------------------------------------------------------
    // Requests
    // -----------------------------------------------------------------------------------------

    pub fn req(&self, method: &str, target: &str) -> Req<'_> {
        Req::new(Some(self), method, &self.url(target))
    }

    /// A plain GET (no Accept header).
    pub fn get(&self, target: &str) -> Req<'_> {
        self.req("GET", target)
    }

    pub fn post(&self, target: &str) -> Req<'_> {
        self.req("POST", target)
    }

    /// A browser navigation: `Accept: text/html`, `Sec-Fetch-Mode: navigate`.
    pub fn nav(&self, target: &str) -> Req<'_> {
        self.get(target)
            .header(
                "Accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header("Sec-Fetch-Mode", "navigate")
    }

    /// An API call: `Accept: application/json`, `Sec-Fetch-Mode: cors`.
    pub fn api(&self, target: &str) -> Req<'_> {
        self.get(target)
            .header("Accept", "application/json")
            .header("Sec-Fetch-Mode", "cors")
    }

    /// Flow A's second half: the portal sends the browser back with `token` and `state`.
    pub fn callback(&self, token: &str, state: &str) -> Req<'_> {
        self.nav(&format!(
            "/_sso/callback?token={}&state={}",
            enc(token),
            enc(state)
        ))
    }

    /// Flow B: the portal sends the browser to `/_sso/jwt?jwt=token`.
    pub fn jwt(&self, token: &str) -> Req<'_> {
        self.nav(&format!("/_sso/jwt?jwt={}", enc(token)))
    }

    /// Flow B login ([`Gate::jwt`]) → asserts 302 + session cookie; returns the jar.
    pub fn login_jwt(&self, host: Option<&str>, token: &str, cookie_name: &str) -> Jar {
        let mut r = self.jwt(token);
        if let Some(h) = host {
            r = r.host(h);
        }
        let resp = r.send();
        assert_eq!(resp.status, 302, "flow B login failed: {resp:#?}");
        assert!(
            resp.sets_cookie(cookie_name),
            "flow B login did not set {cookie_name}: {resp:#?}"
        );
        let mut jar = Jar::new();
        jar.absorb(&resp);
        jar
    }

    /// Flow B login for acme (default org) with `claims(sub)` + orgId.
    pub fn login_acme(&self, sub: &str) -> Jar {
        self.login_jwt(None, &acme_token(ACME_SECRET, sub), PLAIN_COOKIE)
    }

    /// Strip the public_url prefix from a Location, so relative and absolute same-origin
    /// redirects compare equal.
    pub fn loc_path(&self, resp: &Resp) -> String {
        let l = resp.location();
        match l.strip_prefix(&self.public_url()) {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => l.to_string(),
        }
    }

    /// Sends raw bytes to the proxy listener and reads the response (until it is complete, the
    /// connection closes, or 5 s).
    pub fn raw(&self, bytes: &[u8]) -> String {
        let mut r = super::RawResponse::send(self.proxy_port, bytes);
        r.read_until(Duration::from_secs(5), |r| r.body().1);
        r.text()
    }

    /// GET on the admin listener.
    pub fn admin(&self, path: &str) -> Resp {
        let url = format!("http://127.0.0.1:{}{}", self.admin_port, path);
        Req::new(Some(self), "GET", &url).send()
    }
}
