//! Logs go to stderr, one JSON object per line (or text for humans), level
//! from `SSOGATE_LOG`. pingora's own `log` records are routed here too.
//!
//! Lines are handed to a writer thread: a request never waits on stderr's
//! lock or a `write(2)`, which under load cost a fifth of the throughput.

use std::sync::Mutex;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Keeps the writer thread alive; dropping it flushes what is queued.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

pub fn init(format: LogFormat) {
    let level = std::env::var("SSOGATE_LOG").unwrap_or_else(|_| "info".into());
    // pingora logs every start-up step at info; its warnings still show.
    let directives = format!("pingora_core=warn,pingora_proxy=warn,{level}");
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Not lossy: when the queue is full a request waits rather than a log
    // line being dropped.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("ssogate-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
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
            if let Ok(mut slot) = WRITER.lock() {
                *slot = Some(guard);
            }
        }
        Err(e) => eprintln!("ssogate: logging already initialized: {e}"),
    }
}

/// Writes out every queued line; call before the process exits.
pub fn flush() {
    if let Ok(mut slot) = WRITER.lock() {
        slot.take();
    }
}
