//! The `ssogate` command line (SPEC 2). Exit codes: 0 clean shutdown, 1 bad
//! config or usage, 2 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Requests allocate small, short-lived objects on several threads at once,
/// where glibc's malloc contends on its arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ssogate::logging::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "ssogate",
    version,
    about = "JWT single-sign-on sidecar: logs users in for an unmodified app"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file [default: $SSOGATE_CONFIG, then ./config.yaml]
    #[arg(long, global = true, env = "SSOGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default)
    Run,
    /// Load and validate the config and every key and secret it names
    Check,
    /// Print a token the organization would accept
    Mint {
        /// Organization name
        #[arg(long)]
        org: String,
        /// Principal (the org's principal_claim)
        #[arg(long)]
        sub: Option<String>,
        /// Extra claim name=value (a value that parses as JSON keeps its type)
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Lifetime of the token
        #[arg(long, default_value = "5m")]
        ttl: String,
        /// Private key PEM for RS/PS/ES/EdDSA orgs
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config.yaml"));
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&path, cli.log_format),
        Command::Check => check(&path),
        Command::Mint {
            org,
            sub,
            claims,
            ttl,
            key,
        } => mint(&path, &org, sub.as_deref(), &claims, &ttl, key.as_deref()),
    }
}

fn load(path: &std::path::Path) -> Result<ssogate::config::Config, ExitCode> {
    ssogate::config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

fn run(path: &std::path::Path, format: LogFormat) -> ExitCode {
    logging::init(format);
    let loader = ssogate::config::Loader::default();
    let config = match loader.load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid config");
            logging::flush();
            return ExitCode::from(1);
        }
    };
    let code = match ssogate::serve(config, loader) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::from(2)
        }
    };
    logging::flush();
    code
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "{}: ok ({} organizations, {} files)",
        path.display(),
        config.orgs.len(),
        config.files.len()
    );
    ExitCode::SUCCESS
}

fn mint(
    path: &std::path::Path,
    org: &str,
    sub: Option<&str>,
    claims: &[String],
    ttl: &str,
    key: Option<&std::path::Path>,
) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ttl_secs = match ssogate::config::duration::parse_duration(ttl) {
        Ok(d) => d.as_secs(),
        Err(e) => {
            eprintln!("error: --ttl: {e}");
            return ExitCode::from(1);
        }
    };
    let request = ssogate::mint::MintRequest {
        org,
        sub,
        claims,
        ttl_secs,
        key,
    };
    match ssogate::mint::mint(&config, &request, ssogate::clock::now()) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
