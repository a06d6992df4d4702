//! Programs the tests run. The `ssogate` command line: [`Cli`] runs it; [`check`] (and its
//! verdicts) and [`run_until_exit`] on a config directory written for the purpose. Any other
//! program in the background: [`Proc`]; the Node and Python tools: [`test_tools`].

use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{config_dir, free_ports, poll, repo};

#[derive(Debug)]
pub struct CmdOut {
    /// None: killed by a signal, or still running at the deadline (then killed).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `ssogate <args>`, run in the temporary directory (relative paths of a config must not depend
/// on it) unless [`Cli::dir`] says otherwise, stdin closed, `$SSOGATE_CONFIG` unset.
pub struct Cli(Command);

impl Cli {
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Cli {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssogate"));
        cmd.args(args)
            .current_dir(std::env::temp_dir())
            .env_remove("SSOGATE_CONFIG")
            .stdin(Stdio::null());
        Cli(cmd)
    }

    /// The working directory.
    pub fn dir(mut self, dir: &Path) -> Cli {
        self.0.current_dir(dir);
        self
    }

    /// Sets (`Some`) or removes (`None`) an environment variable.
    pub fn env(mut self, name: &str, value: Option<&str>) -> Cli {
        match value {
            Some(v) => self.0.env(name, v),
            None => self.0.env_remove(name),
        };
        self
    }

    /// Runs to completion.
    pub fn output(mut self) -> CmdOut {
        self.0.output().expect("run ssogate").into()
    }

    /// Starts it, stdout and stderr piped.
    pub fn spawn(mut self) -> Child {
        let cmd = self.0.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("spawn ssogate")
    }

    /// Runs until it exits, or kills it after `timeout` (`code` None then).
    pub fn until_exit(self, timeout: Duration) -> CmdOut {
        let mut child = self.spawn();
        if poll(timeout, || child.try_wait().unwrap()).is_none() {
            let _ = child.kill();
        }
        child.wait_with_output().unwrap().into()
    }
}

impl From<Output> for CmdOut {
    fn from(out: Output) -> CmdOut {
        CmdOut {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `ssogate check --config` on a [`config_dir`] from `template` (free ports) and `files`.
pub fn check(template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let dir = config_dir(template, free_ports(), files);
    let config = dir.path().join("config.yaml");
    Cli::new(&["check", "--config", config.to_str().unwrap()]).output()
}

/// `ssogate run --config` on a [`config_dir`] from `template` (free ports) and `files`; waits up
/// to 15 s for it to exit.
pub fn run_until_exit(template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let dir = config_dir(template, free_ports(), files);
    let config = dir.path().join("config.yaml");
    Cli::new(&["run", "--config", config.to_str().unwrap()]).until_exit(Duration::from_secs(15))
}

/// `check` refusing `template` (with `files`) as it should: exit 1, one of `fields` named on
/// stderr. The output, or what went wrong.
pub fn check_refuses(
    what: &str,
    template: &str,
    files: &[(&str, &[u8])],
    fields: &[&str],
) -> Result<CmdOut, String> {
    let out = check(template, files);
    if out.code != Some(1) {
        return Err(format!(
            "{what}: check should exit 1, got {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        ));
    }
    if !fields.iter().any(|f| out.stderr.contains(f)) {
        return Err(format!(
            "{what}: stderr should name {fields:?}:\n{}",
            out.stderr
        ));
    }
    Ok(out)
}

/// Asserts that `check` accepts `template` (with `files`): exit 0. The output.
#[track_caller]
pub fn check_accepts(what: &str, template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let out = check(template, files);
    assert_eq!(
        out.code,
        Some(0),
        "{what}: check should exit 0\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out
}

/// A program running in the background, stdout and stderr in a file, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with its output when it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits for it to listen on 127.0.0.1:`port`, failing early (with its output) if it dies.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) {
        let up = poll(timeout, || {
            self.assert_running();
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(
            up.is_some(),
            "{} does not listen on {port} after {timeout:?}; its output:\n{}",
            self.name,
            self.output()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end; panics with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command, what: &str) -> CmdOut {
    let out = cmd.output();
    let out = CmdOut::from(out.unwrap_or_else(|e| panic!("cannot run {what}: {e}")));
    assert_eq!(
        out.code,
        Some(0),
        "{what} failed:\n{}{}",
        out.stdout,
        out.stderr
    );
    out
}

/// Is `name` a command on PATH?
pub fn has_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
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

/// Runs `scripts/install-test-tools.sh <part>`: Ok(tools dir) when ready,
/// Err(reason) when a registry is unreachable (exit 3); panics on any other
/// failure.
pub fn test_tools(part: &str) -> Result<PathBuf, String> {
    let out = Command::new(repo().join("scripts/install-test-tools.sh"))
        .arg(part)
        .output()
        .expect("run scripts/install-test-tools.sh");
    let out = CmdOut::from(out);
    match out.code {
        Some(0) => {}
        Some(3) => {
            let last = out.stderr.lines().last();
            return Err(last.unwrap_or("a package registry is unreachable").into());
        }
        _ => panic!(
            "scripts/install-test-tools.sh {part} failed ({:?}):\n{}{}",
            out.code, out.stdout, out.stderr
        ),
    }
    let dir = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("SSOGATE_TOOLS_DIR="))
        .next_back()
        .expect("install-test-tools.sh names its directory");
    Ok(PathBuf::from(dir))
}
