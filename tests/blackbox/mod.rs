//! A small, self-contained black-box kit for the deployment, image and
//! integration tests: run the `ssogate` binary (or anything else) as a child
//! process on ephemeral loopback ports, talk plain HTTP/1.1 to it with full
//! control of the `Host` header, keep cookies, and stand up an app that
//! echoes what reached it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports (each listener is held until all are picked).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("an ephemeral port"))
        .collect();
    let mut ports = [0; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr().unwrap().port();
    }
    ports
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes what cargo sets in a test's environment for the crate under test
/// (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, ...) from a command that runs cargo:
/// crates that read such variables with `env!` would otherwise look changed
/// and be rebuilt, here and again in the next ordinary build.
pub fn without_test_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_by_cargo {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Prints why a test does nothing, so that a skip is never silent: straight
/// to stderr, past the test harness's capture of `println!`/`eprintln!`.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn location(&self) -> &str {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location in a {} response", self.status))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}", self.status))
    }
}

/// Splits `http://host:port/path?q` into (host:port, /path?q).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// One request on a fresh connection (`Connection: close`). The TCP
/// connection always goes to 127.0.0.1 and the port of `url`; the `Host`
/// header is the URL's authority unless `headers` names one.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let (authority, target) = split_url(url);
    let port: u16 = authority
        .rsplit_once(':')
        .map(|(_, p)| p.parse().expect("a port in the URL"))
        .unwrap_or(80);
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the answer to {method} {target}: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "not an HTTP response to {method} {target}: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", url, headers, b"")
}

/// The value of query parameter `name` in a URL (decoded).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A cookie jar for one site: name -> value, from `Set-Cookie` headers.
#[derive(Debug, Default, Clone)]
pub struct Jar(pub BTreeMap<String, String>);

impl Jar {
    pub fn absorb(&mut self, response: &Response) {
        for raw in response.headers_named("set-cookie") {
            let pair = raw.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let removal = raw.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || removal {
                    self.0.remove(name.trim());
                } else {
                    self.0
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// A child process killed (SIGKILL) when dropped, with its output in a file.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
            log,
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the process's output when it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits for a listening port, failing early (with the output) if the process dies.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {port} after {timeout:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// ssogate
// ---------------------------------------------------------------------------------------------

/// The `ssogate` binary of this build, running `run --config` on a config
/// written into a temp dir.
pub struct Gate {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
    pub proxy_port: u16,
    pub admin_port: u16,
    /// A third free port, `{spare}` in the config: for a site the config names.
    pub spare_port: u16,
}

impl Gate {
    /// Writes `files` (relative to the temp dir) and `config` (where
    /// `{proxy}`, `{admin}` and `{spare}` become three distinct free ports),
    /// runs ssogate and waits for `/readyz`.
    pub fn start(config: &str, files: &[(&str, &[u8])]) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let [proxy_port, admin_port, spare_port] = free_ports();
        let config = config
            .replace("{proxy}", &proxy_port.to_string())
            .replace("{admin}", &admin_port.to_string())
            .replace("{spare}", &spare_port.to_string());
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssogate"));
        cmd.args(["run", "--config"])
            .arg(&config_path)
            .current_dir(dir.path());
        let log = dir.path().join("ssogate.log");
        let mut proc = Proc::spawn("ssogate", cmd, log);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            proc.assert_running();
            if TcpStream::connect(("127.0.0.1", admin_port)).is_ok()
                && get(&format!("http://127.0.0.1:{admin_port}/readyz"), &[]).status == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ssogate not ready after 20 s:\n{}",
                proc.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Gate {
            proc,
            dir,
            proxy_port,
            admin_port,
            spare_port,
        }
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://127.0.0.1:{}{target}", self.proxy_port)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The gate's log, checked for secrets that must never appear in it.
    pub fn assert_logs_free_of(&self, secrets: &[&str]) {
        let logs = self.proc.output();
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !logs.contains(s),
                "ssogate's log holds a secret or token (not printed here)"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The app behind the gate
// ---------------------------------------------------------------------------------------------

/// One request as the app received it.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl AppRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&AppRequest) -> (u16, &'static str, String) + Send + Sync;

/// An app (or any small site) on an ephemeral port: one thread per
/// connection, `Connection: close` answers. By default it echoes the request
/// as JSON `{method, target, headers}`.
pub struct App {
    pub port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<AppRequest>>>,
}

impl App {
    pub fn echo() -> App {
        App::start(|req| (200, "application/json", echo_json(req).to_string()))
    }

    pub fn start(
        handler: impl Fn(&AppRequest) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let flag = stop.clone();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let log = log.clone();
                std::thread::spawn(move || serve_one(stream, &*handler, &log));
            }
        });
        App { port, stop, seen }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<AppRequest> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub fn echo_json(req: &AppRequest) -> Value {
    let headers: BTreeMap<String, String> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    json!({"method": req.method, "target": req.target, "headers": headers})
}

fn serve_one(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<AppRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let req = AppRequest {
        method,
        target,
        headers,
    };
    if let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; len];
        let _ = reader.read_exact(&mut body);
    }
    let (status, content_type, body) = handler(&req);
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(req);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/install-test-tools.sh <part>`: Ok(tools dir) when ready,
/// Err(reason) when a registry is unreachable (exit 3); panics on any other
/// failure.
pub fn test_tools(part: &str) -> Result<PathBuf, String> {
    let out = Command::new(repo().join("scripts/install-test-tools.sh"))
        .arg(part)
        .output()
        .expect("run scripts/install-test-tools.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            return Err(stderr
                .lines()
                .last()
                .unwrap_or("a package registry is unreachable")
                .to_owned())
        }
        _ => panic!(
            "scripts/install-test-tools.sh {part} failed ({}):\n{}{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("SSOGATE_TOOLS_DIR="))
        .next_back()
        .expect("install-test-tools.sh names its directory");
    Ok(PathBuf::from(dir))
}
