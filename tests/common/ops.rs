//! Operational helpers: signals and exit of the ssogate process, config rewrites, metric
//! scrapes (parsed Prometheus text), access-log lines, and a scriptable raw-TCP upstream for
//! slow, streamed and upgraded responses.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{fill, free_port, Gate, Upstream};

// ---------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------

/// Calls `f` every 20 ms until it returns `Some`, or `None` once `timeout` has passed.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A one-shot latch: `open` once, any number of `wait`ers.
#[derive(Clone, Default)]
pub struct Latch(Arc<(Mutex<bool>, Condvar)>);

impl Latch {
    pub fn new() -> Latch {
        Latch::default()
    }

    pub fn open(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap() = true;
        c.notify_all();
    }

    pub fn is_open(&self) -> bool {
        *self.0 .0.lock().unwrap()
    }

    /// Waits until opened; false on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (m, c) = &*self.0;
        let guard = m.lock().unwrap();
        let (guard, _) = c.wait_timeout_while(guard, timeout, |open| !*open).unwrap();
        *guard
    }
}

// ---------------------------------------------------------------------------------------------
// The ssogate process
// ---------------------------------------------------------------------------------------------

/// Runs ssogate with `--config config_path` (a file the caller laid out inside `dir`), stderr
/// captured in `dir/ssogate.stderr.log`, and waits for `/readyz`.
pub fn launch(
    dir: tempfile::TempDir,
    config_path: PathBuf,
    proxy_port: u16,
    admin_port: u16,
    upstream: Upstream,
) -> Gate {
    Gate::spawn(dir, config_path, proxy_port, admin_port, upstream, &[])
}

/// Two distinct free ports (proxy, admin).
pub fn two_ports() -> (u16, u16) {
    let proxy = free_port();
    let mut admin = free_port();
    while admin == proxy {
        admin = free_port();
    }
    (proxy, admin)
}

/// A template filled with these ports (for configs written outside [`Gate`]).
pub fn fill_ports(template: &str, proxy_port: u16, admin_port: u16, upstream_port: u16) -> String {
    fill(template, proxy_port, admin_port, upstream_port)
}

