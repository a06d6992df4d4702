//! A real, headless Chromium driven through the Chrome DevTools Protocol (CDP) over a WebSocket
//! (the portal pages and apps it visits are [`super::Site`]s).
//!
//! * [`Browser::launch`] starts `chromium` on a fresh profile, reads `DevTools listening on ws://…`
//!   from its stderr, opens a page target (`Target.createTarget` + `Target.attachToTarget` with
//!   `flatten: true`) and enables the Page, Runtime, Log and Network domains of that page.
//! * Every command gets a fresh id; [`Browser::call`] waits for the response with that id and
//!   records the events that arrive meanwhile in a journal (console messages, exceptions,
//!   requests, responses, blocked cookies), printed by every failure message.
//! * Waiting is always polling with a deadline ([`Browser::wait_page`], [`Browser::wait_eval`]),
//!   never a bare sleep; [`Browser::hold_eval`] asserts that something stays true for a while.
//! * Dropping the browser kills its whole process group (Chromium runs in a group of its own).
//!
//! Chromium missing or failing to start is a test failure, never a silent skip.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::{poll, Headers};

/// The names `scripts/install-deps.sh` accepts for the browser.
const BROWSER_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How Chromium runs: headless, quiet, on a DevTools port of its choosing.
const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
     --disable-background-networking --disable-component-update --disable-sync \
     --disable-default-apps --remote-debugging-port=0";

/// How long Chromium may take to print its DevTools URL.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline of a single CDP command.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How many journal lines a failure message shows.
const JOURNAL_TAIL: usize = 80;

/// One browser at a time: the machines running these tests have few cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What a page shows, read in one `Runtime.evaluate`.
#[derive(Debug, Clone, Default)]
pub struct PageState {
    pub href: String,
    pub ready_state: String,
    pub title: String,
    /// `document.body.innerText` (or the text of the first `<pre>`, where Chromium puts a JSON
    /// or plain-text document).
    pub text: String,
}

impl PageState {
    pub fn is_complete(&self) -> bool {
        self.ready_state == "complete"
    }

    /// The page text parsed as JSON (the harness upstream's echo), if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(self.text.trim()).ok()
    }
}

impl std::fmt::Display for PageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text: String = self.text.chars().take(1500).collect();
        if text.len() < self.text.len() {
            text.push('…');
        }
        write!(
            f,
            "location.href = {:?}\ndocument.readyState = {:?}\ndocument.title = {:?}\nbody text:\n{}",
            self.href, self.ready_state, self.title, text
        )
    }
}

const PAGE_STATE_JS: &str = r#"(() => {
  const pre = document.body && document.body.querySelector(':scope > pre');
  return {
    href: location.href,
    readyState: document.readyState,
    title: document.title,
    text: pre ? pre.textContent : (document.body ? document.body.innerText : ''),
  };
})()"#;

