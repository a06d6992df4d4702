//! Logs go to stderr, one JSON object per line (or text for humans), level
//! from `SSOGATE_LOG`. pingora's own `log` records are routed here too.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

pub fn init(format: LogFormat) {
    let level = std::env::var("SSOGATE_LOG").unwrap_or_else(|_| "info".into());
    // pingora logs every start-up step at info; its warnings still show.
    let directives = format!("pingora_core=warn,pingora_proxy=warn,{level}");
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("ssogate: logging already initialized: {e}");
    }
}