impl Gate {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -<sig> <pid>` (e.g. "HUP", "TERM").
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed: {status}");
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Is the process running (not exited, not a zombie)? Linux: reads /proc.
    pub fn alive(&self) -> bool {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, || self.child.try_wait().expect("try_wait"))
    }

    /// Rewrites config.yaml in place (a template: placeholders filled with this gate's ports).
    pub fn write_config(&self, template: &str) {
        let yaml = fill(
            template,
            self.proxy_port,
            self.admin_port,
            self.upstream.port,
        );
        std::fs::write(&self.config_path, yaml).unwrap();
    }

    /// Writes a file of the config directory in place.
    pub fn write_file(&self, name: &str, content: &[u8]) {
        std::fs::write(self.dir.path().join(name), content).unwrap();
    }

    pub fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    /// A parsed scrape of `/metrics`.
    pub fn metrics(&self) -> Metrics {
        let r = self.admin("/metrics");
        assert_eq!(r.status, 200, "{r:#?}");
        Metrics::parse(&r.body)
    }

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

    /// The captured logs without the access-log lines (for failure messages).
    pub fn log_tail(&self) -> String {
        let logs = self.logs();
        let access = logs
            .lines()
            .filter(|l| l.contains("ssogate::access"))
            .count();
        let mut out: Vec<&str> = logs
            .lines()
            .filter(|l| !l.contains("ssogate::access"))
            .collect();
        if out.len() > 40 {
            out.drain(..out.len() - 40);
        }
        format!("{}\n({access} access-log lines omitted)", out.join("\n"))
    }

    /// The JSON access-log lines (target `ssogate::access`) captured so far.
    pub fn access_log(&self) -> Vec<Value> {
        access_lines(&self.logs())
    }
}

/// Every stderr line whose target is `ssogate::access`, parsed (panics on a line mentioning the
/// target that is not JSON).
pub fn access_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter(|l| l.contains("ssogate::access"))
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("access-log line is not JSON ({e}): {l}"))
        })
        .filter(|v| v["target"] == "ssogate::access")
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("bad metrics line {l:?}")))
            .collect();
        Metrics {
            samples,
            text: text.to_string(),
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
    }

    /// The sample of `name` whose label set is exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .find(|s| s.labels.len() == labels.len())
            .map(|s| s.value)
    }

    /// `get`, 0 when absent (counters not yet created).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Sum over every sample of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// Every sample of a family.
    pub fn family(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.find('{') {
        None => (head.to_string(), BTreeMap::new()),
        Some(i) => {
            let body = head[i + 1..].strip_suffix('}')?;
            (head[..i].to_string(), parse_labels(body)?)
        }
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(body: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || *c == ' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim().to_string(), value);
    }
}

/// A series: family name and its exact label set.
pub type SeriesKey = (String, BTreeMap<String, String>);

/// Every series of `families` whose value differs between two scrapes, with its delta (series
/// absent from `before` count from 0).
pub fn changes(before: &Metrics, after: &Metrics, families: &[&str]) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for s in after
        .samples
        .iter()
        .filter(|s| families.contains(&s.name.as_str()))
    {
        let old = before
            .samples
            .iter()
            .find(|b| b.name == s.name && b.labels == s.labels)
            .map_or(0.0, |b| b.value);
        if s.value != old {
            out.insert((s.name.clone(), s.labels.clone()), s.value - old);
        }
    }
    out
}

/// Builds a [`SeriesKey`].
pub fn series(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// A scriptable raw upstream
// ---------------------------------------------------------------------------------------------

/// An HTTP request head as read off the wire.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// (lowercased name, value)
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head (up to the blank line) byte by byte, so nothing after it is consumed.
pub fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Head {
        method,
        target,
        headers,
    })
}

/// A TCP server handing every accepted connection to `handler` on its own thread.
pub struct RawUpstream {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl RawUpstream {
    pub fn start<F>(handler: F) -> RawUpstream
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw upstream");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let h = handler.clone();
                std::thread::spawn(move || h(stream));
            }
        });
        RawUpstream { port, stop }
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Writes a complete response with a Content-Length body (the connection then closes).
pub fn write_response(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// One chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client reading a response incrementally
// ---------------------------------------------------------------------------------------------

/// A response being read off a raw connection: the head once complete, then the body (chunked
/// framing removed) as it arrives.
pub struct RawResponse {
    pub stream: TcpStream,
    raw: Vec<u8>,
}

impl RawResponse {
    /// Connects to `port`, sends `request` verbatim.
    pub fn send(port: u16, request: &str) -> RawResponse {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        RawResponse {
            stream,
            raw: Vec::new(),
        }
    }

    /// Reads whatever is available (up to ~100 ms); false at EOF.
    pub fn pump(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    fn head_end(&self) -> Option<usize> {
        self.raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
    }

    pub fn head(&self) -> Option<String> {
        self.head_end()
            .map(|e| String::from_utf8_lossy(&self.raw[..e]).into_owned())
    }

    pub fn status(&self) -> Option<u16> {
        self.head()?.split(' ').nth(1)?.parse().ok()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.head()?.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.trim().to_ascii_lowercase() == name).then(|| v.trim().to_string())
        })
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The body received so far, and whether it is complete (terminal chunk, or Content-Length
    /// reached).
    pub fn body(&self) -> (Vec<u8>, bool) {
        let Some(start) = self.head_end() else {
            return (Vec::new(), false);
        };
        let data = &self.raw[start..];
        if !self.chunked() {
            let cl = self.header("content-length").and_then(|v| v.parse().ok());
            return (data.to_vec(), cl.is_some_and(|cl: usize| data.len() >= cl));
        }
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let Some(eol) = data[pos..].windows(2).position(|w| w == b"\r\n") else {
                return (out, false);
            };
            let size_text = String::from_utf8_lossy(&data[pos..pos + eol]).into_owned();
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                return (out, false);
            };
            let body_start = pos + eol + 2;
            if size == 0 {
                return (out, true);
            }
            if data.len() < body_start + size {
                // a partial chunk: hand out what arrived
                out.extend_from_slice(&data[body_start..]);
                return (out, false);
            }
            out.extend_from_slice(&data[body_start..body_start + size]);
            pos = body_start + size + 2;
            if pos > data.len() {
                return (out, false);
            }
        }
    }

    /// Reads until `done(self)` or `timeout`; false on timeout or EOF before `done`.
    pub fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline || !self.pump() {
                return done(self);
            }
        }
    }
}

/// Does the slice contain `needle`?
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An upstream whose `/slow...` requests are held until `release` opens (at most 20 s), then
/// answered 200 with `body`; `arrived` opens when the first one arrives. Other paths answer at
/// once, 200 `fast`.
pub struct SlowUpstream {
    pub server: RawUpstream,
    pub arrived: Latch,
    pub release: Latch,
}

impl SlowUpstream {
    pub fn start(body: Vec<u8>) -> SlowUpstream {
        let arrived = Latch::new();
        let release = Latch::new();
        let (a, r) = (arrived.clone(), release.clone());
        let server = RawUpstream::start(move |mut stream| {
            let Some(head) = read_head(&mut stream) else {
                return;
            };
            if head.target.starts_with("/slow") {
                a.open();
                r.wait(Duration::from_secs(20));
                write_response(&mut stream, 200, &[("Content-Type", "text/plain")], &body);
            } else {
                write_response(&mut stream, 200, &[("Content-Type", "text/plain")], b"fast");
            }
        });
        SlowUpstream {
            server,
            arrived,
            release,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }
}