/// Chromium's process group (renderers, zygote, crashpad: all started by us), killed on drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // Killed while its leader is still unreaped, so the group id is still ours.
        let pid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Browser {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// The flattened CDP session of our page target.
    session: String,
    /// Every event received, oldest first.
    events: Vec<Value>,
    /// Human-readable lines: console, exceptions, network, cookies.
    journal: Vec<String>,
    /// Network request id -> URL.
    urls: HashMap<String, String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    // dropped after the socket: the process group, then the profile it used
    chromium: Group,
    profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

fn find_browser() -> PathBuf {
    if let Some(p) = std::env::var_os("SSOGATE_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in BROWSER_NAMES {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium found on PATH (looked for {BROWSER_NAMES:?}, or set SSOGATE_CHROMIUM); \
         install it with `scripts/install-deps.sh chromium`"
    );
}

impl Browser {
    /// Starts a headless Chromium on a fresh profile and opens one page. Panics (fails the test)
    /// with Chromium's stderr when it cannot start.
    pub fn launch() -> Browser {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let exe = find_browser();
        let profile = tempfile::tempdir().expect("profile tempdir");
        let child = Command::new(&exe)
            .args(FLAGS.split_whitespace())
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // its own process group, so that dropping it ends every process it forks
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} ({e}); install it with `scripts/install-deps.sh chromium`",
                    exe.display()
                )
            });
        let mut chromium = Group(child);

        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let pipe = chromium.0.stderr.take().expect("chromium stderr");
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                // Keep draining until Chromium exits, or it blocks on a full pipe.
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                        let _ = tx.send(url.trim().to_string());
                    }
                    let mut buf = stderr.lock().unwrap();
                    if buf.len() >= 200 {
                        buf.pop_front();
                    }
                    buf.push_back(line);
                }
            });
        }
        let ws_url = poll(LAUNCH_TIMEOUT, || {
            let url = rx.recv_timeout(Duration::from_millis(100)).ok();
            if let (None, Ok(Some(status))) = (&url, chromium.0.try_wait()) {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "Chromium ({}) exited ({status}) before printing its DevTools URL; stderr:\n{}",
                    exe.display(),
                    lines(&stderr)
                );
            }
            url
        })
        .unwrap_or_else(|| {
            panic!(
                "Chromium ({}) printed no `DevTools listening on ws://…` within {LAUNCH_TIMEOUT:?}; stderr:\n{}",
                exe.display(),
                lines(&stderr)
            )
        });
        let ws = connect_ws(&ws_url)
            .unwrap_or_else(|e| panic!("could not open the DevTools WebSocket {ws_url}: {e}"));
        let mut browser = Browser {
            ws,
            next_id: 1,
            session: String::new(),
            events: Vec::new(),
            journal: Vec::new(),
            urls: HashMap::new(),
            stderr,
            chromium,
            profile,
            _turn: turn,
        };
        let target = browser.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"]
            .as_str()
            .expect("Target.createTarget gave no targetId");
        let attached = browser.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("Target.attachToTarget gave no sessionId")
            .to_string();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser
    }

    // -----------------------------------------------------------------------------------------
    // The protocol
    // -----------------------------------------------------------------------------------------

    /// A command to our page; returns its `result`, panics on a protocol error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.try_call(Some(&session), method, params)
            .unwrap_or_else(|e| panic!("CDP {method} failed: {e}\n{}", self.journal_tail()))
    }

    /// A command to the browser target itself (Target.*, Storage.*, Browser.*).
    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.try_call(None, method, params)
            .unwrap_or_else(|e| panic!("CDP {method} failed: {e}\n{}", self.journal_tail()))
    }

    /// Sends a command and waits for the response carrying its id; events arriving meanwhile go
    /// to the journal. `Err` holds the protocol error (or a timeout) as text.
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("sending {method}: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let Some(v) = self.read_message(deadline)? else {
                return Err(format!("no answer to {method} within {CALL_TIMEOUT:?}"));
            };
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(err.to_string());
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            // An event, or the late answer to a command we gave up on.
            if v.get("method").is_some() {
                self.record_event(v);
            }
        }
    }

    /// One message, or `None` once `deadline` has passed.
    fn read_message(&mut self, deadline: Instant) -> Result<Option<Value>, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self
                .ws
                .get_mut()
                .set_read_timeout(Some(left.min(Duration::from_millis(200))));
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map(Some)
                        .map_err(|e| format!("CDP sent non-JSON ({e}): {t}"));
                }
                Ok(Message::Close(_)) => return Err("Chromium closed the DevTools socket".into()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    return Err(format!(
                        "DevTools socket: {e}; Chromium stderr:\n{}",
                        lines(&self.stderr)
                    ))
                }
            }
        }
    }

    /// Reads and records events for `d`.
    fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(Some(v)) = self.read_message(deadline) {
            if v.get("method").is_some() {
                self.record_event(v);
            }
        }
    }

    fn record_event(&mut self, v: Value) {
        let p = &v["params"];
        if let (Some("Network.requestWillBeSent"), Some(id), Some(url)) = (
            v["method"].as_str(),
            p["requestId"].as_str(),
            p["request"]["url"].as_str(),
        ) {
            self.urls.insert(id.to_string(), url.to_string());
        }
        if let Some(line) = describe_event(&v, &self.urls) {
            self.note(line);
        }
        self.events.push(v);
    }

    /// A journal line (also printed at once with `SSOGATE_BROWSER_JOURNAL=1`).
    fn note(&mut self, line: String) {
        if std::env::var_os("SSOGATE_BROWSER_JOURNAL").is_some() {
            eprintln!("[browser] {line}");
        }
        self.journal.push(line);
    }

    // -----------------------------------------------------------------------------------------
    // Pages
    // -----------------------------------------------------------------------------------------

    /// `Page.navigate`; a navigation error (`errorText`) goes to the journal, the caller's
    /// next wait shows it.
    pub fn navigate(&mut self, url: &str) {
        self.note(format!("== navigate {url}"));
        let r = self.call("Page.navigate", json!({"url": url}));
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            self.note(format!("!! navigation to {url} failed: {e}"));
        }
    }

    /// `Runtime.evaluate` in the top document (promises awaited, value returned by value).
    /// `Err` for an exception or while no document is there (mid-navigation).
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let session = self.session.clone();
        let r = self.try_call(
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or_default();
            return Err(format!("exception: {text}"));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).unwrap_or_else(|e| {
            panic!(
                "evaluating {expression:?} failed: {e}\n{}",
                self.diagnostics()
            )
        })
    }

    /// What the page shows now; an empty state while no document answers.
    pub fn state(&mut self) -> PageState {
        match self.try_eval(PAGE_STATE_JS) {
            Ok(v) => PageState {
                href: v["href"].as_str().unwrap_or_default().to_string(),
                ready_state: v["readyState"].as_str().unwrap_or_default().to_string(),
                title: v["title"].as_str().unwrap_or_default().to_string(),
                text: v["text"].as_str().unwrap_or_default().to_string(),
            },
            Err(e) => PageState {
                ready_state: format!("(no document: {e})"),
                ..PageState::default()
            },
        }
    }

    /// Polls the page until `ok` holds for a complete document, or fails with `what`, the page
    /// and the journal.
    pub fn wait_page(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ok: impl FnMut(&PageState) -> bool,
    ) -> PageState {
        let mut last = PageState::default();
        let page = poll(timeout, || {
            last = self.state();
            if last.is_complete() && ok(&last) {
                return Some(last.clone());
            }
            self.pump(Duration::from_millis(50));
            None
        });
        page.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for: {what}\n{last}\n{}",
                self.journal_tail()
            )
        })
    }

    /// Waits until the complete page is at exactly `url`.
    pub fn wait_url(&mut self, url: &str, timeout: Duration) -> PageState {
        self.wait_page(&format!("location.href == {url:?}"), timeout, |s| {
            s.href == url
        })
    }

    /// Polls `expression` until `ok` accepts its value.
    pub fn wait_eval(
        &mut self,
        what: &str,
        timeout: Duration,
        expression: &str,
        mut ok: impl FnMut(&Value) -> bool,
    ) -> Value {
        let mut last = Ok(Value::Null);
        let value = poll(timeout, || {
            last = self.try_eval(expression);
            match &last {
                Ok(v) if ok(v) => Some(v.clone()),
                _ => {
                    self.pump(Duration::from_millis(50));
                    None
                }
            }
        });
        value.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for: {what}\nlast value of {expression}: {last:?}\n{}",
                self.diagnostics()
            )
        })
    }

    /// Asserts that `ok` accepts `expression`'s value for the whole of `duration` (checked all
    /// along); returns the last value.
    pub fn hold_eval(
        &mut self,
        what: &str,
        duration: Duration,
        expression: &str,
        mut ok: impl FnMut(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        poll(duration, || {
            match self.try_eval(expression) {
                Ok(v) if ok(&v) => last = v,
                v => panic!(
                    "expected for {duration:?}: {what}\nbut {expression} gave {v:?}\n{}",
                    self.diagnostics()
                ),
            }
            self.pump(Duration::from_millis(50));
            None::<()>
        });
        last
    }

    // -----------------------------------------------------------------------------------------
    // Cookies, events, diagnostics
    // -----------------------------------------------------------------------------------------

    /// Every cookie the browser holds (partitioned ones included), as CDP `Network.Cookie`s.
    pub fn cookies(&mut self) -> Vec<Value> {
        let r = self.call_browser("Storage.getCookies", json!({}));
        r["cookies"].as_array().cloned().unwrap_or_default()
    }

    /// The cookie `name` for `domain`, if the browser holds one.
    pub fn cookie(&mut self, name: &str, domain: &str) -> Option<Value> {
        self.cookies()
            .into_iter()
            .find(|c| c["name"] == name && c["domain"] == domain)
    }

    /// Every event received so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Does any journal line contain `needle`?
    pub fn journal_has(&self, needle: &str) -> bool {
        self.journal.iter().any(|l| l.contains(needle))
    }

    /// Console messages, exceptions and browser log entries (no network lines).
    pub fn console(&self) -> Vec<&str> {
        self.journal
            .iter()
            .filter(|l| {
                l.starts_with("console.") || l.starts_with("exception") || l.starts_with("log.")
            })
            .map(String::as_str)
            .collect()
    }

    pub fn journal_tail(&self) -> String {
        let skip = self.journal.len().saturating_sub(JOURNAL_TAIL);
        let mut out = String::from("--- browser journal (console, network, cookies) ---\n");
        if skip > 0 {
            out.push_str(&format!("… {skip} earlier lines\n"));
        }
        for line in &self.journal[skip..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The page state and the journal, for failure messages.
    pub fn diagnostics(&mut self) -> String {
        let s = self.state();
        format!("{s}\n{}", self.journal_tail())
    }
}

/// The lines kept of Chromium's stderr.
fn lines(buf: &Mutex<VecDeque<String>>) -> String {
    buf.lock()
        .map(|b| b.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn connect_ws(url: &str) -> Result<WebSocket<TcpStream>, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let stream = TcpStream::connect(authority).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(url, stream).map_err(|e| e.to_string())?;
    Ok(ws)
}

/// One journal line for the events worth reading in a failure message.
fn describe_event(v: &Value, urls: &HashMap<String, String>) -> Option<String> {
    let p = &v["params"];
    let s = |v: &Value| short(v.as_str().unwrap_or_default());
    let url = p["requestId"]
        .as_str()
        .and_then(|id| urls.get(id))
        .map(String::as_str)
        .unwrap_or_default();
    if url.starts_with("data:") {
        // Chromium's own error pages load their images as data: URLs
        return None;
    }
    match v["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = p["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| match x.get("value") {
                            Some(Value::String(t)) => t.clone(),
                            Some(other) => other.to_string(),
                            None => s(&x["description"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(format!("console.{}: {}", s(&p["type"]), args.join(" ")))
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let text = d["exception"]["description"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s(&d["text"]));
            Some(format!("exception: {text} ({})", s(&d["url"])))
        }
        "Log.entryAdded" => {
            let e = &p["entry"];
            Some(format!(
                "log.{} [{}]: {} ({})",
                s(&e["level"]),
                s(&e["source"]),
                s(&e["text"]),
                s(&e["url"])
            ))
        }
        "Network.requestWillBeSent" => {
            let mut out = String::new();
            if let Some(r) = p.get("redirectResponse") {
                out.push_str(&format!(
                    "<- {} {} Location: {}\n",
                    r["status"],
                    s(&r["url"]),
                    headers(&r["headers"]).get("location").unwrap_or_default()
                ));
            }
            out.push_str(&format!(
                "-> {} {} ({})",
                s(&p["request"]["method"]),
                s(&p["request"]["url"]),
                s(&p["type"])
            ));
            Some(out)
        }
        "Network.responseReceived" => {
            let r = &p["response"];
            let csp = headers(&r["headers"])
                .get("content-security-policy")
                .map(|c| format!(" CSP: {c}"))
                .unwrap_or_default();
            Some(format!(
                "<- {} {} ({}){csp}",
                r["status"],
                s(&r["url"]),
                s(&p["type"])
            ))
        }
        "Network.loadingFailed" => Some(format!(
            "!! loading failed ({}) {}: {} {}{}",
            s(&p["type"]),
            short(url),
            s(&p["errorText"]),
            s(&p["blockedReason"]),
            if p["canceled"].as_bool() == Some(true) {
                " (canceled)"
            } else {
                ""
            }
        )),
        "Network.responseReceivedExtraInfo" => {
            let blocked = p["blockedCookies"].as_array().filter(|a| !a.is_empty())?;
            let list: Vec<String> = blocked
                .iter()
                .map(|b| format!("{} {}", s(&b["cookieLine"]), b["blockedReasons"]))
                .collect();
            Some(format!(
                "!! Set-Cookie refused by the browser: {}",
                list.join(" | ")
            ))
        }
        "Network.requestWillBeSentExtraInfo" => {
            let blocked: Vec<String> = p["associatedCookies"]
                .as_array()?
                .iter()
                .filter(|c| {
                    c["blockedReasons"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
                })
                .map(|c| format!("{} {}", s(&c["cookie"]["name"]), c["blockedReasons"]))
                .collect();
            (!blocked.is_empty()).then(|| format!("!! cookie not sent: {}", blocked.join(" | ")))
        }
        "Page.frameNavigated" => {
            let f = &p["frame"];
            let kind = if f.get("parentId").is_some() {
                "frame"
            } else {
                "top"
            };
            Some(format!("== {kind} navigated to {}", s(&f["url"])))
        }
        _ => None,
    }
}

/// `text` with its middle cut out when it is longer than 300 characters (URLs carrying tokens).
fn short(text: &str) -> String {
    let n = text.chars().count();
    if n <= 300 {
        return text.to_string();
    }
    let head: String = text.chars().take(180).collect();
    let tail: String = text.chars().skip(n - 100).collect();
    format!("{head}…{tail}")
}

/// The headers of a CDP `Headers` object.
fn headers(v: &Value) -> Headers {
    let map = v.as_object().into_iter().flatten();
    map.map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect()
}

/// A JS string literal (JSON) safe to put inside a `<script>` element.
pub fn js_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Text safe inside an HTML attribute value (double-quoted) or element.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
