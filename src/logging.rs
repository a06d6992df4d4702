//! Logs go to stderr, one JSON object per line (or text for humans), level
//! from `SSOGATE_LOG`. pingora's own `log` records are routed here too.
//!
//! A proxy thread never writes to stderr itself: each line is appended to a
//! buffer of the thread that logged it, and a writer thread hands the
//! buffers to stderr every [`FLUSH_EVERY`], or as soon as one holds
//! [`FLUSH_AT`] bytes. Under load that is a few large `write(2)`s a second
//! instead of one per request, with no lock shared between proxy threads
//! and no allocation per line.

use std::io::Write;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// How long a line may wait in its buffer when the proxy is quiet.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full wakes the writer thread at once.
const FLUSH_AT: usize = 64 * 1024;
/// A buffer this full means stderr does not keep up: the logging thread
/// writes it out itself and so waits, rather than memory growing or a line
/// being dropped.
const WRITE_OWN_AT: usize = 1024 * 1024;

pub fn init(format: LogFormat) {
    let level = std::env::var("SSOGATE_LOG").unwrap_or_else(|_| "info".into());
    // pingora logs every start-up step at info; its warnings still show.
    let directives = format!("pingora_core=warn,pingora_proxy=warn,{level}");
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| ThreadBuffer);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    match result {
        Ok(()) => {
            let _ = FORMAT.set(format);
            start_writer();
        }
        Err(e) => eprintln!("ssogate: logging already initialized: {e}"),
    }
}

/// The format chosen at start, for the lines written without tracing.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Lets `line` append one line (newline included) to this thread's buffer,
/// in the format chosen at start: for the access log, which formats its
/// line itself.
pub fn append(line: impl FnOnce(&mut Vec<u8>, LogFormat)) {
    let format = FORMAT.get().copied().unwrap_or(LogFormat::Json);
    let held = OWN.with(|buffer| {
        let mut buffer = lock(buffer);
        line(&mut buffer, format);
        buffer.len()
    });
    after_append(held);
}

fn after_append(held: usize) {
    if held >= WRITE_OWN_AT {
        HUB.write_all_buffers();
    } else if held >= FLUSH_AT {
        HUB.ring();
    }
}

/// Writes out every buffered line; call before the process exits.
pub fn flush() {
    HUB.write_all_buffers();
}

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Every thread's buffer, and the bell that wakes the writer thread.
struct Hub {
    buffers: Mutex<Vec<Buffer>>,
    full: Mutex<bool>,
    bell: Condvar,
}

static HUB: LazyLock<Hub> = LazyLock::new(|| Hub {
    buffers: Mutex::new(Vec::new()),
    full: Mutex::new(false),
    bell: Condvar::new(),
});

thread_local! {
    static OWN: Buffer = {
        let buffer = Buffer::default();
        lock(&HUB.buffers).push(buffer.clone());
        buffer
    };
}

/// A poisoned lock only means a thread panicked while holding it; a log
/// buffer is still a valid byte vector.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    fn ring(&self) {
        *lock(&self.full) = true;
        self.bell.notify_one();
    }

    /// Takes each thread's lines out (the lock is held for a swap, never
    /// for the write) and writes them, thread by thread, in order.
    fn write_all_buffers(&self) {
        let buffers: Vec<Buffer> = {
            let mut list = lock(&self.buffers);
            // A buffer only this list still holds belongs to a thread that
            // has ended: write what it left, then forget it.
            let (gone, live): (Vec<Buffer>, Vec<Buffer>) =
                list.drain(..).partition(|b| Arc::strong_count(b) == 1);
            *list = live;
            list.iter().cloned().chain(gone).collect()
        };
        let mut spare = Vec::new();
        let stderr = std::io::stderr();
        let mut out = stderr.lock();
        for buffer in buffers {
            std::mem::swap(&mut *lock(&buffer), &mut spare);
            if !spare.is_empty() {
                // Nowhere left to report a failing stderr.
                let _ = out.write_all(&spare);
                spare.clear();
            }
        }
        let _ = out.flush();
    }
}

fn start_writer() {
    let spawned = std::thread::Builder::new()
        .name("ssogate-log".into())
        .spawn(|| loop {
            {
                let full = lock(&HUB.full);
                let (mut full, _) = HUB
                    .bell
                    .wait_timeout_while(full, FLUSH_EVERY, |full| !*full)
                    .unwrap_or_else(PoisonError::into_inner);
                *full = false;
            }
            HUB.write_all_buffers();
        });
    if let Err(e) = spawned {
        eprintln!("ssogate: cannot start the log writer ({e}); logs are written at exit only");
    }
}

/// The writer tracing formats each line into: the logging thread's buffer.
struct ThreadBuffer;

impl Write for ThreadBuffer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let held = OWN.with(|buffer| {
            let mut buffer = lock(buffer);
            buffer.extend_from_slice(line);
            buffer.len()
        });
        after_append(held);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
